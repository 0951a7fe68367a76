//! `publish --watch`: the publisher as a service. The same configuration and the same
//! publish pipeline (rails included) as the one-shot command, run whenever an input
//! changes, when responses approach their refresh deadline, when the delta base ages out
//! and when CRLs are due ([`schedule`]); only while this publisher holds the store's
//! lease ([`lease`]).
//!
//! - [`watcher`]: file notifications and polling, sending [`InputChanged`] signals.
//! - [`schedule`]: debounce and the publish schedule (pure functions).
//! - [`lease`]: active/standby through a lease file in the directory store.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`config`]: `[watch]` in the configuration, and its checked form.
//!
//! The loop never exits on bad input: a refused or failed publish is logged and counted,
//! the last good snapshot stays, and the next change (or `retry_after`) tries again.
//! Signing runs on a blocking thread, never on the async workers. SIGTERM lets the
//! publish in progress finish for `shutdown_grace`, then abandons it through the fence
//! (its temporary files go; nothing half-written is ever visible) and exits 0; SIGHUP
//! re-reads the configuration and keeps the old one if the new one is bad.

pub mod admin;
pub mod config;
pub mod lease;
pub mod schedule;
pub mod watcher;

use super::error::PublishError;
use super::fence::{Fence, Fenced};
use super::signal::{ChangeReceiver, ChangeSender, InputChanged};
use super::{PublishConfig, PublishReport};
use admin::AdminState;
use lease::{DirectoryLease, Standing};
use ocsp_edge_core::snapshot::{self, TrustAnchors};
use ocsp_edge_core::time::UnixTime;
use ocsp_edge_core::units::parse_duration;
use schedule::{Debounce, Policy, StoreState};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use config::{LeaseStore, WatchConfig, WatchSettings, DEFAULT_ADMIN_LISTEN};

/// Copies a publish somewhere else once it is complete (the binary's S3 upload). Called
/// on a blocking thread.
pub trait Upload: Send + Sync {
    /// The newest sequence the other store holds (0 when empty): publishes go above it.
    fn store_sequence(&self) -> Result<u64, Box<dyn std::error::Error + Send + Sync>>;
    /// Copies snapshot `sequence` from `dir`.
    fn send(&self, dir: &Path, sequence: u64) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// Why the service could not start (once running it never stops on an error).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] PublishError),
    #[error("admin listener on {address}: {source}")]
    Listen {
        address: SocketAddr,
        source: std::io::Error,
    },
}

/// How the binary hands over: the configuration, how to re-read it, where to publish.
pub struct Service {
    pub config: PublishConfig,
    /// Re-reads the configuration (file and flags) on SIGHUP.
    pub reload: Box<dyn Fn() -> Result<PublishConfig, PublishError> + Send + Sync>,
    pub out: PathBuf,
    pub holder: String,
    pub upload: Option<Arc<dyn Upload>>,
    /// `--allow-shrink`: applies to the first publish only.
    pub allow_shrink: bool,
    /// The lease when it is not the directory's (`watch.lease = "s3"`).
    pub lease: Option<Arc<dyn lease::StoreLease>>,
}

/// Checks the pipeline's configuration before anything is started.
pub fn settings_of(config: &PublishConfig) -> Result<WatchSettings, PublishError> {
    config.validity()?;
    schedule_policy(config)?;
    let settings = config.watch.clone().unwrap_or_default().settings()?;
    if settings.lease_store == LeaseStore::S3 && config.upload.is_none() {
        return Err(PublishError::Config(
            "watch.lease = \"s3\" keeps the lease in the [upload] bucket: configure [upload]".into(),
        ));
    }
    Ok(settings)
}

/// The schedule's view of the configuration.
pub fn schedule_policy(config: &PublishConfig) -> Result<Policy, PublishError> {
    let validity = config.validity()?;
    let delta = config.delta_policy(validity)?;
    let crl_validity = config
        .issuers
        .iter()
        .filter_map(|issuer| issuer.crl.as_ref())
        .filter(|crl| crl.signing_key.is_some())
        .map(|crl| {
            parse_duration(&crl.validity).map_err(|e| PublishError::Config(format!("crl.validity: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .min();
    Ok(Policy {
        validity,
        refresh_after: delta.map_or(validity / 2, |d| d.refresh_after),
        full_every: delta.map(|d| d.full_every),
        crl_validity,
    })
}

/// Runs until SIGTERM (or Ctrl-C). Errors only if it cannot start.
pub async fn run(service: Service) -> Result<(), StartError> {
    let settings = settings_of(&service.config)?;
    let listener = tokio::net::TcpListener::bind(settings.admin_listen)
        .await
        .map_err(|source| StartError::Listen {
            address: settings.admin_listen,
            source,
        })?;
    let admin_address = listener.local_addr().unwrap_or(settings.admin_listen);
    let admin = AdminState::new();
    tokio::spawn(admin::serve(admin.clone(), listener));
    let (sender, changes) = tokio::sync::mpsc::channel(64);
    std::fs::create_dir_all(&service.out).map_err(PublishError::Io)?;
    let lease: Arc<dyn lease::StoreLease> = match service.lease {
        Some(lease) => lease,
        None => Arc::new(DirectoryLease::new(
            &service.out,
            service.holder.clone(),
            settings.lease_duration,
        )),
    };
    tracing::info!(admin = %admin_address, out = %service.out.display(), holder = %service.holder,
        lease_seconds = settings.lease_duration.as_secs(), "live publisher started");
    let watchers = watcher::start_for(
        &service.config,
        settings.poll_interval,
        sender.clone(),
        &admin.input_metrics,
    );
    let mut live = Live {
        config: Arc::new(service.config),
        reload: service.reload,
        settings,
        out: service.out,
        admin,
        lease,
        abandon: Arc::new(AtomicBool::new(false)),
        debounce: Debounce::default(),
        oldest_change: None,
        due_at: None,
        held: false,
        started: Instant::now(),
        watchers,
        sender,
        upload: service.upload,
        allow_shrink: service.allow_shrink,
    };
    live.serve(changes).await;
    Ok(())
}

/// The service loop's state.
struct Live {
    config: Arc<PublishConfig>,
    reload: Box<dyn Fn() -> Result<PublishConfig, PublishError> + Send + Sync>,
    settings: WatchSettings,
    out: PathBuf,
    admin: Arc<AdminState>,
    lease: Arc<dyn lease::StoreLease>,
    abandon: Arc<AtomicBool>,
    debounce: Debounce,
    /// When the oldest change not yet published was made (for the input-lag metric).
    oldest_change: Option<SystemTime>,
    /// The next publish nothing else asks for: the schedule, or a retry after a failure.
    due_at: Option<Instant>,
    held: bool,
    started: Instant,
    watchers: watcher::Watchers,
    sender: ChangeSender,
    upload: Option<Arc<dyn Upload>>,
    allow_shrink: bool,
}

/// What a publish job hands back.
struct Published {
    report: PublishReport,
    store: Option<StoreState>,
}

impl Live {
    async fn serve(&mut self, mut changes: ChangeReceiver) {
        let mut hangups = signal(tokio::signal::unix::SignalKind::hangup());
        let mut terminate = signal(tokio::signal::unix::SignalKind::terminate());
        let mut renew = tokio::time::interval(self.settings.lease_renew);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.wake_at();
            tokio::select! {
                Some(change) = changes.recv() => self.on_change(change),
                _ = renew.tick() => self.renew_lease().await,
                _ = tokio::time::sleep_until(wake.into()) => {}
                _ = recv(&mut hangups) => self.reload(),
                _ = recv(&mut terminate) => break,
                _ = tokio::signal::ctrl_c() => break,
            }
            if !(self.held && self.publish_due()) {
                continue;
            }
            let mut job = self.start_publish();
            let outcome = loop {
                tokio::select! {
                    outcome = &mut job => break Some(outcome),
                    Some(change) = changes.recv() => self.on_change(change),
                    _ = renew.tick() => self.renew_lease().await,
                    _ = recv(&mut terminate) => break None,
                    _ = tokio::signal::ctrl_c() => break None,
                }
            };
            match outcome {
                Some(outcome) => self.finish_publish(outcome).await,
                None => return self.shut_down(Some(job)).await,
            }
        }
        self.shut_down(None).await
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn on_change(&mut self, change: InputChanged) {
        let made = SystemTime::now()
            .checked_sub(change.age.unwrap_or_default())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        self.oldest_change = Some(self.oldest_change.map_or(made, |oldest| oldest.min(made)));
        tracing::debug!(issuer = %change.issuer, "input changed");
        self.debounce.change(self.now_ms());
    }

    fn publish_due(&self) -> bool {
        self.debounce.is_due(self.now_ms(), self.settings.debounce)
            || self.due_at.is_some_and(|due| Instant::now() >= due)
    }

    /// When the loop must look again without any event.
    fn wake_at(&self) -> Instant {
        let far = Instant::now() + Duration::from_secs(3600);
        let debounce = self
            .debounce
            .due_at(self.settings.debounce)
            .map(|ms| self.started + Duration::from_millis(ms));
        [Some(far), debounce, self.due_at]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(far)
    }

    async fn renew_lease(&mut self) {
        let lease = self.lease.clone();
        let standing = tokio::task::spawn_blocking(move || lease.try_hold(lease::now_ms())).await;
        let was_held = self.held;
        match standing {
            Ok(Ok(Standing::Held { generation, .. })) => {
                self.held = true;
                self.admin.health().lease = None;
                if !was_held {
                    tracing::info!(generation, "holding the store's lease: active");
                    // Whatever the previous holder left unpublished (it may have died
                    // mid-publish) goes out now, above the store's newest sequence.
                    self.due_at = Some(Instant::now());
                }
            }
            Ok(Ok(Standing::HeldBy(record))) => {
                self.held = false;
                let remaining = record.expires_at_ms.saturating_sub(lease::now_ms());
                if was_held {
                    tracing::warn!(holder = %record.holder, generation = record.generation, "lost the store's lease: standby");
                }
                self.admin.health().lease = Some(format!(
                    "lease generation {} held by {} for {remaining} ms more",
                    record.generation, record.holder
                ));
            }
            Ok(Err(e)) => {
                self.admin.metrics.error("lease");
                tracing::error!(error = %e, "cannot read or renew the store's lease");
                // Stay as we were: the fence re-reads the lease before every rename, so a
                // holder that cannot renew stops writing on its own a third before expiry.
                if !self.held {
                    self.admin.health().lease = Some(format!("lease unavailable: {e}"));
                }
            }
            Err(e) => tracing::error!(error = %e, "lease task failed"),
        }
        self.admin.metrics.lease_held.set(i64::from(self.held));
    }

    fn start_publish(&mut self) -> tokio::task::JoinHandle<Result<Published, PublishError>> {
        self.debounce.take();
        self.due_at = None;
        self.abandon.store(false, Ordering::SeqCst);
        let config = self.config.clone();
        let out = self.out.clone();
        let fence: Arc<dyn Fence> = Arc::new(LiveFence {
            lease: self.lease.clone(),
            abandon: self.abandon.clone(),
        });
        let upload = self.upload.clone();
        let allow_shrink = std::mem::take(&mut self.allow_shrink);
        tokio::task::spawn_blocking(move || {
            publish_once(&config, &out, fence, upload.as_deref(), allow_shrink)
        })
    }

    async fn finish_publish(
        &mut self,
        outcome: Result<Result<Published, PublishError>, tokio::task::JoinError>,
    ) {
        let lag_from = self.oldest_change.take();
        let metrics = &self.admin.metrics;
        match outcome {
            Ok(Ok(published)) => {
                let report = &published.report;
                let seconds = report.elapsed.as_secs_f64();
                metrics.last_publish_timestamp.set(UnixTime::now().seconds());
                metrics
                    .last_sequence
                    .set(i64::try_from(report.sequence).unwrap_or(i64::MAX));
                metrics.publish_duration.observe(seconds);
                metrics.signatures_total.inc_by(report.signatures);
                metrics
                    .signatures_per_second
                    .set(report.signatures as f64 / seconds.max(1e-6));
                metrics
                    .publishes
                    .with_label_values(&[if report.base.is_some() { "delta" } else { "full" }])
                    .inc();
                metrics.last_publish_failed.set(0);
                if let Some(from) = lag_from {
                    metrics.input_lag.set(
                        SystemTime::now()
                            .duration_since(from)
                            .unwrap_or_default()
                            .as_secs_f64(),
                    );
                }
                tracing::info!(sequence = report.sequence, base = ?report.base, signatures = report.signatures,
                    bytes = report.size, seconds, "published");
                self.schedule_after(published.store);
            }
            // Readiness first, then the counters: whoever sees the failure counted (an
            // alert, a test) must find /readyz already failing, never still ready.
            Ok(Err(error)) => {
                self.admin.health().last_error = Some(error.to_string());
                metrics.error(error_kind(&error));
                metrics.last_publish_failed.set(1);
                self.oldest_change = lag_from;
                tracing::error!(error = %error, retry_seconds = self.settings.retry_after.as_secs(),
                    "publish failed; the last good snapshot stays, retrying on the next change or after retry_after");
                self.due_at = Some(Instant::now() + self.settings.retry_after);
            }
            Err(join) => {
                self.admin.health().last_error = Some(join.to_string());
                metrics.error("io");
                metrics.last_publish_failed.set(1);
                tracing::error!(error = %join, "publish task failed");
                self.due_at = Some(Instant::now() + self.settings.retry_after);
            }
        }
    }

    /// Sets the next scheduled publish from the store's newest snapshot.
    fn schedule_after(&mut self, store: Option<StoreState>) {
        let policy = match schedule_policy(&self.config) {
            Ok(policy) => policy,
            Err(_) => return,
        };
        let mut health = self.admin.health();
        health.last_error = None;
        let Some(store) = store else {
            self.due_at = Some(Instant::now() + self.settings.retry_after);
            return;
        };
        let now = UnixTime::now().seconds();
        health.refresh_deadline = Some(schedule::oldest_refresh_deadline(&store, &policy));
        let (due, reason) = schedule::next_due(&store, &policy);
        let wait = Duration::from_secs(u64::try_from(due.saturating_sub(now)).unwrap_or(0));
        tracing::info!(?reason, in_seconds = wait.as_secs(), "next scheduled publish");
        self.due_at = Some(Instant::now() + wait);
    }

    fn reload(&mut self) {
        let reloaded =
            (self.reload)().and_then(|config| settings_of(&config).map(|settings| (config, settings)));
        match reloaded {
            Err(e) => {
                self.admin.metrics.error("reload");
                tracing::error!(error = %e, "SIGHUP: configuration invalid; keeping the previous one");
            }
            Ok((config, settings)) => {
                let mut needs_restart = Vec::new();
                if settings.admin_listen != self.settings.admin_listen {
                    needs_restart.push("watch.admin_listen");
                }
                if settings.lease_duration != self.settings.lease_duration
                    || settings.lease_renew != self.settings.lease_renew
                {
                    needs_restart.push("watch.lease_duration/lease_renew");
                }
                self.settings = WatchSettings {
                    admin_listen: self.settings.admin_listen,
                    lease_duration: self.settings.lease_duration,
                    lease_renew: self.settings.lease_renew,
                    ..settings
                };
                self.watchers = watcher::start_for(
                    &config,
                    self.settings.poll_interval,
                    self.sender.clone(),
                    &self.admin.input_metrics,
                );
                self.config = Arc::new(config);
                // The new configuration may publish differently: publish with it now.
                self.debounce.change(self.now_ms());
                if needs_restart.is_empty() {
                    tracing::info!("SIGHUP: configuration reloaded");
                } else {
                    tracing::warn!(
                        ?needs_restart,
                        "SIGHUP: configuration reloaded, except settings that need a restart"
                    );
                }
            }
        }
    }

    /// SIGTERM: let the publish in progress finish for `shutdown_grace`, then abandon it;
    /// give the lease up; exit.
    async fn shut_down(&mut self, job: Option<tokio::task::JoinHandle<Result<Published, PublishError>>>) {
        if let Some(mut job) = job {
            tracing::info!(
                grace_seconds = self.settings.shutdown_grace.as_secs(),
                "shutting down: finishing the publish in progress"
            );
            match tokio::time::timeout(self.settings.shutdown_grace, &mut job).await {
                Ok(outcome) => self.finish_publish(outcome).await,
                Err(_) => {
                    tracing::warn!("shutting down: abandoning the publish in progress");
                    self.abandon.store(true, Ordering::SeqCst);
                    // The fence is asked between signing chunks and before every rename; a
                    // publish still signing its chunk after this is left behind (the process
                    // exits without waiting for it, and nothing of it can become visible).
                    if tokio::time::timeout(Duration::from_secs(3), &mut job)
                        .await
                        .is_err()
                    {
                        tracing::warn!("the abandoned publish did not stop; removing its temporary files");
                    }
                    let out = self.out.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || remove_own_temporaries(&out)).await {
                        tracing::warn!(error = %e, "could not remove the abandoned publish's temporary files");
                    }
                }
            }
        }
        let lease = self.lease.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || lease.release()).await {
            tracing::warn!(error = %e, "could not release the store's lease; a standby takes over when it expires");
        }
        tracing::info!("stopped");
    }
}

/// The live publisher's [`Fence`]: the lease must still be ours, and shutdown must not
/// have abandoned the publish.
struct LiveFence {
    lease: Arc<dyn lease::StoreLease>,
    abandon: Arc<AtomicBool>,
}

impl Fence for LiveFence {
    fn check(&self) -> Result<(), Fenced> {
        if self.abandon.load(Ordering::SeqCst) {
            return Err(Fenced::Abandoned);
        }
        self.lease.check(lease::now_ms())
    }
}

/// One publish through the ordinary pipeline (blocking: loads, signs, writes).
fn publish_once(
    config: &PublishConfig,
    out: &Path,
    fence: Arc<dyn Fence>,
    upload: Option<&dyn Upload>,
    allow_shrink: bool,
) -> Result<Published, PublishError> {
    let now = UnixTime::now();
    let mut plan = config.load(now)?;
    plan.fence = Some(fence);
    plan.rails.allow_shrink = allow_shrink;
    if let Some(upload) = upload {
        let floor = upload
            .store_sequence()
            .map_err(|e| PublishError::Io(std::io::Error::other(format!("upload store: {e}"))))?;
        plan.sequence_floor = floor.saturating_add(1);
    }
    let report = super::publish(&plan, out, now, &mut |_| {})?;
    if let Some(upload) = upload {
        if let Err(e) = upload.send(out, report.sequence) {
            // Published locally; the next publish uploads a newer one.
            tracing::error!(error = %e, sequence = report.sequence, "upload failed");
        }
    }
    let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
    Ok(Published {
        store: store_state(&trust, out, now),
        report,
    })
}

/// The newest snapshot's freshness, verified as a responder would.
pub fn store_state(trust: &TrustAnchors, out: &Path, now: UnixTime) -> Option<StoreState> {
    let newest = *snapshot::manifest_sequences(out).ok()?.first()?;
    let snapshot = snapshot::load_snapshot(out, newest, trust, now).ok()?;
    Some(StoreState {
        created_at: snapshot.created_at().seconds(),
        earliest_next_update: snapshot.earliest_next_update().seconds(),
        base_created_at: snapshot.base().map(|b| b.created_at().seconds()),
    })
}

/// The `kind` label of a failed publish.
pub fn error_kind(error: &PublishError) -> &'static str {
    match error {
        PublishError::Config(_) => "config",
        PublishError::File { .. }
        | PublishError::Input(_)
        | PublishError::Crl(_)
        | PublishError::CertificateHold { .. } => "input",
        PublishError::Refused(_) => "refused",
        PublishError::Io(_) => "io",
        PublishError::Signing(_) | PublishError::Encoding { .. } => "signing",
        PublishError::Base(_) => "base",
        PublishError::Postgres(_) => "postgres",
        PublishError::Hsm(_) => "hsm",
        PublishError::Sequence(_) => "sequence",
        PublishError::Fenced(_) => "fenced",
    }
}

/// Removes this process's temporary files from `out` (an abandoned publish's), never
/// anyone else's and never a complete file.
fn remove_own_temporaries(out: &Path) {
    let own = format!("{}{}-", snapshot::TEMP_PREFIX, std::process::id());
    let Ok(entries) = std::fs::read_dir(out) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        if entry.file_name().to_string_lossy().starts_with(&own) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}
