//! Answering one OCSP request from a verified snapshot: the protocol decision, with no
//! I/O and no clock (the caller passes `now`).
//!
//! Decode → nonce policy → whole-CertID lookup → freshness. Every way this can fail is a
//! [`Refusal`], which [`crate::ocsp::Refusal::response_status`] maps to the wire.

use crate::ocsp::{with_request, Refusal};
use crate::snapshot::format::Found;
use crate::snapshot::Snapshot;
use crate::time::UnixTime;
use serde::Deserialize;

/// What to do with a request that carries a nonce (RFC 9654). Pre-signed responses cannot
/// echo a nonce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoncePolicy {
    /// Answer with the pre-produced response, without a nonce (RFC 5019 §2.2.1, RFC 9919):
    /// clients then rely on thisUpdate/nextUpdate for freshness. The default.
    #[default]
    Ignore,
    /// Answer `unauthorized`, for deployments whose clients must never accept a response
    /// without their nonce and should fail over to a live-signing responder instead.
    Refuse,
}

impl NoncePolicy {
    /// Whether a request may be answered at all under this policy: one that carries a
    /// nonce is refused under [`NoncePolicy::Refuse`]. The one place this is decided, for
    /// snapshot mode ([`answer`]) and cache mode alike.
    pub fn admit(self, has_nonce: bool) -> Result<(), Refusal> {
        if has_nonce && self == NoncePolicy::Refuse {
            return Err(Refusal::NonceRefused);
        }
        Ok(())
    }
}

/// Answers `request` (DER) from `snapshot` at `now`.
///
/// A serial the issuer never issued (absent from the snapshot) gets `unauthorized`, never
/// `good` (CA/Browser Forum BR §4.9.10); a keyless edge cannot sign `unknown` or the
/// RFC 6960 §2.2 "revoked for non-issued" form for arbitrary serials, so that is the one
/// policy. A response past its nextUpdate is never served: `tryLater`.
pub fn answer<'a>(
    snapshot: Option<&'a Snapshot>,
    request: &[u8],
    now: UnixTime,
    nonce_policy: NoncePolicy,
) -> Result<Found<'a>, Refusal> {
    with_request(request, |request| {
        nonce_policy.admit(request.has_nonce)?;
        let snapshot = snapshot.ok_or(Refusal::NotReady)?;
        let found = snapshot.lookup(request.cert_id)?;
        if now >= found.next_update {
            return Err(Refusal::Expired);
        }
        Ok(found)
    })
}

/// `max-age` for a response: never past nextUpdate (RFC 5019 §6.2), and at most `cap`
/// so that caches re-fetch often enough for a new revocation to reach clients.
pub fn max_age(found: &Found<'_>, now: UnixTime, cap_seconds: u64) -> u64 {
    let until_next_update = found.next_update.seconds().saturating_sub(now.seconds()).max(0) as u64;
    until_next_update.min(cap_seconds)
}

/// When the CA/Browser Forum wants responses refreshed (BR §4.9.10): within 4 days of
/// thisUpdate (half the validity when that is under 16 hours), and at least 8 hours before
/// nextUpdate — whichever comes first.
pub fn refresh_deadline(this_update: UnixTime, next_update: UnixTime) -> UnixTime {
    let validity = next_update.seconds() - this_update.seconds();
    let after_this_update = if validity < 16 * 3600 {
        validity / 2
    } else {
        4 * 86_400
    };
    this_update
        .plus_seconds(after_this_update)
        .min(next_update.plus_seconds(-8 * 3600))
}
