//! Every series docs/metrics.md documents is registered by a responder built as
//! production builds it ([`super::build`]), and nothing undocumented is: a component
//! that stops registering a series (or registers it into a registry `/metrics` does not
//! render) fails here, not on a dashboard. `deploy/validate.sh` checks the names in the
//! source text; this checks what is exposed.

use super::{build, Responder};
use crate::config::{Config, Sources};
use ocsp_edge_core::time::UnixTime;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The prefix of the cache tier's series (written so that `deploy/validate.sh`, which
/// takes every quoted `ocsp_edge_…` string for a metric name, does not take it for one).
const CACHE_TIER: &str = concat!("ocsp_edge_", "cache_");

fn repository(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

/// The names in the first column of docs/metrics.md's tables, the publisher's excepted
/// (it is another process).
fn documented() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(repository("docs/metrics.md")).unwrap();
    let names: BTreeSet<String> = doc
        .lines()
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .filter(|name| {
            name.strip_prefix("ocsp_edge_")
                .is_some_and(|rest| !rest.starts_with("publisher_"))
        })
        .map(str::to_string)
        .collect();
    assert!(names.len() > 20, "docs/metrics.md lists only {names:?}");
    names
}

/// The metric families a scrape of `responder` shows, after one event for each series
/// that only gets a label value with its first event (answers, CRL bytes, replication
/// sources; the CRL gauges come from the snapshot's CRLs).
fn exposed(responder: &Responder) -> BTreeSet<String> {
    responder.metrics.count_answer("ec", false);
    responder.metrics.count_document_bytes("/crl/ec.crl", 1);
    let replication = responder.state.replication();
    replication.source_started("https://origin.example/");
    replication.round_started("https://origin.example/");
    let text = String::from_utf8(responder.render_metrics(UnixTime::now())).unwrap();
    text.lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .map(str::to_string)
        .collect()
}

fn config(overrides: Vec<(&'static str, config::Value)>, file: Option<PathBuf>) -> Config {
    let trust: Vec<String> = ["ec/ca.pem", "rsa/ca.pem"]
        .iter()
        .map(|p| repository("fixtures/demo").join(p).display().to_string())
        .collect();
    let mut all = vec![("snapshots.trust", trust.into())];
    all.extend(overrides);
    Config::load(Sources {
        file,
        overrides: all,
        ..Default::default()
    })
    .unwrap()
}

#[test]
fn a_snapshot_mode_responder_exposes_every_documented_series_but_the_cache_tiers() {
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::now();
    let plan =
        ocsp_edge_publisher::publish::PublishConfig::from_file(&repository("fixtures/demo/publish.toml"))
            .unwrap()
            .load(now)
            .unwrap();
    ocsp_edge_publisher::publish::publish(&plan, dir.path(), now, &mut |_| {}).unwrap();
    let responder = build(config(
        vec![("snapshots.dir", dir.path().display().to_string().into())],
        None,
    ))
    .unwrap();
    responder.state.poll_directory(now);
    assert!(
        responder.state.current_sequence().is_some(),
        "the demo snapshot loads"
    );
    let expected: BTreeSet<String> = documented()
        .into_iter()
        .filter(|name| !name.starts_with(CACHE_TIER))
        .collect();
    assert_eq!(exposed(&responder), expected);
}

#[test]
fn a_cache_mode_responder_exposes_every_documented_series() {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    // Nothing listens there: building a responder contacts no hub.
    let hubs = "[cache]\n[[cache.hubs]]\nocsp = \"http://127.0.0.1:9/\"\nadmin = \"http://127.0.0.1:9/\"\n";
    std::fs::write(file.path(), hubs).unwrap();
    let responder = build(config(vec![], Some(file.path().to_path_buf()))).unwrap();
    assert!(responder.state.cache().is_some());
    // Registered, but a cache serves no CRL, so the per-path CRL gauges have no series.
    let crl_gauges = [
        "ocsp_edge_crl_number",
        "ocsp_edge_crl_this_update_timestamp_seconds",
        "ocsp_edge_crl_seconds_until_next_update",
    ];
    let expected: BTreeSet<String> = documented()
        .into_iter()
        .filter(|name| !crl_gauges.contains(&name.as_str()))
        .collect();
    assert_eq!(exposed(&responder), expected);
}
