//! Loading a signing key by reference: a PEM file, or a key in a PKCS#11 token (through
//! [`super::hsm`]), checked against the certificate it must belong to.

use super::error::{file_error, PublishError};
use ocsp_edge_core::pki::{Certificate, KeyError, SigningKey};
use std::path::Path;

/// Whether a configured key is a `pkcs11:` URI (a token key) rather than a PEM file.
pub fn is_token_key(reference: &Path) -> bool {
    reference.to_str().is_some_and(super::hsm::Pkcs11Uri::is_uri)
}

/// Loads the key a reference names: a PEM file, or a token key through [`super::hsm`].
/// `certificate_path` is the certificate the key must belong to (for messages).
pub fn read_key_for(
    reference: &Path,
    certificate: &Certificate,
    certificate_path: &Path,
) -> Result<SigningKey, PublishError> {
    match reference.to_str().filter(|r| super::hsm::Pkcs11Uri::is_uri(r)) {
        Some(uri) => Ok(super::hsm::open_signing_key(uri, certificate, certificate_path)?),
        None => read_key(reference, certificate),
    }
}

fn read_key(path: &Path, signer: &Certificate) -> Result<SigningKey, PublishError> {
    let kind = signer.key_kind().map_err(|e| file_error(path, e))?;
    SigningKey::from_pem(&read_text(path)?, signer.public_key(), kind)
        .map_err(|e: KeyError| file_error(path, e))
}

pub(super) fn read_text(path: &Path) -> Result<String, PublishError> {
    std::fs::read_to_string(path).map_err(|e| file_error(path, e))
}
