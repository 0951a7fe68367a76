//! Decoding OCSPRequest (RFC 6960 §4.1.1) into the one CertID we look up.
//!
//! rasn's decoder is lenient (it accepts non-minimal lengths and integers), which is what
//! a responder wants from clients; lookups then use the *normalised* CertID fields, never
//! the raw request bytes. Request signatures and requestorName are accepted and ignored
//! (RFC 6960 §4.1.2 lets responders ignore them; pre-signed answers cannot depend on them).

use crate::model::Serial;
use crate::ocsp::Refusal;
use crate::oids;
use crate::pki::CertIdHash;

/// The certificate a client asks about, normalised for lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestedCertId {
    /// The hashAlgorithm both issuer hashes were made with.
    pub hash: CertIdHash,
    /// issuerNameHash: `hash` of the issuer's subject Name DER; its length matches `hash`
    /// once decoded.
    pub issuer_name_hash: Vec<u8>,
    /// issuerKeyHash: `hash` of the issuer's subjectPublicKey bits (RFC 6960 §4.1.1).
    pub issuer_key_hash: Vec<u8>,
    /// serialNumber, normalised; lookups match it together with both hashes, never alone.
    pub serial: Serial,
}

impl RequestedCertId {
    /// A view borrowing this CertID's fields, the form lookups take.
    pub fn borrowed(&self) -> CertIdRef<'_> {
        CertIdRef {
            hash: self.hash,
            issuer_name_hash: &self.issuer_name_hash,
            issuer_key_hash: &self.issuer_key_hash,
            serial: self.serial.as_der_content(),
        }
    }
}

/// The same CertID borrowed from the request's bytes: what the hot path looks up, so
/// that answering a request copies nothing out of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CertIdRef<'a> {
    /// As [`RequestedCertId::hash`].
    pub hash: CertIdHash,
    /// As [`RequestedCertId::issuer_name_hash`]: 20 bytes for SHA-1, 32 for SHA-256.
    pub issuer_name_hash: &'a [u8],
    /// As [`RequestedCertId::issuer_key_hash`], same length as the name hash.
    pub issuer_key_hash: &'a [u8],
    /// Minimal DER INTEGER content, as [`Serial::as_der_content`] holds it.
    pub serial: &'a [u8],
}

impl CertIdRef<'_> {
    /// An owned copy. A serial no certificate can have (which a decoded request never
    /// carries) is refused as `normalised` refuses it.
    pub fn owned(&self) -> Result<RequestedCertId, Refusal> {
        Ok(RequestedCertId {
            hash: self.hash,
            issuer_name_hash: self.issuer_name_hash.to_vec(),
            issuer_key_hash: self.issuer_key_hash.to_vec(),
            serial: Serial::from_der_content(self.serial).ok_or(Refusal::UnassignedSerial)?,
        })
    }
}

impl<'a> From<&'a RequestedCertId> for CertIdRef<'a> {
    fn from(id: &'a RequestedCertId) -> Self {
        id.borrowed()
    }
}

/// A decoded OCSPRequest, reduced to what a pre-signed answer can depend on: the one
/// CertID asked about and whether a nonce was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcspRequest {
    /// The single certificate asked about (RFC 5019 §2.1.1 allows exactly one).
    pub cert_id: RequestedCertId,
    /// Whether the request carried a nonce extension (RFC 9654).
    pub has_nonce: bool,
}

impl OcspRequest {
    /// A view borrowing this request, the form [`with_request`] hands out.
    pub fn borrowed(&self) -> BorrowedRequest<'_> {
        BorrowedRequest {
            cert_id: self.cert_id.borrowed(),
            has_nonce: self.has_nonce,
        }
    }
}

/// A decoded request borrowing from its bytes (see [`with_request`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BorrowedRequest<'a> {
    /// As [`OcspRequest::cert_id`], borrowed from the request bytes.
    pub cert_id: CertIdRef<'a>,
    /// As [`OcspRequest::has_nonce`].
    pub has_nonce: bool,
}

impl BorrowedRequest<'_> {
    /// An owned copy, to keep after the request bytes are gone; refuses as
    /// [`CertIdRef::owned`] does.
    pub fn owned(&self) -> Result<OcspRequest, Refusal> {
        Ok(OcspRequest {
            cert_id: self.cert_id.owned()?,
            has_nonce: self.has_nonce,
        })
    }
}

/// Decodes a DER OCSPRequest carrying exactly one Request. Every failure is a
/// [`Refusal`] ready for [`Refusal::response_status`]: `Malformed`, `NotOneRequest`,
/// `UnsupportedHash`, or `UnassignedSerial` for a serial no certificate can have.
pub fn decode_request(der: &[u8]) -> Result<OcspRequest, Refusal> {
    with_request(der, |request| request.owned())
}

/// Decodes a DER OCSPRequest carrying exactly one Request and hands it to `use_request`
/// without copying it: the serving path's decoder.
pub fn with_request<T>(
    der: &[u8],
    use_request: impl FnOnce(BorrowedRequest<'_>) -> Result<T, Refusal>,
) -> Result<T, Refusal> {
    if der.is_empty() {
        return Err(Refusal::Malformed("empty request"));
    }
    // The fast path reads well-formed requests in place, without allocating; rasn stays
    // the authority for everything else, so what is accepted does not change.
    match decode_in_place(der) {
        Ok(request) => use_request(request),
        Err(Refusal::Malformed(_)) => use_request(decode_with_rasn(der)?.borrowed()),
        Err(refusal) => Err(refusal),
    }
}

/// Walks OCSPRequest with the crate's bounds-checked DER reader. Parts a pre-signed answer
/// ignores (requestorName, the request signature, per-request extensions) are skipped, not
/// validated. Any structural surprise is `Malformed`, which sends the request to rasn.
pub(crate) fn decode_in_place(der: &[u8]) -> Result<BorrowedRequest<'_>, Refusal> {
    use crate::der::{enter, Reader, INTEGER, OCTET_STRING, OID, SEQUENCE};
    let malformed = |_| Refusal::Malformed("not a DER OCSPRequest");
    let mut request = enter(der, SEQUENCE).map_err(malformed)?;
    let tbs = request.expect(SEQUENCE).map_err(malformed)?;
    request.optional(0xa0).map_err(malformed)?; // optionalSignature, ignored (RFC 6960 §4.1.2)
    request.finish().map_err(malformed)?;

    let mut fields = Reader::new(tbs.content);
    fields.optional(0xa0).map_err(malformed)?; // version
    fields.optional(0xa1).map_err(malformed)?; // requestorName
    let list = fields.expect(SEQUENCE).map_err(malformed)?;
    let has_nonce = match fields.optional(0xa2).map_err(malformed)? {
        Some(extensions) => carries_nonce(extensions.content).map_err(malformed)?,
        None => false,
    };
    fields.finish().map_err(malformed)?;

    let mut requests = Reader::new(list.content);
    let single = requests.expect(SEQUENCE).map_err(|_| Refusal::NotOneRequest)?;
    if !requests.is_empty() {
        return Err(Refusal::NotOneRequest);
    }
    let mut single = Reader::new(single.content);
    let cert_id = single.expect(SEQUENCE).map_err(malformed)?;
    single.optional(0xa0).map_err(malformed)?; // singleRequestExtensions
    single.finish().map_err(malformed)?;

    let mut id = Reader::new(cert_id.content);
    let algorithm = id.expect(SEQUENCE).map_err(malformed)?;
    let mut algorithm = Reader::new(algorithm.content);
    let oid = algorithm.expect(OID).map_err(malformed)?.content;
    if !algorithm.is_empty() {
        algorithm.next_element().map_err(malformed)?; // parameters: NULL, or anything
    }
    algorithm.finish().map_err(malformed)?;
    let issuer_name_hash = id.expect(OCTET_STRING).map_err(malformed)?.content;
    let issuer_key_hash = id.expect(OCTET_STRING).map_err(malformed)?.content;
    let serial = id.expect(INTEGER).map_err(malformed)?.content;
    id.finish().map_err(malformed)?;
    if serial.is_empty() {
        return Err(Refusal::Malformed("empty serial"));
    }
    Ok(BorrowedRequest {
        cert_id: normalised(oid, issuer_name_hash, issuer_key_hash, serial)?,
        has_nonce,
    })
}

/// Whether a `[2] EXPLICIT Extensions` content lists the nonce extension.
fn carries_nonce(wrapper: &[u8]) -> Result<bool, crate::der::DerError> {
    use crate::der::{enter, Reader, OCTET_STRING, OID, SEQUENCE};
    let mut extensions = enter(wrapper, SEQUENCE)?;
    let mut nonce = false;
    while !extensions.is_empty() {
        let mut extension = Reader::new(extensions.expect(SEQUENCE)?.content);
        nonce |= extension.expect(OID)?.content == oids::OCSP_NONCE;
        extension.optional(0x01)?; // critical
        extension.expect(OCTET_STRING)?;
        extension.finish()?;
    }
    Ok(nonce)
}

/// The same decision through rasn's typed decoder.
pub(crate) fn decode_with_rasn(der: &[u8]) -> Result<OcspRequest, Refusal> {
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
            arcs.iter()
                .map(|&arc| u64::from(arc))
                .eq(crate::der::oid_arcs(oids::OCSP_NONCE))
        });
    Ok(OcspRequest {
        cert_id: normalise(single.req_cert)?,
        has_nonce,
    })
}

fn normalise(id: rasn_ocsp::CertId) -> Result<RequestedCertId, Refusal> {
    let arcs: Vec<u64> = id
        .hash_algorithm
        .algorithm
        .iter()
        .map(|&arc| u64::from(arc))
        .collect();
    let serial = rasn::der::encode(&id.serial_number).map_err(|_| Refusal::Malformed("bad serial"))?;
    let serial = crate::der::enter(&serial, crate::der::INTEGER)
        .map_err(|_| Refusal::Malformed("bad serial"))?
        .remaining();
    normalised(
        &crate::der::oid_content(&arcs),
        &id.issuer_name_hash,
        &id.issuer_key_hash,
        serial,
    )
    .and_then(|id| id.owned())
}

/// The CertID as we look it up: a supported hash with hashes of its length, and the serial
/// as minimal DER INTEGER content.
fn normalised<'a>(
    hash_oid: &[u8],
    issuer_name_hash: &'a [u8],
    issuer_key_hash: &'a [u8],
    serial: &'a [u8],
) -> Result<CertIdRef<'a>, Refusal> {
    let hash = CertIdHash::from_oid(hash_oid).ok_or(Refusal::UnsupportedHash)?;
    let expected_len = match hash {
        CertIdHash::Sha1 => 20,
        CertIdHash::Sha256 => 32,
    };
    if issuer_name_hash.len() != expected_len || issuer_key_hash.len() != expected_len {
        return Err(Refusal::Malformed(
            "CertID hash length does not match its algorithm",
        ));
    }
    Ok(CertIdRef {
        hash,
        issuer_name_hash,
        issuer_key_hash,
        // A serial of an impossible shape (negative, over 23 octets) cannot be ours.
        serial: Serial::minimal_der_content(serial).ok_or(Refusal::UnassignedSerial)?,
    })
}

/// Encodes a request for one CertID (for tests, benches, the load generator and the cache
/// tier asking its hubs): unsigned, SHA-1 or SHA-256 as `cert_id` says, with a nonce
/// extension carrying `nonce` when given.
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
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec");
        let issuer =
            crate::pki::Certificate::from_pem(&std::fs::read_to_string(demo.join("ca.pem")).unwrap())
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

    /// On everything rasn accepts, the decoder must answer exactly as rasn does, and nothing
    /// may panic, on real requests and on many mutations of them. (The in-place path does
    /// not validate what it skips — requestor name, signature, per-request extensions — so
    /// it may accept a request rasn rejects for a malformed part the answer ignores.)
    #[test]
    fn the_fast_path_agrees_with_rasn() {
        let mut seeds = Vec::new();
        for hash in CertIdHash::ALL {
            seeds.push(encode_request(&sample(hash), None));
            seeds.push(encode_request(&sample(hash), Some(&[5; 20])));
        }
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let mut checked = 0;
        for seed in &seeds {
            assert_eq!(
                decode_in_place(seed).and_then(|r| r.owned()),
                decode_with_rasn(seed)
            );
            for _ in 0..3000 {
                let mut mutated = seed.clone();
                let at = (next() as usize) % mutated.len();
                match next() % 3 {
                    0 => mutated[at] ^= 1 << (next() % 8),
                    1 => mutated.truncate(at),
                    _ => mutated[at] = next() as u8,
                }
                let reference = decode_with_rasn(&mutated);
                let fast = decode_in_place(&mutated).and_then(|r| r.owned());
                if fast.is_ok() && reference.is_ok() {
                    assert_eq!(fast, reference, "{mutated:02x?}");
                }
                if reference.is_ok() {
                    // rasn is more lenient (e.g. constructed-bit OIDs); the fallback covers it.
                    assert_eq!(decode_request(&mutated), reference, "{mutated:02x?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 100, "too few accepted mutations to compare: {checked}");
    }

    #[test]
    fn borrowed_cert_ids_copy_out_or_refuse_impossible_serials() {
        let id = sample(CertIdHash::Sha1);
        assert_eq!(id.borrowed().owned(), Ok(id.clone()));
        let negative = CertIdRef {
            serial: &[0x80, 0x01],
            ..id.borrowed()
        };
        assert_eq!(negative.owned(), Err(Refusal::UnassignedSerial));
    }
}
