//! The responder's configuration: one typed struct, layered defaults < TOML file <
//! environment (`OCSP_EDGE__SECTION__KEY`) < command-line flags, and validated before any
//! port is bound. Unknown keys are errors (a typo must not silently fall back to a default).

use ocsp_edge_core::pki::Certificate;
use ocsp_edge_core::responder::NoncePolicy;
use ocsp_edge_core::snapshot::TrustAnchors;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Built-in defaults; also the reference for every key (docs/configuration in the README).
pub const DEFAULTS: &str = r#"
[server]
listen = "127.0.0.1:8080"
admin_listen = "127.0.0.1:8081"
max_connections = 10000
header_read_timeout = "10s"
body_read_timeout = "10s"
max_request_bytes = 16384
drain_grace = "5s"
drain_deadline = "10s"

[snapshots]
dir = ""
trust = []
poll_interval = "2s"
not_ready_before_expiry = "1h"
keep = 3
danger_allow_rollback = false
max_backoff = "5m"
long_poll = "25s"
download_deadline = "30s"
min_download_rate = 262144
changes_long_polls_per_client = 4
changes_max_records = 10000
max_sequence_skew = "1d"
sources = []

[ocsp]
path = "/"
nonce = "ignore"
cache_max_age = "1h"

[crl]
cache_max_age = "1h"

[log]
format = "text"
level = "info"
"#;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub snapshots: SnapshotConfig,
    pub ocsp: OcspConfig,
    pub crl: CrlServeConfig,
    pub log: LogConfig,
    /// Present: this responder is a cache in front of hub responders (see the `cache`
    /// module) and serves no snapshot of its own.
    #[serde(default)]
    pub cache: Option<CacheConfig>,
}

/// `[cache]`: a responder that reads responses through from hubs into a bounded cache.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Hub responders, in order of preference. Needs a restart to change.
    pub hubs: Vec<HubConfig>,
    /// Most responses held (each ~1 KB, two per certificate when clients use both CertID
    /// hashes). Needs a restart to change.
    #[serde(default = "default_cache_capacity")]
    pub capacity: u64,
    /// Deadline for one fill from one hub (then the next hub is tried).
    #[serde(
        default = "default_cache_request_timeout",
        deserialize_with = "ocsp_edge_core::units::serde::duration"
    )]
    pub request_timeout: Duration,
    /// How long one change-feed request may wait at the hub for a newer sequence (the
    /// hub caps it at its own `snapshots.long_poll`).
    #[serde(
        default = "default_cache_change_wait",
        deserialize_with = "ocsp_edge_core::units::serde::duration"
    )]
    pub change_wait: Duration,
}

/// One hub responder.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Its OCSP URL (requests are POSTed here).
    pub ocsp: String,
    /// Its admin listener's base URL, ending in '/' (`<admin>changes` is the change feed).
    pub admin: String,
    /// Extra CA certificate(s) (PEM) to trust for HTTPS hubs.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_cache_capacity() -> u64 {
    100_000
}

fn default_cache_request_timeout() -> Duration {
    Duration::from_secs(2)
}

fn default_cache_change_wait() -> Duration {
    Duration::from_secs(25)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlServeConfig {
    /// Upper bound for a CRL's `Cache-Control: max-age` (never past its nextUpdate either).
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub cache_max_age: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// Connections beyond this wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Also closes idle keep-alive connections (hyper applies it between requests).
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub header_read_timeout: Duration,
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub body_read_timeout: Duration,
    /// Larger POST bodies get `malformedRequest` without being read.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::size_usize")]
    pub max_request_bytes: usize,
    /// After SIGTERM: readiness is false at once, but connections are still accepted this
    /// long, so load balancers see the failing probe before the listener goes away.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub drain_grace: Duration,
    /// Then in-flight and keep-alive requests get this long to finish.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub drain_deadline: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Directory the publisher writes to (or a replica of it).
    pub dir: PathBuf,
    /// PEM files of the issuer certificates this responder answers for.
    pub trust: Vec<PathBuf>,
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub poll_interval: Duration,
    /// Readiness turns false this long before the earliest nextUpdate, so a load balancer
    /// drains the responder before anything could go stale.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub not_ready_before_expiry: Duration,
    /// Snapshots kept in `dir` when it is fed by `sources` (a restart serves the newest
    /// with every source down).
    pub keep: usize,
    /// Ignore, once, the highest sequence served before (a deliberate rollback: delete the
    /// newer snapshots from `dir`, start with this set, then unset it). Never leave it on.
    pub danger_allow_rollback: bool,
    /// Longest wait between attempts on a failing source (exponential backoff, jittered).
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub max_backoff: Duration,
    /// How long a peer may hold a manifest request open waiting for a newer snapshot.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub long_poll: Duration,
    /// A snapshot download from a source must finish within this plus its size at
    /// `min_download_rate`; a slower source is abandoned for the round (and retried with
    /// backoff), so a dripping mirror holds nothing up for long.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub download_deadline: Duration,
    /// Bytes per second a source must at least sustain (see `download_deadline`).
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::size")]
    pub min_download_rate: u64,
    /// Change-feed (`/changes`) requests one client address may hold waiting at once; more
    /// are answered `429` with `Retry-After`. A cache holds one.
    pub changes_long_polls_per_client: usize,
    /// Most change records in one `/changes` answer; a longer history is sent in pages.
    pub changes_max_records: usize,
    /// How far beyond now a snapshot's sequence (unix seconds at publish) and creation
    /// time may be: a manifest claiming more is refused (`future_sequence`), so that not
    /// even a signed one can lift the anti-rollback floor beyond every genuine publish.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub max_sequence_skew: Duration,
    /// Where snapshots come from, in order of preference. Empty: `dir` itself is written by
    /// the publisher (or a replica of it) and only polled.
    pub sources: Vec<SourceConfig>,
}

/// One replication source.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// A directory the publisher writes to (a local disk, NFS, a synced folder).
    Directory { path: PathBuf },
    /// Any HTTP(S) origin serving a publisher's directory: a static web server, a CDN, a
    /// public bucket. Polled with conditional GETs of `latest.manifest.json`.
    Http {
        url: String,
        /// Extra CA certificate(s) (PEM) to trust for HTTPS, e.g. a private origin's.
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// Another ocsp-edge responder's admin listener (`/snapshots/`), long-polled so a new
    /// snapshot propagates as soon as the peer has it.
    Peer {
        url: String,
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// S3-compatible object storage a publisher uploads to (see [`ocsp_edge_transport::s3`]).
    S3(ocsp_edge_transport::s3::S3Config),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OcspConfig {
    /// URL path prefix for OCSP (GET `<path><base64>`, POST `<path>`).
    pub path: String,
    pub nonce: NoncePolicy,
    /// Upper bound for `Cache-Control: max-age` (it never reaches past nextUpdate either):
    /// how long a CDN may keep a `good` answer after a revocation is published.
    #[serde(deserialize_with = "ocsp_edge_core::units::serde::duration")]
    pub cache_max_age: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter directive, e.g. `info` or `ocsp_edge=debug`.
    pub level: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(String),
    #[error("{key}: {problem}")]
    Invalid { key: &'static str, problem: String },
}

/// Where configuration comes from besides the defaults.
#[derive(Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// Environment variables (the process environment in production; a map in tests).
    pub environment: HashMap<String, String>,
    /// `key.path` → value, from command-line flags; highest precedence.
    pub overrides: Vec<(&'static str, config::Value)>,
}

impl Config {
    /// Layers the sources and validates the result.
    pub fn load(sources: Sources) -> Result<Config, ConfigError> {
        use config::{Environment, File, FileFormat};
        let mut builder = config::Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        if let Some(path) = &sources.file {
            builder = builder.add_source(File::from(path.as_path()).format(FileFormat::Toml).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("OCSP_EDGE")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("snapshots.trust")
                .try_parsing(true)
                .source(Some(sources.environment.into_iter().collect())),
        );
        for (key, value) in sources.overrides {
            builder = builder
                .set_override(key, value)
                .map_err(|e| ConfigError::Load(e.to_string()))?;
        }
        let raw = builder.build().map_err(|e| ConfigError::Load(e.to_string()))?;
        let config: Config = raw
            .try_deserialize()
            .map_err(|e| ConfigError::Load(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: &str| {
            Err(ConfigError::Invalid {
                key,
                problem: problem.to_string(),
            })
        };
        if let Some(cache) = &self.cache {
            self.validate_cache(cache)?;
        } else if self.snapshots.dir.as_os_str().is_empty() {
            return invalid(
                "snapshots.dir",
                "required: the directory holding snapshots (--snapshots)",
            );
        }
        if self.cache.is_none() && !self.snapshots.dir.is_dir() {
            return invalid(
                "snapshots.dir",
                &format!("{} is not a directory", self.snapshots.dir.display()),
            );
        }
        if self.snapshots.trust.is_empty() {
            return invalid(
                "snapshots.trust",
                "required: at least one issuer certificate (--trust)",
            );
        }
        if self.snapshots.poll_interval < Duration::from_millis(100) {
            return invalid("snapshots.poll_interval", "must be at least 100ms");
        }
        if !(self.ocsp.path.starts_with('/') && self.ocsp.path.ends_with('/')) {
            return invalid(
                "ocsp.path",
                "must start and end with '/', e.g. \"/\" or \"/ocsp/\"",
            );
        }
        if self.snapshots.min_download_rate == 0 {
            return invalid(
                "snapshots.min_download_rate",
                "must be at least 1 (bytes per second)",
            );
        }
        if !(64..=1 << 20).contains(&self.server.max_request_bytes) {
            return invalid("server.max_request_bytes", "must be between 64 and 1048576");
        }
        for source in &self.snapshots.sources {
            match source {
                SourceConfig::Http { url, .. } | SourceConfig::Peer { url, .. }
                    if !(url.starts_with("http://") || url.starts_with("https://"))
                        || !url.ends_with('/') =>
                {
                    return invalid(
                        "snapshots.sources",
                        &format!("{url:?} must be an http(s) URL ending in '/'"),
                    );
                }
                SourceConfig::Directory { path } if path == &self.snapshots.dir => {
                    return invalid(
                        "snapshots.sources",
                        "a directory source must differ from snapshots.dir (the local cache)",
                    );
                }
                _ => {}
            }
        }
        if self.snapshots.max_sequence_skew < Duration::from_secs(60) {
            return invalid(
                "snapshots.max_sequence_skew",
                "must be at least 1m (publisher and responder clocks differ a little)",
            );
        }
        if self.snapshots.keep == 0 {
            return invalid("snapshots.keep", "must be at least 1");
        }
        if self.snapshots.changes_long_polls_per_client == 0 {
            return invalid("snapshots.changes_long_polls_per_client", "must be at least 1");
        }
        if self.snapshots.changes_max_records == 0 {
            return invalid("snapshots.changes_max_records", "must be at least 1");
        }
        if self.server.max_connections == 0 {
            return invalid("server.max_connections", "must be at least 1");
        }
        if self.server.header_read_timeout.is_zero() || self.server.body_read_timeout.is_zero() {
            return invalid("server.header_read_timeout", "timeouts must be positive");
        }
        if self.server.listen == self.server.admin_listen && self.server.listen.port() != 0 {
            return invalid("server.admin_listen", "must differ from server.listen");
        }
        self.trust_anchors().map(|_| ())
    }

    /// Cache mode holds no snapshots: it must not also be given a snapshot directory or
    /// replication sources, which would suggest it serves them.
    fn validate_cache(&self, cache: &CacheConfig) -> Result<(), ConfigError> {
        let invalid = |key, problem: String| Err(ConfigError::Invalid { key, problem });
        if !self.snapshots.dir.as_os_str().is_empty() {
            return invalid(
                "snapshots.dir",
                "a cache-mode responder ([cache]) serves no snapshot directory: remove \
                 snapshots.dir (--snapshots) or the [cache] section"
                    .into(),
            );
        }
        if !self.snapshots.sources.is_empty() {
            return invalid(
                "snapshots.sources",
                "a cache-mode responder ([cache]) replicates no snapshots: remove \
                 [[snapshots.sources]] or the [cache] section"
                    .into(),
            );
        }
        if cache.hubs.is_empty() {
            return invalid(
                "cache.hubs",
                "at least one hub: [[cache.hubs]] with ocsp and admin URLs".into(),
            );
        }
        let http = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        for hub in &cache.hubs {
            if !http(&hub.ocsp) || url::Url::parse(&hub.ocsp).is_err() {
                return invalid(
                    "cache.hubs",
                    format!("ocsp {:?} must be an http(s) URL", hub.ocsp),
                );
            }
            if !http(&hub.admin) || !hub.admin.ends_with('/') || url::Url::parse(&hub.admin).is_err() {
                return invalid(
                    "cache.hubs",
                    format!("admin {:?} must be an http(s) URL ending in '/'", hub.admin),
                );
            }
            if let Some(path) = &hub.ca_file {
                if !path.is_file() {
                    return invalid("cache.hubs", format!("ca_file {} is not a file", path.display()));
                }
            }
        }
        if cache.capacity == 0 {
            return invalid("cache.capacity", "must be at least 1".into());
        }
        if cache.request_timeout.is_zero() {
            return invalid("cache.request_timeout", "must be positive".into());
        }
        if cache.change_wait < Duration::from_secs(1) {
            return invalid(
                "cache.change_wait",
                "must be at least 1s (it is how long the hub holds each change-feed request)".into(),
            );
        }
        Ok(())
    }

    /// Reads the `snapshots.trust` certificates.
    pub fn trust_anchors(&self) -> Result<TrustAnchors, ConfigError> {
        let mut anchors = Vec::new();
        for path in &self.snapshots.trust {
            anchors.extend(read_certificates(path)?);
        }
        Ok(TrustAnchors::new(anchors).with_max_sequence_skew(self.snapshots.max_sequence_skew))
    }
}

fn read_certificates(path: &Path) -> Result<Vec<Certificate>, ConfigError> {
    let problem = |p: String| ConfigError::Invalid {
        key: "snapshots.trust",
        problem: format!("{}: {p}", path.display()),
    };
    let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
    Certificate::all_from_pem(&text).map_err(|e| problem(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_trust() -> String {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/demo/ec/ca.pem")
            .display()
            .to_string()
    }

    fn with_required(dir: &Path) -> Sources {
        Sources {
            overrides: vec![
                ("snapshots.dir", dir.display().to_string().into()),
                ("snapshots.trust", vec![demo_trust()].into()),
            ],
            ..Sources::default()
        }
    }

    #[test]
    fn defaults_plus_required_flags_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(with_required(dir.path())).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.ocsp.cache_max_age, Duration::from_secs(3600));
        assert_eq!(config.ocsp.nonce, NoncePolicy::Ignore);
        assert_eq!(config.trust_anchors().unwrap().issuers().len(), 1);
        assert_eq!(
            config.trust_anchors().unwrap().max_sequence_skew(),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn file_then_environment_then_flags_take_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge.toml");
        std::fs::write(
            &file,
            "[ocsp]\ncache_max_age = \"10m\"\npath = \"/ocsp/\"\n[server]\nmax_connections = 5\n",
        )
        .unwrap();
        let mut sources = with_required(dir.path());
        sources.file = Some(file);
        sources
            .environment
            .insert("OCSP_EDGE__OCSP__PATH".into(), "/env/".into());
        sources
            .environment
            .insert("OCSP_EDGE__SERVER__MAX_CONNECTIONS".into(), "7".into());
        sources.overrides.push(("server.max_connections", 9.into()));
        let config = Config::load(sources).unwrap();
        assert_eq!(config.ocsp.cache_max_age, Duration::from_secs(600), "file");
        assert_eq!(config.ocsp.path, "/env/", "environment over file");
        assert_eq!(config.server.max_connections, 9, "flags over environment");
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&'static str, config::Value, &str)> = vec![
            ("ocsp.path", "ocsp".into(), "ocsp.path"),
            ("server.max_request_bytes", 10.into(), "server.max_request_bytes"),
            ("snapshots.poll_interval", "soon".into(), "soon"),
            ("ocsp.nonce", "maybe".into(), "maybe"),
            ("snapshots.trust", Vec::<String>::new().into(), "snapshots.trust"),
            ("snapshots.dir", "/nonexistent/ocsp-edge".into(), "snapshots.dir"),
            (
                "snapshots.max_sequence_skew",
                "10s".into(),
                "snapshots.max_sequence_skew",
            ),
        ];
        for (key, value, expected) in cases {
            let mut sources = with_required(dir.path());
            sources.overrides.push((key, value));
            let err = Config::load(sources).err().unwrap().to_string();
            assert!(err.contains(expected), "{key}: {err}");
        }
    }

    #[test]
    fn durations_and_sizes_use_the_one_grammar_of_every_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let mut sources = with_required(dir.path());
        sources.environment = HashMap::from([
            (
                "OCSP_EDGE__SERVER__MAX_REQUEST_BYTES".to_string(),
                "64KiB".to_string(),
            ),
            (
                "OCSP_EDGE__SNAPSHOTS__MIN_DOWNLOAD_RATE".to_string(),
                "1MB".to_string(),
            ),
            (
                "OCSP_EDGE__SNAPSHOTS__POLL_INTERVAL".to_string(),
                "1s500ms".to_string(),
            ),
            ("OCSP_EDGE__SERVER__DRAIN_GRACE".to_string(), "500ms".to_string()),
            (
                "OCSP_EDGE__SNAPSHOTS__MAX_SEQUENCE_SKEW".to_string(),
                "1h30m".to_string(),
            ),
        ]);
        let config = Config::load(sources).unwrap();
        assert_eq!(config.server.max_request_bytes, 65_536);
        assert_eq!(config.snapshots.min_download_rate, 1_000_000);
        assert_eq!(config.snapshots.poll_interval, Duration::from_millis(1_500));
        assert_eq!(config.server.drain_grace, Duration::from_millis(500));
        assert_eq!(config.snapshots.max_sequence_skew, Duration::from_secs(5_400));

        for (key, value) in [
            ("server.drain_grace", "5 minutes"),
            ("snapshots.long_poll", "30m1h"),
            ("server.max_request_bytes", "16kb"),
            ("snapshots.min_download_rate", "fast"),
        ] {
            let mut sources = with_required(dir.path());
            sources.overrides.push((key, value.into()));
            let err = Config::load(sources).err().unwrap().to_string();
            assert!(
                err.contains(key) && err.contains(&format!("{value:?}")),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("edge.toml");
        std::fs::write(&file, "[ocsp]\ncache_max_agee = \"10m\"\n").unwrap();
        let mut sources = with_required(dir.path());
        sources.file = Some(file);
        let err = Config::load(sources).err().unwrap().to_string();
        assert!(err.contains("cache_max_agee"), "{err}");
    }

    /// Sources for a cache-mode responder: the demo trust, no snapshot directory, and
    /// `toml` as the file.
    fn cache_mode(dir: &Path, toml: &str) -> Sources {
        let file = dir.join("cache.toml");
        std::fs::write(&file, toml).unwrap();
        Sources {
            file: Some(file),
            overrides: vec![("snapshots.trust", vec![demo_trust()].into())],
            ..Sources::default()
        }
    }

    const ONE_HUB: &str =
        "[cache]\n[[cache.hubs]]\nocsp = \"http://127.0.0.1:8080/\"\nadmin = \"http://127.0.0.1:8081/\"\n";

    #[test]
    fn a_cache_section_makes_a_cache_mode_responder() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(cache_mode(dir.path(), ONE_HUB)).unwrap();
        let cache = config.cache.unwrap();
        assert_eq!(cache.hubs.len(), 1);
        assert_eq!(cache.capacity, 100_000);
        assert_eq!(cache.request_timeout, Duration::from_secs(2));
        assert_eq!(cache.change_wait, Duration::from_secs(25));
        let mut sources = cache_mode(dir.path(), ONE_HUB);
        sources
            .environment
            .insert("OCSP_EDGE__CACHE__CAPACITY".into(), "500".into());
        assert_eq!(Config::load(sources).unwrap().cache.unwrap().capacity, 500);
        assert!(Config::load(with_required(dir.path())).unwrap().cache.is_none());
    }

    #[test]
    fn cache_mode_errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let with = |keys: &str| ONE_HUB.replacen("[cache]\n", &format!("[cache]\n{keys}"), 1);
        let cases = [
            (with("capacity = 0\n"), "cache.capacity"),
            (with("change_wait = \"500ms\"\n"), "cache.change_wait"),
            (with("request_timeout = \"soon\"\n"), "soon"),
            (with("capacty = 5\n"), "capacty"),
            ("[cache]\nhubs = []\n".to_string(), "cache.hubs"),
            ("[cache]\ncapacity = 5\n".to_string(), "hubs"),
            (
                "[cache]\n[[cache.hubs]]\nocsp = \"ftp://x/\"\nadmin = \"http://x/\"\n".to_string(),
                "cache.hubs",
            ),
            (
                "[cache]\n[[cache.hubs]]\nocsp = \"http://x/\"\nadmin = \"http://x/admin\"\n".to_string(),
                "cache.hubs",
            ),
            (format!("{ONE_HUB}oscp = \"http://x/\"\n"), "oscp"),
            (
                format!("{ONE_HUB}[[snapshots.sources]]\nkind = \"peer\"\nurl = \"http://x/snapshots/\"\n"),
                "snapshots.sources",
            ),
        ];
        for (toml, expected) in cases {
            let err = Config::load(cache_mode(dir.path(), &toml))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(expected), "{toml}: {err}");
        }
        // --snapshots together with [cache]: which one is meant?
        let mut both = cache_mode(dir.path(), ONE_HUB);
        both.overrides
            .push(("snapshots.dir", dir.path().display().to_string().into()));
        let err = Config::load(both).err().unwrap().to_string();
        assert!(err.contains("snapshots.dir") && err.contains("[cache]"), "{err}");
        // Trust is still required: it is what every hub answer is verified against.
        let mut untrusted = cache_mode(dir.path(), ONE_HUB);
        untrusted.overrides.clear();
        let err = Config::load(untrusted).err().unwrap().to_string();
        assert!(err.contains("snapshots.trust"), "{err}");
    }

    #[test]
    fn the_shipped_cache_configuration_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/cache.toml");
        let mut sources = cache_mode(dir.path(), "");
        sources.file = Some(path.clone());
        let config = Config::load(sources).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(config.cache.is_some());
    }

    #[test]
    fn shipped_sample_configurations_parse() {
        let dir = tempfile::tempdir().unwrap();
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
        let mut seen = 0;
        for entry in std::fs::read_dir(&samples).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml")
                && path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("responder"))
            {
                let mut sources = with_required(dir.path());
                sources.file = Some(path.clone());
                Config::load(sources).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                seen += 1;
            }
        }
        assert!(seen >= 1, "no sample responder configuration in deploy/");
    }
}
