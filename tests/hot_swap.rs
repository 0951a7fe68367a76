//! Hot-swapping snapshots under a running server: a new revocation reaches clients without
//! a failed request, and tampered, rolled-back or untrusted snapshots are refused while the
//! current one keeps serving.

mod common;

use common::*;
use ocsp_edge::publish::PublishConfig;
use ocsp_edge::server::Background;
use ocsp_edge::snapshot;
use ocsp_edge::time::UnixTime;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to wait for something that normally takes well under a second: a bound, not a
/// target, generous because CI runs this beside other test binaries on two cores.
const SWAP_WAIT: Duration = Duration::from_secs(30);

/// Copies the demo PKI (both issuers, the root, publish.toml) into `dir`.
fn copy_demo_pki(dir: &Path) {
    for sub in ["root", "ec", "rsa"] {
        copy_dir(&demo().join(sub), &dir.join(sub));
    }
    std::fs::copy(demo().join("publish.toml"), dir.join("publish.toml")).unwrap();
}

/// Copies a published snapshot's files into `to`, snapshot first and manifest last (the
/// order a replicating tool must keep).
fn copy_published(snapshot: &Path, manifest: &Path, to: &Path) {
    std::fs::copy(snapshot, to.join(snapshot.file_name().unwrap())).unwrap();
    std::fs::copy(manifest, to.join(manifest.file_name().unwrap())).unwrap();
}

struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<ClientLog>>,
}

/// What one load client saw: its failures, and the SHA-256 of every answer it got for the
/// first request of the mix, in order.
#[derive(Default)]
struct ClientLog {
    problems: Vec<String>,
    first_answers: Vec<String>,
}

/// `clients` threads POSTing `requests` round-robin over keep-alive connections until
/// stopped (or 120 s at most), each checking for HTTP 200 and a successful OCSP response.
fn start_load(addr: std::net::SocketAddr, clients: usize, requests: Vec<Vec<u8>>) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let requests = Arc::new(requests);
    let threads = (0..clients)
        .map(|client| {
            let (stop, done, failures, requests) =
                (stop.clone(), done.clone(), failures.clone(), requests.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut log = ClientLog::default();
                let mut conn = None;
                let mut i = client;
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let first = i % requests.len() == 0;
                    let request = &requests[i % requests.len()];
                    i += 1;
                    let result = match conn.as_mut() {
                        Some(c) => Conn::post(c, request),
                        None => Conn::try_connect(addr).and_then(|c| Conn::post(conn.insert(c), request)),
                    };
                    let problem = match result {
                        Ok(r) if r.status == 200 && is_successful(&r.body) => {
                            if first {
                                log.first_answers.push(sha256_hex(&r.body));
                            }
                            None
                        }
                        Ok(r) => Some(format!("status {} body {:02x?}", r.status, r.body)),
                        Err(e) => {
                            conn = None;
                            Some(format!("i/o: {e}"))
                        }
                    };
                    if let Some(problem) = problem {
                        failures.fetch_add(1, Ordering::Relaxed);
                        log.problems.push(problem);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                log
            })
        })
        .collect();
    Load {
        stop,
        done,
        failures,
        threads,
    }
}

impl Load {
    /// Stops the clients: (requests completed, failures, each client's log).
    fn finish(&mut self) -> (u64, u64, Vec<ClientLog>) {
        self.stop.store(true, Ordering::Relaxed);
        let logs = self.threads.drain(..).map(|t| t.join().unwrap()).collect();
        (
            self.done.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            logs,
        )
    }
}

impl Drop for Load {
    /// A failing test must not leave clients running.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn a_new_revocation_is_swapped_in_under_load_without_failures() {
    let server = start_demo_server(vec![]);
    let admin = server.admin();
    assert_eq!(served_sequence(admin), Some(server.initial.sequence));

    // The certificate to revoke, and a mix of requests for the load.
    let rows = index_rows("ec");
    let victim = rows.iter().filter(|r| r.status == 'V').nth(2).unwrap().clone();
    let victim_request = openssl_request(&issuer_ca("ec"), &victim.cert("ec"), false, false);
    let before = post(server.addr(), &victim_request);
    assert!(is_successful(&before.body));
    let requests = vec![
        victim_request.clone(),
        good_request(),
        openssl_request(
            &issuer_ca("rsa"),
            &first_with_status("rsa", 'V').cert("rsa"),
            true,
            false,
        ),
        openssl_request(
            &issuer_ca("rsa"),
            &first_with_status("rsa", 'R').cert("rsa"),
            false,
            true,
        ),
        openssl_request(
            &issuer_ca("ec"),
            &first_with_status("ec", 'R').cert("ec"),
            true,
            false,
        ),
    ];
    let mut load = start_load(server.addr(), 4, requests);
    assert!(
        wait_until(SWAP_WAIT, || load.done.load(Ordering::Relaxed) >= 50),
        "load did not start"
    );

    // The CA revokes the victim; publish into the served directory.
    let pki = tempfile::tempdir().unwrap();
    copy_demo_pki(pki.path());
    let index = pki.path().join("ec/index.txt");
    let text = std::fs::read_to_string(&index).unwrap();
    let line = text
        .lines()
        .find(|l| l.split('\t').nth(3) == Some(victim.serial.as_str()))
        .unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    let revoked_line = format!(
        "R\t{}\t261101000000Z,keyCompromise\t{}",
        fields[1],
        fields[3..].join("\t")
    );
    std::fs::write(&index, text.replace(line, &revoked_line)).unwrap();
    let published = publish_from(&pki.path().join("publish.toml"), server.dir.path());
    assert!(published.sequence > server.initial.sequence);
    assert!(
        wait_for_sequence(admin, published.sequence, SWAP_WAIT),
        "new snapshot not picked up"
    );

    // Keep the load going a little past the swap.
    let at_swap = load.done.load(Ordering::Relaxed);
    wait_until(SWAP_WAIT, || {
        let done = load.done.load(Ordering::Relaxed);
        done > 200 && done >= at_swap + 100
    });
    let (done, failures, logs) = load.finish();
    println!("{done} requests during the swap test, {failures} failed");
    let problems: Vec<&String> = logs.iter().flat_map(|l| &l.problems).collect();
    assert_eq!(failures, 0, "failed requests during the swap: {problems:?}");
    assert!(done > 200, "only {done} requests completed");

    // Every answer about the victim was the old or the new pre-signed response, and each
    // client, once it saw the new one, never saw the old one again.
    let after = post(server.addr(), &victim_request);
    let (old, new) = (sha256_hex(&before.body), sha256_hex(&after.body));
    assert_ne!(old, new);
    for (client, log) in logs.iter().enumerate() {
        assert!(
            !log.first_answers.is_empty(),
            "client {client} never asked about the victim"
        );
        let switched = log
            .first_answers
            .iter()
            .position(|h| *h == new)
            .unwrap_or(log.first_answers.len());
        assert!(
            log.first_answers[..switched].iter().all(|h| *h == old)
                && log.first_answers[switched..].iter().all(|h| *h == new),
            "client {client} saw answers out of order"
        );
        assert_eq!(
            log.first_answers.last(),
            Some(&new),
            "client {client} never saw the revocation"
        );
    }
    assert_eq!(
        metric(&metrics(admin), "ocsp_edge_snapshot_loads_total"),
        Some(2.0)
    );

    // The real client now sees the revocation.
    let cert = victim.cert("ec").display().to_string();
    let ca = issuer_ca("ec").display().to_string();
    let root = root_ca().display().to_string();
    let out = openssl(&[
        "ocsp",
        "-issuer",
        &ca,
        "-cert",
        &cert,
        "-url",
        &server.url(),
        "-CAfile",
        &root,
        "-no_nonce",
    ]);
    assert!(out.success, "{out}");
    assert!(out.stderr.contains("Response verify OK"), "{out}");
    assert!(out.stdout.contains(&format!("{cert}: revoked")), "{out}");
    assert!(out.stdout.contains("\tReason: keyCompromise\n"), "{out}");
    assert!(
        out.stdout
            .contains("\tRevocation Time: Nov  1 00:00:00 2026 GMT\n"),
        "{out}"
    );
}

#[test]
fn a_tampered_snapshot_is_refused_and_the_current_one_keeps_serving() {
    let server = start_demo_server(vec![]);
    let admin = server.admin();
    let a = server.initial.sequence;

    // Publish B next to a copy of A's manifest (so B's sequence is above A's), then flip
    // one byte in the middle of B's snapshot.
    let staging = tempfile::tempdir().unwrap();
    std::fs::copy(
        &server.initial.manifest,
        staging.path().join(snapshot::manifest_name(a)),
    )
    .unwrap();
    let b = publish_demo(staging.path());
    assert!(b.sequence > a);
    let mut bytes = std::fs::read(&b.snapshot).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&b.snapshot, bytes).unwrap();
    copy_published(&b.snapshot, &b.manifest, server.dir.path());

    assert!(
        wait_until(SWAP_WAIT, || snapshots_refused(admin, "hash_mismatch") >= 1.0),
        "tampered snapshot not refused: {}",
        metrics(admin)
    );
    // Several more polls: refused once, not re-verified every poll.
    std::thread::sleep(Duration::from_millis(350));
    let text = metrics(admin);
    assert_eq!(
        metric(
            &text,
            r#"ocsp_edge_snapshots_refused_total{reason="hash_mismatch"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(served_sequence(admin), Some(a));
    assert_eq!(metric(&text, "ocsp_edge_snapshot_loads_total"), Some(1.0));
    assert_eq!(metric(&text, "ocsp_edge_ready"), Some(1.0));
    assert_still_serves(server.addr());
}

#[test]
fn a_renamed_old_manifest_is_refused_as_rollback() {
    let server = start_demo_server(vec![]);
    let admin = server.admin();
    let a = &server.initial;
    let c = publish_demo(server.dir.path());
    assert!(c.sequence > a.sequence);
    assert!(wait_for_sequence(admin, c.sequence, SWAP_WAIT));

    // A's manifest (which names A's snapshot, still present) under a higher file name.
    assert!(a.snapshot.exists());
    std::fs::copy(
        &a.manifest,
        server.dir.path().join(snapshot::manifest_name(c.sequence + 1)),
    )
    .unwrap();
    assert!(
        wait_until(SWAP_WAIT, || snapshots_refused(admin, "rollback") >= 1.0),
        "rolled-back manifest not refused: {}",
        metrics(admin)
    );
    assert_eq!(served_sequence(admin), Some(c.sequence));
    assert_still_serves(server.addr());

    // A genuinely newer snapshot is still accepted afterwards.
    let d = publish_demo(server.dir.path());
    assert!(d.sequence > c.sequence + 1);
    assert!(wait_for_sequence(admin, d.sequence, SWAP_WAIT));
    assert_eq!(snapshots_refused(admin, "rollback"), 1.0);
    assert_still_serves(server.addr());
}

#[test]
fn a_snapshot_signed_by_an_untrusted_signer_is_refused() {
    // The server answers only for the RSA issuer and serves an RSA-only snapshot.
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::now();
    let mut rsa_only = PublishConfig::from_file(&demo().join("publish.toml")).unwrap();
    rsa_only.issuers.retain(|i| i.name == "rsa");
    let plan = rsa_only.load(now).unwrap();
    let a = ocsp_edge::publish::publish(&plan, dir.path(), now, &mut |_| {}).unwrap();
    let server = Background::start(config_for(dir.path(), &[issuer_ca("rsa")], vec![])).unwrap();
    let admin = server.admin_addr;
    assert_eq!(served_sequence(admin), Some(a.sequence));

    // A snapshot that also covers the EC issuer, whose signer the server does not trust.
    let b = publish_demo(dir.path());
    assert!(b.sequence > a.sequence);
    assert!(
        wait_until(SWAP_WAIT, || snapshots_refused(admin, "untrusted_signer") >= 1.0),
        "untrusted snapshot not refused: {}",
        metrics(admin)
    );
    assert_eq!(served_sequence(admin), Some(a.sequence));

    let rsa = openssl_request(
        &issuer_ca("rsa"),
        &first_with_status("rsa", 'V').cert("rsa"),
        false,
        false,
    );
    let response = post(server.ocsp_addr, &rsa);
    assert!(is_successful(&response.body), "{response:?}");
    let response = post(server.ocsp_addr, &good_request());
    assert_eq!(response.body, UNAUTHORIZED, "the EC issuer is not served");
}

#[test]
fn without_a_fresh_snapshot_the_server_answers_try_later_and_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let server = Background::start(config_for(dir.path(), &demo_trust(), vec![])).unwrap();
    let (addr, admin) = (server.ocsp_addr, server.admin_addr);
    let readyz = || get(admin, "/readyz");

    // Nothing published yet.
    assert_eq!(post(addr, &good_request()).body, TRY_LATER);
    let response = readyz();
    assert_eq!(response.status, 503);
    assert!(
        String::from_utf8_lossy(&response.body).contains("no snapshot"),
        "{response:?}"
    );
    assert_eq!(get(admin, "/healthz").status, 200);

    // A snapshot whose responses have all passed nextUpdate is loaded but never served.
    let toml = demo().join("publish.toml");
    let now = UnixTime::now();
    let expired = publish_at(&toml, dir.path(), now.plus_seconds(-97 * 3600));
    assert!(wait_for_sequence(admin, expired.sequence, SWAP_WAIT));
    let response = post(addr, &good_request());
    assert_eq!(response.body, TRY_LATER);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(readyz().status, 503);

    // Fresh, but within `not_ready_before_expiry` (1h) of nextUpdate: served, not ready.
    let ageing = publish_at(&toml, dir.path(), now.plus_seconds(-(96 * 3600 - 1800)));
    assert!(ageing.sequence > expired.sequence);
    assert!(wait_for_sequence(admin, ageing.sequence, SWAP_WAIT));
    let response = post(addr, &good_request());
    assert!(is_successful(&response.body), "{response:?}");
    let max_age: u64 = response
        .header("cache-control")
        .and_then(|c| c.strip_prefix("max-age="))
        .and_then(|c| c.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(max_age <= 1800, "max-age {max_age} reaches past nextUpdate");
    assert_eq!(readyz().status, 503);

    // A fresh publish makes it ready.
    let fresh = publish_from(&toml, dir.path());
    assert!(wait_for_sequence(admin, fresh.sequence, SWAP_WAIT));
    assert_eq!(readyz().status, 200);
    assert_eq!(metric(&metrics(admin), "ocsp_edge_ready"), Some(1.0));
    assert!(is_successful(&post(addr, &good_request()).body));
}
