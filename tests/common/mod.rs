//! Shared helpers for the integration tests: the demo PKI, publishing, a running server,
//! the `openssl` CLI, and a tiny raw HTTP/1.1 client for header-level checks.
#![allow(dead_code)]

use ocsp_edge::config::{Config, Sources};
use ocsp_edge::publish::{PublishConfig, PublishReport};
use ocsp_edge::server::Background;
use ocsp_edge::time::UnixTime;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The demo PKI

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/demo`, absolute.
pub fn demo() -> PathBuf {
    repo().join("fixtures/demo")
}

pub fn root_ca() -> PathBuf {
    demo().join("root/ca.pem")
}

/// `fixtures/demo/<issuer>/ca.pem` (issuer = "ec" or "rsa").
pub fn issuer_ca(issuer: &str) -> PathBuf {
    demo().join(issuer).join("ca.pem")
}

pub fn cert_path(issuer: &str, serial: &str) -> PathBuf {
    demo().join(issuer).join("certs").join(format!("{serial}.pem"))
}

pub fn unassigned(issuer: &str) -> PathBuf {
    demo().join(issuer).join("unassigned.pem")
}

/// One line of an OpenSSL `index.txt`.
#[derive(Clone, Debug)]
pub struct IndexRow {
    /// `V`, `R` or `E`.
    pub status: char,
    /// Upper-case hex, as in the file (and the certificate's file name).
    pub serial: String,
    /// The revocation field: `date[,reason]` or `date,keyTime,T`; empty unless `R`.
    pub revocation: String,
}

impl IndexRow {
    /// The revocation date as (year, month, day, hour, minute, second).
    pub fn revoked_at(&self) -> Option<DateTime> {
        let date = self.revocation.split(',').next()?;
        parse_utc_time(date)
    }

    /// The reason as `openssl ocsp` prints it (`Reason: ...`) for a snapshot published with
    /// the default reason policy, `None` if the response carries no reasonCode: none is
    /// recorded, or it is `unspecified`, which the publisher omits (CA/Browser Forum BR
    /// §7.2.2/§7.3, `revocation_reasons = "baseline_requirements"`).
    pub fn openssl_reason(&self) -> Option<&'static str> {
        let name = self.revocation.split(',').nth(1)?;
        Some(match name {
            "unspecified" => return None,
            "keyCompromise" | "keyTime" => "keyCompromise",
            "CACompromise" | "CAkeyTime" => "cACompromise",
            "affiliationChanged" => "affiliationChanged",
            "superseded" => "superseded",
            "cessationOfOperation" => "cessationOfOperation",
            "certificateHold" => "certificateHold",
            "removeFromCRL" => "removeFromCRL",
            "privilegeWithdrawn" => "privilegeWithdrawn",
            "AACompromise" => "aACompromise",
            other => panic!("index reason {other:?} not known to the test"),
        })
    }

    pub fn cert(&self, issuer: &str) -> PathBuf {
        cert_path(issuer, &self.serial)
    }
}

pub fn parse_index(text: &str) -> Vec<IndexRow> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(fields.len() >= 4, "index line {line:?}");
            IndexRow {
                status: fields[0].chars().next().unwrap(),
                serial: fields[3].to_string(),
                revocation: fields[2].to_string(),
            }
        })
        .collect()
}

/// The rows of `fixtures/demo/<issuer>/index.txt`.
pub fn index_rows(issuer: &str) -> Vec<IndexRow> {
    let text = std::fs::read_to_string(demo().join(issuer).join("index.txt")).unwrap();
    parse_index(&text)
}

/// (year, month, day, hour, minute, second), UTC.
pub type DateTime = (i32, u32, u32, u32, u32, u32);

/// `YYMMDDHHMMSSZ` (UTCTime as in index.txt).
pub fn parse_utc_time(text: &str) -> Option<DateTime> {
    let d = text.strip_suffix('Z')?;
    if d.len() != 12 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().unwrap();
    let yy = n(0..2) as i32;
    Some((
        if yy < 50 { 2000 + yy } else { 1900 + yy },
        n(2..4),
        n(4..6),
        n(6..8),
        n(8..10),
        n(10..12),
    ))
}

/// openssl's `Feb  1 00:00:00 2026 GMT`.
pub fn parse_openssl_time(text: &str) -> Option<DateTime> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == parts[0])? as u32 + 1;
    let day = parts[1].parse().ok()?;
    let hms: Vec<u32> = parts[2]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    Some((parts[3].parse().ok()?, month, day, hms[0], hms[1], hms[2]))
}

pub fn unix_seconds(t: DateTime) -> i64 {
    chrono::NaiveDate::from_ymd_opt(t.0, t.1, t.2)
        .and_then(|d| d.and_hms_opt(t.3, t.4, t.5))
        .expect("valid date")
        .and_utc()
        .timestamp()
}

pub fn now_seconds() -> i64 {
    UnixTime::now().seconds()
}

// ---------------------------------------------------------------------------------------
// Publishing and serving

/// Publishes the PKI described by `toml` into `dir` at the current time.
pub fn publish_from(toml: &Path, dir: &Path) -> PublishReport {
    publish_at(toml, dir, UnixTime::now())
}

/// Publishes the PKI described by `toml` into `dir` as if the time were `now`.
pub fn publish_at(toml: &Path, dir: &Path, now: UnixTime) -> PublishReport {
    let plan = PublishConfig::from_file(toml)
        .unwrap_or_else(|e| panic!("{}: {e}", toml.display()))
        .load(now)
        .unwrap_or_else(|e| panic!("{}: {e}", toml.display()));
    ocsp_edge::publish::publish(&plan, dir, now, &mut |_| {}).expect("publish")
}

/// Publishes `fixtures/demo/publish.toml` (both issuers) into `dir`.
pub fn publish_demo(dir: &Path) -> PublishReport {
    publish_from(&demo().join("publish.toml"), dir)
}

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

/// A private copy of the demo PKI that a test may revoke certificates in.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["root", "ec", "rsa"] {
            copy_dir(&demo().join(sub), &dir.path().join(sub));
        }
        std::fs::copy(demo().join("publish.toml"), dir.path().join("publish.toml")).unwrap();
        Pki { dir }
    }

    pub fn toml(&self) -> PathBuf {
        self.dir.path().join("publish.toml")
    }

    pub fn publish(&self, out: &Path) -> PublishReport {
        publish_from(&self.toml(), out)
    }

    pub fn publish_at(&self, out: &Path, now: UnixTime) -> PublishReport {
        publish_at(&self.toml(), out, now)
    }

    /// Sets the validity of every issuer's CRLs.
    pub fn set_crl_validity(&self, validity: &str) {
        let text = std::fs::read_to_string(self.toml()).unwrap();
        let replaced = text.replace("validity = \"7d\"", &format!("validity = \"{validity}\""));
        assert_ne!(text, replaced, "no CRL validity in publish.toml");
        std::fs::write(self.toml(), replaced).unwrap();
    }

    /// `<issuer>/index.txt` of this copy.
    pub fn index(&self, issuer: &str) -> PathBuf {
        self.dir.path().join(issuer).join("index.txt")
    }

    /// Rewrites `<issuer>/index.txt`: `edit` sees each line's tab-separated fields and
    /// returns whether to keep the line.
    pub fn edit_index(&self, issuer: &str, mut edit: impl FnMut(&mut Vec<String>) -> bool) {
        let path = self.index(issuer);
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut fields: Vec<String> = line.split('\t').map(str::to_string).collect();
            if edit(&mut fields) {
                out.push_str(&fields.join("\t"));
                out.push('\n');
            }
        }
        std::fs::write(&path, out).unwrap();
    }

    /// Switches `issuer` from its index.txt to a JSON Lines feed with the same content
    /// (`E` lines as `expired`, with their notAfter), and returns the feed's path.
    pub fn use_json_lines(&self, issuer: &str) -> PathBuf {
        let feed = self.dir.path().join(issuer).join("certs.jsonl");
        let text = std::fs::read_to_string(self.index(issuer)).unwrap();
        let lines: Vec<String> = text.lines().map(json_line_of_index_line).collect();
        std::fs::write(&feed, lines.join("\n") + "\n").unwrap();
        let toml = std::fs::read_to_string(self.toml()).unwrap();
        let from = format!("index = \"{issuer}/index.txt\"");
        let to = format!("json_lines = \"{issuer}/certs.jsonl\"");
        assert!(toml.contains(&from), "{from} not in publish.toml");
        std::fs::write(self.toml(), toml.replace(&from, &to)).unwrap();
        feed
    }

    /// Turns the `V` line of `serial` in ec/index.txt into a keyCompromise revocation.
    pub fn revoke_ec(&self, serial: &str) {
        let path = self.dir.path().join("ec/index.txt");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut changed = 0;
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                let mut fields: Vec<&str> = line.split('\t').collect();
                if fields.len() >= 4 && fields[3] == serial && fields[0] == "V" {
                    fields[0] = "R";
                    fields[2] = "261101000000Z,keyCompromise";
                    changed += 1;
                }
                fields.join("\t")
            })
            .collect();
        assert_eq!(changed, 1, "serial {serial} not found as a V line");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }
}

/// One index.txt line (as the demo writes them) as the equivalent JSON Lines entry.
pub fn json_line_of_index_line(line: &str) -> String {
    let fields: Vec<&str> = line.split('\t').collect();
    let rfc3339 = |t: &str| {
        let (y, mo, d, h, mi, s) = parse_utc_time(t).unwrap_or_else(|| panic!("time {t:?}"));
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    };
    let (serial, not_after) = (fields[3], rfc3339(fields[1]));
    match fields[0] {
        "V" => format!(r#"{{"serial":"{serial}","status":"good","not_after":"{not_after}"}}"#),
        "E" => format!(r#"{{"serial":"{serial}","status":"expired","not_after":"{not_after}"}}"#),
        _ => {
            let mut parts = fields[2].split(',');
            let at = rfc3339(parts.next().unwrap_or_default());
            let reason = match (parts.next(), parts.next()) {
                (None, _) => String::new(),
                // openssl's `keyTime,YYYYMMDDHHMMSSZ`: keyCompromise with an invalidity date.
                (Some("keyTime"), Some(t)) => format!(
                    r#","reason":"keyCompromise","invalidity_date":"{}-{}-{}T{}:{}:{}Z""#,
                    &t[0..4],
                    &t[4..6],
                    &t[6..8],
                    &t[8..10],
                    &t[10..12],
                    &t[12..14]
                ),
                (Some(reason), _) => format!(r#","reason":"{reason}""#),
            };
            format!(
                r#"{{"serial":"{serial}","status":"revoked","revoked_at":"{at}"{reason},"not_after":"{not_after}"}}"#
            )
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real binary (`ocsp-edge serve` as a child process)

/// A running `ocsp-edge serve`; killed (and reaped) when dropped.
pub struct ServeProcess {
    child: std::process::Child,
    pub ocsp: SocketAddr,
    pub admin: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
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
        let file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        std::fs::write(file.path(), toml).unwrap();
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ocsp-edge"));
        command
            .arg("serve")
            .arg("--config")
            .arg(file.path())
            .args(args)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]);
        for trust in demo_trust() {
            command.arg("--trust").arg(trust);
        }
        let mut child = command
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start ocsp-edge serve");
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (found, addresses) = std::sync::mpsc::channel();
        let writer = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                writer.lock().unwrap().push_str(&format!("{line}\n"));
                if line.contains("listening") {
                    if let (Some(ocsp), Some(admin)) =
                        (log_address(&line, "ocsp="), log_address(&line, "admin="))
                    {
                        let _ = found.send((ocsp, admin));
                    }
                }
            }
        });
        let (ocsp, admin) = match addresses.recv_timeout(IO_TIMEOUT) {
            Ok(found) => found,
            Err(e) => {
                let _ = child.kill();
                panic!("serve never logged its addresses ({e})\n{}", log.lock().unwrap());
            }
        };
        (
            ServeProcess {
                child,
                ocsp,
                admin,
                log,
            },
            file,
        )
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL: the hub vanishes without closing anything politely.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `key=ADDRESS` from a log line.
pub fn log_address(line: &str, key: &str) -> Option<SocketAddr> {
    let start = line.find(key)? + key.len();
    line[start..]
        .split_whitespace()
        .next()?
        .trim_matches('"')
        .parse()
        .ok()
}

/// Removes ANSI colour sequences, in case the subscriber colours despite NO_COLOR.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// External programs

pub struct Output {
    pub success: bool,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// stdout then stderr, for assertions that do not care which stream.
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit ok: {}\n--- stdout\n{}\n--- stderr\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Output {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: strip_ansi(&String::from_utf8_lossy(&out.stderr)),
    }
}

/// The `ocsp-edge` binary under test, with `args`.
pub fn ocsp_edge(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_ocsp-edge"), args)
}

pub fn openssl(args: &[&str]) -> Output {
    run("openssl", args)
}

/// `openssl ocsp` as a client against `ocsp` (POST, no nonce, SHA-256 CertID when asked,
/// verified against the demo root): the status it prints for `cert` (`good`, `revoked`,
/// ...) and its whole output.
pub fn openssl_status(ocsp: SocketAddr, issuer: &Path, cert: &Path, sha256: bool) -> (String, Output) {
    let url = format!("http://{ocsp}/");
    let (issuer, cert, root) = (
        issuer.display().to_string(),
        cert.display().to_string(),
        root_ca().display().to_string(),
    );
    let mut args = vec!["ocsp", "-issuer", &issuer];
    if sha256 {
        args.push("-sha256");
    }
    args.extend(["-cert", &cert, "-url", &url, "-CAfile", &root, "-no_nonce"]);
    let out = openssl(&args);
    let prefix = format!("{cert}: ");
    let status = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or("<none>")
        .trim()
        .to_string();
    (status, out)
}

/// Whether a test must stop because something it needs is missing (`missing` names it, or
/// is `None` when everything is there). Locally it says `SKIPPED` on stderr and the test
/// returns; under CI (`CI` set, as `.ci/run` runs) it fails the test, because a check that
/// did not run is not a check that passed, and `.ci/run` installs every tool.
pub fn skip_without(test: &str, missing: Option<String>) -> bool {
    let Some(missing) = missing else {
        return false;
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {missing}, and CI must run every test (.ci/run installs the tools)"
    );
    eprintln!("SKIPPED {test}: {missing}");
    true
}

/// `Some("PROGRAM is not installed")` when `program` is not on PATH (for [`skip_without`]).
pub fn not_on_path(program: &str) -> Option<String> {
    (!have(program)).then(|| format!("{program} is not installed"))
}

/// Whether `program` is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// Builds a DER OCSP request with `openssl ocsp -reqout` (one CertID for `cert`).
pub fn openssl_request(issuer: &Path, cert: &Path, sha256: bool, nonce: bool) -> Vec<u8> {
    let out = tempfile::NamedTempFile::new().unwrap();
    let issuer = issuer.display().to_string();
    let cert = cert.display().to_string();
    let reqout = out.path().display().to_string();
    let mut args = vec!["ocsp", "-issuer", issuer.as_str()];
    if sha256 {
        args.push("-sha256");
    }
    args.extend(["-cert", cert.as_str(), "-reqout", reqout.as_str()]);
    if !nonce {
        args.push("-no_nonce");
    }
    let result = openssl(&args);
    assert!(result.success, "{result}");
    std::fs::read(out.path()).unwrap()
}

/// A valid request (SHA-1, no nonce) for the first good EC certificate.
pub fn good_request() -> Vec<u8> {
    static REQUEST: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    REQUEST
        .get_or_init(|| {
            let row = first_with_status("ec", 'V');
            openssl_request(&issuer_ca("ec"), &row.cert("ec"), false, false)
        })
        .clone()
}

pub fn first_with_status(issuer: &str, status: char) -> IndexRow {
    index_rows(issuer)
        .into_iter()
        .find(|r| r.status == status)
        .expect("fixture row")
}

// ---------------------------------------------------------------------------------------
// OCSP bytes

/// The malformedRequest error response, as the server sends it.
pub const MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];
pub const UNAUTHORIZED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x06];
pub const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];

/// The OCSPResponseStatus of a DER OCSPResponse (0 = successful), parsing only the outer
/// SEQUENCE header and the ENUMERATED that follows it.
pub fn ocsp_response_status(body: &[u8]) -> Option<u8> {
    if body.first() != Some(&0x30) {
        return None;
    }
    let first = *body.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = body.get(2..2 + n)?;
        (bytes.iter().fold(0usize, |acc, b| acc << 8 | *b as usize), 2 + n)
    };
    if body.len() != header + len {
        return None;
    }
    match body.get(header..header + 3)? {
        [0x0a, 0x01, status] => Some(*status),
        _ => None,
    }
}

pub fn is_successful(body: &[u8]) -> bool {
    ocsp_response_status(body) == Some(0)
}

/// Hex SHA-256 (lower case).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Base64 of `der`, percent-encoded for a URL path (`/`, `+`, `=` escaped).
pub fn get_path(prefix: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let encoded = percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC);
    format!("{prefix}{encoded}")
}

// ---------------------------------------------------------------------------------------
// Raw HTTP/1.1

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_count(&self, name: &str) -> usize {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(|(n, _)| *n == name).count()
    }
}

/// One client connection that can carry several requests (keep-alive).
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    pub fn try_connect(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Sends one request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> std::io::Result<HttpResponse> {
        self.send(&request_bytes(method, path, headers, body))?;
        self.read_response(method == "HEAD")
    }

    pub fn post(&mut self, body: &[u8]) -> std::io::Result<HttpResponse> {
        self.request(
            "POST",
            "/",
            &[("Content-Type", "application/ocsp-request")],
            Some(body),
        )
    }

    /// A POST as a cache tier sends it: asking the hub which sequence answered.
    pub fn post_as_cache(&mut self, body: &[u8]) -> std::io::Result<HttpResponse> {
        self.request(
            "POST",
            "/",
            &[
                ("Content-Type", "application/ocsp-request"),
                ("OCSP-Edge-Sequence", "?"),
            ],
            Some(body),
        )
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn eof() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed")
    }

    /// Reads one response; `head` = it answers a HEAD request (no body follows).
    pub fn read_response(&mut self, head: bool) -> std::io::Result<HttpResponse> {
        let end = loop {
            if let Some(pos) = find(&self.buf, b"\r\n\r\n") {
                break pos;
            }
            if self.fill()? == 0 {
                return Err(Self::eof());
            }
        };
        let head_text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut response = HttpResponse {
            status,
            headers,
            body: Vec::new(),
        };
        if head || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok(response);
        }
        if let Some(len) = response.header("content-length") {
            let len: usize = len.parse().map_err(std::io::Error::other)?;
            while self.buf.len() < len {
                if self.fill()? == 0 {
                    return Err(Self::eof());
                }
            }
            response.body = self.buf.drain(..len).collect();
        } else if response
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
        {
            response.body = self.read_chunked()?;
        } else {
            while self.fill()? > 0 {}
            response.body = std::mem::take(&mut self.buf);
        }
        Ok(response)
    }

    fn read_chunked(&mut self) -> std::io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(pos) = find(&self.buf, b"\r\n") {
                    break pos;
                }
                if self.fill()? == 0 {
                    return Err(Self::eof());
                }
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(std::io::Error::other)?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                if self.fill()? == 0 {
                    return Err(Self::eof());
                }
            }
            body.extend(self.buf.drain(..size));
            self.buf.drain(..2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    /// Waits up to `limit` for the server to close the connection: true if it did (read
    /// returned 0 or a reset), false if the connection was still open at the deadline.
    pub fn closed_by_server_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut chunk = [0u8; 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => continue, // e.g. a 408 before closing; keep reading
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => return true,
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The bytes of one HTTP/1.1 request (Content-Length added when there is a body).
pub fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = body {
        bytes.extend_from_slice(body);
    }
    bytes
}

/// One request on a fresh connection.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    Conn::connect(addr)
        .request(method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

pub fn post(addr: SocketAddr, body: &[u8]) -> HttpResponse {
    http(
        addr,
        "POST",
        "/",
        &[("Content-Type", "application/ocsp-request")],
        Some(body),
    )
}

pub fn get(addr: SocketAddr, path: &str) -> HttpResponse {
    http(addr, "GET", path, &[], None)
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

// ---------------------------------------------------------------------------------------
// Admin endpoint and waiting

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

/// Polls `check` until it returns true or `limit` passes; returns its last answer.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the admin endpoint reports `sequence` as the served snapshot.
pub fn wait_for_sequence(admin: SocketAddr, sequence: u64, limit: Duration) -> bool {
    wait_until(limit, || {
        metric(&metrics(admin), "ocsp_edge_snapshot_sequence") == Some(sequence as f64)
    })
}

/// Copies a directory tree (files and subdirectories).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Replication sources

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
    use ocsp_edge::snapshot::store;
    for name in [store::snapshot_name(sequence), store::manifest_name(sequence)] {
        std::fs::copy(from.join(&name), to.join(&name)).unwrap();
    }
}

/// Every file in `dir` with its bytes, sorted by name: what a test compares to prove that
/// nothing was created, deleted or changed.
pub fn dir_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

/// A hostile HTTP mirror on 127.0.0.1: serves the files of a directory (query strings
/// ignored, one request per connection), except that it can serve chosen bytes under a
/// name (a forged manifest) and drip a file one byte at a time.
pub struct Mirror {
    pub addr: SocketAddr,
    shared: std::sync::Arc<MirrorShared>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct MirrorShared {
    dir: PathBuf,
    /// Files sent one byte per interval, by name.
    drip: std::sync::Mutex<std::collections::HashMap<String, Duration>>,
    /// Served instead of the directory's file of that name.
    overrides: std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>,
    /// Paths requested, in order.
    log: std::sync::Mutex<Vec<String>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Mirror {
    pub fn start(dir: &Path) -> Mirror {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = std::sync::Arc::new(MirrorShared {
            dir: dir.to_path_buf(),
            drip: std::sync::Mutex::new(Default::default()),
            overrides: std::sync::Mutex::new(Default::default()),
            log: std::sync::Mutex::new(Vec::new()),
            stop: stop.clone(),
        });
        let serving = shared.clone();
        let thread = std::thread::spawn(move || {
            while !serving.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let serving = serving.clone();
                        std::thread::spawn(move || {
                            let _ = serving.serve(stream);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Mirror {
            addr,
            shared,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// From now on, the file `name` is sent one byte per `every`.
    pub fn drip(&self, name: &str, every: Duration) {
        self.shared.drip.lock().unwrap().insert(name.to_string(), every);
    }

    /// Serves `bytes` under `name` instead of the directory's file.
    pub fn serve_bytes(&self, name: &str, bytes: Vec<u8>) {
        self.shared
            .overrides
            .lock()
            .unwrap()
            .insert(name.to_string(), bytes);
    }

    /// Requests for paths ending in `suffix`.
    pub fn requests(&self, suffix: &str) -> usize {
        self.shared
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.ends_with(suffix))
            .count()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl MirrorShared {
    fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut head = Vec::new();
        let mut buffer = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer)?;
            if n == 0 || head.len() > 64 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&buffer[..n]);
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let target = text.split(' ').nth(1).unwrap_or("/");
        let path = target.split('?').next().unwrap_or("").to_string();
        let name = path.trim_start_matches('/').to_string();
        self.log.lock().unwrap().push(path);
        let overridden = self.overrides.lock().unwrap().get(&name).cloned();
        let body = overridden.or_else(|| {
            (!name.is_empty() && !name.contains('/') && !name.starts_with('.'))
                .then(|| std::fs::read(self.dir.join(&name)).ok())
                .flatten()
        });
        let Some(body) = body else {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
            return Ok(());
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        let drip = self.drip.lock().unwrap().get(&name).copied();
        match drip {
            Some(every) => {
                for byte in body {
                    if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
                        return Ok(());
                    }
                    stream.write_all(&[byte])?;
                    std::thread::sleep(every);
                }
            }
            _ => stream.write_all(&body)?,
        }
        stream.flush()
    }
}

// ---------------------------------------------------------------------------------------
// A man in the middle

/// Reads one HTTP/1.1 request from `stream`: (request head, body by Content-Length).
/// `None` when the client closed the connection first.
pub fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        received.extend_from_slice(&chunk[..n]);
        if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while received.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        received.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    Ok(Some((head, received[head_end..head_end + length].to_vec())))
}

/// What an [`Interceptor`] does with one answer: gets the request path and the upstream's
/// answer, returns what the client receives.
pub type Rewrite = dyn Fn(&str, HttpResponse) -> HttpResponse + Send + Sync;

/// An HTTP man in the middle on 127.0.0.1: forwards each request (one per connection) to
/// `upstream` and hands the answer to a rewrite function before passing it on. Stops
/// accepting when dropped.
pub struct Interceptor {
    pub addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Interceptor {
    pub fn start(upstream: SocketAddr, rewrite: std::sync::Arc<Rewrite>) -> Interceptor {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let rewrite = rewrite.clone();
                        std::thread::spawn(move || {
                            let _ = intercept_one(stream, upstream, &*rewrite);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Interceptor {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Interceptor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn intercept_one(mut stream: TcpStream, upstream: SocketAddr, rewrite: &Rewrite) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let Some((head, body)) = read_request(&mut stream)? else {
        return Ok(());
    };
    let mut lines = head.lines();
    let mut words = lines.next().unwrap_or_default().split_whitespace();
    let (method, path) = (words.next().unwrap_or("GET"), words.next().unwrap_or("/"));
    // Every request header but those that describe this hop.
    let hop = ["host", "content-length", "connection", "transfer-encoding"];
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .filter(|(name, _)| !hop.contains(&name.to_ascii_lowercase().as_str()))
        .collect();
    let body = (method == "POST").then_some(body.as_slice());
    let answer = Conn::try_connect(upstream)?.request(method, path, &headers, body)?;
    let answer = rewrite(path, answer);
    let mut out = format!("HTTP/1.1 {} Intercepted\r\n", answer.status);
    for (name, value) in &answer.headers {
        if !["content-length", "connection", "transfer-encoding"].contains(&name.as_str()) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        answer.body.len()
    ));
    stream.write_all(out.as_bytes())?;
    stream.write_all(&answer.body)?;
    stream.flush()
}

// ---------------------------------------------------------------------------------------
// Cache-mode responders

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

// ---------------------------------------------------------------------------------------
// Forging snapshots, as an attacker holding some signing keys would (hostile tests)

/// The demo publish plan (every issuer, its signer and key) as of `now`.
pub fn demo_plan(now: UnixTime) -> ocsp_edge::publish::PublishPlan {
    let toml = demo().join("publish.toml");
    PublishConfig::from_file(&toml)
        .and_then(|config| config.load(now))
        .unwrap_or_else(|e| panic!("{}: {e}", toml.display()))
}

/// A snapshot file with its metadata edited by `edit`, which may append bytes (documents)
/// after the records, tables and documents the file already holds.
pub fn forge_snapshot(
    snapshot: &[u8],
    edit: impl FnOnce(&mut ocsp_edge::snapshot::format::Metadata, &mut Vec<u8>),
) -> Vec<u8> {
    use ocsp_edge::snapshot::format::{read_metadata, FOOTER_LEN, FOOTER_MAGIC, FORMAT_VERSION};
    let mut metadata = read_metadata(snapshot).expect("a snapshot to forge from");
    let footer = &snapshot[snapshot.len() - FOOTER_LEN..];
    let metadata_offset = u64::from_le_bytes(footer[16..24].try_into().unwrap()) as usize;
    let mut out = snapshot[..metadata_offset].to_vec();
    edit(&mut metadata, &mut out);
    let json = serde_json::to_vec(&metadata).unwrap();
    let mut footer = [0u8; FOOTER_LEN];
    footer[..8].copy_from_slice(FOOTER_MAGIC);
    footer[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    footer[16..24].copy_from_slice(&(out.len() as u64).to_le_bytes());
    footer[24..32].copy_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(footer);
    out
}

/// Appends `bytes` to a snapshot being forged and serves them at `like.path` (replacing
/// any document there), described as `like` says.
pub fn plant_document(
    metadata: &mut ocsp_edge::snapshot::format::Metadata,
    out: &mut Vec<u8>,
    like: ocsp_edge::snapshot::format::Document,
    bytes: &[u8],
) {
    metadata.documents.retain(|d| d.path != like.path);
    metadata.documents.push(ocsp_edge::snapshot::format::Document {
        offset: out.len() as u64,
        length: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        ..like
    });
    out.extend_from_slice(bytes);
}

/// A manifest for `snapshot`: `template`'s body with the size and integrity hash of
/// `snapshot`, edited by `edit`, signed by `signers` only (names as in the plan).
pub fn forge_manifest(
    template: &[u8],
    snapshot: &[u8],
    plan: &ocsp_edge::publish::PublishPlan,
    signers: &[&str],
    edit: impl FnOnce(&mut ocsp_edge::snapshot::manifest::ManifestBody),
) -> Vec<u8> {
    use ocsp_edge::snapshot::manifest::{ContentHash, Manifest};
    let mut body = Manifest::parse(template).expect("a manifest to forge from").body;
    body.size = snapshot.len() as u64;
    let mut hash = ContentHash::new(body.chunk_size);
    hash.update(snapshot);
    body.sha256_tree = hex::encode(hash.finish().0);
    edit(&mut body);
    let keys: Vec<_> = plan
        .issuers
        .iter()
        .filter(|i| signers.contains(&i.name.as_str()))
        .map(|i| (i.name.as_str(), &i.signer, &i.key))
        .collect();
    assert_eq!(keys.len(), signers.len(), "unknown signer in {signers:?}");
    Manifest::sign(body, &keys).expect("sign").to_json()
}

/// Drops a manifest (named for `sequence`) and its snapshot into a served directory,
/// snapshot first, as a writer to that directory would.
pub fn drop_into(dir: &Path, sequence: u64, manifest: &[u8], snapshot: &[u8]) {
    use ocsp_edge::snapshot::{manifest::Manifest, store};
    let name = Manifest::parse(manifest)
        .map(|m| m.body.snapshot)
        .unwrap_or_else(|_| store::snapshot_name(sequence));
    // Each file appears whole (rename), so a refusal is for its content, not a torn read.
    for (name, bytes) in [(name, snapshot), (store::manifest_name(sequence), manifest)] {
        let temporary = dir.join(format!(".forging-{name}"));
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(&temporary, dir.join(name)).unwrap();
    }
}

/// Every file name in `dir` (temporary ones included), sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
