//! Replication: responders feed their local cache (`snapshots.dir`) from directory, HTTP
//! and peer sources, verify everything they receive, never roll back, and keep serving
//! from the cache when every source is down.
//!
//! Every test runs on 127.0.0.1 only and bounds each wait with a deadline. The tests take
//! a process-wide lock so that the timing assertions (propagation, backoff, long-poll) do
//! not compete for the CPU with each other.

mod common;

use common::*;
use ocsp_edge::config::Config;
use ocsp_edge::server::Background;
use ocsp_edge::snapshot;
use ocsp_edge::time::UnixTime;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Upper bound for any convergence wait (normal convergence takes well under a second).
const CONVERGE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------
// Test plumbing

/// One test at a time: several of them measure time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A replication source, as written in `[[snapshots.sources]]`.
enum Src {
    Dir(PathBuf),
    Http(String),
    Peer(SocketAddr),
}

fn peer_url(admin: SocketAddr) -> String {
    format!("http://{admin}/snapshots/")
}

fn sources_toml(sources: &[Src]) -> String {
    let mut text = String::new();
    for source in sources {
        text.push_str("[[snapshots.sources]]\n");
        match source {
            Src::Dir(path) => text.push_str(&format!(
                "kind = \"directory\"\npath = {:?}\n",
                path.display().to_string()
            )),
            Src::Http(url) => text.push_str(&format!("kind = \"http\"\nurl = {url:?}\n")),
            Src::Peer(admin) => text.push_str(&format!("kind = \"peer\"\nurl = {:?}\n", peer_url(*admin))),
        }
    }
    text
}

/// A responder configuration: `cache` as `snapshots.dir`, both demo issuers trusted,
/// ephemeral loopback ports, quick polling and backoff, `sources`, then `extra`.
fn responder_config(cache: &Path, sources: &[Src], extra: Vec<(&'static str, config::Value)>) -> Config {
    config_with_sources(cache, &sources_toml(sources), extra)
}

fn responder(cache: &Path, sources: &[Src], extra: Vec<(&'static str, config::Value)>) -> Background {
    Background::start(responder_config(cache, sources, extra)).expect("responder start")
}

/// Waits until `server` serves `sequence` (read from its state, then confirmed by metrics).
fn converge(server: &Background, sequence: u64, what: &str) {
    let served = wait_until(CONVERGE, || server.state.current_sequence() == Some(sequence));
    assert!(
        served,
        "{what}: serves {:?}, not {sequence}, after {CONVERGE:?}\n{}",
        server.state.current_sequence(),
        metrics(server.admin_addr)
    );
    assert_eq!(
        metric(&metrics(server.admin_addr), "ocsp_edge_snapshot_sequence"),
        Some(sequence as f64),
        "{what}"
    );
}

fn gauge(admin: SocketAddr, series: &str) -> Option<f64> {
    metric(&metrics(admin), series)
}

fn sync_failures(admin: SocketAddr, label: &str) -> f64 {
    gauge(
        admin,
        &format!("ocsp_edge_sync_failures_total{{source=\"{label}\"}}"),
    )
    .unwrap_or(0.0)
}

fn sync_attempts(admin: SocketAddr, label: &str) -> f64 {
    gauge(
        admin,
        &format!("ocsp_edge_sync_attempts_total{{source=\"{label}\"}}"),
    )
    .unwrap_or(0.0)
}

/// Only committed snapshot/manifest pairs and `highest-sequence`: no temporary, partial
/// or orphaned file. Retried for a moment, since a swap may be writing `highest-sequence`
/// (through a temporary file) just then.
fn assert_clean_cache(dir: &Path) {
    let check = || -> Result<(), String> {
        let names = file_names(dir);
        for name in &names {
            let stem = name
                .strip_suffix(".manifest.json")
                .or_else(|| name.strip_suffix(".snapshot"));
            let ok = name == "highest-sequence"
                || stem.is_some_and(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                return Err(format!("unexpected file {name:?} in the cache: {names:?}"));
            }
        }
        for sequence in snapshot::manifest_sequences(dir).unwrap() {
            if !dir.join(snapshot::snapshot_name(sequence)).exists() {
                return Err(format!("manifest {sequence} without its snapshot: {names:?}"));
            }
        }
        Ok(())
    };
    wait_until(Duration::from_secs(2), || check().is_ok());
    if let Err(problem) = check() {
        panic!("{problem}");
    }
}

fn sequences_in(dir: &Path) -> (Vec<u64>, Vec<u64>) {
    let manifests = snapshot::manifest_sequences(dir).unwrap();
    let mut snapshots: Vec<u64> = file_names(dir)
        .iter()
        .filter_map(|n| n.strip_suffix(".snapshot")?.parse().ok())
        .collect();
    snapshots.sort_unstable_by(|a, b| b.cmp(a));
    (manifests, snapshots)
}

/// Copies one published snapshot (snapshot first, manifest last) from `from` to `to`.
fn copy_snapshot(from: &Path, to: &Path, sequence: u64) {
    for name in [
        snapshot::snapshot_name(sequence),
        snapshot::manifest_name(sequence),
    ] {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

/// A loopback port on which nothing listens.
fn dead_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

fn assert_openssl(ocsp: SocketAddr, row: &IndexRow, expected: &str, what: &str) {
    let (status, out) = openssl_status(ocsp, &issuer_ca("ec"), &row.cert("ec"), false);
    assert_eq!(status, expected, "{what}: {out}");
    assert!(out.stderr.contains("Response verify OK"), "{what}: {out}");
    if expected == "revoked" {
        assert!(out.stdout.contains("Reason: keyCompromise"), "{what}: {out}");
    }
}

// ---------------------------------------------------------------------------------------
// A static HTTP origin over std::net: serves the files of a directory (query strings
// ignored), with strong ETags and If-None-Match → 304, one request per connection.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tamper {
    None,
    /// Serve snapshot files this many bytes short (a consistent, shorter file).
    Truncate(usize),
    /// Serve snapshot files with this many extra bytes.
    Extend(usize),
}

struct OriginShared {
    dir: PathBuf,
    validators: AtomicBool,
    tamper: Mutex<Tamper>,
    /// (path without query, status) of every request, in order.
    log: Mutex<Vec<(String, u16)>>,
}

struct Origin {
    addr: SocketAddr,
    shared: Arc<OriginShared>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Origin {
    fn start(dir: &Path, validators: bool) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(OriginShared {
            dir: dir.to_path_buf(),
            validators: AtomicBool::new(validators),
            tamper: Mutex::new(Tamper::None),
            log: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (serving, stopping) = (shared.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let serving = serving.clone();
                        std::thread::spawn(move || {
                            let _ = serve_static(&serving, stream);
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Origin {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn set_tamper(&self, tamper: Tamper) {
        *self.shared.tamper.lock().unwrap() = tamper;
    }

    /// Requests for paths ending in `suffix`.
    fn requests(&self, suffix: &str) -> usize {
        let log = self.shared.log.lock().unwrap();
        log.iter().filter(|(p, _)| p.ends_with(suffix)).count()
    }

    fn log(&self) -> Vec<(String, u16)> {
        self.shared.log.lock().unwrap().clone()
    }
}

impl Drop for Origin {
    /// Stops accepting; the listening socket closes, so the origin is "down".
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_static(shared: &OriginShared, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&byte[..n]);
        if head.len() > 64 * 1024 {
            return Ok(());
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .unwrap_or("")
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let if_none_match = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("if-none-match"))
        .map(|(_, v)| v.trim().to_string());
    let path = target.split('?').next().unwrap_or("").to_string();
    let name = path.trim_start_matches('/');
    let file = (!name.is_empty() && !name.contains('/') && !name.starts_with('.'))
        .then(|| std::fs::read(shared.dir.join(name)).ok())
        .flatten();
    let (status, response) = match file {
        None => (
            404,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        Some(mut body) => {
            if name.ends_with(".snapshot") {
                match *shared.tamper.lock().unwrap() {
                    Tamper::None => {}
                    Tamper::Truncate(n) => body.truncate(body.len().saturating_sub(n)),
                    Tamper::Extend(n) => body.extend(std::iter::repeat_n(0x5a, n)),
                }
            }
            let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
            let validators = shared.validators.load(Ordering::SeqCst);
            let etag_header = if validators {
                format!("ETag: {etag}\r\n")
            } else {
                String::new()
            };
            if validators && if_none_match.as_deref() == Some(etag.as_str()) {
                let head = format!("HTTP/1.1 304 Not Modified\r\n{etag_header}Connection: close\r\n\r\n");
                (304, head.into_bytes())
            } else {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{etag_header}Connection: close\r\n\r\n",
                    body.len()
                );
                let mut bytes = head.into_bytes();
                bytes.extend_from_slice(&body);
                (200, bytes)
            }
        }
    };
    shared.log.lock().unwrap().push((path, status));
    stream.write_all(&response)?;
    stream.flush()?;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn readyz(admin: SocketAddr) -> u16 {
    get(admin, "/readyz").status
}

/// Publishes into `dir` and measures, from the moment publish returns, when each of
/// `servers` first serves the new sequence (polling their state every millisecond).
fn publish_and_measure(pki: &Pki, dir: &Path, servers: &[&Background]) -> (u64, Vec<Duration>) {
    let sequence = pki.publish(dir).sequence;
    let published = Instant::now();
    let mut seen: Vec<Option<Duration>> = vec![None; servers.len()];
    while Instant::now() < published + CONVERGE && seen.iter().any(Option::is_none) {
        for (i, server) in servers.iter().enumerate() {
            if seen[i].is_none() && server.state.current_sequence() == Some(sequence) {
                seen[i] = Some(published.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let times = seen
        .iter()
        .enumerate()
        .map(|(i, t)| t.unwrap_or_else(|| panic!("responder {i} never served {sequence}")))
        .collect();
    (sequence, times)
}

// ---------------------------------------------------------------------------------------
// 1. A chain: static origin → hub (http source) → two edges (peer source)

#[test]
fn chain_from_a_static_origin_through_a_hub_to_edges_converges_and_revokes() {
    let _serial = serial();
    let pki = Pki::new();
    let origin_dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(origin_dir.path(), true);
    let first = pki.publish(origin_dir.path()).sequence;

    let hub_cache = tempfile::tempdir().unwrap();
    let hub = responder(hub_cache.path(), &[Src::Http(origin.url())], vec![]);
    converge(&hub, first, "hub");
    let edge_caches = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let edges: Vec<Background> = edge_caches
        .iter()
        .map(|cache| responder(cache.path(), &[Src::Peer(hub.admin_addr)], vec![]))
        .collect();
    for (i, edge) in edges.iter().enumerate() {
        converge(edge, first, &format!("edge {i}"));
    }

    let victim = first_with_status("ec", 'V');
    for edge in &edges {
        assert_openssl(edge.ocsp_addr, &victim, "good", "before the revocation");
    }

    let all = [&hub, &edges[0], &edges[1]];
    let (second, times2) = publish_and_measure(&pki, origin_dir.path(), &all);
    pki.revoke_ec(&victim.serial);
    let (third, times3) = publish_and_measure(&pki, origin_dir.path(), &all);
    assert!(first < second && second < third);
    for (i, edge) in edges.iter().enumerate() {
        converge(edge, third, &format!("edge {i}"));
        assert_openssl(edge.ocsp_addr, &victim, "revoked", &format!("edge {i}"));
        assert_clean_cache(edge_caches[i].path());
    }
    assert_clean_cache(hub_cache.path());

    for (sequence, times) in [(second, &times2), (third, &times3)] {
        let slowest = times.iter().max().unwrap();
        println!(
            "propagation of {sequence}: hub {:?}, edges {:?} / {:?}; all edges serving after {slowest:?}",
            times[0], times[1], times[2]
        );
        assert!(
            *slowest < Duration::from_secs(5),
            "propagation of {sequence} took {slowest:?}"
        );
        assert!(
            times[0] <= times[1] && times[0] <= times[2],
            "an edge before the hub?"
        );
    }
    // Every source stayed healthy: no failed round anywhere once all had the first snapshot.
    for (i, server) in all.iter().enumerate() {
        let text = metrics(server.admin_addr);
        let failures: f64 = text
            .lines()
            .filter(|l| l.starts_with("ocsp_edge_sync_failures_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b);
        println!("responder {i}: {failures} failed rounds");
    }
    // The origin answered the hub's unchanged polls with 304, not the whole manifest.
    // Validators are reused only 2 s after the manifest's Last-Modified (see
    // sync::source::validators_settled), so a fast run may have to wait for the first.
    let answered_304 = || {
        origin
            .log()
            .iter()
            .any(|(p, s)| p.ends_with("latest.manifest.json") && *s == 304)
    };
    wait_until(Duration::from_secs(5), answered_304);
    assert!(
        answered_304(),
        "no conditional GET answered 304: {:?}",
        origin.log()
    );
}

#[test]
fn deltas_replicate_and_a_new_edge_fetches_the_base_from_its_peer() {
    let _serial = serial();
    let pki = Pki::new();
    let mut toml = std::fs::read_to_string(pki.toml()).unwrap();
    toml.push_str("\n[delta]\nfull_every = \"24h\"\n");
    std::fs::write(pki.toml(), toml).unwrap();
    let origin_dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(origin_dir.path(), true);
    let full = pki.publish(origin_dir.path());
    assert_eq!(full.base, None);

    let hub_cache = tempfile::tempdir().unwrap();
    let hub = responder(hub_cache.path(), &[Src::Http(origin.url())], vec![]);
    converge(&hub, full.sequence, "hub");
    let victim = first_with_status("ec", 'V');
    let bystander = index_rows("ec")
        .into_iter()
        .filter(|r| r.status == 'V')
        .nth(3)
        .expect("a second good certificate");
    assert_openssl(hub.ocsp_addr, &victim, "good", "hub before the revocation");

    pki.revoke_ec(&victim.serial);
    let delta = pki.publish(origin_dir.path());
    assert_eq!(delta.base, Some(full.sequence), "the second publish is a delta");
    assert_eq!(
        delta.signatures, 2,
        "one certificate re-signed, both CertID hashes"
    );
    println!(
        "full snapshot {} bytes, delta {} bytes ({:.1}%)",
        full.size,
        delta.size,
        100.0 * delta.size as f64 / full.size as f64
    );
    converge(&hub, delta.sequence, "hub, delta");
    assert_openssl(hub.ocsp_addr, &victim, "revoked", "hub after the delta");
    assert_openssl(hub.ocsp_addr, &bystander, "good", "hub, from the base");

    // A new edge has neither: it fetches the delta's base from its peer first.
    let edge_cache = tempfile::tempdir().unwrap();
    let edge = responder(edge_cache.path(), &[Src::Peer(hub.admin_addr)], vec![]);
    converge(&edge, delta.sequence, "new edge");
    assert_openssl(edge.ocsp_addr, &victim, "revoked", "new edge");
    assert_openssl(edge.ocsp_addr, &bystander, "good", "new edge, from the base");
    let (manifests, snapshots) = sequences_in(edge_cache.path());
    for sequence in [full.sequence, delta.sequence] {
        assert!(
            manifests.contains(&sequence) && snapshots.contains(&sequence),
            "edge cache lacks {sequence}: {manifests:?} {snapshots:?}"
        );
    }
    assert_clean_cache(edge_cache.path());

    // Restarted with every source down, the edge rebuilds base + delta from its cache.
    drop(edge);
    let restarted = responder(edge_cache.path(), &[Src::Peer(dead_port())], vec![]);
    converge(&restarted, delta.sequence, "restarted edge");
    assert_openssl(restarted.ocsp_addr, &victim, "revoked", "restarted edge");
}

// ---------------------------------------------------------------------------------------
// 2. Failover: a dead first source does not stop the second, and it backs off

#[test]
fn a_dead_source_is_skipped_and_backed_off() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    let first = publish_demo(origin.path()).sequence;
    let dead = dead_port();
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let edge = responder(
        cache.path(),
        &[Src::Peer(dead), Src::Dir(origin.path().to_path_buf())],
        vec![],
    );
    converge(&edge, first, "edge with a dead first source");
    println!("converged from the directory after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(3));

    let label = peer_url(dead);

    assert!(
        wait_until(Duration::from_secs(3), || sync_failures(edge.admin_addr, &label)
            >= 2.0),
        "no failures counted for the dead source\n{}",
        metrics(edge.admin_addr)
    );
    let before = sync_attempts(edge.admin_addr, &label);
    let failures_before = sync_failures(edge.admin_addr, &label);
    std::thread::sleep(Duration::from_secs(3));
    let attempts = sync_attempts(edge.admin_addr, &label) - before;
    let failures = sync_failures(edge.admin_addr, &label) - failures_before;
    println!("dead source: {attempts} attempts, {failures} failures in 3 s (100 ms polling would make 30)");
    assert!(failures >= 1.0, "the dead source is not retried at all");
    assert!(attempts < 15.0, "{attempts} attempts in 3 s: no backoff");

    // The dead source does not delay the live one.
    let second = publish_demo(origin.path()).sequence;
    let published = Instant::now();
    converge(&edge, second, "edge");
    assert!(
        published.elapsed() < Duration::from_secs(2),
        "{:?}",
        published.elapsed()
    );
    assert_clean_cache(cache.path());
}

// ---------------------------------------------------------------------------------------
// 3. Refusals from a bad mirror; the next source is used

#[test]
fn a_bad_mirror_is_refused_and_the_good_source_wins() {
    let _serial = serial();
    // The publisher writes into its own directory; the test hands files to the mirrors.
    let publisher = tempfile::tempdir().unwrap();
    let good = tempfile::tempdir().unwrap();
    let bad = tempfile::tempdir().unwrap();
    let old = publish_demo(publisher.path()).sequence;
    let current = publish_demo(publisher.path()).sequence;
    let newer = publish_demo(publisher.path()).sequence;
    for sequence in [old, current] {
        copy_snapshot(publisher.path(), good.path(), sequence);
    }

    // (a) the newer manifest, intact, with its snapshot one bit off;
    let flipped = {
        let mut bytes = std::fs::read(publisher.path().join(snapshot::snapshot_name(newer))).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        bytes
    };
    std::fs::write(bad.path().join(snapshot::snapshot_name(newer)), &flipped).unwrap();
    std::fs::copy(
        publisher.path().join(snapshot::manifest_name(newer)),
        bad.path().join(snapshot::manifest_name(newer)),
    )
    .unwrap();
    // (b) a manifest whose body was edited (sequence bumped): its signature breaks;
    let bumped = newer + 1000;
    let text = std::fs::read_to_string(publisher.path().join(snapshot::manifest_name(newer))).unwrap();
    let tampered = text.replacen(
        &format!("\"sequence\": {newer}"),
        &format!("\"sequence\": {bumped}"),
        1,
    );
    assert_ne!(text, tampered);
    std::fs::write(bad.path().join(snapshot::manifest_name(bumped)), tampered).unwrap();
    // (c) an older snapshot.
    copy_snapshot(publisher.path(), bad.path(), old);

    // The same mirror behind a web server too, whose latest.manifest.json (absent for now)
    // is what an HTTP source is offered.
    let web = Origin::start(bad.path(), true);
    let cache = tempfile::tempdir().unwrap();
    let edge = responder(
        cache.path(),
        &[
            Src::Dir(bad.path().to_path_buf()),
            Src::Http(web.url()),
            Src::Dir(good.path().to_path_buf()),
        ],
        vec![],
    );
    converge(&edge, current, "edge");
    let mirror = bad.path().display().to_string();

    // A directory source offers its newest manifest only: first the tampered one.
    let reasons = |edge: &Background| {
        ["bad_signature", "hash_mismatch", "rollback"].map(|r| snapshots_refused(edge.admin_addr, r))
    };
    assert!(
        wait_until(CONVERGE, || snapshots_refused(edge.admin_addr, "bad_signature")
            >= 1.0),
        "tampered manifest not refused\n{}",
        metrics(edge.admin_addr)
    );
    assert_clean_cache(cache.path());
    // Without it, the newer manifest with the damaged snapshot.
    std::fs::remove_file(bad.path().join(snapshot::manifest_name(bumped))).unwrap();
    assert!(
        wait_until(CONVERGE, || snapshots_refused(edge.admin_addr, "hash_mismatch")
            >= 1.0),
        "damaged snapshot not refused\n{}",
        metrics(edge.admin_addr)
    );
    assert_eq!(edge.state.current_sequence(), Some(current));
    assert_clean_cache(cache.path());
    assert!(!cache.path().join(snapshot::snapshot_name(newer)).exists());
    // Without that, only the old one: a directory source does not even offer it (it is
    // not above what the responder has), so nothing fails and nothing changes.
    for name in [snapshot::manifest_name(newer), snapshot::snapshot_name(newer)] {
        std::fs::remove_file(bad.path().join(name)).unwrap();
    }
    let failures = sync_failures(edge.admin_addr, &mirror);
    let rollbacks = snapshots_refused(edge.admin_addr, "rollback");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(sync_failures(edge.admin_addr, &mirror), failures);
    assert_eq!(snapshots_refused(edge.admin_addr, "rollback"), rollbacks);
    // An HTTP source that points at the old manifest offers it: refused as a rollback.
    std::fs::copy(
        bad.path().join(snapshot::manifest_name(old)),
        bad.path().join("latest.manifest.json"),
    )
    .unwrap();
    assert!(
        wait_until(CONVERGE, || snapshots_refused(edge.admin_addr, "rollback")
            > rollbacks),
        "older snapshot not refused\n{}",
        metrics(edge.admin_addr)
    );
    assert_eq!(edge.state.current_sequence(), Some(current));
    assert_eq!(edge.state.highest_sequence(), current);
    assert_clean_cache(cache.path());
    println!(
        "refusals [bad_signature, hash_mismatch, rollback]: {:?}",
        reasons(&edge)
    );

    // The damaged copy back in the mirror, the real one in the good directory: the good
    // source delivers it although the mirror comes first.
    std::fs::write(bad.path().join(snapshot::snapshot_name(newer)), &flipped).unwrap();
    std::fs::copy(
        publisher.path().join(snapshot::manifest_name(newer)),
        bad.path().join(snapshot::manifest_name(newer)),
    )
    .unwrap();
    copy_snapshot(publisher.path(), good.path(), newer);
    converge(&edge, newer, "edge");
    assert_eq!(
        std::fs::read(cache.path().join(snapshot::snapshot_name(newer))).unwrap(),
        std::fs::read(publisher.path().join(snapshot::snapshot_name(newer))).unwrap(),
        "the cache holds the good copy"
    );
    assert_clean_cache(cache.path());
    assert_still_serves(edge.ocsp_addr);
}

// ---------------------------------------------------------------------------------------
// 4. Truncated and oversized downloads over HTTP

/// Serves the snapshot 100 bytes short, then 100 bytes long, then right; checks that both
/// bad downloads are counted as failures, swap nothing in and leave nothing behind.
fn truncated_then_oversized_then_right(validators: bool) {
    let origin_dir = tempfile::tempdir().unwrap();
    let origin = Origin::start(origin_dir.path(), validators);
    let sequence = publish_demo(origin_dir.path()).sequence;
    let snapshot = snapshot::snapshot_name(sequence);
    origin.set_tamper(Tamper::Truncate(100));
    let cache = tempfile::tempdir().unwrap();
    let edge = responder(cache.path(), &[Src::Http(origin.url())], vec![]);
    let label = origin.url();

    let bad_rounds = |edge: &Background, at_least: usize, what: &str| {
        let failed = wait_until(CONVERGE, || {
            origin.requests(&snapshot) >= at_least
                && sync_failures(edge.admin_addr, &label) >= at_least as f64
        });
        assert!(
            failed,
            "{what}: {} downloads, {} failures; the origin answered {} manifest requests with 304\n\
             last requests: {:?}",
            origin.requests(&snapshot),
            sync_failures(edge.admin_addr, &label),
            origin.log().iter().filter(|(_, s)| *s == 304).count(),
            origin.log().iter().rev().take(5).collect::<Vec<_>>(),
        );
        assert_eq!(edge.state.current_sequence(), None, "{what}: swapped in");
        assert_eq!(readyz(edge.admin_addr), 503);
        assert_clean_cache(cache.path());
        assert_eq!(
            file_names(cache.path()),
            Vec::<String>::new(),
            "{what}: cache not empty"
        );
    };
    bad_rounds(&edge, 1, "truncated");
    origin.set_tamper(Tamper::Extend(100));
    let downloads = origin.requests(&snapshot);
    bad_rounds(&edge, downloads + 1, "oversized");
    origin.set_tamper(Tamper::None);
    converge(&edge, sequence, "after the origin serves the right file");
    assert_clean_cache(cache.path());
    assert_eq!(
        std::fs::read(cache.path().join(&snapshot)).unwrap(),
        std::fs::read(origin_dir.path().join(&snapshot)).unwrap()
    );
    assert_still_serves(edge.ocsp_addr);
}

#[test]
fn truncated_and_oversized_downloads_are_refused_from_an_origin_without_validators() {
    let _serial = serial();
    truncated_then_oversized_then_right(false);
}

#[test]
fn truncated_and_oversized_downloads_are_refused_from_an_origin_with_etags() {
    let _serial = serial();
    truncated_then_oversized_then_right(true);
}

// ---------------------------------------------------------------------------------------
// 5. A restarted process serves from its cache with every source down

#[test]
fn a_restarted_process_serves_from_its_cache_with_every_source_down() {
    let _serial = serial();
    let hub_dir = tempfile::tempdir().unwrap();
    let sequence = publish_demo(hub_dir.path()).sequence;
    let hub = responder(hub_dir.path(), &[], vec![]);
    converge(&hub, sequence, "hub");

    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let toml = format!(
        "[snapshots]\npoll_interval = \"100ms\"\nmax_backoff = \"1s\"\nlong_poll = \"5s\"\n\n{}",
        sources_toml(&[Src::Peer(hub.admin_addr)])
    );
    let cache_arg = cache.display().to_string();
    let start_edge = || ServeProcess::start(&toml, &["--snapshots", &cache_arg]);

    let good = first_with_status("ec", 'V');
    let revoked = first_with_status("ec", 'R');
    let (mut edge, _config) = start_edge();
    assert!(
        wait_for_sequence(edge.admin, sequence, CONVERGE),
        "the edge never synced\n{}",
        edge.log()
    );
    assert_eq!(readyz(edge.admin), 200);
    assert!(gauge(edge.admin, "ocsp_edge_seconds_since_last_sync").unwrap() >= 0.0);
    edge.kill();
    drop(edge);
    let hub_admin = hub.admin_addr;
    drop(hub);
    assert!(Conn::try_connect(hub_admin).is_err(), "the hub still answers");

    let started = Instant::now();
    let (edge, _config) = start_edge();
    let ready = wait_until(Duration::from_secs(2), || readyz(edge.admin) == 200);
    let took = started.elapsed();
    println!("restarted edge ready after {took:?} (process start included)");
    assert!(ready, "not ready within 2 s of the restart\n{}", edge.log());
    let text = metrics(edge.admin);
    assert_eq!(
        metric(&text, "ocsp_edge_snapshot_sequence"),
        Some(sequence as f64)
    );
    assert_eq!(
        metric(&text, "ocsp_edge_seconds_since_last_sync"),
        Some(-1.0),
        "{text}"
    );
    assert_eq!(metric(&text, "ocsp_edge_highest_sequence"), Some(sequence as f64));
    assert_openssl(edge.ocsp, &good, "good", "from the cache");
    let (status, out) = openssl_status(edge.ocsp, &issuer_ca("ec"), &revoked.cert("ec"), false);
    assert_eq!(status, "revoked", "{out}");
    let label = peer_url(hub_admin);
    assert!(
        wait_until(CONVERGE, || sync_failures(edge.admin, &label) >= 1.0),
        "the dead peer is not reported\n{}",
        metrics(edge.admin)
    );
    assert_eq!(gauge(edge.admin, "ocsp_edge_seconds_since_last_sync"), Some(-1.0));
    assert_clean_cache(&cache);
}

// ---------------------------------------------------------------------------------------
// 6. No rollback across a restart, unless deliberately allowed

#[test]
fn a_restart_does_not_roll_back_unless_allowed() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    let lagging = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let s1 = publish_demo(origin.path()).sequence;
    copy_snapshot(origin.path(), lagging.path(), s1);
    let edge = responder(cache.path(), &[Src::Dir(origin.path().to_path_buf())], vec![]);
    converge(&edge, s1, "first");
    let s2 = publish_demo(origin.path()).sequence;
    converge(&edge, s2, "second");
    assert_eq!(
        std::fs::read_to_string(cache.path().join("highest-sequence"))
            .unwrap()
            .trim(),
        s2.to_string()
    );
    drop(edge);

    // Someone (or something) removes the newest snapshot from the cache.
    for name in [snapshot::manifest_name(s2), snapshot::snapshot_name(s2)] {
        std::fs::remove_file(cache.path().join(name)).unwrap();
    }
    assert_eq!(snapshot::manifest_sequences(cache.path()).unwrap(), vec![s1]);
    // Restarted with only a lagging mirror that still offers s1.
    let sources = [Src::Dir(lagging.path().to_path_buf())];
    let edge = responder(cache.path(), &sources, vec![]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(edge.state.current_sequence(), None, "rolled back to {s1}");
    let response = post(edge.ocsp_addr, &good_request());
    assert_eq!(response.body, TRY_LATER, "{response:?}");
    assert_eq!(readyz(edge.admin_addr), 503);
    let text = metrics(edge.admin_addr);
    assert_eq!(
        metric(&text, "ocsp_edge_highest_sequence"),
        Some(s2 as f64),
        "{text}"
    );
    assert_eq!(metric(&text, "ocsp_edge_ready"), Some(0.0));
    drop(edge);
    assert_eq!(
        std::fs::read_to_string(cache.path().join("highest-sequence"))
            .unwrap()
            .trim(),
        s2.to_string()
    );

    // The operator rolls back on purpose.
    let edge = responder(
        cache.path(),
        &sources,
        vec![("snapshots.danger_allow_rollback", true.into())],
    );
    converge(&edge, s1, "deliberate rollback");
    assert_eq!(edge.state.highest_sequence(), s1);
    assert_eq!(
        gauge(edge.admin_addr, "ocsp_edge_highest_sequence"),
        Some(s1 as f64)
    );
    assert_eq!(readyz(edge.admin_addr), 200);
    assert_still_serves(edge.ocsp_addr);
    assert_eq!(
        std::fs::read_to_string(cache.path().join("highest-sequence"))
            .unwrap()
            .trim(),
        s1.to_string()
    );
}

// ---------------------------------------------------------------------------------------
// 7. The cache keeps `keep` snapshots

#[test]
fn the_cache_keeps_the_newest_k_snapshots() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let edge = responder(
        cache.path(),
        &[Src::Dir(origin.path().to_path_buf())],
        vec![("snapshots.keep", 2.into())],
    );
    let mut sequences = Vec::new();
    for round in 0..4 {
        let sequence = publish_demo(origin.path()).sequence;
        converge(&edge, sequence, &format!("round {round}"));
        sequences.push(sequence);
    }
    let newest: Vec<u64> = sequences.iter().rev().take(2).copied().collect();
    let expect = || sequences_in(cache.path()) == (newest.clone(), newest.clone());
    assert!(
        wait_until(Duration::from_secs(2), expect),
        "cache {:?}, expected the pairs {newest:?}",
        file_names(cache.path())
    );
    assert_clean_cache(cache.path());
    assert_eq!(
        file_names(cache.path()).len(),
        5,
        "{:?}",
        file_names(cache.path())
    );
}

// ---------------------------------------------------------------------------------------
// 8. Survival on an old snapshot, staleness signals, and an expired snapshot

#[test]
fn an_aging_snapshot_keeps_serving_and_an_expired_one_answers_try_later() {
    let _serial = serial();
    let pki = Pki::new();
    // CRLs as short-lived as the OCSP responses, so that they expire together.
    pki.set_crl_validity("96h");
    let hour = 3600;

    // Published 95 h ago with 96 h validity: one hour left.
    let origin_dir = tempfile::tempdir().unwrap();
    let published = UnixTime::now().plus_seconds(-95 * hour);
    let report = pki.publish_at(origin_dir.path(), published);
    assert_eq!(report.earliest_next_update, published.plus_seconds(96 * hour));
    let origin = Origin::start(origin_dir.path(), true);
    let label = origin.url();
    let cache = tempfile::tempdir().unwrap();
    let edge = responder(
        cache.path(),
        &[Src::Http(origin.url())],
        vec![("snapshots.not_ready_before_expiry", "2h".into())],
    );
    converge(&edge, report.sequence, "aging snapshot");
    drop(origin);
    assert!(
        wait_until(CONVERGE, || sync_failures(edge.admin_addr, &label) >= 1.0),
        "the dead origin is not reported"
    );

    let response = post(edge.ocsp_addr, &good_request());
    assert!(is_successful(&response.body), "{response:?}");
    assert_openssl(
        edge.ocsp_addr,
        &first_with_status("ec", 'V'),
        "good",
        "aging snapshot",
    );
    assert_eq!(get(edge.ocsp_addr, "/crl/ec.crl").status, 200);
    let ready = get(edge.admin_addr, "/readyz");
    assert_eq!(ready.status, 503, "{}", String::from_utf8_lossy(&ready.body));
    // BR deadline: min(thisUpdate + 4 days, nextUpdate − 8 h) = thisUpdate + 88 h, which
    // was 7 h ago.
    let deadline = published.plus_seconds(88 * hour).seconds();
    let before = UnixTime::now().seconds();
    let text = metrics(edge.admin_addr);
    let after = UnixTime::now().seconds();
    let seconds = metric(&text, "ocsp_edge_refresh_deadline_seconds").unwrap() as i64;
    println!("refresh deadline seconds: {seconds} (about -7 h)");
    assert!(seconds < 0);
    assert!(
        (deadline - after..=deadline - before).contains(&seconds),
        "{seconds} not in {}..={}",
        deadline - after,
        deadline - before
    );
    assert_eq!(metric(&text, "ocsp_edge_refresh_deadline_at_risk"), Some(1.0));
    assert_eq!(metric(&text, "ocsp_edge_ready"), Some(0.0));
    let until = metric(&text, "ocsp_edge_seconds_until_earliest_next_update").unwrap();
    assert!((3500.0..=3600.0).contains(&until), "{until}");
    drop(edge);

    // Published 97 h ago: past nextUpdate on arrival.
    let origin_dir = tempfile::tempdir().unwrap();
    let expired = pki.publish_at(origin_dir.path(), UnixTime::now().plus_seconds(-97 * hour));
    let cache = tempfile::tempdir().unwrap();
    let edge = responder(cache.path(), &[Src::Dir(origin_dir.path().to_path_buf())], vec![]);
    converge(&edge, expired.sequence, "expired snapshot");
    let response = post(edge.ocsp_addr, &good_request());
    assert_eq!(response.status, 200);
    assert_eq!(response.body, TRY_LATER, "{response:?}");
    for path in ["/crl/ec.crl", "/crl/rsa.crl", "/crl/ec/0.crl"] {
        let response = get(edge.ocsp_addr, path);
        assert_eq!(response.status, 503, "{path}");
    }
    assert_eq!(readyz(edge.admin_addr), 503);
    assert_eq!(
        gauge(edge.admin_addr, "ocsp_edge_refresh_deadline_at_risk"),
        Some(1.0)
    );
}

// ---------------------------------------------------------------------------------------
// 9. The peer endpoint: long-poll, conditional requests, and only the served snapshot

#[test]
fn the_peer_endpoint_long_polls_and_serves_only_what_it_serves() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = publish_demo(origin.path()).sequence;
    let hub = responder(cache.path(), &[Src::Dir(origin.path().to_path_buf())], vec![]);
    converge(&hub, first, "hub");
    let admin = hub.admin_addr;
    let latest = format!("/snapshots/latest.manifest.json?after={first}&wait=3");

    // Nothing newer: the request is held for the whole wait, then answered.
    let started = Instant::now();
    let response = get(admin, &latest);
    let held = started.elapsed();
    println!("long-poll without news held {held:?}");
    assert_eq!(response.status, 200);
    assert!(
        held >= Duration::from_millis(2800) && held < Duration::from_millis(4500),
        "{held:?}"
    );
    let etag = response.header("etag").expect("ETag").to_string();
    assert_eq!(etag, format!("\"{first}\""));
    let served: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    let cached: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.path().join(snapshot::manifest_name(first))).unwrap())
            .unwrap();
    assert_eq!(served, cached);

    // The same with If-None-Match: held, then 304.
    let started = Instant::now();
    let response = http(admin, "GET", &latest, &[("If-None-Match", &etag)], None);
    let held = started.elapsed();
    assert_eq!(response.status, 304);
    assert!(response.body.is_empty());
    assert!(
        held >= Duration::from_millis(2800) && held < Duration::from_millis(4500),
        "{held:?}"
    );

    // Without `after`, no wait.
    let started = Instant::now();
    assert_eq!(get(admin, "/snapshots/latest.manifest.json").status, 200);
    assert!(started.elapsed() < Duration::from_millis(500));

    // A snapshot arriving during the wait ends it.
    let request = format!("/snapshots/latest.manifest.json?after={first}&wait=5");
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        let response = http(
            admin,
            "GET",
            &request,
            &[("If-None-Match", &format!("\"{first}\""))],
            None,
        );
        (response, started, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(1000));
    let second = publish_demo(origin.path()).sequence;
    let deadline = Instant::now() + CONVERGE;
    while hub.state.current_sequence() != Some(second) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let swapped = Instant::now();
    assert_eq!(hub.state.current_sequence(), Some(second));
    let (response, asked, answered) = waiting.join().unwrap();
    let after_swap = answered.saturating_duration_since(swapped);
    println!(
        "long-poll answered {:?} after it was sent, {after_swap:?} after the hub swapped",
        answered - asked
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("etag"), Some(format!("\"{second}\"").as_str()));
    let manifest: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(manifest["body"]["sequence"], second);
    assert!(after_swap < Duration::from_secs(1), "{after_swap:?}");
    assert!(answered - asked < Duration::from_millis(4500));

    // The served snapshot, byte for byte; nothing else.
    let name = snapshot::snapshot_name(second);
    let response = get(admin, &format!("/snapshots/{name}"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, std::fs::read(cache.path().join(&name)).unwrap());
    let older = snapshot::snapshot_name(first);
    assert!(cache.path().join(&older).exists(), "keep = 3 keeps the first one");
    // Its manifest by name too (a delta's base is fetched that way), not older ones.
    let by_name = get(admin, &format!("/snapshots/{}", snapshot::manifest_name(second)));
    assert_eq!(by_name.status, 200);
    let parsed: serde_json::Value = serde_json::from_slice(&by_name.body).unwrap();
    assert_eq!(parsed["body"]["sequence"], second);
    for path in [
        format!("/snapshots/{older}"),
        format!("/snapshots/{}", snapshot::manifest_name(first)),
        "/snapshots/highest-sequence".to_string(),
        "/snapshots/".to_string(),
        format!("/snapshots/../{name}"),
        format!("/snapshots/%2e%2e%2f{name}"),
        format!("/snapshots/{name}.tmp"),
        format!("/snapshots/sub/{name}"),
    ] {
        assert_eq!(get(admin, &path).status, 404, "{path}");
    }
}

// ---------------------------------------------------------------------------------------
// Leftovers of an interrupted round must not block replication

/// A temporary download left in the cache by a process that was killed mid-download,
/// whose PID the new process happens to have (PID 1 in every container).
#[test]
fn a_stale_temporary_download_does_not_block_replication() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let sequence = publish_demo(origin.path()).sequence;
    let stale = cache.path().join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        snapshot::snapshot_name(sequence)
    ));
    std::fs::write(&stale, b"half a download").unwrap();
    let edge = responder(cache.path(), &[Src::Dir(origin.path().to_path_buf())], vec![]);
    converge(&edge, sequence, "with a stale temporary file in the cache");
    assert_clean_cache(cache.path());
}

/// A snapshot without its manifest in the cache: what a kill between linking the
/// downloaded snapshot and writing its manifest leaves behind.
#[test]
fn an_orphaned_snapshot_in_the_cache_does_not_block_replication() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let sequence = publish_demo(origin.path()).sequence;
    let name = snapshot::snapshot_name(sequence);
    std::fs::copy(origin.path().join(&name), cache.path().join(&name)).unwrap();
    let edge = responder(cache.path(), &[Src::Dir(origin.path().to_path_buf())], vec![]);
    converge(&edge, sequence, "with an orphaned snapshot in the cache");
    assert_clean_cache(cache.path());
}

/// A round that fails after the manifest was fetched (here: a directory sits where the
/// downloaded snapshot must go) is retried once the obstacle is gone, also when the
/// source is a peer answering conditional requests.
#[test]
fn a_peer_round_that_failed_after_the_manifest_is_retried() {
    let _serial = serial();
    let hub_dir = tempfile::tempdir().unwrap();
    let sequence = publish_demo(hub_dir.path()).sequence;
    let hub = responder(hub_dir.path(), &[], vec![]);
    converge(&hub, sequence, "hub");
    let cache = tempfile::tempdir().unwrap();
    let obstacle = cache.path().join(snapshot::snapshot_name(sequence));
    std::fs::create_dir(&obstacle).unwrap();
    let edge = responder(cache.path(), &[Src::Peer(hub.admin_addr)], vec![]);
    let label = peer_url(hub.admin_addr);
    assert!(
        wait_until(CONVERGE, || sync_failures(edge.admin_addr, &label) >= 1.0),
        "the obstructed round did not fail"
    );
    std::fs::remove_dir(&obstacle).unwrap();
    let attempts = sync_attempts(edge.admin_addr, &label);
    let served = wait_until(Duration::from_secs(5), || {
        edge.state.current_sequence() == Some(sequence)
    });
    assert!(
        served,
        "never served {sequence}: {} more rounds in 5 s, {} failures\n{}",
        sync_attempts(edge.admin_addr, &label) - attempts,
        sync_failures(edge.admin_addr, &label),
        file_names(cache.path()).join(" ")
    );
}

/// The cache poller and a replication task racing for the same new snapshot: the task
/// writes the manifest into the cache, then swaps; the poller may list the cache in
/// between and verify the same snapshot. Whichever loses must not report a refusal or a
/// failure. Here 0 to 3 swaps in 40 lost the race; the test makes 360 (12 responders)
/// and still passes about one run in four.
#[test]
fn replicated_swaps_report_no_spurious_refusals_or_failures() {
    let _serial = serial();
    let origin = tempfile::tempdir().unwrap();
    // Several responders on one origin, to give the race more chances.
    let caches: Vec<_> = (0..12).map(|_| tempfile::tempdir().unwrap()).collect();
    let edges: Vec<Background> = caches
        .iter()
        .map(|cache| responder(cache.path(), &[Src::Dir(origin.path().to_path_buf())], vec![]))
        .collect();
    let label = origin.path().display().to_string();
    for round in 0..30 {
        let sequence = publish_demo(origin.path()).sequence;
        for (i, edge) in edges.iter().enumerate() {
            converge(edge, sequence, &format!("round {round}, responder {i}"));
        }
    }
    let seen: Vec<(f64, f64)> = edges
        .iter()
        .map(|edge| {
            (
                sync_failures(edge.admin_addr, &label),
                snapshots_refused(edge.admin_addr, "rollback"),
            )
        })
        .collect();
    println!("(failed rounds, rollback refusals) per responder: {seen:?}");
    assert!(
        seen.iter().all(|s| *s == (0.0, 0.0)),
        "(failed rounds, rollback refusals) per responder: {seen:?}"
    );
}
