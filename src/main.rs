//! The `ocsp-edge` command: publish, serve, demo, check-config. Parses flags, sets up
//! logging, and hands over to the library. Every failure leaves with the exit code of its
//! category, and the categories are mapped to numbers in one place: [`exit`] (the README's
//! table is its documentation).

use clap::{Args, Parser, Subcommand};
use ocsp_edge::config::{Config, ConfigError, LogFormat, Sources};
use ocsp_edge::publish::{publish, IssuerConfig, PublishConfig, PublishError};
use ocsp_edge::server;
use ocsp_edge::time::UnixTime;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use exit::{EX_DATAERR, EX_IOERR, EX_UNAVAILABLE, EX_USAGE};

/// The one map from failures to exit codes: sysexits(3) categories (usage 64, bad data
/// 65, unavailable 69, software 70, I/O 74, temporary 75) and one code for each HSM
/// failure an operator must handle differently (80–84). The README's table documents it.
mod exit {
    use ocsp_edge::publish::hsm::HsmError;
    use ocsp_edge::publish::postgres::PostgresError;
    use ocsp_edge::publish::PublishError;
    use ocsp_edge::s3::S3Error;

    /// Bad flags or configuration (also a bad PKCS#11 URI or an unreadable PIN source).
    pub const EX_USAGE: u8 = 64;
    /// Bad input data, a snapshot that does not verify, a publish the rails refuse, a
    /// token key that is not the certificate's.
    pub const EX_DATAERR: u8 = 65;
    /// `status`: the responder is unreachable or not ready. `publish`: the CA's database
    /// cannot be reached, refused the login, or failed (or lost the connection) mid-read.
    pub const EX_UNAVAILABLE: u8 = 69;
    /// A key that loaded and matched its certificate failed to sign, or an encoder
    /// failed: a fault in the publisher or its key, never in what the operator typed.
    pub const EX_SOFTWARE: u8 = 70;
    /// Reading or writing files, sockets or object storage failed.
    pub const EX_IOERR: u8 = 74;
    /// Try again later: the token went away while signing, another publisher was faster.
    pub const EX_TEMPFAIL: u8 = 75;
    /// The PKCS#11 module is missing or not a PKCS#11 library.
    pub const HSM_MODULE: u8 = 80;
    /// No token (or several) matches.
    pub const HSM_TOKEN: u8 = 81;
    /// The token refused the PIN, or the PIN is locked (never retried).
    pub const HSM_PIN: u8 = 82;
    /// No key (or several) matches.
    pub const HSM_KEY: u8 = 83;
    /// The token lacks the mechanism signing with this key needs.
    pub const HSM_MECHANISM: u8 = 84;

    pub fn publish(error: &PublishError) -> u8 {
        match error {
            PublishError::Config(_) => EX_USAGE,
            PublishError::File { .. }
            | PublishError::Input(_)
            | PublishError::Refused(_)
            | PublishError::Sequence(_)
            | PublishError::Crl(_)
            | PublishError::CertificateHold { .. }
            | PublishError::Base(_) => EX_DATAERR,
            PublishError::Signing(_) | PublishError::Encoding { .. } => EX_SOFTWARE,
            PublishError::Io(_) => EX_IOERR,
            PublishError::Postgres(PostgresError::Config { .. }) => EX_USAGE,
            PublishError::Postgres(PostgresError::Database { .. }) => EX_UNAVAILABLE,
            PublishError::Hsm(hsm) => self::hsm(hsm),
            // Another publisher holds the store's lease, or shutdown stopped the publish.
            PublishError::Fenced(_) => EX_TEMPFAIL,
        }
    }

    pub fn hsm(error: &HsmError) -> u8 {
        match error {
            HsmError::Uri(_) | HsmError::PinSource { .. } => EX_USAGE,
            HsmError::Module { .. } => HSM_MODULE,
            HsmError::Token { .. } => HSM_TOKEN,
            HsmError::PinIncorrect { .. } | HsmError::PinLocked { .. } => HSM_PIN,
            HsmError::KeyNotFound { .. } | HsmError::KeyAmbiguous { .. } => HSM_KEY,
            HsmError::MechanismUnsupported { .. } => HSM_MECHANISM,
            HsmError::KeyMismatch { .. } => EX_DATAERR,
            HsmError::TokenGone { .. } => EX_TEMPFAIL,
            HsmError::Pkcs11 { .. } => EX_IOERR,
        }
    }

    pub fn s3(error: &S3Error) -> u8 {
        match error {
            S3Error::Config(_) => EX_USAGE,
            S3Error::Http(_) | S3Error::Io(_) => EX_IOERR,
            S3Error::Newer { .. } => EX_TEMPFAIL,
        }
    }
}

#[derive(Parser)]
#[command(
    name = "ocsp-edge",
    version,
    about = "Pre-signed OCSP from verified snapshots: publisher and edge responder"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a response for every certificate of one or more CAs and write a snapshot.
    Publish(Box<PublishArgs>),
    /// Serve OCSP from the newest verified snapshot in a directory, hot-swapping newer ones.
    Serve(ServeArgs),
    /// Publish the bundled demo PKI and serve it on 127.0.0.1:8080 (admin on :8081).
    Demo(DemoArgs),
    /// Validate a responder configuration without starting.
    CheckConfig(ServeArgs),
    /// Describe a snapshot (a manifest, snapshot file or directory), verify it, look up a serial.
    Inspect(InspectArgs),
    /// Ask a running responder (its admin URL) what it serves.
    Status(StatusArgs),
}

#[derive(Args)]
struct InspectArgs {
    /// A manifest, a snapshot file, or a snapshot directory (its newest snapshot).
    path: PathBuf,
    /// Issuer certificate(s) to verify against, as `serve --trust` would.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// A serial number (hex) to look up.
    #[arg(long)]
    serial: Option<String>,
}

#[derive(Args)]
struct StatusArgs {
    /// The responder's admin URL, e.g. http://127.0.0.1:8081/
    url: String,
}

#[derive(Args)]
struct PublishArgs {
    /// A TOML file listing several issuers (see fixtures/demo/publish.toml).
    #[arg(long, conflicts_with_all = ["issuer", "index", "json_lines", "signer_cert", "signer_key"])]
    config: Option<PathBuf>,
    /// The issuing CA's certificate (PEM).
    #[arg(long, requires_all = ["signer_cert", "signer_key"])]
    issuer: Option<PathBuf>,
    /// The CA's OpenSSL index.txt.
    #[arg(long, conflicts_with = "json_lines")]
    index: Option<PathBuf>,
    /// A JSON Lines feed of the CA's certificates.
    #[arg(long)]
    json_lines: Option<PathBuf>,
    /// The OCSP signer's certificate (the issuer itself or its delegated responder).
    #[arg(long)]
    signer_cert: Option<PathBuf>,
    /// The OCSP signer's private key: a PEM file (PKCS#8, SEC1 or PKCS#1), or a key in an HSM
    /// as an RFC 7512 URI, `pkcs11:token=T;object=K?module-path=/lib.so&pin-source=file:/pin`
    /// (the PIN comes from that file or `x-pin-env=VARIABLE`, never from this argument).
    #[arg(long)]
    signer_key: Option<PathBuf>,
    /// Label for the single issuer given by flags.
    #[arg(long, default_value = "default")]
    name: String,
    /// Directory to write the snapshot and manifest into.
    #[arg(long)]
    out: PathBuf,
    /// nextUpdate − thisUpdate (8h to 10d); overrides the configuration file.
    #[arg(long)]
    validity: Option<String>,
    /// Older snapshots to keep.
    #[arg(long)]
    keep: Option<usize>,
    /// Write a delta (only what changed) against the newest full snapshot in --out, when
    /// one is younger than --full-every; otherwise a full snapshot. Same as `[delta]`.
    #[arg(long)]
    delta: bool,
    /// With --delta: how long a full snapshot stays the base (default 24h).
    #[arg(long, requires = "delta")]
    full_every: Option<String>,
    /// With --delta: re-sign responses this old (default: half the validity).
    #[arg(long, requires = "delta")]
    refresh_after: Option<String>,
    /// Let this publish undo the revocation of these serials (hex), which the newest
    /// snapshot publishes: the one way past that safety rail, for a documented mistake.
    /// Logged, and recorded in the signed manifest (edges refuse un-revocations it lacks).
    #[arg(long, value_name = "SERIAL", num_args = 1..)]
    allow_unrevoke: Vec<String>,
    /// Publish even though an issuer's certificate count falls by more than
    /// max_shrink_percent (default 10%) against the newest snapshot. An empty input is
    /// refused all the same.
    #[arg(long)]
    allow_shrink: bool,
    /// Admit serial 0 and serials longer than 20 octets, which RFC 5280 forbids, for a
    /// legacy CA that issued them (same as allow_legacy_serials = true).
    #[arg(long)]
    allow_legacy_serials: bool,
    /// Run as a service: publish within --debounce of every input change, re-sign before
    /// refresh deadlines, reissue CRLs on schedule; active/standby through a lease in --out.
    #[arg(long)]
    watch: bool,
    /// With --watch: the admin listener (/healthz, /readyz, /metrics); watch.admin_listen.
    #[arg(long, requires = "watch")]
    admin_listen: Option<SocketAddr>,
    /// With --watch: also poll the inputs this often (network file systems); watch.poll_interval.
    #[arg(long, requires = "watch")]
    poll_interval: Option<String>,
    /// With --watch: how long after a change its publish starts (default 1s); watch.debounce.
    #[arg(long, requires = "watch")]
    debounce: Option<String>,
    /// With --watch: log format, text or json.
    #[arg(long, requires = "watch", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Responder configuration (TOML); see deploy/responder.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory holding snapshots (snapshots.dir).
    #[arg(long)]
    snapshots: Option<PathBuf>,
    /// Issuer certificate(s) to answer for (snapshots.trust); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// OCSP listen address (server.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Admin listen address (server.admin_listen).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
}

#[derive(Args)]
struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[arg(long, default_value = "127.0.0.1:8081")]
    admin_listen: SocketAddr,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; every other parse failure is a usage error.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Publish(args) => run_publish(*args),
        Command::Serve(args) => match load_config(&args) {
            Ok(config) => run_serve(config, None, move || load_config(&args)),
            Err(e) => config_failure(e),
        },
        Command::CheckConfig(args) => match load_config(&args) {
            Ok(_) => {
                say("configuration is valid\n");
                ExitCode::SUCCESS
            }
            Err(e) => config_failure(e),
        },
        Command::Demo(args) => run_demo(args),
        Command::Inspect(args) => run_inspect(args),
        Command::Status(args) => run_status(args),
    }
}

fn config_failure(error: ConfigError) -> ExitCode {
    eprintln!("ocsp-edge: invalid configuration: {error}");
    ExitCode::from(EX_USAGE)
}

fn load_config(args: &ServeArgs) -> Result<Config, ConfigError> {
    let mut overrides: Vec<(&'static str, config::Value)> = Vec::new();
    if let Some(dir) = &args.snapshots {
        overrides.push(("snapshots.dir", dir.display().to_string().into()));
    }
    if !args.trust.is_empty() {
        let trust: Vec<String> = args.trust.iter().map(|p| p.display().to_string()).collect();
        overrides.push(("snapshots.trust", trust.into()));
    }
    if let Some(listen) = args.listen {
        overrides.push(("server.listen", listen.to_string().into()));
    }
    if let Some(admin) = args.admin_listen {
        overrides.push(("server.admin_listen", admin.to_string().into()));
    }
    Config::load(Sources {
        file: args.config.clone(),
        environment: std::env::vars()
            .filter(|(k, _)| k.starts_with("OCSP_EDGE__"))
            .collect(),
        overrides,
    })
}

/// Changes the log filter of a running process (SIGHUP).
type LogLevelHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Structured logs on stderr, text or JSON; colours only on a terminal. `RUST_LOG`, when
/// set, overrides the configured level.
fn init_logging(format: LogFormat, level: &str) -> Option<LogLevelHandle> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let initialised = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    initialised.ok().map(|_| handle)
}

fn run_publish(args: PublishArgs) -> ExitCode {
    if args.watch {
        return run_publish_watch(args);
    }
    init_logging(LogFormat::Text, "info");
    let config = match publish_config(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ocsp-edge publish: {e}");
            return ExitCode::from(exit::publish(&e));
        }
    };
    let now = UnixTime::now();
    let plan = match config.load(now) {
        Ok(mut plan) => {
            plan.rails.allow_shrink = args.allow_shrink;
            plan
        }
        Err(e) => {
            eprintln!("ocsp-edge publish: {e}");
            return ExitCode::from(exit::publish(&e));
        }
    };
    for issuer in &plan.issuers {
        eprintln!(
            "{}: {} certificates ({} expired entries left out), signer {}",
            issuer.name,
            issuer.records.len(),
            issuer.skipped_expired,
            issuer.signer.display_name()
        );
    }
    let mut show = |p: ocsp_edge::publish::sign::Progress| {
        eprintln!(
            "signed {}/{} certificates ({:.0}/s, ETA {}s)",
            p.signed,
            p.total,
            p.per_second(),
            p.eta().as_secs()
        );
    };
    let mut plan = plan;
    let upload = match config.upload.as_ref().map(Uploader::new).transpose() {
        Ok(upload) => upload,
        Err(e) => {
            eprintln!("ocsp-edge publish: {e}");
            return ExitCode::from(exit::s3(&e));
        }
    };
    if let Some(upload) = &upload {
        match upload.store_sequence() {
            Ok(floor) => plan.sequence_floor = floor.saturating_add(1),
            Err(e) => {
                eprintln!("ocsp-edge publish: {e}");
                return ExitCode::from(exit::s3(&e));
            }
        }
    }
    let report = match publish(&plan, &args.out, now, &mut show) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("ocsp-edge publish: {e}");
            return ExitCode::from(exit::publish(&e));
        }
    };
    say(&format!(
        "published sequence {} ({} certificates, {} signatures, {} bytes) in {:.2}s\n  {}\n  {}\n",
        report.sequence,
        report.entries,
        report.signatures,
        report.size,
        report.elapsed.as_secs_f64(),
        report.snapshot.display(),
        report.manifest.display()
    ));
    if let Some(upload) = &upload {
        if let Err(e) = upload.send(&args.out, report.sequence) {
            eprintln!(
                "ocsp-edge publish: upload to {} failed: {e}",
                upload.location.label()
            );
            return ExitCode::from(exit::s3(&e));
        }
        say(&format!("  uploaded to {}\n", upload.location.label()));
    }
    ExitCode::SUCCESS
}

/// `publish --watch`: the live publisher, until SIGTERM.
fn run_publish_watch(args: PublishArgs) -> ExitCode {
    let format = match args.log_format.as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    };
    init_logging(format, "info");
    let config = match publish_config(&args).and_then(|config| {
        ocsp_edge::publish::live::settings_of(&config)?;
        Ok(config)
    }) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ocsp-edge publish --watch: {e}");
            return ExitCode::from(exit::publish(&e));
        }
    };
    let uploader = match config.upload.as_ref().map(Uploader::new).transpose() {
        Ok(upload) => upload.map(std::sync::Arc::new),
        Err(e) => {
            eprintln!("ocsp-edge publish --watch: {e}");
            return ExitCode::from(exit::s3(&e));
        }
    };
    let holder = ocsp_edge::publish::live::lease::default_holder_id();
    let settings = config.watch.clone().unwrap_or_default().settings();
    let lease = match (&uploader, settings.map(|s| (s.lease_store, s.lease_duration))) {
        (Some(uploader), Ok((ocsp_edge::publish::live::LeaseStore::S3, duration))) => {
            Some(std::sync::Arc::new(S3Lease {
                uploader: uploader.clone(),
                holder: holder.clone(),
                duration,
                held: std::sync::Mutex::new(None),
            })
                as std::sync::Arc<dyn ocsp_edge::publish::live::lease::StoreLease>)
        }
        _ => None,
    };
    let upload = uploader.map(|u| u as std::sync::Arc<dyn ocsp_edge::publish::live::Upload>);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ocsp-edge: cannot start the runtime: {e}");
            return ExitCode::from(EX_IOERR);
        }
    };
    let service = ocsp_edge::publish::live::Service {
        config,
        out: args.out.clone(),
        holder,
        upload,
        lease,
        allow_shrink: args.allow_shrink,
        reload: Box::new(move || publish_config(&args)),
    };
    let outcome = runtime.block_on(ocsp_edge::publish::live::run(service));
    // An abandoned publish may still be signing on a blocking thread: its temporary files
    // are gone and its fence refuses every further step, so do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ocsp-edge publish --watch: {e}");
            match e {
                ocsp_edge::publish::live::StartError::Config(e) => ExitCode::from(exit::publish(&e)),
                ocsp_edge::publish::live::StartError::Listen { .. } => ExitCode::from(EX_IOERR),
            }
        }
    }
}

impl ocsp_edge::publish::live::Upload for Uploader {
    fn store_sequence(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Uploader::store_sequence(self)?)
    }

    fn send(
        &self,
        dir: &std::path::Path,
        sequence: u64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(Uploader::send(self, dir, sequence)?)
    }
}

/// The live publisher's lease as an object in the upload bucket (`watch.lease = "s3"`):
/// the same record and rules as the directory's lease (docs/operations.md, "Running the
/// live publisher"), made exclusive by conditional writes: a takeover or a renewal is a
/// PUT with `If-Match` on the ETag just read (`If-None-Match: *` for the first), so of
/// two publishers acting on one version exactly one succeeds. Called on blocking threads.
struct S3Lease {
    uploader: std::sync::Arc<Uploader>,
    holder: String,
    duration: std::time::Duration,
    held: std::sync::Mutex<Option<ocsp_edge::publish::live::lease::LeaseRecord>>,
}

const LEASE_OBJECT: &str = "publisher.lease";

impl S3Lease {
    fn error(
        &self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> ocsp_edge::publish::live::lease::LeaseError {
        ocsp_edge::publish::live::lease::LeaseError::Object {
            location: format!("{}{LEASE_OBJECT}", self.uploader.location.label()),
            source: source.into(),
        }
    }

    /// The current record and its ETag. An unreadable object counts as held for one
    /// duration from now (it can only come from a writer of the bucket).
    fn read(
        &self,
    ) -> Result<
        Option<(ocsp_edge::publish::live::lease::LeaseRecord, String)>,
        ocsp_edge::publish::live::lease::LeaseError,
    > {
        let object = self
            .uploader
            .runtime
            .block_on(ocsp_edge::s3::get_object(
                &self.uploader.client,
                &self.uploader.location,
                LEASE_OBJECT,
            ))
            .map_err(|e| self.error(e))?;
        Ok(object.map(|(bytes, etag)| match serde_json::from_slice(&bytes) {
            Ok(record) => (record, etag),
            Err(_) => (
                ocsp_edge::publish::live::lease::LeaseRecord {
                    holder: "(unreadable lease object)".into(),
                    generation: 0,
                    expires_at_ms: ocsp_edge::publish::live::lease::now_ms()
                        .saturating_add(self.duration.as_millis() as i64),
                },
                etag,
            ),
        }))
    }

    /// PUT the record if the object is still `etag` (absent: `None`); whether it was.
    fn write(
        &self,
        record: &ocsp_edge::publish::live::lease::LeaseRecord,
        etag: Option<&str>,
    ) -> Result<bool, ocsp_edge::publish::live::lease::LeaseError> {
        let condition = match etag {
            Some(etag) => ("if-match", etag),
            None => ("if-none-match", "*"),
        };
        let bytes = serde_json::to_vec(record).map_err(|e| self.error(e))?;
        let written = self
            .uploader
            .runtime
            .block_on(ocsp_edge::s3::put_if(
                &self.uploader.client,
                &self.uploader.location,
                LEASE_OBJECT,
                bytes,
                condition,
            ))
            .map_err(|e| self.error(e))?;
        Ok(written.is_some())
    }
}

impl ocsp_edge::publish::live::lease::StoreLease for S3Lease {
    fn try_hold(
        &self,
        now_ms: i64,
    ) -> Result<ocsp_edge::publish::live::lease::Standing, ocsp_edge::publish::live::lease::LeaseError> {
        use ocsp_edge::publish::live::lease::{LeaseRecord, Standing};
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let expires_at_ms = now_ms.saturating_add(self.duration.as_millis() as i64);
        let current = self.read()?;
        let ours = |record: &LeaseRecord| {
            record.holder == self.holder && held.as_ref().is_some_and(|h| h.generation == record.generation)
        };
        let (wanted, etag) = match &current {
            // Renewal, only while our lease has not run out (as for the directory).
            Some((record, etag)) if ours(record) && record.expires_at_ms > now_ms => (
                LeaseRecord {
                    expires_at_ms,
                    ..record.clone()
                },
                Some(etag.as_str()),
            ),
            Some((record, _)) if record.expires_at_ms > now_ms => {
                *held = None;
                return Ok(Standing::HeldBy(record.clone()));
            }
            expired_or_none => (
                LeaseRecord {
                    holder: self.holder.clone(),
                    generation: expired_or_none
                        .as_ref()
                        .map_or(1, |(r, _)| r.generation.saturating_add(1)),
                    expires_at_ms,
                },
                expired_or_none.as_ref().map(|(_, etag)| etag.as_str()),
            ),
        };
        if self.write(&wanted, etag)? {
            *held = Some(wanted.clone());
            Ok(Standing::Held {
                generation: wanted.generation,
                expires_at_ms,
            })
        } else {
            *held = None;
            let winner = self.read()?.map(|(record, _)| record);
            Ok(Standing::HeldBy(winner.unwrap_or(wanted)))
        }
    }

    fn check(&self, now_ms: i64) -> Result<(), ocsp_edge::publish::fence::Fenced> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let current = self.read().map_err(|e| {
            ocsp_edge::publish::fence::Fenced::LeaseLost(format!("the lease cannot be read: {e}"))
        })?;
        ocsp_edge::publish::live::lease::fence_verdict(
            current.as_ref().map(|(r, _)| r),
            held.as_ref(),
            self.duration,
            now_ms,
        )
    }

    fn release(&self) -> Result<(), ocsp_edge::publish::live::lease::LeaseError> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(record) = held.take() else {
            return Ok(());
        };
        match self.read()? {
            Some((current, etag)) if current == record => self
                .write(
                    &ocsp_edge::publish::live::lease::LeaseRecord {
                        expires_at_ms: 0,
                        ..record
                    },
                    Some(&etag),
                )
                .map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// The publisher's S3 upload: a client, a location and a runtime to drive them.
struct Uploader {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    location: ocsp_edge::s3::S3Location,
}

impl Uploader {
    fn new(config: &ocsp_edge::s3::S3Config) -> Result<Uploader, ocsp_edge::s3::S3Error> {
        Ok(Uploader {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            client: ocsp_edge::http_client::client_builder().build()?,
            location: ocsp_edge::s3::S3Location::new(config)?,
        })
    }

    /// The sequence the store's newest manifest has (0 for an empty store).
    fn store_sequence(&self) -> Result<u64, ocsp_edge::s3::S3Error> {
        let latest = self
            .runtime
            .block_on(ocsp_edge::s3::latest(&self.client, &self.location))?;
        Ok(latest.map(|(sequence, _)| sequence).unwrap_or(0))
    }

    fn send(&self, dir: &std::path::Path, sequence: u64) -> Result<(), ocsp_edge::s3::S3Error> {
        self.runtime
            .block_on(ocsp_edge::s3::upload(&self.client, &self.location, dir, sequence))
    }
}

fn publish_config(args: &PublishArgs) -> Result<PublishConfig, PublishError> {
    let mut config =
        match (&args.config, &args.issuer) {
            (Some(path), _) => PublishConfig::from_file(path)?,
            (None, Some(issuer)) => PublishConfig {
                validity: ocsp_edge::publish::plan::DEFAULT_VALIDITY.to_string(),
                keep: 10,
                revocation_reasons: Default::default(),
                upload: None,
                delta: None,
                allow_unrevoke: Vec::new(),
                max_shrink_percent: ocsp_edge::publish::plan::DEFAULT_MAX_SHRINK_PERCENT,
                allow_legacy_serials: false,
                watch: None,
                issuers: vec![IssuerConfig {
                    name: args.name.clone(),
                    certificate: issuer.clone(),
                    index: args.index.clone(),
                    json_lines: args.json_lines.clone(),
                    postgres: None,
                    signer_certificate: args.signer_cert.clone().unwrap_or_default(),
                    signer_key: args.signer_key.clone().unwrap_or_default(),
                    crl: None,
                }],
            },
            (None, None) => return Err(PublishError::Config(
                "give --config FILE, or --issuer with --index/--json-lines, --signer-cert and --signer-key"
                    .into(),
            )),
        };
    if let Some(validity) = &args.validity {
        config.validity = validity.clone();
    }
    if let Some(keep) = args.keep {
        config.keep = keep;
    }
    config.allow_unrevoke.extend(args.allow_unrevoke.iter().cloned());
    config.allow_legacy_serials |= args.allow_legacy_serials;
    if args.watch {
        let watch = config.watch.get_or_insert_with(Default::default);
        if let Some(admin) = args.admin_listen {
            watch.admin_listen = Some(admin.to_string());
        }
        if let Some(interval) = &args.poll_interval {
            watch.poll_interval = Some(interval.clone());
        }
        if let Some(debounce) = &args.debounce {
            watch.debounce = Some(debounce.clone());
        }
    }
    if args.delta {
        let delta = config
            .delta
            .get_or_insert_with(|| ocsp_edge::publish::plan::DeltaConfig {
                full_every: "24h".into(),
                refresh_after: None,
            });
        if let Some(full_every) = &args.full_every {
            delta.full_every = full_every.clone();
        }
        if let Some(refresh_after) = &args.refresh_after {
            delta.refresh_after = Some(refresh_after.clone());
        }
    }
    config.validity()?;
    Ok(config)
}

fn run_serve(
    config: Config,
    banner: Option<String>,
    reload: impl Fn() -> Result<Config, ConfigError> + Send + Sync + 'static,
) -> ExitCode {
    let log_handle = init_logging(config.log.format, &config.log.level);
    server::raise_file_limit();
    let responder = match server::build(config) {
        Ok(responder) => responder,
        Err(server::BuildError::Config(e)) => return config_failure(e),
        Err(e @ server::BuildError::Metrics(_)) => {
            eprintln!("ocsp-edge: internal error: {e}");
            return ExitCode::from(exit::EX_SOFTWARE);
        }
    };
    let state = responder.state.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ocsp-edge: cannot start the runtime: {e}");
            return ExitCode::from(EX_IOERR);
        }
    };
    if let Some(cache) = &state.config().cache {
        let hubs: Vec<&str> = cache.hubs.iter().map(|hub| hub.ocsp.as_str()).collect();
        tracing::info!(
            ?hubs,
            capacity = cache.capacity,
            "cache mode: no snapshot; answers read through from hubs"
        );
    } else {
        let outcome = state.poll_directory(UnixTime::now());
        if state.current_sequence().is_none() {
            tracing::warn!(?outcome, dir = %state.config().snapshots.dir.display(),
                "no valid snapshot yet; answering tryLater and not ready until one arrives");
        }
    }
    let served = runtime.block_on(async {
        let listener = server::bind(state.config().server.listen)?;
        let admin = server::bind(state.config().server.admin_listen)?;
        tracing::info!(ocsp = %listener.local_addr()?, admin = %admin.local_addr()?, "listening");
        if let Some(banner) = &banner {
            println!("{banner}");
        }
        tokio::spawn(reload_on_hangup(state.clone(), reload, log_handle));
        server::serve(responder, listener, admin, shutdown_signal()).await;
        Ok::<_, std::io::Error>(())
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ocsp-edge: {e}");
            ExitCode::from(EX_IOERR)
        }
    }
}

/// SIGHUP: re-reads the configuration (file, environment, flags) and applies what can
/// change on a running process; says what it could not. A configuration that does not
/// validate changes nothing. Reading the files runs on the blocking pool.
async fn reload_on_hangup(
    state: std::sync::Arc<ocsp_edge::served::State>,
    reload: impl Fn() -> Result<Config, ConfigError> + Send + Sync + 'static,
    log_handle: Option<LogLevelHandle>,
) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    let reload = std::sync::Arc::new(reload);
    while hangups.recv().await.is_some() {
        let reading = reload.clone();
        let Ok(reloaded) = tokio::task::spawn_blocking(move || reading()).await else {
            tracing::error!("SIGHUP: reading the configuration failed; nothing changed");
            continue;
        };
        match reloaded {
            Err(e) => tracing::error!(error = %e, "SIGHUP: configuration invalid; nothing changed"),
            Ok(config) => {
                let level = config.log.level.clone();
                let kept = state.reload(config);
                if let (Some(handle), Ok(filter)) =
                    (&log_handle, tracing_subscriber::EnvFilter::try_new(&level))
                {
                    let _ = handle.reload(filter);
                }
                if kept.is_empty() {
                    tracing::info!("SIGHUP: configuration reloaded");
                } else {
                    tracing::warn!(needs_restart = ?kept, "SIGHUP: configuration reloaded, except settings that need a restart");
                }
            }
        }
    }
}

async fn shutdown_signal() -> server::Shutdown {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: draining connections");
    server::Shutdown::Graceful
}

fn run_demo(args: DemoArgs) -> ExitCode {
    init_logging(LogFormat::Text, "info");
    let demo = match ocsp_edge::demo::prepare(UnixTime::now()) {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("ocsp-edge demo: {e}");
            return ExitCode::from(EX_IOERR);
        }
    };
    let serve_args = ServeArgs {
        config: None,
        snapshots: Some(demo.snapshots.clone()),
        trust: demo.trust.clone(),
        listen: Some(args.listen),
        admin_listen: Some(args.admin_listen),
    };
    let config = match load_config(&serve_args) {
        Ok(config) => config,
        Err(e) => return config_failure(e),
    };
    let banner = format!(
        "{}Admin: http://{}/readyz and /metrics. Ctrl-C stops the demo.",
        ocsp_edge::demo::instructions(&format!("http://{}/", args.listen)),
        args.admin_listen
    );
    let code = run_serve(config, Some(banner), move || load_config(&serve_args));
    drop(demo);
    code
}

/// Writes a report to stdout. A reader that went away (`| head`) ends the process quietly
/// instead of the panic `print!` would give.
fn say(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

fn run_inspect(args: InspectArgs) -> ExitCode {
    let mut anchors = Vec::new();
    for path in &args.trust {
        match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|text| ocsp_edge::pki::Certificate::all_from_pem(&text).map_err(|e| e.to_string()))
        {
            Ok(certificates) => anchors.extend(certificates),
            Err(e) => {
                eprintln!("ocsp-edge inspect: {}: {e}", path.display());
                return ExitCode::from(EX_USAGE);
            }
        }
    }
    let trust = (!anchors.is_empty()).then(|| ocsp_edge::snapshot::TrustAnchors::new(anchors));
    match ocsp_edge::inspect::inspect(
        &args.path,
        trust.as_ref(),
        args.serial.as_deref(),
        UnixTime::now(),
    ) {
        Ok(report) => {
            say(&report);
            if report.contains("NOT VALID") {
                ExitCode::from(EX_DATAERR)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("ocsp-edge inspect: {e}");
            ExitCode::from(EX_DATAERR)
        }
    }
}

/// The metrics `status` reports, in order.
const STATUS_METRICS: &[(&str, &str)] = &[
    ("ocsp_edge_ready", "ready"),
    ("ocsp_edge_snapshot_sequence", "serving sequence"),
    ("ocsp_edge_highest_sequence", "highest sequence accepted"),
    ("ocsp_edge_snapshot_entries", "certificates"),
    ("ocsp_edge_snapshot_age_seconds", "snapshot age (s)"),
    (
        "ocsp_edge_seconds_until_earliest_next_update",
        "seconds until earliest nextUpdate",
    ),
    (
        "ocsp_edge_refresh_deadline_seconds",
        "seconds until refresh deadline",
    ),
    (
        "ocsp_edge_seconds_since_last_sync",
        "seconds since last sync (-1: never)",
    ),
    ("ocsp_edge_connections_open", "connections open"),
    (
        "ocsp_edge_cache_acknowledged_sequence",
        "cache: acknowledged sequence",
    ),
    ("ocsp_edge_cache_entries", "cache: entries"),
    ("ocsp_edge_cache_hits_total", "cache: hits"),
    ("ocsp_edge_cache_misses_total", "cache: misses"),
];

fn run_status(args: StatusArgs) -> ExitCode {
    let base = if args.url.ends_with('/') {
        args.url.clone()
    } else {
        format!("{}/", args.url)
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ocsp-edge status: {e}");
            return ExitCode::from(EX_IOERR);
        }
    };
    let fetched = runtime.block_on(async {
        let client = ocsp_edge::http_client::client_builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let ready = client.get(format!("{base}readyz")).send().await?.text().await?;
        let metrics = client.get(format!("{base}metrics")).send().await?.text().await?;
        Ok::<_, reqwest::Error>((ready, metrics))
    });
    let (ready, metrics) = match fetched {
        Ok(pair) => pair,
        Err(e) => {
            eprintln!("ocsp-edge status: {base}: {e}");
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    say(&format!("{base}: {}\n", ready.trim()));
    for (name, label) in STATUS_METRICS {
        if let Some(value) = metrics
            .lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        {
            say(&format!("  {label:<40} {value}\n"));
        }
    }
    for line in metrics.lines().filter(|l| {
        (l.starts_with("ocsp_edge_snapshots_refused_total") || l.starts_with("ocsp_edge_sync_failures_total"))
            && !l.ends_with(" 0")
    }) {
        say(&format!("  {line}\n"));
    }
    if ready.trim() == "ready" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EX_UNAVAILABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::exit;
    use ocsp_edge::pki::KeyError;
    use ocsp_edge::publish::PublishError;

    /// A key that fails to sign is a key fault: it must not exit 64 and send the operator
    /// hunting for a typo in a configuration that is fine.
    #[test]
    fn a_signing_failure_is_a_key_fault_not_a_usage_error() {
        let error = PublishError::signing(KeyError::Sign);
        assert!(matches!(error, PublishError::Signing(_)), "{error:?}");
        assert_eq!(exit::publish(&error), exit::EX_SOFTWARE);
        let external = PublishError::signing(KeyError::External("a signer outside".into()));
        assert_eq!(exit::publish(&external), exit::EX_SOFTWARE);
        assert_eq!(exit::publish(&PublishError::Config("x".into())), exit::EX_USAGE);
    }
}
