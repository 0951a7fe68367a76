//! The live publisher (`ocsp-edge publish --watch`, issue 16) through the real binary: a
//! change to index.txt is published as a delta within the debounce; with nothing changed
//! responses are re-signed before their refresh time; bad input is counted while the last
//! good snapshot stays; SIGHUP reloads (and keeps a good configuration over a bad one);
//! SIGTERM mid-publish leaves no partial snapshot; and an active/standby pair on one
//! directory fails over within the lease bound after `kill -9` with no sequence lost,
//! repeated or lowered while an edge keeps answering.

mod common;

use common::{
    demo_trust, file_names, first_with_status, good_request, index_rows, is_successful, post, wait_until,
    Pki, PublisherProcess, ServeProcess,
};
use ocsp_edge::model::Serial;
use ocsp_edge::snapshot::{self, Snapshot, StoredStatus, TrustAnchors};
use ocsp_edge::time::UnixTime;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Short lease and retry so that failover and recovery fit in a test.
const WATCH: &str =
    "[watch]\ndebounce = \"1s\"\nlease_duration = \"3s\"\nlease_renew = \"1s\"\nretry_after = \"2s\"\n";
const DELTA: &str = "[delta]\nfull_every = \"24h\"\n";
const DEBOUNCE: Duration = Duration::from_secs(1);

/// Appends TOML sections to the PKI's publish.toml.
fn configure(pki: &Pki, sections: &[&str]) {
    let mut toml = std::fs::read_to_string(pki.toml()).unwrap();
    for section in sections {
        toml.push('\n');
        toml.push_str(section);
    }
    std::fs::write(pki.toml(), toml).unwrap();
}

fn trust() -> TrustAnchors {
    let certificates = demo_trust()
        .iter()
        .map(|path| ocsp_edge::pki::Certificate::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap())
        .collect();
    TrustAnchors::new(certificates)
}

fn newest(out: &Path) -> Option<u64> {
    snapshot::manifest_sequences(out).ok()?.first().copied()
}

fn load(out: &Path, sequence: u64) -> Snapshot {
    snapshot::load_snapshot(out, sequence, &trust(), UnixTime::now()).unwrap()
}

fn revoked(snapshot: &Snapshot, serial: &str) -> bool {
    let serial = Serial::from_hex(serial).unwrap();
    matches!(
        snapshot.status_of("ec", &serial),
        Some(StoredStatus::Revoked { .. })
    )
}

/// The first `count` EC serials still `V` in the demo's index.
fn good_serials(count: usize) -> Vec<String> {
    index_rows("ec")
        .into_iter()
        .filter(|r| r.status == 'V')
        .skip(1) // good_request() asks for the first one: it stays good.
        .take(count)
        .map(|r| r.serial)
        .collect()
}

/// Adds `count` generated good certificates to ec/index.txt, so a full publish takes
/// seconds (one can be interrupted).
fn grow_index(pki: &Pki, count: u128) {
    let mut text = std::fs::read_to_string(pki.index("ec")).unwrap();
    for i in 0..count {
        text.push_str(&format!(
            "V\t360101000000Z\t\t{:032X}\tunknown\t/CN=bulk-{i}.demo.test\n",
            0x4000_0000_0000_0000_0000_0000_0000_0000u128 + i
        ));
    }
    std::fs::write(pki.index("ec"), text).unwrap();
}

fn temporaries(out: &Path) -> Vec<String> {
    file_names(out)
        .into_iter()
        .filter(|n| n.starts_with(snapshot::TEMP_PREFIX))
        .collect()
}

fn first_publish(publisher: &PublisherProcess, out: &Path) -> u64 {
    assert!(
        wait_until(Duration::from_secs(60), || newest(out).is_some()),
        "no first publish\n{}",
        publisher.log()
    );
    newest(out).unwrap()
}

#[test]
fn a_change_to_index_txt_is_published_as_a_delta_within_the_debounce() {
    let pki = Pki::new();
    configure(&pki, &[DELTA, WATCH]);
    let out = tempfile::tempdir().unwrap();
    let publisher = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    let first = first_publish(&publisher, out.path());
    assert!(
        load(out.path(), first).base().is_none(),
        "the first publish is full"
    );
    assert!(
        wait_until(Duration::from_secs(5), || publisher.ready().0 == 200),
        "{:?}",
        publisher.ready()
    );

    let serial = &good_serials(1)[0];
    let changed = Instant::now();
    pki.revoke_ec(serial);
    let bound = DEBOUNCE + Duration::from_secs(4);
    assert!(
        wait_until(bound, || newest(out.path()) > Some(first)),
        "not published within {bound:?}\n{}",
        publisher.log()
    );
    let latency = changed.elapsed();
    eprintln!("publish after change: {} ms", latency.as_millis());
    assert!(
        latency >= DEBOUNCE,
        "published before the debounce window closed: {latency:?}"
    );
    let snapshot = load(out.path(), newest(out.path()).unwrap());
    assert_eq!(
        snapshot.base().map(|b| b.sequence()),
        Some(first),
        "a delta on the first"
    );
    assert!(revoked(&snapshot, serial));
    assert!(wait_until(Duration::from_secs(2), || {
        publisher.metric("ocsp_edge_publisher_publishes_total{kind=\"delta\"}") == Some(1.0)
    }));
    let lag = publisher.metric("ocsp_edge_publisher_input_lag_seconds").unwrap();
    assert!(lag > 0.5 && lag < bound.as_secs_f64(), "input lag {lag}");
    assert_eq!(
        publisher.metric("ocsp_edge_publisher_last_sequence"),
        Some(newest(out.path()).unwrap() as f64)
    );
    assert_eq!(publisher.metric("ocsp_edge_publisher_lease_held"), Some(1.0));
}

#[test]
fn with_nothing_changed_responses_are_re_signed_before_their_refresh_time() {
    let pki = Pki::new();
    configure(
        &pki,
        &["[delta]\nfull_every = \"24h\"\nrefresh_after = \"4s\"\n", WATCH],
    );
    let out = tempfile::tempdir().unwrap();
    let inputs_before = std::fs::read(pki.index("ec")).unwrap();
    let publisher = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    let first = first_publish(&publisher, out.path());
    let first_expiry = load(out.path(), first).earliest_next_update();
    let mut deadline = 0.0;
    wait_until(Duration::from_secs(2), || {
        deadline = publisher
            .metric("ocsp_edge_publisher_refresh_deadline_seconds")
            .unwrap_or(0.0);
        deadline != 0.0
    });
    assert!(
        deadline > 80.0 * 3600.0,
        "96 h responses: 88 h to the forum's deadline, not {deadline}"
    );
    assert!(
        wait_until(Duration::from_secs(15), || newest(out.path()) > Some(first)),
        "no re-signing publish\n{}",
        publisher.log()
    );
    assert_eq!(
        std::fs::read(pki.index("ec")).unwrap(),
        inputs_before,
        "no input changed"
    );
    let refreshed = load(out.path(), newest(out.path()).unwrap());
    assert_eq!(refreshed.base().map(|b| b.sequence()), Some(first), "a delta");
    assert!(
        refreshed.earliest_next_update() > first_expiry,
        "every response re-signed: {} vs {}",
        refreshed.earliest_next_update(),
        first_expiry
    );
    assert!(publisher.log().contains("reason=Refresh"), "{}", publisher.log());
}

#[test]
fn bad_input_is_counted_the_last_good_snapshot_stays_and_the_fix_is_published() {
    let pki = Pki::new();
    configure(&pki, &[WATCH]);
    let out = tempfile::tempdir().unwrap();
    let mut publisher = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    let first = first_publish(&publisher, out.path());
    let good = std::fs::read_to_string(pki.index("ec")).unwrap();
    std::fs::write(pki.index("ec"), format!("{good}Q\tnot a line\n")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            publisher.metric("ocsp_edge_publisher_errors_total{kind=\"input\"}") >= Some(1.0)
        }),
        "{}",
        publisher.log()
    );
    let (status, body) = publisher.ready();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("index.txt"), "the reason names the file: {body}");
    assert_eq!(
        publisher.metric("ocsp_edge_publisher_last_publish_failed"),
        Some(1.0)
    );
    assert_eq!(
        newest(out.path()),
        Some(first),
        "nothing published from bad input"
    );
    assert!(publisher.is_running());

    std::fs::write(pki.index("ec"), good).unwrap();
    let serial = &good_serials(1)[0];
    pki.revoke_ec(serial);
    assert!(
        wait_until(Duration::from_secs(10), || newest(out.path()) > Some(first)),
        "{}",
        publisher.log()
    );
    assert!(revoked(&load(out.path(), newest(out.path()).unwrap()), serial));
    assert!(wait_until(Duration::from_secs(2), || publisher.ready().0 == 200));
    assert_eq!(
        publisher.metric("ocsp_edge_publisher_last_publish_failed"),
        Some(0.0)
    );
}

#[test]
fn sighup_reloads_the_configuration_and_keeps_the_old_one_when_the_new_is_bad() {
    let pki = Pki::new();
    configure(&pki, &[WATCH]);
    let out = tempfile::tempdir().unwrap();
    let mut publisher = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    let first = first_publish(&publisher, out.path());
    let good = std::fs::read_to_string(pki.toml()).unwrap();

    std::fs::write(pki.toml(), "validity = [this is not toml").unwrap();
    publisher.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(5), || {
            publisher.metric("ocsp_edge_publisher_errors_total{kind=\"reload\"}") == Some(1.0)
        }),
        "{}",
        publisher.log()
    );
    assert!(publisher.is_running());
    assert!(publisher.log().contains("keeping the previous one"));

    std::fs::write(
        pki.toml(),
        good.replace("validity = \"96h\"", "validity = \"100h\""),
    )
    .unwrap();
    publisher.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || newest(out.path()) > Some(first)),
        "{}",
        publisher.log()
    );
    let snapshot = load(out.path(), newest(out.path()).unwrap());
    let validity = snapshot.earliest_next_update().seconds() - snapshot.created_at().seconds();
    assert_eq!(validity, 100 * 3600, "published with the reloaded validity");
    assert!(publisher.log().contains("configuration reloaded"));
}

#[test]
fn sigterm_during_a_publish_exits_cleanly_leaving_no_partial_snapshot() {
    let pki = Pki::new();
    configure(&pki, &[&format!("{WATCH}shutdown_grace = \"1s\"\n")]);
    grow_index(&pki, 60_000);
    let out = tempfile::tempdir().unwrap();
    let mut publisher = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    assert!(
        wait_until(Duration::from_secs(60), || !temporaries(out.path()).is_empty()),
        "no publish in progress\n{}",
        publisher.log()
    );
    publisher.signal("TERM");
    let terminated = Instant::now();
    let status = publisher
        .wait_exit(Duration::from_secs(20))
        .expect("exits after SIGTERM");
    // shutdown_grace (1 s) + the abandoned publish's 3 s to stop + 1 s runtime shutdown.
    let bound = Duration::from_secs(1 + 3 + 1 + 2);
    assert!(
        terminated.elapsed() < bound,
        "exit took {:?}",
        terminated.elapsed()
    );
    assert!(status.success(), "{status:?}\n{}", publisher.log());
    assert!(
        publisher.log().contains("abandoning the publish in progress"),
        "{}",
        publisher.log()
    );
    assert_eq!(temporaries(out.path()), Vec::<String>::new());
    for sequence in snapshot::manifest_sequences(out.path()).unwrap() {
        load(out.path(), sequence);
    }
    assert!(
        !file_names(out.path())
            .iter()
            .any(|n| n.ends_with(".manifest.json") && !n.starts_with("latest")),
        "the abandoned publish made no manifest: {:?}",
        file_names(out.path())
    );
}

#[test]
fn the_standby_takes_over_after_kill_9_with_no_sequence_lost_repeated_or_lowered() {
    let pki = Pki::new();
    configure(&pki, &[WATCH]);
    // Full publishes of ~20,000 certificates take long enough to kill one midway.
    grow_index(&pki, 20_000);
    let out = tempfile::tempdir().unwrap();
    let mut active = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    let first = first_publish(&active, out.path());
    let standby = PublisherProcess::start(&pki.toml(), out.path(), &[]);
    assert!(
        wait_until(Duration::from_secs(5), || standby.ready().1.contains("standby")),
        "{:?}",
        standby.ready()
    );
    assert_eq!(standby.metric("ocsp_edge_publisher_lease_held"), Some(0.0));

    let (edge, _config) = ServeProcess::start("", &["--snapshots", out.path().to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(10), || is_successful(
        &post(edge.ocsp, &good_request()).body
    )));

    // Watch the store and the edge for the whole failover.
    let stop = Arc::new(AtomicBool::new(false));
    let observed = Arc::new(Mutex::new(Vec::<u64>::new()));
    let edge_failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let watcher = {
        let (stop, observed, failures) = (stop.clone(), observed.clone(), edge_failures.clone());
        let (dir, ocsp) = (out.path().to_path_buf(), edge.ocsp);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(sequence) = newest(&dir) {
                    observed.lock().unwrap().push(sequence);
                }
                let response = post(ocsp, &good_request());
                if response.status != 200 || !is_successful(&response.body) {
                    failures.lock().unwrap().push(format!("HTTP {}", response.status));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let serials = good_serials(2);
    pki.revoke_ec(&serials[0]);
    let active_temporaries = format!("{}{}-", snapshot::TEMP_PREFIX, active.pid());
    assert!(
        wait_until(Duration::from_secs(20), || temporaries(out.path())
            .iter()
            .any(|n| n.starts_with(&active_temporaries))),
        "the active never started publishing the change\n{}",
        active.log()
    );
    active.signal("KILL");
    let killed = Instant::now();
    active.wait_exit(Duration::from_secs(5)).expect("killed");
    let bound = Duration::from_secs(3 + 1 + 1);
    assert!(
        wait_until(Duration::from_secs(15), || standby
            .metric("ocsp_edge_publisher_lease_held")
            == Some(1.0)),
        "the standby never took over\n{}",
        standby.log()
    );
    let takeover = killed.elapsed();
    assert!(
        wait_until(Duration::from_secs(60), || newest(out.path())
            .is_some_and(|s| s > first && revoked(&load(out.path(), s), &serials[0]))),
        "the change the active was publishing never appeared\n{}",
        standby.log()
    );
    let published = killed.elapsed();
    eprintln!(
        "failover: lease taken {} ms after kill -9, the interrupted change published {} ms after it",
        takeover.as_millis(),
        published.as_millis()
    );
    assert!(takeover <= bound, "took over after {takeover:?}, bound {bound:?}");

    let before_second = newest(out.path()).unwrap();
    pki.revoke_ec(&serials[1]);
    assert!(
        wait_until(Duration::from_secs(60), || newest(out.path())
            > Some(before_second)),
        "{}",
        standby.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();

    let observed = observed.lock().unwrap().clone();
    assert!(
        observed.windows(2).all(|w| w[0] <= w[1]),
        "the newest sequence went down: {observed:?}"
    );
    let sequences = snapshot::manifest_sequences(out.path()).unwrap();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");
    for sequence in &sequences {
        load(out.path(), *sequence);
    }
    let last = load(out.path(), sequences[0]);
    assert!(revoked(&last, &serials[0]) && revoked(&last, &serials[1]));
    assert_eq!(
        *edge_failures.lock().unwrap(),
        Vec::<String>::new(),
        "the edge stopped answering"
    );
    assert!(wait_until(Duration::from_secs(10), || edge
        .log()
        .contains(&sequences[0].to_string())));
    let _ = first_with_status;
}
