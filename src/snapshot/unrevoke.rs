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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CertStatus;
    use crate::publish::{publish, PublishConfig, PublishPlan, PublishReport};
    use crate::snapshot::manifest::{Manifest, ManifestUnrevocation};
    use crate::snapshot::verify::{SnapshotBytes, TrustAnchors};

    const NOW: UnixTime = UnixTime(1_790_000_000);
    const LATER: UnixTime = UnixTime(1_790_003_600);

    fn demo_plan() -> PublishPlan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/publish.toml");
        PublishConfig::from_file(&path).unwrap().load(NOW).unwrap()
    }

    fn trust(plan: &PublishPlan) -> TrustAnchors {
        TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect())
    }

    /// The published snapshot, its manifest's override list replaced by `unrevoked` and
    /// signed again with the publisher's keys: what a publisher that recorded another
    /// override (or none) would have written.
    fn with_overrides(
        plan: &PublishPlan,
        report: &PublishReport,
        unrevoked: Vec<ManifestUnrevocation>,
    ) -> Snapshot {
        let mut body = Manifest::parse(&std::fs::read(&report.manifest).unwrap())
            .unwrap()
            .body;
        body.unrevoked = unrevoked;
        let signers: Vec<_> = plan
            .issuers
            .iter()
            .map(|i| (i.name.as_str(), &i.signer, &i.key))
            .collect();
        let manifest = Manifest::sign(body, &signers).unwrap().to_json();
        let bytes = SnapshotBytes::Owned(std::fs::read(&report.snapshot).unwrap());
        Snapshot::verify(&manifest, bytes, &trust(plan), LATER).unwrap()
    }

    fn load(plan: &PublishPlan, report: &PublishReport) -> Snapshot {
        let manifest = std::fs::read(&report.manifest).unwrap();
        let bytes = SnapshotBytes::Owned(std::fs::read(&report.snapshot).unwrap());
        Snapshot::verify(&manifest, bytes, &trust(plan), LATER).unwrap()
    }

    #[test]
    fn an_unrevoking_snapshot_is_refused_unless_its_manifest_records_that_serial() {
        let mut plan = demo_plan();
        let dir = tempfile::tempdir().unwrap();
        let served = load(&plan, &publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap());
        let position = plan.issuers[0]
            .records
            .iter()
            .position(|r| matches!(r.status, CertStatus::Revoked { .. }))
            .unwrap();
        let serial = plan.issuers[0].records[position].serial.clone();
        plan.issuers[0].records[position].status = CertStatus::Good;
        plan.rails.allow_unrevoke = vec![serial.clone()];
        let report = publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap();

        // As published: the manifest records the override, so the edge follows it.
        let offered = load(&plan, &report);
        assert_eq!(offered.manifest().body.unrevoked.len(), 1);
        check(&served, &offered, LATER).unwrap();

        let recorded = offered.manifest().body.unrevoked[0].clone();
        let other_serial = ManifestUnrevocation {
            serial: plan.issuers[0].records[(position + 1) % 99].serial.to_hex(),
            ..recorded.clone()
        };
        let other_issuer = ManifestUnrevocation {
            issuer: "rsa".into(),
            ..recorded.clone()
        };
        for (case, overrides) in [
            ("no override", vec![]),
            ("another serial", vec![other_serial]),
            ("another issuer", vec![other_issuer]),
        ] {
            let offered = with_overrides(&plan, &report, overrides);
            let refused = check(&served, &offered, LATER).unwrap_err();
            assert_eq!(refused.label(), "unrevoke", "{case}");
            let message = refused.to_string();
            assert!(
                message.contains("un-revokes 1 certificate(s)") && message.contains(&format!("ec:{serial}")),
                "{case}: {message}"
            );
        }
        // The same serial spelled with a leading zero is the same serial.
        let padded = ManifestUnrevocation {
            serial: format!("00{}", recorded.serial),
            ..recorded
        };
        check(&served, &with_overrides(&plan, &report, vec![padded]), LATER).unwrap();

        // A served snapshot that has expired constrains nothing.
        let expired = served.earliest_next_update().plus_seconds(1);
        check(&served, &with_overrides(&plan, &report, vec![]), expired).unwrap();
    }

    #[test]
    fn revocations_additions_and_removals_pass() {
        let mut plan = demo_plan();
        let dir = tempfile::tempdir().unwrap();
        let served = load(&plan, &publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap());
        let good = plan.issuers[1]
            .records
            .iter()
            .position(|r| r.status == CertStatus::Good)
            .unwrap();
        plan.issuers[1].records[good].status = CertStatus::Revoked {
            at: NOW,
            reason: None,
            invalidity: None,
        };
        // Three good certificates leave (expired, say): no override needed, none recorded.
        let mut left = 0;
        plan.issuers[0].records.retain(|r| {
            let leaves = r.status == CertStatus::Good && left < 3;
            left += usize::from(leaves);
            !leaves
        });
        let offered = load(&plan, &publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap());
        assert_eq!(offered.status_changes_since(&served).len(), 4);
        assert!(offered.manifest().body.unrevoked.is_empty());
        check(&served, &offered, LATER).unwrap();
    }
}
