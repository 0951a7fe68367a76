//! The manifest: a small signed JSON document that names a snapshot file and vouches for
//! it (sequence, size, SHA-256, earliest nextUpdate).
//!
//! Each issuer's OCSP signer signs the manifest. That key already vouches for every
//! status of that issuer, so trusting it for the manifest adds no authority and no new
//! key to manage. Signatures cover a domain-separation prefix, so a manifest signature
//! can never be mistaken for (or replayed as) an OCSP response or any other signed
//! object made with the same key. The signed message is the canonical JSON of the body
//! (serde writes fields in declaration order), which the verifier rebuilds from the
//! parsed body; unknown fields are refused, so nothing unsigned can ride along.

use crate::pki::{Certificate, KeyError, SignatureAlgorithm, SigningKey};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Prefix of every signed manifest message.
const SIGNING_CONTEXT: &[u8] = b"ocsp-edge manifest v1\0";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One issuer section of the snapshot, as the manifest commits to it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestIssuer {
    /// The section's configured name: what signatures and documents refer to it by.
    pub name: String,
    /// The issuer certificate's subject, for people reading the manifest; verification
    /// trusts the configured anchors, never this text.
    pub subject: String,
    /// How many certificate records the section holds (checked against the snapshot).
    pub entries: u64,
}

/// Everything the signatures cover.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestBody {
    /// The snapshot file format version (`snapshot::format`); a responder refuses one it
    /// does not read.
    pub format_version: u32,
    /// Strictly increasing across publishes; responders refuse anything not newer.
    pub sequence: u64,
    /// RFC 3339.
    pub created_at: String,
    /// File name of the snapshot, relative to the manifest.
    pub snapshot: String,
    /// The snapshot file's exact length in bytes.
    pub size: u64,
    /// Bytes per piece of the integrity hash (see [`ContentHash`]).
    pub chunk_size: u64,
    /// Lowercase hex [`ContentHash`] of the whole snapshot file.
    pub sha256_tree: String,
    /// Set for a delta: the full snapshot it applies to. A responder that does not hold
    /// that base fetches the base first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<crate::snapshot::format::BaseReference>,
    /// RFC 3339: the earliest nextUpdate of any response in the snapshot.
    pub earliest_next_update: String,
    /// Every issuer section in the snapshot, in file order; each needs a signature.
    pub issuers: Vec<ManifestIssuer>,
    /// The publisher's commitment to the change list from the previous snapshot in its
    /// directory to this one (see [`crate::snapshot::change_digest_of`]); what a cache checks a
    /// hub's change feed against. Absent when there was no previous snapshot or the two
    /// cannot be compared, and in manifests from before it existed (which still verify:
    /// absent, it is not serialised, so the signed message is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<ChangeDigest>,
    /// Revocations the publisher's operator explicitly undid (`--allow-unrevoke`), within
    /// the last 10 days. Edges refuse a snapshot that un-revokes a serial not listed here.
    /// Absent when empty, so manifests from before it verify unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrevoked: Vec<ManifestUnrevocation>,
}

/// One revocation undone on purpose, as the signed manifest records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestUnrevocation {
    /// Issuer section name.
    pub issuer: String,
    /// Uppercase hex, as index.txt spells it.
    pub serial: String,
    /// RFC 3339: when the publish that undid it ran.
    pub at: String,
}

/// One issuer's OCSP signer's signature over the body.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    /// Which issuer section this signer speaks for (`ManifestIssuer::name`).
    pub issuer: String,
    /// The signature algorithm's stable name (`ecdsa-p256-sha256`, `rsa-pkcs1-sha256`,
    /// ...); it must fit the signer certificate's key.
    pub algorithm: String,
    /// The signer's certificate, base64 DER (the same one the issuer's responses embed).
    pub signer_certificate: String,
    /// Base64 signature over the domain-separation prefix `ocsp-edge manifest v1\0`
    /// followed by the canonical JSON of the body.
    pub value: String,
}

/// A manifest file: the body and one signature per issuer. Parsing it trusts nothing;
/// [`crate::snapshot::verify_manifest`] decides.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What the signatures cover.
    pub body: ManifestBody,
    /// One per issuer section (several for one issuer are allowed; the first for an
    /// issuer is the one checked).
    pub signatures: Vec<ManifestSignature>,
}

/// Why a manifest could not be parsed, or why an issuer's signature on it is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// Not JSON, a missing or unknown field, or a value of the wrong type (serde's text).
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Parse(String),
    /// No signature names this issuer section: nothing vouches for its part.
    #[error("manifest has no signature for issuer {0}")]
    MissingSignature(String),
    /// (issuer, why): unknown algorithm name, bad base64, or a signer certificate that
    /// does not parse.
    #[error("manifest signature for issuer {0} is malformed: {1}")]
    MalformedSignature(String, String),
    /// The signature does not verify over this body with the named certificate's key: the
    /// body was altered or signed by another key.
    #[error("manifest signature for issuer {0} does not verify")]
    BadSignature(String),
    /// A signing key failed while making the manifest (publisher side).
    #[error("signing the manifest failed: {0}")]
    Sign(String),
}

/// The snapshot integrity hash: SHA-256 over the concatenated SHA-256 digests of the
/// file's consecutive `chunk_size`-byte pieces (the last may be shorter), a two-level
/// hash tree. The pieces are independent, so a responder verifies a multi-gigabyte file
/// on every core at once, and the publisher computes it in one pass while writing.
pub struct ContentHash {
    chunk_size: u64,
    current: ring::digest::Context,
    in_current: u64,
    digests: ring::digest::Context,
    total: u64,
}

/// 16 MiB: small enough to spread a 100 MB file over cores, large enough that the list
/// of digests (32 bytes per piece) stays trivial even for tens of gigabytes.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;

impl ContentHash {
    /// A hash over pieces of `chunk_size` bytes (0 is taken as 1); the verifier must use
    /// the manifest's `chunk_size` to get the same root.
    pub fn new(chunk_size: u64) -> Self {
        ContentHash {
            chunk_size: chunk_size.max(1),
            current: ring::digest::Context::new(&ring::digest::SHA256),
            in_current: 0,
            digests: ring::digest::Context::new(&ring::digest::SHA256),
            total: 0,
        }
    }

    /// Hashes the next bytes of the file; any split of the file into calls gives the same
    /// result.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = (self.chunk_size - self.in_current) as usize;
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            self.current.update(now);
            self.in_current += now.len() as u64;
            self.total += now.len() as u64;
            if self.in_current == self.chunk_size {
                self.end_chunk();
            }
            bytes = later;
        }
    }

    fn end_chunk(&mut self) {
        let finished = std::mem::replace(
            &mut self.current,
            ring::digest::Context::new(&ring::digest::SHA256),
        );
        self.digests.update(finished.finish().as_ref());
        self.in_current = 0;
    }

    /// The root digest and the number of bytes hashed.
    pub fn finish(mut self) -> (Vec<u8>, u64) {
        if self.in_current > 0 || self.total == 0 {
            self.end_chunk();
        }
        (self.digests.finish().as_ref().to_vec(), self.total)
    }

    /// The root over already computed piece digests, in order.
    pub(crate) fn root(piece_digests: &[impl AsRef<[u8]>]) -> Vec<u8> {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for digest in piece_digests {
            context.update(digest.as_ref());
        }
        context.finish().as_ref().to_vec()
    }
}

impl ManifestBody {
    /// The domain-separation prefix followed by the body's canonical JSON: the exact
    /// bytes every signature covers.
    fn signed_message(&self) -> Vec<u8> {
        let mut message = SIGNING_CONTEXT.to_vec();
        // Serialising a plain struct of strings and integers cannot fail.
        message.extend(serde_json::to_vec(self).unwrap_or_default());
        message
    }
}

impl Manifest {
    /// Parses manifest JSON; unknown fields anywhere are refused. Verifies nothing.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))
    }

    /// Pretty-printed JSON with a final newline, as written to disk. Signatures stay
    /// valid however the JSON is laid out: they cover the body's canonical form.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Signs `body` once per issuer with that issuer's OCSP signing key.
    pub fn sign(
        body: ManifestBody,
        signers: &[(&str, &Certificate, &SigningKey)],
    ) -> Result<Manifest, ManifestError> {
        Self::sign_or(body, signers, |e| ManifestError::Sign(e.to_string()))
    }

    /// [`Manifest::sign`], with the caller choosing its error for a key that cannot sign
    /// (the publisher keeps a token's error and its exit code).
    pub fn sign_or<E>(
        body: ManifestBody,
        signers: &[(&str, &Certificate, &SigningKey)],
        failed: impl Fn(KeyError) -> E,
    ) -> Result<Manifest, E> {
        let message = body.signed_message();
        let signatures = signers
            .iter()
            .map(|(issuer, certificate, key)| {
                let value = key.sign(&message).map_err(&failed)?;
                Ok(ManifestSignature {
                    issuer: issuer.to_string(),
                    algorithm: key.algorithm().name().to_string(),
                    signer_certificate: B64.encode(certificate.der()),
                    value: B64.encode(value),
                })
            })
            .collect::<Result<Vec<_>, E>>()?;
        Ok(Manifest { body, signatures })
    }

    /// Finds the signature for `issuer`, checks it verifies over the body, and returns the
    /// signer certificate it names. Whether that certificate may speak for the issuer is the
    /// caller's check (it needs the trust anchors and the time).
    pub(crate) fn verified_signer(&self, issuer: &str) -> Result<Certificate, ManifestError> {
        let entry = self
            .signatures
            .iter()
            .find(|s| s.issuer == issuer)
            .ok_or_else(|| ManifestError::MissingSignature(issuer.to_string()))?;
        let malformed = |why: String| ManifestError::MalformedSignature(issuer.to_string(), why);
        let algorithm = SignatureAlgorithm::from_name(&entry.algorithm)
            .ok_or_else(|| malformed(format!("unknown algorithm {:?}", entry.algorithm)))?;
        let certificate_der = B64
            .decode(&entry.signer_certificate)
            .map_err(|e| malformed(e.to_string()))?;
        let certificate = Certificate::from_der(certificate_der).map_err(|e| malformed(e.to_string()))?;
        let value = B64.decode(&entry.value).map_err(|e| malformed(e.to_string()))?;
        if !certificate.verify_signature(algorithm, &self.body.signed_message(), &value) {
            return Err(ManifestError::BadSignature(issuer.to_string()));
        }
        Ok(certificate)
    }
}

/// The publisher's signed commitment, in a manifest, to the change list from snapshot
/// `since` (the newest one in its directory before this publish) to this one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChangeDigest {
    /// The sequence of the older snapshot.
    pub since: u64,
    /// Number of (issuer, serial) pairs in the list.
    pub count: u64,
    /// Lowercase hex SHA-256 of the canonical encoding (see [`super::changes::digest`]).
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_content_hash_equals_the_root_over_independent_pieces() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for (len, chunk) in [
            (0, 64),
            (1, 64),
            (64, 64),
            (65, 64),
            (10_000, 64),
            (10_000, 1 << 20),
        ] {
            let bytes = &data[..len];
            // Written in awkward pieces, as a buffered writer would.
            let mut streamed = ContentHash::new(chunk);
            for part in bytes.chunks(37) {
                streamed.update(part);
            }
            let (root, total) = streamed.finish();
            assert_eq!(total, len as u64);
            let pieces: Vec<_> = if bytes.is_empty() {
                vec![ring::digest::digest(&ring::digest::SHA256, b"")]
            } else {
                bytes
                    .chunks(chunk as usize)
                    .map(|p| ring::digest::digest(&ring::digest::SHA256, p))
                    .collect()
            };
            assert_eq!(root, ContentHash::root(&pieces), "len {len} chunk {chunk}");
        }
        let mut one = ContentHash::new(64);
        one.update(&data[..100]);
        let mut other = ContentHash::new(64);
        other.update(&data[1..101]);
        assert_ne!(one.finish().0, other.finish().0);
    }
}
