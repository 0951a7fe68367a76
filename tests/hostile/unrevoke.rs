//! A publisher-signed snapshot that un-revokes a certificate (a buggy or compromised
//! export that reached a publisher without the rails, or one whose override names another
//! serial): a running responder refuses it, keeps answering `revoked` from the snapshot
//! it serves, and counts `ocsp_edge_snapshots_refused_total{reason="unrevoke"}`, unless
//! the signed manifest records the operator's `--allow-unrevoke` for exactly that serial.

use crate::common::*;
use ocsp_edge::model::Serial;
use ocsp_edge::publish::{publish, PublishConfig, PublishPlan, PublishReport};
use ocsp_edge::server::Background;
use ocsp_edge::snapshot::{Manifest, ManifestUnrevocation, StoredStatus};
use ocsp_edge::time::UnixTime;
use std::path::Path;
use std::time::Duration;

/// How long a running responder may take to pick up (or refuse) an offered snapshot.
const LIMIT: Duration = Duration::from_secs(20);

/// Revoked (keyCompromise, 2026-02-01) in the demo's ec/index.txt.
const REVOKED: &str = "19D65DDD1A376A089436F314272F7D18";
/// Another ec certificate, revoked too.
const OTHER: &str = "5CE07BDABF193760382B0C01035C5681";

fn plan(pki: &Pki, now: UnixTime) -> PublishPlan {
    PublishConfig::from_file(&pki.toml()).unwrap().load(now).unwrap()
}

/// Puts `report`'s snapshot into `served` with `manifest` (the published one, or one
/// re-signed with other overrides): the snapshot file first, as a replication would.
fn offer(report: &PublishReport, manifest: &[u8], served: &Path) {
    let name = |path: &Path| path.file_name().unwrap().to_owned();
    std::fs::copy(&report.snapshot, served.join(name(&report.snapshot))).unwrap();
    std::fs::write(served.join(name(&report.manifest)), manifest).unwrap();
}

/// `report`'s manifest with its override list replaced, signed again with the
/// publisher's own keys: what a publisher recording another override (or none) writes.
fn resigned(plan: &PublishPlan, report: &PublishReport, unrevoked: Vec<ManifestUnrevocation>) -> Vec<u8> {
    let mut body = Manifest::parse(&std::fs::read(&report.manifest).unwrap())
        .unwrap()
        .body;
    body.unrevoked = unrevoked;
    let signers: Vec<_> = plan
        .issuers
        .iter()
        .map(|i| (i.name.as_str(), &i.signer, &i.key))
        .collect();
    Manifest::sign(body, &signers).unwrap().to_json()
}

fn refused_unrevoke(server: &Background) -> u64 {
    server.state.metrics().refusals("unrevoke")
}

/// What an OCSP client is told about REVOKED (openssl ocsp against the running responder).
fn answered(server: &Background) -> String {
    let (status, out) = openssl_status(
        server.ocsp_addr,
        &issuer_ca("ec"),
        &cert_path("ec", REVOKED),
        true,
    );
    assert!(!status.is_empty(), "{out}");
    status
}

fn served_status(server: &Background) -> Option<StoredStatus> {
    let serial = Serial::from_hex(REVOKED).unwrap();
    server.state.current().as_ref()?.status_of("ec", &serial)
}

#[test]
fn a_responder_refuses_a_snapshot_that_unrevokes_without_the_recorded_override() {
    let pki = Pki::new();
    let staging = tempfile::tempdir().unwrap();
    let served = tempfile::tempdir().unwrap();
    let now = UnixTime::now();
    let first = publish(&plan(&pki, now), staging.path(), now, &mut |_| {}).unwrap();
    offer(&first, &std::fs::read(&first.manifest).unwrap(), served.path());
    let server = Background::start(config_for(served.path(), &demo_trust(), vec![])).unwrap();
    assert_eq!(server.state.current_sequence(), Some(first.sequence));
    assert!(matches!(
        served_status(&server),
        Some(StoredStatus::Revoked { .. })
    ));

    // The CA's export now says good; the operator overrides the rail for REVOKED.
    pki.edit_index("ec", |fields| {
        if fields[3] == REVOKED {
            fields[0] = "V".into();
            fields[2].clear();
        }
        true
    });
    let mut unrevoking = plan(&pki, now);
    unrevoking.rails.allow_unrevoke = vec![Serial::from_hex(REVOKED).unwrap()];
    let second = publish(&unrevoking, staging.path(), now.plus_seconds(1), &mut |_| {}).unwrap();
    let recorded = Manifest::parse(&std::fs::read(&second.manifest).unwrap())
        .unwrap()
        .body
        .unrevoked;
    assert_eq!(recorded.len(), 1);

    // Signed by the publisher, but the override names another serial.
    let other = ManifestUnrevocation {
        serial: OTHER.into(),
        ..recorded[0].clone()
    };
    offer(
        &second,
        &resigned(&unrevoking, &second, vec![other]),
        served.path(),
    );
    wait_for("the refusal of an override for another serial", LIMIT, || {
        refused_unrevoke(&server) == 1
    });
    assert_eq!(server.state.current_sequence(), Some(first.sequence));
    assert!(matches!(
        served_status(&server),
        Some(StoredStatus::Revoked { .. })
    ));

    // No override at all (a publisher without the rails).
    let plain = plan(&pki, now);
    let third = publish(&plain, staging.path(), now.plus_seconds(2), &mut |_| {}).unwrap();
    offer(&third, &resigned(&plain, &third, vec![]), served.path());
    wait_for("the refusal of a snapshot without the override", LIMIT, || {
        refused_unrevoke(&server) == 2
    });
    assert_eq!(server.state.current_sequence(), Some(first.sequence));
    assert!(matches!(
        served_status(&server),
        Some(StoredStatus::Revoked { .. })
    ));
    assert_eq!(answered(&server), "revoked");
    let metrics = String::from_utf8_lossy(&get(server.admin_addr, "/metrics").body).into_owned();
    assert!(
        metrics.contains("ocsp_edge_snapshots_refused_total{reason=\"unrevoke\"} 2"),
        "{metrics}"
    );

    // As published: the publisher keeps the override in the manifests that follow it, so
    // this responder, which never saw the snapshot that made it, follows.
    let fourth = publish(&plain, staging.path(), now.plus_seconds(3), &mut |_| {}).unwrap();
    offer(&fourth, &std::fs::read(&fourth.manifest).unwrap(), served.path());
    wait_for("the snapshot with the override", LIMIT, || {
        server.state.current_sequence() == Some(fourth.sequence)
    });
    assert_eq!(served_status(&server), Some(StoredStatus::Good));
    assert_eq!(answered(&server), "good");
    assert_eq!(refused_unrevoke(&server), 2);
}
