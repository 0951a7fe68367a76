//! PostgreSQL as the CA's database, against a real server the tests start
//! (tests/common/postgres.rs): the one-shot read and publish, column mappings, credentials,
//! consistency of an interrupted read, the change watcher, and TLS.

mod common;

use common::postgres::{PgServer, ServerTls};
use common::{demo, issuer_ca, skip_without};
use ocsp_edge::model::{CertRecord, CertStatus};
use ocsp_edge::publish::input::{parse_openssl_index, InputRules, ParsedInput};
use ocsp_edge::publish::plan::ReasonPolicy;
use ocsp_edge::publish::postgres::{ConfigProblem, PostgresConfig, PostgresError, PostgresInput};
use ocsp_edge::publish::signal::{ChangeReceiver, InputChanged, InputMetrics};
use ocsp_edge::publish::{PublishConfig, PublishError};
use ocsp_edge::time::UnixTime;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const READER_PASSWORD: &str = "Reader-Pa55word-7f3c91";

fn server(test: &str) -> Option<PgServer> {
    if skip_without(test, common::postgres::missing()) {
        return None;
    }
    let server = PgServer::start();
    server.sql(&format!(
        "CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'; CREATE DATABASE ca OWNER postgres;"
    ));
    Some(server)
}

/// SQL against the `ca` database as the superuser.
fn ca_sql(server: &PgServer, sql: &str) -> String {
    server.sql(&format!("\\c ca\n{sql}"))
}

/// The demo EC issuer's index.txt, as the file parser reads it.
fn demo_index() -> ParsedInput {
    let path = demo().join("ec/index.txt");
    parse_openssl_index(&path, &std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn timestamp(t: Option<UnixTime>) -> String {
    t.map_or("NULL".into(), |t| format!("to_timestamp({})", t.seconds()))
}

/// A home-grown schema with the default column names, holding the demo EC issuer's
/// certificates (good, revoked with and without reason and invalidity date, expired).
const HOME_GROWN: &str = "CREATE TABLE certificate_status (
    serial text PRIMARY KEY, status text NOT NULL, revoked_at timestamptz, reason text,
    invalidity_date timestamptz, not_after timestamptz,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
    GRANT SELECT ON certificate_status TO reader;";

fn load_home_grown(server: &PgServer) {
    let index = demo_index();
    let mut sql = String::from(HOME_GROWN);
    for record in &index.records {
        let (status, at, reason, invalidity) = match &record.status {
            CertStatus::Good => ("good", None, "NULL".to_string(), None),
            CertStatus::Revoked {
                at,
                reason,
                invalidity,
            } => (
                "revoked",
                Some(*at),
                reason.map_or("NULL".into(), |r| format!("'{}'", r.name())),
                *invalidity,
            ),
        };
        sql.push_str(&format!(
            "INSERT INTO certificate_status (serial, status, revoked_at, reason, invalidity_date, not_after) \
             VALUES ('{}', '{status}', {}, {reason}, {}, {});\n",
            record.serial.to_hex(),
            timestamp(at),
            timestamp(invalidity),
            timestamp(record.not_after),
        ));
    }
    for expired in &index.expired {
        sql.push_str(&format!(
            "INSERT INTO certificate_status (serial, status, not_after) VALUES ('{}', 'expired', {});\n",
            expired.serial.to_hex(),
            timestamp(expired.not_after)
        ));
    }
    ca_sql(server, &sql);
}

/// `[issuer.postgres]` for the reader on `server` (no TLS, password from `password`).
fn section(server: &PgServer, password: &str, mapping: &str) -> String {
    format!(
        "host = \"127.0.0.1\"\nport = {}\ndbname = \"ca\"\nuser = \"reader\"\ntls = \"disable\"\n{password}\n{mapping}\n",
        server.port
    )
}

const HOME_GROWN_MAPPING: &str = "table = \"certificate_status\"
[issuer.postgres.columns]
reason = \"reason\"
invalidity_date = \"invalidity_date\"
not_after = \"not_after\"
updated_at = \"updated_at\"
";

fn password_file(dir: &Path) -> String {
    let file = dir.join("db-password");
    std::fs::write(&file, format!("{READER_PASSWORD}\n")).unwrap();
    format!("password_file = \"{}\"", file.display())
}

/// A publish configuration for the demo EC issuer reading from `postgres` (a section body).
fn publish_toml(dir: &Path, postgres: &str) -> PathBuf {
    let ec = demo().join("ec");
    let text = format!(
        "validity = \"96h\"\n[[issuer]]\nname = \"ec\"\ncertificate = \"{}\"\nsigner_certificate = \"{}\"\nsigner_key = \"{}\"\n[issuer.postgres]\n{postgres}",
        ec.join("ca.pem").display(),
        ec.join("ocsp.pem").display(),
        ec.join("ocsp.key").display(),
    );
    let path = dir.join("publish.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn input(section_text: &str) -> PostgresInput {
    let config: PostgresConfig = toml::from_str(&section_text.replace("[issuer.postgres.", "[")).unwrap();
    config.checked("ec").unwrap()
}

fn sorted(mut records: Vec<CertRecord>) -> Vec<CertRecord> {
    records.sort_by(|a, b| a.serial.cmp(&b.serial));
    records
}

/// The database read gives exactly what the file parser gives for the same certificates,
/// and the one-shot `ocsp-edge publish --config` (no runtime of its own around the read)
/// publishes a snapshot whose answers `openssl ocsp` reads as the index says.
#[test]
fn one_shot_publish_from_the_database_answers_like_the_index() {
    let Some(server) = server("one_shot_publish_from_the_database_answers_like_the_index") else {
        return;
    };
    load_home_grown(&server);
    let dir = tempfile::tempdir().unwrap();
    let toml = publish_toml(
        dir.path(),
        &section(&server, &password_file(dir.path()), HOME_GROWN_MAPPING),
    );

    let plan = PublishConfig::from_file(&toml)
        .unwrap()
        .load(UnixTime::now())
        .unwrap();
    let mut index = demo_index();
    // The plan applies the reason policy to database rows exactly as to index lines.
    ReasonPolicy::BaselineRequirements
        .apply(&mut index.records, Path::new("index.txt"))
        .unwrap();
    let issuer = &plan.issuers[0];
    assert!(
        sorted(issuer.records.clone()) == sorted(index.records.clone()),
        "the database read differs from index.txt"
    );
    assert_eq!(issuer.skipped_expired, index.skipped_expired);
    assert_eq!(issuer.expired, index.expired);

    let out_dir = dir.path().join("snapshots");
    let out = common::ocsp_edge(&[
        "publish",
        "--config",
        toml.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.success, "{out}");
    let served =
        ocsp_edge::server::Background::start(common::config_for(&out_dir, &[issuer_ca("ec")], vec![]))
            .expect("serve the snapshot");
    let rows = common::index_rows("ec");
    let revoked = rows.iter().filter(|r| r.status == 'R').take(4);
    let good = rows.iter().filter(|r| r.status == 'V').take(2);
    for row in revoked.chain(good) {
        let (status, output) =
            common::openssl_status(served.ocsp_addr, &issuer_ca("ec"), &row.cert("ec"), false);
        let expected = if row.status == 'R' { "revoked" } else { "good" };
        assert_eq!(status, expected, "serial {}: {output}", row.serial);
        if let Some(reason) = row.openssl_reason() {
            assert!(
                output.stdout.contains(&format!("Reason: {reason}")),
                "{}: {output}",
                row.serial
            );
        }
    }
    let expired = rows
        .iter()
        .find(|r| r.status == 'E')
        .expect("an expired demo leaf");
    let (status, output) =
        common::openssl_status(served.ocsp_addr, &issuer_ca("ec"), &expired.cert("ec"), false);
    assert_ne!(
        status, "good",
        "an expired row must not be answered good: {output}"
    );
}

/// An EJBCA-like schema (decimal serials, integer statuses and reasons, times in epoch
/// milliseconds) maps through a query and `status_values` to the same records.
#[test]
fn an_ejbca_like_schema_maps_through_a_query() {
    let Some(server) = server("an_ejbca_like_schema_maps_through_a_query") else {
        return;
    };
    let index = demo_index();
    let decimal = |hex: &str| {
        // u128 holds every demo serial (16 octets).
        u128::from_str_radix(hex, 16).unwrap().to_string()
    };
    let mut sql = String::from(
        "CREATE TABLE CertificateData (serialNumber varchar(64) PRIMARY KEY, status integer NOT NULL,
         revocationDate bigint NOT NULL DEFAULT -1, revocationReason integer NOT NULL DEFAULT -1,
         expireDate bigint NOT NULL); GRANT SELECT ON CertificateData TO reader;",
    );
    for record in &index.records {
        let (status, at, reason) = match &record.status {
            CertStatus::Good => (20, -1, -1),
            CertStatus::Revoked { at, reason, .. } => {
                (40, at.seconds() * 1000, reason.map_or(0, |r| i64::from(r.code())))
            }
        };
        sql.push_str(&format!(
            "INSERT INTO CertificateData VALUES ('{}', {status}, {at}, {reason}, {});",
            decimal(&record.serial.to_hex()),
            record.not_after.unwrap().seconds() * 1000
        ));
    }
    for expired in &index.expired {
        sql.push_str(&format!(
            "INSERT INTO CertificateData VALUES ('{}', 60, -1, -1, {});",
            decimal(&expired.serial.to_hex()),
            expired.not_after.unwrap().seconds() * 1000
        ));
    }
    ca_sql(&server, &sql);
    let mapping = r#"query = """
SELECT serialNumber AS serial, status,
       CASE WHEN status = 40 THEN to_timestamp(revocationDate / 1000.0) END AS revoked_at,
       CASE WHEN status = 40 THEN NULLIF(revocationReason, 0) END AS reason,
       to_timestamp(expireDate / 1000.0) AS not_after
FROM CertificateData"""
serial_format = "decimal"
[issuer.postgres.columns]
reason = "reason"
not_after = "not_after"
[issuer.postgres.status_values]
good = ["20", "21"]
revoked = ["40"]
expired = ["60"]
"#;
    let dir = tempfile::tempdir().unwrap();
    let parsed = input(&section(&server, &password_file(dir.path()), mapping))
        .read_blocking(InputRules::default())
        .unwrap();
    // This schema has no invalidity date, and `unspecified` (0) reads as no reason.
    let expected: Vec<CertRecord> = index
        .records
        .iter()
        .cloned()
        .map(|mut r| {
            if let CertStatus::Revoked {
                invalidity, reason, ..
            } = &mut r.status
            {
                *invalidity = None;
                if reason.map(|r| r.code()) == Some(0) {
                    *reason = None;
                }
            }
            r
        })
        .collect();
    assert!(
        sorted(parsed.records) == sorted(expected),
        "the EJBCA-like read differs from index.txt"
    );
    assert_eq!(parsed.expired, index.expired);
}

/// Rows the publisher cannot accept stop the read with a message naming the row's serial
/// and the column, like a file's line.
#[test]
fn bad_rows_are_named_by_serial_and_column() {
    let Some(server) = server("bad_rows_are_named_by_serial_and_column") else {
        return;
    };
    ca_sql(&server, HOME_GROWN);
    let dir = tempfile::tempdir().unwrap();
    let reader = input(&section(&server, &password_file(dir.path()), HOME_GROWN_MAPPING));
    let cases = [
        (
            "('0A', 'revoked', NULL, NULL)",
            "(serial 0A), column revoked_at: is NULL on a row whose status \"revoked\"",
        ),
        (
            "('0B', 'good', NULL, 'superseded')",
            "(serial 0B), column reason: is set on a row whose status \"good\"",
        ),
        (
            "('0C', 'on-hold', NULL, NULL)",
            "(serial 0C), column status: value \"on-hold\" is in none of",
        ),
        (
            "('0D', 'revoked', now(), 'keyCompromized')",
            "(serial 0D), column reason: unknown revocation reason",
        ),
        (
            "('0XYZ', 'good', NULL, NULL)",
            "column serial: serial \"0XYZ\" is not hexadecimal",
        ),
        (
            "('00', 'good', NULL, NULL)",
            "(serial 00), column serial: serial 00 is zero",
        ),
        (
            "('0F', 'revoked', 'infinity', NULL)",
            "(serial 0F), column revoked_at: cannot be read",
        ),
        (
            "('0E', 'good', NULL, NULL), ('000E', 'good', NULL, NULL)",
            "column serial: serial 0E appears again (first in row 1)",
        ),
    ];
    for (rows, expected) in cases {
        ca_sql(&server, &format!(
            "TRUNCATE certificate_status; INSERT INTO certificate_status (serial, status, revoked_at, reason) VALUES {rows};"
        ));
        let err = reader.read_blocking(InputRules::default()).unwrap_err();
        assert!(matches!(err, PublishError::Input(_)), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with("postgres://reader@127.0.0.1:") && message.contains(expected),
            "{rows}: {message}"
        );
    }
}

/// A `query` whose result does not fit the column mapping is a configuration error (exit
/// 64) naming the column and its role, found before any row is read.
#[test]
fn a_query_that_does_not_fit_the_mapping_is_a_configuration_error() {
    let Some(server) = server("a_query_that_does_not_fit_the_mapping_is_a_configuration_error") else {
        return;
    };
    ca_sql(&server, HOME_GROWN);
    let dir = tempfile::tempdir().unwrap();
    let password = password_file(dir.path());
    let cases = [
        (
            "SELECT serial, status FROM certificate_status",
            "the query returns no column \"revoked_at\" (columns.revoked_at); it returns [\"serial\", \"status\"]",
        ),
        (
            "SELECT serial, status, 1 AS revoked_at FROM certificate_status",
            "column \"revoked_at\" (columns.revoked_at) has type int4, which cannot hold a time \
             (timestamptz or timestamp); convert it in `query`",
        ),
    ];
    for (query, expected) in cases {
        let reader = input(&section(&server, &password, &format!("query = \"{query}\"")));
        let err = reader.read_blocking(InputRules::default()).unwrap_err();
        assert!(
            matches!(
                err,
                PublishError::Postgres(PostgresError::Config {
                    problem: ConfigProblem::ColumnMissing { .. } | ConfigProblem::ColumnType { .. },
                    ..
                })
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("issuer \"ec\": [issuer.postgres] {expected}")
        );
    }
}

/// The password comes from a file or from the environment; a wrong one fails with the
/// server's message, and neither the error nor the command's output ever holds it.
#[test]
fn credentials_from_file_or_environment_and_never_in_messages() {
    let Some(server) = server("credentials_from_file_or_environment_and_never_in_messages") else {
        return;
    };
    load_home_grown(&server);
    let dir = tempfile::tempdir().unwrap();
    let from_file = input(&section(&server, &password_file(dir.path()), HOME_GROWN_MAPPING));
    assert!(!from_file
        .read_blocking(InputRules::default())
        .unwrap()
        .records
        .is_empty());

    const VARIABLE: &str = "OCSP_EDGE_TEST_PG_PASSWORD";
    let from_env = section(
        &server,
        &format!("password_env = \"{VARIABLE}\""),
        HOME_GROWN_MAPPING,
    );
    let toml = publish_toml(dir.path(), &from_env);
    let out_dir = dir.path().join("snapshots");
    let publish = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_ocsp-edge"))
            .args([
                "publish",
                "--config",
                toml.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
            ])
            .env(VARIABLE, password)
            .env("RUST_LOG", "debug")
            .output()
            .unwrap()
    };
    let good = publish(READER_PASSWORD);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));

    let wrong = "Wrong-Secret-Password-81aa";
    let bad = publish(wrong);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&bad.stdout),
        String::from_utf8_lossy(&bad.stderr)
    );
    assert_eq!(bad.status.code(), Some(69), "EX_UNAVAILABLE: {text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("postgres://reader@127.0.0.1:"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(READER_PASSWORD), "{text}");

    // The same through the library: the error and its Debug form.
    std::fs::write(dir.path().join("db-password"), format!("{wrong}\n")).unwrap();
    let reader = input(&section(
        &server,
        &format!("password_file = \"{}\"", dir.path().join("db-password").display()),
        HOME_GROWN_MAPPING,
    ));
    let err = reader.read_blocking(InputRules::default()).unwrap_err();
    for shown in [err.to_string(), format!("{err:?}"), format!("{reader:?}")] {
        assert!(!shown.contains(wrong), "{shown}");
    }
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
}

/// The sync read works outside any runtime, on a runtime's blocking thread (how the live
/// publisher calls `PublishConfig::load`) and even straight from an async task on a
/// current-thread runtime.
#[test]
fn the_sync_read_works_with_and_without_a_runtime() {
    let Some(server) = server("the_sync_read_works_with_and_without_a_runtime") else {
        return;
    };
    load_home_grown(&server);
    let dir = tempfile::tempdir().unwrap();
    let reader = input(&section(&server, &password_file(dir.path()), HOME_GROWN_MAPPING));
    let expected = demo_index().records.len();
    let count = |reader: &PostgresInput| reader.read_blocking(InputRules::default()).unwrap().records.len();

    assert_eq!(count(&reader), expected, "outside any runtime");
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let on_blocking = reader.clone();
    let n = multi.block_on(async move {
        tokio::task::spawn_blocking(move || count(&on_blocking))
            .await
            .unwrap()
    });
    assert_eq!(n, expected, "on a spawn_blocking thread");
    let on_worker = reader.clone();
    let n = multi.block_on(async move { tokio::spawn(async move { count(&on_worker) }).await.unwrap() });
    assert_eq!(n, expected, "on a multi-thread worker");
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(
        single.block_on(async { count(&reader) }),
        expected,
        "inside a current-thread runtime"
    );
}

/// A connection cut while the rows stream in fails the read: never a partial input.
#[test]
fn a_read_cut_mid_transaction_fails_whole() {
    let Some(server) = server("a_read_cut_mid_transaction_fails_whole") else {
        return;
    };
    load_home_grown(&server);
    // Every row of the table goes out first, then the statement stalls in pg_sleep: the
    // cut comes while the client holds a part of the result.
    let mapping =
        "query = \"SELECT serial, status, revoked_at FROM certificate_status WHERE status <> 'expired' \
                   UNION ALL SELECT 'FFFF', 'good', NULL FROM pg_sleep(30)\"";
    let dir = tempfile::tempdir().unwrap();
    let reader = input(&section(&server, &password_file(dir.path()), mapping));
    let started = std::time::Instant::now();
    let read = std::thread::spawn(move || reader.read_blocking(InputRules::default()));
    let sleeping = common::wait_until(Duration::from_secs(20), || {
        server.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ocsp-edge publisher' AND wait_event = 'PgSleep'")
            == "1"
    });
    assert!(sleeping, "the read never reached the stall");
    server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ocsp-edge publisher'");
    let result = read.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the read waited for the stall to end"
    );
    match result {
        Ok(parsed) => panic!("a cut read returned {} records", parsed.records.len()),
        Err(err) => {
            let message = err.to_string();
            assert!(matches!(err, PublishError::Postgres(_)), "{err:?}");
            assert!(message.starts_with("postgres://reader@127.0.0.1:"), "{message}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The change watcher

/// The statement-level trigger docs/postgres.md gives a CA schema.
const NOTIFY_TRIGGER: &str =
    "CREATE FUNCTION notify_certificate_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('certificate_status_changed', extract(epoch FROM now())::text);
  RETURN NULL;
END $$;
CREATE TRIGGER certificate_status_changed AFTER INSERT OR UPDATE OR DELETE ON certificate_status
  FOR EACH STATEMENT EXECUTE FUNCTION notify_certificate_status();";

/// A watcher of `section_text` on its own runtime, with its signals and metrics.
struct Watcher {
    runtime: tokio::runtime::Runtime,
    signals: ChangeReceiver,
    registry: prometheus::Registry,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(section_text: &str) -> Watcher {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let registry = prometheus::Registry::new();
        let metrics = InputMetrics::register(&registry).unwrap();
        let (changes, signals) = tokio::sync::mpsc::channel(16);
        let task = runtime.spawn(ocsp_edge::publish::postgres::watch::watch(
            std::sync::Arc::new(input(section_text)),
            changes,
            metrics,
        ));
        Watcher {
            runtime,
            signals,
            registry,
            task,
        }
    }

    /// The next signal within `limit`.
    fn next(&mut self, limit: Duration) -> Option<InputChanged> {
        let signals = &mut self.signals;
        self.runtime
            .block_on(async { tokio::time::timeout(limit, signals.recv()).await.ok().flatten() })
    }

    /// No signal for `quiet`.
    fn quiet(&mut self, quiet: Duration) -> bool {
        self.next(quiet).is_none()
    }

    fn metric(&self, series: &str) -> f64 {
        let mut text = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &self.registry.gather(),
            &mut text,
        )
        .unwrap();
        common::metric(&String::from_utf8(text).unwrap(), series).unwrap_or(0.0)
    }
}

const CONNECTED: &str = "ocsp_edge_publisher_input_connected{issuer=\"ec\"}";

fn errors(kind: &str) -> String {
    format!("ocsp_edge_publisher_input_errors_total{{issuer=\"ec\",kind=\"{kind}\"}}")
}

fn revoke_one(server: &PgServer) {
    ca_sql(
        server,
        "UPDATE certificate_status SET status = 'revoked', revoked_at = now(), reason = 'superseded', \
         updated_at = clock_timestamp() WHERE serial = (SELECT min(serial) FROM certificate_status WHERE status = 'good');",
    );
}

/// LISTEN/NOTIFY: one signal when the watcher connects, one per committed change (with its
/// age from the trigger's payload), nothing while the table is left alone.
#[test]
fn notify_signals_a_committed_update() {
    let Some(server) = server("notify_signals_a_committed_update") else {
        return;
    };
    load_home_grown(&server);
    ca_sql(&server, NOTIFY_TRIGGER);
    let dir = tempfile::tempdir().unwrap();
    let mapping = HOME_GROWN_MAPPING.replace(
        "table = \"certificate_status\"",
        "table = \"certificate_status\"\nnotify_channel = \"certificate_status_changed\"",
    );
    let mut watcher = Watcher::start(&section(&server, &password_file(dir.path()), &mapping));
    let connected = watcher
        .next(Duration::from_secs(20))
        .expect("the signal on connecting");
    assert_eq!((connected.issuer.as_str(), connected.age), ("ec", None));
    assert_eq!(watcher.metric(CONNECTED), 1.0);
    assert!(
        watcher.quiet(Duration::from_millis(500)),
        "a signal without a change"
    );

    let before = std::time::Instant::now();
    revoke_one(&server);
    let changed = watcher
        .next(Duration::from_secs(10))
        .expect("a signal after the UPDATE");
    assert_eq!(changed.issuer, "ec");
    let age = changed.age.expect("the trigger's payload gives an age");
    assert!(age < Duration::from_secs(10), "{age:?}");
    eprintln!("NOTIFY signal {:?} after the UPDATE was sent", before.elapsed());
    // A rolled-back change notifies nobody.
    ca_sql(
        &server,
        "BEGIN; UPDATE certificate_status SET reason = NULL; ROLLBACK;",
    );
    assert!(
        watcher.quiet(Duration::from_millis(500)),
        "a signal for a rolled-back change"
    );
}

/// Without a channel the watcher polls `max(updated_at)`: a signal after an UPDATE, none
/// while nothing changes.
#[test]
fn poll_signals_a_newer_updated_at() {
    let Some(server) = server("poll_signals_a_newer_updated_at") else {
        return;
    };
    load_home_grown(&server);
    let dir = tempfile::tempdir().unwrap();
    let mapping = HOME_GROWN_MAPPING.replace(
        "table = \"certificate_status\"",
        "table = \"certificate_status\"\npoll_interval = \"200ms\"",
    );
    let mut watcher = Watcher::start(&section(&server, &password_file(dir.path()), &mapping));
    assert!(
        watcher.next(Duration::from_secs(20)).is_some(),
        "the signal on connecting"
    );
    assert!(
        watcher.quiet(Duration::from_millis(800)),
        "a signal without a change"
    );
    revoke_one(&server);
    let changed = watcher
        .next(Duration::from_secs(5))
        .expect("a signal after the UPDATE");
    assert!(
        changed.age.is_some_and(|age| age < Duration::from_secs(5)),
        "{changed:?}"
    );
    assert!(
        watcher.quiet(Duration::from_millis(800)),
        "a second signal for one change"
    );
}

/// A killed backend and a restarted server: the watcher counts the failure, shows itself
/// disconnected, reconnects with backoff, signals on reconnecting and again on the next change.
#[test]
fn a_lost_connection_is_counted_retried_and_signalled_again() {
    let Some(mut server) = server("a_lost_connection_is_counted_retried_and_signalled_again") else {
        return;
    };
    load_home_grown(&server);
    ca_sql(&server, NOTIFY_TRIGGER);
    let dir = tempfile::tempdir().unwrap();
    let mapping = HOME_GROWN_MAPPING.replace(
        "table = \"certificate_status\"",
        "table = \"certificate_status\"\nnotify_channel = \"certificate_status_changed\"\nreconnect_max = \"1s\"",
    );
    let mut watcher = Watcher::start(&section(&server, &password_file(dir.path()), &mapping));
    assert!(
        watcher.next(Duration::from_secs(20)).is_some(),
        "the signal on connecting"
    );

    server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'ocsp-edge publisher'");
    let again = watcher
        .next(Duration::from_secs(10))
        .expect("a signal after reconnecting");
    assert_eq!(again.age, None, "{again:?}");
    assert!(watcher.metric(&errors("connection_lost")) >= 1.0);
    assert_eq!(watcher.metric(CONNECTED), 1.0);
    revoke_one(&server);
    assert!(
        watcher
            .next(Duration::from_secs(10))
            .is_some_and(|s| s.age.is_some()),
        "a change after reconnecting"
    );

    server.stop();
    assert!(
        common::wait_until(Duration::from_secs(10), || watcher.metric(CONNECTED) == 0.0),
        "still shown connected with the server down"
    );
    assert!(
        common::wait_until(Duration::from_secs(10), || watcher.metric(&errors("connect"))
            >= 2.0),
        "no retries counted"
    );
    server.restart();
    assert!(
        watcher.next(Duration::from_secs(15)).is_some(),
        "a signal after the server came back"
    );
    assert_eq!(watcher.metric(CONNECTED), 1.0);
    revoke_one(&server);
    assert!(
        watcher
            .next(Duration::from_secs(10))
            .is_some_and(|s| s.age.is_some()),
        "a change after the restart"
    );
}

/// A watcher with a wrong password logs and counts its failures, and the password appears
/// in no log line.
#[test]
fn a_refused_login_is_logged_without_the_password() {
    let Some(server) = server("a_refused_login_is_logged_without_the_password") else {
        return;
    };
    load_home_grown(&server);
    let dir = tempfile::tempdir().unwrap();
    let wrong = "Wrong-Secret-Password-4be2";
    let file = dir.path().join("wrong");
    std::fs::write(&file, wrong).unwrap();
    let section_text = section(
        &server,
        &format!("password_file = \"{}\"", file.display()),
        HOME_GROWN_MAPPING,
    );

    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    // A current-thread runtime keeps the watcher on this thread, under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let registry = prometheus::Registry::new();
    let metrics = InputMetrics::register(&registry).unwrap();
    let (changes, mut signals) = tokio::sync::mpsc::channel(4);
    runtime.block_on(async {
        let watcher = tokio::spawn(ocsp_edge::publish::postgres::watch::watch(
            std::sync::Arc::new(input(&section_text)),
            changes,
            metrics,
        ));
        let signal = tokio::time::timeout(Duration::from_secs(2), signals.recv()).await;
        assert!(signal.is_err(), "a signal without a connection: {signal:?}");
        drop(signals);
        tokio::time::timeout(Duration::from_secs(5), watcher)
            .await
            .expect("the watcher stops once the publisher is gone")
            .unwrap();
    });
    let text = logs.text();
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(text.contains("postgres://reader@127.0.0.1:"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    let mut exposition = Vec::new();
    prometheus::Encoder::encode(
        &prometheus::TextEncoder::new(),
        &registry.gather(),
        &mut exposition,
    )
    .unwrap();
    let exposition = String::from_utf8(exposition).unwrap();
    assert!(
        common::metric(&exposition, &errors("connect")).unwrap_or(0.0) >= 2.0,
        "{exposition}"
    );
    assert_eq!(common::metric(&exposition, CONNECTED), Some(0.0), "{exposition}");
}

/// Log lines collected in memory.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

// ---------------------------------------------------------------------------------------
// TLS

/// A test CA and a server certificate for 127.0.0.1 only (no DNS name), made with openssl.
struct TestPki {
    ca: PathBuf,
    other_ca: PathBuf,
    server: ServerTls,
}

fn test_pki(dir: &Path) -> TestPki {
    let path = |name: &str| dir.join(name).display().to_string();
    let run = |args: &[&str]| {
        let out = common::openssl(args);
        assert!(out.success, "openssl {args:?}: {out}");
    };
    for ca in ["ca", "other-ca"] {
        run(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &path(&format!("{ca}.key")),
            "-out",
            &path(&format!("{ca}.pem")),
            "-days",
            "2",
            "-subj",
            &format!("/CN=Test database {ca}"),
        ]);
    }
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName = IP:127.0.0.1\nbasicConstraints = CA:FALSE\nkeyUsage = digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("server.key"),
        "-out",
        &path("server.csr"),
        "-subj",
        "/CN=database",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        &path("server.csr"),
        "-CA",
        &path("ca.pem"),
        "-CAkey",
        &path("ca.key"),
        "-CAcreateserial",
        "-out",
        &path("server.crt"),
        "-days",
        "2",
        "-extfile",
        &path("server.ext"),
    ]);
    TestPki {
        ca: dir.join("ca.pem"),
        other_ca: dir.join("other-ca.pem"),
        server: ServerTls {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        },
    }
}

/// `verify-full` connects to a server whose certificate chains to `ca_file` and names the
/// host; it refuses another CA's trust and a host name the certificate does not carry;
/// `require` encrypts without checking; `disable` is refused by a server demanding TLS.
#[test]
fn tls_verify_full_checks_the_ca_and_the_host() {
    let test = "tls_verify_full_checks_the_ca_and_the_host";
    if skip_without(test, common::postgres::missing()) || skip_without(test, common::not_on_path("openssl")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let server = PgServer::start_with(Some(&pki.server));
    server.sql(&format!(
        "CREATE ROLE reader LOGIN PASSWORD '{READER_PASSWORD}'; CREATE DATABASE ca OWNER postgres;"
    ));
    load_home_grown(&server);
    let password = password_file(dir.path());
    let read = |host: &str, tls: &str| {
        let text = section(&server, &password, HOME_GROWN_MAPPING)
            .replace("host = \"127.0.0.1\"", &format!("host = \"{host}\""))
            .replace("tls = \"disable\"", tls);
        input(&text).read_blocking(InputRules::default())
    };
    let verify_full = |ca: &Path| format!("tls = \"verify-full\"\nca_file = \"{}\"", ca.display());

    let parsed = read("127.0.0.1", &verify_full(&pki.ca)).expect("verify-full with the right CA");
    assert_eq!(parsed.records.len(), demo_index().records.len());

    let err = read("127.0.0.1", &verify_full(&pki.other_ca))
        .unwrap_err()
        .to_string();
    eprintln!("another CA: {err}");
    assert!(err.contains("invalid peer certificate: UnknownIssuer"), "{err}");
    let err = read("localhost", &verify_full(&pki.ca)).unwrap_err().to_string();
    eprintln!("another name: {err}");
    assert!(
        err.contains("certificate not valid for name \"localhost\""),
        "{err}"
    );

    assert!(
        read("127.0.0.1", "tls = \"require\"").is_ok(),
        "require encrypts without checking"
    );
    let err = read("127.0.0.1", "tls = \"disable\"").unwrap_err().to_string();
    eprintln!("without TLS: {err}");
    assert!(err.contains("no encryption"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Measurements

/// How long the consistent read takes for a large table (rows made by the server with
/// generate_series; 1 in 100 revoked). `OCSP_EDGE_PG_ROWS` (default 100000) sets the count:
/// `OCSP_EDGE_PG_ROWS=1000000 cargo test --test postgres -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn read_time_for_many_rows() {
    let Some(server) = server("read_time_for_many_rows") else {
        return;
    };
    let rows: u64 = std::env::var("OCSP_EDGE_PG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    ca_sql(&server, HOME_GROWN);
    let started = std::time::Instant::now();
    ca_sql(
        &server,
        &format!(
            "INSERT INTO certificate_status (serial, status, revoked_at, reason, not_after)
             SELECT lpad(to_hex(1000000000 + n), 16, '0'),
                    CASE WHEN n % 100 = 0 THEN 'revoked' ELSE 'good' END,
                    CASE WHEN n % 100 = 0 THEN now() - interval '1 day' END,
                    CASE WHEN n % 100 = 0 THEN 'keyCompromise' END,
                    now() + interval '90 days'
             FROM generate_series(1, {rows}) AS n;
             VACUUM ANALYZE certificate_status;"
        ),
    );
    eprintln!("inserted {rows} rows in {:?}", started.elapsed());
    let dir = tempfile::tempdir().unwrap();
    let reader = input(&section(&server, &password_file(dir.path()), HOME_GROWN_MAPPING));
    for attempt in 1..=3 {
        let started = std::time::Instant::now();
        let parsed = reader.read_blocking(InputRules::default()).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(parsed.records.len() as u64, rows);
        eprintln!(
            "read {rows} rows in {elapsed:?} ({:.0} rows/s), attempt {attempt}",
            rows as f64 / elapsed.as_secs_f64()
        );
    }
}

/// Stopping a watcher, by dropping the publisher's receiver or by aborting its task (what
/// the live publisher does on reload), closes its database connection: none is left behind.
#[test]
fn a_stopped_watcher_leaves_no_connection_behind() {
    let Some(server) = server("a_stopped_watcher_leaves_no_connection_behind") else {
        return;
    };
    load_home_grown(&server);
    let dir = tempfile::tempdir().unwrap();
    let password = password_file(dir.path());
    let connections =
        || server.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ocsp-edge publisher'");
    let listening = HOME_GROWN_MAPPING.replace(
        "table = \"certificate_status\"",
        "table = \"certificate_status\"\nnotify_channel = \"certificate_status_changed\"",
    );
    let polling = HOME_GROWN_MAPPING.replace(
        "table = \"certificate_status\"",
        "table = \"certificate_status\"\npoll_interval = \"200ms\"",
    );
    for (mode, mapping) in [("listen", &listening), ("poll", &polling)] {
        for stop in ["drop the receiver", "abort the task"] {
            let mut watcher = Watcher::start(&section(&server, &password, mapping));
            assert!(
                watcher.next(Duration::from_secs(20)).is_some(),
                "{mode}: connected"
            );
            assert_eq!(connections(), "1", "{mode}");
            match stop {
                "drop the receiver" => {
                    let Watcher {
                        runtime,
                        signals,
                        task,
                        ..
                    } = watcher;
                    drop(signals);
                    runtime
                        .block_on(async { tokio::time::timeout(Duration::from_secs(5), task).await })
                        .expect("the watcher ends once the publisher is gone")
                        .unwrap();
                    drop(runtime);
                }
                _ => {
                    watcher.task.abort();
                    // The runtime stays up: only the aborted task may close the connection.
                    assert!(
                        common::wait_until(Duration::from_secs(5), || connections() == "0"),
                        "{mode}, {stop}: the connection outlived the watcher"
                    );
                    drop(watcher);
                }
            }
            assert!(
                common::wait_until(Duration::from_secs(5), || connections() == "0"),
                "{mode}, {stop}: the connection outlived the watcher"
            );
        }
    }
}

/// A Unix socket directory as `host` (TLS off, as the configuration requires there).
#[test]
fn reads_over_a_unix_socket() {
    let Some(server) = server("reads_over_a_unix_socket") else {
        return;
    };
    load_home_grown(&server);
    let text = section(&server, "", HOME_GROWN_MAPPING).replace(
        "host = \"127.0.0.1\"",
        &format!("host = \"{}\"", server.socket_dir().display()),
    );
    let parsed = input(&text).read_blocking(InputRules::default()).unwrap();
    assert_eq!(parsed.records.len(), demo_index().records.len());
}
