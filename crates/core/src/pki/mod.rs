//! Certificates and signing keys: parsing, the checks a delegated OCSP signer must pass,
//! and signing. No I/O.

pub mod cert;
pub mod keys;
