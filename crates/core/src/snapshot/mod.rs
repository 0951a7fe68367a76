//! Snapshots: the immutable, versioned, signed files a publisher writes and responders
//! serve from.
//!
//! The submodules (`format`, `manifest`, `verify`, `documents`, `changes`, `unrevoke`,
//! `store`, `mapped`) are private; what other crates use is re-exported here:
//!
//! - **Verifying** (no I/O): [`verify_manifest`] and [`Snapshot::verify`] turn a manifest
//!   and the snapshot's bytes ([`SnapshotBytes`]) into a [`Snapshot`] that is safe to
//!   serve, or a [`VerifyError`]: signatures against the [`TrustAnchors`], hash, structure,
//!   every document ([`DocumentError`]). Nothing is served before this passes.
//!   [`check_unrevocations`] is the edge's refusal of a snapshot that un-revokes without
//!   the publisher's recorded override; [`Snapshot::status_changes_since`],
//!   [`merge_by_serial`] and [`IssuerHashes`] compare and walk verified snapshots.
//! - **The manifest** (no I/O): [`Manifest`], the signed [`ManifestBody`] that names a
//!   snapshot and vouches for it, and its parts.
//! - **The file format** (no I/O): [`SnapshotWriter`] writes one from [`RecordInput`]s
//!   and [`DocumentInput`]s; [`read_metadata`], [`document_bytes`] and [`SnapshotView`]
//!   read one; [`Found`] and [`StoredStatus`] are what a lookup returns. The footer
//!   constants are public for tests that forge files.
//! - **Documents**: [`CRL_CONTENT_TYPE`], and [`is_ocsp_request_path`], the paths no
//!   document may take.
//! - **Change lists** (no I/O): [`changes_between`] two snapshots and the
//!   [`change_digest`] / [`change_digest_of`] a manifest signs ([`ChangeDigest`]).
//! - **The directory**, the only file I/O: [`load_snapshot`] and its variants, file names
//!   ([`manifest_name`], [`snapshot_name`], [`LATEST_MANIFEST`], [`TEMP_PREFIX`]),
//!   atomic never-overwriting writes ([`NewFile`], [`write_new`], [`replace_file`]),
//!   [`prune_snapshots`], and [`map_committed`], read-only memory maps of committed
//!   files (the crate's only `unsafe`).
//!
//! Names that would be ambiguous at this level are re-exported under clearer ones:
//! `unrevoke::check` as [`check_unrevocations`], `changes::digest`/`digest_of` as
//! [`change_digest`]/[`change_digest_of`], `store::replace` as [`replace_file`],
//! `store::prune` as [`prune_snapshots`].

mod changes;
mod documents;
mod format;
mod manifest;
#[allow(unsafe_code)] // the one exception to the crate's `deny(unsafe_code)`: see its docs
mod mapped;
mod store;
mod unrevoke;
mod verify;

// Verifying and serving.
pub use unrevoke::check as check_unrevocations;
pub use verify::{
    merge_by_serial, verify_manifest, IssuerHashes, Snapshot, SnapshotBytes, StatusChange, TrustAnchors,
    VerifyError, DEFAULT_MAX_SEQUENCE_SKEW,
};
// The signed manifest.
pub use manifest::{
    ChangeDigest, ContentHash, Manifest, ManifestBody, ManifestError, ManifestIssuer, ManifestSignature,
    ManifestUnrevocation, DEFAULT_CHUNK_SIZE,
};
// The file format: writing, reading, looking up.
pub use format::{
    document_bytes, read_metadata, serial_key, BaseReference, Document, DocumentInput, DocumentKind,
    FormatError, Found, IssuerSection, LoadedSection, Metadata, RecordInput, Removed, ResponseTimes,
    SectionTemplate, SerialKey, SnapshotView, SnapshotWriter, StoredRecord, StoredStatus, FOOTER_LEN,
    FOOTER_MAGIC, FORMAT_VERSION,
};
// Documents a snapshot serves beside OCSP responses.
pub use documents::{is_ocsp_request_path, DocumentError, CRL_CONTENT_TYPE};
// Change lists between snapshots (the cache tier's feed).
pub use changes::{
    changes_between, digest as change_digest, digest_of as change_digest_of, ChangedCertificate,
};
// The directory: names, loading, atomic writes, pruning.
pub use mapped::map_committed;
pub use store::{
    held_base, highest_sequence, load_snapshot, load_snapshot_file_on, load_snapshot_mapped,
    load_snapshot_with, manifest_name, manifest_sequences, newest_manifest, prune as prune_snapshots,
    remove_stale_temporaries, replace as replace_file, snapshot_name, sync_dir, write_new, Mapping, NewFile,
    LATEST_MANIFEST, TEMP_PREFIX,
};
