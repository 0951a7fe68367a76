//! Forged manifests and snapshots dropped into a running responder's served directory
//! (issue 12, findings 1 and 2): an unsigned manifest with no issuers and sequence
//! u64::MAX; one issuer's signer publishing a snapshot without the other issuer; a
//! replayed `good` response planted at a revoked certificate's OCSP GET path; a properly
//! signed sequence from the far future; a CRL swapped for other bytes.

use crate::common::*;
use ocsp_edge::publish::PublishReport;
use ocsp_edge::server::Background;
use ocsp_edge::snapshot::{self, Document, DocumentKind};
use ocsp_edge::time::UnixTime;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const REFUSAL_WAIT: Duration = Duration::from_secs(10);

/// What a client and an operator can observe of a responder: served sequence, persisted
/// anti-rollback floor, readiness, and every document's status and bytes.
#[derive(Debug, PartialEq)]
struct Observed {
    sequence: Option<f64>,
    highest_sequence_file: Option<String>,
    readyz: u16,
    documents: BTreeMap<String, (u16, String)>,
}

fn observe(server: &Background, dir: &Path, document_paths: &[String]) -> Observed {
    Observed {
        sequence: metric(&metrics(server.admin_addr), "ocsp_edge_snapshot_sequence"),
        highest_sequence_file: std::fs::read_to_string(dir.join("highest-sequence")).ok(),
        readyz: get(server.admin_addr, "/readyz").status,
        documents: document_paths
            .iter()
            .map(|path| {
                let response = get(server.ocsp_addr, path);
                (path.clone(), (response.status, sha256_hex(&response.body)))
            })
            .collect(),
    }
}

/// Every demo certificate's status as `openssl ocsp` (POST, verified against the demo
/// root) reports it, checked against the index: `revoked_ec` is revoked on top of it.
fn every_answer(ocsp: SocketAddr, revoked_ec: &str) -> BTreeMap<String, String> {
    let rows: Vec<(&str, IndexRow)> = ["ec", "rsa"]
        .into_iter()
        .flat_map(|issuer| index_rows(issuer).into_iter().map(move |row| (issuer, row)))
        .collect();
    let halves = rows.split_at(rows.len() / 2);
    let answers = std::thread::scope(|scope| {
        let ask = |part: &[(&str, IndexRow)]| {
            part.iter()
                .map(|(issuer, row)| {
                    let (status, out) = openssl_status(ocsp, &issuer_ca(issuer), &row.cert(issuer), false);
                    let expected = match (row.status, *issuer == "ec" && row.serial == revoked_ec) {
                        ('R', _) | (_, true) => "revoked",
                        ('V', false) => "good",
                        // Expired and so no longer published: refused, not `good`.
                        _ => "<none>",
                    };
                    assert_eq!(status, expected, "{issuer} {}: {out}", row.serial);
                    if expected == "<none>" {
                        assert!(
                            out.stdout.contains("unauthorized"),
                            "{issuer} {}: {out}",
                            row.serial
                        );
                    } else {
                        assert!(
                            out.stderr.contains("Response verify OK"),
                            "{issuer} {}: {out}",
                            row.serial
                        );
                    }
                    (format!("{issuer}/{}", row.serial), out.stdout)
                })
                .collect::<Vec<_>>()
        };
        let first = scope.spawn(move || ask(halves.0));
        let mut answers = ask(halves.1);
        answers.extend(first.join().unwrap());
        answers
    });
    answers.into_iter().collect()
}

/// The status `openssl ocsp` reads from `response` for `cert` of the EC issuer (verified
/// against the demo root), or why it could not.
fn openssl_reads(response: &[u8], cert: &Path) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), response).unwrap();
    let (respin, issuer, cert_text, root) = (
        file.path().display().to_string(),
        issuer_ca("ec").display().to_string(),
        cert.display().to_string(),
        root_ca().display().to_string(),
    );
    let out = openssl(&[
        "ocsp",
        "-respin",
        &respin,
        "-issuer",
        &issuer,
        "-cert",
        &cert_text,
        "-CAfile",
        &root,
        "-no_nonce",
    ]);
    let status = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{cert_text}: ")))
        .unwrap_or("<none>")
        .trim()
        .to_string();
    if out.stderr.contains("Response verify OK") {
        status
    } else {
        format!("unverified {status}: {out}")
    }
}

/// A forged snapshot, ready to drop: its sequence, manifest, file and the refusal expected.
struct Attack {
    what: &'static str,
    sequence: u64,
    manifest: Vec<u8>,
    snapshot: Vec<u8>,
    reason: &'static str,
}

/// The genuine snapshot the victim serves, as files.
struct Genuine {
    manifest: Vec<u8>,
    snapshot: Vec<u8>,
}

impl Genuine {
    fn read(report: &PublishReport) -> Genuine {
        Genuine {
            manifest: std::fs::read(&report.manifest).unwrap(),
            snapshot: std::fs::read(&report.snapshot).unwrap(),
        }
    }

    fn document(&self, path: &str) -> Document {
        let metadata = snapshot::read_metadata(&self.snapshot).unwrap();
        metadata.documents.into_iter().find(|d| d.path == path).unwrap()
    }
}

/// Re-signs `genuine` (both issuers listed) at `sequence` with `signers`, its metadata
/// edited by `edit`: what holders of those OCSP signer keys, but of no CA key, can make.
fn resigned(
    genuine: &Genuine,
    sequence: u64,
    signers: &[&str],
    edit: impl FnOnce(&mut snapshot::Metadata, &mut Vec<u8>),
) -> (Vec<u8>, Vec<u8>) {
    let snapshot = forge_snapshot(&genuine.snapshot, |metadata, out| {
        metadata.sequence = sequence;
        edit(metadata, out)
    });
    let manifest = forge_manifest(
        &genuine.manifest,
        &snapshot,
        &demo_plan(UnixTime::now()),
        signers,
        |body| {
            body.sequence = sequence;
            body.snapshot = snapshot::snapshot_name(sequence);
        },
    );
    (manifest, snapshot)
}

/// A document served at an OCSP GET path, as the attacker would describe it.
fn planted_at(path: &str, issuer: &str, now: UnixTime) -> Document {
    Document {
        path: path.to_string(),
        kind: DocumentKind::CrlFull,
        issuer: issuer.to_string(),
        content_type: "application/ocsp-response".to_string(),
        offset: 0,
        length: 0,
        sha256: String::new(),
        this_update: now.seconds(),
        next_update: now.plus_seconds(10 * 86_400).seconds(),
        crl_number: None,
    }
}

#[test]
fn forged_manifests_and_snapshots_change_nothing_and_are_counted() {
    if skip_without(
        "forged_manifests_and_snapshots_change_nothing_and_are_counted",
        not_on_path("openssl"),
    ) {
        return;
    }
    let now = UnixTime::now();
    // The victim certificate: good in the demo, revoked by this CA.
    let victim = first_with_status("ec", 'V');
    let victim_request = openssl_request(&issuer_ca("ec"), &victim.cert("ec"), false, false);
    let victim_get = get_path("/", &victim_request);

    // Recorded while it was still good: what an attacker replays.
    let old_good = {
        let before = start_demo_server(vec![]);
        let response = get(before.addr(), &victim_get);
        assert_eq!(openssl_reads(&response.body, &victim.cert("ec")), "good");
        response.body
    };

    let pki = Pki::new();
    pki.revoke_ec(&victim.serial);
    let dir = tempfile::tempdir().unwrap();
    let initial = pki.publish(dir.path());
    let genuine = Genuine::read(&initial);
    let server = Background::start(config_for(dir.path(), &demo_trust(), vec![])).expect("server start");
    assert!(wait_for_sequence(
        server.admin_addr,
        initial.sequence,
        REFUSAL_WAIT
    ));
    let document_paths: Vec<String> = snapshot::read_metadata(&genuine.snapshot)
        .unwrap()
        .documents
        .iter()
        .map(|d| d.path.clone())
        .collect();
    assert!(
        document_paths.contains(&"/crl/ec.crl".to_string()),
        "{document_paths:?}"
    );
    let before = observe(&server, dir.path(), &document_paths);
    assert_eq!(before.readyz, 200);
    assert!(
        before.highest_sequence_file.is_some(),
        "the served sequence is persisted"
    );
    assert!(
        before.documents.values().all(|(status, _)| *status == 200),
        "{before:?}"
    );
    let answers_before = every_answer(server.ocsp_addr, &victim.serial);
    let victim_answer = |server: &Background| {
        let response = get(server.ocsp_addr, &victim_get);
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.header("content-type"), Some("application/ocsp-response"));
        openssl_reads(&response.body, &victim.cert("ec"))
    };
    assert_eq!(victim_answer(&server), "revoked");

    let mut attacks = Vec::new();

    // Finding 1: no issuers, no signatures, sequence u64::MAX, a snapshot of nothing.
    let (empty, _) = snapshot::SnapshotWriter::new(Vec::new(), u64::MAX, now)
        .unwrap()
        .finish()
        .unwrap();
    attacks.push(Attack {
        what: "unsigned manifest listing no issuers, sequence u64::MAX",
        sequence: u64::MAX,
        manifest: forge_manifest(&genuine.manifest, &empty, &demo_plan(now), &[], |body| {
            body.sequence = u64::MAX;
            body.snapshot = snapshot::snapshot_name(u64::MAX);
            body.issuers.clear();
        }),
        snapshot: empty,
        reason: "issuer_set",
    });

    // Finding 2a: the RSA signer alone publishes a genuine snapshot listing only rsa.
    let rsa_only = {
        let mut plan = demo_plan(now);
        plan.issuers.retain(|i| i.name == "rsa");
        plan.issuers[0].crl = None; // the attacker holds no CA key
        plan.sequence_floor = initial.sequence + 1;
        let out = tempfile::tempdir().unwrap();
        let report = ocsp_edge::publish::publish(&plan, out.path(), now, &mut |_| {}).unwrap();
        assert_eq!(report.sequence, initial.sequence + 1);
        Genuine::read(&report)
    };
    attacks.push(Attack {
        what: "snapshot listing only rsa, properly signed by the RSA signer",
        sequence: initial.sequence + 1,
        manifest: rsa_only.manifest.clone(),
        snapshot: rsa_only.snapshot.clone(),
        reason: "issuer_set",
    });

    // Finding 2b, as reported: the RSA-only snapshot, plus the old `good` response planted
    // at the revoked EC certificate's GET path.
    let (manifest, snapshot) = {
        let sequence = initial.sequence + 2;
        let snapshot = forge_snapshot(&rsa_only.snapshot, |metadata, out| {
            metadata.sequence = sequence;
            plant_document(metadata, out, planted_at(&victim_get, "rsa", now), &old_good);
        });
        let manifest = forge_manifest(&rsa_only.manifest, &snapshot, &demo_plan(now), &["rsa"], |body| {
            body.sequence = sequence;
            body.snapshot = snapshot::snapshot_name(sequence);
        });
        (manifest, snapshot)
    };
    attacks.push(Attack {
        what: "RSA signer alone plants an old good response at an EC certificate's GET path",
        sequence: initial.sequence + 2,
        manifest,
        snapshot,
        reason: "issuer_set",
    });

    // The same plant with both OCSP signers' keys (but no CA key): still refused, for the
    // path.
    let (manifest, snapshot) = resigned(&genuine, initial.sequence + 3, &["ec", "rsa"], |metadata, out| {
        plant_document(metadata, out, planted_at(&victim_get, "ec", now), &old_good);
    });
    attacks.push(Attack {
        what: "both OCSP signers plant an old good response at an OCSP GET path",
        sequence: initial.sequence + 3,
        manifest,
        snapshot,
        reason: "bad_document",
    });

    // The EC CRL swapped for the old response, served as a CRL.
    let ec_crl = genuine.document("/crl/ec.crl");
    let (manifest, snapshot) = resigned(&genuine, initial.sequence + 4, &["ec", "rsa"], |metadata, out| {
        plant_document(metadata, out, ec_crl, &old_good);
    });
    attacks.push(Attack {
        what: "a CRL document whose bytes are an OCSP response",
        sequence: initial.sequence + 4,
        manifest,
        snapshot,
        reason: "bad_document",
    });

    // A properly signed sequence two days ahead: accepted, it would lift the
    // anti-rollback floor past every genuine publish for two days.
    let future = initial.sequence + 2 * 86_400;
    let (manifest, snapshot) = resigned(&genuine, future, &["ec", "rsa"], |_, _| {});
    attacks.push(Attack {
        what: "a properly signed sequence two days in the future",
        sequence: future,
        manifest,
        snapshot,
        reason: "future_sequence",
    });

    for attack in attacks {
        let counted = snapshots_refused(server.admin_addr, attack.reason);
        drop_into(dir.path(), attack.sequence, &attack.manifest, &attack.snapshot);
        assert!(
            wait_until(REFUSAL_WAIT, || snapshots_refused(
                server.admin_addr,
                attack.reason
            ) > counted),
            "{}: not refused as {}",
            attack.what,
            attack.reason
        );
        assert_eq!(
            observe(&server, dir.path(), &document_paths),
            before,
            "{}: something changed",
            attack.what
        );
        assert_eq!(victim_answer(&server), "revoked", "{}", attack.what);
    }
    assert_eq!(every_answer(server.ocsp_addr, &victim.serial), answers_before);

    // The forged files sit in what is also the publisher's directory: the publisher
    // refuses to number past a poisoned store instead of wrapping u64::MAX + 1.
    let plan = ocsp_edge::publish::PublishConfig::from_file(&pki.toml())
        .unwrap()
        .load(UnixTime::now())
        .unwrap();
    let poisoned = ocsp_edge::publish::publish(&plan, dir.path(), UnixTime::now(), &mut |_| {});
    let message = poisoned.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("18446744073709551615") && message.contains("clock"),
        "{message}"
    );

    // Once an operator removes them, the next genuine snapshot is served at once.
    for sequence in snapshot::manifest_sequences(dir.path()).unwrap() {
        if sequence > initial.sequence {
            std::fs::remove_file(dir.path().join(snapshot::manifest_name(sequence))).unwrap();
            let _ = std::fs::remove_file(dir.path().join(snapshot::snapshot_name(sequence)));
        }
    }
    let mut plan = plan;
    plan.sequence_floor = initial.sequence + 10;
    let next = ocsp_edge::publish::publish(&plan, dir.path(), UnixTime::now(), &mut |_| {}).unwrap();
    assert!(wait_for_sequence(server.admin_addr, next.sequence, REFUSAL_WAIT));
    assert_eq!(victim_answer(&server), "revoked");
}

/// The same forgeries offered by an HTTP mirror (a CDN or bucket the attacker controls):
/// replication refuses each from its manifest alone, before it downloads anything, so the
/// snapshot the manifest names is never even requested, and the cache stays as it was.
#[test]
fn a_mirror_offering_a_forged_manifest_is_refused_before_any_download() {
    if skip_without(
        "a_mirror_offering_a_forged_manifest_is_refused_before_any_download",
        not_on_path("openssl"),
    ) {
        return;
    }
    let now = UnixTime::now();
    let publisher = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let genuine_report = publish_demo(publisher.path());
    let genuine = Genuine::read(&genuine_report);
    let mirror = Mirror::start(publisher.path());
    let edge = Background::start(config_with_sources(
        cache.path(),
        &http_source(&mirror.url()),
        vec![],
    ))
    .expect("edge start");
    assert!(wait_for_sequence(
        edge.admin_addr,
        genuine_report.sequence,
        REFUSAL_WAIT
    ));
    let revoked = first_with_status("ec", 'R');
    // highest-sequence is written just after the swap.
    let highest = cache.path().join("highest-sequence");
    assert!(wait_until(REFUSAL_WAIT, || highest.exists()));
    let before = dir_contents(cache.path());
    let names = |contents: &[(String, Vec<u8>)]| contents.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();

    // Finding 2a: the RSA signer alone, listing only rsa.
    let rsa_only = {
        let mut plan = demo_plan(now);
        plan.issuers.retain(|i| i.name == "rsa");
        plan.issuers[0].crl = None;
        plan.sequence_floor = genuine_report.sequence + 1;
        let out = tempfile::tempdir().unwrap();
        Genuine::read(&ocsp_edge::publish::publish(&plan, out.path(), now, &mut |_| {}).unwrap())
    };
    // Properly signed by both OCSP signers, two days ahead.
    let future = genuine_report.sequence + 2 * 86_400;
    let (future_manifest, future_snapshot) = resigned(&genuine, future, &["ec", "rsa"], |_, _| {});
    for (what, manifest, snapshot, reason) in [
        ("RSA-only", rsa_only.manifest, rsa_only.snapshot, "issuer_set"),
        (
            "two days ahead",
            future_manifest,
            future_snapshot,
            "future_sequence",
        ),
    ] {
        let name = ocsp_edge::snapshot::Manifest::parse(&manifest)
            .unwrap()
            .body
            .snapshot;
        mirror.serve_bytes(&name, snapshot);
        let counted = snapshots_refused(edge.admin_addr, reason);
        mirror.serve_bytes("latest.manifest.json", manifest);
        assert!(
            wait_until(REFUSAL_WAIT, || snapshots_refused(edge.admin_addr, reason)
                > counted),
            "{what}: not refused as {reason}; manifest requests {}\n{}",
            mirror.requests("latest.manifest.json"),
            metrics(edge.admin_addr)
                .lines()
                .filter(|l| l.contains("refused") || l.contains("sync_"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert_eq!(mirror.requests(&name), 0, "{what}: the snapshot was downloaded");
        let after = dir_contents(cache.path());
        assert!(
            after == before,
            "{what}: the cache changed: {:?} -> {:?}",
            names(&before),
            names(&after)
        );
        assert_eq!(
            edge.state.current_sequence(),
            Some(genuine_report.sequence),
            "{what}"
        );
        let (status, out) = openssl_status(edge.ocsp_addr, &issuer_ca("ec"), &revoked.cert("ec"), false);
        assert_eq!(status, "revoked", "{what}: {out}");
    }
}
