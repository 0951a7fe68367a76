//! The fleet: a small geo-distributed deployment on this machine, under continuous OCSP
//! load through a load balancer, taken through publishes and failures.
//!
//! Topology (network namespaces joined by a backbone router namespace; every address is
//! private to those namespaces, see tests/support/fleet/netns.sh):
//!
//! ```text
//!   origin 10.200.0.2   nginx over the publishers' directory (:80) and a bad mirror (:81)
//!      |  (delay proxy in each region, 40 ms each way, on every path to the origin)
//!   region A  hub-a 10.200.1.10 (http: origin)     edge-a1 .11, edge-a2 .12 (peer: hub-a,
//!                                                   then http: origin); mirror-edge .13
//!   region B  hub-b 10.200.2.10 (http: origin)     edge-b1 .11, edge-b2 .12 (same)
//!   clients   10.200.9.2  HAProxy (OCSP over the four edges, `GET /readyz` on each edge's
//!                         admin port) and the load client (POST and GET, every response
//!                         verified: status, CertID, signature, cert status, nextUpdate)
//! ```
//!
//! Two publishers, "active" and "standby" (`ocsp-edge publish` processes, each with its own
//! copy of the CA database), write in turn into the origin's directory. Scenarios, the load
//! running throughout: (1) publishes, a revocation, back-to-back publishes; (2) the origin,
//! then hub A, down, and edges in region A failing over to the origin; (3) region B cut
//! off and healed; (4) a new edge fed by a bad mirror (corrupted, wrongly signed, tampered,
//! rolled-back snapshots); (5) an edge restarted with every source down; (6) a snapshot
//! left to run up to its nextUpdate: edges leave the load balancer before anything is
//! stale, and answer tryLater after.
//!
//! Needs root (`ip netns add`), nginx, haproxy, curl, openssl and python3 with
//! `cryptography`; skips with a note when any is missing. `FLEET_KEEP=1` keeps the working
//! directory (logs, configurations, the load client's counters) for inspection.

mod common;

use common::netns::{self, hubs_and_edges, support, Responder, Sites, Source};
use common::{copy_dir, demo, issuer_ca, newest_manifest, run_command, wait_until};
use ocsp_edge::publish::PublishConfig;
use ocsp_edge::time::UnixTime;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const ORIGIN_IP: &str = "10.200.0.2";
const CLIENT_IP: &str = "10.200.9.2";
const LB: &str = "10.200.9.2:8080";
/// Added by the delay proxy to each direction of every inter-region connection.
const DELAY_MS: u32 = 40;
/// Publish → every edge serving it.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(10);
/// Responders' `snapshots.not_ready_before_expiry` (scenario 6 relies on it; harmless for
/// the 8 h snapshots of the other scenarios).
const NOT_READY_BEFORE_EXPIRY: i64 = 10;
/// How long before its nextUpdate the scenario-6 snapshot is published.
const EXPIRY_LEAD: i64 = 32;
const MIN_SUCCESS_RATIO: f64 = 0.9999;
/// Load: threads × requests per second per thread.
const LOAD_THREADS: u32 = 4;
const LOAD_RATE: u32 = 100;

// ---------------------------------------------------------------------------------------
// The test

#[test]
fn a_geo_distributed_fleet_under_load_survives_publishes_and_failures() {
    if common::skip_without(
        "fleet test",
        netns::missing_prerequisite(&["nginx", "haproxy", "curl", "openssl", "python3"]),
    ) {
        return;
    }
    let started = Instant::now();
    let mut fleet = Fleet::create();
    let mut report = Report::default();
    fleet.setup(&mut report);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        scenario_1_publish(&mut fleet, &mut report);
        scenario_2_origin_and_hub_down(&mut fleet, &mut report);
        scenario_3_region_cut(&mut fleet, &mut report);
        scenario_4_bad_mirror(&mut fleet, &mut report);
        scenario_5_cold_restart(&mut fleet, &mut report);
        scenario_6_expiry(&mut fleet, &mut report);
    }));
    let load = fleet.stop_load();
    let aborted = result.is_err();
    if aborted {
        report.fail(
            "fleet",
            "scenarios",
            "aborted by a failed requirement (see the panic above)".into(),
        );
    }
    judge_load(&load, &mut report);
    report.print(&fleet, &load, started.elapsed());
    if !report.failures.is_empty() {
        fleet.dump_logs();
        panic!(
            "fleet test: {} check(s) failed:\n  {}",
            report.failures.len(),
            report.failures.join("\n  ")
        );
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios

fn scenario_1_publish(fleet: &mut Fleet, report: &mut Report) {
    const S: &str = "1 publish";
    fleet.set_phase("1-publish");
    let fleet_names = fleet.fleet_names();
    let p = fleet.publish("standby");
    fleet.converge(&fleet_names, &p, S, "standby publish", report);

    // A revocation: the CA database (both publishers' copies) marks one V line R.
    let serial = fleet.to_revoke.clone();
    for who in ["active", "standby"] {
        revoke_in_index(&fleet.work.join(format!("pki-{who}/ec/index.txt")), &serial);
    }
    fleet.expect_to_revoke(&["good", "revoked"]);
    let p = fleet.publish("active");
    fleet.converge(&fleet_names, &p, S, "active publish with a revocation", report);
    fleet.expect_to_revoke(&["revoked"]);
    let through_lb = fleet.check_ocsp("c", LB, false);
    report.check(
        S,
        "revoked serial answered revoked through HAProxy after convergence",
        through_lb.is_ok(),
        through_lb.unwrap_or_else(|e| e),
    );

    // Back to back: standby then active within the same wall-clock second, the second
    // one after both hubs have fetched the first. A static origin's validators have a
    // one-second resolution (nginx: ETag = hex(mtime seconds)-hex(size), Last-Modified),
    // so the second latest.manifest.json can carry the first one's validators, and a
    // conditional GET then answers 304 Not Modified for a manifest that did change.
    sleep_to_next_second();
    let first = fleet.publish_now("standby");
    let first_etag = fleet.origin_etag();
    let hubs = ["hub-a".to_string(), "hub-b".to_string()];
    fleet.wait_converged(&hubs, first.sequence, Duration::from_secs(5));
    let second = fleet.publish_now("active");
    let second_etag = fleet.origin_etag();
    let same_second = whole_seconds(first.ended) == whole_seconds(second.ended);
    report.note(
        S,
        "back-to-back publishes",
        format!(
            "{} then {} ({:.0} ms apart, same second: {same_second}); latest.manifest.json {} then {} bytes; \
             origin ETag {first_etag} then {second_etag}",
            first.sequence,
            second.sequence,
            since(first.ended, second.ended) * 1000.0,
            first.latest_size,
            second.latest_size
        ),
    );
    let (converged, detail) = fleet.measure_convergence(
        &fleet_names,
        second.sequence,
        second.ended,
        &format!(
            "back-to-back, second publish ({} by {})",
            second.sequence, second.who
        ),
        S,
        report,
    );
    let diagnosis = if converged {
        String::new()
    } else {
        format!(
            " — BUG: the responders still serve {}: the origin's validators did not change (ETag {first_etag} \
             before and after; Last-Modified has one-second resolution too), so their conditional GET of \
             latest.manifest.json is answered 304 Not Modified until the next publish \
             (src/sync/source.rs Source::newer_manifest keeps validators of one-second resolution; \
             src/publish/sign.rs write_latest_pointer can replace the file within the same second)",
            first.sequence
        )
    };
    report.check(
        S,
        &format!(
            "a publish right after another (same second) reaches every responder within {PROPAGATION_LIMIT:?}"
        ),
        converged,
        format!("{detail}{diagnosis}"),
    );
    if !converged {
        // Unstick the fleet for the scenarios that follow: a publish in a later second.
        let p = fleet.publish("standby");
        fleet.converge(&fleet_names, &p, S, "recovery publish in a later second", report);
    }
    let sequences: Vec<u64> = fleet.published.iter().map(|p| p.sequence).collect();
    report.check(
        S,
        "publishers' sequences strictly increase",
        sequences.windows(2).all(|w| w[0] < w[1]),
        format!("{sequences:?}"),
    );
}

fn scenario_2_origin_and_hub_down(fleet: &mut Fleet, report: &mut Report) {
    const S: &str = "2 origin+hub down";
    fleet.set_phase("2-origin-and-hub-down");
    let all = fleet.fleet_names();
    let served = fleet.published.last().unwrap().sequence;
    fleet.stop("nginx", "TERM");
    std::thread::sleep(Duration::from_secs(3));
    fleet.stop("hub-a", "KILL");
    std::thread::sleep(Duration::from_secs(3));
    let serving: Vec<String> = ["edge-a1", "edge-a2", "edge-b1", "edge-b2", "hub-b"]
        .iter()
        .filter(|n| fleet.sequence(n) == Some(served) && fleet.ready(n))
        .map(|n| n.to_string())
        .collect();
    report.check(
        S,
        "origin and hub A down: every other responder keeps serving, ready",
        serving.len() == 5,
        format!("serving {served}: {serving:?}"),
    );
    fleet.start_nginx();
    let p = fleet.publish("active");
    let without_hub_a: Vec<String> = all.iter().filter(|n| *n != "hub-a").cloned().collect();
    fleet.converge(
        &without_hub_a,
        &p,
        S,
        "hub A down: region A edges fail over to the origin",
        report,
    );
    let restarted = SystemTime::now();
    fleet.start_responder("hub-a");
    fleet.converge_since(
        &["hub-a".to_string()],
        p.sequence,
        restarted,
        &format!("hub A restarted → serves {} (from its start)", p.sequence),
        S,
        "hub A restarted",
        report,
    );
    let p = fleet.publish("standby");
    fleet.converge(&all, &p, S, "publish after origin and hub A are back", report);
}

fn scenario_3_region_cut(fleet: &mut Fleet, report: &mut Report) {
    const S: &str = "3 region B cut";
    fleet.set_phase("3-region-b-cut");
    let before = fleet.published.last().unwrap().sequence;
    let region_a: Vec<String> = ["hub-a", "edge-a1", "edge-a2"].map(String::from).to_vec();
    let region_b: Vec<String> = ["hub-b", "edge-b1", "edge-b2"].map(String::from).to_vec();
    let id = fleet.sites.id.clone();
    fleet.sites.netns(&["cut", &id, "b"]);
    let cut_at = Instant::now();
    let lb_out = wait_until(Duration::from_secs(5), || {
        let status = fleet.haproxy_status();
        ["edge-b1", "edge-b2"]
            .iter()
            .all(|n| status.get(*n).is_some_and(|s| s.starts_with("DOWN")))
    });
    report.check(
        S,
        "HAProxy takes region B's edges out",
        lb_out,
        format!("{:.2} s after the cut", cut_at.elapsed().as_secs_f64()),
    );
    let p = fleet.publish("active");
    fleet.converge(&region_a, &p, S, "region A while B is cut off", report);
    std::thread::sleep(Duration::from_secs(4));
    let b_state: Vec<String> = region_b
        .iter()
        .map(|n| format!("{n}={:?}/ready={}", fleet.sequence(n), fleet.ready(n)))
        .collect();
    let b_kept = region_b
        .iter()
        .all(|n| fleet.sequence(n) == Some(before) && fleet.ready(n));
    report.check(
        S,
        "region B keeps serving its last good snapshot, ready",
        b_kept,
        b_state.join(" "),
    );
    for edge in ["edge-b1", "edge-b2"] {
        let target = format!("{}:8080", fleet.responders[edge].ip);
        let answer = fleet.check_ocsp("b", &target, false);
        report.check(
            S,
            &format!("{edge} answers correctly inside the cut-off region"),
            answer.is_ok(),
            answer.unwrap_or_else(|e| e),
        );
    }
    let id = fleet.sites.id.clone();
    fleet.sites.netns(&["heal", &id, "b"]);
    let healed = SystemTime::now();
    fleet.converge_since(
        &region_b,
        p.sequence,
        healed,
        &format!("heal → region B serves {} (from the heal)", p.sequence),
        S,
        "region B after the heal",
        report,
    );
    let lb_back = wait_until(Duration::from_secs(5), || {
        let status = fleet.haproxy_status();
        ["edge-b1", "edge-b2"]
            .iter()
            .all(|n| status.get(*n).is_some_and(|s| s.starts_with("UP")))
    });
    report.check(S, "HAProxy routes to region B again", lb_back, String::new());
}

fn scenario_4_bad_mirror(fleet: &mut Fleet, report: &mut Report) {
    const S: &str = "4 bad mirror";
    fleet.set_phase("4-bad-mirror");
    let current = fleet.published.last().unwrap().sequence;
    let spawned = SystemTime::now();
    fleet.start_responder("mirror-edge");
    fleet.converge_since(
        &["mirror-edge".to_string()],
        current,
        spawned,
        &format!("new edge with an empty cache → serves {current} (from its start)"),
        S,
        "new edge fed by hub A beside the bad mirror",
        report,
    );
    let mirror = fleet.work.join("mirror");
    let origin = fleet.work.join("origin");
    let latest_numbered = newest_manifest(&origin);

    // (a) A genuine newer manifest, its snapshot corrupted on the mirror.
    let scratch = fleet.work.join("scratch-corrupt");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::copy(
        &latest_numbered,
        scratch.join(latest_numbered.file_name().unwrap()),
    )
    .unwrap();
    let corrupt = publish_cli(&fleet.work.join("pki-active/publish.toml"), &scratch);
    let mut bytes = std::fs::read(&corrupt.snapshot).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0x5a;
    }
    offer_on_mirror(&mirror, &corrupt.manifest, Some((&corrupt.snapshot, bytes)));
    fleet.expect_refusal(S, "corrupted snapshot", "hash_mismatch", current, report);

    // (b) Published by a throwaway CA that impersonates the EC issuer.
    let scratch = fleet.work.join("scratch-evil");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::copy(
        &latest_numbered,
        scratch.join(latest_numbered.file_name().unwrap()),
    )
    .unwrap();
    let evil = publish_cli(&fleet.work.join("evil/publish.toml"), &scratch);
    let evil_bytes = std::fs::read(&evil.snapshot).unwrap();
    offer_on_mirror(&mirror, &evil.manifest, Some((&evil.snapshot, evil_bytes)));
    fleet.expect_refusal(
        S,
        "snapshot signed by another CA",
        "untrusted_signer",
        current,
        report,
    );

    // (c) A genuine manifest whose sequence was raised: the signature no longer verifies
    // (and the raised sequence must not become the anti-rollback floor).
    let text = std::fs::read_to_string(&latest_numbered).unwrap();
    let tampered = text.replacen(
        &format!("\"sequence\": {current}"),
        &format!("\"sequence\": {}", current + 1_000_000),
        1,
    );
    assert_ne!(
        text, tampered,
        "manifest layout changed: no \"sequence\": {current}"
    );
    let tampered_path = fleet.work.join("tampered.manifest.json");
    std::fs::write(&tampered_path, tampered).unwrap();
    offer_on_mirror(&mirror, &tampered_path, None);
    fleet.expect_refusal(S, "tampered manifest", "bad_signature", current, report);

    // (d) An older genuine snapshot offered as the newest.
    let old = fleet.work.join("first");
    let old_manifest = newest_manifest(&old);
    let old_snapshot = old_manifest.with_extension("").with_extension("snapshot");
    let old_bytes = std::fs::read(&old_snapshot).unwrap();
    offer_on_mirror(&mirror, &old_manifest, Some((&old_snapshot, old_bytes)));
    fleet.expect_refusal(S, "rolled-back snapshot", "rollback", current, report);

    let highest = fleet.metric("mirror-edge", "ocsp_edge_highest_sequence");
    report.check(
        S,
        "refused offers do not move the anti-rollback floor",
        highest == Some(current as f64),
        format!("ocsp_edge_highest_sequence {highest:?}, serving {current}"),
    );
    let answer = fleet.check_ocsp(
        "c",
        &format!("{}:8080", fleet.responders["mirror-edge"].ip),
        false,
    );
    report.check(
        S,
        "the mirror-fed edge keeps answering correctly",
        answer.is_ok(),
        answer.unwrap_or_else(|e| e),
    );

    // The good source still wins while the mirror keeps offering the old snapshot.
    let p = fleet.publish("standby");
    let mut names = fleet.fleet_names();
    names.push("mirror-edge".into());
    fleet.converge(
        &names,
        &p,
        S,
        "publish while the bad mirror is still offered",
        report,
    );
    let leftovers: Vec<String> = std::fs::read_dir(fleet.work.join("cache/mirror-edge"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-") || n.contains("snapshot") && !n.ends_with(".snapshot"))
        .collect();
    report.check(
        S,
        "no refused download is left in the edge's cache",
        leftovers.is_empty(),
        format!("{leftovers:?}"),
    );
    fleet.stop("mirror-edge", "TERM");
}

fn scenario_5_cold_restart(fleet: &mut Fleet, report: &mut Report) {
    const S: &str = "5 cold restart";
    fleet.set_phase("5-cold-restart");
    let current = fleet.published.last().unwrap().sequence;
    fleet.stop("nginx", "TERM");
    fleet.stop("hub-b", "KILL");
    fleet.stop("edge-b1", "TERM");
    let out = wait_until(Duration::from_secs(5), || {
        fleet
            .haproxy_status()
            .get("edge-b1")
            .is_some_and(|s| s.starts_with("DOWN"))
    });
    report.check(
        S,
        "HAProxy took edge-b1 out while it was stopped",
        out,
        String::new(),
    );
    let spawned = Instant::now();
    fleet.start_responder("edge-b1");
    let ready = wait_until(Duration::from_secs(10), || fleet.ready("edge-b1"));
    let took = spawned.elapsed().as_secs_f64();
    report.check(
        S,
        "edge-b1 restarted with hub B and the origin down is ready from its cache",
        ready && took < 5.0,
        format!(
            "ready {took:.2} s after start, serving {:?}",
            fleet.sequence("edge-b1")
        ),
    );
    report.check(
        S,
        "edge-b1 serves the newest snapshot it had",
        fleet.sequence("edge-b1") == Some(current),
        format!("{:?} (newest {current})", fleet.sequence("edge-b1")),
    );
    let answer = fleet.check_ocsp("b", &format!("{}:8080", fleet.responders["edge-b1"].ip), false);
    report.check(
        S,
        "edge-b1 answers correctly with every source down",
        answer.is_ok(),
        answer.unwrap_or_else(|e| e),
    );
    let back = wait_until(Duration::from_secs(5), || {
        fleet
            .haproxy_status()
            .get("edge-b1")
            .is_some_and(|s| s.starts_with("UP"))
    });
    report.check(S, "HAProxy routes to edge-b1 again", back, String::new());
    fleet.start_responder("hub-b");
    fleet.start_nginx();
    let all = fleet.fleet_names();
    let back_in_sync = fleet.wait_converged(&all, current, Duration::from_secs(10));
    let lagging: Vec<&String> = back_in_sync
        .iter()
        .filter(|(_, t)| t.is_none())
        .map(|(n, _)| n)
        .collect();
    report.check(
        S,
        "hub B and the origin back: every responder serves the newest",
        lagging.is_empty(),
        format!("lagging: {lagging:?}"),
    );
}

fn scenario_6_expiry(fleet: &mut Fleet, report: &mut Report) {
    const S: &str = "6 expiry";
    fleet.set_phase("6-expiry");
    // Publishers stop after this: a snapshot with 8 h validity published "8 h − 32 s ago".
    fleet.after_last_publish_second();
    let now = UnixTime::now();
    let past = now.plus_seconds(EXPIRY_LEAD - 8 * 3600);
    let mut config = PublishConfig::from_file(&fleet.work.join("pki-active/publish.toml")).unwrap();
    config.validity = "8h".into();
    let plan = config.load(past).expect("publish plan");
    let origin = fleet.work.join("origin");
    let report_lib = ocsp_edge::publish::publish(&plan, &origin, past, &mut |_| {}).expect("publish");
    let ended = SystemTime::now();
    let next_update = report_lib.earliest_next_update.seconds();
    let not_ready_at = next_update - NOT_READY_BEFORE_EXPIRY;
    // From here on, requests are outside the "at least one edge is ready" window.
    fleet.control.uncounted_after = Some(not_ready_at as f64);
    fleet.write_control();
    let p = Published {
        who: format!("active, library, now − (8h − {EXPIRY_LEAD}s)"),
        sequence: report_lib.sequence,
        ended,
        latest_size: std::fs::metadata(origin.join("latest.manifest.json"))
            .map(|m| m.len())
            .unwrap_or(0),
    };
    fleet.published.push(p.clone());
    let all = fleet.fleet_names();
    fleet.converge(&all, &p, S, "near-expiry snapshot", report);

    let edges = ["edge-a1", "edge-a2", "edge-b1", "edge-b2"];
    let out = wait_until(Duration::from_secs((EXPIRY_LEAD + 5) as u64), || {
        let status = fleet.haproxy_status();
        edges
            .iter()
            .all(|n| status.get(*n).is_some_and(|s| s.starts_with("DOWN")))
    });
    let all_out_at = unix_now();
    report.check(
        S,
        "every edge leaves HAProxy before nextUpdate",
        out && all_out_at < next_update as f64,
        format!(
            "all DOWN {:.2} s before nextUpdate (not ready from {:.0} s before)",
            next_update as f64 - all_out_at,
            NOT_READY_BEFORE_EXPIRY
        ),
    );
    let not_ready: Vec<&str> = edges.iter().copied().filter(|n| !fleet.ready(n)).collect();
    report.check(
        S,
        "edges report not ready (metrics and /readyz)",
        not_ready.len() == edges.len()
            && edges
                .iter()
                .all(|n| fleet.metric(n, "ocsp_edge_ready") == Some(0.0)),
        format!("not ready: {not_ready:?}"),
    );
    // Past nextUpdate: every edge answers tryLater, never a stale good.
    let wait = next_update as f64 + 1.5 - unix_now();
    if wait > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(wait));
    }
    for edge in edges {
        let target = format!("{}:8080", fleet.responders[edge].ip);
        let answer = fleet.check_ocsp("c", &target, true);
        report.check(
            S,
            &format!("{edge} answers tryLater after nextUpdate"),
            answer.is_ok(),
            answer.unwrap_or_else(|e| e),
        );
    }
}

/// Zero wrong and zero stale answers over the whole run; the success ratio over the
/// requests sent while at least one edge was meant to be ready.
fn judge_load(load: &serde_json::Value, report: &mut Report) {
    const S: &str = "load";
    let total = |key: &str, field: &str| load[key][field].as_u64().unwrap_or(0);
    let wrong = total("counted", "wrong") + total("uncounted", "wrong");
    let stale = total("counted", "stale") + total("uncounted", "stale");
    report.check(S, "zero wrong answers", wrong == 0, format!("{wrong}"));
    report.check(S, "zero stale answers", stale == 0, format!("{stale}"));
    let (ok, all) = (total("counted", "ok"), total("counted", "total"));
    let ratio = if all == 0 { 0.0 } else { ok as f64 / all as f64 };
    report.check(
        S,
        "success ratio while at least one edge is ready ≥ 99.99%",
        all >= 10_000 && ratio >= MIN_SUCCESS_RATIO,
        format!("{ok}/{all} = {:.4}%", ratio * 100.0),
    );
    report.check(
        S,
        "the load client ran to the end",
        load["finished"].as_bool() == Some(true),
        String::new(),
    );
}

// ---------------------------------------------------------------------------------------
// The fleet

#[derive(Clone, Debug)]
struct Published {
    who: String,
    sequence: u64,
    /// When the publisher had finished (latest.manifest.json in place).
    ended: SystemTime,
    latest_size: u64,
}

#[derive(Default, serde::Serialize)]
struct Control {
    phase: String,
    expect: BTreeMap<String, Vec<String>>,
    uncounted_after: Option<f64>,
    stop: bool,
}

struct Fleet {
    /// The namespaces and every process started in them; dropped (processes stopped,
    /// namespaces deleted) before the working directory.
    sites: Sites,
    work: PathBuf,
    /// Removed on drop unless FLEET_KEEP is set.
    _temp: Option<tempfile::TempDir>,
    responders: BTreeMap<&'static str, Responder>,
    published: Vec<Published>,
    control: Control,
    to_revoke: String,
    to_revoke_labels: Vec<String>,
}

impl Drop for Fleet {
    /// Keeps the working directory when FLEET_KEEP is set; `sites` then stops every
    /// process this test started (by PID) and deletes the namespaces, on success, on
    /// failure and on panic alike.
    fn drop(&mut self) {
        if let Some(temp) = self._temp.take() {
            if std::env::var_os("FLEET_KEEP").is_some() {
                eprintln!("fleet: kept {}", temp.keep().display());
            }
        }
    }
}

impl Fleet {
    /// Creates the namespaces (see [`Sites::up`]) and names the responders: the shared
    /// hubs and edges, plus an edge in region A fed by the bad mirror first.
    fn create() -> Fleet {
        let temp = tempfile::Builder::new().prefix("ocsp-fleet-").tempdir().unwrap();
        let work = temp.path().to_path_buf();
        let mut responders: BTreeMap<&'static str, Responder> =
            hubs_and_edges().into_iter().map(|r| (r.name, r)).collect();
        responders.insert(
            "mirror-edge",
            Responder {
                name: "mirror-edge",
                site: "a",
                ip: "10.200.1.13",
                sources: vec![
                    Source::Http("http://10.200.1.2:18081/"),
                    Source::Peer("10.200.1.10"),
                ],
            },
        );
        Fleet {
            sites: Sites::up(&work),
            work,
            _temp: Some(temp),
            responders,
            published: Vec::new(),
            control: Control::default(),
            to_revoke: String::new(),
            to_revoke_labels: Vec::new(),
        }
    }

    /// The hubs and the four load-balanced edges.
    fn fleet_names(&self) -> Vec<String> {
        ["hub-a", "edge-a1", "edge-a2", "hub-b", "edge-b1", "edge-b2"]
            .map(String::from)
            .to_vec()
    }

    fn setup(&mut self, report: &mut Report) {
        let setup_started = Instant::now();
        for dir in ["origin", "mirror", "first", "logs", "requests", "nginx-tmp"] {
            std::fs::create_dir_all(self.work.join(dir)).unwrap();
        }
        for who in ["active", "standby"] {
            let pki = self.work.join(format!("pki-{who}"));
            for sub in ["root", "ec", "rsa"] {
                copy_dir(&demo().join(sub), &pki.join(sub));
            }
            std::fs::copy(demo().join("publish.toml"), pki.join("publish.toml")).unwrap();
        }
        let evil = self.work.join("evil");
        run_command(
            Command::new("bash")
                .arg(support("throwaway_ca.sh"))
                .arg(&evil)
                .arg(demo()),
        )
        .assert_success();

        // The first snapshot, also kept aside for the rollback offer of scenario 4.
        let first = self.publish("active");
        for entry in std::fs::read_dir(self.work.join("origin")).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{:020}", first.sequence)) {
                std::fs::copy(entry.path(), self.work.join("first").join(&name)).unwrap();
            }
        }
        self.build_requests();

        self.start_nginx();
        self.sites.start_delay_proxies(DELAY_MS);
        for name in ["hub-a", "hub-b", "edge-a1", "edge-a2", "edge-b1", "edge-b2"] {
            self.start_responder(name);
        }
        let all = self.fleet_names();
        let times = self.wait_converged(&all, first.sequence, Duration::from_secs(20));
        assert!(
            times.values().all(Option::is_some),
            "the fleet never served the first snapshot: {times:?}\n{}",
            self.log_tails()
        );
        self.start_haproxy();
        let lb_up = wait_until(Duration::from_secs(10), || {
            let status = self.haproxy_status();
            status.len() == 4 && status.values().all(|s| s.starts_with("UP"))
        });
        assert!(
            lb_up,
            "HAProxy never saw the four edges up: {:?}",
            self.haproxy_status()
        );
        self.start_load();
        std::thread::sleep(Duration::from_secs(2));
        let warm = self.load_stats();
        let ok = warm["counted"]["ok"].as_u64().unwrap_or(0);
        assert!(ok > 100, "the load client is not getting answers: {warm}");
        report.note(
            "setup",
            "fleet up",
            format!(
                "{:.1} s; namespaces {}-{{bb,o,a,b,c}}; first snapshot {}",
                setup_started.elapsed().as_secs_f64(),
                self.sites.id,
                first.sequence
            ),
        );
    }

    fn spawn(&mut self, name: &str, site: &str, program: &str, args: &[String]) {
        self.sites.spawn(name, site, program, args);
    }

    fn stop(&mut self, name: &str, signal: &str) {
        self.sites.stop(name, signal);
    }

    /// nginx over the publishers' directory and the bad mirror.
    fn start_nginx(&mut self) {
        self.sites
            .start_origin(&self.work.join("origin"), &self.work.join("mirror"));
    }

    fn start_haproxy(&mut self) {
        let servers: String = ["edge-a1", "edge-a2", "edge-b1", "edge-b2"]
            .iter()
            .map(|n| format!("    server {n} {}:8080 check port 8081\n", self.responders[n].ip))
            .collect();
        let text = std::fs::read_to_string(support("haproxy.cfg.in"))
            .unwrap()
            .replace("@WORK@", &self.work.display().to_string())
            .replace("@LISTEN@", LB)
            .replace("@SERVERS@", &servers);
        let conf = self.work.join("haproxy.cfg");
        std::fs::write(&conf, text).unwrap();
        self.spawn(
            "haproxy",
            "c",
            "haproxy",
            &["-db".into(), "-f".into(), conf.display().to_string()],
        );
    }

    fn start_responder(&mut self, name: &str) {
        let settings = format!(
            "poll_interval = \"200ms\"\nlong_poll = \"5s\"\nmax_backoff = \"2s\"\nkeep = 3\n\
             not_ready_before_expiry = \"{NOT_READY_BEFORE_EXPIRY}s\""
        );
        self.sites.start_responder(
            &self.responders[name],
            &[issuer_ca("ec"), issuer_ca("rsa")],
            &settings,
        );
    }

    fn start_load(&mut self) {
        let args: Vec<String> = [
            support("ocsp_client.py").display().to_string(),
            "load".into(),
            "--target".into(),
            LB.into(),
            "--spec".into(),
            self.work.join("spec.json").display().to_string(),
            "--control".into(),
            self.work.join("control.json").display().to_string(),
            "--out".into(),
            self.work.join("load.json").display().to_string(),
            "--threads".into(),
            LOAD_THREADS.to_string(),
            "--rate".into(),
            LOAD_RATE.to_string(),
            "--max-seconds".into(),
            "420".into(),
        ]
        .to_vec();
        self.spawn("load", "c", "python3", &args);
    }

    /// Stops the load client (control `stop`, then by PID) and returns its final counters.
    fn stop_load(&mut self) -> serde_json::Value {
        self.control.stop = true;
        self.write_control();
        let sites = &mut self.sites;
        wait_until(Duration::from_secs(15), || !sites.running("load"));
        self.stop("load", "TERM");
        self.load_stats()
    }

    fn load_stats(&self) -> serde_json::Value {
        std::fs::read_to_string(self.work.join("load.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// `openssl ocsp -reqout` requests for a fixed set of demo serials (good and revoked,
    /// both issuers, SHA-1 and SHA-256 CertIDs), and the load client's spec and control.
    fn build_requests(&mut self) {
        let mut requests = Vec::new();
        for issuer in ["ec", "rsa"] {
            let index = std::fs::read_to_string(demo().join(issuer).join("index.txt")).unwrap();
            let rows: Vec<(char, String)> = index
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split('\t').collect();
                    (f.len() >= 4).then(|| (f[0].chars().next().unwrap_or('?'), f[3].to_string()))
                })
                .collect();
            let good: Vec<&String> = rows.iter().filter(|r| r.0 == 'V').map(|r| &r.1).collect();
            let revoked: Vec<&String> = rows.iter().filter(|r| r.0 == 'R').map(|r| &r.1).collect();
            let mut picks = vec![
                (format!("{issuer}-good"), good[0].clone(), "good", false),
                (format!("{issuer}-good-sha256"), good[2].clone(), "good", true),
                (format!("{issuer}-revoked"), revoked[0].clone(), "revoked", false),
                (
                    format!("{issuer}-revoked-sha256"),
                    revoked[1].clone(),
                    "revoked",
                    true,
                ),
            ];
            if issuer == "ec" {
                self.to_revoke = good[1].clone();
                picks.push(("ec-to-revoke".into(), good[1].clone(), "good", false));
                picks.push(("ec-to-revoke-sha256".into(), good[1].clone(), "good", true));
                self.to_revoke_labels = vec!["ec-to-revoke".into(), "ec-to-revoke-sha256".into()];
            }
            for (label, serial, status, sha256) in picks {
                let out = self.work.join("requests").join(format!("{label}.der"));
                let mut command = Command::new("openssl");
                command
                    .args(["ocsp", "-issuer"])
                    .arg(demo().join(issuer).join("ca.pem"));
                if sha256 {
                    command.arg("-sha256");
                }
                command
                    .arg("-cert")
                    .arg(demo().join(issuer).join("certs").join(format!("{serial}.pem")))
                    .args(["-no_nonce", "-reqout"])
                    .arg(&out);
                run_command(&mut command).assert_success();
                self.control
                    .expect
                    .insert(label.clone(), vec![status.to_string()]);
                requests.push(serde_json::json!({"label": label, "issuer": issuer, "der": out}));
            }
        }
        let spec = serde_json::json!({
            "requests": requests,
            "signers": {
                "ec": demo().join("ec/ocsp.pem"),
                "rsa": demo().join("rsa/ocsp.pem"),
            },
        });
        std::fs::write(self.work.join("spec.json"), spec.to_string()).unwrap();
        self.control.phase = "0-warmup".into();
        self.write_control();
    }

    fn write_control(&self) {
        let path = self.work.join("control.json");
        let temp = self.work.join("control.json.tmp");
        std::fs::write(&temp, serde_json::to_string(&self.control).unwrap()).unwrap();
        std::fs::rename(temp, path).unwrap();
    }

    fn set_phase(&mut self, phase: &str) {
        eprintln!(
            "fleet: phase {phase} ({:.1} s into the load)",
            self.load_stats()["elapsed"].as_f64().unwrap_or(0.0)
        );
        self.control.phase = phase.into();
        self.write_control();
    }

    fn expect_to_revoke(&mut self, statuses: &[&str]) {
        for label in self.to_revoke_labels.clone() {
            self.control
                .expect
                .insert(label, statuses.iter().map(|s| s.to_string()).collect());
        }
        self.write_control();
    }

    /// Runs one publisher process into the origin's directory, in a later wall-clock second
    /// than the previous publish ended in (see scenario 1's back-to-back publishes for
    /// why: validators of one-second resolution).
    fn publish(&mut self, who: &str) -> Published {
        self.after_last_publish_second();
        self.publish_now(who)
    }

    /// Waits, if needed, for a wall-clock second later than the last publish ended in.
    fn after_last_publish_second(&self) {
        if let Some(last) = self.published.last() {
            if whole_seconds(SystemTime::now()) <= whole_seconds(last.ended) {
                sleep_to_next_second();
            }
        }
    }

    /// Runs one publisher process into the origin's directory, now.
    fn publish_now(&mut self, who: &str) -> Published {
        let toml = self.work.join(format!("pki-{who}/publish.toml"));
        let out = publish_cli(&toml, &self.work.join("origin"));
        let p = Published {
            who: who.to_string(),
            sequence: out.sequence,
            ended: out.ended,
            latest_size: std::fs::metadata(self.work.join("origin/latest.manifest.json"))
                .map(|m| m.len())
                .unwrap_or(0),
        };
        self.published.push(p.clone());
        p
    }

    /// Waits for `names` to serve `p`, records the propagation times (from the
    /// responders' "snapshot swapped in" log lines, else from when metrics first showed
    /// it) and checks them against the limit.
    fn converge(
        &self,
        names: &[String],
        p: &Published,
        scenario: &str,
        what: &str,
        report: &mut Report,
    ) -> bool {
        self.converge_since(
            names,
            p.sequence,
            p.ended,
            &format!("{what} ({} by {})", p.sequence, p.who),
            scenario,
            what,
            report,
        )
    }

    /// As [`Fleet::converge`], timed from `start` (a publish's end, a process's start).
    #[allow(clippy::too_many_arguments)]
    fn converge_since(
        &self,
        names: &[String],
        sequence: u64,
        start: SystemTime,
        label: &str,
        scenario: &str,
        what: &str,
        report: &mut Report,
    ) -> bool {
        let (passed, detail) = self.measure_convergence(names, sequence, start, label, scenario, report);
        report.check(
            scenario,
            &format!("{what}: every responder serves {sequence} within {PROPAGATION_LIMIT:?}"),
            passed,
            detail,
        );
        passed
    }

    /// Waits for `names` to serve `sequence`, records the times from `start` in the
    /// report's propagation table, and says whether all made it within the limit.
    fn measure_convergence(
        &self,
        names: &[String],
        sequence: u64,
        start: SystemTime,
        label: &str,
        scenario: &str,
        report: &mut Report,
    ) -> (bool, String) {
        let wait = PROPAGATION_LIMIT + Duration::from_secs(5);
        let times = self.wait_converged(names, sequence, wait);
        let measured: Timings = times
            .iter()
            .map(|(n, t)| (n.clone(), t.map(|t| since(start, t))))
            .collect();
        let worst = measured.iter().filter_map(|(_, t)| *t).fold(0.0, f64::max);
        let missing: Vec<&String> = measured
            .iter()
            .filter(|(_, t)| t.is_none())
            .map(|(n, _)| n)
            .collect();
        report
            .propagation
            .push((format!("{scenario}: {label}"), measured.clone()));
        if missing.is_empty() {
            return (
                worst < PROPAGATION_LIMIT.as_secs_f64(),
                format!("slowest {worst:.2} s"),
            );
        }
        let served: Vec<String> = missing
            .iter()
            .map(|n| format!("{n} serves {:?}", self.sequence(n)))
            .collect();
        (
            false,
            format!("not converged after {wait:?}: {}", served.join(", ")),
        )
    }

    /// Polls `names` until each serves `sequence` (metrics); returns when each started to
    /// (its log line's time, or the poll's).
    fn wait_converged(
        &self,
        names: &[String],
        sequence: u64,
        limit: Duration,
    ) -> BTreeMap<String, Option<SystemTime>> {
        let deadline = Instant::now() + limit;
        let mut seen: BTreeMap<String, Option<SystemTime>> =
            names.iter().map(|n| (n.clone(), None)).collect();
        loop {
            for (name, when) in seen.iter_mut() {
                if when.is_none() && self.sequence(name) == Some(sequence) {
                    *when = Some(self.swap_logged(name, sequence).unwrap_or_else(SystemTime::now));
                }
            }
            if seen.values().all(Option::is_some) || Instant::now() > deadline {
                return seen;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// When the responder's log says it swapped `sequence` in.
    fn swap_logged(&self, name: &str, sequence: u64) -> Option<SystemTime> {
        let text = std::fs::read_to_string(self.sites.log_of(name)?).ok()?;
        let needle = format!("sequence={sequence}");
        text.lines()
            .filter(|l| l.contains("snapshot swapped in") && l.split_whitespace().any(|w| w == needle))
            .find_map(|l| {
                let stamp = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
                Some(UNIX_EPOCH + Duration::from_micros(stamp.timestamp_micros().try_into().ok()?))
            })
    }

    /// Waits for a refusal with `reason` by the mirror-fed edge, which must go on serving
    /// `current`.
    fn expect_refusal(&self, scenario: &str, what: &str, reason: &str, current: u64, report: &mut Report) {
        let series = format!("ocsp_edge_snapshots_refused_total{{reason=\"{reason}\"}}");
        let before = self.metric("mirror-edge", &series).unwrap_or(0.0);
        let refused = wait_until(Duration::from_secs(10), || {
            self.metric("mirror-edge", &series).unwrap_or(0.0) > before
        });
        let serving = self.sequence("mirror-edge");
        report.check(
            scenario,
            &format!("{what} refused ({reason}), the edge still serves {current}"),
            refused && serving == Some(current) && self.ready("mirror-edge"),
            format!(
                "{series} {before} → {:?}; serving {serving:?}",
                self.metric("mirror-edge", &series)
            ),
        );
    }

    fn site_of(&self, name: &str) -> (&'static str, &'static str) {
        let r = &self.responders[name];
        (r.site, r.ip)
    }

    fn curl(&self, site: &str, url: &str) -> Option<(u16, String)> {
        self.sites.curl(site, url)
    }

    /// The ETag the origin gives latest.manifest.json.
    fn origin_etag(&self) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &format!("{}-o", self.sites.id)])
            .args([
                "curl",
                "-s",
                "-m",
                "2",
                "-I",
                &format!("http://{ORIGIN_IP}/latest.manifest.json"),
            ])
            .output();
        output
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                    l.to_ascii_lowercase()
                        .starts_with("etag:")
                        .then(|| l[5..].trim().to_string())
                })
            })
            .unwrap_or_else(|| "?".into())
    }

    fn metric(&self, name: &str, series: &str) -> Option<f64> {
        self.sites.metric(&self.responders[name], series)
    }

    fn sequence(&self, name: &str) -> Option<u64> {
        self.sites.sequence(&self.responders[name])
    }

    fn ready(&self, name: &str) -> bool {
        let (site, ip) = self.site_of(name);
        self.curl(site, &format!("http://{ip}:8081/readyz"))
            .is_some_and(|(status, _)| status == 200)
    }

    /// Every request once by POST and once by GET against `target`, from namespace
    /// `ID-site`, judged against the current expectations (or tryLater).
    fn check_ocsp(&self, site: &str, target: &str, try_later: bool) -> Result<String, String> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &format!("{}-{site}", self.sites.id), "python3"])
            .arg(support("ocsp_client.py"))
            .args(["check", "--target", target, "--spec"])
            .arg(self.work.join("spec.json"))
            .arg("--control")
            .arg(self.work.join("control.json"));
        if try_later {
            command.arg("--expect-try-later");
        }
        let output = command.output().map_err(|e| e.to_string())?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let verdict: serde_json::Value = serde_json::from_str(stdout.trim()).map_err(|_| {
            format!(
                "checker output: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        let summary = format!("{}/{} as expected", verdict["ok"], verdict["total"]);
        if output.status.success() {
            Ok(summary)
        } else {
            Err(format!("{summary}: {}", verdict["problems"]))
        }
    }

    /// HAProxy's view of the edges (`show stat` on its admin socket): name → status.
    fn haproxy_status(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Ok(mut socket) = UnixStream::connect(self.work.join("haproxy.sock")) else {
            return out;
        };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(2)));
        if socket.write_all(b"show stat\n").is_err() {
            return out;
        }
        let mut text = String::new();
        let _ = socket.read_to_string(&mut text);
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            return out;
        };
        let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
        let column = |name: &str| columns.iter().position(|c| *c == name);
        let (Some(px), Some(sv), Some(st)) = (column("pxname"), column("svname"), column("status")) else {
            return out;
        };
        for line in lines {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.get(px) == Some(&"edges") && !matches!(fields.get(sv), Some(&"BACKEND") | None) {
                out.insert(fields[sv].to_string(), fields.get(st).unwrap_or(&"").to_string());
            }
        }
        out
    }

    fn log_tails(&self) -> String {
        self.sites.log_tails()
    }

    fn dump_logs(&self) {
        eprintln!("fleet: last lines of each process's log\n{}", self.log_tails());
        if let Ok(text) = std::fs::read_to_string(self.work.join("nginx-error.log")) {
            eprintln!("--- nginx error log\n{text}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

struct CliPublish {
    sequence: u64,
    ended: SystemTime,
    snapshot: PathBuf,
    manifest: PathBuf,
}

/// `ocsp-edge publish --config TOML --out OUT --validity 8h`, as a process.
fn publish_cli(toml: &Path, out: &Path) -> CliPublish {
    let output = run_command(
        common::ocsp_edge_command()
            .args(["publish", "--config"])
            .arg(toml)
            .arg("--out")
            .arg(out)
            .args(["--validity", "8h"])
            .env_remove("RUST_LOG"),
    );
    let ended = SystemTime::now();
    assert!(output.success, "publish {}: {output}", toml.display());
    let stdout = &output.stdout;
    let sequence: u64 = stdout
        .split_whitespace()
        .skip_while(|w| *w != "sequence")
        .nth(1)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no sequence in {stdout:?}"));
    CliPublish {
        sequence,
        ended,
        snapshot: out.join(format!("{sequence:020}.snapshot")),
        manifest: out.join(format!("{sequence:020}.manifest.json")),
    }
}

/// Puts `manifest` up as the mirror's latest.manifest.json (and the snapshot it names),
/// each replaced atomically.
fn offer_on_mirror(mirror: &Path, manifest: &Path, snapshot: Option<(&Path, Vec<u8>)>) {
    if let Some((path, bytes)) = snapshot {
        let name = path.file_name().unwrap();
        let temp = mirror.join(".incoming");
        std::fs::write(&temp, bytes).unwrap();
        std::fs::rename(&temp, mirror.join(name)).unwrap();
    }
    let temp = mirror.join(".incoming");
    std::fs::copy(manifest, &temp).unwrap();
    std::fs::rename(&temp, mirror.join("latest.manifest.json")).unwrap();
}

/// Turns the `V` line of `serial` into a keyCompromise revocation a minute ago.
fn revoke_in_index(index: &Path, serial: &str) {
    let when = chrono::Utc::now() - chrono::Duration::seconds(60);
    let date = when.format("%y%m%d%H%M%SZ").to_string();
    let text = std::fs::read_to_string(index).unwrap();
    let mut changed = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut fields: Vec<String> = line.split('\t').map(String::from).collect();
            if fields.len() >= 4 && fields[3] == serial && fields[0] == "V" {
                fields[0] = "R".into();
                fields[2] = format!("{date},keyCompromise");
                changed += 1;
            }
            fields.join("\t")
        })
        .collect();
    assert_eq!(changed, 1, "{serial} is not a V line of {}", index.display());
    std::fs::write(index, lines.join("\n") + "\n").unwrap();
}

fn since(start: SystemTime, end: SystemTime) -> f64 {
    match end.duration_since(start) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

fn whole_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Sleeps until 20 ms into the next wall-clock second.
fn sleep_to_next_second() {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let into = Duration::from_nanos(u64::from(now.subsec_nanos()));
    std::thread::sleep(Duration::from_secs(1) - into + Duration::from_millis(20));
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------------------
// The report

/// (responder, seconds from the start of the measurement; `None`: never)
type Timings = Vec<(String, Option<f64>)>;

#[derive(Default)]
struct Report {
    /// (scenario, check, passed, detail)
    checks: Vec<(String, String, Option<bool>, String)>,
    /// (what, [(responder, seconds from the end of the publish)])
    propagation: Vec<(String, Timings)>,
    failures: Vec<String>,
}

impl Report {
    fn check(&mut self, scenario: &str, what: &str, passed: bool, detail: String) {
        eprintln!(
            "fleet: [{}] {scenario}: {what} {detail}",
            if passed { "ok" } else { "FAILED" }
        );
        if !passed {
            self.failures.push(format!("{scenario}: {what}: {detail}"));
        }
        self.checks
            .push((scenario.into(), what.into(), Some(passed), detail));
    }

    fn note(&mut self, scenario: &str, what: &str, detail: String) {
        eprintln!("fleet: {scenario}: {what} {detail}");
        self.checks.push((scenario.into(), what.into(), None, detail));
    }

    fn fail(&mut self, scenario: &str, what: &str, detail: String) {
        self.check(scenario, what, false, detail);
    }

    fn print(&self, fleet: &Fleet, load: &serde_json::Value, runtime: Duration) {
        let mut out = String::new();
        let _ = writeln!(out, "\n==== fleet summary ({:.0} s) ====", runtime.as_secs_f64());
        let _ = writeln!(
            out,
            "topology: namespaces {id}-o (nginx origin {ORIGIN_IP}), {id}-a (hub-a, edge-a1, edge-a2, mirror-edge), \
             {id}-b (hub-b, edge-b1, edge-b2), {id}-c (HAProxy {LB}, load client {CLIENT_IP}), joined by router {id}-bb; \
             delay proxy {DELAY_MS} ms each way on every path to the origin",
            id = fleet.sites.id
        );
        let _ = writeln!(
            out,
            "\npropagation (s from the end of the publish to the responder serving it):"
        );
        for (what, times) in &self.propagation {
            let cells: Vec<String> = times
                .iter()
                .map(|(n, t)| match t {
                    Some(t) => format!("{n} {t:.2}"),
                    None => format!("{n} NEVER"),
                })
                .collect();
            let _ = writeln!(out, "  {what}\n      {}", cells.join("  "));
        }
        let _ = writeln!(
            out,
            "\nload through HAProxy ({} threads × {} req/s, POST and GET alternating):",
            LOAD_THREADS, LOAD_RATE
        );
        let _ = writeln!(
            out,
            "  {:<26} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9}  failures",
            "phase", "total", "ok", "wrong", "stale", "fail", "success"
        );
        let row = |out: &mut String, name: &str, c: &serde_json::Value| {
            let n = |k: &str| c[k].as_u64().unwrap_or(0);
            let ratio = if n("total") == 0 {
                "-".to_string()
            } else {
                format!("{:.3}%", 100.0 * n("ok") as f64 / n("total") as f64)
            };
            let _ = writeln!(
                out,
                "  {:<26} {:>8} {:>8} {:>6} {:>6} {:>6} {:>9}  {}",
                name,
                n("total"),
                n("ok"),
                n("wrong"),
                n("stale"),
                n("fail"),
                ratio,
                c["fail_kinds"]
            );
        };
        for phase in load["phases"].as_array().into_iter().flatten() {
            row(&mut out, phase["phase"].as_str().unwrap_or("?"), phase);
        }
        row(&mut out, "COUNTED (≥1 edge ready)", &load["counted"]);
        row(&mut out, "uncounted (none ready)", &load["uncounted"]);
        let _ = writeln!(
            out,
            "  counted = every request the load client sent before the last snapshot's nextUpdate − \
             not_ready_before_expiry ({NOT_READY_BEFORE_EXPIRY} s), when every edge turns not ready by design; \
             success = HTTP 200 + OCSP successful + right CertID + valid signature + expected status + nextUpdate > now"
        );
        // Wrong and stale answers first, then failures while an edge was ready, then the rest.
        let mut examples = load["examples"].as_array().cloned().unwrap_or_default();
        examples.sort_by_key(|e| {
            let rank = match (e["category"].as_str(), e["counted"].as_bool()) {
                (Some("wrong" | "stale"), _) => 0,
                (_, Some(true)) => 1,
                _ => 2,
            };
            (rank, (e["at"].as_f64().unwrap_or(0.0) * 1000.0) as u64)
        });
        if !examples.is_empty() {
            let _ = writeln!(
                out,
                "  unsuccessful answers (wrong/stale first, then while an edge was ready):"
            );
            for e in examples.iter().take(12) {
                let _ = writeln!(out, "    {e}");
            }
        }
        let _ = writeln!(out, "\nchecks:");
        for (scenario, what, passed, detail) in &self.checks {
            let mark = match passed {
                Some(true) => "ok  ",
                Some(false) => "FAIL",
                None => "    ",
            };
            let _ = writeln!(out, "  {mark} {scenario:<18} {what}  {detail}");
        }
        // Straight to the process's stderr (not the test harness's capture), so CI logs
        // show the table whether the test passes or fails.
        let _ = std::io::stderr().write_all(out.as_bytes());
    }
}
