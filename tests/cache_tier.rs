//! The cache tier: a cache-mode responder in front of a hub responder. Answers verify
//! with `openssl ocsp` through the cache; repeated requests are hits; a revocation is
//! served right after the cache acknowledges the sequence that carries it; with the hub
//! gone, cached answers are still served and misses get `tryLater`; a tampered hub
//! answer is neither cached nor served; concurrent misses share one fill.
//!
//! Every test runs on 127.0.0.1 only and bounds each wait with a deadline; a process-wide
//! lock keeps the timing-sensitive ones from competing for the CPU.

mod common;

use common::*;
use ocsp_edge::server::Background;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const CONVERGE: Duration = Duration::from_secs(10);

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn cache_toml(hubs: &[HubAddrs]) -> String {
    cache_toml_with(hubs, "1s")
}

/// An in-process cache-mode responder in front of `hubs`.
fn cache(hubs: &[HubAddrs]) -> Background {
    cache_with(hubs, "1s")
}

fn fill_failures(admin: SocketAddr, reason: &str) -> f64 {
    sample(
        admin,
        &format!("ocsp_edge_cache_fill_failures_total{{reason=\"{reason}\"}}"),
    )
}

fn fills(admin: SocketAddr, result: &str) -> f64 {
    sample(
        admin,
        &format!("ocsp_edge_cache_fills_total{{result=\"{result}\"}}"),
    )
}

fn assert_openssl(ocsp: SocketAddr, row: &IndexRow, sha256: bool, expected: &str, what: &str) {
    let (status, out) = openssl_status(ocsp, &issuer_ca("ec"), &row.cert("ec"), sha256);
    assert_eq!(status, expected, "{what}: {out}");
    assert!(out.stderr.contains("Response verify OK"), "{what}: {out}");
    if expected == "revoked" {
        assert!(out.stdout.contains("Reason: keyCompromise"), "{what}: {out}");
    }
}

fn request_for(row: &IndexRow, sha256: bool) -> Vec<u8> {
    openssl_request(&issuer_ca("ec"), &row.cert("ec"), sha256, false)
}

/// The `n`th certificate of the EC issuer with status `status`.
fn nth_with_status(status: char, n: usize) -> IndexRow {
    index_rows("ec")
        .into_iter()
        .filter(|r| r.status == status)
        .nth(n)
        .expect("fixture row")
}

// ---------------------------------------------------------------------------------------
// 1. The whole story with the real binary: verify, hit, revoke, lose the hub

#[test]
fn a_cache_serves_verified_answers_applies_revocations_and_outlives_its_hub() {
    let _serial = serial();
    let pki = Pki::new();
    let hub_dir = tempfile::tempdir().unwrap();
    let first = pki.publish(hub_dir.path()).sequence;
    let hub_dir_arg = hub_dir.path().display().to_string();
    let (mut hub, _hub_toml) = ServeProcess::start(
        "[snapshots]\npoll_interval = \"100ms\"\nlong_poll = \"5s\"\n",
        &["--snapshots", &hub_dir_arg],
    );
    let (cache, _cache_toml) = ServeProcess::start(&cache_toml(&[(hub.ocsp, hub.admin)]), &[]);
    wait_cache_acknowledged(cache.admin, first, CONVERGE, "start-up");
    assert_eq!(get(cache.admin, "/readyz").status, 200);

    // Answers through the cache verify, for both CertID hashes, good and revoked.
    let victim = nth_with_status('V', 0);
    let revoked = nth_with_status('R', 0);
    assert_openssl(cache.ocsp, &victim, false, "good", "SHA-1, first request");
    assert_openssl(cache.ocsp, &victim, true, "good", "SHA-256, first request");
    assert_openssl(cache.ocsp, &revoked, false, "revoked", "a revoked certificate");
    assert_eq!(sample(cache.admin, "ocsp_edge_cache_misses_total"), 3.0);
    assert_eq!(sample(cache.admin, "ocsp_edge_cache_hits_total"), 0.0);
    assert_eq!(fills(cache.admin, "cached"), 3.0);
    assert_openssl(cache.ocsp, &victim, false, "good", "SHA-1, second request");
    assert_eq!(
        sample(cache.admin, "ocsp_edge_cache_hits_total"),
        1.0,
        "the second request is a hit"
    );
    assert_eq!(sample(cache.admin, "ocsp_edge_cache_entries"), 3.0);

    // The cache serves the hub's bytes as they are, with the same validators, and its own
    // caching headers.
    let request = request_for(&victim, false);
    let from_hub = post(hub.ocsp, &request);
    let from_cache = post(cache.ocsp, &request);
    assert_eq!(
        from_hub.header("ocsp-edge-sequence"),
        None,
        "only caches are told"
    );
    let asked = Conn::connect(hub.ocsp).post_as_cache(&request).unwrap();
    assert_eq!(
        asked.header("ocsp-edge-sequence"),
        Some(first.to_string().as_str())
    );
    assert_eq!(from_cache.body, from_hub.body);
    // The cache's validator is its own (a hash of the bytes), stable across hits.
    let etag = from_cache.header("etag").expect("ETag").to_string();
    assert_eq!(etag.len(), 2 + 2 * ocsp_edge::ocsp::ETAG_LEN, "{etag}");
    assert_eq!(post(cache.ocsp, &request).header("etag"), Some(etag.as_str()));
    assert_eq!(
        from_cache.header("last-modified"),
        from_hub.header("last-modified")
    );
    assert_eq!(from_cache.header("expires"), from_hub.header("expires"));
    assert_eq!(
        from_cache.header("cache-control"),
        Some("max-age=3600, public, no-transform, must-revalidate")
    );

    // Revoke the cached certificate and publish: as soon as the cache acknowledges the
    // new sequence, it answers revoked, for both hashes.
    pki.revoke_ec(&victim.serial);
    let second = pki.publish(hub_dir.path()).sequence;
    let published = Instant::now();
    wait_cache_acknowledged(cache.admin, second, CONVERGE, "after the revocation");
    let propagation = published.elapsed();
    assert_openssl(
        cache.ocsp,
        &victim,
        false,
        "revoked",
        "SHA-1 right after the acknowledgement",
    );
    assert_openssl(
        cache.ocsp,
        &victim,
        true,
        "revoked",
        "SHA-256 right after the acknowledgement",
    );
    assert_eq!(
        sample(
            cache.admin,
            r#"ocsp_edge_answers_total{issuer="ec",status="revoked"}"#
        ),
        3.0,
        "answers are labelled with the hubs' issuer names from the start"
    );
    assert_eq!(
        sample(cache.admin, "ocsp_edge_cache_invalidations_total"),
        2.0,
        "both cached variants of the revoked certificate were dropped"
    );
    println!("revocation acknowledged by the cache {propagation:?} after the publish");
    assert_openssl(
        cache.ocsp,
        &revoked,
        false,
        "revoked",
        "an unchanged entry survives",
    );
    let hits_before = sample(cache.admin, "ocsp_edge_cache_hits_total");
    assert_openssl(cache.ocsp, &victim, false, "revoked", "now cached");
    assert_eq!(
        sample(cache.admin, "ocsp_edge_cache_hits_total"),
        hits_before + 1.0
    );

    // The hub dies: what the cache holds is still served, a miss gets tryLater, and the
    // cache stays ready (it has something to serve).
    hub.kill();
    assert_openssl(cache.ocsp, &victim, false, "revoked", "cached, hub gone");
    assert_openssl(cache.ocsp, &revoked, false, "revoked", "cached, hub gone");
    let never_asked = nth_with_status('V', 5);
    let response = post(cache.ocsp, &request_for(&never_asked, false));
    assert_eq!(response.status, 200);
    assert_eq!(response.body, TRY_LATER, "a miss with the hub gone");
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert!(fill_failures(cache.admin, "unreachable") >= 1.0);
    assert_eq!(get(cache.admin, "/readyz").status, 200);
    assert!(cache.log().contains("change feed applied"), "{}", cache.log());

    // Long after the hub was last heard from (twice change_wait plus request_timeout =
    // 5 s), the cache is still ready because it holds answers, and still serves them.
    std::thread::sleep(Duration::from_millis(5500));
    assert_eq!(
        get(cache.admin, "/readyz").status,
        200,
        "{}",
        metrics(cache.admin)
    );
    assert_openssl(
        cache.ocsp,
        &victim,
        true,
        "revoked",
        "cached, hub gone for a while",
    );
}

// ---------------------------------------------------------------------------------------
// 2. A hub answer altered in transit

/// Forwards each POST to `hub`. `tamper`: returns the answer with one bit of the
/// signature flipped (a well-formed response whose signature no longer verifies).
/// While `hold` is set, an answer already fetched from the hub is held back (a slow
/// network between hub and cache).
struct Proxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    forwarded: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(hub: SocketAddr, tamper: bool) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let (stopping, holding, counting) = (stop.clone(), hold.clone(), forwarded.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (holding, counting) = (holding.clone(), counting.clone());
                        std::thread::spawn(move || {
                            let _ = forward_one(stream, hub, tamper, &holding, &counting);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Proxy {
            addr,
            stop,
            hold,
            forwarded,
            thread: Some(thread),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn forward_one(
    mut stream: TcpStream,
    hub: SocketAddr,
    tamper: bool,
    hold: &AtomicBool,
    forwarded: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let Some((_head, request)) = read_request(&mut stream)? else {
        return Ok(());
    };
    let answer = Conn::connect(hub).post_as_cache(&request)?;
    forwarded.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + CONVERGE;
    while hold.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut body = answer.body.clone();
    if let (true, Some(at)) = (tamper, signature_offset(&body)) {
        body[at + 8] ^= 0x01;
    }
    let mut head = String::from("HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\n");
    if let Some(sequence) = answer.header("ocsp-edge-sequence") {
        head.push_str(&format!("OCSP-Edge-Sequence: {sequence}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&body)?;
    stream.flush()
}

/// Where the signature BIT STRING's content starts in a DER OCSPResponse.
fn signature_offset(response: &[u8]) -> Option<usize> {
    use ocsp_edge::der::{enter, BIT_STRING, OCTET_STRING, OID, SEQUENCE};
    let mut outer = enter(response, SEQUENCE).ok()?;
    outer.expect(0x0a).ok()?;
    let wrapper = outer.expect(0xa0).ok()?;
    let mut bytes = enter(wrapper.content, SEQUENCE).ok()?;
    bytes.expect(OID).ok()?;
    let octets = bytes.expect(OCTET_STRING).ok()?;
    let mut basic = enter(octets.content, SEQUENCE).ok()?;
    basic.expect(SEQUENCE).ok()?;
    basic.expect(SEQUENCE).ok()?;
    let signature = basic.expect(BIT_STRING).ok()?;
    Some(signature.content.as_ptr() as usize - response.as_ptr() as usize)
}

#[test]
fn a_tampered_hub_answer_is_neither_cached_nor_served() {
    let _serial = serial();
    let hub = start_demo_server(vec![]);
    let proxy = Proxy::start(hub.addr(), true);
    let cache = cache(&[(proxy.addr, hub.admin())]);
    wait_cache_acknowledged(cache.admin_addr, hub.initial.sequence, CONVERGE, "start-up");

    let request = good_request();
    for round in 1..=2 {
        let response = post(cache.ocsp_addr, &request);
        assert_eq!(
            response.body, TRY_LATER,
            "round {round}: a tampered answer was served"
        );
    }
    assert!(
        proxy.forwarded.load(Ordering::SeqCst) >= 2,
        "the proxy was not used"
    );
    let text = metrics(cache.admin_addr);
    assert_eq!(fill_failures(cache.admin_addr, "bad_signature"), 4.0, "{text}");
    assert_eq!(fills(cache.admin_addr, "cached"), 0.0, "{text}");
    assert_eq!(sample(cache.admin_addr, "ocsp_edge_cache_entries"), 0.0, "{text}");
    assert_eq!(
        sample(cache.admin_addr, "ocsp_edge_cache_hits_total"),
        0.0,
        "{text}"
    );
    // The hub itself answers correctly: the proxy is what broke it.
    assert!(is_successful(&post(hub.addr(), &request).body));
}

// ---------------------------------------------------------------------------------------
// 3. The hub's change feed

fn changes(admin: SocketAddr, query: &str) -> (u16, serde_json::Value) {
    let response = get(admin, &format!("/changes{query}"));
    let body = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
    (response.status, body)
}

#[test]
fn the_hub_change_feed_lists_changes_since_a_served_sequence_and_says_gone_otherwise() {
    let _serial = serial();
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let first = pki.publish(dir.path()).sequence;
    let hub = Background::start(config_for(dir.path(), &demo_trust(), vec![])).expect("hub");
    let admin = hub.admin_addr;

    assert_eq!(get(admin, "/changes").status, 400, "since is required");
    // The history takes in each swap on its own thread, off the swap path: until it has
    // the first snapshot, /changes says 503 (no snapshot yet).
    assert!(
        wait_until(CONVERGE, || changes(admin, "?since=0").0 != 503),
        "the change history never took in the first snapshot"
    );
    let (status, body) = changes(admin, "?since=0");
    assert_eq!((status, body["to"].as_u64()), (410, Some(first)), "{body}");
    assert!(body["issuers"]["rsa"]["sha256"].is_array(), "{body}");
    let (status, body) = changes(admin, &format!("?since={first}&wait=0"));
    assert_eq!(status, 200);
    assert_eq!(
        (body["from"].as_u64(), body["to"].as_u64()),
        (Some(first), Some(first))
    );

    // A long-poll returns as soon as the revocation is known.
    let victim = nth_with_status('V', 2);
    let waiting = std::thread::spawn(move || {
        let started = Instant::now();
        (
            changes(admin, &format!("?since={first}&wait=10")),
            started.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(200));
    pki.revoke_ec(&victim.serial);
    let second = pki.publish(dir.path()).sequence;
    let ((status, body), waited) = waiting.join().unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(waited < Duration::from_secs(8), "the long-poll waited {waited:?}");
    assert_eq!(
        (body["from"].as_u64(), body["to"].as_u64()),
        (Some(first), Some(second))
    );
    assert_eq!(
        body["changes"],
        serde_json::json!([{"issuer": "ec", "serial": victim.serial}]),
        "{body}"
    );
    let ec =
        ocsp_edge::pki::Certificate::from_pem(&std::fs::read_to_string(issuer_ca("ec")).unwrap()).unwrap();
    use ocsp_edge::pki::CertIdHash;
    for (hash, name) in [(CertIdHash::Sha1, "sha1"), (CertIdHash::Sha256, "sha256")] {
        assert_eq!(
            body["issuers"]["ec"][name],
            serde_json::json!([hex::encode(ec.name_hash(hash)), hex::encode(ec.key_hash(hash))])
        );
    }
    // Before the history, or between sequences this hub served: gone.
    let (status, body) = changes(admin, &format!("?since={}", first - 1));
    assert_eq!((status, body["to"].as_u64()), (410, Some(second)));
    let (status, _) = changes(admin, &format!("?since={second}&wait=0"));
    assert_eq!(status, 200);
    let text = metrics(admin);
    assert_eq!(
        metric(&text, "ocsp_edge_change_history_start_sequence"),
        Some(first as f64)
    );
    assert_eq!(metric(&text, "ocsp_edge_change_history_records"), Some(1.0));
    // The OCSP answer names the snapshot it came from, to a cache that asks.
    let response = Conn::connect(hub.ocsp_addr)
        .post_as_cache(&request_for(&victim, true))
        .unwrap();
    assert_eq!(
        response.header("ocsp-edge-sequence"),
        Some(second.to_string().as_str())
    );
}

// ---------------------------------------------------------------------------------------
// 4. Coalescing, GET, conditional GET, refusals passed on

#[test]
fn concurrent_misses_share_one_fill_and_hits_answer_get_and_conditional_get() {
    let _serial = serial();
    let hub = start_demo_server(vec![]);
    let cache = cache(&[(hub.addr(), hub.admin())]);
    wait_cache_acknowledged(cache.admin_addr, hub.initial.sequence, CONVERGE, "start-up");

    let request = request_for(&nth_with_status('V', 3), true);
    let clients = 16;
    let barrier = Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (barrier, request, addr) = (barrier.clone(), request.clone(), cache.ocsp_addr);
            std::thread::spawn(move || {
                let mut conn = Conn::connect(addr);
                barrier.wait();
                conn.post(&request).unwrap()
            })
        })
        .collect();
    let bodies: Vec<Vec<u8>> = threads.into_iter().map(|t| t.join().unwrap().body).collect();
    assert!(bodies.iter().all(|b| is_successful(b) && *b == bodies[0]));
    let hub_answers = metric(
        &metrics(hub.admin()),
        r#"ocsp_edge_requests_total{method="POST",outcome="good"}"#,
    );
    assert_eq!(hub_answers, Some(1.0), "{clients} concurrent requests, one fill");
    let text = metrics(cache.admin_addr);
    let (hits, misses) = (
        metric(&text, "ocsp_edge_cache_hits_total").unwrap(),
        metric(&text, "ocsp_edge_cache_misses_total").unwrap(),
    );
    assert_eq!(hits + misses, clients as f64, "{text}");
    assert_eq!(fills(cache.admin_addr, "cached"), 1.0, "{text}");

    // GET below a path prefix, then a conditional GET.
    let path = get_path("/ocsp/", &request);
    let response = get(cache.ocsp_addr, &path);
    assert_eq!((response.status, &response.body), (200, &bodies[0]));
    let etag = response.header("etag").unwrap().to_string();
    let revalidated = http(cache.ocsp_addr, "GET", &path, &[("If-None-Match", &etag)], None);
    assert_eq!(revalidated.status, 304);
    assert_eq!(fills(cache.admin_addr, "cached"), 1.0, "GETs were hits");

    // A serial the CA never issued: the hub's refusal is passed on, not cached.
    let unissued = openssl_request(&issuer_ca("ec"), &unassigned("ec"), false, false);
    for _ in 0..2 {
        assert_eq!(post(cache.ocsp_addr, &unissued).body, UNAUTHORIZED);
    }
    assert_eq!(fills(cache.admin_addr, "hub_refused"), 2.0);
    // An issuer the cache does not trust: refused without asking the hub.
    let foreign = openssl_request(&root_ca(), &issuer_ca("ec"), false, false);
    assert_eq!(post(cache.ocsp_addr, &foreign).body, UNAUTHORIZED);
    assert_eq!(fills(cache.admin_addr, "hub_refused"), 2.0);
    // Malformed requests never reach a hub either.
    assert_eq!(post(cache.ocsp_addr, b"junk").body, MALFORMED);
}

/// The nonce policy in cache mode is the responder's (`NoncePolicy::admit`): with
/// `ocsp.nonce = "refuse"` a request carrying a nonce is refused before the tier, so a
/// client cannot make the cache ask a hub for it; the same certificate without a nonce is
/// answered. Fails if cache mode skips the policy (the nonced request would be filled).
#[test]
fn with_the_refuse_nonce_policy_a_cache_refuses_nonced_requests_without_asking_a_hub() {
    let _serial = serial();
    let hub = start_demo_server(vec![]);
    let cache = cache_configured(
        &[(hub.addr(), hub.admin())],
        "1s",
        vec![("ocsp.nonce", "refuse".into())],
    );
    wait_cache_acknowledged(cache.admin_addr, hub.initial.sequence, CONVERGE, "start-up");
    let row = nth_with_status('V', 4);
    let nonced = openssl_request(&issuer_ca("ec"), &row.cert("ec"), false, true);
    for _ in 0..2 {
        assert_eq!(post(cache.ocsp_addr, &nonced).body, UNAUTHORIZED);
    }
    let text = metrics(cache.admin_addr);
    assert_eq!(metric(&text, "ocsp_edge_cache_misses_total"), Some(0.0), "{text}");
    let hub_text = metrics(hub.admin());
    assert_eq!(
        metric(
            &hub_text,
            r#"ocsp_edge_requests_total{method="POST",outcome="good"}"#
        )
        .unwrap_or(0.0),
        0.0,
        "{hub_text}"
    );

    let plain = request_for(&row, false);
    assert!(is_successful(&post(cache.ocsp_addr, &plain).body));
    assert_eq!(fills(cache.admin_addr, "cached"), 1.0);
}

// ---------------------------------------------------------------------------------------
// 5. No hub at all

#[test]
fn a_cache_without_a_reachable_hub_is_not_ready_and_answers_try_later() {
    let _serial = serial();
    let dead = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let cache = cache(&[(dead, dead)]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(cache.admin_addr, "/readyz").status, 503);
    let started = Instant::now();
    assert_eq!(post(cache.ocsp_addr, &good_request()).body, TRY_LATER);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        fill_failures(cache.admin_addr, "unreachable"),
        2.0,
        "one hub, tried twice"
    );
    assert_eq!(cache_acknowledged(cache.admin_addr), 0.0);
    let text = metrics(cache.admin_addr);
    assert!(
        metric(
            &text,
            &format!("ocsp_edge_cache_feed_failures_total{{hub=\"http://{dead}/\"}}")
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
}

// ---------------------------------------------------------------------------------------
// 6. A fill that raced with a revocation

#[test]
fn a_fill_answered_before_an_acknowledged_revocation_is_asked_again_not_cached() {
    let _serial = serial();
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let first = pki.publish(dir.path()).sequence;
    let hub = Background::start(config_for(dir.path(), &demo_trust(), vec![])).expect("hub");
    let proxy = Proxy::start(hub.ocsp_addr, false);
    let cache = cache_with(&[(proxy.addr, hub.admin_addr)], "8s");
    wait_cache_acknowledged(cache.admin_addr, first, CONVERGE, "start-up");

    // A miss whose hub answer (good, from `first`) is held on the way back...
    let victim = nth_with_status('V', 4);
    proxy.hold.store(true, Ordering::SeqCst);
    let (addr, request) = (cache.ocsp_addr, request_for(&victim, false));
    let client = std::thread::spawn(move || post(addr, &request));
    assert!(wait_until(CONVERGE, || proxy.forwarded.load(Ordering::SeqCst) == 1));

    // ...while the certificate is revoked and the cache acknowledges that.
    pki.revoke_ec(&victim.serial);
    let second = pki.publish(dir.path()).sequence;
    wait_cache_acknowledged(cache.admin_addr, second, CONVERGE, "after the revocation");
    proxy.hold.store(false, Ordering::SeqCst);

    // The late answer is older than the acknowledged sequence: refused, asked again.
    let response = client.join().unwrap();
    assert_eq!(response.status, 200);
    let verdict = ocsp_edge::ocsp::verify_response(
        &response.body,
        &ocsp_edge::ocsp::decode_request(&request_for(&victim, false))
            .unwrap()
            .cert_id,
        &[
            ocsp_edge::pki::Certificate::from_pem(&std::fs::read_to_string(issuer_ca("ec")).unwrap())
                .unwrap(),
        ],
        ocsp_edge::time::UnixTime::now(),
    )
    .expect("a verified answer");
    assert!(
        matches!(verdict.status, ocsp_edge::ocsp::AnsweredStatus::Revoked { .. }),
        "the pre-revocation answer was served: {verdict:?}"
    );
    assert_eq!(fill_failures(cache.admin_addr, "lagging"), 1.0);
    assert_eq!(proxy.forwarded.load(Ordering::SeqCst), 2);
    assert_eq!(fills(cache.admin_addr, "cached"), 1.0);
    assert_openssl(
        cache.ocsp_addr,
        &victim,
        false,
        "revoked",
        "and it is what is cached",
    );
    assert_eq!(sample(cache.admin_addr, "ocsp_edge_cache_hits_total"), 1.0);
}
