//! SIGHUP re-reads the configuration: what can change on a running process changes at
//! once (here the CRL cache policy and the log level), an invalid file changes nothing and
//! the process keeps serving, and settings that need a restart are named in the log.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Cache-Control header of GET `path`, via a raw HTTP/1.1 request.
fn cache_control(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    String::from_utf8_lossy(&response)
        .lines()
        .find_map(|l| l.strip_prefix("cache-control: ").map(String::from))
}

fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn sighup_applies_what_can_change_and_names_what_cannot() {
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
    let work = tempfile::tempdir().unwrap();
    let now = ocsp_edge::time::UnixTime::now();
    let plan = ocsp_edge::publish::PublishConfig::from_file(&demo.join("publish.toml"))
        .unwrap()
        .load(now)
        .unwrap();
    let snapshots = work.path().join("snapshots");
    ocsp_edge::publish::publish(&plan, &snapshots, now, &mut |_| {}).unwrap();
    let config = work.path().join("edge.toml");
    std::fs::write(&config, "[crl]\ncache_max_age = \"1h\"\n").unwrap();
    let (port, admin) = (free_port(), free_port());
    let log = work.path().join("edge.log");
    let mut edge = Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--snapshots")
        .arg(&snapshots)
        .arg("--trust")
        .arg(demo.join("ec/ca.pem"))
        .arg("--trust")
        .arg(demo.join("rsa/ca.pem"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let hangup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    let ready = wait_for(|| cache_control(port, "/crl/ec.crl").is_some());
    let before = cache_control(port, "/crl/ec.crl");
    std::fs::write(&config, "[crl]\ncache_max_age = \"2m\"\n[snapshots]\nkeep = 5\n").unwrap();
    hangup(edge.id());
    let applied =
        wait_for(|| cache_control(port, "/crl/ec.crl").is_some_and(|c| c.starts_with("max-age=120,")));

    std::fs::write(&config, "[crl]\ncache_max_agee = \"5m\"\n").unwrap();
    hangup(edge.id());
    let refused = wait_for(|| log_text().contains("configuration invalid; nothing changed"));
    let unchanged = cache_control(port, "/crl/ec.crl");

    std::fs::write(
        &config,
        "[crl]\ncache_max_age = \"2m\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    hangup(edge.id());
    let named = wait_for(|| log_text().contains("log.format"));
    let alive = edge.try_wait().unwrap().is_none();
    let _ = edge.kill();
    let _ = edge.wait();

    assert!(ready, "the responder never served: {}", log_text());
    assert!(
        before.as_deref().is_some_and(|c| c.starts_with("max-age=3600,")),
        "{before:?}"
    );
    assert!(
        applied,
        "the reloaded cache policy was not applied: {}",
        log_text()
    );
    assert!(
        refused,
        "an invalid configuration was not reported: {}",
        log_text()
    );
    assert!(
        unchanged
            .as_deref()
            .is_some_and(|c| c.starts_with("max-age=120,")),
        "{unchanged:?}"
    );
    assert!(named, "a restart-only change was not named: {}", log_text());
    assert!(alive, "the process must survive every reload");
}
