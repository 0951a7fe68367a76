//! SIGHUP re-reads the configuration: what can change on a running process changes at
//! once (here the CRL cache policy and the log level), an invalid file changes nothing and
//! the process keeps serving, and settings that need a restart are named in the log.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;

/// The Cache-Control header of GET `path`, if the responder answers.
fn cache_control(addr: SocketAddr, path: &str) -> Option<String> {
    try_get(addr, path)
        .ok()?
        .header("cache-control")
        .map(str::to_string)
}

#[test]
fn sighup_applies_what_can_change_and_names_what_cannot() {
    let snapshots = tempfile::tempdir().unwrap();
    publish_demo(snapshots.path());
    let (mut edge, config) = ServeProcess::start(
        "[crl]\ncache_max_age = \"1h\"\n",
        &["--snapshots", &snapshots.path().display().to_string()],
    );
    let config = config.path();
    let limit = Duration::from_secs(10);
    let ocsp = edge.ocsp;
    let crl_policy = || cache_control(ocsp, "/crl/ec.crl");

    let ready = wait_until(limit, || crl_policy().is_some());
    let before = crl_policy();
    std::fs::write(config, "[crl]\ncache_max_age = \"2m\"\n[snapshots]\nkeep = 5\n").unwrap();
    edge.signal("-HUP");
    let applied = wait_until(limit, || {
        crl_policy().is_some_and(|c| c.starts_with("max-age=120,"))
    });

    std::fs::write(config, "[crl]\ncache_max_agee = \"5m\"\n").unwrap();
    edge.signal("-HUP");
    let refused = wait_until(limit, || {
        edge.log().contains("configuration invalid; nothing changed")
    });
    let unchanged = crl_policy();

    std::fs::write(
        config,
        "[crl]\ncache_max_age = \"2m\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    edge.signal("-HUP");
    let named = wait_until(limit, || edge.log().contains("log.format"));
    let alive = edge.alive();
    let log = edge.log();

    assert!(ready, "the responder never served: {log}");
    assert!(
        before.as_deref().is_some_and(|c| c.starts_with("max-age=3600,")),
        "{before:?}"
    );
    assert!(applied, "the reloaded cache policy was not applied: {log}");
    assert!(refused, "an invalid configuration was not reported: {log}");
    assert!(
        unchanged
            .as_deref()
            .is_some_and(|c| c.starts_with("max-age=120,")),
        "{unchanged:?}"
    );
    assert!(named, "a restart-only change was not named: {log}");
    assert!(alive, "the process must survive every reload");
}
