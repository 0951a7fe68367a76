//! The snapshot directory: naming, atomic never-overwriting writes, and finding
//! snapshots by sequence.
//!
//! A publish writes the snapshot first and the manifest last, each through a temporary
//! file that is fsynced and then hard-linked to its final name (which fails if that name
//! exists, so nothing is ever overwritten), then the directory is fsynced. A crash at any
//! point leaves either no new manifest (readers keep the previous snapshot) or a complete
//! one. Readers only ever look at manifests, so a snapshot without its manifest, or a
//! temporary file, is invisible to them.

use super::manifest::Manifest;
use super::verify::{Snapshot, SnapshotBytes, TrustAnchors, VerifyError};
use crate::time::UnixTime;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How a snapshot file is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// In place: the file is this process's own (its replication cache, a publisher's own
    /// output) and nothing rewrites or truncates it while mapped.
    InPlace,
    /// From a private copy: the file belongs to someone else (a publisher's or shared
    /// directory polled without sources), who may truncate or rewrite it; a mapped page
    /// that vanishes kills the process with SIGBUS. The file is first copied into an
    /// unlinked file only this process holds, and the copy is what is verified and served.
    PrivateCopy,
}

/// Reads the manifest and memory-maps the snapshot of `sequence` in `dir`, then verifies
/// it; a delta's base comes from `held` when that is (or holds) it, else from `dir`.
pub fn load_snapshot_with(
    dir: &Path,
    sequence: u64,
    trust: &TrustAnchors,
    now: UnixTime,
    held: Option<&Arc<Snapshot>>,
) -> Result<Snapshot, VerifyError> {
    load_snapshot_mapped(dir, sequence, trust, now, held, Mapping::InPlace)
}

/// [`load_snapshot_with`], mapping the snapshot (and a base read from `dir`) as `mapping`
/// says.
pub fn load_snapshot_mapped(
    dir: &Path,
    sequence: u64,
    trust: &TrustAnchors,
    now: UnixTime,
    held: Option<&Arc<Snapshot>>,
    mapping: Mapping,
) -> Result<Snapshot, VerifyError> {
    let manifest = fs::read(dir.join(manifest_name(sequence))).map_err(|e| VerifyError::Io(e.to_string()))?;
    let parsed = Manifest::parse(&manifest)?;
    // The manifest names its snapshot; refuse names that could leave the directory.
    if !crate::snapshot::verify::is_plain_file_name(&parsed.body.snapshot) {
        return Err(VerifyError::Inconsistent(format!(
            "snapshot name {:?} is not a plain file name",
            parsed.body.snapshot
        )));
    }
    let base = match &parsed.body.base {
        None => None,
        Some(wanted) => Some(match held_base(held, wanted.sequence) {
            Some(base) => base,
            None if wanted.sequence < sequence => Arc::new(load_snapshot_mapped(
                dir,
                wanted.sequence,
                trust,
                now,
                None,
                mapping,
            )?),
            None => return Err(VerifyError::MissingBase(wanted.sequence)),
        }),
    };
    let snapshot = dir.join(&parsed.body.snapshot);
    match mapping {
        Mapping::InPlace => load_snapshot_file_on(&manifest, &snapshot, trust, now, base),
        Mapping::PrivateCopy => {
            let copy = private_copy(&snapshot).map_err(|e| VerifyError::Io(e.to_string()))?;
            verify_mapped(&manifest, copy, trust, now, base)
        }
    }
}

/// Copies the regular file at `original` into an unlinked file in the same directory
/// (same file system, so no tmpfs memory; `O_TMPFILE` where supported, so it never has a
/// name), else in the system's temporary directory. A file truncated or rewritten while
/// being copied gives a copy that fails verification, never a crash.
fn private_copy(original: &Path) -> io::Result<File> {
    let mut source = File::open(original)?;
    if !source.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", original.display()),
        ));
    }
    let dir = original.parent().unwrap_or(Path::new("."));
    let mut copy = tempfile::tempfile_in(dir).or_else(|_| tempfile::tempfile())?;
    io::copy(&mut source, &mut copy)?;
    Ok(copy)
}

/// The snapshot of `sequence` among what is held: the current snapshot or its base.
pub fn held_base(held: Option<&Arc<Snapshot>>, sequence: u64) -> Option<Arc<Snapshot>> {
    let held = held?;
    if held.base().is_none() && held.sequence() == sequence {
        return Some(held.clone());
    }
    held.base().filter(|base| base.sequence() == sequence).cloned()
}

/// [`load_snapshot_with`] holding nothing.
pub fn load_snapshot(
    dir: &Path,
    sequence: u64,
    trust: &TrustAnchors,
    now: UnixTime,
) -> Result<Snapshot, VerifyError> {
    load_snapshot_with(dir, sequence, trust, now, None)
}

/// Memory-maps `snapshot` and verifies it against `manifest`, over `base` for a delta.
pub fn load_snapshot_file_on(
    manifest: &[u8],
    snapshot: &Path,
    trust: &TrustAnchors,
    now: UnixTime,
    base: Option<Arc<Snapshot>>,
) -> Result<Snapshot, VerifyError> {
    let file = File::open(snapshot).map_err(|e| VerifyError::Io(e.to_string()))?;
    verify_mapped(manifest, file, trust, now, base)
}

fn verify_mapped(
    manifest: &[u8],
    file: File,
    trust: &TrustAnchors,
    now: UnixTime,
    base: Option<Arc<Snapshot>>,
) -> Result<Snapshot, VerifyError> {
    // The file is one nothing else rewrites or truncates (see [`Mapping`]): a snapshot
    // this process committed (written to a temporary name, fsynced, linked), a publisher's
    // own output, or a private unlinked copy.
    let map = super::mapped::map_committed(&file).map_err(|e| VerifyError::Io(e.to_string()))?;
    Snapshot::verify_on(manifest, SnapshotBytes::Mapped { map, file }, trust, now, base)
}

const MANIFEST_SUFFIX: &str = ".manifest.json";
const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Every temporary file in a snapshot directory starts with this.
pub const TEMP_PREFIX: &str = ".tmp-";
/// The newest manifest a publisher or responder offers, under this name.
pub const LATEST_MANIFEST: &str = "latest.manifest.json";

/// The file name of the manifest of snapshot `sequence` (zero-padded, so names sort by
/// sequence).
pub fn manifest_name(sequence: u64) -> String {
    format!("{sequence:020}{MANIFEST_SUFFIX}")
}

/// The file name of the snapshot file of `sequence`.
pub fn snapshot_name(sequence: u64) -> String {
    format!("{sequence:020}{SNAPSHOT_SUFFIX}")
}

/// Sequences that have a manifest in `dir`, highest first.
pub fn manifest_sequences(dir: &Path) -> io::Result<Vec<u64>> {
    let mut sequences: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            name.strip_suffix(MANIFEST_SUFFIX)?.parse().ok()
        })
        .collect();
    sequences.sort_unstable_by(|a, b| b.cmp(a));
    Ok(sequences)
}

/// The highest sequence of any manifest or snapshot in `dir` (0 if none).
pub fn highest_sequence(dir: &Path) -> io::Result<u64> {
    let highest = fs::read_dir(dir)?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let stem = name
                .strip_suffix(MANIFEST_SUFFIX)
                .or_else(|| name.strip_suffix(SNAPSHOT_SUFFIX))?;
            stem.parse::<u64>().ok()
        })
        .max();
    Ok(highest.unwrap_or(0))
}

/// A file being written in `dir` that becomes visible under its final name only on
/// [`NewFile::commit`]. Dropped without commit, it removes itself.
pub struct NewFile {
    temp_path: PathBuf,
    final_path: PathBuf,
    file: File,
}

impl NewFile {
    /// Starts a new file that will be called `name`. Fails early if `name` already exists.
    pub fn create(dir: &Path, name: &str) -> io::Result<NewFile> {
        if dir.join(name).exists() {
            return Err(already_exists(&dir.join(name)));
        }
        NewFile::start(dir, name)
    }

    /// Starts a new file that will be called `name`, whether or not that name exists now:
    /// [`NewFile::commit`] still never replaces it. For downloads, whose final name is
    /// decided only once they have been verified.
    pub fn start(dir: &Path, name: &str) -> io::Result<NewFile> {
        let final_path = dir.join(name);
        // Unique per process and per file, so concurrent writers never collide and a
        // leftover from a crashed process (whatever its PID) never blocks a new write.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp_path = dir.join(format!("{TEMP_PREFIX}{}-{unique}-{name}", std::process::id()));
        let file = File::options().write(true).create_new(true).open(&temp_path)?;
        Ok(NewFile {
            temp_path,
            final_path,
            file,
        })
    }

    /// The temporary file, to write the contents through before [`NewFile::commit`].
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The temporary path, for reading back what was written before committing.
    pub fn path(&self) -> &Path {
        &self.temp_path
    }

    /// [`NewFile::commit`] under `name` (in the same directory) instead of the name it was
    /// started with: a download's temporary name says nothing of what it claims to be.
    pub fn commit_as(mut self, name: &str) -> io::Result<PathBuf> {
        self.final_path = self.final_path.with_file_name(name);
        self.commit()
    }

    /// Flushes to disk and links the file under its final name; never replaces a file.
    pub fn commit(self) -> io::Result<PathBuf> {
        self.file.sync_all()?;
        fs::hard_link(&self.temp_path, &self.final_path).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                already_exists(&self.final_path)
            } else {
                e
            }
        })?;
        fs::remove_file(&self.temp_path)?;
        if let Some(dir) = self.final_path.parent() {
            sync_dir(dir)?;
        }
        Ok(self.final_path.clone())
    }
}

impl Drop for NewFile {
    /// An uncommitted file disappears; after a commit the temporary name is already gone.
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.temp_path);
    }
}

fn already_exists(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "{} already exists; snapshots are never overwritten",
            path.display()
        ),
    )
}

/// Writes `bytes` to a new file `dir/name` atomically (see [`NewFile`]).
pub fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let mut new = NewFile::create(dir, name)?;
    new.file().write_all(bytes)?;
    new.commit()
}

/// Replaces `dir/name` atomically with `bytes`: a temporary file written, given
/// `modified` as its modification time (when set), fsynced and renamed over the name, then
/// the directory fsynced. For the few files that are replaced rather than written once
/// (`latest.manifest.json`, `highest-sequence`); a failure leaves the old file and no
/// temporary. Blocking.
pub fn replace(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    modified: Option<std::time::SystemTime>,
) -> io::Result<()> {
    // Named like every temporary file of the directory, so that one left by a process
    // killed mid-write is cleaned up with the rest (remove_stale_temporaries).
    let temp = dir.join(format!("{TEMP_PREFIX}{}-{name}", std::process::id()));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        if let Some(modified) = modified {
            file.set_modified(modified)?;
        }
        file.sync_all()?;
        fs::rename(&temp, dir.join(name))?;
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// The sequence of the newest manifest in `dir`, if any.
pub fn newest_manifest(dir: &Path) -> io::Result<Option<u64>> {
    Ok(manifest_sequences(dir)?.into_iter().next())
}

/// Removes the manifests (first, so a reader never finds a manifest whose snapshot is
/// gone) and snapshots older than `newest`, except the `older_to_keep` newest of them and
/// `base` (the base of the delta in force, whatever its age). A snapshot is found by the
/// name its manifest gives, when that is a plain file name, else by its sequence. Returns
/// how many were removed; stops at the first manifest it cannot remove. Blocking.
pub fn prune(dir: &Path, newest: u64, older_to_keep: usize, base: Option<u64>) -> io::Result<usize> {
    let mut removed = 0;
    for sequence in manifest_sequences(dir)?
        .into_iter()
        .filter(|s| *s < newest)
        .skip(older_to_keep)
        .filter(|s| Some(*s) != base)
    {
        let manifest = dir.join(manifest_name(sequence));
        let snapshot = fs::read(&manifest)
            .ok()
            .and_then(|bytes| Manifest::parse(&bytes).ok())
            .map(|m| m.body.snapshot)
            .filter(|name| super::verify::is_plain_file_name(name))
            .unwrap_or_else(|| snapshot_name(sequence));
        fs::remove_file(&manifest)?;
        let _ = fs::remove_file(dir.join(snapshot));
        removed += 1;
    }
    Ok(removed)
}

/// Fsyncs the directory itself, so the names linked into it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes temporary files left by a crashed publish (they are never read).
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)?.filter_map(|e| e.ok()) {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_swaps_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        replace(dir.path(), "pointer", b"first", None).unwrap();
        let later = std::time::UNIX_EPOCH + std::time::Duration::from_secs(2_000_000_000);
        replace(dir.path(), "pointer", b"second, longer", Some(later)).unwrap();
        let path = dir.path().join("pointer");
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), later);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary left");
        fs::create_dir(dir.path().join("a-directory")).unwrap();
        assert!(replace(dir.path(), "a-directory", b"x", None).is_err());
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            2,
            "a failed replace leaves no temporary"
        );
    }

    #[test]
    fn prune_keeps_the_newest_the_ones_asked_for_and_the_base() {
        let dir = tempfile::tempdir().unwrap();
        for sequence in [1u64, 2, 3, 4, 5, 6] {
            fs::write(dir.path().join(manifest_name(sequence)), b"not parsed").unwrap();
            fs::write(dir.path().join(snapshot_name(sequence)), b"x").unwrap();
        }
        // Newest 5, one older kept (4), the base 1 kept whatever its age; 6 is above.
        assert_eq!(prune(dir.path(), 5, 1, Some(1)).unwrap(), 2);
        assert_eq!(manifest_sequences(dir.path()).unwrap(), vec![6, 5, 4, 1]);
        for gone in [2u64, 3] {
            assert!(!dir.path().join(snapshot_name(gone)).exists(), "{gone}");
        }
        assert_eq!(newest_manifest(dir.path()).unwrap(), Some(6));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(newest_manifest(empty.path()).unwrap(), None);
    }

    #[test]
    fn a_private_copy_is_unaffected_by_truncating_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join(snapshot_name(1));
        fs::write(&original, vec![7u8; 300_000]).unwrap();
        let copy = private_copy(&original).unwrap();
        File::options()
            .write(true)
            .open(&original)
            .unwrap()
            .set_len(0)
            .unwrap();
        fs::write(&original, b"rewritten").unwrap();
        // The copy is this test's own unlinked file.
        let map = super::super::mapped::map_committed(&copy).unwrap();
        assert_eq!(map.len(), 300_000);
        assert!(map.iter().all(|b| *b == 7));
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "the copy has no name"
        );
    }

    /// The load-time cost of [`Mapping::PrivateCopy`]: copying a snapshot-sized file next to
    /// itself, against the SHA-256 pass that verifying it costs anyway. Run with
    /// `PRIVATE_COPY_MIB=2048 cargo test --release --lib private_copy_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn private_copy_cost() {
        let mib: usize = std::env::var("PRIVATE_COPY_MIB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1024);
        let dir =
            tempfile::tempdir_in(std::env::var("PRIVATE_COPY_DIR").unwrap_or_else(|_| ".".into())).unwrap();
        let original = dir.path().join(snapshot_name(1));
        {
            let mut file = File::create(&original).unwrap();
            let block: Vec<u8> = (0..1 << 20).map(|i| (i * 7 + 3) as u8).collect();
            for _ in 0..mib {
                file.write_all(&block).unwrap();
            }
            file.sync_all().unwrap();
        }
        let started = std::time::Instant::now();
        let mut copy = private_copy(&original).unwrap();
        let copied = started.elapsed();
        io::Seek::seek(&mut copy, io::SeekFrom::Start(0)).unwrap();
        let started = std::time::Instant::now();
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut reader = io::BufReader::with_capacity(1 << 20, copy);
        loop {
            let n = {
                let buffer = io::BufRead::fill_buf(&mut reader).unwrap();
                context.update(buffer);
                buffer.len()
            };
            if n == 0 {
                break;
            }
            io::BufRead::consume(&mut reader, n);
        }
        let hashed = started.elapsed();
        assert_eq!(reader.into_inner().metadata().unwrap().len(), (mib as u64) << 20);
        println!("{mib} MiB: private copy {copied:?}, one SHA-256 pass over it {hashed:?}");
    }

    #[test]
    fn never_overwrites_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        write_new(dir.path(), &manifest_name(5), b"first").unwrap();
        let err = write_new(dir.path(), &manifest_name(5), b"second").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(dir.path().join(manifest_name(5))).unwrap(), b"first");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }

    #[test]
    fn uncommitted_files_are_invisible_and_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut new = NewFile::create(dir.path(), &snapshot_name(9)).unwrap();
            new.file().write_all(b"partial").unwrap();
            assert_eq!(highest_sequence(dir.path()).unwrap(), 0);
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn sequences_are_listed_highest_first() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [3, 11, 7] {
            write_new(dir.path(), &manifest_name(seq), b"{}").unwrap();
        }
        write_new(dir.path(), &snapshot_name(12), b"").unwrap();
        fs::write(dir.path().join("notes.txt"), "x").unwrap();
        fs::write(dir.path().join(".tmp-1-00000000000000000099.manifest.json"), "x").unwrap();
        assert_eq!(manifest_sequences(dir.path()).unwrap(), vec![11, 7, 3]);
        assert_eq!(highest_sequence(dir.path()).unwrap(), 12);
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 1);
    }
}
