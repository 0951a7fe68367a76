//! Anti-rollback state: the highest snapshot sequence ever accepted, persisted in
//! `<snapshots.dir>/highest-sequence` so that a restart cannot be rolled back by an older
//! snapshot left on disk or offered by a mirror.
//!
//! Owns that one file, the in-memory floor ([`Floor`]) and their metrics
//! (`ocsp_edge_highest_sequence`, `ocsp_edge_rollback_state_unreadable`,
//! `ocsp_edge_highest_sequence_unpersisted`, `ocsp_edge_highest_sequence_write_failures_total`).
//! It must never read a damaged file as "no floor": an unreadable or garbled file is
//! reported as such, and the caller then takes the newest snapshot it can verify locally
//! as the floor and leaves the file untouched for an operator (docs/operations.md, "The
//! highest-sequence file").

use ocsp_edge_core::snapshot;
use prometheus::{IntCounter, IntGauge, Registry};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A responder's anti-rollback floor: the highest sequence ever accepted, in memory and in
/// [`HIGHEST_SEQUENCE_FILE`]. Raised only under the caller's swap lock, before the new
/// snapshot is served, so a restart can never go back below what anyone has seen.
#[derive(Debug)]
pub struct Floor {
    highest: AtomicU64,
    /// The file could not be read at start: the floor is what verified locally, and the
    /// file is left as found until an operator resets it.
    unreadable: bool,
    /// `highest` is not on disk yet (a write failed); retried every round.
    unpersisted: AtomicBool,
    metrics: FloorMetrics,
}

/// The floor's metrics; they always show what [`Floor`] holds.
#[derive(Debug)]
struct FloorMetrics {
    highest: IntGauge,
    /// 1 when `highest-sequence` could not be read at start.
    unreadable: IntGauge,
    /// 1 while the highest sequence accepted is not on disk (a write failed).
    unpersisted: IntGauge,
    write_failures: IntCounter,
}

impl FloorMetrics {
    fn register(registry: &Registry) -> Result<FloorMetrics, prometheus::Error> {
        let metrics = FloorMetrics {
            highest: IntGauge::new(
                "ocsp_edge_highest_sequence",
                "Highest snapshot sequence ever accepted; nothing older is served again.",
            )?,
            unreadable: IntGauge::new(
                "ocsp_edge_rollback_state_unreadable",
                "1 when the highest-sequence file could not be read at start: only snapshots not older \
                 than the newest one verified locally are served until an operator resets the file.",
            )?,
            unpersisted: IntGauge::new(
                "ocsp_edge_highest_sequence_unpersisted",
                "1 while the highest sequence accepted could not be written to disk (retried every round).",
            )?,
            write_failures: IntCounter::new(
                "ocsp_edge_highest_sequence_write_failures_total",
                "Failed writes of the highest-sequence file.",
            )?,
        };
        registry.register(Box::new(metrics.highest.clone()))?;
        registry.register(Box::new(metrics.unreadable.clone()))?;
        registry.register(Box::new(metrics.unpersisted.clone()))?;
        registry.register(Box::new(metrics.write_failures.clone()))?;
        Ok(metrics)
    }
}

impl Floor {
    /// The floor persisted in `dir` (0 with no directory, i.e. a cache-mode responder, or
    /// when `danger_allow_rollback` says to ignore it once). A damaged file is never read
    /// as 0: the floor starts at 0 in memory, the first load (the newest snapshot that
    /// verifies locally) sets it, and the file is left for an operator. Its metrics are
    /// registered into `registry`.
    pub fn open(
        dir: &Path,
        danger_allow_rollback: bool,
        registry: &Registry,
    ) -> Result<Floor, prometheus::Error> {
        let metrics = FloorMetrics::register(registry)?;
        let mut unreadable = false;
        let highest = if dir.as_os_str().is_empty() {
            0
        } else if danger_allow_rollback {
            tracing::warn!("danger_allow_rollback: the highest sequence served before is ignored once");
            0
        } else {
            match read(dir) {
                Ok(highest) => highest.unwrap_or(0),
                Err(e) => {
                    tracing::error!(error = %e,
                        "ANTI-ROLLBACK STATE UNREADABLE: only snapshots not older than the newest \
                         one verified locally are served, and the file is left as it is; \
                         see docs/operations.md, \"The highest-sequence file\"");
                    unreadable = true;
                    0
                }
            }
        };
        metrics.highest.set(highest as i64);
        metrics.unreadable.set(i64::from(unreadable));
        Ok(Floor {
            highest: AtomicU64::new(highest),
            unreadable,
            unpersisted: AtomicBool::new(false),
            metrics,
        })
    }

    /// The highest sequence ever accepted; nothing below it is served again.
    pub fn get(&self) -> u64 {
        self.highest.load(Ordering::SeqCst)
    }

    /// Whether the file was unreadable at start (and so is never written).
    pub fn unreadable(&self) -> bool {
        self.unreadable
    }

    /// Whether the last write failed (retry with [`Floor::persist`]).
    pub fn unpersisted(&self) -> bool {
        self.unpersisted.load(Ordering::SeqCst)
    }

    /// Raises the floor to `highest` and writes it to `dir` (under the caller's swap lock,
    /// before the snapshot is served). Blocking (fsyncs).
    pub fn raise(&self, dir: &Path, highest: u64) {
        self.highest.store(highest, Ordering::SeqCst);
        self.metrics.highest.set(highest as i64);
        self.persist(dir);
    }

    /// Writes the floor to disk. A failure is an error, counted, and retried every round
    /// by the caller; the swap stands, since refusing a newer snapshot would hold back the
    /// revocations it carries, and the floor is still enforced in memory. An unreadable
    /// file is left for an operator instead of being overwritten.
    pub fn persist(&self, dir: &Path) {
        let highest = self.get();
        if self.unreadable {
            tracing::error!(
                highest,
                "not persisting the highest sequence: {HIGHEST_SEQUENCE_FILE} was \
                unreadable at start and is left for an operator (docs/operations.md)"
            );
            return;
        }
        match write(dir, highest) {
            Ok(()) => {
                if self.unpersisted.swap(false, Ordering::SeqCst) {
                    tracing::info!(highest, "the highest sequence is persisted again");
                }
                self.metrics.unpersisted.set(0);
            }
            Err(e) => {
                self.metrics.write_failures.inc();
                self.metrics.unpersisted.set(1);
                if !self.unpersisted.swap(true, Ordering::SeqCst) {
                    tracing::error!(highest, error = %e,
                        "cannot persist the highest sequence; a restart could serve an older \
                         snapshot until it is written (retried every round)");
                }
            }
        }
    }
}

/// File in the snapshot directory that remembers the highest sequence ever served.
pub const HIGHEST_SEQUENCE_FILE: &str = "highest-sequence";

/// The file can hold a sequence number and a newline; anything longer is not one.
const MAX_FILE_BYTES: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum HighestSequenceError {
    #[error("cannot read {path}: {source}")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("{path} holds {text:?}, which is not a sequence number")]
    Garbled { path: PathBuf, text: String },
}

/// The persisted highest sequence: `Ok(None)` when there is no file (a fresh cache),
/// an error when there is one that does not hold exactly one decimal sequence number.
pub fn read(dir: &Path) -> Result<Option<u64>, HighestSequenceError> {
    use std::io::Read;
    let path = dir.join(HIGHEST_SEQUENCE_FILE);
    let unreadable = |source| HighestSequenceError::Unreadable {
        path: path.clone(),
        source,
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    let text = String::from_utf8_lossy(&bytes);
    let digits = text.strip_suffix('\n').unwrap_or(&text);
    // Exactly what `write` writes: digits and one newline. `parse` alone would accept a
    // leading `+`, and `trim` would accept a file that something else wrote into.
    let parsed = (bytes.len() as u64 <= MAX_FILE_BYTES
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit()))
    .then(|| digits.parse::<u64>().ok())
    .flatten();
    parsed.map(Some).ok_or_else(|| HighestSequenceError::Garbled {
        path: path.clone(),
        text: text.chars().take(MAX_FILE_BYTES as usize).collect(),
    })
}

/// Replaces the file atomically (write, fsync, rename, fsync the directory). Blocking.
pub fn write(dir: &Path, sequence: u64) -> io::Result<()> {
    snapshot::replace_file(
        dir,
        HIGHEST_SEQUENCE_FILE,
        format!("{sequence}\n").as_bytes(),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back_and_a_missing_file_is_no_floor() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        write(dir.path(), 1_790_000_123).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(1_790_000_123));
        write(dir.path(), u64::MAX).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(u64::MAX));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }

    #[test]
    fn a_damaged_file_is_an_error_never_zero() {
        let dir = tempfile::tempdir().unwrap();
        for damaged in [
            &b"123x\n"[..],
            b"",
            b"\n",
            b" 12\n",
            b"+12\n",
            b"12\n\n",
            b"18446744073709551616\n",
            b"\xff\xfe",
        ] {
            std::fs::write(dir.path().join(HIGHEST_SEQUENCE_FILE), damaged).unwrap();
            assert!(
                matches!(read(dir.path()), Err(HighestSequenceError::Garbled { .. })),
                "{damaged:?} read as {:?}",
                read(dir.path())
            );
        }
        std::fs::write(dir.path().join(HIGHEST_SEQUENCE_FILE), vec![b'1'; 1000]).unwrap();
        assert!(read(dir.path()).is_err(), "an over-long file");
        std::fs::remove_file(dir.path().join(HIGHEST_SEQUENCE_FILE)).unwrap();
        std::fs::create_dir(dir.path().join(HIGHEST_SEQUENCE_FILE)).unwrap();
        assert!(
            matches!(read(dir.path()), Err(HighestSequenceError::Unreadable { .. })),
            "a directory in its place"
        );
    }
}
