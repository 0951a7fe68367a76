//! The edge's own guard against un-revocation: a snapshot that answers `good` for a
//! certificate the served snapshot answers `revoked` for is refused, unless its signed
//! manifest records the publisher's explicit override (`--allow-unrevoke`) for exactly
//! that serial. A buggy or compromised export, signed by the publisher, then cannot
//! silently un-revoke across the fleet.
//!
//! Owns that decision and nothing else: no I/O, no metrics. Costs one diff of the two
//! snapshots ([`Snapshot::status_changes_since`]): O(delta) for deltas on the served
//! base, O(entries) otherwise, so callers run it off the request path.
//!
//! A certificate that merely leaves the snapshot is not refused here: the edge does not
//! know notAfter, and expired certificates leave every day. The publisher's rails hold
//! that line (see `publish::rails`).

use super::format::StoredStatus;
use super::verify::{Snapshot, StatusChange, VerifyError};
use crate::model::Serial;
use crate::time::UnixTime;

/// How many serials a refusal names before it gives only the count.
const NAMED_SERIALS: usize = 5;

/// Refuses `offered` if it un-revokes, without a recorded override, a certificate that
/// `served` answers `revoked` for. A served snapshot that has expired answers nothing
/// validly any more, so it constrains nothing (and an edge that missed the override while
/// offline is not stuck: the publisher keeps an override in its manifests for as long as
/// any earlier snapshot can still be valid).
pub fn check(served: &Snapshot, offered: &Snapshot, now: UnixTime) -> Result<(), VerifyError> {
    if served.earliest_next_update() <= now {
        return Ok(());
    }
    let overrides = &offered.manifest().body.unrevoked;
    let allowed = |change: &StatusChange| {
        overrides.iter().any(|o| {
            o.issuer == change.issuer && Serial::from_hex(&o.serial).as_ref() == Some(&change.serial)
        })
    };
    let unrevoked: Vec<StatusChange> = offered
        .status_changes_since(served)
        .into_iter()
        .filter(|change| change.status == Some(StoredStatus::Good))
        .filter(|change| {
            matches!(
                served.status_of(&change.issuer, &change.serial),
                Some(StoredStatus::Revoked { .. })
            )
        })
        .filter(|change| !allowed(change))
        .collect();
    if unrevoked.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = unrevoked
        .iter()
        .take(NAMED_SERIALS)
        .map(|c| format!("{}:{}", c.issuer, c.serial))
        .collect();
    Err(VerifyError::Unrevoked {
        count: unrevoked.len(),
        serials: named.join(", "),
    })
}
