//! Replication through S3-compatible object storage, against a real S3 server started
//! and stopped by the test (s3s-fs; CI installs it with `cargo install s3s-fs`): the
//! publisher uploads snapshot, manifest, then latest.manifest.json; two publishers with
//! separate local state publish in turn without ever going backwards; a responder with an
//! `s3` source replicates and answers; an upload older than the store's newest is refused;
//! wrong credentials fail with a clear message.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ACCESS_KEY: &str = "OCSPEDGETESTKEY";
const SECRET_KEY: &str = "ocsp-edge-test-secret";

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

/// An S3 server on 127.0.0.1, killed (by PID) on drop.
struct S3Server {
    child: Child,
    endpoint: String,
    _data: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_s3() -> Option<S3Server> {
    let binary = std::env::var("S3S_FS").unwrap_or_else(|_| "s3s-fs".to_string());
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("ocsp")).unwrap(); // the bucket
    let port = free_port();
    let child = Command::new(&binary)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(S3Server {
        child,
        endpoint,
        _data: data,
    })
}

/// The demo publish.toml with absolute paths and an [upload] section.
fn publish_config(dir: &Path, endpoint: &str, prefix: &str) -> PathBuf {
    let text = std::fs::read_to_string(demo().join("publish.toml")).unwrap();
    let absolute = text
        .replace("\"ec/", &format!("\"{}/ec/", demo().display()))
        .replace("\"rsa/", &format!("\"{}/rsa/", demo().display()));
    let upload = format!("[upload]\nendpoint = \"{endpoint}\"\nbucket = \"ocsp\"\nprefix = \"{prefix}\"\n\n");
    let with_upload = absolute.replacen("[[issuer]]", &format!("{upload}[[issuer]]"), 1);
    let path = dir.join("publish.toml");
    std::fs::write(&path, with_upload).unwrap();
    path
}

fn publish(config: &Path, out: &Path, credentials: (&str, &str)) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
        .args(["publish", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .env("AWS_ACCESS_KEY_ID", credentials.0)
        .env("AWS_SECRET_ACCESS_KEY", credentials.1)
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap()
}

fn published_sequence(output: &std::process::Output) -> u64 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "publish failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("uploaded to s3://ocsp/"), "{stdout}");
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "sequence")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sequence in {stdout}"))
}

/// Why the S3 tests cannot run, for [`common::skip_without`].
fn s3_missing<T>(server: &Option<T>) -> Option<String> {
    server
        .is_none()
        .then(|| "s3s-fs is not installed (cargo install s3s-fs --features binary)".to_string())
}

#[test]
fn publishers_upload_and_a_responder_replicates_from_s3() {
    let s3 = start_s3();
    if common::skip_without(
        "publishers_upload_and_a_responder_replicates_from_s3",
        s3_missing(&s3),
    ) {
        return;
    }
    let Some(s3) = s3 else { return };
    let work = tempfile::tempdir().unwrap();
    let config = publish_config(work.path(), &s3.endpoint, "snapshots/");
    let credentials = (ACCESS_KEY, SECRET_KEY);

    // Active and standby publishers with separate local directories, in turn.
    let first = published_sequence(&publish(&config, &work.path().join("active"), credentials));
    let second = published_sequence(&publish(&config, &work.path().join("standby"), credentials));
    let third = published_sequence(&publish(&config, &work.path().join("active"), credentials));
    assert!(first < second && second < third, "{first} {second} {third}");

    // A responder whose only source is the bucket.
    let cache = work.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let edge_config = work.path().join("edge.toml");
    std::fs::write(
        &edge_config,
        format!(
            "[snapshots]\npoll_interval = \"200ms\"\n[[snapshots.sources]]\nkind = \"s3\"\n\
             endpoint = \"{}\"\nbucket = \"ocsp\"\nprefix = \"snapshots/\"\n",
            s3.endpoint
        ),
    )
    .unwrap();
    let (ocsp_port, admin_port) = (free_port(), free_port());
    let mut edge = Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
        .args(["serve", "--config"])
        .arg(&edge_config)
        .arg("--snapshots")
        .arg(&cache)
        .arg("--trust")
        .arg(demo().join("ec/ca.pem"))
        .arg("--trust")
        .arg(demo().join("rsa/ca.pem"))
        .args(["--listen", &format!("127.0.0.1:{ocsp_port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = |port: u16| {
        Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
            .args(["status", &format!("http://127.0.0.1:{port}/")])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut last = String::new();
    while Instant::now() < deadline {
        last = status(admin_port);
        if last.contains(&format!("serving sequence                         {third}")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let served = last.contains(&format!("{third}"));
    // A revoked demo certificate, answered from what came out of the bucket.
    let revoked = std::fs::read_to_string(demo().join("ec/index.txt"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with('R'))
        .and_then(|l| l.split('\t').nth(3))
        .unwrap()
        .to_string();
    let answer = Command::new("openssl")
        .args(["ocsp", "-no_nonce", "-issuer"])
        .arg(demo().join("ec/ca.pem"))
        .arg("-cert")
        .arg(demo().join(format!("ec/certs/{revoked}.pem")))
        .args(["-url", &format!("http://127.0.0.1:{ocsp_port}/"), "-CAfile"])
        .arg(demo().join("root/ca.pem"))
        .output()
        .unwrap();
    let _ = edge.kill();
    let _ = edge.wait();
    assert!(served, "the responder never served {third} from S3:\n{last}");
    let text = String::from_utf8_lossy(&answer.stdout);
    assert!(
        text.contains(": revoked"),
        "{text}\n{}",
        String::from_utf8_lossy(&answer.stderr)
    );
    assert!(String::from_utf8_lossy(&answer.stderr).contains("Response verify OK"));
}

#[test]
fn an_upload_older_than_the_store_and_wrong_credentials_are_refused() {
    let s3 = start_s3();
    if common::skip_without(
        "an_upload_older_than_the_store_and_wrong_credentials_are_refused",
        s3_missing(&s3),
    ) {
        return;
    }
    let Some(s3) = s3 else { return };
    let work = tempfile::tempdir().unwrap();
    let config = publish_config(work.path(), &s3.endpoint, "");
    let newest = published_sequence(&publish(
        &config,
        &work.path().join("a"),
        (ACCESS_KEY, SECRET_KEY),
    ));

    // A publisher that already signed an older snapshot locally cannot push it over the
    // store's newer one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stale_dir = work.path().join("stale");
    let plan = ocsp_edge::publish::PublishConfig::from_file(&config)
        .unwrap()
        .load(ocsp_edge::time::UnixTime::now())
        .unwrap();
    let stale = ocsp_edge::publish::publish(
        &plan,
        &stale_dir,
        ocsp_edge::time::UnixTime(1_790_000_000),
        &mut |_| {},
    )
    .unwrap();
    assert!(stale.sequence < newest);
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let s3_config: ocsp_edge::s3::S3Config =
        toml::from_str(&format!("endpoint = \"{}\"\nbucket = \"ocsp\"\n", s3.endpoint)).unwrap();
    let location = ocsp_edge::s3::S3Location::new(&s3_config).unwrap();
    let client = ocsp_edge::http_client::client_builder().build().unwrap();
    let refused = runtime.block_on(ocsp_edge::s3::upload(
        &client,
        &location,
        &stale_dir,
        stale.sequence,
    ));
    let message = refused.expect_err("an older upload must be refused").to_string();
    assert!(message.contains("another publisher was faster"), "{message}");
    let latest = runtime
        .block_on(ocsp_edge::s3::latest(&client, &location))
        .unwrap()
        .unwrap();
    assert_eq!(latest.0, newest, "latest.manifest.json still names the newest");

    let wrong = publish(&config, &work.path().join("b"), (ACCESS_KEY, "not-the-secret"));
    assert_eq!(
        wrong.status.code(),
        Some(74),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("HTTP 403") || stderr.contains("403"), "{stderr}");
}
