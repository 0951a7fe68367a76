//! The publisher's half of the authenticated change feed: after a snapshot file is
//! written and before its manifest is signed, the change list from the newest snapshot
//! already in the directory to the new one, as the [`ChangeDigest`] the manifest carries
//! (see [`ocsp_edge_core::snapshot::change_digest_of`]). Hubs serve that manifest with each feed step, and
//! caches acknowledge a step only if the list they received has this digest.
//!
//! Best effort by design: without a digest (no previous snapshot, one that does not
//! verify, issuers that changed) hubs cannot prove the step and caches drop their entries
//! and start over, which is always correct. So problems here are logged, never fatal.
//! Must never write anything.

use ocsp_edge_core::pki::{Certificate, SigningKey};
use ocsp_edge_core::snapshot::{self, ChangeDigest, Manifest, ManifestBody, Snapshot, TrustAnchors};
use ocsp_edge_core::time::UnixTime;
use std::path::Path;
use std::sync::Arc;

/// The digest for the manifest `body` (not yet written, its snapshot file already is).
/// `base`: a delta's base, which the new snapshot needs to be read.
pub(super) fn digest_since_previous(
    out_dir: &Path,
    body: &ManifestBody,
    signers: &[(&str, &Certificate, &SigningKey)],
    trust: &TrustAnchors,
    now: UnixTime,
    base: Option<Arc<Snapshot>>,
) -> Option<ChangeDigest> {
    let started = std::time::Instant::now();
    let previous = snapshot::manifest_sequences(out_dir)
        .ok()?
        .into_iter()
        .find(|&sequence| sequence < body.sequence)?;
    let older = match &base {
        // Sharing the base lets the comparison walk only the two deltas.
        Some(base) if base.sequence() == previous => base.clone(),
        _ => match snapshot::load_snapshot_with(out_dir, previous, trust, now, base.as_ref()) {
            Ok(snapshot) => Arc::new(snapshot),
            Err(e) => {
                tracing::warn!(previous, error = %e, "previous snapshot unreadable; the manifest commits to no change list (caches will start over)");
                return None;
            }
        },
    };
    // The new snapshot can only be read through a verified manifest: sign a provisional
    // one (never written), whose only difference is the missing digest.
    let provisional = Manifest::sign(body.clone(), signers).ok()?;
    let newer = match snapshot::load_snapshot_file_on(
        &provisional.to_json(),
        &out_dir.join(&body.snapshot),
        trust,
        now,
        base,
    ) {
        Ok(snapshot) => snapshot,
        Err(e) => {
            tracing::warn!(sequence = body.sequence, error = %e, "new snapshot unreadable for the change list");
            return None;
        }
    };
    let Some(list) = snapshot::changes_between(&older, &newer) else {
        tracing::info!(
            previous,
            sequence = body.sequence,
            "issuers changed; the manifest commits to no change list (caches will start over)"
        );
        return None;
    };
    let digest = snapshot::change_digest_of(previous, &list);
    tracing::info!(
        since = previous,
        changes = digest.count,
        seconds = started.elapsed().as_secs_f64(),
        "change list committed to in the manifest"
    );
    Some(digest)
}
