//! A rolling restart under continuous load loses no request: a new process starts on the
//! same port (SO_REUSEPORT), the old one gets SIGTERM, turns not-ready, keeps accepting for
//! its grace period while answering with `Connection: close`, then drains and exits 0.
//!
//! Runs tests/support/rolling_restart.sh inside a private network namespace (needs root
//! and `unshare`, as CI has); skips with a note elsewhere.

mod common;

use std::process::Command;

#[test]
fn a_rolling_restart_under_load_loses_no_request() {
    let can_unshare = Command::new("unshare")
        .args(["--net", "true"])
        .status()
        .is_ok_and(|s| s.success());
    let missing =
        (!can_unshare).then(|| "cannot create a network namespace (needs root and unshare)".to_string());
    if common::skip_without("a_rolling_restart_under_load_loses_no_request", missing) {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let output = Command::new("bash")
        .arg(format!("{root}/tests/support/rolling_restart.sh"))
        .arg(env!("CARGO_BIN_EXE_ocsp-edge"))
        .arg(format!("{root}/fixtures/demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "script failed:\n{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    let field = |name: &str| -> i64 {
        summary
            .split_whitespace()
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {summary:?}\n{stderr}"))
    };
    assert_eq!(field("failures"), 0, "requests lost during the restart\n{stderr}");
    assert!(
        field("requests") > 1000,
        "too little load to mean anything: {summary}"
    );
    assert_eq!(field("a_exit"), 0, "the old process must exit 0 after draining");
}
