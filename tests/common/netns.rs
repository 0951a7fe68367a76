//! Sites in network namespaces, for tests that need real links between regions: the
//! fleet's network (tests/support/fleet/netns.sh: an origin, regions A and B, a clients'
//! site, joined by a backbone router), processes started inside it and stopped by PID,
//! and the pieces every such test puts there — nginx as the origin over a publisher's
//! directory, the delay proxy that stands in for a 40 ms inter-region link, hubs and
//! edges. Owns everything it creates and removes it on drop (also when the test panics);
//! never touches the caller's namespace and never stops a process it did not start.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// The `ocsp-edge` cargo built for the tests (see [`Sites::use_binary`]).
pub const BIN: &str = env!("CARGO_BIN_EXE_ocsp-edge");
/// nginx in the origin's namespace.
pub const ORIGIN_IP: &str = "10.200.0.2";
/// The delay proxies' listeners in front of the origin, one per region.
pub const ORIGIN_VIA_A: &str = "http://10.200.1.2:18080/";
pub const ORIGIN_VIA_B: &str = "http://10.200.2.2:18080/";

/// tests/support/fleet/NAME.
pub fn support(name: &str) -> PathBuf {
    super::repo().join("tests/support/fleet").join(name)
}

/// Why namespaces (and `tools`) cannot be used here, if they cannot.
pub fn missing_prerequisite(tools: &[&str]) -> Option<String> {
    let probe = format!("of{}-probe", std::process::id());
    let can_netns = Command::new("ip")
        .args(["netns", "add", &probe])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can_netns {
        return Some("`ip netns add` failed (needs root and iproute2)".into());
    }
    let _ = Command::new("ip").args(["netns", "delete", &probe]).status();
    for tool in tools {
        if let Some(missing) = super::not_on_path(tool) {
            return Some(missing);
        }
    }
    let crypto = Command::new("python3")
        .args(["-c", "import cryptography.x509.ocsp"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !crypto {
        return Some("python3 lacks the cryptography package".into());
    }
    None
}

/// Where a responder takes snapshots from, in order.
#[derive(Clone)]
pub enum Source {
    /// Another responder's admin listener (`/snapshots/`), by IP.
    Peer(&'static str),
    /// A static HTTP origin, by URL.
    Http(&'static str),
}

pub struct Responder {
    pub name: &'static str,
    pub site: &'static str,
    pub ip: &'static str,
    pub sources: Vec<Source>,
}

/// The fleet's hubs and load-balanced edges: a hub per region reading the origin through
/// the region's delay proxy, two edges per region reading their hub first, the origin
/// second.
pub fn hubs_and_edges() -> Vec<Responder> {
    let responder = |name, site, ip, sources| Responder {
        name,
        site,
        ip,
        sources,
    };
    vec![
        responder("hub-a", "a", "10.200.1.10", vec![Source::Http(ORIGIN_VIA_A)]),
        responder(
            "edge-a1",
            "a",
            "10.200.1.11",
            vec![Source::Peer("10.200.1.10"), Source::Http(ORIGIN_VIA_A)],
        ),
        responder(
            "edge-a2",
            "a",
            "10.200.1.12",
            vec![Source::Peer("10.200.1.10"), Source::Http(ORIGIN_VIA_A)],
        ),
        responder("hub-b", "b", "10.200.2.10", vec![Source::Http(ORIGIN_VIA_B)]),
        responder(
            "edge-b1",
            "b",
            "10.200.2.11",
            vec![Source::Peer("10.200.2.10"), Source::Http(ORIGIN_VIA_B)],
        ),
        responder(
            "edge-b2",
            "b",
            "10.200.2.12",
            vec![Source::Peer("10.200.2.10"), Source::Http(ORIGIN_VIA_B)],
        ),
    ]
}

/// A child whose standard input and output the test talks to, line by line.
pub struct Conversation {
    pub stdin: ChildStdin,
    pub stdout: std::io::BufReader<ChildStdout>,
}

pub struct Sites {
    /// Prefix of the namespaces: `ID-o`, `ID-a`, `ID-b`, `ID-c`, `ID-bb`.
    pub id: String,
    pub work: PathBuf,
    net_up: bool,
    procs: BTreeMap<String, Child>,
    logs: BTreeMap<String, PathBuf>,
    starts: BTreeMap<String, u32>,
    /// The `ocsp-edge` the responders run.
    bin: PathBuf,
}

impl Drop for Sites {
    fn drop(&mut self) {
        for child in self.procs.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.procs.clear();
        if self.net_up {
            let _ = Command::new("bash")
                .arg(support("netns.sh"))
                .args(["down", &self.id])
                .status();
        }
    }
}

impl Sites {
    /// Creates the namespaces (after removing any left by a fleet run whose process is
    /// gone); `work` holds logs and configurations.
    pub fn up(work: &Path) -> Sites {
        let id = format!("of{}", std::process::id());
        let mut sites = Sites {
            id: id.clone(),
            work: work.to_path_buf(),
            net_up: false,
            procs: BTreeMap::new(),
            logs: BTreeMap::new(),
            starts: BTreeMap::new(),
            bin: PathBuf::from(BIN),
        };
        std::fs::create_dir_all(work.join("logs")).unwrap();
        sites.netns(&["sweep"]);
        sites.netns(&["up", &id]);
        sites.net_up = true;
        sites
    }

    /// Responders started from now on run `bin` (e.g. a release build for a load test)
    /// instead of [`BIN`].
    pub fn use_binary(&mut self, bin: &Path) {
        self.bin = bin.to_path_buf();
    }

    pub fn netns(&self, args: &[&str]) {
        let output = Command::new("bash")
            .arg(support("netns.sh"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "netns.sh {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn command_in(&mut self, name: &str, site: &str, program: &str, args: &[String]) -> Command {
        let count = self.starts.entry(name.to_string()).or_insert(0);
        *count += 1;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &format!("{}-{site}", self.id), program])
            .args(args)
            .env_remove("RUST_LOG");
        for (key, _) in std::env::vars() {
            if key.starts_with("OCSP_EDGE__") {
                command.env_remove(key);
            }
        }
        command
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.work.join("logs").join(format!(
            "{name}.{}.log",
            self.starts.get(name).copied().unwrap_or(0)
        ))
    }

    /// Starts `program` inside namespace `ID-site`; stdout and stderr go to a log file.
    pub fn spawn(&mut self, name: &str, site: &str, program: &str, args: &[String]) {
        let mut command = self.command_in(name, site, program, args);
        let log = self.log_path(name);
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        let child = command.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        self.procs.insert(name.to_string(), child);
        self.logs.insert(name.to_string(), log);
    }

    /// Starts a process in the caller's namespace (a publisher beside its CA), logged and
    /// stopped like the others.
    pub fn spawn_here(&mut self, name: &str, mut command: Command) {
        *self.starts.entry(name.to_string()).or_insert(0) += 1;
        let log = self.log_path(name);
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .env_remove("RUST_LOG");
        let child = command.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        self.procs.insert(name.to_string(), child);
        self.logs.insert(name.to_string(), log);
    }

    /// Starts `program` inside `ID-site` with its standard input and output piped to the
    /// test (stderr to the log).
    pub fn converse(&mut self, name: &str, site: &str, program: &str, args: &[String]) -> Conversation {
        let mut command = self.command_in(name, site, program, args);
        let log = self.log_path(name);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = command.spawn().unwrap_or_else(|e| panic!("{name}: {e}"));
        let conversation = Conversation {
            stdin: child.stdin.take().unwrap(),
            stdout: std::io::BufReader::new(child.stdout.take().unwrap()),
        };
        self.procs.insert(name.to_string(), child);
        self.logs.insert(name.to_string(), log);
        conversation
    }

    /// The log file of the latest start of `name`.
    pub fn log_of(&self, name: &str) -> Option<&Path> {
        self.logs.get(name).map(PathBuf::as_path)
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.procs.get(name).map(Child::id)
    }

    /// Whether the process is still running.
    pub fn running(&mut self, name: &str) -> bool {
        self.procs
            .get_mut(name)
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGname to the process by PID and waits for it to exit (SIGKILL after 15 s).
    pub fn stop(&mut self, name: &str, signal: &str) {
        let Some(mut child) = self.procs.remove(name) else {
            return;
        };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `program` inside `ID-site` to completion.
    pub fn run_in(&self, site: &str, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &format!("{}-{site}", self.id), program])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program}: {e}"))
    }

    /// `curl` inside namespace `ID-site`: (status, body).
    pub fn curl(&self, site: &str, url: &str) -> Option<(u16, String)> {
        let output = Command::new("ip")
            .args(["netns", "exec", &format!("{}-{site}", self.id)])
            .args(["curl", "-s", "-m", "2", "-w", "\n%{http_code}", url])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n')?;
        Some((status.trim().parse().ok()?, body.to_string()))
    }

    /// A series from a responder's `/metrics` (admin port 8081).
    pub fn metric(&self, responder: &Responder, series: &str) -> Option<f64> {
        let (status, body) = self.curl(responder.site, &format!("http://{}:8081/metrics", responder.ip))?;
        if status != 200 {
            return None;
        }
        super::metric(&body, series)
    }

    pub fn sequence(&self, responder: &Responder) -> Option<u64> {
        self.metric(responder, "ocsp_edge_snapshot_sequence")
            .map(|v| v as u64)
    }

    /// nginx in `ID-o` over `origin` (port 80) and `mirror` (port 81), from
    /// nginx.conf.in; waits until it serves latest.manifest.json.
    pub fn start_origin(&mut self, origin: &Path, mirror: &Path) {
        std::fs::create_dir_all(self.work.join("nginx-tmp")).unwrap();
        std::fs::create_dir_all(mirror).unwrap();
        let conf = self.work.join("nginx.conf");
        let text = std::fs::read_to_string(support("nginx.conf.in"))
            .unwrap()
            .replace("@WORK@", &self.work.display().to_string())
            .replace("@ORIGIN_ADDR@", ORIGIN_IP)
            .replace("@ORIGIN_DIR@", &origin.display().to_string())
            .replace("@MIRROR_DIR@", &mirror.display().to_string());
        std::fs::write(&conf, text).unwrap();
        let error_log = self.work.join("nginx-error.log").display().to_string();
        self.spawn(
            "nginx",
            "o",
            "nginx",
            &["-e".into(), error_log, "-c".into(), conf.display().to_string()],
        );
        let up = super::wait_until(Duration::from_secs(10), || {
            self.curl("o", &format!("http://{ORIGIN_IP}/latest.manifest.json"))
                .is_some_and(|(status, _)| status == 200)
        });
        assert!(up, "nginx did not come up:\n{}", self.log_tails());
    }

    /// In regions A and B, a delay proxy adding `delay_ms` each way on the way to the
    /// origin (ports 18080 → 80 and 18081 → 81).
    pub fn start_delay_proxies(&mut self, delay_ms: u32) {
        for (site, n) in [("a", 1), ("b", 2)] {
            let args = vec![
                support("delay_proxy.py").display().to_string(),
                "--delay-ms".into(),
                delay_ms.to_string(),
                format!("10.200.{n}.2:18080={ORIGIN_IP}:80"),
                format!("10.200.{n}.2:18081={ORIGIN_IP}:81"),
            ];
            self.spawn(&format!("proxy-{site}"), site, "python3", &args);
        }
    }

    /// `ocsp-edge serve` for `responder` in its site: OCSP on IP:8080, admin on IP:8081,
    /// a cache directory under the work directory, `settings` appended to `[snapshots]`.
    pub fn start_responder(&mut self, responder: &Responder, trust: &[PathBuf], settings: &str) {
        let cache = self.work.join("cache").join(responder.name);
        std::fs::create_dir_all(&cache).unwrap();
        let mut toml =
            format!("[server]\ndrain_grace = \"2s\"\ndrain_deadline = \"3s\"\n\n[snapshots]\n{settings}\n");
        for source in &responder.sources {
            match source {
                Source::Peer(peer) => write!(
                    toml,
                    "\n[[snapshots.sources]]\nkind = \"peer\"\nurl = \"http://{peer}:8081/snapshots/\"\n"
                ),
                Source::Http(url) => write!(
                    toml,
                    "\n[[snapshots.sources]]\nkind = \"http\"\nurl = \"{url}\"\n"
                ),
            }
            .unwrap();
        }
        let config = self.work.join(format!("{}.toml", responder.name));
        std::fs::write(&config, toml).unwrap();
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--config".into(),
            config.display().to_string(),
            "--snapshots".into(),
            cache.display().to_string(),
        ];
        for anchor in trust {
            args.push("--trust".into());
            args.push(anchor.display().to_string());
        }
        args.extend([
            "--listen".into(),
            format!("{}:8080", responder.ip),
            "--admin-listen".into(),
            format!("{}:8081", responder.ip),
        ]);
        let bin = self.bin.display().to_string();
        self.spawn(responder.name, responder.site, &bin, &args);
    }

    /// Waits until every responder serves `sequence` (metrics); the names of those that
    /// did not within `limit`.
    pub fn wait_serving(
        &self,
        responders: &[Responder],
        sequence: u64,
        limit: Duration,
    ) -> Vec<&'static str> {
        let deadline = Instant::now() + limit;
        loop {
            let lagging: Vec<&'static str> = responders
                .iter()
                .filter(|r| self.sequence(r).is_none_or(|s| s < sequence))
                .map(|r| r.name)
                .collect();
            if lagging.is_empty() || Instant::now() > deadline {
                return lagging;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of every process's log.
    pub fn log_tails(&self) -> String {
        let mut text = String::new();
        for (name, path) in &self.logs {
            let content = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let tail = &lines[lines.len().saturating_sub(15)..];
            let _ = writeln!(text, "--- {name} ({})\n{}", path.display(), tail.join("\n"));
        }
        text
    }
}
