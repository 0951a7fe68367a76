//! Verification: the only way to obtain a servable [`Snapshot`].
//!
//! The trust model (docs/architecture.md, "Trust model"): the operator's trust anchors
//! are issuer CA certificates. A manifest is vouched for only by the OCSP signers of
//! those issuers (the issuer itself, or a delegated signer it certified with
//! id-kp-OCSPSigning, valid now), and one snapshot covers every trusted issuer and
//! nothing else: exactly one section per trust anchor, each signed for by that issuer's
//! signer. So no signer can remove, replace or alter another issuer, and a manifest that
//! lists no issuers (and so carries no signatures) is never accepted.
//!
//! A snapshot is accepted only if, in this order: its manifest parses; every issuer it
//! lists carries a signature that verifies and whose certificate may sign OCSP for a
//! trust anchor; the issuers are exactly the trust anchors; its sequence and creation
//! time are not beyond now + the configured skew (sequences are clock-derived, so a
//! signed but absurd sequence must not disable anti-rollback forever); the file's size
//! and hash match the manifest; the file's structure and metadata agree with the
//! manifest; and every document is bound to its issuer (see [`super::documents`]).
//! Signatures come first because they are cheap and a forged manifest should not make us
//! hash gigabytes.

use super::format::{self, Document, Found, LoadedSection, Metadata, SnapshotView};
use super::manifest::{ContentHash, Manifest, ManifestBody, ManifestError};
use crate::model::Serial;
use crate::ocsp::{CertIdRef, Refusal, RequestedCertId};
use crate::pki::{CertIdHash, Certificate};
use crate::time::UnixTime;
use std::ops::Deref;
use std::time::Duration;

/// How far beyond now a manifest's sequence (unix seconds, see the publisher) and
/// creation time may be, unless configured (`snapshots.max_sequence_skew`): generous
/// for clocks that disagree, small against a sequence meant to outlast every publish.
pub const DEFAULT_MAX_SEQUENCE_SKEW: Duration = Duration::from_secs(86_400);

/// The issuer certificates a responder answers for (`--trust`), and how far in the
/// future a snapshot may claim to be.
#[derive(Clone, Debug)]
pub struct TrustAnchors {
    issuers: Vec<Certificate>,
    max_sequence_skew: Duration,
}

impl Default for TrustAnchors {
    fn default() -> Self {
        TrustAnchors::new(Vec::new())
    }
}

impl TrustAnchors {
    /// Trust exactly `issuers` (a re-issued CA certificate with the same subject and key
    /// counts as the same issuer), with the default sequence skew. No issuers: every
    /// snapshot is refused.
    pub fn new(issuers: Vec<Certificate>) -> Self {
        TrustAnchors {
            issuers,
            max_sequence_skew: DEFAULT_MAX_SEQUENCE_SKEW,
        }
    }

    /// The same anchors, refusing sequences and creation times beyond now + `skew`.
    pub fn with_max_sequence_skew(mut self, skew: Duration) -> Self {
        self.max_sequence_skew = skew;
        self
    }

    /// The trusted issuer certificates, as given.
    pub fn issuers(&self) -> &[Certificate] {
        &self.issuers
    }

    /// How far beyond now a sequence or creation time may be.
    pub fn max_sequence_skew(&self) -> Duration {
        self.max_sequence_skew
    }

    /// The anchor `signer` may sign OCSP for at `now`, if any.
    fn anchor_for(&self, signer: &Certificate, now: UnixTime) -> Option<&Certificate> {
        self.issuers
            .iter()
            .find(|anchor| signer.verify_ocsp_signer_for(anchor, now).is_ok())
    }

    /// One certificate per issuer entity: a re-issued CA certificate (same subject and
    /// key) is the same issuer as the one it replaces.
    fn entities(&self) -> Vec<&Certificate> {
        let mut entities: Vec<&Certificate> = Vec::with_capacity(self.issuers.len());
        for anchor in &self.issuers {
            if !entities.iter().any(|known| known.same_entity(anchor)) {
                entities.push(anchor);
            }
        }
        entities
    }

    /// The largest sequence (and creation time, in unix seconds) accepted at `now`.
    fn future_limit(&self, now: UnixTime) -> u64 {
        u64::try_from(now.seconds())
            .unwrap_or(0)
            .saturating_add(self.max_sequence_skew.as_secs())
    }
}

/// Why a snapshot (or its manifest) is refused; the running snapshot stays.
/// [`VerifyError::label`] is the metric label, [`VerifyError::is_transient`] says whether
/// trying the same sequence again later may succeed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The manifest does not parse, or an issuer's signature is missing, malformed or
    /// does not verify.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The manifest's format version is not the one this build reads.
    #[error("unsupported manifest format version {0}")]
    UnsupportedVersion(u32),
    /// The named issuer's signature verifies, but its certificate is not a trust anchor
    /// or a delegate one certified for OCSP and valid now.
    #[error("the signer for issuer {0} is not certified for OCSP by any trusted issuer")]
    Untrusted(String),
    /// The file's length is not the manifest's `size` (shorter: most likely still being
    /// copied, labelled `incomplete`).
    #[error("snapshot size {actual} does not match the manifest's {expected}")]
    SizeMismatch {
        /// The manifest's `size`.
        expected: u64,
        /// The file's length (or how far it could be read).
        actual: u64,
    },
    /// The file's content hash is not the manifest's `sha256_tree`: altered or corrupt.
    #[error("snapshot SHA-256 does not match the manifest")]
    HashMismatch,
    /// The file's hash matched but its structure cannot be read (a signed but broken file).
    #[error(transparent)]
    Format(#[from] format::FormatError),
    /// File and manifest, or delta and base, disagree (the text says where).
    #[error("snapshot and manifest disagree: {0}")]
    Inconsistent(String),
    /// A sequence at or below the one served: replaying an older signed snapshot would
    /// roll statuses back, so it is refused.
    #[error("sequence {offered} is not newer than {current}")]
    NotNewer {
        /// The refused snapshot's sequence.
        offered: u64,
        /// The sequence being served.
        current: u64,
    },
    /// Reading the file failed; transient.
    #[error("cannot read snapshot: {0}")]
    Io(String),
    /// A delta whose base (this sequence, with the hash the manifest names) is not held;
    /// transient, the base can be fetched first.
    #[error("delta needs base snapshot {0}, which is not held")]
    MissingBase(u64),
    /// The issuers listed are not exactly the trust anchors, once each.
    #[error("the manifest's issuers are not exactly the trusted issuers: {0}")]
    IssuerSet(String),
    /// A sequence further ahead of now than the allowed skew: accepted, it would make
    /// every honest later publish look like a rollback.
    #[error("sequence {sequence} is beyond now + the allowed skew ({limit})")]
    FutureSequence {
        /// The manifest's sequence.
        sequence: u64,
        /// The largest sequence accepted now (unix seconds + skew).
        limit: u64,
    },
    /// A creation time further ahead of now than the allowed skew.
    #[error("created_at {created_at} is beyond now + the allowed skew ({limit})")]
    FutureCreation {
        /// The manifest's `created_at`, as written.
        created_at: String,
        /// The latest creation time accepted now (unix seconds).
        limit: u64,
    },
    /// A document its issuer did not vouch for, or at a path it may not take.
    #[error("document {path}: {reason}")]
    Document {
        /// The document's URL path.
        path: String,
        /// What is wrong with it.
        reason: super::documents::DocumentError,
    },
    /// Serials this responder serves as revoked would be served as good (or vanish)
    /// without the publisher's recorded `--allow-unrevoke` override: see
    /// [`super::check_unrevocations`].
    #[error(
        "it un-revokes {count} certificate(s) this responder answers revoked for ({serials}), and its \
         manifest records no --allow-unrevoke override for them"
    )]
    Unrevoked {
        /// How many serials would be un-revoked.
        count: usize,
        /// The serials, comma-separated (only the first few when there are many).
        serials: String,
    },
}

impl VerifyError {
    /// Every label a refusal is counted under: what [`VerifyError::label`] returns, plus
    /// replication's download refusals (`incomplete`: a short download; `deadline`: a
    /// download slower than `snapshots.min_download_rate`). Metrics pre-create the series.
    pub const LABELS: [&'static str; 17] = [
        "bad_signature",
        "unsigned",
        "bad_manifest",
        "unsupported_version",
        "untrusted_signer",
        "hash_mismatch",
        "corrupt",
        "rollback",
        "io",
        "missing_base",
        "incomplete",
        "deadline",
        "issuer_set",
        "future_sequence",
        "future_created_at",
        "bad_document",
        "unrevoke",
    ];

    /// Whether the refusal may go away by itself (a file still being copied, a base not yet
    /// fetched, a read error), so the sequence is tried again later; every other refusal
    /// is about the signed content itself and stays refused.
    pub fn is_transient(&self) -> bool {
        matches!(self.label(), "io" | "incomplete" | "missing_base")
    }

    /// Stable metric label for refused snapshots.
    pub fn label(&self) -> &'static str {
        match self {
            VerifyError::Manifest(ManifestError::BadSignature(_)) => "bad_signature",
            VerifyError::Manifest(ManifestError::MissingSignature(_)) => "unsigned",
            VerifyError::Manifest(_) => "bad_manifest",
            VerifyError::UnsupportedVersion(_) => "unsupported_version",
            VerifyError::Untrusted(_) => "untrusted_signer",
            // A file shorter than its manifest states is most likely still being copied.
            VerifyError::SizeMismatch { expected, actual } if actual < expected => "incomplete",
            VerifyError::SizeMismatch { .. } | VerifyError::HashMismatch => "hash_mismatch",
            VerifyError::Format(_) | VerifyError::Inconsistent(_) => "corrupt",
            VerifyError::NotNewer { .. } => "rollback",
            VerifyError::Io(_) => "io",
            VerifyError::MissingBase(_) => "missing_base",
            VerifyError::IssuerSet(_) => "issuer_set",
            VerifyError::FutureSequence { .. } => "future_sequence",
            VerifyError::FutureCreation { .. } => "future_created_at",
            VerifyError::Document { .. } => "bad_document",
            VerifyError::Unrevoked { .. } => "unrevoke",
        }
    }
}

/// The bytes of a snapshot file: a read-only memory map in production, a vector in tests.
pub enum SnapshotBytes {
    /// A committed snapshot file, mapped read-only (see [`super::map_committed`]); the file is
    /// kept to hash it with positioned reads rather than through the map.
    Mapped {
        /// The read-only map lookups read from.
        map: memmap2::Mmap,
        /// The same file, open for `pread`.
        file: std::fs::File,
    },
    /// Bytes held in memory: tests and tools that read a file whole.
    Owned(Vec<u8>),
}

impl Deref for SnapshotBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SnapshotBytes::Mapped { map, .. } => map,
            SnapshotBytes::Owned(bytes) => bytes,
        }
    }
}

impl SnapshotBytes {
    /// The [`ContentHash`] of the whole file, its pieces hashed on every core (rayon).
    /// A mapped file is hashed with `pread` into small buffers rather than through the
    /// map: pages read that way stay in the page cache without being charged to this
    /// process, so verifying a multi-gigabyte snapshot does not fault it all into the
    /// responder's resident set, and reads of independent pieces proceed in parallel.
    fn content_hash(&self, chunk_size: u64) -> Result<Vec<u8>, VerifyError> {
        use rayon::prelude::*;
        let chunk = usize::try_from(chunk_size.max(1)).unwrap_or(usize::MAX);
        let pieces = self.len().div_ceil(chunk).max(1);
        let digests = (0..pieces)
            .into_par_iter()
            .map(|piece| {
                let start = piece * chunk;
                let end = self.len().min(start.saturating_add(chunk));
                self.piece_digest(start, end)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ContentHash::root(&digests))
    }

    fn piece_digest(&self, start: usize, end: usize) -> Result<ring::digest::Digest, VerifyError> {
        match self {
            SnapshotBytes::Owned(bytes) => {
                Ok(ring::digest::digest(&ring::digest::SHA256, &bytes[start..end]))
            }
            SnapshotBytes::Mapped { file, .. } => {
                use std::os::unix::fs::FileExt;
                let mut context = ring::digest::Context::new(&ring::digest::SHA256);
                let mut buffer = vec![0u8; (1 << 20).min(end - start).max(1)];
                let mut offset = start;
                while offset < end {
                    let want = buffer.len().min(end - offset);
                    let read = file
                        .read_at(&mut buffer[..want], offset as u64)
                        .map_err(|e| VerifyError::Io(e.to_string()))?;
                    if read == 0 {
                        return Err(VerifyError::SizeMismatch {
                            expected: self.len() as u64,
                            actual: offset as u64,
                        });
                    }
                    context.update(&buffer[..read]);
                    offset += read;
                }
                Ok(context.finish())
            }
        }
    }
}

/// One issuer of a verified snapshot, with the hashes CertIDs are matched on.
struct ServedIssuer {
    loaded: LoadedSection,
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
}

impl ServedIssuer {
    fn matches(&self, id: &CertIdRef<'_>) -> bool {
        let (name, key) = match id.hash {
            CertIdHash::Sha1 => &self.sha1,
            CertIdHash::Sha256 => &self.sha256,
        };
        // The whole CertID must match: key hash alone could answer for a different issuer
        // that shares a key (cross-signed or re-issued CA certificates).
        name.as_slice() == id.issuer_name_hash && key.as_slice() == id.issuer_key_hash
    }
}

/// A verified snapshot, ready to serve. Immutable; replaced whole on hot-swap.
///
/// A delta is served as an overlay: a lookup searches the delta's (small) tables first and
/// falls back to its base, which the delta holds; a tombstone hides the base's record. The
/// answers are those of the full snapshot the publisher would have written.
pub struct Snapshot {
    manifest: Manifest,
    bytes: SnapshotBytes,
    metadata: Metadata,
    issuers: Vec<ServedIssuer>,
    /// For a delta: the full snapshot it applies to.
    base: Option<std::sync::Arc<Snapshot>>,
    documents: std::collections::HashMap<String, usize>,
    /// The longest document path: an OCSP GET (a ~100-character base64 path) is longer,
    /// so it skips the hash lookup.
    longest_document_path: usize,
    earliest_next_update: UnixTime,
}

impl Snapshot {
    /// Verifies `manifest_bytes` and `bytes` completely (see the module docs).
    pub fn verify(
        manifest_bytes: &[u8],
        bytes: SnapshotBytes,
        trust: &TrustAnchors,
        now: UnixTime,
    ) -> Result<Snapshot, VerifyError> {
        Self::verify_on(manifest_bytes, bytes, trust, now, None)
    }

    /// Verifies a snapshot that may be a delta, given the full snapshot it names as its
    /// base (which must be exactly that one: same sequence and same integrity hash).
    pub fn verify_on(
        manifest_bytes: &[u8],
        bytes: SnapshotBytes,
        trust: &TrustAnchors,
        now: UnixTime,
        base: Option<std::sync::Arc<Snapshot>>,
    ) -> Result<Snapshot, VerifyError> {
        let (manifest, anchors) = verify_manifest(manifest_bytes, trust, now)?;
        let body = &manifest.body;
        let base = match (&body.base, base) {
            (None, _) => None,
            (Some(wanted), Some(base)) if base.is_base_for(wanted) => Some(base),
            (Some(wanted), _) => return Err(VerifyError::MissingBase(wanted.sequence)),
        };
        check_integrity(body, &bytes)?;
        let view = SnapshotView::open(&bytes)?;
        let metadata = view.metadata().clone();
        let issuers = match_sections(&manifest, &metadata, view.sections(), &anchors)?;
        drop(view);
        if let SnapshotBytes::Mapped { map, .. } = &bytes {
            // The structure check walked every lookup table through the map. Those pages
            // stay in the page cache, but need not stay in this process's resident set
            // (10 million entries are 320 MB): requests fault back the parts they use.
            // Nothing refers into the map yet.
            super::mapped::release_resident_pages(map);
        }
        if let Some(base) = &base {
            let names = |issuers: &[ServedIssuer]| -> Vec<String> {
                issuers.iter().map(|i| i.loaded.section.name.clone()).collect()
            };
            if names(&issuers) != names(&base.issuers) {
                return Err(VerifyError::Inconsistent(
                    "a delta must cover exactly its base's issuers".into(),
                ));
            }
        }
        let documents = super::documents::check(&metadata, &bytes, &anchors).map_err(|refused| {
            VerifyError::Document {
                path: refused.path,
                reason: refused.reason,
            }
        })?;
        let earliest_next_update = earliest_next_update(&metadata)?;
        let longest_document_path = documents.keys().map(String::len).max().unwrap_or(0);
        Ok(Snapshot {
            manifest,
            bytes,
            metadata,
            issuers,
            base,
            documents,
            longest_document_path,
            earliest_next_update,
        })
    }

    /// The manifest's sequence: a responder only ever swaps to a higher one.
    pub fn sequence(&self) -> u64 {
        self.manifest.body.sequence
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// When the publisher wrote the file.
    pub fn created_at(&self) -> UnixTime {
        UnixTime(self.metadata.created_at)
    }

    /// The earliest nextUpdate of anything served (responses, a delta's base records,
    /// documents): from then on some answer is stale unless a newer snapshot arrives.
    pub fn earliest_next_update(&self) -> UnixTime {
        self.earliest_next_update
    }

    /// Certificates answered for (a delta's base included).
    pub fn entry_count(&self) -> u64 {
        self.metadata.issuers.iter().map(|s| s.live_entries).sum()
    }

    /// Issuer section `position` of this file, for walking its records.
    pub fn section(&self, position: usize) -> Option<&LoadedSection> {
        self.issuers.get(position).map(|i| &i.loaded)
    }

    /// The full snapshot this delta applies to; `None` for a full snapshot.
    pub fn base(&self) -> Option<&std::sync::Arc<Snapshot>> {
        self.base.as_ref()
    }

    /// Whether this is the full snapshot `wanted` names.
    fn is_base_for(&self, wanted: &format::BaseReference) -> bool {
        self.base.is_none()
            && self.sequence() == wanted.sequence
            && self
                .manifest
                .body
                .sha256_tree
                .eq_ignore_ascii_case(&wanted.sha256_tree)
    }

    /// The issuer section names, in file order.
    pub fn issuer_names(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.loaded.section.name.as_str())
    }

    /// The file's length in bytes (a delta's own file only, not its base).
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The document served at `path` (a CRL, the CCADB JSON index) and its bytes.
    pub fn document(&self, path: &str) -> Option<(&Document, &[u8])> {
        if path.len() > self.longest_document_path {
            return None;
        }
        let document = self.metadata.documents.get(*self.documents.get(path)?)?;
        Some((document, format::document_bytes(&self.bytes, document)?))
    }

    /// Every document this file serves (a delta's replace its base's as a whole).
    pub fn documents(&self) -> &[Document] {
        &self.metadata.documents
    }

    /// The whole snapshot file (documents are served as slices of it).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The pre-signed response for `id`, or why there is none.
    pub fn lookup<'i>(&self, id: impl Into<CertIdRef<'i>>) -> Result<Found<'_>, Refusal> {
        let id = id.into();
        let position = self
            .issuers
            .iter()
            .position(|issuer| issuer.matches(&id))
            .ok_or(Refusal::UnknownIssuer)?;
        let serial = id.serial;
        match self.issuers[position].loaded.found(&self.bytes, serial, id.hash) {
            Some(Ok(found)) => Ok(found),
            Some(Err(_)) => Err(Refusal::UnassignedSerial),
            None => {
                let base = self.base.as_deref().ok_or(Refusal::UnassignedSerial)?;
                // Same issuers in the same order (checked at verification).
                match base
                    .issuers
                    .get(position)
                    .and_then(|i| i.loaded.found(&base.bytes, serial, id.hash))
                {
                    Some(Ok(found)) => Ok(found),
                    _ => Err(Refusal::UnassignedSerial),
                }
            }
        }
    }

    /// Every served record of issuer section `position` in serial order, a delta merged
    /// over its base: (serial, status). Sequential; for diffs and deltas, not requests.
    pub fn live_statuses(
        &self,
        position: usize,
    ) -> Box<dyn Iterator<Item = (Serial, format::StoredStatus)> + '_> {
        let Some(issuer) = self.issuers.get(position) else {
            return Box::new(std::iter::empty());
        };
        let own = issuer
            .loaded
            .records(&self.bytes)
            .filter_map(|r| Some((Serial::from_der_content(r.serial)?, r.status)));
        let Some(base) = self.base.as_deref() else {
            return Box::new(own.filter_map(|(serial, status)| Some((serial, status?))));
        };
        let below = base
            .live_statuses(position)
            .map(|(serial, status)| (serial, Some(status)));
        Box::new(
            merge_by_serial(own, below)
                .filter_map(|(serial, overlay, base)| Some((serial, overlay.or(base)?)))
                .filter_map(|(serial, status)| Some((serial, status?))),
        )
    }
}

/// A certificate whose status differs between two snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange {
    /// Issuer section name.
    pub issuer: String,
    /// The certificate whose status changed.
    pub serial: crate::model::Serial,
    /// The status in the newer snapshot; `None` when the newer one no longer has it.
    pub status: Option<format::StoredStatus>,
}

/// The CertID hashes one issuer section answers for, by hash algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerHashes {
    /// (issuerNameHash, issuerKeyHash) with SHA-1.
    pub sha1: (Vec<u8>, Vec<u8>),
    /// (issuerNameHash, issuerKeyHash) with SHA-256.
    pub sha256: (Vec<u8>, Vec<u8>),
}

impl Snapshot {
    /// Each issuer section's name and the CertID hashes it answers for (the change feed
    /// tells caches which CertIDs a changed serial was cached under).
    pub fn issuer_hashes(&self) -> impl Iterator<Item = (&str, IssuerHashes)> {
        self.issuers.iter().map(|issuer| {
            (
                issuer.loaded.section.name.as_str(),
                IssuerHashes {
                    sha1: issuer.sha1.clone(),
                    sha256: issuer.sha256.clone(),
                },
            )
        })
    }

    /// Whether the section named `issuer` serves a response for `serial` (a delta's
    /// base included, its tombstones excluded).
    pub fn lists(&self, issuer: &str, serial: &crate::model::Serial) -> bool {
        let Some(issuer) = self.issuers.iter().find(|i| i.loaded.section.name == issuer) else {
            return false;
        };
        let id = RequestedCertId {
            hash: CertIdHash::Sha1,
            issuer_name_hash: issuer.sha1.0.clone(),
            issuer_key_hash: issuer.sha1.1.clone(),
            serial: serial.clone(),
        };
        self.lookup(&id).is_ok()
    }

    /// Every certificate whose status in `self` differs from its status in `older`
    /// (added, removed, revoked, or any change of revocation time or reason), by issuer
    /// section name. A merge walk of both sorted tables: O(entries), sequential reads.
    pub fn status_changes_since(&self, older: &Snapshot) -> Vec<StatusChange> {
        if let Some(changes) = self.delta_changes_since(older) {
            return changes;
        }
        let mut changes = Vec::new();
        for (position, issuer) in self.issuers.iter().enumerate() {
            let name = &issuer.loaded.section.name;
            let before: Box<dyn Iterator<Item = _>> =
                match older.issuers.iter().position(|i| &i.loaded.section.name == name) {
                    Some(old) => older.live_statuses(old),
                    None => Box::new(std::iter::empty()),
                };
            for (serial, now, was) in merge_by_serial(self.live_statuses(position), before) {
                if now != was {
                    changes.push(StatusChange {
                        issuer: name.clone(),
                        serial,
                        status: now,
                    });
                }
            }
        }
        changes
    }
}

impl Snapshot {
    /// [`Snapshot::status_changes_since`] when both are the same base or deltas on it:
    /// only serials in either delta can differ, so only those are compared — O(delta),
    /// not O(entries). `None` when the shortcut does not apply.
    fn delta_changes_since(&self, older: &Snapshot) -> Option<Vec<StatusChange>> {
        let base = self.base.as_deref()?;
        let older_base = older.base.as_deref().unwrap_or(older);
        if !std::ptr::eq(base, older_base) {
            return None;
        }
        let mut changes = Vec::new();
        for (position, issuer) in self.issuers.iter().enumerate() {
            let delta_serials = |snapshot: &Snapshot| -> Vec<Serial> {
                match (snapshot.base.is_some(), snapshot.issuers.get(position)) {
                    (true, Some(i)) => i
                        .loaded
                        .records(&snapshot.bytes)
                        .filter_map(|r| Serial::from_der_content(r.serial))
                        .collect(),
                    _ => Vec::new(),
                }
            };
            let mut candidates = delta_serials(self);
            candidates.extend(delta_serials(older));
            candidates.sort_unstable();
            candidates.dedup();
            for serial in candidates {
                let (now, was) = (
                    self.status_at(position, &serial),
                    older.status_at(position, &serial),
                );
                if now != was {
                    changes.push(StatusChange {
                        issuer: issuer.loaded.section.name.clone(),
                        serial,
                        status: now,
                    });
                }
            }
        }
        Some(changes)
    }

    /// The status served for `serial` by the section named `issuer`, a delta over its base.
    pub fn status_of(&self, issuer: &str, serial: &Serial) -> Option<format::StoredStatus> {
        let position = self
            .issuers
            .iter()
            .position(|i| i.loaded.section.name == issuer)?;
        self.status_at(position, serial)
    }

    /// The status served for `serial` in issuer section `position`, a delta over its base.
    fn status_at(&self, position: usize, serial: &Serial) -> Option<format::StoredStatus> {
        let content = serial.as_der_content();
        if let Some(record) = self.issuers.get(position)?.loaded.record(&self.bytes, content) {
            return record.status;
        }
        let base = self.base.as_deref()?;
        base.issuers
            .get(position)?
            .loaded
            .record(&base.bytes, content)?
            .status
    }
}

/// Walks two serial-ordered streams together: every serial once, with its value in each
/// (`None` where a stream lacks it).
pub fn merge_by_serial<A, B>(
    a: impl Iterator<Item = (Serial, A)>,
    b: impl Iterator<Item = (Serial, B)>,
) -> impl Iterator<Item = (Serial, Option<A>, Option<B>)> {
    use std::cmp::Ordering;
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || {
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((x, _)), Some((y, _))) => x.cmp(y),
        };
        Some(match order {
            Ordering::Less => a.next().map(|(s, v)| (s, Some(v), None))?,
            Ordering::Greater => b.next().map(|(s, v)| (s, None, Some(v)))?,
            Ordering::Equal => {
                let (serial, x) = a.next()?;
                let (_, y) = b.next()?;
                (serial, Some(x), Some(y))
            }
        })
    })
}

/// Checks a manifest on its own: it parses; every issuer's signature verifies and comes
/// from a key certified for OCSP by a trust anchor; the issuers are exactly the trust
/// anchors; its sequence and creation time are not in the future beyond the allowed
/// skew. Cheap, so replication runs it before downloading the snapshot a manifest names
/// (whose size it then trusts): nothing of a manifest that fails here may be believed.
/// Returns the manifest and, per issuer, (trust anchor, signer certificate).
pub fn verify_manifest(
    manifest_bytes: &[u8],
    trust: &TrustAnchors,
    now: UnixTime,
) -> Result<(Manifest, Vec<(Certificate, Certificate)>), VerifyError> {
    let manifest = Manifest::parse(manifest_bytes)?;
    if manifest.body.format_version != format::FORMAT_VERSION {
        return Err(VerifyError::UnsupportedVersion(manifest.body.format_version));
    }
    let mut anchors = Vec::with_capacity(manifest.body.issuers.len());
    for issuer in &manifest.body.issuers {
        let signer = manifest.verified_signer(&issuer.name)?;
        let anchor = trust
            .anchor_for(&signer, now)
            .ok_or_else(|| VerifyError::Untrusted(issuer.name.clone()))?;
        anchors.push((anchor.clone(), signer));
    }
    check_issuer_set(&manifest, &anchors, trust)?;
    check_not_from_the_future(&manifest.body, trust, now)?;
    if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&manifest.body.chunk_size) {
        return Err(VerifyError::Inconsistent(format!(
            "hash chunk size {} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}",
            manifest.body.chunk_size
        )));
    }
    if !is_plain_file_name(&manifest.body.snapshot) {
        return Err(VerifyError::Inconsistent(format!(
            "snapshot name {:?} is not a plain file name",
            manifest.body.snapshot
        )));
    }
    Ok((manifest, anchors))
}

/// One snapshot covers every trusted issuer and nothing else: each trust anchor entity is
/// listed exactly once (every listed issuer already maps to an anchor, through the signer
/// that signed for it), and the manifest carries exactly one signature per listed issuer.
/// Without this, a signer could publish a snapshot that drops every other issuer, and a
/// manifest listing no issuers would need no signature at all.
fn check_issuer_set(
    manifest: &Manifest,
    anchors: &[(Certificate, Certificate)],
    trust: &TrustAnchors,
) -> Result<(), VerifyError> {
    let listed = &manifest.body.issuers;
    if listed.is_empty() {
        return Err(VerifyError::IssuerSet("it lists no issuers".into()));
    }
    for (position, issuer) in listed.iter().enumerate() {
        if listed[..position]
            .iter()
            .any(|earlier| earlier.name == issuer.name)
        {
            return Err(VerifyError::IssuerSet(format!(
                "it lists issuer {:?} twice",
                issuer.name
            )));
        }
    }
    for entity in trust.entities() {
        match anchors
            .iter()
            .filter(|(anchor, _)| anchor.same_entity(entity))
            .count()
        {
            1 => {}
            0 => {
                return Err(VerifyError::IssuerSet(format!(
                    "it does not cover trusted issuer {}",
                    entity.display_name()
                )))
            }
            _ => {
                return Err(VerifyError::IssuerSet(format!(
                    "it lists trusted issuer {} more than once",
                    entity.display_name()
                )))
            }
        }
    }
    let signatures = &manifest.signatures;
    for (position, signature) in signatures.iter().enumerate() {
        let unlisted = !listed.iter().any(|issuer| issuer.name == signature.issuer);
        let repeated = signatures[..position]
            .iter()
            .any(|s| s.issuer == signature.issuer);
        if unlisted || repeated {
            return Err(VerifyError::IssuerSet(format!(
                "it carries a signature for {:?} that no listed issuer accounts for",
                signature.issuer
            )));
        }
    }
    Ok(())
}

/// Sequences are unix seconds at publish time (or one above the previous), so one far
/// beyond now is not from an honest publisher; accepted, it would be persisted as the
/// highest sequence and every genuine publish after it refused as a rollback.
fn check_not_from_the_future(
    body: &ManifestBody,
    trust: &TrustAnchors,
    now: UnixTime,
) -> Result<(), VerifyError> {
    let limit = trust.future_limit(now);
    if body.sequence > limit {
        return Err(VerifyError::FutureSequence {
            sequence: body.sequence,
            limit,
        });
    }
    let created_at = UnixTime::parse_rfc3339(&body.created_at).ok_or_else(|| {
        VerifyError::Inconsistent(format!("created_at {:?} is not RFC 3339", body.created_at))
    })?;
    if u64::try_from(created_at.seconds()).is_ok_and(|created| created > limit) {
        return Err(VerifyError::FutureCreation {
            created_at: body.created_at.clone(),
            limit,
        });
    }
    Ok(())
}

/// When the snapshot starts going stale: the earliest nextUpdate of any response or
/// document it serves. A section's stated value is capped by the times its records use,
/// so a section cannot claim to last longer than its own responses. A snapshot with
/// nothing that expires could never turn `/readyz` false, so it is refused.
fn earliest_next_update(metadata: &Metadata) -> Result<UnixTime, VerifyError> {
    let sections = metadata
        .issuers
        .iter()
        .filter(|section| section.live_entries > 0)
        .map(|section| {
            section
                .times
                .iter()
                .map(|t| t.next_update)
                .fold(section.earliest_next_update, i64::min)
        });
    let documents = metadata.documents.iter().map(|d| d.next_update);
    match sections.chain(documents).min() {
        Some(earliest) if earliest < i64::MAX => Ok(UnixTime(earliest)),
        _ => Err(VerifyError::Inconsistent(
            "nothing in the snapshot has a nextUpdate, so it could never be seen to go stale".into(),
        )),
    }
}

/// Bounds on a manifest's hash piece size: a signed but absurd value must not make a
/// responder allocate a digest per byte, or hash gigabytes on one core.
const MIN_CHUNK_SIZE: u64 = 64 << 10;
const MAX_CHUNK_SIZE: u64 = 1 << 30;

/// A file name that cannot leave the directory it is joined to.
pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.')
}

fn check_integrity(body: &ManifestBody, bytes: &SnapshotBytes) -> Result<(), VerifyError> {
    if bytes.len() as u64 != body.size {
        return Err(VerifyError::SizeMismatch {
            expected: body.size,
            actual: bytes.len() as u64,
        });
    }
    let digest = bytes.content_hash(body.chunk_size)?;
    if hex::encode(digest) != body.sha256_tree.to_ascii_lowercase() {
        return Err(VerifyError::HashMismatch);
    }
    Ok(())
}

/// Checks that the file's sections are exactly the manifest's issuers, each with the
/// trusted issuer certificate and the signer that signed the manifest for it.
fn match_sections(
    manifest: &Manifest,
    metadata: &Metadata,
    sections: &[LoadedSection],
    anchors: &[(Certificate, Certificate)],
) -> Result<Vec<ServedIssuer>, VerifyError> {
    let body = &manifest.body;
    if metadata.sequence != body.sequence
        || metadata.issuers.len() != body.issuers.len()
        || metadata.base != body.base
        || Some(UnixTime(metadata.created_at)) != UnixTime::parse_rfc3339(&body.created_at)
    {
        return Err(VerifyError::Inconsistent(
            "sequence, creation time, base or issuer count differs".into(),
        ));
    }
    let mut served = Vec::with_capacity(anchors.len());
    for ((loaded, listed), (anchor, signer)) in sections.iter().zip(&body.issuers).zip(anchors) {
        if loaded.section.name != listed.name || loaded.section.entry_count != listed.entries {
            return Err(VerifyError::Inconsistent(format!(
                "issuer {} differs",
                listed.name
            )));
        }
        if !loaded.issuer.same_entity(anchor) || loaded.signer.der() != signer.der() {
            return Err(VerifyError::Inconsistent(format!(
                "issuer {} is not the one its manifest signer speaks for",
                listed.name
            )));
        }
        let issuer = &loaded.issuer;
        let hashes = |h: CertIdHash| (issuer.name_hash(h), issuer.key_hash(h));
        served.push(ServedIssuer {
            loaded: loaded.clone(),
            sha1: hashes(CertIdHash::Sha1),
            sha256: hashes(CertIdHash::Sha256),
        });
    }
    Ok(served)
}
