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

use crate::pki::cert::Certificate;
use crate::pki::keys::{SignatureAlgorithm, SigningKey};
use base64::Engine;
use serde::{Deserialize, Serialize};

/// Prefix of every signed manifest message.
pub const SIGNING_CONTEXT: &[u8] = b"ocsp-edge manifest v1\0";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestIssuer {
    pub name: String,
    pub subject: String,
    pub entries: u64,
}

/// Everything the signatures cover.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestBody {
    pub format_version: u32,
    /// Strictly increasing across publishes; responders refuse anything not newer.
    pub sequence: u64,
    /// RFC 3339.
    pub created_at: String,
    /// File name of the snapshot, relative to the manifest.
    pub snapshot: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole snapshot file.
    pub sha256: String,
    /// RFC 3339: the earliest nextUpdate of any response in the snapshot.
    pub earliest_next_update: String,
    pub issuers: Vec<ManifestIssuer>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    /// Which issuer section this signer speaks for (`ManifestIssuer::name`).
    pub issuer: String,
    pub algorithm: String,
    /// The signer's certificate, base64 DER (the same one the issuer's responses embed).
    pub signer_certificate: String,
    /// Base64 signature over `SIGNING_CONTEXT || canonical JSON of body`.
    pub value: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub body: ManifestBody,
    pub signatures: Vec<ManifestSignature>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Parse(String),
    #[error("manifest has no signature for issuer {0}")]
    MissingSignature(String),
    #[error("manifest signature for issuer {0} is malformed: {1}")]
    MalformedSignature(String, String),
    #[error("manifest signature for issuer {0} does not verify")]
    BadSignature(String),
    #[error("signing the manifest failed: {0}")]
    Sign(String),
}

impl ManifestBody {
    pub fn signed_message(&self) -> Vec<u8> {
        let mut message = SIGNING_CONTEXT.to_vec();
        // Serialising a plain struct of strings and integers cannot fail.
        message.extend(serde_json::to_vec(self).unwrap_or_default());
        message
    }
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Parse(e.to_string()))
    }

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
        let message = body.signed_message();
        let signatures = signers
            .iter()
            .map(|(issuer, certificate, key)| {
                let value = key
                    .sign(&message)
                    .map_err(|e| ManifestError::Sign(e.to_string()))?;
                Ok(ManifestSignature {
                    issuer: issuer.to_string(),
                    algorithm: key.algorithm().name().to_string(),
                    signer_certificate: B64.encode(certificate.der()),
                    value: B64.encode(value),
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        Ok(Manifest { body, signatures })
    }

    /// Finds the signature for `issuer`, checks it verifies over the body, and returns the
    /// signer certificate it names. Whether that certificate may speak for the issuer is the
    /// caller's check (it needs the trust anchors and the time).
    pub fn verified_signer(&self, issuer: &str) -> Result<Certificate, ManifestError> {
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
