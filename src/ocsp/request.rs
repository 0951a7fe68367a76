//! Decoding OCSPRequest (RFC 6960 §4.1.1) into the one CertID we look up.
//!
//! rasn's decoder is lenient (it accepts non-minimal lengths and integers), which is what
//! a responder wants from clients; lookups then use the *normalised* CertID fields, never
//! the raw request bytes. Request signatures and requestorName are accepted and ignored
//! (RFC 6960 §4.1.2 lets responders ignore them; pre-signed answers cannot depend on them).

use crate::model::Serial;
use crate::ocsp::Refusal;
use crate::oids;
use crate::pki::cert::CertIdHash;
use rasn::types::Integer;

/// The certificate a client asks about, normalised for lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedCertId {
    pub hash: CertIdHash,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    pub serial: Serial,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    pub cert_id: RequestedCertId,
    /// Whether the request carried a nonce extension (RFC 9654).
    pub has_nonce: bool,
}

/// Decodes a DER OCSPRequest carrying exactly one Request.
pub fn decode_request(der: &[u8]) -> Result<OcspRequest, Refusal> {
    if der.is_empty() {
        return Err(Refusal::Malformed("empty request"));
    }
    let request: rasn_ocsp::OcspRequest =
        rasn::der::decode(der).map_err(|_| Refusal::Malformed("not a DER OCSPRequest"))?;
    let tbs = request.tbs_request;
    let [single] =
        <[rasn_ocsp::Request; 1]>::try_from(tbs.request_list).map_err(|_| Refusal::NotOneRequest)?;
    let has_nonce = tbs
        .request_extensions
        .iter()
        .flat_map(|extensions| extensions.iter())
        .any(|e| {
            let arcs: &[u32] = &e.extn_id;
            arcs == oid_arcs(oids::OCSP_NONCE).as_slice()
        });
    Ok(OcspRequest {
        cert_id: normalise(single.req_cert)?,
        has_nonce,
    })
}

fn normalise(id: rasn_ocsp::CertId) -> Result<RequestedCertId, Refusal> {
    let arcs: &[u32] = &id.hash_algorithm.algorithm;
    let hash = CertIdHash::ALL
        .into_iter()
        .find(|h| oid_arcs(h.oid()) == arcs)
        .ok_or(Refusal::UnsupportedHash)?;
    let expected_len = match hash {
        CertIdHash::Sha1 => 20,
        CertIdHash::Sha256 => 32,
    };
    if id.issuer_name_hash.len() != expected_len || id.issuer_key_hash.len() != expected_len {
        return Err(Refusal::Malformed(
            "CertID hash length does not match its algorithm",
        ));
    }
    Ok(RequestedCertId {
        hash,
        issuer_name_hash: id.issuer_name_hash.to_vec(),
        issuer_key_hash: id.issuer_key_hash.to_vec(),
        serial: serial_of(&id.serial_number)?,
    })
}

fn serial_of(integer: &Integer) -> Result<Serial, Refusal> {
    let encoded = rasn::der::encode(integer).map_err(|_| Refusal::Malformed("bad serial"))?;
    let content = crate::der::enter(&encoded, crate::der::INTEGER)
        .map_err(|_| Refusal::Malformed("bad serial"))?
        .remaining();
    // An unknown serial of an impossible shape (negative, > 23 octets) cannot be ours.
    Serial::from_der_content(content).ok_or(Refusal::UnassignedSerial)
}

/// The arcs of an OID given as content octets (for comparing with rasn's decoded OIDs).
fn oid_arcs(content: &[u8]) -> Vec<u32> {
    let mut arcs = Vec::new();
    let mut value: u32 = 0;
    for &byte in content {
        value = (value << 7) | u32::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs
}

/// Encodes a request for one CertID (for tests, benches and the load generator).
pub fn encode_request(cert_id: &RequestedCertId, nonce: Option<&[u8]>) -> Vec<u8> {
    use crate::der::{element, OCTET_STRING, OID, SEQUENCE};
    let algorithm = element(SEQUENCE, &[&element(OID, &[cert_id.hash.oid()]), &[0x05, 0x00]]);
    let serial = element(crate::der::INTEGER, &[cert_id.serial.as_der_content()]);
    let cert_id_der = element(
        SEQUENCE,
        &[
            &algorithm,
            &element(OCTET_STRING, &[&cert_id.issuer_name_hash]),
            &element(OCTET_STRING, &[&cert_id.issuer_key_hash]),
            &serial,
        ],
    );
    let request_list = element(SEQUENCE, &[&element(SEQUENCE, &[&cert_id_der])]);
    let extensions = nonce.map(|n| {
        let value = element(OCTET_STRING, &[n]);
        let ext = element(
            SEQUENCE,
            &[
                &element(OID, &[oids::OCSP_NONCE]),
                &element(OCTET_STRING, &[&value]),
            ],
        );
        element(0xa2, &[&element(SEQUENCE, &[&ext])])
    });
    let tbs = element(SEQUENCE, &[&request_list, extensions.as_deref().unwrap_or(&[])]);
    element(SEQUENCE, &[&tbs])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(hash: CertIdHash) -> RequestedCertId {
        let len = if hash == CertIdHash::Sha1 { 20 } else { 32 };
        RequestedCertId {
            hash,
            issuer_name_hash: vec![1; len],
            issuer_key_hash: vec![2; len],
            serial: Serial::from_hex("00C0FFEE").unwrap(),
        }
    }

    #[test]
    fn round_trips_both_hashes_with_and_without_nonce() {
        for hash in CertIdHash::ALL {
            let id = sample(hash);
            let plain = decode_request(&encode_request(&id, None)).unwrap();
            assert_eq!(plain.cert_id, id);
            assert!(!plain.has_nonce);
            let with_nonce = decode_request(&encode_request(&id, Some(&[9; 16]))).unwrap();
            assert!(with_nonce.has_nonce);
        }
    }

    #[test]
    fn decodes_requests_written_by_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/ec");
        let issuer =
            crate::pki::cert::Certificate::from_pem(&std::fs::read_to_string(demo.join("ca.pem")).unwrap())
                .unwrap();
        for (flag, hash) in [("-sha1", CertIdHash::Sha1), ("-sha256", CertIdHash::Sha256)] {
            let out = dir.path().join(format!("req{flag}.der"));
            let status = std::process::Command::new("openssl")
                .args(["ocsp", "-issuer"])
                .arg(demo.join("ca.pem"))
                .arg(flag)
                .args(["-serial", "0x0123456789ABCDEF", "-reqout"])
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success());
            let request = decode_request(&std::fs::read(&out).unwrap()).unwrap();
            assert_eq!(request.cert_id.hash, hash);
            assert_eq!(request.cert_id.serial.to_hex(), "0123456789ABCDEF");
            assert_eq!(request.cert_id.issuer_name_hash, issuer.name_hash(hash));
            assert_eq!(request.cert_id.issuer_key_hash, issuer.key_hash(hash));
            assert!(request.has_nonce, "openssl adds a nonce by default");
        }
    }

    #[test]
    fn refuses_garbage_and_multiple_requests() {
        assert_eq!(decode_request(&[]), Err(Refusal::Malformed("empty request")));
        assert!(matches!(
            decode_request(b"hello world"),
            Err(Refusal::Malformed(_))
        ));
        let one = encode_request(&sample(CertIdHash::Sha256), None);
        for cut in 1..one.len() {
            assert!(decode_request(&one[..cut]).is_err(), "truncated at {cut}");
        }
        // Two Requests in the list.
        use crate::der::{element, enter, SEQUENCE};
        let mut tbs = enter(&one, SEQUENCE).unwrap();
        let tbs = tbs.next_element().unwrap();
        let list = enter(tbs.content, SEQUENCE).unwrap().remaining();
        let single = crate::der::Reader::new(list).next_element().unwrap().raw;
        let two = element(
            SEQUENCE,
            &[&element(SEQUENCE, &[&element(SEQUENCE, &[single, single])])],
        );
        assert_eq!(decode_request(&two), Err(Refusal::NotOneRequest));
        let none = element(SEQUENCE, &[&element(SEQUENCE, &[&element(SEQUENCE, &[])])]);
        assert_eq!(decode_request(&none), Err(Refusal::NotOneRequest));
    }

    #[test]
    fn refuses_unsupported_hash_and_wrong_hash_length() {
        let mut id = sample(CertIdHash::Sha256);
        id.issuer_key_hash = vec![2; 20];
        assert!(matches!(
            decode_request(&encode_request(&id, None)),
            Err(Refusal::Malformed(_))
        ));
        // SHA-384 CertID: rewrite the OID in an encoded request.
        let good = encode_request(&sample(CertIdHash::Sha256), None);
        let position = good
            .windows(oids::SHA256.len())
            .position(|w| w == oids::SHA256)
            .unwrap();
        let mut sha384 = good.clone();
        sha384[position + oids::SHA256.len() - 1] = 0x02;
        assert_eq!(decode_request(&sha384), Err(Refusal::UnsupportedHash));
    }

    #[test]
    fn oid_arcs_decode() {
        assert_eq!(oid_arcs(oids::OCSP_NONCE), vec![1, 3, 6, 1, 5, 5, 7, 48, 1, 2]);
        assert_eq!(oid_arcs(oids::SHA256), vec![2, 16, 840, 1, 101, 3, 4, 2, 1]);
    }
}
