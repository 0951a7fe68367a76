//! Certificates and signing keys: parsing, the checks a delegated OCSP signer must pass,
//! and signing. No I/O.
//!
//! The submodules (`cert`, `keys`) are private; the surface is [`Certificate`] (with
//! [`CertIdHash`] and [`CertError`]) and [`SigningKey`] (with [`KeyError`],
//! [`SignatureAlgorithm`], and [`ExternalSigner`], [`PublicKeyKind`] and
//! [`ExternalSignError`] for keys held in a token).

mod cert;
mod keys;

pub use cert::{CertError, CertIdHash, Certificate};
pub use keys::{ExternalSignError, ExternalSigner, KeyError, PublicKeyKind, SignatureAlgorithm, SigningKey};

pub(crate) use cert::parse_time;
