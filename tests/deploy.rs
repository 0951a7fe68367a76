//! The deployment artefacts under `deploy/`, exercised against a real responder:
//!
//! - `deploy/nginx/cdn.conf` (the caching origin shield) run by a real nginx in front of an
//!   in-process responder: OCSP GET and CRLs are cached for as long as the responder's
//!   `Cache-Control` allows (MISS, then HIT with the same body and ETag), then revalidated
//!   with a conditional request the responder answers 304; POST and refusals are never
//!   cached. Skipped, with a note, when nginx is not installed.
//! - The responder and publisher configurations embedded in the Kubernetes ConfigMaps load
//!   with the library's own parsers (unknown keys are errors there).
//!
//! `deploy/validate.sh` runs the ecosystem tools (hadolint, kubernetes-validate, promtool,
//! nginx -t, systemd-analyze) over the same files.

mod common;

use common::*;
use ocsp_edge::config::{Config, Sources};
use ocsp_edge::publish::PublishConfig;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// nginx in front of a responder

/// The nginx binary, if installed (Debian puts it in /usr/sbin, which a non-root PATH may
/// lack).
fn nginx_binary() -> Option<PathBuf> {
    if have("nginx") {
        return Some(PathBuf::from("nginx"));
    }
    [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// A running nginx (master process in the foreground), stopped by PID on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Writes deploy/nginx/cdn.conf with its placeholders filled in (listen on a free
    /// loopback port, proxy to `upstream`, cache and temp files in a scratch directory)
    /// and starts nginx on it.
    fn start(binary: &Path, upstream: SocketAddr) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        // As root, nginx's workers run as `nobody`: they must reach the cache below.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let template = std::fs::read_to_string(repo().join("deploy/nginx/cdn.conf")).unwrap();
        for placeholder in ["__LISTEN__", "__UPSTREAM__", "__STATE_DIR__"] {
            assert!(
                template.contains(placeholder),
                "cdn.conf lost its {placeholder} placeholder"
            );
        }
        let config = template
            .replace("__LISTEN__", &addr.to_string())
            .replace("__UPSTREAM__", &upstream.to_string())
            .replace("__STATE_DIR__", &state.display().to_string());
        assert!(!config.contains("__"), "unfilled placeholder left in cdn.conf");
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let child = Command::new(binary)
            .arg("-e")
            .arg("stderr")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {};",
                dir.path().join("nginx.pid").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log("access.log")))
            .stderr(Stdio::from(log("error.log")))
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited ({status}):\n{}", nginx.logs());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen:\n{}",
                nginx.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- nginx error log\n{}\n--- nginx access log\n{}",
            read("error.log"),
            read("access.log")
        )
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master (by PID) stops its workers too; SIGKILL would orphan them.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cache_status(response: &HttpResponse) -> &str {
    response.header("x-cache-status").unwrap_or("")
}

fn requests(admin: SocketAddr, method: &str, outcome: &str) -> f64 {
    let series = format!("ocsp_edge_requests_total{{method=\"{method}\",outcome=\"{outcome}\"}}");
    metric(&metrics(admin), &series).unwrap_or(0.0)
}

#[test]
fn nginx_origin_shield_caches_only_what_the_responder_allows() {
    let binary = nginx_binary();
    let missing = binary.is_none().then(|| "nginx is not installed".to_string());
    if skip_without(
        "nginx_origin_shield_caches_only_what_the_responder_allows",
        missing,
    ) {
        return;
    }
    let Some(binary) = binary else { return };
    // max-age = 2 s for OCSP and CRLs, so entries expire within the test.
    let server = start_demo_server(vec![
        ("ocsp.cache_max_age", "2s".into()),
        ("crl.cache_max_age", "2s".into()),
    ]);
    let nginx = Nginx::start(&binary, server.addr());
    let shield = nginx.addr;
    let context = |what: &str, response: &HttpResponse| {
        format!(
            "{what}: status {} X-Cache-Status {:?} headers {:?}\n{}",
            response.status,
            cache_status(response),
            response.headers,
            nginx.logs()
        )
    };

    let ocsp = get_path("/", &good_request());
    let crl = "/crl/ec.crl";
    let not_modified_before = requests(server.admin(), "GET", "not_modified");

    // First requests go to the responder, second ones come from the cache, byte for byte.
    let mut first = Vec::new();
    for path in [ocsp.as_str(), crl] {
        let miss = get(shield, path);
        assert_eq!(miss.status, 200, "{}", context(path, &miss));
        assert_eq!(cache_status(&miss), "MISS", "{}", context(path, &miss));
        assert!(miss.header("etag").is_some(), "{}", context(path, &miss));
        assert!(
            miss.header("cache-control")
                .is_some_and(|c| c.starts_with("max-age=")),
            "{}",
            context(path, &miss)
        );
        let hit = get(shield, path);
        assert_eq!(hit.status, 200, "{}", context(path, &hit));
        assert_eq!(cache_status(&hit), "HIT", "{}", context(path, &hit));
        assert_eq!(hit.body, miss.body, "{path}: cached body differs");
        assert_eq!(
            hit.header("etag"),
            miss.header("etag"),
            "{path}: cached ETag differs"
        );
        first.push(miss);
    }
    assert!(is_successful(&first[0].body), "not a successful OCSP response");
    let served_by_origin = requests(server.admin(), "GET", "good");
    assert_eq!(served_by_origin, 1.0, "the OCSP HIT reached the responder");

    // Past max-age, nginx asks again with If-None-Match / If-Modified-Since; the snapshot
    // has not changed, so the responder answers 304 and the entry is fresh again.
    std::thread::sleep(Duration::from_millis(3200));
    for (path, original) in [ocsp.as_str(), crl].into_iter().zip(&first) {
        let again = get(shield, path);
        assert_eq!(again.status, 200, "{}", context(path, &again));
        assert!(
            matches!(cache_status(&again), "REVALIDATED" | "EXPIRED"),
            "{}",
            context(path, &again)
        );
        assert_eq!(again.body, original.body, "{path}: body changed on revalidation");
        assert_eq!(again.header("etag"), original.header("etag"));
        // Served from the cache again: a HIT, or — when the refreshed entry's whole-second
        // freshness has already run out (max-age is 2 s here, and nginx's two workers keep
        // their own clocks) — another revalidation answered 304 by the responder, which the
        // not-modified count below also covers. Never a full download.
        let hit = get(shield, path);
        assert!(
            matches!(cache_status(&hit), "HIT" | "REVALIDATED"),
            "{}",
            context(path, &hit)
        );
        assert_eq!(hit.body, original.body, "{path}: body changed");
    }
    let not_modified = requests(server.admin(), "GET", "not_modified") - not_modified_before;
    assert!(
        not_modified >= 2.0,
        "the responder saw {not_modified} conditional requests answered 304, expected one for the OCSP GET and one for the CRL\n{}",
        nginx.logs()
    );
    assert_eq!(
        requests(server.admin(), "GET", "good"),
        served_by_origin,
        "revalidation transferred the OCSP response again instead of a 304"
    );

    // POST passes through, every time: the cache key cannot see the body.
    let posts_before = requests(server.admin(), "POST", "good");
    for _ in 0..3 {
        let answer = post(shield, &good_request());
        assert_eq!(answer.status, 200, "{}", context("POST", &answer));
        assert!(is_successful(&answer.body));
        assert_ne!(cache_status(&answer), "HIT", "{}", context("POST", &answer));
    }
    assert_eq!(
        requests(server.admin(), "POST", "good") - posts_before,
        3.0,
        "a POST was answered from the cache"
    );

    // Refusals carry `no-store`: never cached, so a later snapshot can answer.
    let unknown = get_path(
        "/",
        &openssl_request(&issuer_ca("ec"), &unassigned("ec"), false, false),
    );
    let before = requests(server.admin(), "GET", "unassigned_serial");
    for _ in 0..2 {
        let refused = get(shield, &unknown);
        assert_eq!(
            refused.body,
            UNAUTHORIZED,
            "{}",
            context("unassigned serial", &refused)
        );
        assert_ne!(
            cache_status(&refused),
            "HIT",
            "{}",
            context("unassigned serial", &refused)
        );
    }
    assert_eq!(requests(server.admin(), "GET", "unassigned_serial") - before, 2.0);
}

// ---------------------------------------------------------------------------------------
// Configurations embedded in the Kubernetes manifests

/// The text of a `key: |` block scalar in a YAML file, de-indented. Enough for the
/// ConfigMaps here (no YAML parser among the dependencies).
fn yaml_block(file: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines = text.lines();
    let header = format!("{key}: |");
    let indent = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("{}: no `{header}` block", file.display()));
        if line.trim_end().trim_start() == header {
            break line.len() - line.trim_start().len();
        }
    };
    let body: Vec<&str> = lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect();
    let strip = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| l.get(strip..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kubernetes_configmap_responder_configuration_loads() {
    let file = repo().join("deploy/kubernetes/10-config.yaml");
    let toml = yaml_block(&file, "edge.toml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edge.toml");
    std::fs::write(&path, &toml).unwrap();
    // The pod's paths (cache volume, trust ConfigMap) do not exist here: override them.
    let config = Config::load(Sources {
        file: Some(path),
        overrides: vec![
            ("snapshots.dir", dir.path().display().to_string().into()),
            (
                "snapshots.trust",
                vec![issuer_ca("ec").display().to_string()].into(),
            ),
        ],
        ..Sources::default()
    })
    .unwrap_or_else(|e| panic!("edge.toml in {}: {e}\n{toml}", file.display()));
    assert_eq!(config.server.listen.port(), 8080, "the container's ocsp port");
    assert_eq!(
        config.server.admin_listen.port(),
        8081,
        "the container's admin port"
    );
    assert!(
        !config.server.admin_listen.ip().is_loopback(),
        "probes, peers and Prometheus reach the admin port over the pod network"
    );
    assert!(
        !config.snapshots.sources.is_empty(),
        "the responders replicate from the origin"
    );
    assert!(!config.snapshots.danger_allow_rollback);
}

#[test]
fn kubernetes_configmap_publisher_configuration_parses() {
    let file = repo().join("deploy/kubernetes/50-publisher.yaml");
    let toml = yaml_block(&file, "publish.toml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("publish.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = PublishConfig::from_file(&path)
        .unwrap_or_else(|e| panic!("publish.toml in {}: {e}\n{toml}", file.display()));
    config.validity().expect("validity");
    assert!(!config.issuers.is_empty());
    for issuer in &config.issuers {
        assert!(
            !issuer.signer_key.starts_with("/etc/ocsp-edge/trust"),
            "{}: the signer key belongs in the ocsp-edge-signer Secret, not the trust ConfigMap",
            issuer.name
        );
    }
}
