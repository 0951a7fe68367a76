//! Verification: the only way to obtain a servable [`Snapshot`].
//!
//! A snapshot is accepted only if, in this order: its manifest parses; for every issuer
//! it covers, the manifest carries a signature that verifies and whose certificate may
//! sign OCSP for one of the operator's trust anchors (the issuer itself, or a delegated
//! signer it issued with id-kp-OCSPSigning); the file's size and SHA-256 match the
//! manifest; and the file's structure and metadata agree with the manifest. Signatures
//! come first because they are cheap and a forged manifest should not make us hash
//! gigabytes.

use super::format::{self, Document, Found, LoadedSection, Metadata, SnapshotView};
use super::manifest::{ContentHash, Manifest, ManifestBody, ManifestError};
use crate::model::Serial;
use crate::ocsp::{CertIdRef, Refusal, RequestedCertId};
use crate::pki::cert::{CertIdHash, Certificate};
use crate::time::UnixTime;
use std::ops::Deref;

/// The issuer certificates a responder answers for (`--trust`).
#[derive(Clone, Debug, Default)]
pub struct TrustAnchors {
    issuers: Vec<Certificate>,
}

impl TrustAnchors {
    pub fn new(issuers: Vec<Certificate>) -> Self {
        TrustAnchors { issuers }
    }

    pub fn issuers(&self) -> &[Certificate] {
        &self.issuers
    }

    /// The anchor `signer` may sign OCSP for at `now`, if any.
    fn anchor_for(&self, signer: &Certificate, now: UnixTime) -> Option<&Certificate> {
        self.issuers
            .iter()
            .find(|anchor| signer.verify_ocsp_signer_for(anchor, now).is_ok())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("unsupported manifest format version {0}")]
    UnsupportedVersion(u32),
    #[error("the signer for issuer {0} is not certified for OCSP by any trusted issuer")]
    Untrusted(String),
    #[error("snapshot size {actual} does not match the manifest's {expected}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("snapshot SHA-256 does not match the manifest")]
    HashMismatch,
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error("snapshot and manifest disagree: {0}")]
    Inconsistent(String),
    #[error("sequence {offered} is not newer than {current}")]
    NotNewer { offered: u64, current: u64 },
    #[error("cannot read snapshot: {0}")]
    Io(String),
    #[error("delta needs base snapshot {0}, which is not held")]
    MissingBase(u64),
}

impl VerifyError {
    /// Every label a refusal is counted under: what [`VerifyError::label`] returns, plus
    /// replication's download refusals (`incomplete`: a short download; `deadline`: a
    /// download slower than `snapshots.min_download_rate`). Metrics pre-create the series.
    pub const LABELS: [&'static str; 12] = [
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
        }
    }
}

/// The bytes of a snapshot file: a read-only memory map in production, a vector in tests.
pub enum SnapshotBytes {
    Mapped { map: memmap2::Mmap, file: std::fs::File },
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
            // SAFETY: a read-only shared file mapping; MADV_DONTNEED only drops this
            // process's page-table entries, and the next access maps the same file pages
            // from the page cache again. Nothing refers into the map yet.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
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
        let documents = index_documents(&metadata)?;
        let earliest_next_update = UnixTime(
            metadata
                .issuers
                .iter()
                .map(|s| s.earliest_next_update)
                .chain(metadata.documents.iter().map(|d| d.next_update))
                .min()
                .unwrap_or(i64::MAX),
        );
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

    pub fn sequence(&self) -> u64 {
        self.manifest.body.sequence
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn created_at(&self) -> UnixTime {
        UnixTime(self.metadata.created_at)
    }

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

    pub fn issuer_names(&self) -> impl Iterator<Item = &str> {
        self.issuers.iter().map(|i| i.loaded.section.name.as_str())
    }

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

/// Checks a manifest on its own: it parses, and every issuer's signature verifies and
/// comes from a key certified for OCSP by a trust anchor. Cheap, so replication runs it
/// before downloading the snapshot a manifest names (whose size it then trusts).
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

/// Bounds on a manifest's hash piece size: a signed but absurd value must not make a
/// responder allocate a digest per byte, or hash gigabytes on one core.
const MIN_CHUNK_SIZE: u64 = 64 << 10;
const MAX_CHUNK_SIZE: u64 = 1 << 30;

/// A file name that cannot leave the directory it is joined to.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && !name.starts_with('.')
}

/// Maps each document path to its index; paths must be unique absolute URL paths, and
/// every document must belong to an issuer of the snapshot.
fn index_documents(metadata: &Metadata) -> Result<std::collections::HashMap<String, usize>, VerifyError> {
    let mut index = std::collections::HashMap::with_capacity(metadata.documents.len());
    for (position, document) in metadata.documents.iter().enumerate() {
        let known_issuer = metadata.issuers.iter().any(|i| i.name == document.issuer);
        if !document.path.starts_with('/') || !known_issuer {
            return Err(VerifyError::Inconsistent(format!(
                "document {} is malformed",
                document.path
            )));
        }
        if index.insert(document.path.clone(), position).is_some() {
            return Err(VerifyError::Inconsistent(format!(
                "document path {} appears twice",
                document.path
            )));
        }
    }
    Ok(index)
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
    {
        return Err(VerifyError::Inconsistent(
            "sequence, base or issuer count differs".into(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::{publish, PublishConfig};

    const NOW: UnixTime = UnixTime(1_790_000_000);

    /// A freshly published demo snapshot: (manifest bytes, snapshot bytes, trust anchors).
    fn published() -> (Vec<u8>, Vec<u8>, TrustAnchors) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/publish.toml");
        let plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let report = publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap();
        let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
        (
            std::fs::read(report.manifest).unwrap(),
            std::fs::read(report.snapshot).unwrap(),
            trust,
        )
    }

    fn refusal(manifest: &[u8], snapshot: &[u8], trust: &TrustAnchors) -> &'static str {
        match Snapshot::verify(manifest, SnapshotBytes::Owned(snapshot.to_vec()), trust, NOW) {
            Ok(_) => "accepted",
            Err(e) => e.label(),
        }
    }

    fn edit_manifest(manifest: &[u8], edit: impl FnOnce(&mut Manifest)) -> Vec<u8> {
        let mut parsed = Manifest::parse(manifest).unwrap();
        edit(&mut parsed);
        parsed.to_json()
    }

    #[test]
    fn every_refusal_reason_has_its_case() {
        let (manifest, snapshot, trust) = published();
        assert_eq!(refusal(&manifest, &snapshot, &trust), "accepted");

        let unsigned = edit_manifest(&manifest, |m| m.signatures.clear());
        assert_eq!(refusal(&unsigned, &snapshot, &trust), "unsigned");

        let forged = edit_manifest(&manifest, |m| m.body.size += 1);
        assert_eq!(refusal(&forged, &snapshot, &trust), "bad_signature");

        let future_format = edit_manifest(&manifest, |m| m.body.format_version = format::FORMAT_VERSION + 1);
        assert_eq!(refusal(&future_format, &snapshot, &trust), "unsupported_version");

        assert_eq!(refusal(b"{not json", &snapshot, &trust), "bad_manifest");
        let unknown_field = String::from_utf8(manifest.clone())
            .unwrap()
            .replacen('{', "{\"extra\": 1,", 1);
        assert_eq!(
            refusal(unknown_field.as_bytes(), &snapshot, &trust),
            "bad_manifest"
        );

        let stranger = TrustAnchors::new(vec![trust.issuers()[1].clone()]);
        assert_eq!(refusal(&manifest, &snapshot, &stranger), "untrusted_signer");

        assert_eq!(
            refusal(&manifest, &snapshot[..snapshot.len() - 1], &trust),
            "hash_mismatch"
        );
        let mut flipped = snapshot.clone();
        flipped[snapshot.len() / 3] ^= 0x01;
        assert_eq!(refusal(&manifest, &flipped, &trust), "hash_mismatch");
    }

    #[test]
    fn a_manifest_naming_a_file_outside_its_directory_is_refused_before_any_download() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/publish.toml");
        let plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
        let (manifest, _, trust) = published();
        let signers: Vec<_> = plan
            .issuers
            .iter()
            .map(|i| (i.name.as_str(), &i.signer, &i.key))
            .collect();
        for name in ["../x.snapshot", "a/b.snapshot", ".hidden", ""] {
            let mut body = Manifest::parse(&manifest).unwrap().body;
            body.snapshot = name.to_string();
            // Properly signed, so only the name can be what is refused.
            let signed = Manifest::sign(body, &signers).unwrap().to_json();
            let refused = verify_manifest(&signed, &trust, NOW).err().map(|e| e.to_string());
            assert!(
                refused
                    .as_deref()
                    .is_some_and(|e| e.contains("not a plain file name")),
                "{name}: {refused:?}"
            );
        }
    }

    #[test]
    fn status_changes_list_exactly_the_certificates_whose_status_differs() {
        use crate::model::{CertStatus, RevocationReason};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/publish.toml");
        let mut plan = PublishConfig::from_file(&path).unwrap().load(NOW).unwrap();
        let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
        let dir = tempfile::tempdir().unwrap();
        let load = |report: crate::publish::PublishReport| {
            Snapshot::verify(
                &std::fs::read(report.manifest).unwrap(),
                SnapshotBytes::Owned(std::fs::read(report.snapshot).unwrap()),
                &trust,
                NOW,
            )
            .unwrap()
        };
        let before = load(publish(&plan, dir.path(), NOW, &mut |_| {}).unwrap());
        let records = &mut plan.issuers[1].records;
        let good = records.iter().position(|r| r.status == CertStatus::Good).unwrap();
        records[good].status = CertStatus::Revoked {
            at: NOW,
            reason: Some(RevocationReason::KeyCompromise),
            invalidity: None,
        };
        let revoked_serial = records[good].serial.clone();
        let removed = records.pop().unwrap().serial;
        // Re-signed an hour later: every response differs, two statuses do.
        let after = load(publish(&plan, dir.path(), NOW.plus_seconds(3600), &mut |_| {}).unwrap());
        let changes = after.status_changes_since(&before);
        let rsa = plan.issuers[1].name.clone();
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(changes.iter().all(|c| c.issuer == rsa));
        assert!(changes.contains(&StatusChange {
            issuer: rsa.clone(),
            serial: revoked_serial,
            status: Some(format::StoredStatus::Revoked {
                at: NOW,
                reason: Some(RevocationReason::KeyCompromise)
            }),
        }));
        assert!(changes.contains(&StatusChange {
            issuer: rsa,
            serial: removed,
            status: None,
        }));
        assert!(before.status_changes_since(&before).is_empty());
    }

    #[test]
    fn a_signer_outside_its_validity_is_untrusted() {
        let (manifest, snapshot, trust) = published();
        let long_after = UnixTime(4_102_444_800); // 2100, after every demo certificate
        let refused = Snapshot::verify(&manifest, SnapshotBytes::Owned(snapshot), &trust, long_after);
        assert_eq!(refused.err().map(|e| e.label()), Some("untrusted_signer"));
    }
}
