//! The HTTP client ocsp-edge sends every outbound request with (replication sources, the
//! cache tier's hubs, S3): rustls on the ring provider, platform roots, a user agent, and
//! extra roots from CA bundle files. Each user adds its own timeouts. Must never turn
//! certificate checking off.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a client could not be built; names the CA bundle at fault.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: {source}")]
    ReadBundle { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a PEM bundle of certificates: {source}")]
    BadBundle { path: PathBuf, source: reqwest::Error },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// The starting point of every HTTP client ocsp-edge builds: rustls on the ring provider
/// (installed here, once; reqwest panics without one), platform roots, a user agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    // Installing twice is harmless; the first call wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("ocsp-edge/", env!("CARGO_PKG_VERSION")))
}

/// Builds `builder` (from [`client_builder`]) trusting, besides the platform roots, every
/// certificate in each PEM bundle of `ca_files` (e.g. a private origin's or hub's CA).
/// Reads files: call it where blocking is allowed.
pub fn build_with_ca_files<'a>(
    mut builder: reqwest::ClientBuilder,
    ca_files: impl IntoIterator<Item = &'a Path>,
) -> Result<reqwest::Client, ClientError> {
    for path in ca_files {
        let pem = std::fs::read(path).map_err(|source| ClientError::ReadBundle {
            path: path.to_path_buf(),
            source,
        })?;
        let certificates =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::BadBundle {
                path: path.to_path_buf(),
                source,
            })?;
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(ClientError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_broken_bundle_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = build_with_ca_files(client_builder(), [missing.as_path()]).unwrap_err();
        assert!(matches!(err, ClientError::ReadBundle { .. }), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = build_with_ca_files(client_builder(), [broken.as_path()]).unwrap_err();
        assert!(err.to_string().contains("broken.pem"), "{err}");

        let demo_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/root/ca.pem");
        build_with_ca_files(client_builder(), [demo_root.as_path()]).unwrap();
    }
}
