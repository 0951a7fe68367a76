//! The snapshot file format, version 2: every certificate's two pre-signed OCSP
//! responses stored as their *signatures* and facts, laid out so that a responder can
//! memory-map the file, look a certificate up in place with no per-entry work at load
//! time, and rebuild the exact signed bytes around the signature (see
//! [`crate::ocsp::ResponseTemplate`]): what is the same in every response of an
//! issuer (responder ID, signature algorithm, embedded signer certificate, issuer name
//! and key hashes) is stored once, in the metadata.
//!
//! ```text
//! offset 0   "OCSPEDGE-SNAP-v2"            16-byte file magic
//!            record ...                     one per certificate, issuer by issuer
//!            entry table, hash index ...    one per issuer: sorted fixed-width entries,
//!                                           then slots pointing into them by key hash
//!            document ...                   CRLs and other files served by path, as is
//!            metadata                       JSON (issuers with their templates and
//!                                           response times, table offsets, documents)
//! end - 32   footer                         "OEFOOTER" | version u32 | reserved u32 |
//!                                           metadata offset u64 | metadata length u64
//! ```
//! All integers are little-endian. An **entry** is 32 bytes: a 24-byte serial key (length
//! octet, then the DER INTEGER content octets, zero-padded) and the u64 offset of the
//! certificate's record. Keys compare as bytes, which orders serials by length then value.
//! The **hash index** (8-byte slots, 1.5–3 per entry) finds an entry in
//! two memory reads; the sorted table is what diffs, deltas and the fallback search walk.
//! A **record** is an 8-byte header — status u8 (0 good, 1 revoked, 2 removed: only in a
//! delta, where it deletes the base's record), reason u8 (0xff = none), times u16 (index
//! into the section's list of (producedAt, thisUpdate, nextUpdate)), and the lengths
//! (u16 each) of the SHA-1-CertID and the SHA-256-CertID signatures — then, if revoked,
//! revocationTime i64, then the two signatures. With P-256 that is about 180 bytes per
//! certificate, entry included, where the two complete responses would be ~1,700.
//!
//! The footer sits at the end so the writer can stream records (and hash them) before it
//! knows where the tables land. Integrity is not this module's concern: the manifest
//! carries the file's hash, and [`crate::snapshot::verify`] checks it before a view is
//! ever built. Even so, every read here is bounds-checked, so a corrupt file yields
//! `None`/an error, never a panic.

use crate::model::{CertStatus, RevocationReason, Serial, MAX_SERIAL_LEN};
use crate::ocsp::{ResponseTemplate, SingleFacts, ETAG_LEN};
use crate::pki::{CertIdHash, Certificate};
use crate::time::UnixTime;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

/// The first 16 bytes of every snapshot file.
const FILE_MAGIC: &[u8; 16] = b"OCSPEDGE-SNAP-v2";
/// The first 8 bytes of the footer: a file cut short loses it and is refused.
pub const FOOTER_MAGIC: &[u8; 8] = b"OEFOOTER";
/// The layout this module writes and the only one it reads; the footer, the metadata and
/// the manifest each state it.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the footer at the very end of the file (layout in the module docs).
pub const FOOTER_LEN: usize = 32;
/// Bytes of one entry-table entry: the serial key, then the record's u64 offset.
const ENTRY_LEN: usize = 32;
const KEY_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 8;
const NO_REASON: u8 = 0xff;
const STATUS_GOOD: u8 = 0;
const STATUS_REVOKED: u8 = 1;
const STATUS_REMOVED: u8 = 2;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The three times of a response (unix seconds). A publish signs every response it
/// (re-)signs with the same three, so a section lists a handful and records refer to
/// them by index.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ResponseTimes {
    /// producedAt: when the publisher signed the responses that use these times.
    pub produced_at: i64,
    /// thisUpdate: when the statuses were known to be correct (RFC 6960 §4.2.2.1).
    pub this_update: i64,
    /// nextUpdate: the response is not served from this second on.
    pub next_update: i64,
}

/// Describes one issuer's section; stored as JSON in the metadata block.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// Operator's label, e.g. `ec`.
    pub name: String,
    /// The issuer's certificate, base64 DER.
    pub certificate: String,
    /// The certificate whose key signed this issuer's responses, base64 DER.
    pub signer_certificate: String,
    /// The signatures' AlgorithmIdentifier, base64 DER.
    pub signature_algorithm: String,
    /// Whether responses embed the signer's certificate (not when the issuer signs).
    pub embeds_signer: bool,
    /// Every (producedAt, thisUpdate, nextUpdate) a record of this section refers to.
    pub times: Vec<ResponseTimes>,
    /// Byte offset of the section's entry table in the file.
    pub entries_offset: u64,
    /// Records in this file's table (a delta's: changed records and tombstones).
    pub entry_count: u64,
    /// The hash index over the table (8-byte slots, see the module docs): its offset.
    #[serde(default)]
    pub index_offset: u64,
    /// The hash index's number of slots: a power of two, or 0 for no index (lookups then
    /// search the sorted table).
    #[serde(default)]
    pub index_slots: u64,
    /// Certificates served: `entry_count` for a full snapshot, base plus delta for a delta.
    pub live_entries: u64,
    /// The earliest nextUpdate of any response served for this section, a delta's base
    /// records included (unix seconds).
    pub earliest_next_update: i64,
}

/// The full snapshot a delta applies to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BaseReference {
    /// The base's manifest sequence: a responder holding another base cannot apply the
    /// delta.
    pub sequence: u64,
    /// The base's integrity hash, as its manifest states it.
    pub sha256_tree: String,
}

/// The JSON block near the end of the file that describes everything else in it. Read
/// without trusting it: the manifest's hash over the whole file is what vouches for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// [`FORMAT_VERSION`] of the writer; any other value is refused.
    pub format_version: u32,
    /// The publish sequence; must equal the manifest's.
    pub sequence: u64,
    /// When the publisher wrote the file (unix seconds).
    pub created_at: i64,
    /// Set for a delta: its records replace (or, removed, delete) the base's; everything
    /// else of the base stays. Its documents replace the base's documents as a whole.
    #[serde(default)]
    pub base: Option<BaseReference>,
    /// One per issuer, in the order the manifest lists them.
    pub issuers: Vec<IssuerSection>,
    /// Files served by URL path straight from the snapshot bytes (CRLs, CCADB JSON).
    #[serde(default)]
    pub documents: Vec<Document>,
}

/// What a document is, for metrics, headers and freshness rules.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    /// A complete CRL of one issuer.
    CrlFull,
    /// One partition of an issuer's CRL (critical issuingDistributionPoint).
    CrlPartition,
    /// A delta CRL against a full CRL.
    CrlDelta,
    /// The CCADB "JSON array of partitioned CRLs".
    CrlIndex,
}

/// One served document. `offset`/`length` locate its bytes in the snapshot file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// URL path it is served at, e.g. `/crl/ec/0.crl`.
    pub path: String,
    /// Which kind; the verifier checks the bytes agree.
    pub kind: DocumentKind,
    /// Name of the issuer section it belongs to.
    pub issuer: String,
    /// The `Content-Type` it is served with; fixed per kind and checked.
    pub content_type: String,
    /// Byte offset of its content in the snapshot file.
    pub offset: u64,
    /// Byte length of its content.
    pub length: u64,
    /// Lowercase hex SHA-256 of the bytes (the HTTP ETag).
    pub sha256: String,
    /// Unix seconds; for CRLs thisUpdate, for the JSON index the newest thisUpdate of
    /// the partitions it lists.
    pub this_update: i64,
    /// Unix seconds; for CRLs nextUpdate, for the JSON index the earliest nextUpdate of
    /// the partitions it lists.
    pub next_update: i64,
    /// cRLNumber, for CRLs.
    #[serde(default)]
    pub crl_number: Option<u64>,
}

/// A document to be written (the writer fills in offset, length and hash).
/// The fields mean what [`Document`]'s do; responders refuse a snapshot whose CRL facts
/// differ from the CRL's own signed values.
pub struct DocumentInput<'a> {
    /// URL path to serve it at; unique within the snapshot.
    pub path: String,
    /// Which kind; it must agree with the CRL's own extensions or responders refuse the
    /// snapshot.
    pub kind: DocumentKind,
    /// The issuer section whose key must have signed it.
    pub issuer: String,
    /// `application/pkix-crl` for CRLs, `application/json` for the index.
    pub content_type: &'static str,
    /// The content, written as is.
    pub bytes: &'a [u8],
    /// The CRL's thisUpdate (for the index: the newest of its partitions').
    pub this_update: UnixTime,
    /// The CRL's nextUpdate (for the index: the earliest of its partitions').
    pub next_update: UnixTime,
    /// The CRL's cRLNumber; `None` for the index.
    pub crl_number: Option<u64>,
}

/// The status part of a record, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredStatus {
    /// Answered `good`.
    Good,
    /// Answered `revoked`.
    Revoked {
        /// revocationTime, as the CA recorded it (not when the publisher learned of it).
        at: UnixTime,
        /// revocationReason; `None` when the CA recorded none (stored as 0xff).
        reason: Option<RevocationReason>,
    },
}

impl From<StoredStatus> for CertStatus {
    fn from(status: StoredStatus) -> CertStatus {
        match status {
            StoredStatus::Good => CertStatus::Good,
            StoredStatus::Revoked { at, reason } => CertStatus::Revoked {
                at,
                reason,
                invalidity: None,
            },
        }
    }
}

/// One certificate's signed material, ready to be written.
pub struct RecordInput<'a> {
    /// The certificate's serial; records must come in strictly increasing serial order.
    pub serial: &'a Serial,
    /// `None`: a delta's tombstone, deleting the base's record (no signatures).
    pub status: Option<StoredStatus>,
    /// The response times both signatures were made with.
    pub times: ResponseTimes,
    /// Signatures over the ResponseData of the SHA-1 CertID, then the SHA-256 CertID.
    pub signatures: [&'a [u8]; 2],
}

/// A record as stored, borrowed from the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredRecord<'a> {
    /// DER INTEGER content octets, from the entry's key.
    pub serial: &'a [u8],
    /// `None` for a tombstone.
    pub status: Option<StoredStatus>,
    /// Index into the section's `times`; resolve it with [`LoadedSection::times_of`].
    pub times: u16,
    /// The signatures for the SHA-1 CertID, then the SHA-256 CertID (empty in a
    /// tombstone).
    pub signatures: [&'a [u8]; 2],
}

/// What a lookup returns: borrowed straight from the mapped file and the section it came
/// from. The response bytes are built on demand ([`Found::write_response`]).
#[derive(Clone, Copy, Debug)]
pub struct Found<'a> {
    /// Name of the issuer section it came from.
    pub issuer: &'a str,
    /// The section's template the response is rebuilt in.
    pub template: &'a ResponseTemplate,
    /// The CertID hash the lookup was for: it selects the signature and CertID prefix.
    pub hash: CertIdHash,
    /// DER INTEGER content octets of the serial.
    pub serial: &'a [u8],
    /// The signature over this response's ResponseData.
    pub signature: &'a [u8],
    /// What the response says.
    pub status: StoredStatus,
    /// producedAt of the response.
    pub produced_at: UnixTime,
    /// thisUpdate of the response.
    pub this_update: UnixTime,
    /// nextUpdate: the caller must not serve the response at or after it.
    pub next_update: UnixTime,
}

/// Two lookups are equal when they found the same record of the same section.
impl PartialEq for Found<'_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.template, other.template)
            && (self.issuer, self.hash, self.serial, self.signature, self.status)
                == (
                    other.issuer,
                    other.hash,
                    other.serial,
                    other.signature,
                    other.status,
                )
            && (self.produced_at, self.this_update, self.next_update)
                == (other.produced_at, other.this_update, other.next_update)
    }
}

impl Found<'_> {
    fn with_facts<T>(&self, use_facts: impl FnOnce(&SingleFacts<'_>) -> T) -> T {
        let status = CertStatus::from(self.status);
        use_facts(&SingleFacts {
            serial: self.serial,
            status: &status,
            produced_at: self.produced_at,
            this_update: self.this_update,
            next_update: self.next_update,
        })
    }

    /// Length of the complete OCSPResponse.
    pub fn response_len(&self) -> usize {
        self.with_facts(|facts| self.template.response_len(self.hash, facts, self.signature.len()))
    }

    /// Appends the complete DER OCSPResponse, exactly the bytes the publisher signed.
    pub fn write_response(&self, out: &mut Vec<u8>) {
        self.with_facts(|facts| {
            self.template
                .write_response(self.hash, facts, self.signature, out)
        })
    }

    /// [`Found::write_response`] into a new vector of the exact size.
    pub fn response(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.response_len());
        self.write_response(&mut out);
        out
    }

    /// A strong validator of the response bytes: 8 bytes naming the template's unsigned
    /// parts, then the signature's last 16 bytes, so equal ETags mean equal responses
    /// without hashing one per request.
    pub fn etag(&self) -> [u8; ETAG_LEN] {
        self.template.etag(self.hash, self.signature)
    }
}

/// Why bytes are not a snapshot this module can read. Any of these means the file is not
/// served.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Reading the file failed.
    #[error("snapshot I/O: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with the file magic or end with the footer magic (not a
    /// snapshot, or cut short).
    #[error("not an ocsp-edge snapshot (bad magic)")]
    BadMagic,
    /// Written by a format version other than [`FORMAT_VERSION`].
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
    /// An offset or length (metadata, a table, a document) points outside the file.
    #[error("snapshot is truncated or its offsets are out of range")]
    OutOfRange,
    /// The metadata is not the expected JSON, or an issuer's certificates or algorithm do
    /// not decode.
    #[error("snapshot metadata is invalid: {0}")]
    BadMetadata(String),
    /// An issuer's entry table is not strictly increasing: lookups would miss entries.
    #[error("entries of issuer {0} are not sorted by serial")]
    Unsorted(String),
}

/// An entry-table key: see [`serial_key`].
pub type SerialKey = [u8; KEY_LEN];

/// The entry-table key of a serial (DER INTEGER content): its length, then its octets,
/// zero-padded. Byte order on keys is `Serial` order (shorter serials first).
pub fn serial_key(serial: &[u8]) -> SerialKey {
    let mut key = [0u8; KEY_LEN];
    let len = serial.len().min(KEY_LEN - 1);
    key[0] = len as u8;
    key[1..1 + len].copy_from_slice(&serial[..len]);
    key
}

/// The section being written.
struct OpenSection {
    section: IssuerSection,
    entries: Vec<[u8; ENTRY_LEN]>,
    last_key: Option<[u8; KEY_LEN]>,
    /// For a delta: (live entries, earliest nextUpdate of the base records kept).
    inherited: Option<(u64, i64)>,
}

/// Streams a snapshot to `W`, tracking offsets. Issuers are written one after another:
/// `begin_issuer`, then `push_record` for every certificate in increasing serial order,
/// then `end_issuer`; finally `finish`.
pub struct SnapshotWriter<W: Write> {
    out: W,
    position: u64,
    current: Option<OpenSection>,
    metadata: Metadata,
}

/// What is the same in every response of one issuer section.
pub struct SectionTemplate<'a> {
    /// The section's name, unique in the snapshot (the manifest signs for it by name).
    pub name: &'a str,
    /// The CA whose certificates the section answers for.
    pub issuer: &'a Certificate,
    /// The certificate whose key signed the section's responses (the issuer or its
    /// delegated OCSP signer).
    pub signer: &'a Certificate,
    /// The DER AlgorithmIdentifier of those signatures.
    pub signature_algorithm: &'a [u8],
    /// Whether responses embed `signer` (true exactly when it is not the issuer).
    pub embeds_signer: bool,
}

impl<W: Write> SnapshotWriter<W> {
    /// A writer for a full snapshot; writes the file magic at once.
    pub fn new(out: W, sequence: u64, created_at: UnixTime) -> io::Result<Self> {
        Self::with_base(out, sequence, created_at, None)
    }

    /// A writer for a delta against `base` (or a full snapshot when `None`).
    pub fn with_base(
        mut out: W,
        sequence: u64,
        created_at: UnixTime,
        base: Option<BaseReference>,
    ) -> io::Result<Self> {
        out.write_all(FILE_MAGIC)?;
        Ok(SnapshotWriter {
            out,
            position: FILE_MAGIC.len() as u64,
            current: None,
            metadata: Metadata {
                format_version: FORMAT_VERSION,
                sequence,
                created_at: created_at.seconds(),
                base,
                issuers: Vec::new(),
                documents: Vec::new(),
            },
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Opens the next issuer section (ending an open one is the caller's job, with
    /// [`SnapshotWriter::end_issuer`]).
    pub fn begin_issuer(&mut self, template: &SectionTemplate<'_>) {
        self.current = Some(OpenSection {
            section: IssuerSection {
                name: template.name.to_string(),
                certificate: B64.encode(template.issuer.der()),
                signer_certificate: B64.encode(template.signer.der()),
                signature_algorithm: B64.encode(template.signature_algorithm),
                embeds_signer: template.embeds_signer,
                times: Vec::new(),
                entries_offset: 0,
                entry_count: 0,
                index_offset: 0,
                index_slots: 0,
                live_entries: 0,
                earliest_next_update: i64::MAX,
            },
            entries: Vec::new(),
            last_key: None,
            inherited: None,
        });
    }

    /// Appends one record. Serials must arrive strictly increasing (the caller sorts).
    pub fn push_record(&mut self, record: &RecordInput<'_>) -> io::Result<()> {
        let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_string());
        let position = self.position;
        let open = self
            .current
            .as_mut()
            .ok_or_else(|| invalid("push_record outside an issuer section"))?;
        let content = record.serial.as_der_content();
        if content.len() > MAX_SERIAL_LEN {
            return Err(invalid("serial too long"));
        }
        let key = serial_key(content);
        if open.last_key.is_some_and(|last| last >= key) {
            return Err(invalid("serials out of order or repeated"));
        }
        open.last_key = Some(key);
        let mut entry = [0u8; ENTRY_LEN];
        entry[..KEY_LEN].copy_from_slice(&key);
        entry[KEY_LEN..].copy_from_slice(&position.to_le_bytes());
        open.entries.push(entry);
        let section = &mut open.section;
        let times = match section.times.iter().rposition(|t| *t == record.times) {
            Some(index) => index,
            None => {
                section.times.push(record.times);
                section.times.len() - 1
            }
        };
        let times = u16::try_from(times).map_err(|_| invalid("more than 65,536 distinct response times"))?;
        if record.status.is_some() {
            section.earliest_next_update = section.earliest_next_update.min(record.times.next_update);
            section.live_entries += 1;
        }
        let [first, second] = record.signatures;
        let length =
            |s: &[u8]| u16::try_from(s.len()).map_err(|_| invalid("signature longer than 65,535 bytes"));
        let mut header = [0u8; RECORD_HEADER_LEN];
        let (status, reason, revoked_at) = match record.status {
            Some(StoredStatus::Good) => (STATUS_GOOD, NO_REASON, None),
            Some(StoredStatus::Revoked { at, reason }) => (
                STATUS_REVOKED,
                reason.map(|r| r.code()).unwrap_or(NO_REASON),
                Some(at),
            ),
            None => (STATUS_REMOVED, NO_REASON, None),
        };
        header[0] = status;
        header[1] = reason;
        header[2..4].copy_from_slice(&times.to_le_bytes());
        header[4..6].copy_from_slice(&length(first)?.to_le_bytes());
        header[6..8].copy_from_slice(&length(second)?.to_le_bytes());
        self.write(&header)?;
        if let Some(at) = revoked_at {
            self.write(&at.seconds().to_le_bytes())?;
        }
        self.write(first)?;
        self.write(second)
    }

    /// Appends a document (outside any issuer section). Paths must be unique: responders
    /// serve by path and refuse a snapshot that repeats one.
    pub fn push_document(&mut self, document: DocumentInput<'_>) -> io::Result<()> {
        if self.metadata.documents.iter().any(|d| d.path == document.path) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "two documents would be served at {}; responders serve by URL path only, so \
                     give every CRL a distinct path",
                    document.path
                ),
            ));
        }
        let offset = self.position;
        self.write(document.bytes)?;
        self.metadata.documents.push(Document {
            path: document.path,
            kind: document.kind,
            issuer: document.issuer,
            content_type: document.content_type.to_string(),
            offset,
            length: document.bytes.len() as u64,
            sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, document.bytes)),
            this_update: document.this_update.seconds(),
            next_update: document.next_update.seconds(),
            crl_number: document.crl_number,
        });
        Ok(())
    }

    /// For a delta: what the merged section serves — `live_entries` certificates, and the
    /// earliest nextUpdate among the base's records the delta keeps.
    pub fn set_merged_totals(&mut self, live_entries: u64, base_earliest_next_update: i64) {
        if let Some(open) = self.current.as_mut() {
            open.inherited = Some((live_entries, base_earliest_next_update));
        }
    }

    /// Closes the open section: writes its sorted entry table and hash index. Does
    /// nothing when no section is open.
    pub fn end_issuer(&mut self) -> io::Result<()> {
        let Some(OpenSection {
            mut section,
            entries,
            inherited,
            ..
        }) = self.current.take()
        else {
            return Ok(());
        };
        if let Some((live, base_earliest)) = inherited {
            section.live_entries = live;
            section.earliest_next_update = section.earliest_next_update.min(base_earliest);
        }
        section.entries_offset = self.position;
        section.entry_count = entries.len() as u64;
        // The index (random writes over a table of ~12 bytes per entry) is built on
        // another thread while this one hashes and writes the entry table.
        let index = std::thread::scope(|scope| {
            let index = scope.spawn(|| build_index(&entries));
            self.write(entries.as_flattened())?;
            index
                .join()
                .map_err(|_| io::Error::other("building the hash index failed"))?
        })?;
        section.index_offset = self.position;
        section.index_slots = (index.len() / INDEX_SLOT_LEN) as u64;
        self.write(&index)?;
        self.metadata.issuers.push(section);
        Ok(())
    }

    /// Writes metadata and footer; returns the inner writer and the metadata.
    pub fn finish(mut self) -> io::Result<(W, Metadata)> {
        self.end_issuer()?;
        let metadata_offset = self.position;
        let json = serde_json::to_vec(&self.metadata).map_err(io::Error::other)?;
        self.write(&json)?;
        let mut footer = [0u8; FOOTER_LEN];
        footer[..8].copy_from_slice(FOOTER_MAGIC);
        footer[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        footer[16..24].copy_from_slice(&metadata_offset.to_le_bytes());
        footer[24..32].copy_from_slice(&(json.len() as u64).to_le_bytes());
        self.write(&footer)?;
        self.out.flush()?;
        Ok((self.out, self.metadata))
    }
}

/// One issuer section ready for lookups: its description, the response template rebuilt
/// from it, and its times.
#[derive(Clone, Debug)]
pub struct LoadedSection {
    /// The section as the metadata describes it.
    pub section: IssuerSection,
    /// The issuer certificate decoded from the metadata; not yet checked against any
    /// trust anchor (the verifier does that).
    pub issuer: Certificate,
    /// The signer certificate decoded from the metadata; as unchecked as `issuer`.
    pub signer: Certificate,
    /// The template every response of the section is rebuilt in.
    pub template: ResponseTemplate,
    times: Vec<[UnixTime; 3]>,
}

impl LoadedSection {
    /// Decodes the section's certificates and algorithm and builds its template;
    /// [`FormatError::BadMetadata`] names the field that does not decode.
    pub fn new(section: &IssuerSection) -> Result<Self, FormatError> {
        let bad = |what: &str| FormatError::BadMetadata(format!("issuer {}: {what}", section.name));
        let certificate = |text: &str| {
            B64.decode(text)
                .ok()
                .and_then(|der| Certificate::from_der(der).ok())
        };
        let issuer = certificate(&section.certificate).ok_or_else(|| bad("bad issuer certificate"))?;
        let signer = certificate(&section.signer_certificate).ok_or_else(|| bad("bad signer certificate"))?;
        let algorithm = B64
            .decode(&section.signature_algorithm)
            .map_err(|_| bad("bad signature algorithm"))?;
        let template = ResponseTemplate::from_parts(
            &issuer,
            &signer.key_id(),
            &algorithm,
            section.embeds_signer.then(|| signer.der()),
        );
        let times = section
            .times
            .iter()
            .map(|t| {
                [
                    UnixTime(t.produced_at),
                    UnixTime(t.this_update),
                    UnixTime(t.next_update),
                ]
            })
            .collect();
        Ok(LoadedSection {
            section: section.clone(),
            issuer,
            signer,
            template,
            times,
        })
    }

    /// The record of `serial` in this section of `bytes` (the file it was read from):
    /// an interpolation then binary search over the entries, then one record read.
    pub fn record<'a>(&self, bytes: &'a [u8], serial: &[u8]) -> Option<StoredRecord<'a>> {
        if serial.len() > MAX_SERIAL_LEN {
            return None;
        }
        let table = table_in(bytes, &self.section)?;
        let key = serial_key(serial);
        let entry = match index_in(bytes, &self.section) {
            Some(index) => find_indexed(table, index, &key),
            None => find_entry(table, &key),
        }?;
        record_for_entry(bytes, entry)
    }

    /// The response for `serial` under `hash`: `None` when absent, `Some(Err(Removed))` for
    /// a delta's tombstone (or a record naming times the section does not list, which
    /// only a corrupt file could hold: it is not served either).
    pub fn found<'a>(
        &'a self,
        bytes: &'a [u8],
        serial: &[u8],
        hash: CertIdHash,
    ) -> Option<Result<Found<'a>, Removed>> {
        let record = self.record(bytes, serial)?;
        Some(self.found_in_record(record, hash))
    }

    fn found_in_record<'a>(
        &'a self,
        record: StoredRecord<'a>,
        hash: CertIdHash,
    ) -> Result<Found<'a>, Removed> {
        let status = record.status.ok_or(Removed)?;
        let [produced_at, this_update, next_update] =
            *self.times.get(usize::from(record.times)).ok_or(Removed)?;
        Ok(Found {
            issuer: &self.section.name,
            template: &self.template,
            hash,
            serial: record.serial,
            signature: record.signatures[usize::from(hash == CertIdHash::Sha256)],
            status,
            produced_at,
            this_update,
            next_update,
        })
    }

    /// Every record of this section in serial order, tombstones included. A sequential
    /// walk, for diffs between snapshots and for writing deltas; never on the hot path.
    pub fn records<'a>(&self, bytes: &'a [u8]) -> impl Iterator<Item = StoredRecord<'a>> + 'a {
        table_in(bytes, &self.section)
            .unwrap_or_default()
            .chunks_exact(ENTRY_LEN)
            .filter_map(move |entry| record_for_entry(bytes, entry))
    }

    /// The times a record refers to, as (producedAt, thisUpdate, nextUpdate).
    pub fn times_of(&self, record: &StoredRecord<'_>) -> Option<ResponseTimes> {
        self.times
            .get(usize::from(record.times))
            .map(|[p, t, n]| ResponseTimes {
                produced_at: p.seconds(),
                this_update: t.seconds(),
                next_update: n.seconds(),
            })
    }
}

/// A delta's tombstone: the certificate is no longer in the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Removed;

/// A read-only view over snapshot bytes (usually a memory map).
pub struct SnapshotView<'a> {
    bytes: &'a [u8],
    metadata: Metadata,
    sections: Vec<LoadedSection>,
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

impl<'a> SnapshotView<'a> {
    /// Parses the footer and metadata and checks every table lies inside the file and is
    /// sorted. Cost: O(entries) sequential reads of the tables, no per-entry allocation.
    pub fn open(bytes: &'a [u8]) -> Result<Self, FormatError> {
        let metadata = read_metadata(bytes)?;
        let sections = metadata
            .issuers
            .iter()
            .map(LoadedSection::new)
            .collect::<Result<Vec<_>, _>>()?;
        let view = SnapshotView {
            bytes,
            metadata,
            sections,
        };
        for section in &view.sections {
            check_table(bytes, &section.section)?;
        }
        for document in &view.metadata.documents {
            document_bytes(bytes, document).ok_or(FormatError::OutOfRange)?;
        }
        Ok(view)
    }

    /// The metadata as read from the file.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The sections, in metadata order (the index `lookup` takes).
    pub fn sections(&self) -> &[LoadedSection] {
        &self.sections
    }

    /// Looks up the response for `serial` under issuer `issuer` (an index into
    /// `metadata().issuers`) for a CertID hashed with `hash`.
    pub fn lookup(&self, issuer: usize, serial: &Serial, hash: CertIdHash) -> Option<Found<'_>> {
        self.sections
            .get(issuer)?
            .found(self.bytes, serial.as_der_content(), hash)?
            .ok()
    }
}

/// Reads and parses only the footer and metadata (no table checks): for callers that want
/// a snapshot's description without a view.
pub fn read_metadata(bytes: &[u8]) -> Result<Metadata, FormatError> {
    if bytes.len() < FILE_MAGIC.len() + FOOTER_LEN || &bytes[..FILE_MAGIC.len()] != FILE_MAGIC {
        return Err(FormatError::BadMagic);
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    if &footer[..8] != FOOTER_MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = u32::from_le_bytes([footer[8], footer[9], footer[10], footer[11]]);
    if version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let offset = read_u64(footer, 16).ok_or(FormatError::OutOfRange)? as usize;
    let length = read_u64(footer, 24).ok_or(FormatError::OutOfRange)? as usize;
    let json = offset
        .checked_add(length)
        .filter(|end| *end <= bytes.len() - FOOTER_LEN)
        .and_then(|end| bytes.get(offset..end))
        .ok_or(FormatError::OutOfRange)?;
    let metadata: Metadata =
        serde_json::from_slice(json).map_err(|e| FormatError::BadMetadata(e.to_string()))?;
    if metadata.format_version != FORMAT_VERSION {
        return Err(FormatError::UnsupportedVersion(metadata.format_version));
    }
    Ok(metadata)
}

fn check_table(bytes: &[u8], section: &IssuerSection) -> Result<(), FormatError> {
    let table = table_in(bytes, section).ok_or(FormatError::OutOfRange)?;
    if section.index_slots != 0 && index_in(bytes, section).is_none() {
        return Err(FormatError::OutOfRange);
    }
    let sorted = table
        .chunks_exact(ENTRY_LEN)
        .zip(table.chunks_exact(ENTRY_LEN).skip(1))
        .all(|(a, b)| a[..KEY_LEN] < b[..KEY_LEN]);
    if !sorted {
        return Err(FormatError::Unsorted(section.name.clone()));
    }
    Ok(())
}

/// Bytes of one hash-index slot: u32 entry number + 1 (0 = empty), then the high 32 bits
/// of the key's hash (a fingerprint, so that probing past other keys' slots rarely reads
/// their entries). Linear probing; the table is at most two-thirds full.
const INDEX_SLOT_LEN: usize = 8;
/// Probes before a lookup gives up on the index and searches the table: only a corrupt
/// or pathological index gets there, and the search is still exact.
const MAX_PROBES: usize = 64;

/// The key's hash: the three key words mixed (multiply-rotate), so sequential or
/// clustered serials spread as well as random ones.
fn key_hash(key: &[u8; KEY_LEN]) -> u64 {
    let word = |i: usize| u64::from_le_bytes(key[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut hash = (word(0) ^ 0x243f_6a88_85a3_08d3).wrapping_mul(K);
    hash = (hash.rotate_left(29) ^ word(1)).wrapping_mul(K);
    hash = (hash.rotate_left(29) ^ word(2)).wrapping_mul(K);
    hash ^ (hash >> 32)
}

/// The hash index of a section's sorted entries: one pointer per entry into a table of
/// slots 1.5–3 times their number, so a lookup reads one slot (and its neighbours, in the
/// same cache line) and then the entry it names — two memory reads where a search of a
/// large table takes four or five.
fn build_index(entries: &[[u8; ENTRY_LEN]]) -> io::Result<Vec<u8>> {
    if entries.len() >= u32::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many entries for one section",
        ));
    }
    let slots = (entries.len() + entries.len() / 2).max(8).next_power_of_two();
    let mut index = vec![0u8; slots * INDEX_SLOT_LEN];
    for (number, entry) in entries.iter().enumerate() {
        let key: &[u8; KEY_LEN] = entry[..KEY_LEN].try_into().map_err(io::Error::other)?;
        let hash = key_hash(key);
        let mut slot = (hash as usize) & (slots - 1);
        while index[slot * INDEX_SLOT_LEN..slot * INDEX_SLOT_LEN + 4] != [0; 4] {
            slot = (slot + 1) & (slots - 1);
        }
        let at = slot * INDEX_SLOT_LEN;
        index[at..at + 4].copy_from_slice(&(number as u32 + 1).to_le_bytes());
        index[at + 4..at + 8].copy_from_slice(&((hash >> 32) as u32).to_le_bytes());
    }
    Ok(index)
}

/// A section's hash index inside `bytes`, if it has a well-formed one.
fn index_in<'a>(bytes: &'a [u8], section: &IssuerSection) -> Option<&'a [u8]> {
    let slots = usize::try_from(section.index_slots).ok()?;
    if slots == 0 || !slots.is_power_of_two() || (slots as u64) <= section.entry_count {
        return None;
    }
    let start = usize::try_from(section.index_offset).ok()?;
    bytes.get(start..start.checked_add(slots.checked_mul(INDEX_SLOT_LEN)?)?)
}

/// Finds `key` through the hash index; falls back to the sorted search if probing runs
/// long (never on an index the writer built). Every candidate entry's key is compared in
/// full, so a damaged index can only make a lookup miss, never return another entry.
fn find_indexed<'t>(table: &'t [u8], index: &[u8], key: &[u8; KEY_LEN]) -> Option<&'t [u8]> {
    let mask = index.len() / INDEX_SLOT_LEN - 1;
    let hash = key_hash(key);
    let fingerprint = ((hash >> 32) as u32).to_le_bytes();
    let mut slot = (hash as usize) & mask;
    for _ in 0..MAX_PROBES {
        let at = slot * INDEX_SLOT_LEN;
        let number = u32::from_le_bytes(index[at..at + 4].try_into().ok()?) as usize;
        if number == 0 {
            return None;
        }
        if index[at + 4..at + 8] == fingerprint {
            let entry = table.get((number - 1) * ENTRY_LEN..number * ENTRY_LEN)?;
            if compare_keys(entry, key) == std::cmp::Ordering::Equal {
                return Some(entry);
            }
        }
        slot = (slot + 1) & mask;
    }
    find_entry(table, key)
}

/// Finds `key` in a sorted table of entries. Serial numbers are random (the CA/Browser
/// Forum requires 64 bits of entropy), so keys are close to uniformly distributed and a
/// few interpolation steps land next to the entry in two or three reads instead of the
/// ~log2(n) cache misses of a binary search; a binary search finishes whatever range is
/// left, so skewed serials cost at most O(log n) still.
fn find_entry<'t>(table: &'t [u8], key: &[u8; KEY_LEN]) -> Option<&'t [u8]> {
    use std::cmp::Ordering;
    let entry = |i: usize| &table[i * ENTRY_LEN..(i + 1) * ENTRY_LEN];
    let (mut low, mut high) = (0usize, table.len() / ENTRY_LEN);
    let target = leading_word(key);
    for _ in 0..3 {
        if high - low < 16 {
            break;
        }
        let (first, last) = (leading_word(entry(low)), leading_word(entry(high - 1)));
        if target < first || target > last || first == last {
            break;
        }
        let fraction = (target - first) as f64 / (last - first) as f64;
        let guess = low + ((high - 1 - low) as f64 * fraction) as usize;
        match compare_keys(entry(guess), key) {
            Ordering::Equal => return Some(entry(guess)),
            Ordering::Less => low = guess + 1,
            Ordering::Greater => high = guess,
        }
    }
    while low < high {
        let mid = low + (high - low) / 2;
        match compare_keys(entry(mid), key) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => return Some(entry(mid)),
        }
    }
    None
}

/// The first eight key bytes (length octet and the serial's leading bytes) as a number.
fn leading_word(key: &[u8]) -> u64 {
    u64::from_be_bytes(key[..8].try_into().unwrap_or([0; 8]))
}

/// The bytes of `document` inside `bytes` (the file it was read from).
pub fn document_bytes<'a>(bytes: &'a [u8], document: &Document) -> Option<&'a [u8]> {
    let start = usize::try_from(document.offset).ok()?;
    let len = usize::try_from(document.length).ok()?;
    bytes.get(start..start.checked_add(len)?)
}

/// Byte order of two 24-byte keys, as three big-endian words: inlined, where a slice
/// comparison would call memcmp on every step of the search.
#[inline]
fn compare_keys(entry: &[u8], key: &[u8; KEY_LEN]) -> std::cmp::Ordering {
    let word =
        |bytes: &[u8], i: usize| u64::from_be_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    (word(entry, 0), word(entry, 1), word(entry, 2)).cmp(&(word(key, 0), word(key, 1), word(key, 2)))
}

fn table_in<'a>(bytes: &'a [u8], section: &IssuerSection) -> Option<&'a [u8]> {
    let start = usize::try_from(section.entries_offset).ok()?;
    let len = usize::try_from(section.entry_count)
        .ok()?
        .checked_mul(ENTRY_LEN)?;
    bytes.get(start..start.checked_add(len)?)
}

fn record_for_entry<'a>(bytes: &'a [u8], entry: &'a [u8]) -> Option<StoredRecord<'a>> {
    let length = usize::from(*entry.first()?);
    let serial = entry.get(1..1 + length).filter(|_| length < KEY_LEN)?;
    let offset = usize::try_from(read_u64(entry, KEY_LEN)?).ok()?;
    let header = bytes.get(offset..offset.checked_add(RECORD_HEADER_LEN)?)?;
    let mut at = offset + RECORD_HEADER_LEN;
    let status = match header[0] {
        STATUS_GOOD => Some(StoredStatus::Good),
        STATUS_REVOKED => {
            let revoked_at = read_u64(bytes, at)? as i64;
            at += 8;
            Some(StoredStatus::Revoked {
                at: UnixTime(revoked_at),
                reason: RevocationReason::from_code(header[1]),
            })
        }
        STATUS_REMOVED => None,
        _ => return None,
    };
    let first_len = usize::from(read_u16(header, 4)?);
    let second_len = usize::from(read_u16(header, 6)?);
    let first = bytes.get(at..at.checked_add(first_len)?)?;
    at += first_len;
    let second = bytes.get(at..at.checked_add(second_len)?)?;
    Some(StoredRecord {
        serial,
        status,
        times: read_u16(header, 2)?,
        signatures: [first, second],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_certificates() -> (Certificate, Certificate) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec");
        let read = |name: &str| {
            let pem = std::fs::read(dir.join(name)).unwrap();
            Certificate::from_der(pem::parse(pem).unwrap().into_contents()).unwrap()
        };
        (read("ca.pem"), read("ocsp.pem"))
    }

    const P256_SHA256: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];

    fn begin<W: Write>(writer: &mut SnapshotWriter<W>) {
        let (issuer, signer) = demo_certificates();
        writer.begin_issuer(&SectionTemplate {
            name: "test",
            issuer: &issuer,
            signer: &signer,
            signature_algorithm: P256_SHA256,
            embeds_signer: true,
        });
    }

    fn times(next_update: i64) -> ResponseTimes {
        ResponseTimes {
            produced_at: 1000,
            this_update: 1000,
            next_update,
        }
    }

    fn signature(hash: &str, serial: &Serial) -> Vec<u8> {
        format!("{hash}-{}", serial.to_hex()).into_bytes()
    }

    fn build(serials: &[&str]) -> Vec<u8> {
        let mut writer = SnapshotWriter::new(Vec::new(), 7, UnixTime(1000)).unwrap();
        begin(&mut writer);
        let parsed: Vec<Serial> = serials.iter().map(|s| Serial::from_hex(s).unwrap()).collect();
        let mut sorted = parsed.clone();
        sorted.sort();
        for (i, serial) in sorted.iter().enumerate() {
            let status = if i % 2 == 0 {
                StoredStatus::Good
            } else {
                StoredStatus::Revoked {
                    at: UnixTime(500 + i as i64),
                    reason: Some(RevocationReason::Superseded),
                }
            };
            writer
                .push_record(&RecordInput {
                    serial,
                    status: Some(status),
                    times: times(2000 + (i as i64 % 3)),
                    signatures: [&signature("sha1", serial), &signature("sha256", serial)],
                })
                .unwrap();
        }
        writer.finish().unwrap().0
    }

    #[test]
    fn every_written_serial_is_found_with_both_variants() {
        let serials = [
            "01",
            "FF",
            "0100",
            "7F",
            "80",
            "DEADBEEF",
            "00C0FFEE00112233445566778899AABBCCDDEE11",
        ];
        let bytes = build(&serials);
        let view = SnapshotView::open(&bytes).unwrap();
        assert_eq!(view.metadata().sequence, 7);
        let section = &view.metadata().issuers[0];
        assert_eq!(section.entry_count, serials.len() as u64);
        assert_eq!(section.earliest_next_update, 2000);
        assert_eq!(section.times.len(), 3, "times are stored once each");
        for s in serials {
            let serial = Serial::from_hex(s).unwrap();
            let sha1 = view.lookup(0, &serial, CertIdHash::Sha1).unwrap();
            let sha256 = view.lookup(0, &serial, CertIdHash::Sha256).unwrap();
            assert_eq!(sha1.signature, signature("sha1", &serial));
            assert_eq!(sha256.signature, signature("sha256", &serial));
            assert_eq!(sha1.serial, serial.as_der_content());
            assert_eq!(sha1.status, sha256.status);
            assert_eq!(sha1.this_update, UnixTime(1000));
            assert_ne!(sha1.etag(), sha256.etag());
            // The response is built around the stored signature.
            let response = sha256.response();
            assert_eq!(response.len(), sha256.response_len());
            assert!(response.ends_with(view.sections()[0].signer.der()));
        }
    }

    #[test]
    fn lookups_find_every_entry_of_large_random_and_skewed_tables() {
        let mut random = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        let uniform: Vec<String> = (0..5000)
            .map(|_| format!("{:016X}{:016X}", random() >> 1, random()))
            .collect();
        // Sequential serials and two clusters: worst cases for interpolation.
        let skewed: Vec<String> = (0..3000u64)
            .map(|i| {
                format!(
                    "{:X}",
                    if i < 1500 {
                        i + 1
                    } else {
                        0x7FFF_FFFF_0000_0000 + i
                    }
                )
            })
            .collect();
        for serials in [uniform, skewed] {
            let names: Vec<&str> = serials.iter().map(String::as_str).collect();
            let bytes = build(&names);
            let view = SnapshotView::open(&bytes).unwrap();
            for s in &serials {
                let serial = Serial::from_hex(s).unwrap();
                let found = view.lookup(0, &serial, CertIdHash::Sha1).expect(s);
                assert_eq!(found.signature, signature("sha1", &serial));
            }
            for _ in 0..2000 {
                let absent = Serial::from_hex(&format!("{:016X}{:016X}1", random() >> 1, random())).unwrap();
                assert!(view.lookup(0, &absent, CertIdHash::Sha1).is_none());
            }
            let walked: Vec<_> = view.sections()[0]
                .records(&bytes)
                .map(|r| r.serial.to_vec())
                .collect();
            let mut expected: Vec<Serial> = serials.iter().map(|s| Serial::from_hex(s).unwrap()).collect();
            expected.sort();
            let expected: Vec<_> = expected.iter().map(|s| s.as_der_content().to_vec()).collect();
            assert_eq!(walked, expected);
        }
    }

    #[test]
    fn a_damaged_index_can_hide_an_entry_but_never_return_another() {
        let serials: Vec<String> = (1..=200u32).map(|i| format!("{:X}", i * 7919)).collect();
        let names: Vec<&str> = serials.iter().map(String::as_str).collect();
        let mut bytes = build(&names);
        let section = SnapshotView::open(&bytes).unwrap().metadata().issuers[0].clone();
        assert!(section.index_slots >= 300, "1.5-3 slots per entry");
        // Every slot now names entry 1, fingerprints kept: only the serial of entry 1 may
        // be found, and only as itself.
        let start = section.index_offset as usize;
        for slot in 0..section.index_slots as usize {
            let at = start + slot * INDEX_SLOT_LEN;
            if bytes[at..at + 4] != [0; 4] {
                bytes[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
            }
        }
        let view = SnapshotView::open(&bytes).unwrap();
        let mut sorted: Vec<Serial> = serials.iter().map(|s| Serial::from_hex(s).unwrap()).collect();
        sorted.sort();
        for serial in &sorted {
            if let Some(found) = view.lookup(0, serial, CertIdHash::Sha1) {
                assert_eq!(found.serial, serial.as_der_content());
                assert_eq!(found.signature, signature("sha1", serial));
            }
        }
        assert!(view.lookup(0, &sorted[0], CertIdHash::Sha1).is_some());
    }

    #[test]
    fn absent_serials_and_issuers_are_not_found() {
        let bytes = build(&["10", "20", "30"]);
        let view = SnapshotView::open(&bytes).unwrap();
        for s in ["0F", "15", "31", "1000"] {
            assert!(
                view.lookup(0, &Serial::from_hex(s).unwrap(), CertIdHash::Sha1)
                    .is_none(),
                "{s}"
            );
        }
        assert!(view
            .lookup(1, &Serial::from_hex("10").unwrap(), CertIdHash::Sha1)
            .is_none());
    }

    #[test]
    fn revoked_records_keep_time_and_reason() {
        let bytes = build(&["01", "02"]);
        let view = SnapshotView::open(&bytes).unwrap();
        let found = view
            .lookup(0, &Serial::from_hex("02").unwrap(), CertIdHash::Sha256)
            .unwrap();
        assert_eq!(
            found.status,
            StoredStatus::Revoked {
                at: UnixTime(501),
                reason: Some(RevocationReason::Superseded)
            }
        );
        assert_eq!(found.next_update, UnixTime(2001));
    }

    #[test]
    fn tombstones_are_found_as_removed() {
        let mut writer = SnapshotWriter::with_base(
            Vec::new(),
            9,
            UnixTime(1000),
            Some(BaseReference {
                sequence: 7,
                sha256_tree: "00".into(),
            }),
        )
        .unwrap();
        begin(&mut writer);
        let serial = Serial::from_hex("05").unwrap();
        writer
            .push_record(&RecordInput {
                serial: &serial,
                status: None,
                times: times(2000),
                signatures: [&[], &[]],
            })
            .unwrap();
        let (bytes, metadata) = writer.finish().unwrap();
        assert_eq!(metadata.base.as_ref().map(|b| b.sequence), Some(7));
        let view = SnapshotView::open(&bytes).unwrap();
        let section = &view.sections()[0];
        assert_eq!(
            section
                .found(&bytes, serial.as_der_content(), CertIdHash::Sha1)
                .map(|f| f.err()),
            Some(Some(Removed))
        );
        assert_eq!(section.section.earliest_next_update, i64::MAX);
    }

    #[test]
    fn documents_are_stored_with_their_hash_and_bounds_checked() {
        let mut writer = SnapshotWriter::new(Vec::new(), 3, UnixTime(10)).unwrap();
        begin(&mut writer);
        writer.end_issuer().unwrap();
        writer
            .push_document(DocumentInput {
                path: "/crl/t.crl".into(),
                kind: DocumentKind::CrlFull,
                issuer: "test".into(),
                content_type: "application/pkix-crl",
                bytes: b"crl bytes",
                this_update: UnixTime(10),
                next_update: UnixTime(20),
                crl_number: Some(3),
            })
            .unwrap();
        let (bytes, _) = writer.finish().unwrap();
        let view = SnapshotView::open(&bytes).unwrap();
        let document = &view.metadata().documents[0];
        assert_eq!(document_bytes(&bytes, document), Some(&b"crl bytes"[..]));
        assert_eq!(
            document.sha256,
            hex::encode(ring::digest::digest(&ring::digest::SHA256, b"crl bytes"))
        );
        let mut broken = document.clone();
        broken.length = bytes.len() as u64;
        assert_eq!(document_bytes(&bytes, &broken), None);
    }

    #[test]
    fn writer_refuses_unsorted_or_repeated_serials() {
        let mut writer = SnapshotWriter::new(Vec::new(), 1, UnixTime(0)).unwrap();
        begin(&mut writer);
        let a = Serial::from_hex("02").unwrap();
        let b = Serial::from_hex("01").unwrap();
        let record = |serial| RecordInput {
            serial,
            status: Some(StoredStatus::Good),
            times: times(1),
            signatures: [b"x".as_slice(), b"y".as_slice()],
        };
        writer.push_record(&record(&a)).unwrap();
        assert!(writer.push_record(&record(&a)).is_err());
        assert!(writer.push_record(&record(&b)).is_err());
    }

    #[test]
    fn corrupt_files_are_errors_never_panics() {
        let bytes = build(&["01", "02", "03"]);
        assert!(matches!(
            SnapshotView::open(&bytes[..10]),
            Err(FormatError::BadMagic)
        ));
        for cut in [bytes.len() - 1, bytes.len() - 40, bytes.len() / 2] {
            assert!(SnapshotView::open(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Flip every byte before the metadata in turn: lookups stay in bounds.
        let metadata_at = read_u64(&bytes, bytes.len() - 16).unwrap() as usize;
        for i in 0..metadata_at {
            let mut copy = bytes.clone();
            copy[i] ^= 0xa5;
            if let Ok(view) = SnapshotView::open(&copy) {
                for s in ["01", "02", "03"] {
                    if let Some(found) = view.lookup(0, &Serial::from_hex(s).unwrap(), CertIdHash::Sha256) {
                        let _ = (found.response(), found.etag());
                    }
                }
                let _ = view.sections()[0].records(&copy).count();
            }
        }
    }
}
