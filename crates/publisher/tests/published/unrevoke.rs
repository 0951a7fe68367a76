use ocsp_edge_core::model::CertStatus;
use ocsp_edge_core::snapshot::{
    check_unrevocations, Manifest, ManifestUnrevocation, Snapshot, SnapshotBytes, TrustAnchors,
};
use ocsp_edge_core::time::UnixTime;
use ocsp_edge_publisher::publish::{publish, PublishConfig, PublishPlan, PublishReport};

const NOW: UnixTime = UnixTime(1_790_000_000);
const LATER: UnixTime = UnixTime(1_790_003_600);

fn demo_plan() -> PublishPlan {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
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
    check_unrevocations(&served, &offered, LATER).unwrap();

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
        let refused = check_unrevocations(&served, &offered, LATER).unwrap_err();
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
    check_unrevocations(&served, &with_overrides(&plan, &report, vec![padded]), LATER).unwrap();

    // A served snapshot that has expired constrains nothing.
    let expired = served.earliest_next_update().plus_seconds(1);
    check_unrevocations(&served, &with_overrides(&plan, &report, vec![]), expired).unwrap();
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
    check_unrevocations(&served, &offered, LATER).unwrap();
}
