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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsp::request::{encode_request, RequestedCertId};
    use crate::pki::cert::CertIdHash;
    use crate::publish::PublishConfig;
    use crate::snapshot::verify::{SnapshotBytes, TrustAnchors};
    use std::path::Path;

    const NOW: UnixTime = UnixTime(1_790_000_000);

    struct Demo {
        snapshot: Snapshot,
        plan: crate::publish::PublishPlan,
    }

    fn demo() -> Demo {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/publish.toml");
        let plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let report = crate::publish::publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
        let snapshot = Snapshot::verify(
            &std::fs::read(report.manifest).unwrap(),
            SnapshotBytes::Owned(std::fs::read(report.snapshot).unwrap()),
            &trust,
            NOW,
        )
        .unwrap();
        Demo { snapshot, plan }
    }

    fn request_for(demo: &Demo, issuer: usize, serial: &crate::model::Serial, hash: CertIdHash) -> Vec<u8> {
        let certificate = &demo.plan.issuers[issuer].certificate;
        encode_request(
            &RequestedCertId {
                hash,
                issuer_name_hash: certificate.name_hash(hash),
                issuer_key_hash: certificate.key_hash(hash),
                serial: serial.clone(),
            },
            None,
        )
    }

    #[test]
    fn answers_known_serials_and_refuses_the_rest() {
        let demo = demo();
        let serial = demo.plan.issuers[0].records[0].serial.clone();
        let request = request_for(&demo, 0, &serial, CertIdHash::Sha256);
        let found = answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Ignore).unwrap();
        assert!(found.response().len() > 100);

        let unassigned = crate::model::Serial::from_hex("0BADC0DE").unwrap();
        let request = request_for(&demo, 0, &unassigned, CertIdHash::Sha1);
        assert_eq!(
            answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Ignore),
            Err(Refusal::UnassignedSerial)
        );
        assert_eq!(
            answer(None, &request, NOW, NoncePolicy::Ignore),
            Err(Refusal::NotReady)
        );
        assert!(matches!(
            answer(Some(&demo.snapshot), b"junk", NOW, NoncePolicy::Ignore),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn only_the_refuse_policy_refuses_and_only_requests_with_a_nonce() {
        assert_eq!(NoncePolicy::Refuse.admit(true), Err(Refusal::NonceRefused));
        assert_eq!(NoncePolicy::Refuse.admit(false), Ok(()));
        assert_eq!(NoncePolicy::Ignore.admit(true), Ok(()));
        assert_eq!(NoncePolicy::Ignore.admit(false), Ok(()));
    }

    #[test]
    fn mixing_one_issuers_name_hash_with_anothers_key_hash_is_unknown() {
        let demo = demo();
        let serial = demo.plan.issuers[0].records[0].serial.clone();
        let hash = CertIdHash::Sha256;
        let request = encode_request(
            &RequestedCertId {
                hash,
                issuer_name_hash: demo.plan.issuers[1].certificate.name_hash(hash),
                issuer_key_hash: demo.plan.issuers[0].certificate.key_hash(hash),
                serial,
            },
            None,
        );
        assert_eq!(
            answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Ignore),
            Err(Refusal::UnknownIssuer)
        );
    }

    #[test]
    fn expired_responses_are_never_served() {
        let demo = demo();
        let serial = demo.plan.issuers[1].records[3].serial.clone();
        let request = request_for(&demo, 1, &serial, CertIdHash::Sha1);
        let found = answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Ignore).unwrap();
        let last_second = found.next_update.plus_seconds(-1);
        assert!(answer(Some(&demo.snapshot), &request, last_second, NoncePolicy::Ignore).is_ok());
        assert_eq!(
            answer(
                Some(&demo.snapshot),
                &request,
                found.next_update,
                NoncePolicy::Ignore
            ),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn nonce_policy_is_applied() {
        let demo = demo();
        let certificate = &demo.plan.issuers[0].certificate;
        let hash = CertIdHash::Sha256;
        let request = encode_request(
            &RequestedCertId {
                hash,
                issuer_name_hash: certificate.name_hash(hash),
                issuer_key_hash: certificate.key_hash(hash),
                serial: demo.plan.issuers[0].records[0].serial.clone(),
            },
            Some(&[7; 32]),
        );
        assert!(answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Ignore).is_ok());
        assert_eq!(
            answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Refuse),
            Err(Refusal::NonceRefused)
        );
    }

    #[test]
    fn max_age_never_reaches_past_next_update() {
        let demo = demo();
        let serial = demo.plan.issuers[0].records[0].serial.clone();
        let request = request_for(&demo, 0, &serial, CertIdHash::Sha256);
        let found = answer(Some(&demo.snapshot), &request, NOW, NoncePolicy::Ignore).unwrap();
        assert_eq!(max_age(&found, NOW, 3600), 3600);
        let near_end = found.next_update.plus_seconds(-90);
        assert_eq!(max_age(&found, near_end, 3600), 90);
        assert_eq!(max_age(&found, found.next_update.plus_seconds(5), 3600), 0);
    }
}
