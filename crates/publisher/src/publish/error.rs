//! The publisher's one error type: what went wrong, naming the file (and line) at fault.
//! Every publisher module returns it, so it depends on none of them but the ones whose
//! errors it wraps.

use super::input::InputError;
use ocsp_edge_core::crl::{CrlError, UrlError};
use ocsp_edge_core::model::Serial;
use ocsp_edge_core::pki::KeyError;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Input(#[from] InputError),
    /// The CA's database could not be reached or read (never names the password).
    #[error(transparent)]
    Postgres(#[from] super::postgres::PostgresError),
    /// The configuration or the flags are wrong (and only they: never a key or data fault).
    #[error("configuration: {0}")]
    Config(String),
    /// A key that loaded and matched its certificate failed to sign (not a token key: those
    /// are [`PublishError::Hsm`]). Nothing was published.
    #[error("signing failed: {0}")]
    Signing(#[source] KeyError),
    /// A CRL could not be encoded from the records and sequence given.
    #[error(transparent)]
    Crl(#[from] CrlError),
    /// A document could not be encoded.
    #[error("encoding {what}: {source}")]
    Encoding {
        what: &'static str,
        source: serde_json::Error,
    },
    /// A revoked entry is on hold, which no CRL may carry (BR §7.2.2).
    #[error(
        "issuer {issuer:?}: serial {serial} is on certificateHold, which the CA/Browser Forum forbids in CRLs \
         (BR §7.2.2); revoke it with a final reason or remove it"
    )]
    CertificateHold { issuer: String, serial: Serial },
    /// The snapshot a delta is built on does not hold what its manifest promised.
    #[error("the delta base snapshot {0}")]
    Base(&'static str),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A key in a PKCS#11 token could not be used; each case has its own exit code.
    #[error(transparent)]
    Hsm(#[from] super::hsm::HsmError),
    #[error(transparent)]
    Sequence(#[from] super::sequence::SequenceError),
    /// A safety rail stopped the publish (see [`super::rails`]); nothing was written.
    #[error(transparent)]
    Refused(#[from] super::rails::refusal::RailError),
    /// The live publisher's fence stopped the publish before it became visible.
    #[error(transparent)]
    Fenced(#[from] super::fence::Fenced),
}

/// A CRL URL in the configuration is not one a responder can serve.
impl From<UrlError> for PublishError {
    fn from(error: UrlError) -> PublishError {
        PublishError::Config(error.to_string())
    }
}

impl PublishError {
    /// A signing failure: a token's own error keeps its kind (and exit code); any other
    /// is a key fault, never a configuration error.
    pub fn signing(error: KeyError) -> PublishError {
        match error {
            KeyError::External(inner) => match inner.downcast::<super::hsm::HsmError>() {
                Ok(hsm) => PublishError::Hsm(*hsm),
                Err(other) => PublishError::Signing(KeyError::External(other)),
            },
            other => PublishError::Signing(other),
        }
    }
}

pub(super) fn file_error(path: &Path, message: impl ToString) -> PublishError {
    PublishError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}
