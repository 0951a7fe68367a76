//! Certificates and signing keys: parsing, the checks a delegated OCSP signer must pass,
//! and signing. No I/O.

#[allow(missing_docs)] // not yet documented item by item (issue 14); the module docs say what it owns
pub mod cert;
#[allow(missing_docs)] // not yet documented item by item (issue 14); the module docs say what it owns
pub mod keys;
