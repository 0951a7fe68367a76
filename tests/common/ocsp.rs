//! OCSP bytes as the server sends them, and encodings a client uses.

use super::*;

/// The malformedRequest error response, as the server sends it.
pub const MALFORMED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x01];

pub const UNAUTHORIZED: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x06];

pub const TRY_LATER: &[u8] = &[0x30, 0x03, 0x0a, 0x01, 0x03];

/// The OCSPResponseStatus of a DER OCSPResponse (0 = successful), parsing only the outer
/// SEQUENCE header and the ENUMERATED that follows it.
pub fn ocsp_response_status(body: &[u8]) -> Option<u8> {
    if body.first() != Some(&0x30) {
        return None;
    }
    let first = *body.get(1)?;
    let (len, header) = if first < 0x80 {
        (first as usize, 2)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = body.get(2..2 + n)?;
        (bytes.iter().fold(0usize, |acc, b| acc << 8 | *b as usize), 2 + n)
    };
    if body.len() != header + len {
        return None;
    }
    match body.get(header..header + 3)? {
        [0x0a, 0x01, status] => Some(*status),
        _ => None,
    }
}

pub fn is_successful(body: &[u8]) -> bool {
    ocsp_response_status(body) == Some(0)
}

/// Hex SHA-256 (lower case).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Base64 of `der`, percent-encoded for a URL path (`/`, `+`, `=` escaped).
pub fn get_path(prefix: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let encoded = percent_encoding::utf8_percent_encode(&b64, percent_encoding::NON_ALPHANUMERIC);
    format!("{prefix}{encoded}")
}

/// The BasicOCSPResponse inside a successful DER OCSPResponse, decoded with rasn-ocsp;
/// a test failure when it is anything else.
pub fn basic_ocsp_response(body: &[u8]) -> rasn_ocsp::BasicOcspResponse {
    let response: rasn_ocsp::OcspResponse =
        rasn::der::decode(body).unwrap_or_else(|e| panic!("not a DER OCSPResponse: {e}"));
    let bytes = response
        .bytes
        .expect("a successful response carries responseBytes");
    rasn::der::decode(&bytes.response).unwrap_or_else(|e| panic!("not a BasicOCSPResponse: {e}"))
}

/// How many certificates a successful DER OCSPResponse embeds (its `certs`).
pub fn ocsp_embedded_certificates(body: &[u8]) -> usize {
    basic_ocsp_response(body).certs.map_or(0, |certs| certs.len())
}

/// The certStatus (`good`, `revoked` or `unknown`) of each SingleResponse in a successful
/// DER OCSPResponse, decoded with rasn-ocsp; a test failure when it is anything else.
pub fn ocsp_cert_statuses(body: &[u8]) -> Vec<&'static str> {
    basic_ocsp_response(body)
        .tbs_response_data
        .responses
        .iter()
        .map(|single| match single.cert_status {
            rasn_ocsp::CertStatus::Good => "good",
            rasn_ocsp::CertStatus::Revoked(_) => "revoked",
            rasn_ocsp::CertStatus::Unknown(_) => "unknown",
        })
        .collect()
}
