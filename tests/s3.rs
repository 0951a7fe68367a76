//! Replication through S3-compatible object storage, against a real S3 server started
//! and stopped by the test (s3s-fs; CI installs it with `cargo install s3s-fs`): the
//! publisher uploads snapshot, manifest, then latest.manifest.json; two publishers with
//! separate local state publish in turn without ever going backwards; a responder with an
//! `s3` source replicates and answers; an upload older than the store's newest is refused;
//! wrong credentials fail with a clear message; two live publishers (`publish --watch`)
//! share a lease object in the bucket and the standby takes over after `kill -9`.

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

impl S3Server {
    /// Where s3s-fs keeps the bucket's objects: one file per key.
    fn bucket_dir(&self) -> PathBuf {
        self._data.path().join("ocsp")
    }
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

#[test]
fn live_publishers_share_a_lease_in_the_bucket_and_the_standby_takes_over_after_kill_9() {
    let test = "live_publishers_share_a_lease_in_the_bucket_and_the_standby_takes_over_after_kill_9";
    let Some(s3) = s3_for(test) else {
        return;
    };
    let pki = Pki::new();
    let toml = std::fs::read_to_string(pki.toml()).unwrap();
    let upload = format!(
        "[upload]\nendpoint = \"{}\"\nbucket = \"ocsp\"\nprefix = \"snapshots/\"\n\n\
         [watch]\nlease = \"s3\"\nlease_duration = \"3s\"\nlease_renew = \"1s\"\n\n",
        s3.endpoint
    );
    std::fs::write(
        pki.toml(),
        toml.replacen("[[issuer]]", &format!("{upload}[[issuer]]"), 1),
    )
    .unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ];
    let bucket = s3.bucket_dir().join("snapshots");
    let newest = || {
        ocsp_edge::snapshot::manifest_sequences(&bucket)
            .ok()
            .and_then(|s| s.first().copied())
    };
    // Each publisher has its own local directory: only the bucket is shared.
    let work = tempfile::tempdir().unwrap();
    let mut active = PublisherProcess::start_with_env(&pki.toml(), &work.path().join("a"), &[], &env);
    assert!(
        wait_until(Duration::from_secs(30), || newest().is_some()),
        "{}",
        active.log()
    );
    let standby = PublisherProcess::start_with_env(&pki.toml(), &work.path().join("b"), &[], &env);
    assert!(
        wait_until(Duration::from_secs(5), || standby.ready().1.contains("standby")),
        "{:?}\n{}",
        standby.ready(),
        standby.log()
    );
    let before = newest().unwrap();

    let serial = index_rows("ec")
        .into_iter()
        .filter(|r| r.status == 'V')
        .nth(1)
        .unwrap()
        .serial;
    pki.revoke_ec(&serial);
    active.signal("KILL");
    let killed = std::time::Instant::now();
    active.wait_exit(Duration::from_secs(5)).expect("killed");
    assert!(
        wait_until(Duration::from_secs(10), || standby
            .metric("ocsp_edge_publisher_lease_held")
            == Some(1.0)),
        "{}",
        standby.log()
    );
    let takeover = killed.elapsed();
    assert!(
        takeover <= Duration::from_secs(3 + 1 + 1),
        "took over after {takeover:?}"
    );
    let trust = ocsp_edge::snapshot::TrustAnchors::new(
        demo_trust()
            .iter()
            .map(|p| ocsp_edge::pki::Certificate::from_pem(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect(),
    );
    let now = ocsp_edge::time::UnixTime::now;
    let serial = ocsp_edge::model::Serial::from_hex(&serial).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || newest().is_some_and(|s| s > before
            && ocsp_edge::snapshot::load_snapshot(&bucket, s, &trust, now())
                .is_ok_and(|snapshot| matches!(
                    snapshot.status_of("ec", &serial),
                    Some(ocsp_edge::snapshot::StoredStatus::Revoked { .. })
                )))),
        "the standby never uploaded the revocation\n{}",
        standby.log()
    );
    eprintln!(
        "S3 failover: lease taken {} ms after kill -9",
        takeover.as_millis()
    );
    let sequences = ocsp_edge::snapshot::manifest_sequences(&bucket).unwrap();
    assert!(sequences.windows(2).all(|w| w[0] > w[1]), "{sequences:?}");
    for sequence in sequences {
        ocsp_edge::snapshot::load_snapshot(&bucket, sequence, &trust, now()).unwrap();
    }
}

/// What the lease relies on: of two writers acting on one version of the lease object,
/// exactly one succeeds (create-only, then compare-and-swap on the ETag).
#[test]
fn conditional_writes_let_exactly_one_of_two_racing_lease_writers_win() {
    let test = "conditional_writes_let_exactly_one_of_two_racing_lease_writers_win";
    let Some(s3) = s3_for(test) else {
        return;
    };
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    let location = ocsp_edge::s3::S3Location::new(&ocsp_edge::s3::S3Config {
        endpoint: s3.endpoint.clone(),
        bucket: "ocsp".into(),
        prefix: "race/".into(),
        region: "us-east-1".into(),
        path_style: true,
        profile: None,
    })
    .unwrap();
    let client = ocsp_edge::http_client::client_builder().build().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use ocsp_edge::s3::{get_object, put_if};
        let create = ("if-none-match", "*");
        let first = put_if(&client, &location, "publisher.lease", b"a".to_vec(), create)
            .await
            .unwrap();
        let second = put_if(&client, &location, "publisher.lease", b"b".to_vec(), create)
            .await
            .unwrap();
        assert!(first.is_some() && second.is_none(), "{first:?} {second:?}");
        let (bytes, etag) = get_object(&client, &location, "publisher.lease")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes, b"a");
        // Both read `etag`; the first swap wins, the second (on the now-stale ETag) loses.
        let won = put_if(
            &client,
            &location,
            "publisher.lease",
            b"c".to_vec(),
            ("if-match", &etag),
        )
        .await
        .unwrap();
        let lost = put_if(
            &client,
            &location,
            "publisher.lease",
            b"d".to_vec(),
            ("if-match", &etag),
        )
        .await
        .unwrap();
        assert!(won.is_some() && lost.is_none(), "{won:?} {lost:?}");
        let (bytes, _) = get_object(&client, &location, "publisher.lease")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bytes, b"c");
    });
}
