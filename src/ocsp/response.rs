//! Encoding OCSP responses (RFC 6960 §4.2.1).
//!
//! Two kinds: the unsigned error responses (a status and nothing else, encoded once at
//! start-up) and the signed BasicOCSPResponse the publisher pre-signs for each CertID.
//! Signing itself is done by the caller's key; this module only lays out bytes.

use crate::der::{self, element, OCTET_STRING, OID, SEQUENCE};
use crate::model::{CertStatus, Serial};
use crate::oids;
use crate::pki::cert::{CertIdHash, Certificate};
use crate::time::UnixTime;

/// OCSPResponseStatus (RFC 6960 §4.2.1). Value 4 is unused by the standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// The complete DER of an unsigned, error-status OCSPResponse: `SEQUENCE { ENUMERATED n }`.
/// Encoded at compile time: serving an error costs no encoding and no allocation.
pub fn encode_error_response(status: ResponseStatus) -> &'static [u8] {
    const fn encoded(status: ResponseStatus) -> [u8; 5] {
        [0x30, 0x03, 0x0a, 0x01, status as u8]
    }
    const SUCCESSFUL: [u8; 5] = encoded(ResponseStatus::Successful);
    const MALFORMED: [u8; 5] = encoded(ResponseStatus::MalformedRequest);
    const INTERNAL: [u8; 5] = encoded(ResponseStatus::InternalError);
    const TRY_LATER: [u8; 5] = encoded(ResponseStatus::TryLater);
    const SIG_REQUIRED: [u8; 5] = encoded(ResponseStatus::SigRequired);
    const UNAUTHORIZED: [u8; 5] = encoded(ResponseStatus::Unauthorized);
    match status {
        ResponseStatus::Successful => &SUCCESSFUL,
        ResponseStatus::MalformedRequest => &MALFORMED,
        ResponseStatus::InternalError => &INTERNAL,
        ResponseStatus::TryLater => &TRY_LATER,
        ResponseStatus::SigRequired => &SIG_REQUIRED,
        ResponseStatus::Unauthorized => &UNAUTHORIZED,
    }
}

/// Everything that is the same in every response one signer produces for one issuer.
pub struct ResponseTemplate {
    responder_key_id: Vec<u8>,
    /// `certs` field content: the delegated signer's certificate, or none when the issuer
    /// signs for itself (Go's x/crypto/ocsp rejects a CA-signed response that embeds the CA).
    signer_certificate: Option<Vec<u8>>,
    signature_algorithm: Vec<u8>,
    issuer_hashes: [(CertIdHash, Vec<u8>, Vec<u8>); 2],
}

/// The per-certificate facts of one response.
pub struct SingleFacts<'a> {
    pub serial: &'a Serial,
    pub status: &'a CertStatus,
    pub produced_at: UnixTime,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
}

impl ResponseTemplate {
    pub fn new(issuer: &Certificate, signer: &Certificate, signature_algorithm_der: &[u8]) -> Self {
        let hashes = |h: CertIdHash| (h, issuer.name_hash(h), issuer.key_hash(h));
        ResponseTemplate {
            responder_key_id: signer.key_id(),
            signer_certificate: (!signer.same_entity(issuer)).then(|| signer.der().to_vec()),
            signature_algorithm: signature_algorithm_der.to_vec(),
            issuer_hashes: [hashes(CertIdHash::Sha1), hashes(CertIdHash::Sha256)],
        }
    }

    /// The DER of ResponseData (what gets signed) for one certificate and CertID hash.
    pub fn tbs_response_data(&self, hash: CertIdHash, facts: &SingleFacts<'_>) -> Vec<u8> {
        let (_, name_hash, key_hash) = self
            .issuer_hashes
            .iter()
            .find(|(h, _, _)| *h == hash)
            .unwrap_or(&self.issuer_hashes[0]);
        let cert_id = element(
            SEQUENCE,
            &[
                &element(SEQUENCE, &[&element(OID, &[hash.oid()]), &[0x05, 0x00]]),
                &element(OCTET_STRING, &[name_hash]),
                &element(OCTET_STRING, &[key_hash]),
                &element(der::INTEGER, &[facts.serial.as_der_content()]),
            ],
        );
        let single = element(
            SEQUENCE,
            &[
                &cert_id,
                &cert_status(facts.status),
                &generalized_time(facts.this_update),
                &element(0xa0, &[&generalized_time(facts.next_update)]),
            ],
        );
        // version is DEFAULT v1 and so omitted; responderID is [2] EXPLICIT KeyHash.
        let responder_id = element(0xa2, &[&element(OCTET_STRING, &[&self.responder_key_id])]);
        element(
            SEQUENCE,
            &[
                &responder_id,
                &generalized_time(facts.produced_at),
                &element(SEQUENCE, &[&single]),
            ],
        )
    }

    /// The complete OCSPResponse around a signed ResponseData.
    pub fn assemble(&self, tbs_response_data: &[u8], signature: &[u8]) -> Vec<u8> {
        let signature_bits = element(der::BIT_STRING, &[&[0x00], signature]);
        let certs = self
            .signer_certificate
            .as_ref()
            .map(|c| element(0xa0, &[&element(SEQUENCE, &[c])]))
            .unwrap_or_default();
        let basic = element(
            SEQUENCE,
            &[
                tbs_response_data,
                &self.signature_algorithm,
                &signature_bits,
                &certs,
            ],
        );
        let response_bytes = element(
            SEQUENCE,
            &[
                &element(OID, &[oids::OCSP_BASIC]),
                &element(OCTET_STRING, &[&basic]),
            ],
        );
        element(
            SEQUENCE,
            &[
                &[0x0a, 0x01, ResponseStatus::Successful as u8],
                &element(0xa0, &[&response_bytes]),
            ],
        )
    }
}

/// CertStatus (RFC 6960 §4.2.1): good `[0] IMPLICIT NULL`, revoked `[1] IMPLICIT RevokedInfo`.
fn cert_status(status: &CertStatus) -> Vec<u8> {
    match status {
        CertStatus::Good => vec![0x80, 0x00],
        CertStatus::Revoked { at, reason, .. } => {
            let reason = reason
                .map(|r| element(0xa0, &[&[0x0a, 0x01, r.code()]]))
                .unwrap_or_default();
            element(0xa1, &[&generalized_time(*at), &reason])
        }
    }
}

/// GeneralizedTime in whole seconds (RFC 5280 §4.1.2.5.2: `YYYYMMDDHHMMSSZ`, no fraction).
pub fn generalized_time(t: UnixTime) -> Vec<u8> {
    let text = chrono::DateTime::from_timestamp(t.seconds(), 0)
        .unwrap_or_default()
        .format("%Y%m%d%H%M%SZ")
        .to_string();
    element(0x18, &[text.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RevocationReason;

    #[test]
    fn error_responses_are_the_minimal_encoding() {
        assert_eq!(
            encode_error_response(ResponseStatus::Unauthorized),
            vec![0x30, 3, 0x0a, 1, 6]
        );
        let decoded: rasn_ocsp::OcspResponse =
            rasn::der::decode(encode_error_response(ResponseStatus::TryLater)).unwrap();
        assert_eq!(decoded.status, rasn_ocsp::OcspResponseStatus::TryLater);
        assert!(decoded.bytes.is_none());
    }

    #[test]
    fn times_are_whole_seconds_generalized_time() {
        assert_eq!(
            generalized_time(UnixTime(2_524_608_000)),
            b"\x18\x0f20500101000000Z".to_vec()
        );
    }

    #[test]
    fn revoked_status_carries_reason_only_when_known() {
        let at = UnixTime(1_770_000_000);
        let with = cert_status(&CertStatus::Revoked {
            at,
            reason: Some(RevocationReason::KeyCompromise),
            invalidity: None,
        });
        let without = cert_status(&CertStatus::Revoked {
            at,
            reason: None,
            invalidity: None,
        });
        assert_eq!(with.len(), without.len() + 5);
        assert_eq!(&with[with.len() - 5..], &[0xa0, 0x03, 0x0a, 0x01, 0x01]);
        assert_eq!(without[0], 0xa1);
        assert_eq!(cert_status(&CertStatus::Good), vec![0x80, 0x00]);
    }
}
