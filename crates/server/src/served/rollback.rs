//! Anti-rollback state: the highest snapshot sequence ever accepted, persisted in
//! `<snapshots.dir>/highest-sequence` so that a restart cannot be rolled back by an older
//! snapshot left on disk or offered by a mirror.
//!
//! Owns reading and writing that one file. It must never read a damaged file as "no
//! floor": an unreadable or garbled file is reported as such, and the caller then takes
//! the newest snapshot it can verify locally as the floor and leaves the file untouched for
//! an operator (docs/operations.md, "The highest-sequence file").

use ocsp_edge_core::snapshot::store;
use std::io;
use std::path::{Path, PathBuf};

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
    store::replace(
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
