//! The publisher's one error type: what went wrong, naming the file (and line) at fault.
//! Every publisher module returns it, so it depends on none of them but the ones whose
//! errors it wraps.

use super::input::InputError;
use crate::pki::keys::KeyError;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A key in a PKCS#11 token could not be used; each case has its own exit code.
    #[error(transparent)]
    Hsm(#[from] super::hsm::HsmError),
    #[error(transparent)]
    Sequence(#[from] super::sign::SequenceError),
    /// A safety rail stopped the publish (see [`super::rails`]); nothing was written.
    #[error(transparent)]
    Refused(#[from] super::rails::RailError),
}

impl PublishError {
    /// A signing failure: a token's own error keeps its kind (and exit code).
    pub fn signing(error: KeyError) -> PublishError {
        match error {
            KeyError::External(inner) => match inner.downcast::<super::hsm::HsmError>() {
                Ok(hsm) => PublishError::Hsm(*hsm),
                Err(other) => PublishError::Config(other.to_string()),
            },
            other => PublishError::Config(other.to_string()),
        }
    }
}

pub(super) fn file_error(path: &Path, message: impl ToString) -> PublishError {
    PublishError::File {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}
