//! Answering one OCSP request from a verified snapshot: the protocol decision, with no
//! I/O and no clock (the caller passes `now`).
//!
//! Decode → nonce policy → whole-CertID lookup → freshness. Every way this can fail is a
//! [`Refusal`], which [`crate::ocsp::Refusal::response_status`] maps to the wire.

use crate::ocsp::{with_request, OcspRequest, Refusal, RequestedCertId};
use crate::snapshot::Found;
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

/// Where answers come from: a verified snapshot ([`Snapshot`]) or the cache tier of a
/// cache-mode responder (verified hub answers). A source only looks up; the protocol
/// decisions around the lookup (nonce policy before it, freshness after it) are
/// [`answer_from`]'s, so every source gets the same ones.
pub trait AnswerSource {
    /// What the source answers with (a response in the snapshot, a cached entry).
    type Answer;

    /// The answer for exactly `cert_id` (the whole CertID, never the serial alone), or
    /// why there is none. May wait (a cache fills from its hubs); must not decide
    /// freshness or nonce policy.
    fn lookup(
        &self,
        cert_id: &RequestedCertId,
        now: UnixTime,
    ) -> impl std::future::Future<Output = Result<Self::Answer, Refusal>> + Send;

    /// The nextUpdate of `answer`: it is never served at or after this time.
    fn next_update(answer: &Self::Answer) -> UnixTime;
}

/// Answers a decoded request from `source` at `now`: nonce policy → lookup → freshness,
/// the one sequence every source runs. A refused request never reaches the source (so a
/// cache never asks a hub about it), and an answer at or past its nextUpdate is
/// [`Refusal::Expired`], whatever the source holds.
pub async fn answer_from<S: AnswerSource>(
    source: &S,
    request: &OcspRequest,
    now: UnixTime,
    nonce_policy: NoncePolicy,
) -> Result<S::Answer, Refusal> {
    nonce_policy.admit(request.has_nonce)?;
    let answer = source.lookup(&request.cert_id, now).await?;
    fresh(S::next_update(&answer), now)?;
    Ok(answer)
}

/// A response is served only strictly before its nextUpdate (RFC 5019 §4, BR §4.9.10).
fn fresh(next_update: UnixTime, now: UnixTime) -> Result<(), Refusal> {
    if now >= next_update {
        return Err(Refusal::Expired);
    }
    Ok(())
}

/// A snapshot answers owned requests too (the in-place path, [`answer`], is the serving
/// one); the lookup is immediate.
impl AnswerSource for Snapshot {
    type Answer = Answered;

    fn lookup(
        &self,
        cert_id: &RequestedCertId,
        _now: UnixTime,
    ) -> impl std::future::Future<Output = Result<Answered, Refusal>> + Send {
        let found = Snapshot::lookup(self, cert_id).map(|found| Answered {
            next_update: found.next_update,
            response: found.response(),
        });
        std::future::ready(found)
    }

    fn next_update(answer: &Answered) -> UnixTime {
        answer.next_update
    }
}

/// A snapshot's answer to an owned request: the response bytes and their nextUpdate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answered {
    /// The complete DER OCSPResponse.
    pub response: Vec<u8>,
    /// Its nextUpdate.
    pub next_update: UnixTime,
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
        // The in-place, borrowed form of `answer_from`'s steps (no allocation on the
        // serving path), with the same two decisions.
        nonce_policy.admit(request.has_nonce)?;
        let snapshot = snapshot.ok_or(Refusal::NotReady)?;
        let found = snapshot.lookup(request.cert_id)?;
        fresh(found.next_update, now)?;
        Ok(found)
    })
}

/// `max-age` for a response: never past nextUpdate (RFC 5019 §6.2), and at most `cap`
/// so that caches re-fetch often enough for a new revocation to reach clients.
pub fn max_age(found: &Found<'_>, now: UnixTime, cap_seconds: u64) -> u64 {
    let until_next_update = found.next_update.seconds().saturating_sub(now.seconds()).max(0) as u64;
    until_next_update.min(cap_seconds)
}

/// When the CA/Browser Forum wants a response refreshed (BR §4.9.10): under 16 hours of
/// validity, half-way to nextUpdate; otherwise within 4 days of thisUpdate and at least 8
/// hours before nextUpdate, whichever comes first. (The 8-hour rule alone would put the
/// deadline of an 8-hour response at its thisUpdate: always "at risk".)
pub fn refresh_deadline(this_update: UnixTime, next_update: UnixTime) -> UnixTime {
    let validity = next_update.seconds().saturating_sub(this_update.seconds());
    if validity < 16 * 3600 {
        return this_update.plus_seconds(validity / 2);
    }
    this_update
        .plus_seconds(4 * 86_400)
        .min(next_update.plus_seconds(-8 * 3600))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Serial;
    use crate::pki::CertIdHash;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A source holding one answer for every CertID, counting lookups.
    struct Scripted {
        next_update: UnixTime,
        lookups: AtomicUsize,
    }

    impl AnswerSource for Scripted {
        type Answer = UnixTime;
        fn lookup(
            &self,
            _: &RequestedCertId,
            _: UnixTime,
        ) -> impl std::future::Future<Output = Result<UnixTime, Refusal>> + Send {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(self.next_update))
        }
        fn next_update(answer: &UnixTime) -> UnixTime {
            *answer
        }
    }

    /// Runs a future that never waits (every source here answers at once).
    fn now_or_never<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("the scripted source never waits"),
        }
    }

    fn request(has_nonce: bool) -> OcspRequest {
        OcspRequest {
            cert_id: RequestedCertId {
                hash: CertIdHash::Sha256,
                issuer_name_hash: vec![1; 32],
                issuer_key_hash: vec![2; 32],
                serial: Serial::from_hex("0ABC").unwrap(),
            },
            has_nonce,
        }
    }

    const NOW: UnixTime = UnixTime(1_790_000_000);

    #[test]
    fn a_refused_nonce_never_reaches_the_source() {
        let source = Scripted {
            next_update: NOW.plus_seconds(60),
            lookups: AtomicUsize::new(0),
        };
        let refused = now_or_never(answer_from(&source, &request(true), NOW, NoncePolicy::Refuse));
        assert_eq!(refused, Err(Refusal::NonceRefused));
        assert_eq!(
            source.lookups.load(Ordering::SeqCst),
            0,
            "a hub would have been asked"
        );
        let ignored = now_or_never(answer_from(&source, &request(true), NOW, NoncePolicy::Ignore));
        assert_eq!(ignored, Ok(NOW.plus_seconds(60)));
        assert_eq!(source.lookups.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn whatever_a_source_holds_is_never_served_at_or_past_its_next_update() {
        let source = Scripted {
            next_update: NOW,
            lookups: AtomicUsize::new(0),
        };
        let at = now_or_never(answer_from(&source, &request(false), NOW, NoncePolicy::Ignore));
        assert_eq!(at, Err(Refusal::Expired));
        let before = now_or_never(answer_from(
            &source,
            &request(false),
            NOW.plus_seconds(-1),
            NoncePolicy::Ignore,
        ));
        assert_eq!(before, Ok(NOW));
    }

    #[test]
    fn the_forum_refresh_deadline_depends_on_the_validity() {
        let this_update = UnixTime(1_800_000_000);
        let after = |hours: i64| refresh_deadline(this_update, this_update.plus_seconds(hours * 3600));
        // 8 h: half-way (4 h), not "8 h before nextUpdate", which is thisUpdate itself.
        assert_eq!(after(8), this_update.plus_seconds(4 * 3600));
        assert_eq!(after(15), this_update.plus_seconds(15 * 1800));
        // 16 h: both rules agree.
        assert_eq!(after(16), this_update.plus_seconds(8 * 3600));
        // 96 h: 8 h before nextUpdate comes before 4 days.
        assert_eq!(after(96), this_update.plus_seconds(88 * 3600));
        // 10 days: 4 days comes first.
        assert_eq!(after(240), this_update.plus_seconds(96 * 3600));
    }
}
