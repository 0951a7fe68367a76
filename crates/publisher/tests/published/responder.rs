use ocsp_edge_core::ocsp::{encode_request, Refusal, RequestedCertId};
use ocsp_edge_core::pki::CertIdHash;
use ocsp_edge_core::responder::*;
use ocsp_edge_core::snapshot::{Snapshot, SnapshotBytes, TrustAnchors};
use ocsp_edge_core::time::UnixTime;
use ocsp_edge_publisher::publish::PublishConfig;
use std::path::Path;

const NOW: UnixTime = UnixTime(1_790_000_000);

struct Demo {
    snapshot: Snapshot,
    plan: ocsp_edge_publisher::publish::PublishPlan,
}

fn demo() -> Demo {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
    let plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = ocsp_edge_publisher::publish::publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
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

fn request_for(
    demo: &Demo,
    issuer: usize,
    serial: &ocsp_edge_core::model::Serial,
    hash: CertIdHash,
) -> Vec<u8> {
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

    let unassigned = ocsp_edge_core::model::Serial::from_hex("0BADC0DE").unwrap();
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
