//! The cache tier's change feed under attack: a man in the middle between a hub and a
//! cache-mode responder rewrites `/changes` answers; a client floods the hub's feed. The
//! cache must keep answering `revoked` for what the hub revoked, never move its
//! acknowledged sequence backwards, never take labels from the feed, and count each
//! refusal by reason; the hub must bound what one client can hold.

use crate::common::*;
use ocsp_edge::server::Background;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(15);

/// The timing-sensitive tests of this file run one at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A hub serving a private demo PKI's snapshots, published into `dir`.
struct Hub {
    pki: Pki,
    dir: tempfile::TempDir,
    first: u64,
    server: Background,
}

impl Hub {
    fn start(extra: Vec<(&'static str, config::Value)>) -> Hub {
        let pki = Pki::new();
        let dir = tempfile::tempdir().unwrap();
        let first = pki.publish(dir.path()).sequence;
        let mut overrides = vec![("snapshots.long_poll", "5s".into())];
        overrides.extend(extra);
        let server = Background::start(config_for(dir.path(), &demo_trust(), overrides)).expect("hub start");
        Hub {
            pki,
            dir,
            first,
            server,
        }
    }

    /// Revokes `serials` (EC) and publishes; returns the new sequence once the hub serves it.
    fn revoke(&self, serials: &[&str]) -> u64 {
        for serial in serials {
            self.pki.revoke_ec(serial);
        }
        let sequence = self.pki.publish(self.dir.path()).sequence;
        assert!(wait_for_sequence(self.server.admin_addr, sequence, CONVERGE));
        // The change history takes in each swap on its own thread, off the swap path, so
        // serving the sequence does not mean /changes has it yet: wait until its head
        // (the `to` of a Gone answer to since=0) is the new sequence.
        let head = || {
            let response = get(self.server.admin_addr, "/changes?since=0");
            serde_json::from_slice::<Value>(&response.body)
                .ok()
                .and_then(|body| body["to"].as_u64())
        };
        assert!(
            wait_until(CONVERGE, || head() == Some(sequence)),
            "the hub's change history never reached {sequence}"
        );
        sequence
    }
}

fn refused(cache: &Background, reason: &str) -> f64 {
    sample(
        cache.admin_addr,
        &format!("ocsp_edge_cache_feed_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// The status `openssl ocsp` reports for EC certificate `row`, asked through `ocsp`,
/// after checking the response verifies.
fn status(ocsp: SocketAddr, row: &IndexRow) -> String {
    let (status, out) = openssl_status(ocsp, &issuer_ca("ec"), &row.cert("ec"), false);
    assert!(out.stderr.contains("Response verify OK"), "{out}");
    status
}

fn valid_ec(n: usize) -> IndexRow {
    index_rows("ec")
        .into_iter()
        .filter(|r| r.status == 'V')
        .nth(n)
        .expect("fixture row")
}

/// A rewrite of `/changes` answers with a JSON body; everything else passes untouched.
fn on_feed(edit: impl Fn(u16, &mut Value) -> bool + Send + Sync + 'static) -> Arc<Rewrite> {
    Arc::new(move |path: &str, mut answer: HttpResponse| {
        if !path.starts_with("/changes") {
            return answer;
        }
        let Ok(mut body) = serde_json::from_slice::<Value>(&answer.body) else {
            return answer;
        };
        if edit(answer.status, &mut body) {
            answer.body = serde_json::to_vec(&body).unwrap();
        }
        answer
    })
}

#[test]
fn an_emptied_change_list_is_refused_and_the_cache_answers_revoked() {
    let _one = one_at_a_time();
    if skip_without(
        "an_emptied_change_list_is_refused_and_the_cache_answers_revoked",
        not_on_path("openssl"),
    ) {
        return;
    }
    let hub = Hub::start(vec![]);
    let armed = Arc::new(AtomicBool::new(false));
    let emptied = Arc::new(AtomicUsize::new(0));
    let (arming, counting) = (armed.clone(), emptied.clone());
    // The attack of the review: one answer with its changes removed (and, for a feed that
    // carries evidence, the counts made to agree).
    let proxy = Interceptor::start(
        hub.server.admin_addr,
        on_feed(move |status, body| {
            let has_changes = body["changes"].as_array().is_some_and(|c| !c.is_empty());
            if status != 200 || !has_changes || !arming.swap(false, Ordering::SeqCst) {
                return false;
            }
            body["changes"] = json!([]);
            if let Some(steps) = body["steps"].as_array_mut() {
                for step in steps {
                    step["count"] = json!(0);
                }
            }
            counting.fetch_add(1, Ordering::SeqCst);
            true
        }),
    );
    let cache = cache_with(&[(hub.server.ocsp_addr, proxy.addr)], "1s");
    wait_cache_acknowledged(cache.admin_addr, hub.first, CONVERGE, "start-up");

    let victim = valid_ec(0);
    assert_eq!(status(cache.ocsp_addr, &victim), "good");
    assert_eq!(status(cache.ocsp_addr, &victim), "good");
    assert_eq!(
        sample(cache.admin_addr, "ocsp_edge_cache_hits_total"),
        1.0,
        "cached"
    );

    armed.store(true, Ordering::SeqCst);
    let second = hub.revoke(&[&victim.serial]);
    assert!(
        wait_until(CONVERGE, || emptied.load(Ordering::SeqCst) == 1),
        "the proxy never saw the step"
    );
    wait_cache_acknowledged(
        cache.admin_addr,
        second,
        CONVERGE,
        "after the refused step, through a signed 410",
    );
    assert_eq!(status(hub.server.ocsp_addr, &victim), "revoked", "the hub");
    assert_eq!(
        status(cache.ocsp_addr, &victim),
        "revoked",
        "the cache kept serving the pre-revocation answer"
    );
    assert_eq!(
        refused(&cache, "digest_mismatch"),
        1.0,
        "{}",
        metrics(cache.admin_addr)
    );
    // The unchanged certificates are still answered correctly.
    assert_eq!(status(cache.ocsp_addr, &valid_ec(1)), "good");
}

#[test]
fn a_replayed_older_410_does_not_move_the_acknowledged_sequence_back() {
    let _one = one_at_a_time();
    let hub = Hub::start(vec![]);
    // A genuine, signed manifest of the first sequence: anyone on the path saw it.
    let first_manifest =
        std::fs::read_to_string(hub.dir.path().join(ocsp_edge::snapshot::manifest_name(hub.first))).unwrap();
    let replay = Arc::new(AtomicBool::new(false));
    let replayed = Arc::new(AtomicUsize::new(0));
    let (replaying, counting) = (replay.clone(), replayed.clone());
    let first = hub.first;
    let proxy = Interceptor::start(
        hub.server.admin_addr,
        Arc::new(move |path: &str, mut answer: HttpResponse| {
            if path.starts_with("/changes") && replaying.load(Ordering::SeqCst) {
                answer.status = 410;
                answer.body = serde_json::to_vec(&json!({
                    "to": first,
                    "issuers": {},
                    "manifest": first_manifest,
                }))
                .unwrap();
                counting.fetch_add(1, Ordering::SeqCst);
            }
            answer
        }),
    );
    let cache = cache_with(&[(hub.server.ocsp_addr, proxy.addr)], "1s");
    wait_cache_acknowledged(cache.admin_addr, hub.first, CONVERGE, "start-up");
    let victim = valid_ec(0);
    let second = hub.revoke(&[&victim.serial]);
    wait_cache_acknowledged(cache.admin_addr, second, CONVERGE, "after the revocation");

    replay.store(true, Ordering::SeqCst);
    // The long-poll pending when the replay starts ends within change_wait (2 s).
    assert!(
        wait_until(CONVERGE, || replayed.load(Ordering::SeqCst) >= 2),
        "the cache stopped asking"
    );
    assert_eq!(
        cache_acknowledged(cache.admin_addr),
        second as f64,
        "{}",
        metrics(cache.admin_addr)
    );
    assert!(
        refused(&cache, "backwards") >= 1.0,
        "{}",
        metrics(cache.admin_addr)
    );
    if !skip_without(
        "a_replayed_older_410_does_not_move_the_acknowledged_sequence_back",
        not_on_path("openssl"),
    ) {
        assert_eq!(status(cache.ocsp_addr, &victim), "revoked");
    }
}

#[test]
fn issuer_names_from_the_feed_never_become_metric_labels() {
    let _one = one_at_a_time();
    let hub = Hub::start(vec![]);
    let round = Arc::new(AtomicUsize::new(0));
    let counting = round.clone();
    // Every answer renames the issuers: unbounded label values, if the cache believed it.
    let proxy = Interceptor::start(
        hub.server.admin_addr,
        on_feed(move |_, body| {
            let Some(issuers) = body["issuers"].as_object_mut() else {
                return false;
            };
            let n = counting.fetch_add(1, Ordering::SeqCst);
            let renamed: serde_json::Map<String, Value> = std::mem::take(issuers)
                .into_iter()
                .map(|(name, hashes)| (format!("injected-{n}-{name}"), hashes))
                .collect();
            *issuers = renamed;
            for change in body["changes"].as_array_mut().into_iter().flatten() {
                if let Some(name) = change["issuer"].as_str() {
                    change["issuer"] = json!(format!("injected-{n}-{name}"));
                }
            }
            true
        }),
    );
    let cache = cache_with(&[(hub.server.ocsp_addr, proxy.addr)], "1s");
    wait_cache_acknowledged(cache.admin_addr, hub.first, CONVERGE, "start-up");
    let second = hub.revoke(&[&valid_ec(0).serial]);
    wait_cache_acknowledged(cache.admin_addr, second, CONVERGE, "after the revocation");
    assert!(round.load(Ordering::SeqCst) >= 2);
    let answer = post(
        cache.ocsp_addr,
        &openssl_request(&issuer_ca("ec"), &valid_ec(1).cert("ec"), false, false),
    );
    assert!(is_successful(&answer.body));
    let text = metrics(cache.admin_addr);
    assert!(
        !text.contains("injected"),
        "a feed-supplied name became a label:\n{text}"
    );
    assert!(
        text.contains(r#"ocsp_edge_answers_total{issuer="ec",status="good"} 1"#),
        "labels come from the signed manifest:\n{text}"
    );
    // The renamed step cannot be matched to the manifest's issuers: refused, by a fixed
    // label, and the cache restarted through the (renamed, but signed) 410.
    assert!(
        refused(&cache, "unknown_issuer") >= 1.0,
        "{}",
        metrics(cache.admin_addr)
    );
}

#[test]
fn the_hub_pages_its_feed_and_bounds_long_polls_per_client() {
    let _one = one_at_a_time();
    if skip_without(
        "the_hub_pages_its_feed_and_bounds_long_polls_per_client",
        not_on_path("openssl"),
    ) {
        return;
    }
    let hub = Hub::start(vec![
        ("snapshots.changes_max_records", 1.into()),
        ("snapshots.changes_long_polls_per_client", 2.into()),
    ]);
    let admin = hub.server.admin_addr;
    let cache = cache_with(&[(hub.server.ocsp_addr, admin)], "1s");
    wait_cache_acknowledged(cache.admin_addr, hub.first, CONVERGE, "start-up");
    let victims = [valid_ec(0), valid_ec(1)];
    for victim in &victims {
        assert_eq!(status(cache.ocsp_addr, victim), "good");
    }
    let second = hub.revoke(&[&victims[0].serial, &victims[1].serial]);

    // One record per answer: the first page ends inside the step and claims nothing.
    let page = |query: &str| -> Value {
        let response = get(admin, &format!("/changes?{query}"));
        assert_eq!(response.status, 200, "{query}");
        serde_json::from_slice(&response.body).unwrap()
    };
    let first_page = page(&format!("since={}", hub.first));
    assert_eq!(
        first_page["changes"].as_array().map(Vec::len),
        Some(1),
        "{first_page}"
    );
    assert_eq!(
        first_page["to"],
        json!(hub.first),
        "a partial step is not claimed"
    );
    let rest = page(&format!("since={}&offset=1", hub.first));
    assert_eq!(rest["changes"].as_array().map(Vec::len), Some(1), "{rest}");
    assert_eq!(rest["to"], json!(second));
    // The cache follows the pages and applies the whole step.
    wait_cache_acknowledged(
        cache.admin_addr,
        second,
        CONVERGE,
        "after two revocations in one step",
    );
    for victim in &victims {
        assert_eq!(status(cache.ocsp_addr, victim), "revoked");
    }

    // Two long-polls from this address are held; a third is refused at once. (The cache,
    // on the same address, holds one too: it goes first.)
    drop(cache);
    let two_at_once = || {
        let polls: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || get(admin, &format!("/changes?since={second}&wait=1")).status)
            })
            .collect();
        polls.into_iter().all(|poll| poll.join().unwrap() == 200)
    };
    assert!(
        wait_until(CONVERGE, two_at_once),
        "the stopped cache's long-poll is still held"
    );
    let held: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get(admin, &format!("/changes?since={second}&wait=3")).status))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let refused = get(admin, &format!("/changes?since={second}&wait=3"));
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    for poll in held {
        assert_eq!(poll.join().unwrap(), 200);
    }
    // Released: a new long-poll is held again.
    assert_eq!(get(admin, &format!("/changes?since={second}&wait=1")).status, 200);
}

#[test]
fn a_pre_revocation_answer_relabelled_with_the_current_sequence_is_refused() {
    let _one = one_at_a_time();
    if skip_without(
        "a_pre_revocation_answer_relabelled_with_the_current_sequence_is_refused",
        not_on_path("openssl"),
    ) {
        return;
    }
    let hub = Hub::start(vec![]);
    // On the fill path: records the hub's answers, then (once `relabel` is set) replays
    // the last one recorded, a genuine signed `good`, under the unsigned header
    // `OCSP-Edge-Sequence: <relabel>`.
    let recorded: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let relabel = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let replayed = Arc::new(AtomicUsize::new(0));
    let (recording, relabelling, counting) = (recorded.clone(), relabel.clone(), replayed.clone());
    let proxy = Interceptor::start(
        hub.server.ocsp_addr,
        Arc::new(move |_: &str, mut answer: HttpResponse| {
            let sequence = relabelling.load(Ordering::SeqCst);
            let mut recorded = recording.lock().unwrap_or_else(|p| p.into_inner());
            if sequence == 0 {
                if is_successful(&answer.body) {
                    *recorded = Some(answer.body.clone());
                }
                return answer;
            }
            if let Some(old) = recorded.clone() {
                answer.body = old;
                answer.headers.retain(|(name, _)| name != "ocsp-edge-sequence");
                answer
                    .headers
                    .push(("ocsp-edge-sequence".into(), sequence.to_string()));
                counting.fetch_add(1, Ordering::SeqCst);
            }
            answer
        }),
    );
    let cache = cache_with(&[(proxy.addr, hub.server.admin_addr)], "1s");
    wait_cache_acknowledged(cache.admin_addr, hub.first, CONVERGE, "start-up");
    let victim = valid_ec(0);
    assert_eq!(status(cache.ocsp_addr, &victim), "good");
    // producedAt has one-second resolution: two publishes within one second cannot be
    // told apart by it (publishers run minutes apart).
    std::thread::sleep(Duration::from_millis(1100));
    let second = hub.revoke(&[&victim.serial]);
    wait_cache_acknowledged(cache.admin_addr, second, CONVERGE, "after the revocation");

    relabel.store(second, Ordering::SeqCst);
    let request = openssl_request(&issuer_ca("ec"), &victim.cert("ec"), false, false);
    for round in 1..=2 {
        let response = post(cache.ocsp_addr, &request);
        assert_eq!(
            response.body, TRY_LATER,
            "round {round}: the pre-revocation answer was served"
        );
    }
    assert!(replayed.load(Ordering::SeqCst) >= 2, "the proxy was not used");
    let text = metrics(cache.admin_addr);
    assert!(
        metric(&text, r#"ocsp_edge_cache_fill_failures_total{reason="stale"}"#).unwrap_or(0.0) >= 2.0,
        "{text}"
    );
    // An honest path again: the revocation is served.
    relabel.store(0, Ordering::SeqCst);
    assert_eq!(status(cache.ocsp_addr, &victim), "revoked");
}
