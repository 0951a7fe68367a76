//! CRLs end to end: what the publisher signs (checked with `openssl crl`, `openssl verify
//! -crl_check` and pkilint), how the responder serves it over HTTP (conditional requests,
//! ranges, HEAD, caching headers, staleness, metrics), cRLNumber monotonicity across
//! publishes, restarts and clock steps, imported CA CRLs, and refusing certificateHold.
//!
//! Self-contained on purpose (other test files and their helpers change concurrently): the
//! demo PKI in `fixtures/demo`, the library, the `openssl` CLI, pkilint when installed, and
//! a tiny raw HTTP/1.1 client over `std::net::TcpStream`.

mod common;

use common::*;
use ocsp_edge::config::{Config, Sources};
use ocsp_edge::publish::PublishReport;
use ocsp_edge::server::Background;
use ocsp_edge::time::UnixTime;
use rasn_pkix::CrlReason;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ISSUERS: [&str; 2] = ["ec", "rsa"];
const SHARDS: u32 = 4;
/// The host part of every URL in the demo configuration and certificates.
const URL_BASE: &str = "http://127.0.0.1:8080";
const DAY: i64 = 86_400;

// =======================================================================================
// The demo PKI

fn demo_config() -> PathBuf {
    demo().join("publish.toml")
}

/// What a CRL entry for a revoked row must say (under the default Baseline Requirements
/// reason policy).
#[derive(Debug, PartialEq, Eq)]
struct ExpectedEntry {
    revoked_at: i64,
    /// `None`: no reasonCode entry extension.
    reason: Option<CrlReason>,
    invalidity: Option<i64>,
}

/// What the CRL entry for the revoked `row` must say.
fn expected_entry(row: &IndexRow) -> ExpectedEntry {
    let parts: Vec<&str> = row.revocation.split(',').collect();
    let revoked_at = parse_asn1_time(parts[0]).unwrap_or_else(|| panic!("{:?}", row.line));
    let mut reason = parts.get(1).copied();
    let mut invalidity = None;
    for (i, part) in parts.iter().enumerate() {
        if *part == "keyTime" || *part == "CAkeyTime" {
            reason = Some(if *part == "keyTime" {
                "keyCompromise"
            } else {
                "CACompromise"
            });
            invalidity = Some(parse_asn1_time(parts[i + 1]).unwrap());
        }
    }
    let reason = reason.and_then(|name| match name {
        // The Baseline Requirements policy omits `unspecified`.
        "unspecified" => None,
        "keyCompromise" => Some(CrlReason::KeyCompromise),
        "CACompromise" => Some(CrlReason::CaCompromise),
        "affiliationChanged" => Some(CrlReason::AffiliationChanged),
        "superseded" => Some(CrlReason::Superseded),
        "cessationOfOperation" => Some(CrlReason::CessationOfOperation),
        "privilegeWithdrawn" => Some(CrlReason::PrivilegeWithdrawn),
        other => panic!("index reason {other:?} not known to this test"),
    });
    ExpectedEntry {
        revoked_at,
        reason,
        invalidity,
    }
}

/// The serial (hex) as an unsigned integer modulo `n`, computed independently of the crate.
fn serial_mod(hex: &str, n: u32) -> u32 {
    hex.chars().fold(0u64, |acc, c| {
        (acc * 16 + u64::from(c.to_digit(16).unwrap())) % u64::from(n)
    }) as u32
}

fn full_path(issuer: &str) -> String {
    format!("/crl/{issuer}.crl")
}

fn delta_path(issuer: &str) -> String {
    format!("/crl/{issuer}-delta.crl")
}

fn shard_path(issuer: &str, shard: u32) -> String {
    format!("/crl/{issuer}/{shard}.crl")
}

fn json_path(issuer: &str) -> String {
    format!("/crl/{issuer}.json")
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn toml_string(path: &Path) -> String {
    format!(
        "\"{}\"",
        path.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

// =======================================================================================
// Publishing and serving

fn unix_now() -> i64 {
    now_seconds()
}

fn publish_at(config: &Path, dir: &Path, now: i64) -> Result<PublishReport, String> {
    try_publish_at(config, dir, UnixTime(now))
}

fn start_server(dir: &Path, expected_sequence: u64) -> Background {
    start_server_trusting(dir, expected_sequence, &ISSUERS)
}

/// A responder that trusts exactly `issuers`: a snapshot must cover every trusted issuer.
fn start_server_trusting(dir: &Path, expected_sequence: u64, issuers: &[&str]) -> Background {
    let trust: Vec<PathBuf> = issuers.iter().map(|i| issuer_ca(i)).collect();
    let server = Background::start(config_for(dir, &trust, vec![])).expect("server start");
    let loaded = wait_until(Duration::from_secs(10), || {
        server.state.current_sequence() == Some(expected_sequence)
    });
    assert!(
        loaded,
        "server did not load snapshot {expected_sequence} (has {:?})",
        server.state.current_sequence()
    );
    server
}

/// The demo published twice into one directory (so delta CRLs exist), and served.
struct Served {
    // Dropped first: the server stops before its directory goes.
    server: Background,
    first: u64,
    second: u64,
    _dir: tempfile::TempDir,
}

fn serve_demo_published_twice() -> Served {
    let dir = tempfile::tempdir().unwrap();
    // Both times in the past-or-present, so thisUpdate is never ahead of openssl's clock.
    let now = unix_now();
    let first = publish_at(&demo_config(), dir.path(), now - 1).expect("first publish");
    let second = publish_at(&demo_config(), dir.path(), now).expect("second publish");
    assert!(second.sequence > first.sequence);
    let server = start_server(dir.path(), second.sequence);
    Served {
        server,
        first: first.sequence,
        second: second.sequence,
        _dir: dir,
    }
}

/// Every CRL path of the demo configuration for `issuer`: full, delta, shards.
fn crl_paths(issuer: &str) -> Vec<String> {
    let mut paths = vec![full_path(issuer), delta_path(issuer)];
    paths.extend((0..SHARDS).map(|s| shard_path(issuer, s)));
    paths
}

/// GETs `path` (expecting a 200 CRL) and saves it as `<dir>/<name>.der`.
fn fetch_crl(addr: SocketAddr, path: &str, dir: &Path) -> (PathBuf, Vec<u8>) {
    let response = http_close(addr, "GET", path, &[], None);
    assert_eq!(response.status, 200, "GET {path}: {response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("application/pkix-crl"),
        "GET {path}"
    );
    let file = dir.join(format!("{}.der", path.trim_start_matches('/').replace('/', "_")));
    std::fs::write(&file, &response.body).unwrap();
    (file, response.body)
}

/// `openssl` that must succeed; its stdout.
fn openssl_ok(args: &[&str]) -> String {
    openssl(args).assert_success().stdout.clone()
}

// =======================================================================================
// Times

fn parse_http_date(text: &str) -> Option<i64> {
    let time = httpdate::parse_http_date(text).ok()?;
    Some(time.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs() as i64)
}

fn http_date(t: i64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(t as u64))
}

/// `YYMMDDHHMMSSZ` (UTCTime) or `YYYYMMDDHHMMSSZ` (GeneralizedTime), as index.txt has them.
fn parse_asn1_time(text: &str) -> Option<i64> {
    let digits = text.strip_suffix('Z')?;
    let format = match digits.len() {
        12 => "%y%m%d%H%M%S",
        14 => "%Y%m%d%H%M%S",
        _ => return None,
    };
    let time = chrono::NaiveDateTime::parse_from_str(digits, format).ok()?;
    Some(time.and_utc().timestamp())
}

// =======================================================================================
// Snapshot documents, read from the file as a client of the format would

/// The documents (path → DER bytes and the metadata's crl_number) of a snapshot file: the
/// metadata JSON sits at the end, located by a 32-byte footer whose last 16 bytes are its
/// offset and length (u64 little-endian).
fn snapshot_documents(snapshot: &Path) -> BTreeMap<String, (Vec<u8>, Option<u64>)> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        documents: Vec<Document>,
    }
    #[derive(serde::Deserialize)]
    struct Document {
        path: String,
        offset: usize,
        length: usize,
        crl_number: Option<u64>,
    }
    let bytes = std::fs::read(snapshot).unwrap();
    let len = bytes.len();
    assert!(len > 32, "{}: too short", snapshot.display());
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap()) as usize;
    let (offset, length) = (u64_at(len - 16), u64_at(len - 8));
    let metadata: Metadata = serde_json::from_slice(&bytes[offset..offset + length])
        .unwrap_or_else(|e| panic!("{}: metadata JSON: {e}", snapshot.display()));
    metadata
        .documents
        .into_iter()
        .map(|d| {
            let der = bytes[d.offset..d.offset + d.length].to_vec();
            (d.path, (der, d.crl_number))
        })
        .collect()
}

/// The snapshot files in `dir`, oldest first (none if `dir` does not exist).
fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    files.sort();
    files
}

/// The cRLNumber of the document at `path` in `snapshot`, which the metadata must repeat.
fn snapshot_crl_number(snapshot: &Path, path: &str) -> u64 {
    let documents = snapshot_documents(snapshot);
    let (der, recorded) = documents
        .get(path)
        .unwrap_or_else(|| panic!("{path} not in {snapshot:?}"));
    let number = CrlView::parse(der).number();
    assert_eq!(
        *recorded,
        Some(number),
        "metadata crl_number of {path} in {}",
        snapshot.display()
    );
    number
}

/// The CRL's revokedCertificates field is omitted, not encoded empty.
fn assert_no_revoked_certificates_field(der: &[u8], what: &str) {
    let tags = CrlView::parse(der).tbs_field_tags;
    // version, signature, issuer, thisUpdate, nextUpdate, [0] crlExtensions.
    assert_eq!(tags.len(), 6, "{what}: TBSCertList fields {tags:02x?}");
    assert_eq!(
        tags[5], 0xa0,
        "{what}: no revokedCertificates before the extensions: {tags:02x?}"
    );
}

// =======================================================================================
// 1. openssl verifies and reads every CRL fetched over HTTP

#[test]
fn openssl_verifies_every_crl_served_and_its_contents_match_the_index() {
    let served = serve_demo_published_twice();
    let scratch = tempfile::tempdir().unwrap();
    for issuer in ISSUERS {
        let ca = issuer_ca(issuer);
        let ski = subject_key_identifier(&ca);
        let rows = index_rows(issuer);
        let revoked: BTreeMap<String, &IndexRow> = rows
            .iter()
            .filter(|r| r.status == 'R')
            .map(|r| (normalise_serial(&r.serial), r))
            .collect();
        let not_revoked: BTreeSet<String> = rows
            .iter()
            .filter(|r| r.status != 'R')
            .map(|r| normalise_serial(&r.serial))
            .collect();
        assert!(revoked.len() >= 10, "{issuer}: the demo has revoked certificates");
        let mut listed_anywhere = BTreeSet::new();
        let mut shard_members: BTreeMap<String, Vec<u32>> = BTreeMap::new();

        for path in crl_paths(issuer) {
            let what = format!("{issuer} {path}");
            let (file, der) = fetch_crl(served.server.ocsp_addr, &path, scratch.path());
            let verified = openssl(&[
                "crl",
                "-inform",
                "DER",
                "-in",
                path_str(&file),
                "-CAfile",
                path_str(&ca),
                "-noout",
            ]);
            assert!(
                verified.success && verified.text().contains("verify OK"),
                "{what}: openssl crl does not verify it: {}",
                verified.text()
            );
            let crl = CrlView::parse(&der);
            assert_eq!(crl.version, 1, "{what}: a v2 CRL");
            let (aki_critical, aki) = crl.authority_key_id().expect("AKI present");
            assert!(!aki_critical, "{what}: AKI must not be critical");
            assert_eq!(
                aki.as_ref(),
                Some(&ski),
                "{what}: AKI keyIdentifier is the issuer's SKI"
            );
            assert!(!crl.extension(ext::CRL_NUMBER).unwrap().critical, "{what}");
            assert_eq!(
                crl.number(),
                served.second,
                "{what}: cRLNumber is the second publish's sequence"
            );
            let (last, next) = (crl.this_update, crl.next_update.unwrap());
            assert_eq!(next - last, 7 * DAY, "{what}: validity");
            assert!(
                last <= unix_now() && last >= unix_now() - 120,
                "{what}: thisUpdate {last}"
            );

            let idp = crl.issuing_distribution_point();
            let delta = crl.delta_base();
            let freshest = crl.freshest_crl();
            for (serial, entry) in &crl.entries {
                listed_anywhere.insert(serial.clone());
                for extension in &entry.extensions {
                    let name = &extension.extn_id;
                    assert!(!extension.critical, "{what}: entry {serial}: {name} is critical");
                }
            }
            if path == full_path(issuer) {
                assert!(
                    idp.is_none() && delta.is_none(),
                    "{what}: full CRL scope: {crl:?}"
                );
                assert_eq!(
                    freshest,
                    Some((false, vec![format!("{URL_BASE}{}", delta_path(issuer))])),
                    "{what}: Freshest CRL points at the delta"
                );
                let listed: BTreeSet<&String> = crl.entries.keys().collect();
                let expected: BTreeSet<&String> = revoked.keys().collect();
                assert_eq!(listed, expected, "{what}: exactly the R rows of index.txt");
                for (serial, row) in &revoked {
                    let entry = &crl.entries[serial];
                    let expected = expected_entry(row);
                    assert_eq!(
                        entry.revoked_at, expected.revoked_at,
                        "{what}: {serial} revocation date"
                    );
                    assert_eq!(
                        entry.reason(),
                        expected.reason,
                        "{what}: {serial} ({:?})",
                        row.revocation
                    );
                    let invalidity = entry.invalidity_date();
                    assert_eq!(
                        invalidity, expected.invalidity,
                        "{what}: {serial} invalidity date"
                    );
                }
                assert!(
                    revoked.values().any(|r| r.revocation.contains("keyTime")),
                    "{issuer}: the demo has a keyTime entry"
                );
                assert!(
                    revoked.values().any(|r| r.revocation.ends_with(",unspecified")),
                    "{issuer}: the demo has an unspecified entry"
                );
            } else if path == delta_path(issuer) {
                let (critical, base) = delta.expect("Delta CRL Indicator");
                assert!(critical, "{what}: Delta CRL Indicator must be critical");
                assert_eq!(base, served.first, "{what}: base is the first publish");
                assert!(idp.is_none(), "{what}");
                // Nothing changed between the two publishes.
                assert!(crl.entries.is_empty(), "{what}: {crl:?}");
                assert_no_revoked_certificates_field(&der, &what);
            } else {
                let shard: u32 = path
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".crl")
                    .parse()
                    .unwrap();
                let (critical, idp) = idp.unwrap_or_else(|| panic!("{what}: no Issuing Distribution Point"));
                assert!(critical, "{what}: Issuing Distribution Point must be critical");
                let uris = full_name_uris(idp.distribution_point.as_ref());
                assert_eq!(uris, vec![format!("{URL_BASE}{path}")], "{what}: IDP URI");
                assert!(
                    !idp.only_contains_user_certs
                        && !idp.only_contains_ca_certs
                        && idp.only_some_reasons.is_none()
                        && !idp.indirect_crl
                        && !idp.only_contains_attribute_certs,
                    "{what}: only fullName (no onlySome*/indirectCRL flags): {idp:?}"
                );
                assert!(delta.is_none(), "{what}");
                for serial in crl.entries.keys() {
                    shard_members.entry(serial.clone()).or_default().push(shard);
                    assert!(
                        revoked.contains_key(serial),
                        "{what}: {serial} is not revoked in index.txt"
                    );
                }
                if crl.entries.is_empty() {
                    assert_no_revoked_certificates_field(&der, &what);
                } else {
                    assert!(
                        crl.has_revoked_certificates_field(),
                        "{what}: revokedCertificates present"
                    );
                }
            }
        }
        for (serial, row) in &revoked {
            let expected_shard = serial_mod(&row.serial, SHARDS);
            assert_eq!(
                shard_members.get(serial),
                Some(&vec![expected_shard]),
                "{issuer}: {serial} must be in exactly shard {expected_shard}"
            );
        }
        let wrongly_listed: Vec<&String> = not_revoked.intersection(&listed_anywhere).collect();
        assert!(
            wrongly_listed.is_empty(),
            "{issuer}: V/E serials listed: {wrongly_listed:?}"
        );
    }
}

/// An empty partition omits revokedCertificates; a delta lists exactly what was revoked
/// since its base, with the same entry details as the full CRL.
#[test]
fn empty_partitions_omit_the_list_and_deltas_list_new_revocations() {
    let work = tempfile::tempdir().unwrap();
    let rows = index_rows("ec");
    let original = read_text(&demo().join("ec/index.txt"));
    // First publish: every revocation of shard 3 not yet made.
    let shard = 3;
    let later: Vec<&IndexRow> = rows
        .iter()
        .filter(|r| r.status == 'R' && serial_mod(&r.serial, SHARDS) == shard)
        .collect();
    assert!(
        !later.is_empty(),
        "the demo has revoked certificates in shard {shard}"
    );
    let earlier_index: String = original
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            if later.iter().any(|r| r.line == line) {
                format!("V\t{}\t\t{}", fields[1], fields[3..].join("\t"))
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    let index = work.path().join("index.txt");
    std::fs::write(&index, &earlier_index).unwrap();
    let config = work.path().join("publish.toml");
    let d = demo();
    std::fs::write(
        &config,
        format!(
            "validity = \"96h\"\n[[issuer]]\nname = \"ec\"\ncertificate = {}\nindex = {}\n\
             signer_certificate = {}\nsigner_key = {}\n[issuer.crl]\nsigning_key = {}\n\
             full_url = \"{URL_BASE}/crl/ec.crl\"\ndelta_url = \"{URL_BASE}/crl/ec-delta.crl\"\n\
             shards = 4\nshard_url = \"{URL_BASE}/crl/ec/{{shard}}.crl\"\nvalidity = \"7d\"\n",
            toml_string(&d.join("ec/ca.pem")),
            toml_string(&index),
            toml_string(&d.join("ec/ocsp.pem")),
            toml_string(&d.join("ec/ocsp.key")),
            toml_string(&d.join("ec/ca.key")),
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    let now = unix_now();
    let first = publish_at(&config, &out, now - 1).expect("first publish");
    let documents = snapshot_documents(&first.snapshot);
    // Without a previous full CRL the delta's base is the full CRL issued with it (same
    // number), and it lists nothing, so the full CRL's freshestCRL URL always resolves.
    let (first_delta, first_delta_number) = documents
        .get("/crl/ec-delta.crl")
        .expect("a first publish has an (empty) delta");
    assert_eq!(*first_delta_number, Some(first.sequence));
    assert!(
        CrlView::parse(first_delta).entries.is_empty(),
        "the first delta lists nothing"
    );
    assert_no_revoked_certificates_field(first_delta, "the first delta");
    let empty = work.path().join("empty-shard.der");
    std::fs::write(&empty, &documents[&shard_path("ec", shard)].0).unwrap();
    let text = openssl_ok(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&empty),
        "-noout",
        "-text",
    ]);
    assert!(text.contains("No Revoked Certificates."), "{text}");
    assert_no_revoked_certificates_field(&documents[&shard_path("ec", shard)].0, "empty shard");
    let verified = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        path_str(&empty),
        "-CAfile",
        path_str(&issuer_ca("ec")),
        "-noout",
    ]);
    assert!(verified.text().contains("verify OK"), "{}", verified.text());

    std::fs::write(&index, &original).unwrap();
    let second = publish_at(&config, &out, now).expect("second publish");
    let documents = snapshot_documents(&second.snapshot);
    let delta = CrlView::parse(&documents["/crl/ec-delta.crl"].0);
    let (critical, base) = delta.delta_base().expect("delta indicator");
    assert!(critical);
    assert_eq!(base, first.sequence);
    assert_eq!(delta.number(), second.sequence);
    let listed: BTreeSet<&String> = delta.entries.keys().collect();
    let expected: Vec<String> = later.iter().map(|r| normalise_serial(&r.serial)).collect();
    assert_eq!(
        listed,
        expected.iter().collect(),
        "delta lists exactly the new revocations"
    );
    for row in &later {
        let entry = &delta.entries[&normalise_serial(&row.serial)];
        let want = expected_entry(row);
        assert_eq!(entry.revoked_at, want.revoked_at);
        assert_eq!(entry.reason(), want.reason, "{}", row.line);
    }
}

// =======================================================================================
// 2. openssl verify -crl_check with each certificate's own CRL distribution point

#[test]
fn openssl_verify_crl_check_with_each_certificates_distribution_point() {
    let served = serve_demo_published_twice();
    let scratch = tempfile::tempdir().unwrap();
    let root = demo().join("root/ca.pem");
    let mut commands = Vec::new();
    let mut expectations = Vec::new();
    for issuer in ISSUERS {
        let chain = scratch.path().join(format!("{issuer}-chain.pem"));
        std::fs::write(&chain, read_text(&root) + &read_text(&issuer_ca(issuer))).unwrap();
        let mut pem_crls: BTreeMap<String, PathBuf> = BTreeMap::new();
        let mut crl_pem = |path: &str| -> PathBuf {
            pem_crls
                .entry(path.to_string())
                .or_insert_with(|| {
                    let (der, _) = fetch_crl(served.server.ocsp_addr, path, scratch.path());
                    let pem = der.with_extension("pem");
                    openssl_ok(&[
                        "crl",
                        "-inform",
                        "DER",
                        "-in",
                        path_str(&der),
                        "-outform",
                        "PEM",
                        "-out",
                        path_str(&pem),
                    ]);
                    pem
                })
                .clone()
        };
        let rows = index_rows(issuer);
        let revoked: Vec<&IndexRow> = rows.iter().filter(|r| r.status == 'R').collect();
        let good: Vec<&IndexRow> = rows.iter().filter(|r| r.status == 'V').take(12).collect();
        assert!(revoked.len() >= 10 && good.len() >= 10);
        for row in revoked.iter().chain(&good) {
            let cert = cert_path(issuer, &row.serial);
            let uris = crl_distribution_point_uris(&cert);
            assert_eq!(uris.len(), 1, "{}: {uris:?}", cert.display());
            let path = uris[0]
                .strip_prefix(URL_BASE)
                .unwrap_or_else(|| panic!("CDP {}", uris[0]));
            assert_eq!(
                path,
                shard_path(issuer, serial_mod(&row.serial, SHARDS)),
                "CDP is serial mod 4"
            );
            let is_revoked = row.status == 'R';
            for crl in [crl_pem(path), crl_pem(&full_path(issuer))] {
                let mut command = Command::new("openssl");
                command
                    .args(["verify", "-crl_check", "-CAfile"])
                    .arg(&chain)
                    .arg("-CRLfile")
                    .arg(&crl)
                    .arg(&cert);
                commands.push(command);
                expectations.push((
                    format!("{issuer} {} with {}", row.serial, crl.display()),
                    is_revoked,
                ));
            }
        }
        // Negative control: a revoked certificate checked against a partition that does not
        // cover it (the IDP does not match its CDP) is not reported good.
        let row = revoked[0];
        let other = (serial_mod(&row.serial, SHARDS) + 1) % SHARDS;
        let mut command = Command::new("openssl");
        command
            .args(["verify", "-crl_check", "-CAfile"])
            .arg(&chain)
            .arg("-CRLfile")
            .arg(crl_pem(&shard_path(issuer, other)))
            .arg(cert_path(issuer, &row.serial));
        let out = run_command(&mut command);
        assert!(
            !out.success && !out.text().contains(": OK"),
            "{issuer} {}: a foreign partition must not vouch for it: {}",
            row.serial,
            out.text()
        );
    }
    let outputs = run_parallel(commands);
    for ((what, is_revoked), out) in expectations.iter().zip(&outputs) {
        let text = out.text();
        if *is_revoked {
            assert!(
                !out.success && text.contains("error 23") && text.contains("certificate revoked"),
                "{what}: expected 'certificate revoked' (error 23): {text}"
            );
        } else {
            assert!(
                out.success && text.trim_end().ends_with(": OK"),
                "{what}: expected OK: {text}"
            );
        }
    }
}

// =======================================================================================
// 3. pkilint

#[test]
fn pkilint_finds_no_errors_in_crls_and_ocsp_responses() {
    let missing = not_on_path("lint_crl").or_else(|| not_on_path("lint_ocsp_response"));
    if skip_without("pkilint_finds_no_errors_in_crls_and_ocsp_responses", missing) {
        return;
    }
    let served = serve_demo_published_twice();
    let scratch = tempfile::tempdir().unwrap();
    let mut commands = Vec::new();
    let mut labels = Vec::new();
    for issuer in ISSUERS {
        for path in crl_paths(issuer) {
            let (file, _) = fetch_crl(served.server.ocsp_addr, &path, scratch.path());
            for profile in ["BR", "PKIX"] {
                let mut command = Command::new("lint_crl");
                command
                    .args(["lint", "-t", "CRL", "-p", profile, "-s", "WARNING"])
                    .arg(&file);
                commands.push(command);
                labels.push(format!("lint_crl -p {profile} {issuer} {path}"));
            }
        }
        let rows = index_rows(issuer);
        let good = rows.iter().find(|r| r.status == 'V').unwrap();
        let revoked = rows.iter().find(|r| r.status == 'R').unwrap();
        for (row, status) in [(good, "good"), (revoked, "revoked")] {
            for hash in ["-sha1", "-sha256"] {
                let label = format!("{issuer}-{status}{hash}");
                let request = scratch.path().join(format!("{label}.req"));
                let cert = cert_path(issuer, &row.serial);
                openssl_ok(&[
                    "ocsp",
                    "-issuer",
                    path_str(&issuer_ca(issuer)),
                    hash,
                    "-cert",
                    path_str(&cert),
                    "-reqout",
                    path_str(&request),
                    "-no_nonce",
                ]);
                let body = std::fs::read(&request).unwrap();
                let response = http_close(
                    served.server.ocsp_addr,
                    "POST",
                    "/",
                    &[("Content-Type", "application/ocsp-request")],
                    Some(&body),
                );
                assert_eq!(response.status, 200, "{label}: {response:?}");
                assert_eq!(response.header("content-type"), Some("application/ocsp-response"));
                let file = scratch.path().join(format!("{label}.resp"));
                std::fs::write(&file, &response.body).unwrap();
                assert_eq!(ocsp_cert_statuses(&response.body), [status], "{label}");
                let mut command = Command::new("lint_ocsp_response");
                command.args(["lint", "-s", "WARNING"]).arg(&file);
                commands.push(command);
                labels.push(format!("lint_ocsp_response {label}"));
            }
        }
    }
    let outputs = run_parallel(commands);
    let mut failures = Vec::new();
    for (label, out) in labels.iter().zip(&outputs) {
        let text = out.text();
        if out.code.is_none() || text.contains("Traceback") {
            failures.push(format!("{label}: the linter crashed: {text}"));
            continue;
        }
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("(ERROR)") || l.contains("(FATAL)"))
            .collect();
        if !errors.is_empty() {
            failures.push(format!("{label}:\n{text}"));
        } else if !out.stdout.trim().is_empty() {
            println!("note: {label} (warnings, not failures):\n{}", out.stdout);
        }
    }
    assert!(failures.is_empty(), "pkilint findings:\n{}", failures.join("\n"));
}

// =======================================================================================
// 4. HTTP behaviour of the document endpoint

fn assert_document_headers(response: &HttpResponse, content_type: &str, body: &[u8], what: &str) {
    for name in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "expires",
        "cache-control",
        "accept-ranges",
    ] {
        assert_eq!(
            response.header_count(name),
            1,
            "{what}: exactly one {name}: {response:?}"
        );
    }
    assert_eq!(response.header("content-type"), Some(content_type), "{what}");
    assert_eq!(
        response.header("content-length"),
        Some(body.len().to_string().as_str()),
        "{what}"
    );
    assert_eq!(response.header("accept-ranges"), Some("bytes"), "{what}");
    assert_eq!(
        response.header("etag"),
        Some(format!("\"{}\"", sha256_hex(body)).as_str()),
        "{what}: ETag"
    );
    let expires = parse_http_date(response.header("expires").unwrap()).expect("Expires is an HTTP date");
    let cache_control = response.header("cache-control").unwrap();
    let max_age: i64 = cache_control
        .strip_prefix("max-age=")
        .and_then(|rest| rest.strip_suffix(", public, no-transform, must-revalidate"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: Cache-Control {cache_control:?}"));
    assert!(max_age > 0 && max_age <= 3600, "{what}: max-age {max_age}");
    assert!(
        max_age <= expires - unix_now() + 1,
        "{what}: max-age {max_age} reaches past nextUpdate"
    );
    for forbidden in ["pragma", "set-cookie", "vary"] {
        assert_eq!(response.header_count(forbidden), 0, "{what}: {forbidden}");
    }
}

#[test]
fn documents_are_served_with_cdn_friendly_http_semantics() {
    let served = serve_demo_published_twice();
    let addr = served.server.ocsp_addr;
    let scratch = tempfile::tempdir().unwrap();
    let full = full_path("ec");
    let (full_file, full_body) = fetch_crl(addr, &full, scratch.path());
    let full_last_modified = CrlView::read(&full_file).this_update;

    for (path, content_type) in [
        (full.clone(), "application/pkix-crl"),
        (shard_path("ec", 1), "application/pkix-crl"),
        (json_path("ec"), "application/json"),
    ] {
        let what = format!("GET {path}");
        let get = http_close(addr, "GET", &path, &[], None);
        assert_eq!(get.status, 200, "{what}: {get:?}");
        let body = get.body.clone();
        assert!(!body.is_empty());
        assert_document_headers(&get, content_type, &body, &what);
        let etag = get.header("etag").unwrap().to_string();
        let last_modified = get.header("last-modified").unwrap().to_string();
        let lm = parse_http_date(&last_modified).expect("Last-Modified is an HTTP date");
        let expires = parse_http_date(get.header("expires").unwrap()).unwrap();
        if content_type == "application/pkix-crl" {
            let crl = CrlView::parse(&body);
            assert_eq!(lm, crl.this_update, "{what}: Last-Modified");
            assert_eq!(Some(expires), crl.next_update, "{what}: Expires");
        } else {
            assert_eq!(
                lm, full_last_modified,
                "{what}: Last-Modified is the snapshot's thisUpdate"
            );
            let json: serde_json::Value =
                serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
            let expected: Vec<serde_json::Value> = (0..SHARDS)
                .map(|s| format!("{URL_BASE}{}", shard_path("ec", s)).into())
                .collect();
            assert_eq!(
                json,
                serde_json::Value::Array(expected),
                "{what}: the CCADB array of partition URLs, in order"
            );
        }

        // HEAD: the same headers, the full length, no body bytes.
        let head = http_close(addr, "HEAD", &path, &[], None);
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(
            head.body.is_empty(),
            "HEAD {path} sent {} body bytes",
            head.body.len()
        );
        for name in [
            "content-type",
            "etag",
            "last-modified",
            "expires",
            "accept-ranges",
            "content-length",
        ] {
            assert_eq!(head.header(name), get.header(name), "HEAD {path}: {name}");
        }

        // Conditional requests.
        let not_modified = http_close(addr, "GET", &path, &[("If-None-Match", &etag)], None);
        assert_eq!(not_modified.status, 304, "{what} If-None-Match: {not_modified:?}");
        assert!(not_modified.body.is_empty(), "{what}: 304 with a body");
        assert_eq!(
            not_modified.header("etag"),
            Some(etag.as_str()),
            "{what}: 304 keeps the ETag"
        );
        let listed = format!("\"other\", {etag}");
        assert_eq!(
            http_close(addr, "GET", &path, &[("If-None-Match", &listed)], None).status,
            304,
            "{what}"
        );
        let wrong = http_close(addr, "GET", &path, &[("If-None-Match", "\"0000\"")], None);
        assert_eq!(wrong.status, 200, "{what}: a wrong ETag");
        assert_eq!(wrong.body, body);
        let since = http_close(addr, "GET", &path, &[("If-Modified-Since", &last_modified)], None);
        assert_eq!(since.status, 304, "{what} If-Modified-Since = Last-Modified");
        assert!(since.body.is_empty());
        let day_before = http_date(lm - DAY);
        let older = http_close(addr, "GET", &path, &[("If-Modified-Since", &day_before)], None);
        assert_eq!(older.status, 200, "{what} If-Modified-Since {day_before}");
        assert_eq!(older.body, body);
        // RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since.
        let both = http_close(
            addr,
            "GET",
            &path,
            &[
                ("If-None-Match", "\"0000\""),
                ("If-Modified-Since", &last_modified),
            ],
            None,
        );
        assert_eq!(
            both.status, 200,
            "{what}: If-None-Match mismatch with If-Modified-Since"
        );

        // Ranges.
        let len = body.len();
        let first = http_close(addr, "GET", &path, &[("Range", "bytes=0-99")], None);
        assert_eq!(first.status, 206, "{what} bytes=0-99: {first:?}");
        assert_eq!(
            first.header("content-range"),
            Some(format!("bytes 0-99/{len}").as_str())
        );
        assert_eq!(first.header("content-length"), Some("100"));
        assert_eq!(first.body, body[..100], "{what}: first 100 bytes");
        let last = http_close(addr, "GET", &path, &[("Range", "bytes=-50")], None);
        assert_eq!(last.status, 206, "{what} bytes=-50");
        assert_eq!(
            last.header("content-range"),
            Some(format!("bytes {}-{}/{len}", len - 50, len - 1).as_str())
        );
        assert_eq!(last.body, body[len - 50..], "{what}: last 50 bytes");
        let past = http_close(addr, "GET", &path, &[("Range", &format!("bytes={len}-"))], None);
        assert_eq!(past.status, 416, "{what} bytes={len}-");
        assert_eq!(
            past.header("content-range"),
            Some(format!("bytes */{len}").as_str())
        );
        let if_range = http_close(
            addr,
            "GET",
            &path,
            &[("Range", "bytes=0-99"), ("If-Range", &etag)],
            None,
        );
        assert_eq!(if_range.status, 206, "{what}: If-Range with the current ETag");
        assert_eq!(if_range.body, body[..100]);
        let changed = http_close(
            addr,
            "GET",
            &path,
            &[("Range", "bytes=0-99"), ("If-Range", "\"other\"")],
            None,
        );
        assert_eq!(changed.status, 200, "{what}: If-Range with another ETag");
        assert_eq!(changed.body, body, "{what}: the whole document");
        assert_eq!(changed.header_count("content-range"), 0);
    }

    // An unknown path is not a CRL.
    let unknown = http_close(addr, "GET", "/crl/nope.crl", &[], None);
    assert!(
        !(unknown.status == 200 && unknown.header("content-type") == Some("application/pkix-crl")),
        "/crl/nope.crl served as a CRL: {unknown:?}"
    );
    assert_ne!(unknown.body, full_body);

    // Metrics.
    let metrics = http_close(served.server.admin_addr, "GET", "/metrics", &[], None);
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body).unwrap();
    let sample = |name: &str| -> Option<f64> {
        let prefix = format!("{name}{{path=\"{full}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    };
    assert_eq!(
        sample("ocsp_edge_crl_number"),
        Some(served.second as f64),
        "ocsp_edge_crl_number for {full} in:\n{text}"
    );
    let served_bytes = sample("ocsp_edge_crl_bytes_served_total").expect("ocsp_edge_crl_bytes_served_total");
    assert!(
        served_bytes >= full_body.len() as f64,
        "bytes served {served_bytes} after GETs of {full}"
    );
}

// =======================================================================================
// 5. A stale CRL is not served as fresh

#[test]
fn a_crl_past_its_next_update_is_refused_not_served_stale() {
    let dir = tempfile::tempdir().unwrap();
    let eight_days_ago = unix_now() - 8 * DAY;
    let report = publish_at(&demo_config(), dir.path(), eight_days_ago).expect("publish in the past");
    let server = start_server(dir.path(), report.sequence);
    for path in [
        full_path("ec"),
        shard_path("rsa", 0),
        json_path("ec"),
        delta_path("ec"),
    ] {
        let response = http_close(server.ocsp_addr, "GET", &path, &[], None);
        if path == delta_path("ec") {
            // One publish only: there is no delta; it must not be a CRL either.
            assert!(
                response.header("content-type") != Some("application/pkix-crl"),
                "{response:?}"
            );
            continue;
        }
        assert_eq!(response.status, 503, "GET {path}: {response:?}");
        let retry: u64 = response
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("GET {path}: Retry-After seconds: {response:?}"));
        assert!(retry > 0);
        assert_eq!(response.header("cache-control"), Some("no-store"), "GET {path}");
        assert_eq!(
            response.header_count("etag") + response.header_count("last-modified"),
            0,
            "GET {path}: {response:?}"
        );
        let head = http_close(server.ocsp_addr, "HEAD", &path, &[], None);
        assert_eq!(head.status, 503, "HEAD {path}");
    }
    let ready = http_close(server.admin_addr, "GET", "/readyz", &[], None);
    assert_eq!(ready.status, 503, "/readyz with an expired snapshot: {ready:?}");
}

// =======================================================================================
// 6. cRLNumber monotonicity

#[test]
fn crl_numbers_strictly_increase_across_publishes_restarts_and_clock_steps() {
    let now = unix_now();

    // (a) Two publishes in one directory.
    let dir = tempfile::tempdir().unwrap();
    let first = publish_at(&demo_config(), dir.path(), now).unwrap();
    let second = publish_at(&demo_config(), dir.path(), now).unwrap();
    for issuer in ISSUERS {
        let a = snapshot_crl_number(&first.snapshot, &full_path(issuer));
        let b = snapshot_crl_number(&second.snapshot, &full_path(issuer));
        assert_eq!(a, first.sequence);
        assert!(b > a, "{issuer}: {b} after {a}");
        let shard = snapshot_crl_number(&second.snapshot, &shard_path(issuer, 2));
        assert_eq!(shard, b, "{issuer}: partitions share the full CRL's number");
    }

    // (b) Publisher restarts: the CLI, as separate processes.
    let cli_dir = tempfile::tempdir().unwrap();
    let mut numbers = Vec::new();
    for run in 0..2 {
        let mut command = ocsp_edge_command();
        command
            .arg("publish")
            .arg("--config")
            .arg(demo_config())
            .arg("--out")
            .arg(cli_dir.path())
            .env_remove("RUST_LOG");
        let out = run_command(&mut command);
        assert!(out.success, "publish run {run}: {}", out.text());
        let snapshots = snapshot_files(cli_dir.path());
        assert_eq!(snapshots.len(), run + 1, "{snapshots:?}");
        let newest = snapshots.last().unwrap();
        let ec = snapshot_crl_number(newest, &full_path("ec"));
        let rsa = snapshot_crl_number(newest, &full_path("rsa"));
        assert_eq!(ec, rsa, "one number per snapshot");
        numbers.push(ec);
    }
    assert!(numbers[1] > numbers[0], "CLI restarts: {numbers:?}");
    assert!(numbers[0] >= now as u64, "derived from the clock: {numbers:?}");

    // (c) The clock steps back an hour.
    let clock_dir = tempfile::tempdir().unwrap();
    let before = publish_at(&demo_config(), clock_dir.path(), now).unwrap();
    let after = publish_at(&demo_config(), clock_dir.path(), now - 3600).unwrap();
    let a = snapshot_crl_number(&before.snapshot, &full_path("ec"));
    let b = snapshot_crl_number(&after.snapshot, &full_path("ec"));
    assert!(b > a, "clock went backwards: {b} after {a}");
    // The delta of the second names the first as its base, whatever the clock says.
    let delta = snapshot_documents(&after.snapshot);
    let delta = CrlView::parse(&delta[&delta_path("ec")].0);
    assert_eq!(delta.delta_base().map(|(_, base)| base), Some(a));
}

// =======================================================================================
// 7. Imported CRLs

/// A throwaway `openssl ca` setup for `-gencrl`: the database is a copy of `index`.
fn openssl_ca_crl(work: &Path, name: &str, index: &Path, cert: &Path, key: &Path) -> PathBuf {
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(index, dir.join("index.txt")).unwrap();
    std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
    let config = dir.join("ca.cnf");
    std::fs::write(
        &config,
        format!(
            "[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = {}\ncrlnumber = {}\n\
             certificate = {}\nprivate_key = {}\ndefault_md = sha256\ncrl_extensions = crl_ext\n\
             [ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n",
            dir.join("index.txt").display(),
            dir.join("crlnumber").display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let crl = dir.join("ca.crl");
    openssl_ok(&[
        "ca",
        "-config",
        path_str(&config),
        "-gencrl",
        "-crldays",
        "7",
        "-out",
        path_str(&crl),
    ]);
    crl
}

fn import_config(work: &Path, imports: &[(&Path, &str)]) -> PathBuf {
    let d = demo();
    let list: Vec<String> = imports
        .iter()
        .map(|(file, url)| format!("{{ file = {}, url = \"{url}\" }}", toml_string(file)))
        .collect();
    let config = work.join(format!("import-{}.toml", imports.len()));
    std::fs::write(
        &config,
        format!(
            "validity = \"96h\"\n[[issuer]]\nname = \"ec\"\ncertificate = {}\nindex = {}\n\
             signer_certificate = {}\nsigner_key = {}\n[issuer.crl]\nimport = [{}]\n",
            toml_string(&d.join("ec/ca.pem")),
            toml_string(&d.join("ec/index.txt")),
            toml_string(&d.join("ec/ocsp.pem")),
            toml_string(&d.join("ec/ocsp.key")),
            list.join(", ")
        ),
    )
    .unwrap();
    config
}

#[test]
fn imported_crls_are_served_byte_for_byte_and_foreign_ones_refused() {
    let work = tempfile::tempdir().unwrap();
    let d = demo();
    let pem = openssl_ca_crl(
        work.path(),
        "ec-ca",
        &d.join("ec/index.txt"),
        &d.join("ec/ca.pem"),
        &d.join("ec/ca.key"),
    );
    let der = work.path().join("ca-crl.der");
    openssl_ok(&[
        "crl",
        "-in",
        path_str(&pem),
        "-outform",
        "DER",
        "-out",
        path_str(&der),
    ]);
    let der_bytes = std::fs::read(&der).unwrap();

    let config = import_config(
        work.path(),
        &[
            (&pem, "http://127.0.0.1:8080/crl/imported.crl"),
            (&der, "http://127.0.0.1:8080/crl/imported-der.crl"),
        ],
    );
    let out = work.path().join("out");
    let report = publish_at(&config, &out, unix_now()).expect("publish with imported CRLs");
    {
        // import_config publishes the EC issuer only.
        let server = start_server_trusting(&out, report.sequence, &["ec"]);
        for path in ["/crl/imported.crl", "/crl/imported-der.crl"] {
            let response = http_close(server.ocsp_addr, "GET", path, &[], None);
            assert_eq!(response.status, 200, "{path}: {response:?}");
            assert_eq!(response.header("content-type"), Some("application/pkix-crl"));
            assert!(
                response.body == der_bytes,
                "{path}: not byte for byte the openssl CRL (DER)"
            );
            let lm = parse_http_date(response.header("last-modified").unwrap()).unwrap();
            let crl = CrlView::read(&der);
            assert_eq!(lm, crl.this_update, "{path}: Last-Modified");
            let expires = parse_http_date(response.header("expires").unwrap()).unwrap();
            assert_eq!(Some(expires), crl.next_update, "{path}: Expires");
        }
        // Nothing signed by the publisher for an importing issuer.
        let own = http_close(server.ocsp_addr, "GET", &full_path("ec"), &[], None);
        assert!(
            own.header("content-type") != Some("application/pkix-crl"),
            "{own:?}"
        );
    }

    // The RSA issuer's own CRL, offered as the EC issuer's.
    let rsa = openssl_ca_crl(
        work.path(),
        "rsa-ca",
        &d.join("rsa/index.txt"),
        &d.join("rsa/ca.pem"),
        &d.join("rsa/ca.key"),
    );
    // A CRL naming the EC issuer but signed by another key: the EC CA certificate re-signed
    // with a fresh key (same subject bytes, different public key).
    let impostor_key = work.path().join("impostor.key");
    openssl_ok(&[
        "ecparam",
        "-genkey",
        "-name",
        "prime256v1",
        "-noout",
        "-out",
        path_str(&impostor_key),
    ]);
    let impostor_cert = work.path().join("impostor.pem");
    openssl_ok(&[
        "x509",
        "-in",
        path_str(&d.join("ec/ca.pem")),
        "-key",
        path_str(&impostor_key),
        "-out",
        path_str(&impostor_cert),
    ]);
    let forged = openssl_ca_crl(
        work.path(),
        "impostor-ca",
        &d.join("ec/index.txt"),
        &impostor_cert,
        &impostor_key,
    );
    let issuer_line = |crl: &Path| openssl_ok(&["crl", "-in", path_str(crl), "-noout", "-issuer"]);
    assert_eq!(
        issuer_line(&forged),
        issuer_line(&pem),
        "the forged CRL names the EC issuer"
    );

    for (crl, expected) in [(&rsa, "issuer"), (&forged, "signature does not verify")] {
        let config = import_config(
            work.path(),
            &[(crl.as_path(), "http://127.0.0.1:8080/crl/imported.crl")],
        );
        let out = work.path().join("refused");
        let error = publish_at(&config, &out, unix_now()).err().unwrap_or_else(|| {
            panic!(
                "{}: a CRL not signed by the EC issuer was accepted",
                crl.display()
            )
        });
        assert!(
            error.contains(&crl.display().to_string()),
            "the error names the file: {error}"
        );
        assert!(error.contains(expected), "{}: {error}", crl.display());
        assert!(
            snapshot_files(&out).is_empty(),
            "nothing published after a refused import"
        );
    }
}

// =======================================================================================
// 8. certificateHold is refused

#[test]
fn certificate_hold_stops_a_publish_with_crls() {
    let work = tempfile::tempdir().unwrap();
    let d = demo();
    let original = read_text(&d.join("ec/index.txt"));
    let first_valid = original.lines().find(|l| l.starts_with("V\t")).unwrap();
    let fields: Vec<&str> = first_valid.split('\t').collect();
    for (policy, spelling) in [
        ("baseline_requirements", "certificateHold"),
        ("rfc5280", "certificateHold"),
        ("rfc5280", "holdInstruction,1.2.840.10040.2.2"),
    ] {
        let held = format!(
            "R\t{}\t260701000000Z,{spelling}\t{}",
            fields[1],
            fields[3..].join("\t")
        );
        let index = work.path().join("index.txt");
        std::fs::write(&index, original.replacen(first_valid, &held, 1)).unwrap();
        let config = work.path().join("hold.toml");
        std::fs::write(
            &config,
            format!(
                "validity = \"96h\"\nrevocation_reasons = \"{policy}\"\n[[issuer]]\nname = \"ec\"\n\
                 certificate = {}\nindex = {}\nsigner_certificate = {}\nsigner_key = {}\n\
                 [issuer.crl]\nsigning_key = {}\nfull_url = \"{URL_BASE}/crl/ec.crl\"\n",
                toml_string(&d.join("ec/ca.pem")),
                toml_string(&index),
                toml_string(&d.join("ec/ocsp.pem")),
                toml_string(&d.join("ec/ocsp.key")),
                toml_string(&d.join("ec/ca.key")),
            ),
        )
        .unwrap();
        let out = work.path().join("out");
        let error = publish_at(&config, &out, unix_now())
            .err()
            .unwrap_or_else(|| panic!("{policy} {spelling}: a certificateHold entry was published"));
        assert!(error.contains("certificateHold"), "{policy} {spelling}: {error}");
        assert!(
            error.contains(fields[3]),
            "{policy} {spelling}: the error names the serial: {error}"
        );
        assert!(snapshot_files(&out).is_empty(), "nothing published");
    }
}

// =======================================================================================
// Probes beyond the brief

/// Two CRL documents configured at the same URL path (here: two issuers whose full CRLs
/// share a path, as happens with one path on two host names) must stop the publish: a
/// snapshot with a path twice is refused by every responder ("document path appears
/// twice"), so it would never be served and the previous one would silently go stale.
#[test]
fn colliding_document_paths_are_refused_at_publish() {
    let work = tempfile::tempdir().unwrap();
    let d = demo();
    let issuer = |name: &str, host: &str| {
        format!(
            "[[issuer]]\nname = \"{name}\"\ncertificate = {}\nindex = {}\nsigner_certificate = {}\n\
             signer_key = {}\n[issuer.crl]\nsigning_key = {}\nfull_url = \"http://{host}/crl/ca.crl\"\n",
            toml_string(&d.join(name).join("ca.pem")),
            toml_string(&d.join(name).join("index.txt")),
            toml_string(&d.join(name).join("ocsp.pem")),
            toml_string(&d.join(name).join("ocsp.key")),
            toml_string(&d.join(name).join("ca.key")),
        )
    };
    let config = work.path().join("collide.toml");
    std::fs::write(
        &config,
        format!(
            "validity = \"96h\"\n{}{}",
            issuer("ec", "crl.ec.example"),
            issuer("rsa", "crl.rsa.example")
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    match publish_at(&config, &out, unix_now()) {
        Err(error) => assert!(error.contains("/crl/ca.crl"), "the error names the path: {error}"),
        Ok(report) => {
            let trust: Vec<String> = ISSUERS
                .iter()
                .map(|i| issuer_ca(i).display().to_string())
                .collect();
            let server = Background::start(
                Config::load(Sources {
                    overrides: vec![
                        ("snapshots.dir", out.display().to_string().into()),
                        ("snapshots.trust", trust.into()),
                        ("server.listen", "127.0.0.1:0".into()),
                        ("server.admin_listen", "127.0.0.1:0".into()),
                        ("snapshots.poll_interval", "100ms".into()),
                    ],
                    ..Default::default()
                })
                .unwrap(),
            )
            .unwrap();
            let deadline = Instant::now() + Duration::from_secs(3);
            while server.state.current_sequence() != Some(report.sequence) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let metrics = http_close(server.admin_addr, "GET", "/metrics", &[], None);
            let refused: Vec<String> = String::from_utf8_lossy(&metrics.body)
                .lines()
                .filter(|l| l.starts_with("ocsp_edge_snapshots_refused_total"))
                .map(String::from)
                .collect();
            assert_eq!(
                server.state.current_sequence(),
                Some(report.sequence),
                "publish accepted two documents at /crl/ca.crl, and the responder refuses the snapshot: {refused:?}"
            );
        }
    }
}

/// An imported CRL already past its nextUpdate cannot be served (503) and takes /readyz —
/// and so the OCSP service of the whole responder — out of rotation as soon as it loads.
#[test]
fn an_expired_imported_crl_is_refused_at_publish() {
    let work = tempfile::tempdir().unwrap();
    let d = demo();
    let dir = work.path().join("ca");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(d.join("ec/index.txt"), dir.join("index.txt")).unwrap();
    std::fs::write(dir.join("crlnumber"), "1000\n").unwrap();
    let cnf = dir.join("ca.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = {}\ncrlnumber = {}\n\
             certificate = {}\nprivate_key = {}\ndefault_md = sha256\ncrl_extensions = crl_ext\n\
             [ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n",
            dir.join("index.txt").display(),
            dir.join("crlnumber").display(),
            d.join("ec/ca.pem").display(),
            d.join("ec/ca.key").display()
        ),
    )
    .unwrap();
    let crl = dir.join("ca.crl");
    openssl_ok(&[
        "ca",
        "-config",
        path_str(&cnf),
        "-gencrl",
        "-crlhours",
        "1",
        "-out",
        path_str(&crl),
    ]);
    let config = import_config(work.path(), &[(&crl, "http://127.0.0.1:8080/crl/imported.crl")]);
    // Publish two hours later: the CA's CRL expired an hour ago.
    let later = unix_now() + 2 * 3600;
    let result = publish_at(&config, &work.path().join("out"), later);
    assert!(
        result.as_ref().is_err_and(|e| e.contains(path_str(&crl))),
        "an expired imported CRL was published: {:?}",
        result.map(|r| r.sequence)
    );
}
