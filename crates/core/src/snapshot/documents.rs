//! Which documents a snapshot may serve, and what vouches for each (the "Trust model" of
//! docs/architecture.md). A document is served by URL path straight from the snapshot, so
//! it needs more than the manifest's signatures, which come from OCSP signers:
//!
//! - a CRL (full, partition or delta) must verify as a CRL of its section's issuer,
//!   signed with that issuer's own key; the caching facts the server sends for it
//!   (thisUpdate, nextUpdate, cRLNumber) must be the CRL's own signed values; its kind
//!   must match the CRL (a partition carries an issuingDistributionPoint, a delta a
//!   deltaCRLIndicator); and when it names distribution point URIs, its path must be the
//!   path of one of them;
//! - the CCADB JSON index must list only URLs of its issuer's partitions in this snapshot,
//!   with their freshness;
//! - no document may sit at a path that the server reads as an OCSP GET request: there,
//!   only the OCSP responder answers (the server enforces that too, for its configured
//!   prefix; refusing such a snapshot makes the planted bytes unservable anywhere).
//!
//! Sans-I/O: metadata and bytes in, a path index or a refusal out. Never trusts a
//! document's metadata over its signed bytes.

use super::format::{self, Document, DocumentKind, Metadata};
use crate::crl::{self, CrlSummary, Url};
use crate::pki::Certificate;
use crate::time::UnixTime;
use std::collections::HashMap;

/// Why a document is refused; [`super::verify::VerifyError::Document`] adds its path.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The path does not start with `/`, so it cannot be matched against a request path.
    #[error("the path is not an absolute URL path")]
    RelativePath,
    /// Two documents claim one path: which one is served would be up to chance.
    #[error("the path appears twice")]
    DuplicatePath,
    /// The document names an issuer section the snapshot does not have, so nothing
    /// vouches for it.
    #[error("issuer {0:?} is not in the snapshot")]
    UnknownIssuer(String),
    /// The path would be read as an OCSP GET request: a document there could shadow OCSP
    /// answers with bytes no OCSP signer made.
    #[error("the path is an OCSP GET request; only the OCSP responder answers there")]
    OcspRequestPath,
    /// Offset and length point past the end of the snapshot file.
    #[error("its bytes lie outside the file")]
    OutOfBounds,
    /// The bytes are not those the signed metadata's SHA-256 names.
    #[error("its SHA-256 (the ETag) does not match its bytes")]
    Digest,
    /// A CRL not typed `application/pkix-crl` or an index not typed `application/json`:
    /// clients would mis-handle it.
    #[error("{kind} must be served as {expected}")]
    ContentType {
        /// What the document is ("a CRL", "the CRL index").
        kind: &'static str,
        /// The only content type allowed for it.
        expected: &'static str,
    },
    /// The bytes are not a CRL of the section's issuer signed with that issuer's key.
    #[error(transparent)]
    Crl(#[from] crl::CrlReadError),
    /// The CRL has no nextUpdate, so the server could not say until when it is fresh.
    #[error("the CRL has no nextUpdate (RFC 5280 requires one)")]
    NoNextUpdate,
    /// The metadata's thisUpdate, nextUpdate or cRLNumber (which become caching headers
    /// and metrics) are not the CRL's own signed values.
    #[error(
        "thisUpdate/nextUpdate/cRLNumber {claimed_this}/{claimed_next}/{claimed_number:?} differ from the \
         CRL's own {this_update}/{next_update}/{number:?}"
    )]
    FactsDiffer {
        /// thisUpdate as the metadata claims it.
        claimed_this: UnixTime,
        /// nextUpdate as the metadata claims it.
        claimed_next: UnixTime,
        /// cRLNumber as the metadata claims it.
        claimed_number: Option<u64>,
        /// The CRL's signed thisUpdate.
        this_update: UnixTime,
        /// The CRL's signed nextUpdate.
        next_update: UnixTime,
        /// The CRL's signed cRLNumber (`None` if absent or beyond `u64`).
        number: Option<u64>,
    },
    /// The metadata's kind disagrees with the CRL: a partition without an
    /// issuingDistributionPoint, a full CRL that is a delta, a delta that is not.
    #[error("the CRL is not a {0:?} CRL")]
    KindDiffers(DocumentKind),
    /// The CRL's issuingDistributionPoint names URIs whose paths are not this document's
    /// path: a partition served where another partition belongs.
    #[error("the CRL's issuingDistributionPoint names {0:?}, not this path")]
    DistributionPoint(Vec<String>),
    /// The index claims a cRLNumber; only CRLs have one.
    #[error("the CRL index has no cRLNumber")]
    IndexNumber,
    /// The index is not a JSON array of strings.
    #[error("not a JSON array of URLs: {0}")]
    IndexJson(serde_json::Error),
    /// The index is an empty array.
    #[error("the CRL index lists no CRLs")]
    IndexEmpty,
    /// An entry of the index is not a plain http(s) URL.
    #[error(transparent)]
    IndexUrl(#[from] crl::UrlError),
    /// An index entry's path is not a partition CRL of the same issuer in this snapshot:
    /// the index may only point at CRLs the snapshot itself vouches for.
    #[error("{url} is not a partition of issuer {issuer:?} here")]
    NotAPartition {
        /// The URL as listed.
        url: String,
        /// The index's issuer section.
        issuer: String,
    },
    /// The index's thisUpdate/nextUpdate are not the newest thisUpdate and the earliest
    /// nextUpdate of the partitions it lists, so its caching headers would lie.
    #[error("its thisUpdate/nextUpdate are not those of the partitions it lists")]
    IndexFreshness,
}

/// The media type a CRL document is served with (RFC 5280 §4.2.1.13).
pub const CRL_CONTENT_TYPE: &str = "application/pkix-crl";
/// The media type of the CCADB JSON index of an issuer's partitions.
pub(crate) const INDEX_CONTENT_TYPE: &str = "application/json";

/// The first document [`check`] refused: its URL path and why. (Its own type rather than
/// [`super::verify::VerifyError`], which wraps it, so that this module does not import
/// the verifier that calls it.)
#[derive(Debug)]
pub(super) struct RefusedDocument {
    pub(super) path: String,
    pub(super) reason: DocumentError,
}

/// Checks every document of `metadata` against the issuer certificate of its section
/// (`anchors[i].0` is the trust anchor of section `i`) and returns the path index.
pub(super) fn check(
    metadata: &Metadata,
    bytes: &[u8],
    anchors: &[(Certificate, Certificate)],
) -> Result<HashMap<String, usize>, RefusedDocument> {
    let mut index = HashMap::with_capacity(metadata.documents.len());
    for (position, document) in metadata.documents.iter().enumerate() {
        let refuse = |reason: DocumentError| RefusedDocument {
            path: document.path.clone(),
            reason,
        };
        if !document.path.starts_with('/') {
            return Err(refuse(DocumentError::RelativePath));
        }
        if index.insert(document.path.clone(), position).is_some() {
            return Err(refuse(DocumentError::DuplicatePath));
        }
        let issuer = metadata
            .issuers
            .iter()
            .position(|section| section.name == document.issuer)
            .and_then(|section| anchors.get(section))
            .map(|(anchor, _)| anchor)
            .ok_or_else(|| refuse(DocumentError::UnknownIssuer(document.issuer.clone())))?;
        if is_ocsp_request_path(&document.path) {
            return Err(refuse(DocumentError::OcspRequestPath));
        }
        let content =
            format::document_bytes(bytes, document).ok_or_else(|| refuse(DocumentError::OutOfBounds))?;
        let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, content));
        if !digest.eq_ignore_ascii_case(&document.sha256) {
            return Err(refuse(DocumentError::Digest));
        }
        match document.kind {
            DocumentKind::CrlFull | DocumentKind::CrlPartition | DocumentKind::CrlDelta => {
                check_crl(document, content, issuer).map_err(refuse)?
            }
            DocumentKind::CrlIndex => check_index(document, content, metadata).map_err(refuse)?,
        }
    }
    Ok(index)
}

/// A CRL document: signed by its issuer, described by its own signed values, of the kind
/// its metadata says, at a path it names (if it names any).
fn check_crl(document: &Document, content: &[u8], issuer: &Certificate) -> Result<(), DocumentError> {
    if document.content_type != CRL_CONTENT_TYPE {
        return Err(DocumentError::ContentType {
            kind: "a CRL",
            expected: CRL_CONTENT_TYPE,
        });
    }
    let summary = crl::read_verified(content, issuer)?;
    check_crl_facts(document, &summary)?;
    let kind_matches = match document.kind {
        DocumentKind::CrlFull => summary.delta_base.is_none(),
        DocumentKind::CrlPartition => summary.delta_base.is_none() && !summary.distribution_points.is_empty(),
        DocumentKind::CrlDelta => summary.delta_base.is_some(),
        DocumentKind::CrlIndex => false,
    };
    if !kind_matches {
        return Err(DocumentError::KindDiffers(document.kind));
    }
    if !summary.distribution_points.is_empty()
        && !summary
            .distribution_points
            .iter()
            .any(|uri| Url::parse(uri).is_ok_and(|url| url.path == document.path))
    {
        return Err(DocumentError::DistributionPoint(
            summary.distribution_points.clone(),
        ));
    }
    Ok(())
}

/// The server's caching headers (Last-Modified, Expires, max-age) and the CRL metrics
/// come from the metadata, so it must say exactly what the CRL's signed fields say.
fn check_crl_facts(document: &Document, summary: &CrlSummary) -> Result<(), DocumentError> {
    let next_update = summary.next_update.ok_or(DocumentError::NoNextUpdate)?;
    if UnixTime(document.this_update) != summary.this_update
        || UnixTime(document.next_update) != next_update
        || document.crl_number != summary.number
    {
        return Err(DocumentError::FactsDiffer {
            claimed_this: UnixTime(document.this_update),
            claimed_next: UnixTime(document.next_update),
            claimed_number: document.crl_number,
            this_update: summary.this_update,
            next_update,
            number: summary.number,
        });
    }
    Ok(())
}

/// The CCADB JSON array of partitioned CRLs: a non-empty list of URLs, each the path of a
/// partition of the same issuer in this snapshot; fresh exactly as long as those are.
fn check_index(document: &Document, content: &[u8], metadata: &Metadata) -> Result<(), DocumentError> {
    if document.content_type != INDEX_CONTENT_TYPE {
        return Err(DocumentError::ContentType {
            kind: "the CRL index",
            expected: INDEX_CONTENT_TYPE,
        });
    }
    if document.crl_number.is_some() {
        return Err(DocumentError::IndexNumber);
    }
    let urls: Vec<String> = serde_json::from_slice(content).map_err(DocumentError::IndexJson)?;
    if urls.is_empty() {
        return Err(DocumentError::IndexEmpty);
    }
    let mut partitions = Vec::with_capacity(urls.len());
    for url in &urls {
        let path = Url::parse(url)?.path;
        let partition = metadata
            .documents
            .iter()
            .find(|d| d.path == path && d.issuer == document.issuer && d.kind == DocumentKind::CrlPartition)
            .ok_or_else(|| DocumentError::NotAPartition {
                url: url.clone(),
                issuer: document.issuer.clone(),
            })?;
        partitions.push(partition);
    }
    let this_update = partitions.iter().map(|p| p.this_update).max();
    let next_update = partitions.iter().map(|p| p.next_update).min();
    if Some(document.this_update) != this_update || Some(document.next_update) != next_update {
        return Err(DocumentError::IndexFreshness);
    }
    Ok(())
}

/// Whether the server would read `path` as an OCSP GET request under some OCSP path
/// prefix ([`crate::ocsp::ocsp_remainder`] then [`crate::ocsp::from_get_path`], the
/// server's own routing rule: lenient base64 and percent-decoding, a DER SEQUENCE inside).
/// Every prefix ending in '/' is tried, since the verifier does not know a responder's
/// `ocsp.path`, and base64 itself may contain '/'.
pub fn is_ocsp_request_path(path: &str) -> bool {
    path.match_indices('/')
        .any(|(at, _)| crate::ocsp::is_ocsp_request_path(path, &path[..=at], path.len()))
}
