//! Hostile replication: a mirror that drips the genuine newer snapshot, a replica that
//! receives a manifest before its snapshot, a damaged `highest-sequence` file, a manifest
//! that fails verification, and a publisher directory whose snapshot file is truncated
//! under a responder that maps it.

use crate::common::*;
use ocsp_edge::server::Background;
use ocsp_edge::snapshot;
use std::time::{Duration, Instant};

/// Bound for convergence that should take well under a second.
const CONVERGE: Duration = Duration::from_secs(10);

fn assert_status(ocsp: std::net::SocketAddr, row: &IndexRow, expected: &str, what: &str) {
    let (status, out) = openssl_status(ocsp, &issuer_ca("ec"), &row.cert("ec"), false);
    assert_eq!(status, expected, "{what}: {out}");
    assert!(out.stderr.contains("Response verify OK"), "{what}: {out}");
}

/// A mirror listed first replays the genuine newer manifest and drips its snapshot one
/// byte a second; a directory source listed second holds the same revocation. The
/// responder must serve the revocation from the directory at once, not wait for the
/// mirror (on the old code a global download lock held the directory source back for the
/// whole drip).
#[test]
fn a_dripping_mirror_does_not_hold_back_a_revocation_held_by_another_source() {
    let pki = Pki::new();
    let publisher = tempfile::tempdir().unwrap();
    let directory = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = pki.publish(publisher.path()).sequence;
    copy_sequence(publisher.path(), directory.path(), first);
    let mirror = Mirror::start(publisher.path());
    let sources = http_source(&mirror.url()) + &directory_source(directory.path());
    // A generous deadline: what is tested is that sources do not wait for each other.
    let edge = Background::start(config_with_sources(
        cache.path(),
        &sources,
        vec![("snapshots.download_deadline", "60s".into())],
    ))
    .unwrap();
    assert!(wait_until(CONVERGE, || edge.state.current_sequence() == Some(first)));

    let victim = first_with_status("ec", 'V');
    pki.revoke_ec(&victim.serial);
    // Sequences are at least the publish time: the next one is known in advance.
    let next = snapshot::highest_sequence(publisher.path()).unwrap() + 1;
    let next = next.max(ocsp_edge::time::UnixTime::now().seconds() as u64);
    for sequence in next..next + 5 {
        mirror.drip(&snapshot::snapshot_name(sequence), Duration::from_secs(1));
    }
    let revoked = pki.publish(publisher.path()).sequence;
    assert!(revoked < next + 5, "{revoked} was not expected");
    let snapshot = snapshot::snapshot_name(revoked);
    assert!(
        wait_until(CONVERGE, || mirror.requests(&snapshot) >= 1),
        "the edge never asked the mirror for the new snapshot"
    );
    std::thread::sleep(Duration::from_millis(300));
    let published = Instant::now();
    copy_sequence(publisher.path(), directory.path(), revoked);
    let served = wait_until(Duration::from_secs(5), || {
        edge.state.current_sequence() == Some(revoked)
    });
    assert!(
        served,
        "still serving {:?} {:?} after the directory source got {revoked}\n{}",
        edge.state.current_sequence(),
        published.elapsed(),
        metrics(edge.admin_addr)
    );
    println!(
        "revocation served {:?} after it reached the directory source",
        published.elapsed()
    );
    assert_status(edge.ocsp_addr, &victim, "revoked", "after the swap");
}

/// A mirror that drips a snapshot slower than `snapshots.min_download_rate` is abandoned
/// at the download deadline and counted, not waited for forever.
#[test]
fn a_dripping_download_is_abandoned_at_its_deadline() {
    let publisher = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let sequence = publish_demo(publisher.path()).sequence;
    let mirror = Mirror::start(publisher.path());
    mirror.drip(&snapshot::snapshot_name(sequence), Duration::from_millis(500));
    let edge = Background::start(config_with_sources(
        cache.path(),
        &http_source(&mirror.url()),
        vec![("snapshots.download_deadline", "1s".into())],
    ))
    .unwrap();
    assert!(
        wait_until(CONVERGE, || snapshots_refused(edge.admin_addr, "deadline") >= 1.0),
        "no download abandoned at its deadline\n{}",
        metrics(edge.admin_addr)
    );
    assert_eq!(edge.state.current_sequence(), None);
    assert!(
        dir_contents(cache.path()).is_empty(),
        "an abandoned download left {:?}",
        dir_contents(cache.path())
            .iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>()
    );
}

/// rsync copies in name order, so a replica gets `N.manifest.json` before `N.snapshot`.
/// A responder polling that replica (no sources) must serve N once the snapshot arrives,
/// not remember the early refusal forever.
#[test]
fn a_manifest_copied_before_its_snapshot_is_served_once_the_snapshot_arrives() {
    let pki = Pki::new();
    let publisher = tempfile::tempdir().unwrap();
    let replica = tempfile::tempdir().unwrap();
    let first = pki.publish(publisher.path()).sequence;
    copy_sequence(publisher.path(), replica.path(), first);
    let edge = Background::start(config_for(replica.path(), &demo_trust(), vec![])).unwrap();
    assert_eq!(edge.state.current_sequence(), Some(first));

    let victim = first_with_status("ec", 'V');
    pki.revoke_ec(&victim.serial);
    let revoked = pki.publish(publisher.path()).sequence;
    std::fs::copy(
        publisher.path().join(snapshot::manifest_name(revoked)),
        replica.path().join(snapshot::manifest_name(revoked)),
    )
    .unwrap();
    assert!(
        wait_until(CONVERGE, || snapshots_refused(edge.admin_addr, "io") >= 1.0),
        "the manifest without its snapshot was not even tried\n{}",
        metrics(edge.admin_addr)
    );
    std::thread::sleep(Duration::from_millis(500));
    // As rsync does: a temporary name, then a rename.
    let partial = replica.path().join(".snapshot.partial");
    std::fs::copy(publisher.path().join(snapshot::snapshot_name(revoked)), &partial).unwrap();
    std::fs::rename(&partial, replica.path().join(snapshot::snapshot_name(revoked))).unwrap();
    assert!(
        wait_until(CONVERGE, || edge.state.current_sequence() == Some(revoked)),
        "{revoked} never served after its snapshot arrived\n{}",
        metrics(edge.admin_addr)
    );
    assert_status(edge.ocsp_addr, &victim, "revoked", "after the snapshot arrived");
}

/// A damaged `highest-sequence` must not read as 0: the responder serves the newest
/// snapshot it verifies locally, refuses an older genuine one a source offers, says so in
/// a metric, and leaves the file for an operator — also after a newer snapshot arrives.
#[test]
fn a_damaged_highest_sequence_fails_closed() {
    for damaged in ["123x\n", ""] {
        let publisher = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let older = publish_demo(publisher.path()).sequence;
        let newer = publish_demo(publisher.path()).sequence;
        // The cache holds the newer snapshot; the mirror offers only the older one.
        copy_sequence(publisher.path(), cache.path(), newer);
        std::fs::write(cache.path().join("highest-sequence"), damaged).unwrap();
        let stale = tempfile::tempdir().unwrap();
        copy_sequence(publisher.path(), stale.path(), older);
        let mirror = Mirror::start(stale.path());
        mirror.serve_bytes(
            "latest.manifest.json",
            std::fs::read(stale.path().join(snapshot::manifest_name(older))).unwrap(),
        );
        let edge = Background::start(config_with_sources(
            cache.path(),
            &http_source(&mirror.url()),
            vec![],
        ))
        .unwrap();
        let what = format!("highest-sequence {damaged:?}");
        assert_eq!(edge.state.current_sequence(), Some(newer), "{what}");
        assert!(
            wait_until(CONVERGE, || snapshots_refused(edge.admin_addr, "rollback") >= 1.0),
            "{what}: the older offer was not refused\n{}",
            metrics(edge.admin_addr)
        );
        let text = metrics(edge.admin_addr);
        assert_eq!(
            metric(&text, "ocsp_edge_rollback_state_unreadable"),
            Some(1.0),
            "{what}\n{text}"
        );
        assert_eq!(
            metric(&text, "ocsp_edge_highest_sequence"),
            Some(newer as f64),
            "{what}"
        );
        assert_eq!(edge.state.current_sequence(), Some(newer), "{what}");

        // A newer genuine snapshot is still served, and the damaged file stays as found.
        let newest = publish_demo(publisher.path()).sequence;
        copy_sequence(publisher.path(), stale.path(), newest);
        mirror.serve_bytes(
            "latest.manifest.json",
            std::fs::read(stale.path().join(snapshot::manifest_name(newest))).unwrap(),
        );
        assert!(
            wait_until(CONVERGE, || edge.state.current_sequence() == Some(newest)),
            "{what}: the newer snapshot was not served"
        );
        assert_eq!(
            std::fs::read_to_string(cache.path().join("highest-sequence")).unwrap(),
            damaged,
            "{what}: the damaged file was overwritten before an operator looked at it"
        );
    }
}

/// A manifest that does not verify (here: unsigned, with no issuers, naming the
/// `highest-sequence` file as its snapshot and claiming 10 GB) changes nothing in the
/// cache: no file deleted, created or changed, `highest-sequence` as it was.
#[test]
fn a_manifest_that_fails_verification_changes_nothing_on_disk() {
    let publisher = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let genuine = publish_demo(publisher.path()).sequence;
    copy_sequence(publisher.path(), cache.path(), genuine);
    std::fs::write(cache.path().join("highest-sequence"), format!("{genuine}\n")).unwrap();
    // An orphaned snapshot (no manifest) of the next sequence, as a crash leaves one.
    let orphan = snapshot::snapshot_name(genuine + 1);
    std::fs::write(cache.path().join(&orphan), b"left by a crash").unwrap();

    let mut forged: serde_json::Value = serde_json::from_slice(
        &std::fs::read(publisher.path().join(snapshot::manifest_name(genuine))).unwrap(),
    )
    .unwrap();
    forged["body"]["sequence"] = (genuine + 1).into();
    forged["body"]["issuers"] = serde_json::json!([]);
    forged["signatures"] = serde_json::json!([]);
    forged["body"]["size"] = 10_000_000_000u64.into();
    let mirror = Mirror::start(publisher.path());
    let mut variants = Vec::new();
    for target in ["highest-sequence", orphan.as_str()] {
        let mut manifest = forged.clone();
        manifest["body"]["snapshot"] = target.into();
        variants.push(serde_json::to_vec(&manifest).unwrap());
    }
    // The mirror serves 100 bytes of garbage for whatever it is asked.
    mirror.serve_bytes("highest-sequence", vec![0x5a; 100]);
    mirror.serve_bytes(&orphan, vec![0x5a; 100]);
    let before = dir_contents(cache.path());
    let edge = Background::start(config_with_sources(
        cache.path(),
        &http_source(&mirror.url()),
        vec![],
    ))
    .unwrap();
    assert_eq!(edge.state.current_sequence(), Some(genuine));
    for manifest in variants {
        let rounds = mirror.requests("latest.manifest.json");
        mirror.serve_bytes("latest.manifest.json", manifest);
        assert!(
            wait_until(CONVERGE, || mirror.requests("latest.manifest.json") >= rounds + 3),
            "the edge stopped polling the mirror"
        );
        assert_eq!(edge.state.current_sequence(), Some(genuine));
        // A download in flight has a temporary file of its own (`.tmp-…-download`) until
        // it is refused; once it is, the cache must be exactly as it was.
        let unchanged = wait_until(Duration::from_secs(2), || dir_contents(cache.path()) == before);
        let after: Vec<String> = dir_contents(cache.path()).into_iter().map(|(n, _)| n).collect();
        assert!(
            unchanged,
            "the cache changed because of a manifest that does not verify: {after:?}"
        );
    }
    let text = metrics(edge.admin_addr);
    assert_eq!(metric(&text, "ocsp_edge_highest_sequence"), Some(genuine as f64));
    let refusals: f64 = text
        .lines()
        .filter(|l| l.starts_with("ocsp_edge_snapshots_refused_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        refusals >= 2.0,
        "the forged manifests were not counted as refusals\n{text}"
    );
    assert_status(
        edge.ocsp_addr,
        &first_with_status("ec", 'R'),
        "revoked",
        "still the genuine snapshot",
    );
}

/// Truncating the snapshot file a responder serves from a publisher's directory (no
/// sources: the file is not the responder's) must not kill it (it was SIGBUS on the next
/// request that touched a vanished page); answers stay those of the verified snapshot.
#[test]
fn truncating_the_snapshot_a_no_sources_responder_serves_does_not_kill_it() {
    let publisher = tempfile::tempdir().unwrap();
    let report = publish_demo(publisher.path());
    let toml = format!(
        "[snapshots]\ndir = {:?}\npoll_interval = \"100ms\"\n",
        publisher.path().display().to_string()
    );
    let (edge, _config) = ServeProcess::start(&toml, &[]);
    assert!(
        wait_for_sequence(edge.admin, report.sequence, CONVERGE),
        "{}",
        edge.log()
    );
    let crl = "/crl/ec.crl";
    let crl_before = get(edge.ocsp, crl);
    assert_eq!(crl_before.status, 200);

    std::fs::File::options()
        .write(true)
        .open(&report.snapshot)
        .unwrap()
        .set_len(0)
        .unwrap();
    for _ in 0..20 {
        let answer = post(edge.ocsp, &good_request());
        assert_eq!(ocsp_response_status(&answer.body), Some(0), "{}", edge.log());
        let crl_after = get(edge.ocsp, crl);
        assert_eq!(crl_after.status, 200, "{}", edge.log());
        assert_eq!(crl_after.body, crl_before.body);
    }
    // Rewritten in place with other bytes of the same length: still the verified answers.
    std::fs::write(&report.snapshot, vec![0u8; report.size as usize]).unwrap();
    let answer = post(edge.ocsp, &good_request());
    assert_eq!(ocsp_response_status(&answer.body), Some(0), "{}", edge.log());
    assert_eq!(get(edge.ocsp, crl).body, crl_before.body);
    assert_status(
        edge.ocsp,
        &first_with_status("ec", 'R'),
        "revoked",
        "after truncation",
    );
    assert_eq!(
        metric(&metrics(edge.admin), "ocsp_edge_snapshot_sequence"),
        Some(report.sequence as f64)
    );
}

/// A disk that refuses the `highest-sequence` write (here: a directory in its place) makes
/// the write an error that is counted, flagged and retried every round — not a warning
/// forgotten at once; the newer snapshot still serves, and the file is written as soon as
/// the disk allows.
#[test]
fn a_failed_write_of_highest_sequence_is_counted_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let first = publish_demo(dir.path()).sequence;
    let edge = Background::start(config_for(dir.path(), &demo_trust(), vec![])).unwrap();
    assert_eq!(edge.state.current_sequence(), Some(first));
    let file = dir.path().join("highest-sequence");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{first}\n"));
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    std::fs::write(file.join("in-the-way"), b"").unwrap();

    let second = publish_demo(dir.path()).sequence;
    assert!(wait_until(CONVERGE, || edge.state.current_sequence() == Some(second)));
    let failing = wait_until(CONVERGE, || {
        let text = metrics(edge.admin_addr);
        metric(&text, "ocsp_edge_highest_sequence_unpersisted") == Some(1.0)
            && metric(&text, "ocsp_edge_highest_sequence_write_failures_total").unwrap_or(0.0) >= 2.0
    });
    assert!(
        failing,
        "the failed write was not flagged and retried\n{}",
        metrics(edge.admin_addr)
    );
    assert_eq!(
        metric(&metrics(edge.admin_addr), "ocsp_edge_highest_sequence"),
        Some(second as f64)
    );

    std::fs::remove_dir_all(&file).unwrap();
    let written = wait_until(CONVERGE, || {
        std::fs::read_to_string(&file).ok() == Some(format!("{second}\n"))
            && metric(
                &metrics(edge.admin_addr),
                "ocsp_edge_highest_sequence_unpersisted",
            ) == Some(0.0)
    });
    assert!(
        written,
        "never persisted once the disk allowed it\n{}",
        metrics(edge.admin_addr)
    );
}
