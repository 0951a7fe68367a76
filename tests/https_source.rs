//! An HTTPS origin is verified: with the origin's CA in `ca_file` the responder replicates
//! over TLS; without it (or with the wrong name) it refuses to talk to the origin and
//! serves nothing from it. The origin is a small Python TLS static server on 127.0.0.1
//! with a certificate made by openssl for IP 127.0.0.1.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(args: &[&str], dir: &Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate for `ip`, in `dir`: ca.pem, server.pem, server.key.
fn make_tls_material(dir: &Path, ip: &str) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=origin test CA",
        ],
        dir,
    );
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=origin",
        ],
        dir,
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth\n"),
    )
    .unwrap();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
        dir,
    );
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn https_origin(root: &Path, tls: &Path, port: u16) -> Process {
    let script = format!(
        "import http.server, ssl, functools\n\
         handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory={root:?})\n\
         server = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), handler)\n\
         context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
         context.load_cert_chain({cert:?}, {key:?})\n\
         server.socket = context.wrap_socket(server.socket, server_side=True)\n\
         server.serve_forever()\n",
        root = root.display().to_string(),
        cert = tls.join("server.pem").display().to_string(),
        key = tls.join("server.key").display().to_string(),
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTPS origin did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Process(child)
}

/// Starts a responder whose only source is `url` (with `ca_file` when given); returns the
/// sequence it serves after `wait`, if any.
fn served_sequence(
    work: &Path,
    name: &str,
    url: &str,
    ca_file: Option<&Path>,
    wait: Duration,
    expect: u64,
) -> Option<u64> {
    let cache = work.join(name);
    std::fs::create_dir(&cache).unwrap();
    let ca_line = ca_file
        .map(|p| format!("ca_file = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    let config = work.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!("[snapshots]\npoll_interval = \"200ms\"\nmax_backoff = \"1s\"\n[[snapshots.sources]]\nkind = \"http\"\nurl = \"{url}\"\n{ca_line}"),
    )
    .unwrap();
    let admin = free_port();
    let _responder = Process(
        Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
            .args(["serve", "--config"])
            .arg(&config)
            .arg("--snapshots")
            .arg(&cache)
            .arg("--trust")
            .arg(demo().join("ec/ca.pem"))
            .arg("--trust")
            .arg(demo().join("rsa/ca.pem"))
            .args(["--listen", &format!("127.0.0.1:{}", free_port())])
            .args(["--admin-listen", &format!("127.0.0.1:{admin}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + wait;
    let mut sequence = None;
    while Instant::now() < deadline {
        let metrics = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{admin}/metrics")])
            .output()
            .unwrap();
        sequence = String::from_utf8_lossy(&metrics.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("ocsp_edge_snapshot_sequence ")
                    .and_then(|v| v.trim().parse().ok())
            })
            .filter(|s: &u64| *s > 0);
        if sequence == Some(expect) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    sequence
}

#[test]
fn an_https_origin_is_used_only_when_its_certificate_verifies() {
    let work = tempfile::tempdir().unwrap();
    let tls = work.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    make_tls_material(&tls, "127.0.0.1");
    let origin_dir = work.path().join("origin");
    let now = ocsp_edge::time::UnixTime::now();
    let plan = ocsp_edge::publish::PublishConfig::from_file(&demo().join("publish.toml"))
        .unwrap()
        .load(now)
        .unwrap();
    let sequence = ocsp_edge::publish::publish(&plan, &origin_dir, now, &mut |_| {})
        .unwrap()
        .sequence;
    let port = free_port();
    let _origin = https_origin(&origin_dir, &tls, port);
    let url = format!("https://127.0.0.1:{port}/");

    let trusted = served_sequence(
        work.path(),
        "trusted",
        &url,
        Some(&tls.join("ca.pem")),
        Duration::from_secs(15),
        sequence,
    );
    assert_eq!(trusted, Some(sequence), "replication over verified HTTPS");

    let untrusted = served_sequence(
        work.path(),
        "untrusted",
        &url,
        None,
        Duration::from_secs(3),
        sequence,
    );
    assert_eq!(
        untrusted, None,
        "an origin whose certificate does not verify must not be used"
    );
}
