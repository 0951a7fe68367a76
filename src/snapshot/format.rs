//! The snapshot file format, version 1: pre-signed OCSP responses laid out so that a
//! responder can memory-map the file and look a certificate up in place, with no
//! per-entry deserialisation at load time.
//!
//! ```text
//! offset 0   "OCSPEDGE-SNAP-v1"            16-byte file magic
//!            record ...                     one per certificate, issuer by issuer
//!            entry table ...                one per issuer: sorted fixed-width entries
//!            document ...                   CRLs and other files served by path, as is
//!            metadata                       JSON (issuers, certificates, table offsets,
//!                                           documents)
//! end - 32   footer                         "OEFOOTER" | version u32 | reserved u32 |
//!                                           metadata offset u64 | metadata length u64
//! ```
//! All integers are little-endian. An **entry** is 32 bytes: a 24-byte serial key (length
//! octet, then the DER INTEGER content octets, zero-padded) and the u64 offset of the
//! certificate's record. Keys compare as bytes, which orders serials by length then value,
//! so a lookup is a binary search over the table: O(log n) reads of 32 bytes.
//! A **record** is a 32-byte header (thisUpdate i64, nextUpdate i64, status u8,
//! reason u8 (0xff = none), 6 reserved bytes, revocationTime i64) followed by one
//! **variant** per CertID hash, SHA-1 then SHA-256: ETag (SHA-256 of the response, 32
//! bytes), length u32, and the complete DER OCSPResponse.
//!
//! The footer sits at the end so the writer can stream records (and hash them) before it
//! knows where the tables land. Integrity is not this module's concern: the manifest
//! carries the file's SHA-256, and [`crate::snapshot::verify`] checks it before a view is
//! ever built. Even so, every read here is bounds-checked, so a corrupt file yields
//! `None`/an error, never a panic.

use crate::model::{RevocationReason, Serial, MAX_SERIAL_LEN};
use crate::pki::cert::CertIdHash;
use crate::time::UnixTime;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};

pub const FILE_MAGIC: &[u8; 16] = b"OCSPEDGE-SNAP-v1";
pub const FOOTER_MAGIC: &[u8; 8] = b"OEFOOTER";
pub const FORMAT_VERSION: u32 = 1;
pub const FOOTER_LEN: usize = 32;
pub const ENTRY_LEN: usize = 32;
const KEY_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 32;
const NO_REASON: u8 = 0xff;

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
    pub entries_offset: u64,
    pub entry_count: u64,
    /// The earliest nextUpdate of any response in this section (unix seconds).
    pub earliest_next_update: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub format_version: u32,
    pub sequence: u64,
    pub created_at: i64,
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
    pub kind: DocumentKind,
    /// Name of the issuer section it belongs to.
    pub issuer: String,
    pub content_type: String,
    pub offset: u64,
    pub length: u64,
    /// Lowercase hex SHA-256 of the bytes (the HTTP ETag).
    pub sha256: String,
    /// Unix seconds; for CRLs thisUpdate, for the JSON index the publish time.
    pub this_update: i64,
    /// Unix seconds; for CRLs nextUpdate, for the JSON index that of its CRLs.
    pub next_update: i64,
    /// cRLNumber, for CRLs.
    #[serde(default)]
    pub crl_number: Option<u64>,
}

/// A document to be written (the writer fills in offset, length and hash).
pub struct DocumentInput<'a> {
    pub path: String,
    pub kind: DocumentKind,
    pub issuer: String,
    pub content_type: &'static str,
    pub bytes: &'a [u8],
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    pub crl_number: Option<u64>,
}

/// The status part of a record, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredStatus {
    Good,
    Revoked {
        at: UnixTime,
        reason: Option<RevocationReason>,
    },
}

/// One certificate's signed material, ready to be written.
pub struct RecordInput<'a> {
    pub serial: &'a Serial,
    pub status: StoredStatus,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    /// Complete DER OCSPResponses, SHA-1 CertID first, then SHA-256.
    pub responses: [&'a [u8]; 2],
}

/// What a lookup returns: borrowed straight from the mapped file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found<'a> {
    /// Name of the issuer section it came from (empty when looked up in a bare view).
    pub issuer: &'a str,
    pub response: &'a [u8],
    pub etag: &'a [u8; 32],
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    pub status: StoredStatus,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("snapshot I/O: {0}")]
    Io(#[from] io::Error),
    #[error("not an ocsp-edge snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u32),
    #[error("snapshot is truncated or its offsets are out of range")]
    OutOfRange,
    #[error("snapshot metadata is invalid: {0}")]
    BadMetadata(String),
    #[error("entries of issuer {0} are not sorted by serial")]
    Unsorted(String),
}

fn serial_key(serial: &Serial) -> [u8; KEY_LEN] {
    let content = serial.as_der_content();
    let mut key = [0u8; KEY_LEN];
    key[0] = content.len() as u8;
    key[1..1 + content.len()].copy_from_slice(content);
    key
}

/// Streams a snapshot to `W`, tracking offsets. Issuers are written one after another:
/// `begin_issuer`, then `push_record` for every certificate in increasing serial order,
/// then `end_issuer`; finally `finish`.
pub struct SnapshotWriter<W: Write> {
    out: W,
    position: u64,
    pending_entries: Vec<[u8; ENTRY_LEN]>,
    last_key: Option<[u8; KEY_LEN]>,
    current: Option<IssuerSection>,
    metadata: Metadata,
}

impl<W: Write> SnapshotWriter<W> {
    pub fn new(mut out: W, sequence: u64, created_at: UnixTime) -> io::Result<Self> {
        out.write_all(FILE_MAGIC)?;
        Ok(SnapshotWriter {
            out,
            position: FILE_MAGIC.len() as u64,
            pending_entries: Vec::new(),
            last_key: None,
            current: None,
            metadata: Metadata {
                format_version: FORMAT_VERSION,
                sequence,
                created_at: created_at.seconds(),
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

    pub fn begin_issuer(&mut self, name: &str, certificate_der: &[u8], signer_der: &[u8]) {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        self.pending_entries.clear();
        self.last_key = None;
        self.current = Some(IssuerSection {
            name: name.to_string(),
            certificate: b64.encode(certificate_der),
            signer_certificate: b64.encode(signer_der),
            entries_offset: 0,
            entry_count: 0,
            earliest_next_update: i64::MAX,
        });
    }

    /// Appends one record. Serials must arrive strictly increasing (the caller sorts).
    pub fn push_record(&mut self, record: &RecordInput<'_>) -> io::Result<()> {
        let key = serial_key(record.serial);
        if self.last_key.is_some_and(|last| last >= key) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "serials out of order or repeated",
            ));
        }
        self.last_key = Some(key);
        let mut entry = [0u8; ENTRY_LEN];
        entry[..KEY_LEN].copy_from_slice(&key);
        entry[KEY_LEN..].copy_from_slice(&self.position.to_le_bytes());
        self.pending_entries.push(entry);
        if let Some(section) = self.current.as_mut() {
            section.earliest_next_update = section.earliest_next_update.min(record.next_update.seconds());
        }
        self.write(&record_header(record))?;
        for response in record.responses {
            let etag = ring::digest::digest(&ring::digest::SHA256, response);
            self.write(etag.as_ref())?;
            self.write(&(response.len() as u32).to_le_bytes())?;
            self.write(response)?;
        }
        Ok(())
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

    pub fn end_issuer(&mut self) -> io::Result<()> {
        let Some(mut section) = self.current.take() else {
            return Ok(());
        };
        section.entries_offset = self.position;
        section.entry_count = self.pending_entries.len() as u64;
        let entries = std::mem::take(&mut self.pending_entries);
        for entry in &entries {
            self.write(entry)?;
        }
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

fn record_header(record: &RecordInput<'_>) -> [u8; RECORD_HEADER_LEN] {
    let mut header = [0u8; RECORD_HEADER_LEN];
    header[..8].copy_from_slice(&record.this_update.seconds().to_le_bytes());
    header[8..16].copy_from_slice(&record.next_update.seconds().to_le_bytes());
    match record.status {
        StoredStatus::Good => header[17] = NO_REASON,
        StoredStatus::Revoked { at, reason } => {
            header[16] = 1;
            header[17] = reason.map(|r| r.code()).unwrap_or(NO_REASON);
            header[24..32].copy_from_slice(&at.seconds().to_le_bytes());
        }
    }
    header
}

/// A read-only view over snapshot bytes (usually a memory map).
pub struct SnapshotView<'a> {
    bytes: &'a [u8],
    metadata: Metadata,
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    read_u64(bytes, at).map(|v| v as i64)
}

impl<'a> SnapshotView<'a> {
    /// Parses the footer and metadata and checks every table lies inside the file and is
    /// sorted. Cost: O(entries) sequential reads of the tables, no per-entry allocation.
    pub fn open(bytes: &'a [u8]) -> Result<Self, FormatError> {
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
        let view = SnapshotView { bytes, metadata };
        for index in 0..view.metadata.issuers.len() {
            view.check_table(index)?;
        }
        for document in &view.metadata.documents {
            document_bytes(bytes, document).ok_or(FormatError::OutOfRange)?;
        }
        Ok(view)
    }

    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn table(&self, issuer: usize) -> Option<&'a [u8]> {
        table_in(self.bytes, self.metadata.issuers.get(issuer)?)
    }

    fn check_table(&self, issuer: usize) -> Result<(), FormatError> {
        let table = self.table(issuer).ok_or(FormatError::OutOfRange)?;
        let sorted = table
            .chunks_exact(ENTRY_LEN)
            .zip(table.chunks_exact(ENTRY_LEN).skip(1))
            .all(|(a, b)| a[..KEY_LEN] < b[..KEY_LEN]);
        if !sorted {
            return Err(FormatError::Unsorted(self.metadata.issuers[issuer].name.clone()));
        }
        Ok(())
    }

    /// Looks up the response for `serial` under issuer `issuer` (an index into
    /// `metadata().issuers`) for a CertID hashed with `hash`.
    pub fn lookup(&self, issuer: usize, serial: &Serial, hash: CertIdHash) -> Option<Found<'a>> {
        lookup_in(self.bytes, self.metadata.issuers.get(issuer)?, serial, hash)
    }
}

/// Looks `serial` up in `section`'s table inside `bytes`: a binary search over 32-byte
/// entries, then one record read. `bytes` must be the file `section` was read from.
pub fn lookup_in<'a>(
    bytes: &'a [u8],
    section: &IssuerSection,
    serial: &Serial,
    hash: CertIdHash,
) -> Option<Found<'a>> {
    if serial.as_der_content().len() > MAX_SERIAL_LEN {
        return None;
    }
    let key = serial_key(serial);
    let table = table_in(bytes, section)?;
    let entry = find_entry(table, &key)?;
    let offset = usize::try_from(read_u64(entry, KEY_LEN)?).ok()?;
    record_at(bytes, offset, hash)
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

/// Every entry of `section` in serial order: its serial and stored status. A sequential
/// walk of the table and the records, for diffs between snapshots; never on the hot path.
pub fn statuses_in<'a>(
    bytes: &'a [u8],
    section: &IssuerSection,
) -> impl Iterator<Item = (Serial, StoredStatus)> + 'a {
    table_in(bytes, section)
        .unwrap_or_default()
        .chunks_exact(ENTRY_LEN)
        .filter_map(move |entry| {
            let length = usize::from(entry[0]).min(KEY_LEN - 1);
            let serial = Serial::from_der_content(&entry[1..1 + length])?;
            let offset = usize::try_from(read_u64(entry, KEY_LEN)?).ok()?;
            Some((serial, record_at(bytes, offset, CertIdHash::Sha1)?.status))
        })
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

fn record_at(bytes: &[u8], offset: usize, hash: CertIdHash) -> Option<Found<'_>> {
    let header = bytes.get(offset..offset.checked_add(RECORD_HEADER_LEN)?)?;
    let status = match header[16] {
        0 => StoredStatus::Good,
        _ => StoredStatus::Revoked {
            at: UnixTime(read_i64(header, 24)?),
            reason: RevocationReason::from_code(header[17]),
        },
    };
    let variant_len = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(
            bytes
                .get(at.checked_add(32)?..at.checked_add(36)?)?
                .try_into()
                .ok()?,
        ) as usize)
    };
    let mut at = offset + RECORD_HEADER_LEN;
    if hash == CertIdHash::Sha256 {
        at = at.checked_add(36)?.checked_add(variant_len(at)?)?;
    }
    let etag: &[u8; 32] = bytes.get(at..at.checked_add(32)?)?.try_into().ok()?;
    let len = variant_len(at)?;
    let response = bytes.get(at + 36..(at + 36).checked_add(len)?)?;
    Some(Found {
        issuer: "",
        response,
        etag,
        this_update: UnixTime(read_i64(header, 0)?),
        next_update: UnixTime(read_i64(header, 8)?),
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(serials: &[&str]) -> Vec<u8> {
        let mut writer = SnapshotWriter::new(Vec::new(), 7, UnixTime(1000)).unwrap();
        writer.begin_issuer("test", b"issuer", b"signer");
        let parsed: Vec<Serial> = serials.iter().map(|s| Serial::from_hex(s).unwrap()).collect();
        let mut sorted = parsed.clone();
        sorted.sort();
        for (i, serial) in sorted.iter().enumerate() {
            let sha1 = format!("sha1-{}", serial.to_hex());
            let sha256 = format!("sha256-{}", serial.to_hex());
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
                    status,
                    this_update: UnixTime(1000),
                    next_update: UnixTime(2000 + i as i64),
                    responses: [sha1.as_bytes(), sha256.as_bytes()],
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
        assert_eq!(view.metadata().issuers[0].entry_count, serials.len() as u64);
        assert_eq!(view.metadata().issuers[0].earliest_next_update, 2000);
        for s in serials {
            let serial = Serial::from_hex(s).unwrap();
            let sha1 = view.lookup(0, &serial, CertIdHash::Sha1).unwrap();
            let sha256 = view.lookup(0, &serial, CertIdHash::Sha256).unwrap();
            assert_eq!(sha1.response, format!("sha1-{}", serial.to_hex()).as_bytes());
            assert_eq!(sha256.response, format!("sha256-{}", serial.to_hex()).as_bytes());
            assert_eq!(
                sha1.etag.as_slice(),
                ring::digest::digest(&ring::digest::SHA256, sha1.response).as_ref()
            );
            assert_eq!(sha1.status, sha256.status);
        }
    }

    #[test]
    fn lookups_find_every_entry_of_large_random_and_skewed_tables() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
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
                assert_eq!(found.response, format!("sha1-{}", serial.to_hex()).as_bytes());
            }
            for _ in 0..2000 {
                let absent = Serial::from_hex(&format!("{:016X}{:016X}1", random() >> 1, random())).unwrap();
                assert!(view.lookup(0, &absent, CertIdHash::Sha1).is_none());
            }
        }
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
    fn documents_are_stored_with_their_hash_and_bounds_checked() {
        let mut writer = SnapshotWriter::new(Vec::new(), 3, UnixTime(10)).unwrap();
        writer.begin_issuer("t", b"", b"");
        writer.end_issuer().unwrap();
        writer
            .push_document(DocumentInput {
                path: "/crl/t.crl".into(),
                kind: DocumentKind::CrlFull,
                issuer: "t".into(),
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
        writer.begin_issuer("t", b"", b"");
        let a = Serial::from_hex("02").unwrap();
        let b = Serial::from_hex("01").unwrap();
        let record = |serial| RecordInput {
            serial,
            status: StoredStatus::Good,
            this_update: UnixTime(0),
            next_update: UnixTime(1),
            responses: [b"x".as_slice(), b"y".as_slice()],
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
        // Flip every byte in turn: open either fails or lookups stay in bounds.
        for i in 0..bytes.len() {
            let mut copy = bytes.clone();
            copy[i] ^= 0xa5;
            if let Ok(view) = SnapshotView::open(&copy) {
                for s in ["01", "02", "03"] {
                    let _ = view.lookup(0, &Serial::from_hex(s).unwrap(), CertIdHash::Sha256);
                }
            }
        }
    }
}
