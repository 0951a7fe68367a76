//! Replication through S3-compatible object storage, against a real S3 server started
//! and stopped by the test (s3s-fs; CI installs it with `cargo install s3s-fs`): the
//! publisher uploads snapshot, manifest, then latest.manifest.json; two publishers with
//! separate local state publish in turn without ever going backwards; a responder with an
//! `s3` source replicates and answers; an upload older than the store's newest is refused;
//! wrong credentials fail with a clear message.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const ACCESS_KEY: &str = "OCSPEDGETESTKEY";
const SECRET_KEY: &str = "ocsp-edge-test-secret";

/// The s3s-fs binary: `$S3S_FS`, or `s3s-fs` on PATH.
fn s3_binary() -> Option<String> {
    std::env::var("S3S_FS")
        .ok()
        .or_else(|| have("s3s-fs").then(|| "s3s-fs".to_string()))
}

/// An S3 server on 127.0.0.1, killed (by PID) on drop.
struct S3Server {
    _process: ChildGuard,
    endpoint: String,
    _data: tempfile::TempDir,
}

fn start_s3(binary: &str) -> S3Server {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("ocsp")).unwrap(); // the bucket
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut process = ChildGuard::spawn(
        "s3s-fs",
        Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    process.wait_listening(addr);
    S3Server {
        _process: process,
        endpoint: format!("http://{addr}"),
        _data: data,
    }
}

/// The S3 server, or `None` (after [`skip_without`] said why) when a tool is missing.
fn s3_for(test: &str) -> Option<S3Server> {
    let missing = match s3_binary() {
        None => Some("s3s-fs is not installed (cargo install s3s-fs --features binary)".to_string()),
        Some(_) => not_on_path("openssl"),
    };
    if skip_without(test, missing) {
        return None;
    }
    s3_binary().map(|binary| start_s3(&binary))
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

fn publish(config: &Path, out: &Path, credentials: (&str, &str)) -> Output {
    run_command(
        ocsp_edge_command()
            .args(["publish", "--config"])
            .arg(config)
            .arg("--out")
            .arg(out)
            .env("AWS_ACCESS_KEY_ID", credentials.0)
            .env("AWS_SECRET_ACCESS_KEY", credentials.1)
            .env_remove("AWS_SESSION_TOKEN"),
    )
}

fn published_sequence(output: &Output) -> u64 {
    let stdout = &output.stdout;
    assert!(output.success, "publish failed:\n{output}");
    assert!(stdout.contains("uploaded to s3://ocsp/"), "{stdout}");
    stdout
        .split_whitespace()
        .skip_while(|w| *w != "sequence")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no sequence in {stdout}"))
}

#[test]
fn publishers_upload_and_a_responder_replicates_from_s3() {
    let Some(s3) = s3_for("publishers_upload_and_a_responder_replicates_from_s3") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let config = publish_config(work.path(), &s3.endpoint, "snapshots/");
    let credentials = (ACCESS_KEY, SECRET_KEY);

    // Active and standby publishers with separate local directories, in turn.
    let first = published_sequence(&publish(&config, &work.path().join("active"), credentials));
    let second = published_sequence(&publish(&config, &work.path().join("standby"), credentials));
    let third = published_sequence(&publish(&config, &work.path().join("active"), credentials));
    assert!(first < second && second < third, "{first} {second} {third}");

    // A responder whose only source is the bucket.
    let cache = tempfile::tempdir().unwrap();
    let edge_config = format!(
        "[snapshots]\npoll_interval = \"200ms\"\n[[snapshots.sources]]\nkind = \"s3\"\n\
         endpoint = \"{}\"\nbucket = \"ocsp\"\nprefix = \"snapshots/\"\n",
        s3.endpoint
    );
    let (edge, _config) = ServeProcess::start_with_env(
        &edge_config,
        &["--snapshots", &cache.path().display().to_string()],
        &[
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ],
    );
    let status_url = format!("http://{}/", edge.admin);
    let mut last = String::new();
    wait_until(Duration::from_secs(15), || {
        last = ocsp_edge(&["status", &status_url]).stdout;
        last.contains(&format!("serving sequence                         {third}"))
    });
    let served = last.contains(&format!("{third}"));
    // A revoked demo certificate, answered from what came out of the bucket.
    let revoked = first_with_status("ec", 'R');
    let (status, answer) = openssl_status(edge.ocsp, &issuer_ca("ec"), &revoked.cert("ec"), false);
    drop(edge);
    assert!(served, "the responder never served {third} from S3:\n{last}");
    assert_eq!(status, "revoked", "{answer}");
    assert!(answer.stderr.contains("Response verify OK"), "{answer}");
}

#[test]
fn an_upload_older_than_the_store_and_wrong_credentials_are_refused() {
    let Some(s3) = s3_for("an_upload_older_than_the_store_and_wrong_credentials_are_refused") else {
        return;
    };
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
    wrong.assert_code(74);
    let stderr = &wrong.stderr;
    assert!(stderr.contains("HTTP 403") || stderr.contains("403"), "{stderr}");
}
