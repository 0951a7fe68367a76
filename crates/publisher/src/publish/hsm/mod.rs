//! Private keys in a PKCS#11 token (an HSM; SoftHSM2 in tests): the publisher's way to sign
//! responses, CRLs and manifests without ever holding the key.
//!
//! - [`uri`]: RFC 7512 `pkcs11:` key references (no I/O).
//! - [`pin`]: reading the user PIN from a file or an environment variable.
//! - [`pool`]: one session per signing thread.
//! - `token`: loading the module, finding token and key, checking the key against the
//!   signer certificate, and signing (through the `cryptoki` crate, never hand-written FFI).
//!
//! Only the publisher holds keys: nothing outside `publish` may use this module, and the
//! edge never loads a PKCS#11 library. What it hands out is a [`SigningKey`] like any other,
//! so every call site signs the same way whether the key is a PEM file or a token object.
//!
//! Every failure is an [`HsmError`] whose variant says what the operator must do (the
//! binary maps each to its own exit code, in one table beside the others). No error, log line or `Debug`
//! output contains a PIN: PINs live in [`pin::Pin`], which has no way to be printed.

pub mod pin;
pub mod pool;
mod token;
pub mod uri;

use ocsp_edge_core::pki::{Certificate, KeyError, SigningKey};
use std::path::{Path, PathBuf};

pub use uri::{PinSource, Pkcs11Uri, UriError};

/// Why a token key could not be used. Messages name the key by its URI (PIN-free) and
/// never contain the PIN.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    #[error("{0}")]
    Uri(#[from] UriError),
    #[error("PKCS#11 module {path}: {reason}")]
    Module { path: PathBuf, reason: String },
    #[error("{key}: {reason}")]
    Token { key: String, reason: String },
    #[error("{key}: the token refused the PIN (CKR_PIN_INCORRECT). Not retrying: tokens lock after a few wrong PINs; check the PIN source ({source_name})")]
    PinIncorrect { key: String, source_name: String },
    #[error("{key}: the user PIN is locked (CKR_PIN_LOCKED); the token's security officer must unlock it")]
    PinLocked { key: String },
    #[error("{key}: PIN source {source_name}: {reason}")]
    PinSource {
        key: String,
        source_name: String,
        reason: String,
    },
    #[error("{key}: no private key on token {token:?} matches{}", listing(.present))]
    KeyNotFound {
        key: String,
        token: String,
        present: Vec<String>,
    },
    #[error("{key}: {} private keys on token {token:?} match; add id= or object= to pick one:{}", .matches.len(), listing(.matches))]
    KeyAmbiguous {
        key: String,
        token: String,
        matches: Vec<String>,
    },
    #[error("{key}: the token does not offer {mechanism}, which signing with this {algorithm} key needs")]
    MechanismUnsupported {
        key: String,
        mechanism: &'static str,
        algorithm: &'static str,
    },
    #[error(
        "{key} (public key {key_fingerprint}) does not belong to the certificate {certificate} \
         (public key {certificate_fingerprint}): {detail}"
    )]
    KeyMismatch {
        key: String,
        key_fingerprint: String,
        certificate: String,
        certificate_fingerprint: String,
        detail: String,
    },
    #[error("{key}: the token went away while signing ({code}); nothing was published, the previous snapshot stays the newest. Run the publish again once the token is back")]
    TokenGone { key: String, code: String },
    #[error("{key}: {operation} failed: {code}")]
    Pkcs11 {
        key: String,
        operation: &'static str,
        code: String,
    },
}

fn listing(items: &[String]) -> String {
    if items.is_empty() {
        " (the token has no private keys visible to this user)".into()
    } else {
        items.iter().map(|i| format!("\n  {i}")).collect()
    }
}

impl HsmError {
    /// The token error inside a signing failure, when the key is a token key.
    pub fn from_key_error(error: &KeyError) -> Option<&HsmError> {
        match error {
            KeyError::External(inner) => inner.downcast_ref::<HsmError>(),
            _ => None,
        }
    }
}

/// Opens the key a `pkcs11:` reference names and checks it against `certificate` (read
/// from `certificate_path`): after this, signing needs nothing but the token.
pub fn open_signing_key(
    reference: &str,
    certificate: &Certificate,
    certificate_path: &Path,
) -> Result<SigningKey, HsmError> {
    let uri = Pkcs11Uri::parse(reference)?;
    let signer = token::TokenSigner::open(&uri, certificate, certificate_path)?;
    tracing::info!(key = %uri, certificate = %certificate_path.display(), "signing key is in a PKCS#11 token");
    let kind = certificate.key_kind().map_err(|e| HsmError::KeyMismatch {
        key: uri.to_string(),
        key_fingerprint: String::new(),
        certificate: certificate_path.display().to_string(),
        certificate_fingerprint: String::new(),
        detail: e.to_string(),
    })?;
    let public_key = certificate.public_key().to_vec();
    SigningKey::external(std::sync::Arc::new(signer), &public_key, kind).map_err(|e| HsmError::KeyMismatch {
        key: uri.to_string(),
        key_fingerprint: String::new(),
        certificate: certificate_path.display().to_string(),
        certificate_fingerprint: token::fingerprint(&public_key),
        detail: e.to_string(),
    })
}

/// Signs `count` times on one session, one thread: the token's own sequential rate, the
/// yardstick for the publisher's parallel rate (see loadtest's `signrate`).
pub fn single_session_rate(key: &SigningKey, message: &[u8], count: u32) -> Result<f64, KeyError> {
    let started = std::time::Instant::now();
    for _ in 0..count {
        key.sign(message)?;
    }
    Ok(f64::from(count) / started.elapsed().as_secs_f64().max(1e-9))
}
