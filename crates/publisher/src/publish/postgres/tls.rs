//! TLS to the database: rustls with the ring provider (no second crypto library).
//!
//! `verify-full` trusts only the certificates in `ca_file` and checks the host name (or
//! IP address) like any TLS client. `require` encrypts without authenticating the server,
//! as libpq's `sslmode=require` does; it is there for databases whose certificate cannot be
//! checked, and the documentation says what it does not protect against.

use super::{ConfigProblem, Connector, PostgresInput, TlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The connector for `input`'s `tls` mode, or what is wrong with its `ca_file`.
pub(super) fn connector(input: &PostgresInput) -> Result<Connector, ConfigProblem> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ConfigProblem::Tls)?;
    let config = match input.config.tls {
        // Never asked to negotiate (ssl_mode Disable); present only to give one type.
        TlsMode::Disable => builder
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
        TlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
        TlsMode::VerifyFull => builder
            .with_root_certificates(trusted_roots(input)?)
            .with_no_client_auth(),
    };
    Ok(Connector::new(config))
}

fn trusted_roots(input: &PostgresInput) -> Result<RootCertStore, ConfigProblem> {
    let Some(path) = &input.config.ca_file else {
        return Err(ConfigProblem::VerifyFullWithoutCaFile);
    };
    let text = std::fs::read(path).map_err(|source| ConfigProblem::CaFileUnreadable {
        path: path.clone(),
        source,
    })?;
    let blocks = pem::parse_many(&text).map_err(|source| ConfigProblem::CaFileNotPem {
        path: path.clone(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for block in blocks.iter().filter(|b| b.tag() == "CERTIFICATE") {
        roots
            .add(CertificateDer::from(block.contents().to_vec()))
            .map_err(|source| ConfigProblem::CaFileCertificate {
                path: path.clone(),
                source,
            })?;
    }
    if roots.is_empty() {
        return Err(ConfigProblem::CaFileWithoutCertificate { path: path.clone() });
    }
    Ok(roots)
}

/// `tls = "require"`: any certificate is accepted, but the handshake signatures are still
/// checked so the session keys belong to whoever holds that certificate's key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
