//! Responders under test: in-process ([`TestServer`], cache mode) and the real binary
//! ([`ServeProcess`]), their configuration, and their admin endpoint.

use super::*;

/// A responder configuration for tests: `dir`, the given trust anchors, ephemeral ports on
/// 127.0.0.1, a 100 ms poll interval, plus `extra` overrides (later ones win).
pub fn config_for(dir: &Path, trust: &[PathBuf], extra: Vec<(&'static str, config::Value)>) -> Config {
    let trust: Vec<String> = trust.iter().map(|p| p.display().to_string()).collect();
    let mut overrides: Vec<(&'static str, config::Value)> = vec![
        ("snapshots.dir", dir.display().to_string().into()),
        ("snapshots.trust", trust.into()),
        ("server.listen", "127.0.0.1:0".into()),
        ("server.admin_listen", "127.0.0.1:0".into()),
        ("snapshots.poll_interval", "100ms".into()),
    ];
    overrides.extend(extra);
    Config::load(Sources {
        overrides,
        ..Default::default()
    })
    .expect("test configuration")
}

/// Both demo issuers.
pub fn demo_trust() -> Vec<PathBuf> {
    vec![issuer_ca("ec"), issuer_ca("rsa")]
}

/// A running server plus the directory it serves from (kept alive as long as the server).
pub struct TestServer {
    pub server: Background,
    pub dir: tempfile::TempDir,
    /// The snapshot published before start.
    pub initial: PublishReport,
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        self.server.ocsp_addr
    }

    pub fn admin(&self) -> SocketAddr {
        self.server.admin_addr
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.server.ocsp_addr)
    }
}

/// Publishes the demo PKI into a fresh directory and serves it with `extra` overrides.
pub fn start_demo_server(extra: Vec<(&'static str, config::Value)>) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let initial = publish_demo(dir.path());
    let server = Background::start(config_for(dir.path(), &demo_trust(), extra)).expect("server start");
    assert_eq!(server.state.current_sequence(), Some(initial.sequence));
    TestServer { server, dir, initial }
}

/// Bound for a server to log its addresses, to become ready, or to swap a snapshot.
pub const SERVER_LIMIT: Duration = Duration::from_secs(20);

/// A running `ocsp-edge serve`; killed (and reaped) when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub ocsp: SocketAddr,
    pub admin: SocketAddr,
    log: ChildLog,
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ServeProcess {
    /// `ocsp-edge serve --config <toml> <args>` on kernel-chosen loopback ports, both demo
    /// issuers trusted; returns once it logs its addresses.
    pub fn start(toml: &str, args: &[&str]) -> (ServeProcess, tempfile::NamedTempFile) {
        ServeProcess::start_with_env(toml, args, &[])
    }

    /// [`ServeProcess::start`] with `env` variables set (e.g. S3 credentials).
    pub fn start_with_env(
        toml: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (ServeProcess, tempfile::NamedTempFile) {
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        let mut command = ocsp_edge_command();
        command
            .envs(env.iter().copied())
            .arg("serve")
            .arg("--config")
            .arg(file.path())
            .args(args);
        for trust in demo_trust() {
            command.arg("--trust").arg(trust);
        }
        (ServeProcess::spawn(command), file)
    }

    /// Runs `command` (an `ocsp-edge serve` with its `--snapshots`/`--config`/`--trust`)
    /// on kernel-chosen loopback ports; returns once it logs its addresses. Its stderr is
    /// read for the whole life of the process, so it never blocks on a full pipe.
    pub fn spawn(mut command: Command) -> ServeProcess {
        command.args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
        let (child, log, (ocsp, admin)) =
            spawn_logged(&mut command, "serve never logged its addresses", |line| {
                if !line.contains("listening") {
                    return None;
                }
                Some((log_address(line, "ocsp=")?, log_address(line, "admin=")?))
            });
        assert!(ocsp.ip().is_loopback() && ocsp.port() != 0, "{ocsp}");
        assert!(admin.ip().is_loopback() && admin.port() != 0, "{admin}");
        ServeProcess {
            child,
            ocsp,
            admin,
            log,
        }
    }

    /// `ocsp-edge serve --snapshots <dir>` trusting exactly `trust`, no configuration file.
    pub fn serve(snapshots: &Path, trust: &[&Path]) -> ServeProcess {
        let mut command = ocsp_edge_command();
        command.arg("serve").arg("--snapshots").arg(snapshots);
        for path in trust {
            command.arg("--trust").arg(path);
        }
        ServeProcess::spawn(command)
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.ocsp)
    }

    /// Polls `/readyz` until it answers 200; fails the test if the process exits first.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + SERVER_LIMIT;
        let mut last = None;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("serve exited early ({status})\n{}", self.log());
            }
            match try_get(self.admin, "/readyz") {
                Ok(response) if response.status == 200 => return,
                other => last = Some(other.map(|r| r.status)),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "/readyz not 200 within {SERVER_LIMIT:?}; last answer {last:?}\n{}",
            self.log()
        );
    }

    /// The value of the `ocsp_edge_snapshot_sequence` gauge, if it answers.
    pub fn served_sequence(&self) -> Option<u64> {
        let response = try_get(self.admin, "/metrics").ok()?;
        assert_eq!(response.status, 200, "{response:?}");
        metric(
            &String::from_utf8_lossy(&response.body),
            "ocsp_edge_snapshot_sequence",
        )
        .map(|v| v as u64)
    }

    /// Waits until the process reports serving `sequence`; fails the test otherwise.
    pub fn wait_for_sequence(&self, sequence: u64) {
        let mut seen = None;
        let served = wait_until(SERVER_LIMIT, || {
            seen = self.served_sequence();
            seen == Some(sequence)
        });
        assert!(
            served,
            "still serving {seen:?}, not {sequence}, after {SERVER_LIMIT:?}\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` (e.g. `-HUP`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal}: {status}");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the hub vanishes without closing anything politely.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A valid POST on a new connection still gets a successful OCSP response.
pub fn assert_still_serves(addr: SocketAddr) {
    let response = post(addr, &good_request());
    assert_eq!(response.status, 200, "{response:?}");
    assert!(
        is_successful(&response.body),
        "not a successful OCSP response: {:02x?}",
        &response.body[..response.body.len().min(16)]
    );
}

pub fn metrics(admin: SocketAddr) -> String {
    let response = get(admin, "/metrics");
    assert_eq!(response.status, 200);
    String::from_utf8(response.body).unwrap()
}

/// The value of the sample `series` (name plus labels exactly as exposed), if present.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sample `series` from the admin endpoint at `admin`; 0 when absent (a labelled
/// counter that was never incremented is not exposed).
pub fn sample(admin: SocketAddr, series: &str) -> f64 {
    metric(&metrics(admin), series).unwrap_or(0.0)
}

/// `ocsp_edge_snapshots_refused_total{reason}` of the responder whose admin endpoint is
/// `admin`.
pub fn snapshots_refused(admin: SocketAddr, reason: &str) -> f64 {
    sample(
        admin,
        &format!("ocsp_edge_snapshots_refused_total{{reason=\"{reason}\"}}"),
    )
}

/// The sequence the admin endpoint at `admin` reports serving
/// (`ocsp_edge_snapshot_sequence`), if it reports one.
pub fn served_sequence(admin: SocketAddr) -> Option<u64> {
    metric(&metrics(admin), "ocsp_edge_snapshot_sequence").map(|v| v as u64)
}

/// Waits until the admin endpoint reports `sequence` as the served snapshot.
pub fn wait_for_sequence(admin: SocketAddr, sequence: u64, limit: Duration) -> bool {
    wait_until(limit, || {
        metric(&metrics(admin), "ocsp_edge_snapshot_sequence") == Some(sequence as f64)
    })
}

/// A responder configuration like [`config_for`] (both demo issuers trusted) whose
/// `[[snapshots.sources]]` are `sources_toml`, e.g. from [`http_source`] and
/// [`directory_source`].
pub fn config_with_sources(
    dir: &Path,
    sources_toml: &str,
    extra: Vec<(&'static str, config::Value)>,
) -> Config {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), sources_toml).unwrap();
    let trust: Vec<String> = demo_trust().iter().map(|p| p.display().to_string()).collect();
    let mut overrides: Vec<(&'static str, config::Value)> = vec![
        ("snapshots.dir", dir.display().to_string().into()),
        ("snapshots.trust", trust.into()),
        ("server.listen", "127.0.0.1:0".into()),
        ("server.admin_listen", "127.0.0.1:0".into()),
        ("snapshots.poll_interval", "100ms".into()),
        ("snapshots.max_backoff", "1s".into()),
        ("snapshots.long_poll", "5s".into()),
    ];
    overrides.extend(extra);
    Config::load(Sources {
        file: Some(file.path().to_path_buf()),
        overrides,
        ..Default::default()
    })
    .expect("test configuration")
}

pub fn http_source(url: &str) -> String {
    format!("[[snapshots.sources]]\nkind = \"http\"\nurl = {url:?}\n")
}

pub fn directory_source(path: &Path) -> String {
    format!(
        "[[snapshots.sources]]\nkind = \"directory\"\npath = {:?}\n",
        path.display().to_string()
    )
}

/// Copies one published snapshot (snapshot first, manifest last) from `from` to `to`.
pub fn copy_sequence(from: &Path, to: &Path, sequence: u64) {
    use ocsp_edge::snapshot;
    for name in [
        snapshot::snapshot_name(sequence),
        snapshot::manifest_name(sequence),
    ] {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

/// The change-feed sequence the cache whose admin endpoint is `admin` has acknowledged
/// (`ocsp_edge_cache_acknowledged_sequence`; 0 before the first).
pub fn cache_acknowledged(admin: SocketAddr) -> f64 {
    sample(admin, "ocsp_edge_cache_acknowledged_sequence")
}

/// Waits until the cache at `admin` has acknowledged `sequence`; fails the test, naming
/// `what`, after `limit`.
#[track_caller]
pub fn wait_cache_acknowledged(admin: SocketAddr, sequence: u64, limit: Duration, what: &str) {
    assert!(
        wait_until(limit, || cache_acknowledged(admin) == sequence as f64),
        "{what}: the cache acknowledged {} instead of {sequence}\n{}",
        cache_acknowledged(admin),
        metrics(admin)
    );
}

/// One hub as `[[cache.hubs]]` names it: (OCSP address, admin address).
pub type HubAddrs = (SocketAddr, SocketAddr);

/// The `[cache]` section for a cache in front of `hubs` (2 s change-feed wait).
pub fn cache_toml_with(hubs: &[HubAddrs], request_timeout: &str) -> String {
    let mut text =
        format!("[cache]\ncapacity = 1000\nrequest_timeout = \"{request_timeout}\"\nchange_wait = \"2s\"\n");
    for (ocsp, admin) in hubs {
        text.push_str(&format!(
            "[[cache.hubs]]\nocsp = \"http://{ocsp}/\"\nadmin = \"http://{admin}/\"\n"
        ));
    }
    text
}

/// An in-process cache-mode responder in front of `hubs`, trusting both demo issuers.
pub fn cache_with(hubs: &[HubAddrs], request_timeout: &str) -> Background {
    cache_configured(hubs, request_timeout, vec![])
}

/// [`cache_with`], plus `extra` overrides (later ones win).
pub fn cache_configured(
    hubs: &[HubAddrs],
    request_timeout: &str,
    extra: Vec<(&'static str, config::Value)>,
) -> Background {
    let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::fs::write(file.path(), cache_toml_with(hubs, request_timeout)).unwrap();
    let trust: Vec<String> = demo_trust().iter().map(|p| p.display().to_string()).collect();
    let config = Config::load(Sources {
        file: Some(file.path().to_path_buf()),
        overrides: vec![
            ("snapshots.trust", trust.into()),
            ("server.listen", "127.0.0.1:0".into()),
            ("server.admin_listen", "127.0.0.1:0".into()),
        ]
        .into_iter()
        .chain(extra)
        .collect(),
        ..Default::default()
    })
    .expect("cache configuration");
    Background::start(config).expect("cache start")
}
