//! The store's lease: two live publishers on one snapshot directory (active/standby,
//! possibly on two hosts over NFS) never both write.
//!
//! The lease is a numbered file in the store, `.publisher-lease.<generation>`, holding
//! the holder's id and its expiry (wall-clock milliseconds). The highest generation is
//! the lease; only its holder rewrites it (renewal: write a temporary file, rename over
//! its own generation). Taking the lease over is creating generation + 1 with `link(2)`,
//! which fails if the name exists, also on NFS (the server decides): of two standbys
//! racing, exactly one wins. A generation is never reused, so it is also a fencing token:
//! a holder that finds a higher generation than its own has lost, whatever its file
//! says. An advisory `flock` on `.publisher-lease.lock` additionally serialises holders
//! on one host; it is not relied on across hosts.
//!
//! A holder renews at most a third of the way into its lease and, right before each
//! rename that publishes ([`DirectoryLease::check`]), makes sure its generation is still
//! the highest and at least a third of the lease is left, so it stops writing well
//! before anyone else may take over. Assumption, documented for operators: the hosts'
//! clocks agree to within that third (NTP gives milliseconds).
//!
//! Owns the lease files only; never touches snapshots.

use crate::publish::fence::Fenced;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const LEASE_PREFIX: &str = ".publisher-lease.";
const LOCK_FILE: &str = ".publisher-lease.lock";
/// Older generations kept beside the current one (for operators reading the history).
const KEPT_GENERATIONS: usize = 3;

/// What a lease file says.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseRecord {
    pub holder: String,
    pub generation: u64,
    /// Wall-clock milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
}

/// Why the lease could not be read or written (an I/O problem, not a lost race).
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("lease in {dir}: {source}")]
    Directory {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A lease kept elsewhere (an object store), by a [`StoreLease`] the binary supplies.
    #[error("lease object {location}: {source}")]
    Object {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The store's lease as the live publisher uses it: the directory's ([`DirectoryLease`]),
/// or an object store's, which the binary supplies.
pub trait StoreLease: Send + Sync {
    /// Takes the lease when free or expired, renews it when held.
    fn try_hold(&self, now_ms: i64) -> Result<Standing, LeaseError>;
    /// The fence (see [`fence_verdict`]), reading the store every time.
    fn check(&self, now_ms: i64) -> Result<(), Fenced>;
    /// Gives the lease up, so a standby takes over at once.
    fn release(&self) -> Result<(), LeaseError>;
}

impl StoreLease for DirectoryLease {
    fn try_hold(&self, now_ms: i64) -> Result<Standing, LeaseError> {
        DirectoryLease::try_hold(self, now_ms)
    }

    fn check(&self, now_ms: i64) -> Result<(), Fenced> {
        DirectoryLease::check(self, now_ms)
    }

    fn release(&self) -> Result<(), LeaseError> {
        DirectoryLease::release(self)
    }
}

/// The fence rule, whatever the store: `Ok` only if the store's current record is the
/// one `held` (same holder and generation) with at least a third of `duration` left.
pub fn fence_verdict(
    current: Option<&LeaseRecord>,
    held: Option<&LeaseRecord>,
    duration: Duration,
    now_ms: i64,
) -> Result<(), Fenced> {
    let Some(held) = held else {
        return Err(Fenced::LeaseLost(
            "this publisher does not hold the store's lease".into(),
        ));
    };
    match current {
        Some(record) if record.generation == held.generation && record.holder == held.holder => {
            if record.expires_at_ms.saturating_sub(millis(duration) / 3) > now_ms {
                Ok(())
            } else {
                Err(Fenced::LeaseLost(format!(
                    "the lease (generation {}) expires in {} ms, under a third of its duration: not renewed in time",
                    record.generation,
                    record.expires_at_ms.saturating_sub(now_ms)
                )))
            }
        }
        Some(record) => Err(Fenced::LeaseLost(format!(
            "the lease is now generation {} held by {}",
            record.generation, record.holder
        ))),
        None => Err(Fenced::LeaseLost("the lease is gone".into())),
    }
}

/// Whether this publisher holds the lease after an attempt, and who does otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    Held { generation: u64, expires_at_ms: i64 },
    HeldBy(LeaseRecord),
}

/// The lease of one directory store, as seen by one publisher.
pub struct DirectoryLease {
    dir: PathBuf,
    holder: String,
    duration: Duration,
    held: Mutex<Option<LeaseRecord>>,
}

impl DirectoryLease {
    pub fn new(dir: &Path, holder: String, duration: Duration) -> DirectoryLease {
        DirectoryLease {
            dir: dir.to_path_buf(),
            holder,
            duration,
            held: Mutex::new(None),
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Takes the lease when it is free or expired, renews it when held; `now_ms` is the
    /// wall clock. Never takes a lease another holder has not let expire.
    pub fn try_hold(&self, now_ms: i64) -> Result<Standing, LeaseError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.error(e))?;
        let _lock = HostLock::take(&self.dir.join(LOCK_FILE));
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.current().map_err(|e| self.error(e))?;
        let expires_at_ms = now_ms.saturating_add(millis(self.duration));
        let ours = |record: &LeaseRecord| {
            record.holder == self.holder && held.as_ref().is_some_and(|h| h.generation == record.generation)
        };
        match current {
            // Renewal: only while our own lease has not run out; after that someone may
            // already be taking over, and we must compete for a new generation like them.
            Some(record) if ours(&record) && record.expires_at_ms > now_ms => {
                let renewed = LeaseRecord {
                    expires_at_ms,
                    ..record
                };
                self.write_over(&renewed).map_err(|e| self.error(e))?;
                // A takeover between our read and our rename would have made a higher
                // generation: then the rename renewed a lease that is no longer current.
                match self.current().map_err(|e| self.error(e))? {
                    Some(now) if now.generation == renewed.generation => {
                        *held = Some(renewed.clone());
                        Ok(Standing::Held {
                            generation: renewed.generation,
                            expires_at_ms,
                        })
                    }
                    other => {
                        *held = None;
                        Ok(Standing::HeldBy(other.unwrap_or(renewed)))
                    }
                }
            }
            Some(record) if record.expires_at_ms > now_ms => {
                *held = None;
                Ok(Standing::HeldBy(record))
            }
            expired_or_none => {
                let generation = expired_or_none.map_or(1, |r| r.generation.saturating_add(1));
                let record = LeaseRecord {
                    holder: self.holder.clone(),
                    generation,
                    expires_at_ms,
                };
                match self.create(&record) {
                    Ok(()) => {
                        *held = Some(record);
                        self.prune(generation);
                        Ok(Standing::Held {
                            generation,
                            expires_at_ms,
                        })
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        *held = None;
                        let winner = self.current().map_err(|e| self.error(e))?;
                        Ok(Standing::HeldBy(winner.unwrap_or(record)))
                    }
                    Err(e) => Err(self.error(e)),
                }
            }
        }
    }

    /// The fence: `Ok` only if our generation is still the highest and at least a third
    /// of the lease is left at `now_ms`. Reads the store every time.
    pub fn check(&self, now_ms: i64) -> Result<(), Fenced> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let current = self
            .current()
            .map_err(|e| Fenced::LeaseLost(format!("the lease cannot be read: {e}")))?;
        fence_verdict(current.as_ref(), held.as_ref(), self.duration, now_ms)
    }

    /// Gives the lease up (on shutdown), so a standby takes over at once instead of after
    /// the lease runs out. Only our own, still-current generation is touched.
    pub fn release(&self) -> Result<(), LeaseError> {
        let _lock = HostLock::take(&self.dir.join(LOCK_FILE));
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(record) = held.take() else {
            return Ok(());
        };
        match self.current().map_err(|e| self.error(e))? {
            Some(current) if current.generation == record.generation && current.holder == self.holder => self
                .write_over(&LeaseRecord {
                    expires_at_ms: 0,
                    ..record
                })
                .map_err(|e| self.error(e)),
            _ => Ok(()),
        }
    }

    /// The highest generation's record. A record never counts for longer than one lease
    /// duration after its file was last written, whatever expiry it claims: a holder
    /// whose clock runs far ahead (or a planted file) cannot lock the others out for
    /// longer than a lease. A damaged file (none is ever written in place) counts as
    /// held for one duration after it was written.
    pub fn current(&self) -> std::io::Result<Option<LeaseRecord>> {
        let Some(generation) = self.generations()?.into_iter().max() else {
            return Ok(None);
        };
        let path = self.path_of(generation);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let written = std::fs::metadata(&path)?
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let latest_expiry = written.saturating_add(millis(self.duration));
        Ok(Some(match serde_json::from_slice::<LeaseRecord>(&bytes) {
            Ok(record) if record.generation == generation => LeaseRecord {
                expires_at_ms: record.expires_at_ms.min(latest_expiry),
                ..record
            },
            _ => LeaseRecord {
                holder: format!("(unreadable lease file {})", path.display()),
                generation,
                expires_at_ms: latest_expiry,
            },
        }))
    }

    fn generations(&self) -> std::io::Result<Vec<u64>> {
        Ok(std::fs::read_dir(&self.dir)?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()?
                    .strip_prefix(LEASE_PREFIX)?
                    .parse()
                    .ok()
            })
            .collect())
    }

    fn path_of(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("{LEASE_PREFIX}{generation:020}"))
    }

    /// Writes `record` to a temporary file in the store, flushed to disk.
    fn temporary(&self, record: &LeaseRecord) -> std::io::Result<tempfile::TempPath> {
        let mut file = tempfile::Builder::new()
            .prefix(".publisher-lease-tmp-")
            .tempfile_in(&self.dir)?;
        file.write_all(&serde_json::to_vec(record).map_err(std::io::Error::other)?)?;
        file.as_file().sync_all()?;
        Ok(file.into_temp_path())
    }

    /// Creates generation `record.generation`; `AlreadyExists` if anyone else did first.
    fn create(&self, record: &LeaseRecord) -> std::io::Result<()> {
        let temp = self.temporary(record)?;
        std::fs::hard_link(&temp, self.path_of(record.generation))?;
        drop(temp);
        ocsp_edge_core::snapshot::sync_dir(&self.dir)
    }

    /// Replaces our own generation's file atomically.
    fn write_over(&self, record: &LeaseRecord) -> std::io::Result<()> {
        let temp = self.temporary(record)?;
        temp.persist(self.path_of(record.generation))
            .map_err(|e| e.error)?;
        ocsp_edge_core::snapshot::sync_dir(&self.dir)
    }

    fn prune(&self, newest: u64) {
        if let Ok(mut generations) = self.generations() {
            generations.sort_unstable_by(|a, b| b.cmp(a));
            for old in generations
                .into_iter()
                .filter(|g| *g < newest)
                .skip(KEPT_GENERATIONS)
            {
                let _ = std::fs::remove_file(self.path_of(old));
            }
        }
    }

    fn error(&self, source: std::io::Error) -> LeaseError {
        LeaseError::Directory {
            dir: self.dir.clone(),
            source,
        }
    }
}

/// An advisory whole-file lock (`File::lock`, flock(2) on Linux), released when dropped:
/// serialises lease updates of publishers on one host. Best effort: where the lock is not
/// available, link(2) alone keeps takeovers exclusive.
struct HostLock(Option<std::fs::File>);

impl HostLock {
    fn take(path: &Path) -> HostLock {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .ok();
        if let Some(file) = &file {
            let _ = file.lock();
        }
        HostLock(file)
    }
}

impl Drop for HostLock {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            let _ = file.unlock();
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Wall-clock milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An id for this publisher: host name, process id and a random part (a restarted
/// process never mistakes its predecessor's lease for its own).
pub fn default_holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}/{}/{:08x}", std::process::id(), rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_790_000_000_000;
    const SECOND: i64 = 1000;

    fn lease(dir: &Path, holder: &str) -> DirectoryLease {
        DirectoryLease::new(dir, holder.into(), Duration::from_secs(30))
    }

    #[test]
    fn one_holder_at_a_time_and_takeover_only_after_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (lease(dir.path(), "a"), lease(dir.path(), "b"));
        assert!(matches!(a.try_hold(T), Ok(Standing::Held { generation: 1, .. })));
        assert!(matches!(b.try_hold(T + SECOND), Ok(Standing::HeldBy(r)) if r.holder == "a"));
        assert!(a.check(T + SECOND).is_ok());
        assert!(b.check(T + SECOND).is_err(), "b never held it");
        // Renewed at 10 s: held until 40 s; b still waits at 35 s.
        assert!(matches!(
            a.try_hold(T + 10 * SECOND),
            Ok(Standing::Held { generation: 1, .. })
        ));
        assert!(matches!(b.try_hold(T + 35 * SECOND), Ok(Standing::HeldBy(_))));
        // a stops renewing; its fence closes a third before expiry (at 30 s of 40 s)...
        assert!(a.check(T + 29 * SECOND).is_ok());
        assert!(a.check(T + 31 * SECOND).is_err());
        // ...and b takes over once it has expired, with a new generation.
        assert!(matches!(
            b.try_hold(T + 41 * SECOND),
            Ok(Standing::Held { generation: 2, .. })
        ));
        assert!(b.check(T + 41 * SECOND).is_ok());
        // a comes back: its generation is gone, it cannot renew, its fence stays closed.
        assert!(matches!(a.try_hold(T + 42 * SECOND), Ok(Standing::HeldBy(r)) if r.holder == "b"));
        assert!(a.check(T + 42 * SECOND).is_err());
    }

    #[test]
    fn a_holder_whose_lease_ran_out_cannot_renew_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let a = lease(dir.path(), "a");
        a.try_hold(T).unwrap();
        // Stalled past expiry: it competes for a new generation, as a standby would.
        assert!(matches!(
            a.try_hold(T + 31 * SECOND),
            Ok(Standing::Held { generation: 2, .. })
        ));
    }

    #[test]
    fn of_two_racing_for_the_same_generation_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (lease(dir.path(), "a"), lease(dir.path(), "b"));
        let record = LeaseRecord {
            holder: "a".into(),
            generation: 7,
            expires_at_ms: T,
        };
        a.create(&record).unwrap();
        let lost = b.create(&LeaseRecord {
            holder: "b".into(),
            ..record.clone()
        });
        assert_eq!(lost.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(b.current().unwrap(), Some(record));
    }

    #[test]
    fn a_lease_claiming_a_far_future_expiry_lasts_one_duration_from_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (lease(dir.path(), "a"), lease(dir.path(), "b"));
        // Written now by a holder whose clock is a day ahead (or by an intruder).
        let now = now_ms();
        b.create(&LeaseRecord {
            holder: "far-ahead".into(),
            generation: 1,
            expires_at_ms: now + 86_400 * SECOND,
        })
        .unwrap();
        assert!(matches!(a.try_hold(now + SECOND), Ok(Standing::HeldBy(r)) if r.holder == "far-ahead"));
        // One lease duration (30 s) after the file was written, it is free.
        assert!(matches!(
            a.try_hold(now + 31 * SECOND),
            Ok(Standing::Held { generation: 2, .. })
        ));
    }

    #[test]
    fn release_hands_over_at_once_and_a_damaged_file_is_not_free() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (lease(dir.path(), "a"), lease(dir.path(), "b"));
        a.try_hold(T).unwrap();
        a.release().unwrap();
        assert!(a.check(T).is_err());
        assert!(matches!(
            b.try_hold(T + SECOND),
            Ok(Standing::Held { generation: 2, .. })
        ));
        // Garbage in the highest generation (written by someone else): held until its
        // mtime + one duration, not free.
        std::fs::write(b.path_of(3), b"not json").unwrap();
        assert!(matches!(a.try_hold(now_ms()), Ok(Standing::HeldBy(r)) if r.generation == 3));
        assert!(b.check(now_ms()).is_err(), "a higher generation fences b");
    }
}
