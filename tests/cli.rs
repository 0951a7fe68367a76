//! End-to-end tests of the `ocsp-edge` command: `publish` with flags, JSON Lines and a TOML
//! configuration, `serve` checked with the real `openssl ocsp` client, the exit codes and
//! messages for bad input, crash safety of the snapshot directory, and `check-config`.
//!
//! Every process started here is killed by its PID through its `Child` handle (a guard
//! whose `Drop` kills it, so a failing assertion does not leak a server), every wait has a
//! deadline, and everything listens on 127.0.0.1 with kernel-chosen ports.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const EX_USAGE: i32 = 64;
const EX_DATAERR: i32 = 65;

// ---------------------------------------------------------------------------------------
// publish

fn publish_args(issuer: &Path, input: (&str, &Path), cert: &Path, key: &Path, out: &Path) -> Vec<String> {
    [
        "publish",
        "--issuer",
        &issuer.display().to_string(),
        input.0,
        &input.1.display().to_string(),
        "--signer-cert",
        &cert.display().to_string(),
        "--signer-key",
        &key.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs a publish that must succeed and returns the sequence it reports.
#[track_caller]
fn publish_ok(args: &[String]) -> u64 {
    let ran = run_command(ocsp_edge_command().args(args));
    ran.assert_code(0);
    let sequence = ran
        .stdout
        .split_once("published sequence ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok());
    sequence.unwrap_or_else(|| panic!("no \"published sequence N\" on stdout\n{}", ran))
}

/// Sequences with a manifest in `dir`, ascending.
fn manifests(dir: &Path) -> Vec<u64> {
    let mut sequences: Vec<u64> = file_names(dir)
        .iter()
        .filter_map(|name| name.strip_suffix(".manifest.json")?.parse().ok())
        .collect();
    sequences.sort_unstable();
    sequences
}

fn snapshot_file(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:020}.snapshot"))
}

fn manifest_file(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:020}.manifest.json"))
}

// ---------------------------------------------------------------------------------------
// serve

/// A running `ocsp-edge serve` (see [`ServeProcess::serve`]).
type Server = ServeProcess;

// ---------------------------------------------------------------------------------------
// The openssl OCSP client

/// `openssl ocsp` against `server` for `leaf`; `sha256` selects the CertID hash
/// (openssl's default is SHA-1). The issuer is the trust anchor when it is self-signed;
/// the demo issuers chain to the demo root (see [`trust_anchor`]).
fn query(server: &Server, issuer: &Path, leaf: &Path, sha256: bool) -> Queried {
    let response = tempfile::NamedTempFile::new().unwrap();
    let mut command = Command::new("openssl");
    command.arg("ocsp");
    if sha256 {
        command.arg("-sha256");
    }
    command
        .arg("-issuer")
        .arg(issuer)
        .arg("-cert")
        .arg(leaf)
        .args(["-url", &server.url()])
        .arg("-CAfile")
        .arg(trust_anchor(issuer))
        .arg("-verify_other")
        .arg(issuer)
        .args(["-no_nonce", "-timeout", "10", "-resp_text", "-respout"])
        .arg(response.path());
    let ran = run_command(&mut command);
    let response = std::fs::read(response.path()).unwrap_or_default();
    Queried { ran, response }
}

/// What `openssl ocsp` printed, and the DER response it received.
struct Queried {
    ran: Output,
    response: Vec<u8>,
}

impl std::ops::Deref for Queried {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.ran
    }
}

impl std::fmt::Display for Queried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ran.fmt(f)
    }
}

/// The demo issuing CAs are issued by the demo root; the fresh test CAs are self-signed.
fn trust_anchor(issuer: &Path) -> PathBuf {
    if issuer.starts_with(demo()) {
        demo().join("root/ca.pem")
    } else {
        issuer.to_path_buf()
    }
}

/// Asserts openssl verified the response and printed `status` (and `reason`) for `leaf`.
#[track_caller]
fn assert_status(ran: &Output, leaf: &Path, status: &str, reason: Option<&str>) {
    let all = ran.text();
    assert!(all.contains("Response verify OK"), "{}", ran);
    let line = format!("{}: {status}", leaf.display());
    assert!(
        all.lines().any(|l| l.trim_end() == line),
        "expected {line:?}\n{}",
        ran
    );
    if let Some(reason) = reason {
        assert!(all.contains(&format!("Reason: {reason}")), "{}", ran);
    }
}

/// Whether the response openssl received embeds a certificate.
fn embeds_certificate(ran: &Queried) -> bool {
    ocsp_embedded_certificates(&ran.response) > 0
}

// ---------------------------------------------------------------------------------------
// A fresh PKI made with the openssl CLI

const EXTENSIONS: &str = "\
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash

[ocsp_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
noCheck = ignored
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
";

/// Serials of the two leaves; the second has its top bit set (DER needs a leading 00).
const GOOD_SERIAL: &str = "1A2B3C4D5E6F7081";
const REVOKED_SERIAL: &str = "C0FFEE0102030405";

#[derive(Clone, Copy, Debug)]
enum Signer {
    /// A delegated signer whose key this openssl command writes to ocsp.key, in a PEM
    /// block with this label.
    Delegated(&'static str, &'static str),
    /// The issuing CA signs its own responses.
    Issuer,
}

const P256_SEC1: Signer = Signer::Delegated(
    "ecparam -name prime256v1 -genkey -noout -out ocsp.key",
    "EC PRIVATE KEY",
);
const P384_PKCS8: Signer = Signer::Delegated(
    "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ocsp.key",
    "PRIVATE KEY",
);
const RSA2048_PKCS1: Signer = Signer::Delegated("genrsa -traditional -out ocsp.key 2048", "RSA PRIVATE KEY");
const RSA4096_PKCS8: Signer = Signer::Delegated(
    "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 -out ocsp.key",
    "PRIVATE KEY",
);
const ED25519_PKCS8: Signer = Signer::Delegated("genpkey -algorithm ed25519 -out ocsp.key", "PRIVATE KEY");

struct Pki {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ca: PathBuf,
    signer_cert: PathBuf,
    signer_key: PathBuf,
    good_leaf: PathBuf,
    revoked_leaf: PathBuf,
    index: PathBuf,
}

impl Pki {
    fn new(signer: Signer) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::write(root.join("ext.cnf"), EXTENSIONS).unwrap();
        // Every argument below is free of spaces, so one string per command reads best.
        let ossl = |command: &str| openssl_in(&root, &command.split_whitespace().collect::<Vec<_>>());
        ossl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key");
        ossl(
            "req -new -x509 -key ca.key -subj /CN=ocsp-edge-CLI-Test-CA -days 3650 \
             -config ext.cnf -extensions ca_ext -out ca.pem",
        );
        let issue = |key: &str, subject: &str, serial: &str, extensions: &str, out: &str| {
            ossl(&format!("req -new -key {key} -subj {subject} -out request.csr"));
            ossl(&format!(
                "x509 -req -in request.csr -CA ca.pem -CAkey ca.key -set_serial 0x{serial} -days 365 \
                 -extfile ext.cnf -extensions {extensions} -out {out}"
            ));
        };
        let (signer_cert, signer_key) = match signer {
            Signer::Issuer => (root.join("ca.pem"), root.join("ca.key")),
            Signer::Delegated(generate, label) => {
                ossl(generate);
                let pem = std::fs::read_to_string(root.join("ocsp.key")).unwrap();
                assert!(
                    pem.starts_with(&format!("-----BEGIN {label}-----")),
                    "{signer:?} wrote {pem}"
                );
                issue(
                    "ocsp.key",
                    "/CN=ocsp-edge-CLI-Test-OCSP-Signer",
                    "1001",
                    "ocsp_ext",
                    "ocsp.pem",
                );
                (root.join("ocsp.pem"), root.join("ocsp.key"))
            }
        };
        ossl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf.key");
        issue(
            "leaf.key",
            "/CN=good.cli.test",
            GOOD_SERIAL,
            "leaf_ext",
            "good.pem",
        );
        issue(
            "leaf.key",
            "/CN=revoked.cli.test",
            REVOKED_SERIAL,
            "leaf_ext",
            "revoked.pem",
        );
        let index = root.join("index.txt");
        std::fs::write(
            &index,
            format!(
                "V\t360101000000Z\t\t{GOOD_SERIAL}\tunknown\t/CN=good.cli.test\n\
                 R\t360101000000Z\t260301000000Z,superseded\t{REVOKED_SERIAL}\tunknown\t/CN=revoked.cli.test\n"
            ),
        )
        .unwrap();
        Pki {
            ca: root.join("ca.pem"),
            good_leaf: root.join("good.pem"),
            revoked_leaf: root.join("revoked.pem"),
            signer_cert,
            signer_key,
            index,
            root,
            _dir: dir,
        }
    }
}

/// Test 1's body: fresh PKI → publish with flags → serve → openssl for both leaves, with
/// both CertID hashes.
fn publish_serve_and_verify(signer: Signer) {
    let pki = Pki::new(signer);
    let out = pki.root.join("snapshots");
    let mut args = publish_args(
        &pki.ca,
        ("--index", &pki.index),
        &pki.signer_cert,
        &pki.signer_key,
        &out,
    );
    args.extend([
        "--validity".into(),
        "96h".into(),
        "--name".into(),
        "cli-test".into(),
    ]);
    let sequence = publish_ok(&args);
    assert_eq!(manifests(&out), vec![sequence]);
    assert!(snapshot_file(&out, sequence).is_file());

    let mut server = Server::serve(&out, &[&pki.ca]);
    server.wait_ready();
    for sha256 in [false, true] {
        let good = query(&server, &pki.ca, &pki.good_leaf, sha256);
        assert_status(&good, &pki.good_leaf, "good", None);
        let revoked = query(&server, &pki.ca, &pki.revoked_leaf, sha256);
        assert_status(&revoked, &pki.revoked_leaf, "revoked", Some("superseded"));
        assert!(
            revoked
                .text()
                .contains("Revocation Time: Mar  1 00:00:00 2026 GMT"),
            "{}",
            revoked
        );
        for ran in [&good, &revoked] {
            match signer {
                // Go's x/crypto/ocsp rejects a CA-signed response that embeds the CA.
                Signer::Issuer => assert!(
                    !embeds_certificate(ran),
                    "the issuer signs: no certificate may be embedded\n{}",
                    ran
                ),
                // Clients need the delegated signer's certificate to verify.
                Signer::Delegated(..) => assert!(embeds_certificate(ran), "{}", ran),
            }
        }
    }
}

#[test]
fn publish_with_flags_ecdsa_p256_sec1_key_verified_by_openssl() {
    publish_serve_and_verify(P256_SEC1);
}

#[test]
fn publish_with_flags_ecdsa_p384_pkcs8_key_verified_by_openssl() {
    publish_serve_and_verify(P384_PKCS8);
}

#[test]
fn publish_with_flags_rsa2048_pkcs1_key_verified_by_openssl() {
    publish_serve_and_verify(RSA2048_PKCS1);
}

#[test]
fn publish_with_flags_rsa4096_pkcs8_key_verified_by_openssl() {
    publish_serve_and_verify(RSA4096_PKCS8);
}

#[test]
fn publish_with_flags_ed25519_pkcs8_key_verified_by_openssl() {
    publish_serve_and_verify(ED25519_PKCS8);
}

#[test]
fn publish_with_flags_issuer_signs_itself_and_embeds_no_certificate() {
    publish_serve_and_verify(Signer::Issuer);
}

// ---------------------------------------------------------------------------------------
// 2. JSON Lines

/// The serial (4th field) and leaf certificate of line `n` (1-based) of a demo index.txt.
fn demo_leaf(issuer: &str, n: usize) -> (String, PathBuf) {
    let row = &index_rows(issuer)[n - 1];
    let pem = row.cert(issuer);
    assert!(pem.is_file(), "{}", pem.display());
    (row.serial.clone(), pem)
}

#[test]
fn json_lines_feed_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let ec = demo().join("ec");
    let (good_serial, good_leaf) = demo_leaf("ec", 1);
    // Valid ("V") in index.txt: revoked here, so the answer can only come from the feed.
    let (revoked_serial, revoked_leaf) = demo_leaf("ec", 2);
    let (_, absent_leaf) = demo_leaf("ec", 3);
    let feed = dir.path().join("feed.jsonl");
    std::fs::write(
        &feed,
        format!(
            "{{\"serial\":\"{good_serial}\",\"status\":\"good\",\"not_after\":\"2036-01-01T00:00:00Z\"}}\n\
             \n\
             {{\"serial\":\"{revoked_serial}\",\"status\":\"revoked\",\"revoked_at\":\"2026-02-01T00:00:00Z\",\
             \"reason\":\"keyCompromise\",\"invalidity_date\":\"2026-01-15T12:00:00Z\"}}\n"
        ),
    )
    .unwrap();
    let out = dir.path().join("snapshots");
    let args = publish_args(
        &ec.join("ca.pem"),
        ("--json-lines", &feed),
        &ec.join("ocsp.pem"),
        &ec.join("ocsp.key"),
        &out,
    );
    let sequence = publish_ok(&args);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_file(&out, sequence)).unwrap()).unwrap();
    assert_eq!(manifest["body"]["issuers"][0]["entries"], 2, "{manifest}");

    let mut server = Server::serve(&out, &[&ec.join("ca.pem")]);
    server.wait_ready();
    let issuer = ec.join("ca.pem");
    assert_status(
        &query(&server, &issuer, &good_leaf, false),
        &good_leaf,
        "good",
        None,
    );
    let revoked = query(&server, &issuer, &revoked_leaf, true);
    assert_status(&revoked, &revoked_leaf, "revoked", Some("keyCompromise"));
    assert!(
        revoked
            .text()
            .contains("Revocation Time: Feb  1 00:00:00 2026 GMT"),
        "{}",
        revoked
    );
    // A certificate of this issuer that the feed does not list must never be "good".
    let absent = query(&server, &issuer, &absent_leaf, false);
    assert!(
        !absent.text().contains(": good") && !absent.text().contains(": revoked"),
        "{}",
        absent
    );
}

// ---------------------------------------------------------------------------------------
// 3. Bad input stops the publish with a message naming the file (and line)

/// Runs a publish that must fail with `code` and write no snapshot.
#[track_caller]
fn publish_fails(args: &[String], out: &Path, code: i32) -> Output {
    let ran = run_command(ocsp_edge_command().args(args));
    ran.assert_code(code);
    assert!(
        !out.exists() || manifests(out).is_empty(),
        "a failed publish wrote {:?}",
        file_names(out)
    );
    ran
}

fn demo_publish_args(out: &Path) -> Vec<String> {
    let ec = demo().join("ec");
    publish_args(
        &ec.join("ca.pem"),
        ("--index", &ec.join("index.txt")),
        &ec.join("ocsp.pem"),
        &ec.join("ocsp.key"),
        out,
    )
}

/// Replaces the value after `flag` in `args`.
fn with_flag(mut args: Vec<String>, flag: &str, value: &Path) -> Vec<String> {
    let at = args.iter().position(|a| a == flag).unwrap() + 1;
    args[at] = value.display().to_string();
    args
}

#[test]
fn unparsable_index_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let good = std::fs::read_to_string(demo().join("ec/index.txt")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines[2] = "V\t360101000000Z\tnot-hex-serial\tunknown";
    let index = dir.path().join("index.txt");
    std::fs::write(&index, lines.join("\n") + "\n").unwrap();
    let args = with_flag(demo_publish_args(&out), "--index", &index);
    publish_fails(&args, &out, EX_DATAERR)
        .assert_stderr_contains(&format!("{}:3:", index.display()))
        .assert_stderr_contains("index.txt:3:");
}

#[test]
fn unknown_json_lines_field_names_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let feed = dir.path().join("feed.jsonl");
    std::fs::write(
        &feed,
        "{\"serial\":\"01\",\"status\":\"good\"}\n\
         {\"serial\":\"02\",\"status\":\"revoked\",\"revoked_at\":\"2026-02-01T00:00:00Z\",\"reasn\":\"superseded\"}\n",
    )
    .unwrap();
    let ec = demo().join("ec");
    let args = publish_args(
        &ec.join("ca.pem"),
        ("--json-lines", &feed),
        &ec.join("ocsp.pem"),
        &ec.join("ocsp.key"),
        &out,
    );
    publish_fails(&args, &out, EX_DATAERR)
        .assert_stderr_contains(&format!("{}:2:", feed.display()))
        .assert_stderr_contains("feed.jsonl:2:")
        .assert_stderr_contains("reasn");
}

#[test]
fn signer_key_of_another_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let wrong_key = demo().join("ec/ca.key");
    let args = with_flag(demo_publish_args(&out), "--signer-key", &wrong_key);
    publish_fails(&args, &out, EX_DATAERR)
        .assert_stderr_contains(&wrong_key.display().to_string())
        .assert_stderr_contains("does not belong");
}

#[test]
fn signer_of_another_issuer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let rsa_signer = demo().join("rsa/ocsp.pem");
    let args = with_flag(demo_publish_args(&out), "--signer-cert", &rsa_signer);
    let args = with_flag(args, "--signer-key", &demo().join("rsa/ocsp.key"));
    publish_fails(&args, &out, EX_DATAERR)
        .assert_stderr_contains(&rsa_signer.display().to_string())
        .assert_stderr_contains("not issued by the issuer");
}

#[test]
fn signer_without_ocsp_signing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The EC issuing CA is a valid certificate of the root, but not an OCSP signer.
    let args = with_flag(demo_publish_args(&out), "--issuer", &demo().join("root/ca.pem"));
    let args = with_flag(args, "--signer-cert", &demo().join("ec/ca.pem"));
    let args = with_flag(args, "--signer-key", &demo().join("ec/ca.key"));
    publish_fails(&args, &out, EX_DATAERR).assert_stderr_contains("OCSPSigning");
}

#[test]
fn validity_outside_eight_hours_to_ten_days_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for bad in ["7h", "11d"] {
        let mut args = demo_publish_args(&out);
        args.extend(["--validity".into(), bad.into()]);
        publish_fails(&args, &out, EX_USAGE)
            .assert_stderr_contains("8h to 10d")
            .assert_stderr_contains(bad);
    }
    // The bounds themselves are accepted.
    for edge in ["8h", "10d"] {
        let mut args = demo_publish_args(&out);
        args.extend(["--validity".into(), edge.into()]);
        publish_ok(&args);
    }
    assert_eq!(manifests(&out).len(), 2);
}

#[test]
fn publish_without_issuer_or_config_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let args = vec!["publish".to_string(), "--out".into(), out.display().to_string()];
    publish_fails(&args, &out, EX_USAGE)
        .assert_stderr_contains("--config")
        .assert_stderr_contains("--issuer");
}

#[test]
fn unknown_publish_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut args = demo_publish_args(&out);
    args.push("--bogus-flag".into());
    publish_fails(&args, &out, EX_USAGE).assert_stderr_contains("--bogus-flag");
}

#[test]
fn issuer_without_input_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ec = demo().join("ec");
    let args: Vec<String> = [
        "publish",
        "--issuer",
        &ec.join("ca.pem").display().to_string(),
        "--signer-cert",
        &ec.join("ocsp.pem").display().to_string(),
        "--signer-key",
        &ec.join("ocsp.key").display().to_string(),
        "--out",
        &out.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    publish_fails(&args, &out, EX_USAGE).assert_stderr_contains("index");
}

#[test]
fn encrypted_signer_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let plain = demo().join("ec/ocsp.key");
    let plain = plain.display().to_string();
    // PKCS#8 "ENCRYPTED PRIVATE KEY" and traditional "Proc-Type: 4,ENCRYPTED".
    let variants: [(&str, &[&str]); 2] = [
        (
            "pkcs8-encrypted.key",
            &["pkey", "-in", &plain, "-aes256", "-passout", "pass:x"],
        ),
        (
            "sec1-encrypted.key",
            &["ec", "-in", &plain, "-aes256", "-passout", "pass:x"],
        ),
    ];
    for (name, command) in variants {
        let key = dir.path().join(name);
        let mut args = command.to_vec();
        let key_arg = key.display().to_string();
        args.extend(["-out", &key_arg]);
        openssl_in(dir.path(), &args);
        assert!(std::fs::read_to_string(&key).unwrap().contains("ENCRYPTED"));
        let publish = with_flag(demo_publish_args(&out), "--signer-key", &key);
        publish_fails(&publish, &out, EX_DATAERR)
            .assert_stderr_contains(&key_arg)
            .assert_stderr_contains("encrypted");
    }
}

// ---------------------------------------------------------------------------------------
// 4. Never overwrite; a crash mid-publish leaves the previous snapshot usable

#[test]
fn publishes_never_overwrite_and_a_crash_leaves_the_previous_snapshot_usable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshots");
    let args = demo_publish_args(&out);

    let first = publish_ok(&args);
    let first_files = [snapshot_file(&out, first), manifest_file(&out, first)];
    let first_bytes: Vec<Vec<u8>> = first_files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let second = publish_ok(&args);
    assert!(second > first, "{second} after {first}");
    assert_eq!(manifests(&out), vec![first, second]);
    for (path, bytes) in first_files.iter().zip(&first_bytes) {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{} changed", path.display());
    }
    assert_ne!(
        std::fs::read(snapshot_file(&out, second)).unwrap(),
        first_bytes[0],
        "a new snapshot, not a copy"
    );

    // A crash mid-publish: a partial temporary file, and a snapshot whose manifest was
    // never written, at a sequence above what the clock would choose now (but within the
    // responders' `max_sequence_skew`: a store beyond it is refused as poisoned).
    let stray = out.join(format!(".tmp-123-{:020}.snapshot", second + 1));
    let partial = std::fs::read(snapshot_file(&out, second)).unwrap();
    std::fs::write(&stray, &partial[..partial.len() / 2]).unwrap();
    let orphan = second + 3_600;
    std::fs::write(snapshot_file(&out, orphan), b"garbage, not a snapshot \x00\xff").unwrap();

    let ec = demo().join("ec");
    let mut server = Server::serve(&out, &[&ec.join("ca.pem")]);
    server.wait_ready();
    assert_eq!(server.served_sequence(), Some(second), "{}", server.log());
    let (_, leaf) = demo_leaf("ec", 1);
    assert_status(
        &query(&server, &ec.join("ca.pem"), &leaf, false),
        &leaf,
        "good",
        None,
    );

    let third = publish_ok(&args);
    assert!(
        third > orphan,
        "sequence {third} is not above the orphan {orphan}"
    );
    assert!(!stray.exists(), "the stray temporary file was not removed");
    assert!(manifest_file(&out, third).is_file());
    for (path, bytes) in first_files.iter().zip(&first_bytes) {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{} changed", path.display());
    }
    // The running server picks the new snapshot up and keeps answering.
    server.wait_for_sequence(third);
    server.wait_ready();
    assert_status(
        &query(&server, &ec.join("ca.pem"), &leaf, true),
        &leaf,
        "good",
        None,
    );
}

// ---------------------------------------------------------------------------------------
// 5. Several issuers from one TOML configuration

#[test]
fn multi_issuer_configuration_serves_both_issuers() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("snapshots");
    let args = [
        "publish".to_string(),
        "--config".into(),
        demo().join("publish.toml").display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    let sequence = publish_ok(&args);
    assert_eq!(
        file_names(&out),
        vec![
            format!("{sequence:020}.manifest.json"),
            format!("{sequence:020}.snapshot"),
            "latest.manifest.json".to_string(),
        ]
    );
    assert_eq!(
        std::fs::read(out.join("latest.manifest.json")).unwrap(),
        std::fs::read(manifest_file(&out, sequence)).unwrap(),
        "latest.manifest.json is a copy of the newest manifest"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(manifest_file(&out, sequence)).unwrap()).unwrap();
    let names: Vec<&str> = manifest["body"]["issuers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ec", "rsa"], "{manifest}");

    let (ec, rsa) = (demo().join("ec/ca.pem"), demo().join("rsa/ca.pem"));
    let mut server = Server::serve(&out, &[&ec, &rsa]);
    server.wait_ready();
    for (name, issuer) in [("ec", &ec), ("rsa", &rsa)] {
        let (_, good) = demo_leaf(name, 1);
        assert_status(&query(&server, issuer, &good, false), &good, "good", None);
        // Line 7 of each demo index.txt: revoked, keyCompromise.
        let (_, revoked) = demo_leaf(name, 7);
        let ran = query(&server, issuer, &revoked, true);
        assert_status(&ran, &revoked, "revoked", Some("keyCompromise"));
    }
}

// ---------------------------------------------------------------------------------------
// 6. check-config

fn check_config(config: &Path, snapshots: &Path, trust: Option<&Path>, env: &[(&str, &str)]) -> Output {
    let mut command = ocsp_edge_command();
    command
        .arg("check-config")
        .arg("--config")
        .arg(config)
        .arg("--snapshots")
        .arg(snapshots);
    if let Some(trust) = trust {
        command.arg("--trust").arg(trust);
    }
    command.envs(env.iter().copied());
    run_command(&mut command)
}

#[test]
fn check_config_accepts_valid_and_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let trust = demo().join("ec/ca.pem");
    let valid = dir.path().join("valid.toml");
    std::fs::write(&valid, "[ocsp]\ncache_max_age = \"1m\"\npath = \"/ocsp/\"\n").unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[ocsp]\ncache_max_agee = \"1m\"\n").unwrap();

    let ok = check_config(&valid, dir.path(), Some(&trust), &[]);
    ok.assert_code(0);
    assert!(ok.stdout.contains("configuration is valid"), "{}", ok);

    check_config(&typo, dir.path(), Some(&trust), &[])
        .assert_code(EX_USAGE)
        .assert_stderr_contains("cache_max_agee");
    check_config(
        &valid,
        dir.path(),
        Some(&trust),
        &[("OCSP_EDGE__OCSP__PATH", "bad")],
    )
    .assert_code(EX_USAGE)
    .assert_stderr_contains("ocsp.path");
    check_config(&valid, dir.path(), None, &[])
        .assert_code(EX_USAGE)
        .assert_stderr_contains("snapshots.trust");
}

/// One failure of each category the binary can be driven into without a token or an S3
/// server leaves with that category's code (README, "Exit codes"; tests/hsm.rs covers 75
/// and 80–84). Each case would exit with another code if its error were misfiled.
#[test]
fn each_failure_category_has_its_exit_code() {
    let work = tempfile::tempdir().unwrap();
    let ec = common::issuer_ca("ec");
    let ec_dir = ec.parent().unwrap();
    let (ocsp_pem, ocsp_key) = (ec_dir.join("ocsp.pem"), ec_dir.join("ocsp.key"));
    let bad_index = work.path().join("index.txt");
    std::fs::write(&bad_index, "V\tnot-a-date\t\t01\tunknown\t/CN=x\n").unwrap();
    let not_a_dir = work.path().join("file");
    std::fs::write(&not_a_dir, "a file, not a directory").unwrap();
    let out = work.path().join("out");
    let path = |p: &Path| p.display().to_string();
    let publish = |index: &Path, out: &Path, validity: &str| {
        [
            "publish",
            "--issuer",
            &path(&ec),
            "--index",
            &path(index),
            "--signer-cert",
            &path(&ocsp_pem),
            "--signer-key",
            &path(&ocsp_key),
            "--out",
            &path(out),
            "--validity",
            validity,
        ]
        .map(str::to_string)
    };
    let good_index = ec_dir.join("index.txt");
    // A port this test holds, so `serve` cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let serve_on_taken_port = [
        "serve",
        "--snapshots",
        &path(work.path()),
        "--trust",
        &path(&ec),
        "--listen",
        &taken.local_addr().unwrap().to_string(),
        "--admin-listen",
        "127.0.0.1:0",
    ]
    .map(str::to_string);
    let cases: [(&str, Vec<String>, i32); 5] = [
        (
            "usage: a duration no grammar accepts",
            publish(&good_index, &out, "4 days").to_vec(),
            64,
        ),
        (
            "bad data: an unparsable index line",
            publish(&bad_index, &out, "96h").to_vec(),
            65,
        ),
        (
            "unavailable: no responder listens",
            vec!["status".into(), "http://127.0.0.1:1/".into()],
            69,
        ),
        (
            "I/O: the output directory cannot be created",
            publish(&good_index, &not_a_dir.join("out"), "96h").to_vec(),
            74,
        ),
        (
            "I/O: serve cannot bind its port",
            serve_on_taken_port.to_vec(),
            74,
        ),
    ];
    for (what, args, code) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let ran = common::ocsp_edge(&args);
        assert_eq!(ran.code, Some(code), "{what}\n{ran}");
        assert!(!ran.stderr.trim().is_empty(), "{what}: says why\n{ran}");
    }
    assert!(!out.exists(), "no failed publish wrote anything");
}
