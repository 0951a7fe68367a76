//! Read-only memory maps of snapshot files: the only `unsafe` code in the workspace.
//!
//! Mapping a file is `unsafe` because the bytes can change under the program if anyone
//! rewrites or truncates the file while it is mapped (a truncated page is a SIGBUS, a
//! rewritten one breaks every check that ran before). Snapshot files are only ever written
//! through [`store`](super::store): a temporary name, fsync, then a `link` that fails
//! rather than overwrite, so a committed snapshot is never modified. Files owned by someone
//! else are copied into an unlinked private file first ([`store::Mapping`](super::store::Mapping)).
//! Every caller here maps such a file, and never writes through the map.
//!
//! Must never: map writable, or map a file that is still being written.

use memmap2::Mmap;
use std::fs::File;
use std::io;

/// Maps `file` read-only. The caller passes a committed snapshot file (or this process's
/// own unlinked copy of one), which nothing rewrites or truncates while it is mapped.
pub fn map_committed(file: &File) -> io::Result<Mmap> {
    // SAFETY: the file is a committed snapshot (see the module docs): nothing rewrites
    // or truncates it while mapped, and the map is read-only. Deleting the file while
    // mapped is safe on Unix (the inode lives until the map is dropped).
    unsafe { Mmap::map(file) }
}

/// Drops this process's page-table entries for `map` (MADV_DONTNEED), so pages read once
/// (e.g. by a structure check that walked every table) leave the resident set; the next
/// access faults the same file pages back in from the page cache. Best effort: errors are
/// ignored, since the only cost of failure is memory that stays resident.
pub(crate) fn release_resident_pages(map: &Mmap) {
    // SAFETY: a read-only shared file mapping; MADV_DONTNEED on it only discards this
    // process's page-table entries (no private data is lost: there is none), and later
    // reads see the same file contents again.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}
