//! Replication: keeps the local snapshot directory (`snapshots.dir`, the responder's
//! cache) fed from its sources, and swaps in each newer snapshot once it is verified.
//!
//! One task per source, and nothing shared across a download, so a slow or dead source
//! never delays the others: the first source whose download verifies wins. Each round:
//! ask for a newer manifest → verify the manifest ([`verify_manifest`]) before anything
//! it says is believed (no file is deleted, created or sized, and no sequence persisted,
//! before it passes) → stream the snapshot into a uniquely named temporary file in the
//! cache, never past the signed size and within a deadline (`snapshots.download_deadline`
//! plus the size at `snapshots.min_download_rate`) → verify it completely → link it and
//! its manifest into the cache and swap, under a short lock (a second source that fetched
//! the same sequence discards its copy) → only then is the highest sequence persisted.
//!
//! A failed round is counted (`ocsp_edge_snapshots_refused_total{reason}` when the
//! snapshot itself was refused) and the source backs off exponentially (jittered, capped
//! by `snapshots.max_backoff`), so transient refusals (a short download, a deadline, a
//! missing base, I/O) are retried. A refusal about the signed content (bad signature,
//! untrusted, hash mismatch of a complete file) is remembered for that source only: one
//! lying source cannot make a sequence refused for the honest ones.

pub mod source;

use crate::served::State;
use ocsp_edge_core::snapshot::{
    self, held_base, load_snapshot_file_on, verify_manifest, Manifest, Snapshot, VerifyError,
};
use ocsp_edge_core::time::UnixTime;
use source::{SnapshotSource, Source, SourceError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("refused: {0}")]
    Refused(#[from] VerifyError),
}

impl SyncError {
    /// The `ocsp_edge_snapshots_refused_total` reason when the offered snapshot itself was
    /// refused; `None` for a source that could not be reached or read.
    pub fn refusal_label(&self) -> Option<&'static str> {
        match self {
            SyncError::Refused(e) => Some(e.label()),
            SyncError::Source(SourceError::Truncated { .. }) => Some("incomplete"),
            SyncError::Source(SourceError::Deadline { .. }) => Some("deadline"),
            SyncError::Source(SourceError::TooLarge { .. }) => Some("hash_mismatch"),
            SyncError::Source(SourceError::Io(_) | SourceError::Http(_)) => None,
        }
    }

    /// A refusal about the signed content, which asking this source again cannot change.
    fn is_permanent(&self) -> bool {
        matches!(self, SyncError::Refused(e) if !e.is_transient())
    }
}

fn blocking_failed(e: tokio::task::JoinError) -> SyncError {
    SyncError::Source(SourceError::Io(std::io::Error::other(e)))
}

/// What one round with a source did.
#[derive(Debug, PartialEq, Eq)]
pub enum Round {
    Unchanged,
    Updated(u64),
}

/// Starts one replication task per configured source; they stop when `stop` flips. The
/// sources are built on the blocking pool (a CA bundle is a file to read).
async fn spawn(state: &Arc<State>, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    let long_poll = state.config().snapshots.long_poll;
    let configs = state.config().snapshots.sources.clone();
    let built = tokio::task::spawn_blocking(move || {
        configs
            .iter()
            .filter_map(|config| match Source::from_config(config, long_poll) {
                Ok(source) => Some(source),
                Err(e) => {
                    tracing::error!(error = %e, "replication source unusable");
                    None
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    let sources = built.unwrap_or_else(|e| {
        tracing::error!(error = %e, "building the replication sources failed");
        Vec::new()
    });
    sources
        .into_iter()
        .map(|source| tokio::spawn(source_loop(state.clone(), source, stop.clone())))
        .collect()
}

/// Runs replication until `stop` flips, restarting it whenever a reload changes the
/// sources.
pub async fn supervise(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    // With sources, the directory is this responder's own cache, and temporary files in it
    // are downloads a previous process never finished. Without sources it belongs to a
    // publisher, whose in-flight files must never be touched.
    if !state.config().snapshots.sources.is_empty() {
        let dir = state.config().snapshots.dir.clone();
        match tokio::task::spawn_blocking(move || snapshot::remove_stale_temporaries(&dir)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => {
                tracing::info!(removed, "removed unfinished downloads from the snapshot cache")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot clean the snapshot cache"),
            Err(e) => tracing::warn!(error = %e, "cannot clean the snapshot cache"),
        }
    }
    let mut generation = state.replication().subscribe_sources();
    loop {
        let tasks = spawn(&state, &stop).await;
        let stopping = tokio::select! {
            _ = generation.changed() => false,
            _ = stop.changed() => true,
        };
        for task in tasks {
            task.abort();
        }
        if stopping {
            return;
        }
        tracing::info!("replication sources changed; restarting replication");
    }
}

async fn source_loop<S: SnapshotSource>(state: Arc<State>, mut source: S, mut stop: watch::Receiver<bool>) {
    let label = source.label();
    let replication = state.replication();
    replication.source_started(&label);
    let mut failures = 0u32;
    let mut refused_here = RefusedHere::default();
    loop {
        replication.round_started(&label);
        let round = tokio::select! {
            round = sync_once(&state, &mut source, &mut refused_here) => round,
            _ = stop.changed() => return,
        };
        match round {
            Ok(outcome) => {
                failures = 0;
                replication.round_succeeded(&label, UnixTime::now());
                tracing::debug!(source = %label, ?outcome, "replication round");
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                replication.round_failed(&label);
                tracing::warn!(source = %label, error = %e, failures, "replication round failed");
            }
        }
        let config = state.config();
        let delay = next_delay(
            config.snapshots.poll_interval,
            config.snapshots.max_backoff,
            source.long_polls(),
            failures,
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// After a success: the poll interval (a long-polling source only a moment, since the
/// peer itself waited). After failures: exponential backoff. Both jittered by ±20% so a
/// fleet does not poll an origin in lockstep.
fn next_delay(poll_interval: Duration, max_backoff: Duration, long_polls: bool, failures: u32) -> Duration {
    let base = match (failures, long_polls) {
        (0, true) => Duration::from_millis(100),
        (0, false) => poll_interval,
        (n, _) => ocsp_edge_core::backoff::exponential(poll_interval, max_backoff, n.saturating_add(1)),
    };
    ocsp_edge_core::backoff::jittered(base)
}

/// Sequences one source offered whose signed content was refused (see the module docs);
/// never consulted for another source.
#[derive(Debug, Default)]
pub struct RefusedHere {
    sequences: HashSet<u64>,
}

impl RefusedHere {
    /// Forgets what is at or below `floor`: it can never be offered usefully again.
    fn forget_below(&mut self, floor: u64) {
        self.sequences.retain(|s| *s > floor);
    }
}

/// One round with one source.
pub async fn sync_once<S: SnapshotSource>(
    state: &Arc<State>,
    source: &mut S,
    refused_here: &mut RefusedHere,
) -> Result<Round, SyncError> {
    let retry = state.clone();
    tokio::task::spawn_blocking(move || retry.retry_persisting())
        .await
        .map_err(blocking_failed)?;
    let round = fetch_and_install(state, source, refused_here).await;
    if round.is_ok() {
        source.round_succeeded();
    }
    round
}

fn floor(state: &State) -> u64 {
    state
        .current_sequence()
        .unwrap_or(0)
        .max(state.highest_sequence())
}

/// Counts and logs a refusal of what `source` offered, if it was one.
fn count_refusal(state: &State, source: &str, error: &SyncError) {
    if let Some(reason) = error.refusal_label() {
        tracing::warn!(source, reason, %error, "snapshot refused; still serving the current one");
        state.metrics().count_refusal(reason);
    }
}

async fn fetch_and_install<S: SnapshotSource>(
    state: &Arc<State>,
    source: &mut S,
    refused_here: &mut RefusedHere,
) -> Result<Round, SyncError> {
    refused_here.forget_below(floor(state));
    let Some(manifest_bytes) = source.newer_manifest(floor(state)).await? else {
        return Ok(Round::Unchanged);
    };
    let now = UnixTime::now();
    let started = std::time::Instant::now();
    // First, before anything the manifest says is believed.
    let (manifest, _) = verify_manifest(&manifest_bytes, &state.trust, now).inspect_err(|e| {
        state.refuse_offer(&source.label(), e);
    })?;
    let sequence = manifest.body.sequence;
    let floor = floor(state);
    if sequence <= floor {
        if sequence < floor {
            // An older snapshot offered as the newest: a lagging or malicious mirror.
            let error = VerifyError::NotNewer {
                offered: sequence,
                current: floor,
            };
            state.refuse_offer(&source.label(), &error);
        }
        return Ok(Round::Unchanged);
    }
    if refused_here.sequences.contains(&sequence) {
        return Ok(Round::Unchanged);
    }
    let installed = async {
        let base = match &manifest.body.base {
            None => None,
            Some(wanted) => Some(ensure_base(state, source, wanted.sequence, now).await?),
        };
        let download = download_and_verify(state, source, &manifest_bytes, &manifest, now, base).await?;
        let installing = state.clone();
        tokio::task::spawn_blocking(move || keep_and_swap(&installing, download, now, started))
            .await
            .map_err(blocking_failed)?
    }
    .await;
    installed.inspect_err(|e| {
        count_refusal(state, &source.label(), e);
        if e.is_permanent() {
            refused_here.sequences.insert(sequence);
        }
    })
}

/// The full snapshot `sequence` that a delta applies to: the one held (served, or under
/// the served delta), else the one in the cache directory, else downloaded from `source`
/// the same careful way as any snapshot (manifest verified first, size bounded, fully
/// verified before it is kept). A base is never served on its own, so it may be older
/// than what anti-rollback would accept as the newest.
async fn ensure_base<S: SnapshotSource>(
    state: &Arc<State>,
    source: &S,
    sequence: u64,
    now: UnixTime,
) -> Result<Arc<Snapshot>, SyncError> {
    if let Some(base) = held_base(state.current().as_ref(), sequence) {
        return Ok(base);
    }
    let dir = state.config().snapshots.dir.clone();
    let trust = state.trust.clone();
    let cached = tokio::task::spawn_blocking(move || {
        dir.join(snapshot::manifest_name(sequence))
            .exists()
            .then(|| snapshot::load_snapshot(&dir, sequence, &trust, now).ok())
            .flatten()
    })
    .await
    .map_err(blocking_failed)?;
    if let Some(base) = cached {
        return Ok(Arc::new(base));
    }
    let manifest_name = snapshot::manifest_name(sequence);
    let manifest_bytes = source.fetch_manifest(&manifest_name).await?;
    let (manifest, _) = verify_manifest(&manifest_bytes, &state.trust, now)?;
    if manifest.body.sequence != sequence || manifest.body.base.is_some() {
        return Err(VerifyError::Inconsistent(format!(
            "{manifest_name} is not the full snapshot {sequence}"
        ))
        .into());
    }
    let download = download_and_verify(state, source, &manifest_bytes, &manifest, now, None).await?;
    let keeping = state.clone();
    let base = tokio::task::spawn_blocking(move || {
        let _one_at_a_time = keeping.replication().install_lock();
        keep(&keeping.config().snapshots.dir, download).map(|(snapshot, _)| snapshot)
    })
    .await
    .map_err(blocking_failed)??;
    tracing::info!(sequence, source = %source.label(), "fetched the base of a delta");
    Ok(Arc::new(base))
}

/// A snapshot downloaded into a temporary file and verified, not yet in the cache.
struct Verified {
    file: snapshot::NewFile,
    snapshot: Snapshot,
    manifest_bytes: Vec<u8>,
}

/// How long a download of `size` bytes may take in all.
fn download_deadline(state: &State, size: u64) -> Duration {
    let config = state.config();
    let at_min_rate = Duration::from_secs(size / config.snapshots.min_download_rate.max(1));
    config.snapshots.download_deadline.saturating_add(at_min_rate)
}

/// Downloads the snapshot the (verified) `manifest` names into a new, uniquely named
/// temporary file in the cache, within the download deadline, and verifies it (on `base`
/// for a delta). Nothing in the cache is touched; a failure leaves nothing behind.
async fn download_and_verify<S: SnapshotSource>(
    state: &Arc<State>,
    source: &S,
    manifest_bytes: &[u8],
    manifest: &Manifest,
    now: UnixTime,
    base: Option<Arc<Snapshot>>,
) -> Result<Verified, SyncError> {
    let dir = state.config().snapshots.dir.clone();
    let size = manifest.body.size;
    let (file, out) = tokio::task::spawn_blocking(move || {
        // Named for what it is until it verifies, not for what the manifest says.
        let mut file = snapshot::NewFile::start(&dir, "download")?;
        let out = file.file().try_clone()?;
        Ok::<_, std::io::Error>((file, out))
    })
    .await
    .map_err(blocking_failed)?
    .map_err(SourceError::Io)?;
    let deadline = download_deadline(state, size);
    let temp = file.path().to_path_buf();
    let verified = async {
        tokio::time::timeout(deadline, source.download(&manifest.body.snapshot, size, out))
            .await
            .map_err(|_| SourceError::Deadline { size, deadline })??;
        let trust = state.trust.clone();
        let checked = manifest_bytes.to_vec();
        let snapshot =
            tokio::task::spawn_blocking(move || load_snapshot_file_on(&checked, &temp, &trust, now, base))
                .await
                .map_err(blocking_failed)??;
        Ok::<_, SyncError>(snapshot)
    }
    .await;
    match verified {
        Ok(snapshot) => Ok(Verified {
            file,
            snapshot,
            manifest_bytes: manifest_bytes.to_vec(),
        }),
        Err(e) => {
            discard(file).await;
            Err(e)
        }
    }
}

/// Deletes an unfinished download on the blocking pool (dropping a [`snapshot::NewFile`]
/// unlinks its temporary file), not on a runtime worker; returns once it is gone.
async fn discard(file: snapshot::NewFile) {
    if let Err(e) = tokio::task::spawn_blocking(move || drop(file)).await {
        tracing::warn!(error = %e, "removing an unfinished download failed");
    }
}

/// Links a verified snapshot and its manifest into the cache (under the install lock).
/// Returns the snapshot and whether its files were new: `false` when the cache already
/// holds that sequence (this copy's files are then discarded). Blocking.
fn keep(dir: &std::path::Path, verified: Verified) -> Result<(Snapshot, bool), SyncError> {
    let Verified {
        file,
        snapshot,
        manifest_bytes,
    } = verified;
    let sequence = snapshot.sequence();
    let manifest_name = snapshot::manifest_name(sequence);
    if dir.join(&manifest_name).exists() {
        return Ok((snapshot, false));
    }
    // A snapshot file without its manifest is what a crash between the two writes leaves;
    // it was never served, and the verified download replaces it.
    let name = &snapshot.manifest().body.snapshot;
    if *name == snapshot::snapshot_name(sequence) {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(SourceError::Io(e).into()),
            _ => {}
        }
    }
    file.commit_as(name).map_err(SourceError::Io)?;
    snapshot::write_new(dir, &manifest_name, &manifest_bytes).map_err(SourceError::Io)?;
    Ok((snapshot, true))
}

/// Keeps a verified snapshot in the cache and swaps it in, unless another source got the
/// same or a newer one in first (then this copy is discarded). Blocking.
fn keep_and_swap(
    state: &State,
    verified: Verified,
    now: UnixTime,
    started: std::time::Instant,
) -> Result<Round, SyncError> {
    let _one_at_a_time = state.replication().install_lock();
    let sequence = verified.snapshot.sequence();
    if sequence <= floor(state) {
        // Another source delivered this or a newer one while this copy downloaded.
        return Ok(Round::Unchanged);
    }
    // Already in the cache but not served (kept as a delta's base, or by a process that
    // stopped before its swap): this verified copy is served, the cached files stay.
    let (snapshot, _) = keep(&state.config().snapshots.dir, verified)?;
    // The source answered; recorded before the swap so that whoever sees the new sequence
    // also sees the sync time.
    state.replication().record_sync_success(UnixTime::now());
    state.swap_in(snapshot, now, started)?;
    Ok(Round::Updated(sequence))
}

#[cfg(test)]
mod tests {
    //! Replication against scripted sources: retries, per-source refusals, deadlines and
    //! two sources racing for one sequence, on a real [`State`] and real demo snapshots.
    use super::*;
    use crate::config::{Config, Sources};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    fn demo(path: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/demo")
            .join(path)
    }

    fn state(cache: &Path, extra: Vec<(&'static str, config::Value)>) -> Arc<State> {
        let trust: Vec<String> = [demo("ec/ca.pem"), demo("rsa/ca.pem")]
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut overrides: Vec<(&'static str, config::Value)> = vec![
            ("snapshots.dir", cache.display().to_string().into()),
            ("snapshots.trust", trust.into()),
            ("snapshots.poll_interval", "100ms".into()),
        ];
        overrides.extend(extra);
        let config = Config::load(Sources {
            overrides,
            ..Default::default()
        })
        .unwrap();
        let trust = config.trust_anchors().unwrap();
        Arc::new(State::new(config, trust, &prometheus::Registry::new(), None).unwrap())
    }

    /// Publishes the demo PKI into `dir`; returns the sequence.
    fn publish(dir: &Path) -> u64 {
        let now = UnixTime::now();
        let plan = ocsp_edge_publisher::publish::PublishConfig::from_file(&demo("publish.toml"))
            .unwrap()
            .load(now)
            .unwrap();
        ocsp_edge_publisher::publish::publish(&plan, dir, now, &mut |_| {})
            .unwrap()
            .sequence
    }

    /// What a [`Fake`] does with the downloads it is asked for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Behaviour {
        Honest,
        /// The first `n` downloads stop halfway.
        ShortFor(u32),
        /// Every download has one byte flipped (a complete file, wrong content).
        Lies,
        /// Downloads never finish.
        Stalls,
    }

    /// A source serving a publisher's directory, as scripted.
    struct Fake {
        name: &'static str,
        dir: PathBuf,
        behaviour: Mutex<Behaviour>,
        downloads: Arc<std::sync::atomic::AtomicU32>,
    }

    impl Fake {
        fn new(name: &'static str, dir: &Path, behaviour: Behaviour) -> Fake {
            Fake {
                name,
                dir: dir.to_path_buf(),
                behaviour: Mutex::new(behaviour),
                downloads: Default::default(),
            }
        }

        fn downloads(&self) -> u32 {
            self.downloads.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl SnapshotSource for Fake {
        fn label(&self) -> String {
            self.name.to_string()
        }
        fn long_polls(&self) -> bool {
            false
        }
        async fn newer_manifest(&mut self, current: u64) -> Result<Option<Vec<u8>>, SourceError> {
            let newest = snapshot::manifest_sequences(&self.dir)?.into_iter().next();
            Ok(match newest {
                Some(sequence) if sequence > current => {
                    Some(std::fs::read(self.dir.join(snapshot::manifest_name(sequence)))?)
                }
                _ => None,
            })
        }
        fn round_succeeded(&mut self) {}
        async fn fetch_manifest(&self, name: &str) -> Result<Vec<u8>, SourceError> {
            Ok(std::fs::read(self.dir.join(name))?)
        }
        async fn download(&self, name: &str, size: u64, mut out: std::fs::File) -> Result<(), SourceError> {
            use std::io::Write;
            self.downloads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut bytes = std::fs::read(self.dir.join(name))?;
            let behaviour = {
                let mut behaviour = self.behaviour.lock().unwrap();
                let now = *behaviour;
                if let Behaviour::ShortFor(n) = now {
                    *behaviour = if n > 1 {
                        Behaviour::ShortFor(n - 1)
                    } else {
                        Behaviour::Honest
                    };
                }
                now
            };
            match behaviour {
                Behaviour::Honest => {}
                Behaviour::ShortFor(_) => bytes.truncate(bytes.len() / 2),
                Behaviour::Lies => {
                    let middle = bytes.len() / 2;
                    bytes[middle] ^= 1;
                }
                Behaviour::Stalls => std::future::pending::<()>().await,
            }
            out.write_all(&bytes)?;
            let got = bytes.len() as u64;
            if got < size {
                return Err(SourceError::Truncated { got, expected: size });
            }
            Ok(())
        }
    }

    fn refused(state: &State, reason: &str) -> u64 {
        state.metrics().refusals(reason)
    }

    /// Only committed files and `highest-sequence`: no temporary left behind.
    fn assert_no_temporaries(dir: &Path) {
        let names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| !n.starts_with('.')),
            "temporary files left: {names:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_download_is_retried_until_it_succeeds() {
        let (publisher, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sequence = publish(publisher.path());
        let state = state(cache.path(), vec![]);
        let mut source = Fake::new("flaky", publisher.path(), Behaviour::ShortFor(2));
        let mut refused_here = RefusedHere::default();
        for attempt in 0..2 {
            let error = sync_once(&state, &mut source, &mut refused_here)
                .await
                .unwrap_err();
            assert_eq!(
                error.refusal_label(),
                Some("incomplete"),
                "attempt {attempt}: {error}"
            );
        }
        assert!(
            refused_here.sequences.is_empty(),
            "a transient refusal was remembered"
        );
        let round = sync_once(&state, &mut source, &mut refused_here).await.unwrap();
        assert_eq!(round, Round::Updated(sequence));
        assert_eq!(state.current_sequence(), Some(sequence));
        assert_eq!(refused(&state, "incomplete"), 2);
        assert_eq!(
            crate::served::rollback::read(cache.path()).unwrap(),
            Some(sequence)
        );
        assert_no_temporaries(cache.path());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_that_recovers_is_polled_at_its_interval_again_not_at_its_backoff() {
        let (publisher, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sequence = publish(publisher.path());
        let state = state(cache.path(), vec![("snapshots.max_backoff", "5s".into())]);
        let source = Fake::new("flaky", publisher.path(), Behaviour::ShortFor(3));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(source_loop(state.clone(), source, stopped));
        let attempts = || state.replication().attempts("flaky");
        let failures = || state.replication().failures("flaky");
        // Three short downloads, backing off 200, 400 and 800 ms; then the fourth succeeds.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while state.current_sequence() != Some(sequence) {
            assert!(
                std::time::Instant::now() < deadline,
                "never recovered: {} failures",
                failures()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(failures(), 3);
        let before = attempts();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let polled = attempts() - before;
        // At the 100 ms poll interval a second holds about ten rounds; had the failures
        // not been forgotten, the 800 ms backoff after three would allow one or two.
        assert!(polled >= 5, "{polled} rounds in the second after recovering");
        assert_eq!(failures(), 3, "a round failed after recovering");
        stop.send(true).unwrap();
        task.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lying_source_is_remembered_for_itself_only() {
        let (publisher, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sequence = publish(publisher.path());
        let state = state(cache.path(), vec![]);
        let mut liar = Fake::new("liar", publisher.path(), Behaviour::Lies);
        let mut liar_refused = RefusedHere::default();
        let error = sync_once(&state, &mut liar, &mut liar_refused).await.unwrap_err();
        assert_eq!(error.refusal_label(), Some("hash_mismatch"), "{error}");
        assert!(liar_refused.sequences.contains(&sequence));
        // Asked again, the liar's offer is not downloaded and verified again.
        assert_eq!(
            sync_once(&state, &mut liar, &mut liar_refused).await.unwrap(),
            Round::Unchanged
        );
        assert_eq!(liar.downloads(), 1);
        assert_eq!(state.current_sequence(), None);
        assert_eq!(crate::served::rollback::read(cache.path()).unwrap(), None);

        let mut honest = Fake::new("honest", publisher.path(), Behaviour::Honest);
        let round = sync_once(&state, &mut honest, &mut RefusedHere::default())
            .await
            .unwrap();
        assert_eq!(
            round,
            Round::Updated(sequence),
            "the liar made the sequence refused for all"
        );
        assert_no_temporaries(cache.path());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_download_ends_at_its_deadline_and_holds_up_no_other_source() {
        let (publisher, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sequence = publish(publisher.path());
        let state = state(
            cache.path(),
            vec![
                ("snapshots.download_deadline", "1s".into()),
                ("snapshots.min_download_rate", 1_000_000_000i64.into()),
            ],
        );
        let mut stalled = Fake::new("stalled", publisher.path(), Behaviour::Stalls);
        let mut honest = Fake::new("honest", publisher.path(), Behaviour::Honest);
        let stalled_downloads = stalled.downloads.clone();
        let (mut stalled_refused, mut honest_refused) = (RefusedHere::default(), RefusedHere::default());
        let started = std::time::Instant::now();
        let (stalled_round, honest_round) =
            tokio::join!(sync_once(&state, &mut stalled, &mut stalled_refused), async {
                // Let the stalled source start its download first.
                while stalled_downloads.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                let round = sync_once(&state, &mut honest, &mut honest_refused).await;
                (round, started.elapsed())
            });
        let (honest_round, honest_took) = honest_round;
        assert_eq!(honest_round.unwrap(), Round::Updated(sequence));
        assert!(
            honest_took < Duration::from_millis(900),
            "the honest source waited for the stalled one: {honest_took:?}"
        );
        let error = stalled_round.unwrap_err();
        assert_eq!(error.refusal_label(), Some("deadline"), "{error}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(refused(&state, "deadline"), 1);
        assert_no_temporaries(cache.path());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_sources_delivering_one_sequence_install_it_once() {
        let (publisher, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let sequence = publish(publisher.path());
        let state = state(cache.path(), vec![]);
        let mut first = Fake::new("first", publisher.path(), Behaviour::Honest);
        let mut second = Fake::new("second", publisher.path(), Behaviour::Honest);
        let (mut first_refused, mut second_refused) = (RefusedHere::default(), RefusedHere::default());
        let (a, b) = tokio::join!(
            sync_once(&state, &mut first, &mut first_refused),
            sync_once(&state, &mut second, &mut second_refused)
        );
        let mut rounds = [a.unwrap(), b.unwrap()];
        rounds.sort_by_key(|r| matches!(r, Round::Updated(_)));
        assert_eq!(rounds, [Round::Unchanged, Round::Updated(sequence)]);
        assert_eq!(state.metrics().loads(), 1);
        let mut names: Vec<String> = std::fs::read_dir(cache.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                snapshot::manifest_name(sequence),
                snapshot::snapshot_name(sequence),
                crate::served::rollback::HIGHEST_SEQUENCE_FILE.to_string()
            ]
        );
        assert_eq!(
            std::fs::read(cache.path().join(snapshot::snapshot_name(sequence))).unwrap(),
            std::fs::read(publisher.path().join(snapshot::snapshot_name(sequence))).unwrap()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_manifest_that_does_not_verify_touches_nothing() {
        let (publisher, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let older = publish(publisher.path());
        std::fs::copy(
            publisher.path().join(snapshot::manifest_name(older)),
            cache.path().join(snapshot::manifest_name(older)),
        )
        .unwrap();
        std::fs::copy(
            publisher.path().join(snapshot::snapshot_name(older)),
            cache.path().join(snapshot::snapshot_name(older)),
        )
        .unwrap();
        let state = state(cache.path(), vec![]);
        state.poll_directory(UnixTime::now());
        assert_eq!(state.current_sequence(), Some(older));
        let newer = publish(publisher.path());
        // An orphan of the newer sequence, which a verified download would replace.
        std::fs::write(cache.path().join(snapshot::snapshot_name(newer)), b"orphan").unwrap();
        let manifest = publisher.path().join(snapshot::manifest_name(newer));
        let text = std::fs::read_to_string(&manifest).unwrap();
        let tampered = text.replacen("\"value\": \"", "\"value\": \"AAAA", 1);
        assert_ne!(text, tampered);
        std::fs::write(&manifest, tampered).unwrap();
        let contents = || -> Vec<(PathBuf, Vec<u8>)> {
            let mut files: Vec<_> = std::fs::read_dir(cache.path())
                .unwrap()
                .map(|e| {
                    let path = e.unwrap().path();
                    let bytes = std::fs::read(&path).unwrap();
                    (path, bytes)
                })
                .collect();
            files.sort();
            files
        };
        let before = contents();
        let mut source = Fake::new("forger", publisher.path(), Behaviour::Honest);
        let error = sync_once(&state, &mut source, &mut RefusedHere::default())
            .await
            .unwrap_err();
        assert!(matches!(error, SyncError::Refused(_)), "{error}");
        assert_eq!(source.downloads(), 0, "downloaded before the manifest verified");
        let after = contents();
        assert_eq!(before, after);
        assert_eq!(state.highest_sequence(), older);
        assert_eq!(state.current_sequence(), Some(older));
    }

    #[test]
    fn failing_sources_back_off_exponentially_up_to_the_cap() {
        let (interval, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        let within =
            |delay: Duration, base: Duration| delay >= base.mul_f64(0.79) && delay <= base.mul_f64(1.21);
        assert!(within(next_delay(interval, cap, false, 0), interval));
        assert!(within(
            next_delay(interval, cap, true, 0),
            Duration::from_millis(100)
        ));
        assert!(within(
            next_delay(interval, cap, false, 1),
            Duration::from_millis(200)
        ));
        assert!(within(
            next_delay(interval, cap, false, 2),
            Duration::from_millis(400)
        ));
        assert!(within(
            next_delay(interval, cap, false, 3),
            Duration::from_millis(800)
        ));
        for failures in [4, 20, u32::MAX] {
            assert!(
                within(next_delay(interval, cap, false, failures), cap),
                "{failures}"
            );
        }
    }

    #[test]
    fn retries_are_jittered_so_a_fleet_does_not_poll_in_lockstep() {
        let (interval, cap) = (Duration::from_millis(100), Duration::from_secs(1));
        for failures in [0, 3, 20] {
            let delays: HashSet<Duration> = (0..20)
                .map(|_| next_delay(interval, cap, false, failures))
                .collect();
            assert!(delays.len() > 1, "after {failures} failures: {delays:?}");
        }
    }
}
