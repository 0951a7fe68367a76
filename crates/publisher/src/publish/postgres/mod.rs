//! PostgreSQL as the CA's database: `[issuer.postgres]`.
//!
//! Owns connecting to the CA's database (credentials from a file or the environment, TLS
//! through rustls with the ring provider), reading every certificate's status in one
//! read-only snapshot transaction ([`read`]), and telling the live publisher when the
//! table may have changed ([`watch`]: LISTEN/NOTIFY or an incremental poll).
//!
//! Never writes to the database, never logs or returns the password (it is redacted in
//! `Debug` and appears in no error), and never yields a partial read: a read that does
//! not finish is an error, and the publisher keeps its last good snapshot.

pub mod read;
mod tls;
pub mod watch;

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The driver's TLS connector: one type for every `tls` mode (with `disable` it is never
/// asked to negotiate), so the connection type is the same everywhere.
type Connector = tokio_postgres_rustls::MakeRustlsConnect;
type TlsStream = <Connector as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream;
/// The connection half the caller must drive (its task) until the client is dropped.
pub type Connection = tokio_postgres::Connection<tokio_postgres::Socket, TlsStream>;

/// `[issuer.postgres]`: where the CA's database is and how its rows map to statuses.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A host name or IP address, or an absolute directory holding the server's Unix socket.
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub dbname: String,
    pub user: String,
    /// A file holding the password (one line; a final newline is not part of it).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The name of an environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// `verify-full` (the default): TLS, the server's certificate checked against
    /// `ca_file` and the host name. `require`: encrypted but unauthenticated (anyone on
    /// the path can impersonate the database). `disable`: no TLS (a Unix socket or loopback).
    #[serde(default)]
    pub tls: TlsMode,
    /// PEM certificates of the CAs that may issue the database server's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// The table (or view) to read, optionally `schema.table`. Exactly one of `table` and `query`.
    #[serde(default)]
    pub table: Option<String>,
    /// A SELECT returning the mapped columns by name (for schemas that need a join or a
    /// conversion, e.g. `to_timestamp(expireDate / 1000.0) AS not_after`).
    #[serde(default)]
    pub query: Option<String>,
    #[serde(default)]
    pub columns: ColumnMap,
    #[serde(default)]
    pub status_values: StatusValues,
    /// How a text serial column is written: `hex` (default) or `decimal` (EJBCA).
    #[serde(default)]
    pub serial_format: SerialFormat,
    /// LISTEN on this channel for changes (see docs/postgres.md for the trigger); without
    /// it the watcher polls `columns.updated_at`.
    #[serde(default)]
    pub notify_channel: Option<String>,
    /// How often the watcher polls `max(updated_at)` when there is no `notify_channel`.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: String,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: String,
    /// The longest wait between two reconnection attempts of the watcher.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: String,
}

fn default_port() -> u16 {
    5432
}
fn default_poll_interval() -> String {
    "1s".into()
}
fn default_connect_timeout() -> String {
    "10s".into()
}
fn default_reconnect_max() -> String {
    "30s".into()
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Disable,
    Require,
    #[default]
    VerifyFull,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SerialFormat {
    #[default]
    Hex,
    Decimal,
}

/// Which result column holds what. `serial`, `status` and `revoked_at` default to their
/// own names; the others are read only when named.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ColumnMap {
    #[serde(default = "serial_column")]
    pub serial: String,
    #[serde(default = "status_column")]
    pub status: String,
    #[serde(default = "revoked_at_column")]
    pub revoked_at: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub invalidity_date: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
    /// When the row last changed; needed by the poll watcher, not by a read.
    #[serde(default)]
    pub updated_at: Option<String>,
}

fn serial_column() -> String {
    "serial".into()
}
fn status_column() -> String {
    "status".into()
}
fn revoked_at_column() -> String {
    "revoked_at".into()
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap {
            serial: serial_column(),
            status: status_column(),
            revoked_at: revoked_at_column(),
            reason: None,
            invalidity_date: None,
            not_after: None,
            updated_at: None,
        }
    }
}

/// Which values of the status column (compared as text, so `20` matches an integer 20)
/// mean good, revoked and expired. A value in none of the lists stops the read.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatusValues {
    #[serde(default = "good_values")]
    pub good: Vec<String>,
    #[serde(default = "revoked_values")]
    pub revoked: Vec<String>,
    #[serde(default = "expired_values")]
    pub expired: Vec<String>,
}

fn good_values() -> Vec<String> {
    vec!["good".into(), "valid".into()]
}
fn revoked_values() -> Vec<String> {
    vec!["revoked".into()]
}
fn expired_values() -> Vec<String> {
    vec!["expired".into()]
}

impl Default for StatusValues {
    fn default() -> Self {
        StatusValues {
            good: good_values(),
            revoked: revoked_values(),
            expired: expired_values(),
        }
    }
}

/// A database password. Never printed: `Debug` shows `<redacted>` and there is no `Display`.
#[derive(Clone)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// What went wrong with the database, never including the password.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error("issuer {issuer:?}: [issuer.postgres] {problem}")]
    Config {
        issuer: String,
        #[source]
        problem: ConfigProblem,
    },
    /// Connecting, authenticating, querying or a lost connection; `kind` is the metric label.
    #[error("{target}: {message}")]
    Database {
        target: String,
        kind: ErrorKind,
        message: String,
    },
}

/// What is wrong with an `[issuer.postgres]` section or a file it names: the `problem` of
/// [`PostgresError::Config`]. The password variants name the file or the variable, never
/// the password.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    #[error("give exactly one of `table` and `query`")]
    TableOrQuery,
    #[error("table = {0:?} must be a name or schema.name (letters, digits, '_', '$')")]
    TableName(String),
    #[error("column {0:?} is not a plain identifier; with such names use `query` and quote them there")]
    ColumnName(String),
    #[error("the query returns no column {name:?} (columns.{role}); it returns {found:?}")]
    ColumnMissing {
        name: String,
        role: &'static str,
        found: Vec<String>,
    },
    #[error(
        "column {name:?} (columns.{role}) has type {found}, which cannot hold {expected}; convert it in `query`"
    )]
    ColumnType {
        name: String,
        role: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("notify_channel = {0:?} must be letters, digits and '_', starting with a letter or '_'")]
    NotifyChannel(String),
    #[error("without notify_channel the watcher polls columns.updated_at; map it (or set notify_channel)")]
    PollWithoutUpdatedAt,
    #[error(
        "host = {0:?} is a Unix socket directory, which carries no TLS; set tls = \"disable\" \
         (the socket's file permissions protect it)"
    )]
    TlsOverUnixSocket(String),
    #[error(
        "tls = \"verify-full\" (the default) needs ca_file, the CA that issued the database \
         server's certificate; for a Unix socket or loopback use tls = \"disable\""
    )]
    VerifyFullWithoutCaFile,
    #[error("status_values: {value:?} is listed under both {first} and {second}")]
    StatusValueTwice {
        value: String,
        first: &'static str,
        second: &'static str,
    },
    #[error("status_values: good and revoked each need at least one value")]
    StatusValuesMissing,
    #[error("{key} = {text:?} is not a duration above zero like 500ms, 1s or 5m")]
    Duration { key: &'static str, text: String },
    #[error("give at most one of password_file and password_env")]
    TwoPasswordSources,
    #[error("password_file {}: {source}", path.display())]
    PasswordFileUnreadable { path: PathBuf, source: std::io::Error },
    #[error("password_file {} must hold the password on one line", path.display())]
    PasswordNotOneLine { path: PathBuf },
    #[error("password_env = {0:?}: that environment variable is not set (or empty or not UTF-8)")]
    PasswordEnvUnset(String),
    /// rustls refused its own default protocol versions (a build without TLS 1.2 and 1.3).
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error("ca_file {}: {source}", path.display())]
    CaFileUnreadable { path: PathBuf, source: std::io::Error },
    #[error("ca_file {}: {source}", path.display())]
    CaFileNotPem { path: PathBuf, source: pem::PemError },
    #[error("ca_file {}: {source}", path.display())]
    CaFileCertificate { path: PathBuf, source: rustls::Error },
    #[error("ca_file {} holds no PEM CERTIFICATE", path.display())]
    CaFileWithoutCertificate { path: PathBuf },
}

/// The `kind` label of `ocsp_edge_publisher_input_errors_total` for a database input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Could not connect, negotiate TLS or authenticate.
    Connect,
    /// A statement failed (including a connection lost while it ran).
    Query,
    /// An established connection ended.
    Lost,
}

impl ErrorKind {
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Query => "query",
            ErrorKind::Lost => "connection_lost",
        }
    }
}

/// A `[issuer.postgres]` section checked and ready to connect.
#[derive(Clone, Debug)]
pub struct PostgresInput {
    pub issuer: String,
    pub config: PostgresConfig,
    password: Option<Password>,
    pub poll_interval: Duration,
    pub connect_timeout: Duration,
    pub reconnect_max: Duration,
}

impl PostgresConfig {
    /// Relative `password_file` and `ca_file` are relative to the configuration file.
    pub(crate) fn rebase(&mut self, base: &Path) {
        for path in [self.password_file.as_mut(), self.ca_file.as_mut()]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Checks the section and reads the password; `issuer` names it in messages.
    pub fn checked(&self, issuer: &str) -> Result<PostgresInput, PostgresError> {
        self.input(issuer).map_err(|problem| PostgresError::Config {
            issuer: issuer.to_string(),
            problem,
        })
    }

    fn input(&self, issuer: &str) -> Result<PostgresInput, ConfigProblem> {
        if self.table.is_some() == self.query.is_some() {
            return Err(ConfigProblem::TableOrQuery);
        }
        if let Some(table) = &self.table {
            read::quote_table(table).ok_or_else(|| ConfigProblem::TableName(table.clone()))?;
        }
        if self.notify_channel.is_none() && self.columns.updated_at.is_none() {
            // Not needed by a one-shot read, but `--watch` could never notice a change.
            tracing::debug!(
                issuer,
                "no notify_channel and no columns.updated_at: only a one-shot read works"
            );
        }
        if let Some(channel) = &self.notify_channel {
            if !is_plain_identifier(channel) {
                return Err(ConfigProblem::NotifyChannel(channel.clone()));
            }
        }
        if self.host.starts_with('/') && self.tls != TlsMode::Disable {
            // PostgreSQL answers a TLS request on its socket with "no": the connection
            // would fail at every attempt with a less helpful message.
            return Err(ConfigProblem::TlsOverUnixSocket(self.host.clone()));
        }
        if self.tls == TlsMode::VerifyFull && self.ca_file.is_none() {
            return Err(ConfigProblem::VerifyFullWithoutCaFile);
        }
        self.status_values.check()?;
        let duration = |key: &'static str, text: &str| {
            ocsp_edge_core::units::parse_duration(text)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| ConfigProblem::Duration {
                    key,
                    text: text.to_string(),
                })
        };
        Ok(PostgresInput {
            issuer: issuer.to_string(),
            poll_interval: duration("poll_interval", &self.poll_interval)?,
            connect_timeout: duration("connect_timeout", &self.connect_timeout)?,
            reconnect_max: duration("reconnect_max", &self.reconnect_max)?,
            password: self.password()?,
            config: self.clone(),
        })
    }

    fn password(&self) -> Result<Option<Password>, ConfigProblem> {
        match (&self.password_file, &self.password_env) {
            (Some(_), Some(_)) => Err(ConfigProblem::TwoPasswordSources),
            (None, None) => Ok(None),
            (Some(path), None) => {
                let text = std::fs::read_to_string(path).map_err(|source| {
                    ConfigProblem::PasswordFileUnreadable {
                        path: path.clone(),
                        source,
                    }
                })?;
                let line = text.strip_suffix('\n').unwrap_or(&text);
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.is_empty() || line.contains('\n') {
                    return Err(ConfigProblem::PasswordNotOneLine { path: path.clone() });
                }
                Ok(Some(Password(line.to_string())))
            }
            (None, Some(name)) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Some(Password(value))),
                _ => Err(ConfigProblem::PasswordEnvUnset(name.clone())),
            },
        }
    }
}

impl StatusValues {
    fn check(&self) -> Result<(), ConfigProblem> {
        let mut seen = std::collections::HashMap::new();
        for (list, values) in [
            ("good", &self.good),
            ("revoked", &self.revoked),
            ("expired", &self.expired),
        ] {
            for value in values {
                if let Some(first) = seen.insert(value.as_str(), list) {
                    return Err(ConfigProblem::StatusValueTwice {
                        value: value.clone(),
                        first,
                        second: list,
                    });
                }
            }
        }
        if self.good.is_empty() || self.revoked.is_empty() {
            return Err(ConfigProblem::StatusValuesMissing);
        }
        Ok(())
    }
}

/// A SQL identifier we can put in a statement without quoting surprises.
fn is_plain_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 63
}

impl PostgresInput {
    /// `postgres://user@host:port/dbname`: how messages and logs name the database (no password).
    pub fn target(&self) -> String {
        let c = &self.config;
        format!("postgres://{}@{}:{}/{}", c.user, c.host, c.port, c.dbname)
    }

    /// `problem` as this issuer's configuration error.
    pub(crate) fn config_error(&self, problem: ConfigProblem) -> PostgresError {
        PostgresError::Config {
            issuer: self.issuer.clone(),
            problem,
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind, error: &tokio_postgres::Error) -> PostgresError {
        PostgresError::Database {
            target: self.target(),
            kind,
            message: describe(error),
        }
    }

    /// Connects and authenticates. The caller drives the returned [`Connection`] (spawn it)
    /// for as long as it uses the client.
    pub async fn connect(&self) -> Result<(tokio_postgres::Client, Connection), PostgresError> {
        let connector = tls::connector(self).map_err(|problem| self.config_error(problem))?;
        let c = &self.config;
        let mut driver = tokio_postgres::Config::new();
        driver
            .host(&c.host)
            .port(c.port)
            .dbname(&c.dbname)
            .user(&c.user)
            .application_name("ocsp-edge publisher")
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .ssl_mode(match c.tls {
                TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
                TlsMode::Require | TlsMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        if let Some(Password(password)) = &self.password {
            driver.password(password.as_bytes());
        }
        driver
            .connect(connector)
            .await
            .map_err(|e| self.error(ErrorKind::Connect, &e))
    }
}

/// The driver's message with its causes ("error connecting to server: Connection refused"),
/// which carry the server's words but never the password.
fn describe(error: &tokio_postgres::Error) -> String {
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> PostgresConfig {
        toml::from_str(text).unwrap()
    }

    const MINIMAL: &str =
        "host = \"127.0.0.1\"\ndbname = \"ca\"\nuser = \"reader\"\ntls = \"disable\"\ntable = \"certs\"\n";

    #[test]
    fn password_is_redacted_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret-Value\n").unwrap();
        let mut c = config(MINIMAL);
        c.password_file = Some(file);
        let input = c.checked("ec").unwrap();
        assert_eq!(
            input.password.as_ref().map(|p| p.0.as_str()),
            Some("s3cret-Value")
        );
        let debug = format!("{input:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn configuration_mistakes_are_named() {
        let cases = [
            (
                MINIMAL.replace("table = \"certs\"\n", ""),
                "exactly one of `table` and `query`",
            ),
            (
                MINIMAL.to_string() + "query = \"SELECT 1\"\n",
                "exactly one of `table` and `query`",
            ),
            (MINIMAL.replace("tls = \"disable\"\n", ""), "needs ca_file"),
            (
                MINIMAL
                    .replace("127.0.0.1", "/var/run/postgresql")
                    .replace("tls = \"disable\"\n", ""),
                "carries no TLS",
            ),
            (MINIMAL.replace("certs", "certs; DROP TABLE x"), "must be a name"),
            (
                MINIMAL.to_string() + "notify_channel = \"a-b\"\n",
                "notify_channel",
            ),
            (MINIMAL.to_string() + "poll_interval = \"0s\"\n", "poll_interval"),
            (
                MINIMAL.to_string() + "password_file = \"/nonexistent/pw\"\npassword_env = \"X\"\n",
                "at most one",
            ),
            (
                MINIMAL.to_string() + "password_env = \"OCSP_EDGE_TEST_UNSET_VARIABLE\"\n",
                "not set",
            ),
            (
                MINIMAL.to_string() + "[status_values]\ngood = [\"20\"]\nrevoked = [\"20\"]\n",
                "both good and revoked",
            ),
        ];
        for (text, expected) in cases {
            let err = config(&text).checked("ec").unwrap_err().to_string();
            assert!(err.contains(expected) && err.contains("\"ec\""), "{text}: {err}");
        }
    }

    #[test]
    fn password_file_mistakes_name_the_file_and_never_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let two_lines = dir.path().join("two-lines");
        std::fs::write(&two_lines, "s3cret-Value\nmore\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let missing = dir.path().join("missing");
        let with_file = |path: &Path| {
            let mut c = config(MINIMAL);
            c.password_file = Some(path.to_path_buf());
            c.checked("ec").unwrap_err()
        };
        for file in [&two_lines, &empty] {
            let err = with_file(file);
            assert!(
                matches!(&err, PostgresError::Config { problem: ConfigProblem::PasswordNotOneLine { path }, .. } if path == file),
                "{err:?}"
            );
            let shown = err.to_string();
            assert!(shown.ends_with("must hold the password on one line"), "{shown}");
            assert!(
                !shown.contains("s3cret") && !format!("{err:?}").contains("s3cret"),
                "{shown}"
            );
        }
        let err = with_file(&missing);
        assert!(
            matches!(
                &err,
                PostgresError::Config {
                    problem: ConfigProblem::PasswordFileUnreadable { .. },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains(&format!("password_file {}: ", missing.display())),
            "{err}"
        );
    }

    #[test]
    fn status_values_need_good_and_revoked() {
        let text = MINIMAL.to_string() + "[status_values]\ngood = []\nrevoked = [\"r\"]\n";
        let err = config(&text).checked("ec").unwrap_err();
        assert!(
            matches!(
                err,
                PostgresError::Config {
                    problem: ConfigProblem::StatusValuesMissing,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "issuer \"ec\": [issuer.postgres] status_values: good and revoked each need at least one value"
        );
    }

    /// The verify-full connector names the `ca_file` it cannot use, and why.
    #[test]
    fn unusable_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let cases = [
            (dir.path().join("missing.pem"), "CaFileUnreadable"),
            (
                write("no-pem.pem", "not PEM at all\n"),
                "CaFileWithoutCertificate",
            ),
            (
                write(
                    "key-only.pem",
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                ),
                "CaFileWithoutCertificate",
            ),
            (
                write(
                    "bad-base64.pem",
                    "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
                ),
                "CaFileNotPem",
            ),
            (
                write(
                    "not-der.pem",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
                "CaFileCertificate",
            ),
        ];
        for (path, variant) in cases {
            let mut c = config(&MINIMAL.replace("tls = \"disable\"\n", ""));
            c.ca_file = Some(path.clone());
            let input = c.checked("ec").unwrap();
            let problem = tls::connector(&input).err().expect("no connector");
            assert!(
                format!("{problem:?}").starts_with(variant),
                "{variant}: {problem:?}"
            );
            let shown = problem.to_string();
            assert!(
                shown.starts_with(&format!("ca_file {}", path.display())),
                "{shown}"
            );
            let wrapped = input.config_error(problem).to_string();
            assert!(
                wrapped.starts_with("issuer \"ec\": [issuer.postgres] ca_file "),
                "{wrapped}"
            );
        }
        // rustls' own refusal keeps its words behind "TLS: " (the ring provider never refuses).
        let refused = ConfigProblem::Tls(rustls::Error::General("no protocol versions".into()));
        assert_eq!(refused.to_string(), "TLS: unexpected error: no protocol versions");
    }

    #[test]
    fn target_names_user_host_and_database_only() {
        let input = config(MINIMAL).checked("ec").unwrap();
        assert_eq!(input.target(), "postgres://reader@127.0.0.1:5432/ca");
    }
}
