//! A tiny, strict DER walker that goes from an OCSPResponse to its first
//! SingleResponse (RFC 6960 §4.2.1) — enough to check every response of a load test
//! cheaply (a few hundred nanoseconds) without a full ASN.1 decoder.
//!
//! ```text
//! OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT SEQUENCE {
//!     responseType OID (id-pkix-ocsp-basic), response OCTET STRING (BasicOCSPResponse) } }
//! BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm,
//!     signature BIT STRING, certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
//! ResponseData ::= SEQUENCE { version [0] OPTIONAL, responderID [1] | [2], producedAt,
//!     responses SEQUENCE OF SingleResponse, responseExtensions [1] OPTIONAL }
//! SingleResponse ::= SEQUENCE { certID, certStatus, thisUpdate, nextUpdate [0] OPTIONAL, ... }
//! CertID ::= SEQUENCE { hashAlgorithm, issuerNameHash OCTET STRING,
//!     issuerKeyHash OCTET STRING, serialNumber INTEGER }
//! ```

const SEQUENCE: u8 = 0x30;
const ENUMERATED: u8 = 0x0a;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const GENERALIZED_TIME: u8 = 0x18;

/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1 (content octets).
pub const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// certStatus tags: good `[0] IMPLICIT NULL`, revoked `[1] IMPLICIT RevokedInfo`,
/// unknown `[2] IMPLICIT NULL`.
pub const STATUS_GOOD: u8 = 0x80;
pub const STATUS_REVOKED: u8 = 0xa1;
pub const STATUS_UNKNOWN: u8 = 0x82;
/// Not a certStatus tag: an [`Expectation`] with it accepts `good` or `revoked` (for a
/// certificate whose status changes between the snapshots served during a run).
pub const STATUS_GOOD_OR_REVOKED: u8 = 0x00;

/// What a successful response says about its first certificate.
#[derive(Debug, PartialEq, Eq)]
pub struct SingleView<'a> {
    /// Content octets of the CertID's hashAlgorithm OID.
    pub hash_oid: &'a [u8],
    pub issuer_name_hash: &'a [u8],
    pub issuer_key_hash: &'a [u8],
    /// Content octets of the serialNumber INTEGER.
    pub serial: &'a [u8],
    /// The certStatus tag byte (`STATUS_GOOD`, `STATUS_REVOKED`, `STATUS_UNKNOWN`).
    pub status_tag: u8,
}

/// Why a response body is not a successful OCSP response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not DER at the given structure.
    Der(&'static str),
    /// A well-formed error response (`malformedRequest` = 1, `tryLater` = 3, `unauthorized` = 6...).
    Status(u8),
}

/// One DER element: tag and content.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads one element from the front of `input`; strict DER lengths (definite, minimal).
fn read_tlv<'a>(input: &mut &'a [u8], what: &'static str) -> Result<Tlv<'a>, Malformed> {
    let bad = Malformed::Der(what);
    let bytes = *input;
    let (&tag, rest) = bytes.split_first().ok_or(bad)?;
    if tag & 0x1f == 0x1f {
        return Err(bad); // high tag numbers never occur in OCSP
    }
    let (&first, rest) = rest.split_first().ok_or(bad)?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return Err(bad); // indefinite or absurd
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        if rest[0] == 0 || len < 0x80 {
            return Err(bad); // non-minimal length: not DER
        }
        (len, &rest[count..])
    };
    if rest.len() < len {
        return Err(bad);
    }
    *input = &rest[len..];
    Ok(Tlv {
        tag,
        content: &rest[..len],
    })
}

fn expect<'a>(input: &mut &'a [u8], tag: u8, what: &'static str) -> Result<&'a [u8], Malformed> {
    let tlv = read_tlv(input, what)?;
    if tlv.tag != tag {
        return Err(Malformed::Der(what));
    }
    Ok(tlv.content)
}

/// Reads `body` as a whole OCSPResponse (no trailing bytes) and returns its first
/// SingleResponse, or why it cannot.
pub fn first_single(body: &[u8]) -> Result<SingleView<'_>, Malformed> {
    let mut outer = body;
    let mut response = expect(&mut outer, SEQUENCE, "OCSPResponse")?;
    if !outer.is_empty() {
        return Err(Malformed::Der("trailing bytes after OCSPResponse"));
    }
    let status = expect(&mut response, ENUMERATED, "responseStatus")?;
    match status {
        [0] => {}
        [code] => return Err(Malformed::Status(*code)),
        _ => return Err(Malformed::Der("responseStatus")),
    }
    let mut explicit = expect(&mut response, 0xa0, "responseBytes")?;
    let mut response_bytes = expect(&mut explicit, SEQUENCE, "ResponseBytes")?;
    if expect(&mut response_bytes, OID, "responseType")? != OCSP_BASIC {
        return Err(Malformed::Der("responseType is not id-pkix-ocsp-basic"));
    }
    let mut octets = expect(&mut response_bytes, OCTET_STRING, "response")?;
    let mut basic = expect(&mut octets, SEQUENCE, "BasicOCSPResponse")?;
    let mut tbs = expect(&mut basic, SEQUENCE, "ResponseData")?;
    expect(&mut basic, SEQUENCE, "signatureAlgorithm")?;
    expect(&mut basic, BIT_STRING, "signature")?;

    let mut element = read_tlv(&mut tbs, "ResponseData")?;
    if element.tag == 0xa0 {
        element = read_tlv(&mut tbs, "responderID")?; // skip version
    }
    if element.tag != 0xa1 && element.tag != 0xa2 {
        return Err(Malformed::Der("responderID"));
    }
    expect(&mut tbs, GENERALIZED_TIME, "producedAt")?;
    let mut responses = expect(&mut tbs, SEQUENCE, "responses")?;
    let mut single = expect(&mut responses, SEQUENCE, "SingleResponse")?;
    let mut cert_id = expect(&mut single, SEQUENCE, "CertID")?;
    let mut algorithm = expect(&mut cert_id, SEQUENCE, "hashAlgorithm")?;
    let hash_oid = expect(&mut algorithm, OID, "hashAlgorithm OID")?;
    let issuer_name_hash = expect(&mut cert_id, OCTET_STRING, "issuerNameHash")?;
    let issuer_key_hash = expect(&mut cert_id, OCTET_STRING, "issuerKeyHash")?;
    let serial = expect(&mut cert_id, INTEGER, "serialNumber")?;
    let status = read_tlv(&mut single, "certStatus")?;
    if !matches!(status.tag, STATUS_GOOD | STATUS_REVOKED | STATUS_UNKNOWN) {
        return Err(Malformed::Der("certStatus"));
    }
    expect(&mut single, GENERALIZED_TIME, "thisUpdate")?;
    Ok(SingleView {
        hash_oid,
        issuer_name_hash,
        issuer_key_hash,
        serial,
        status_tag: status.tag,
    })
}

/// What a response to one request must say.
#[derive(Clone, Debug)]
pub struct Expectation {
    pub hash_oid: Vec<u8>,
    pub issuer_name_hash: Vec<u8>,
    pub issuer_key_hash: Vec<u8>,
    pub serial: Vec<u8>,
    /// The certStatus tag the answer must carry, or [`STATUS_GOOD_OR_REVOKED`].
    pub status_tag: u8,
}

/// The ways a response can fail its check, each counted separately in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckFailure {
    NotOcsp,
    OcspErrorStatus,
    WrongCertId,
    WrongStatus,
}

impl CheckFailure {
    pub fn label(self) -> &'static str {
        match self {
            CheckFailure::NotOcsp => "not_ocsp",
            CheckFailure::OcspErrorStatus => "ocsp_error_status",
            CheckFailure::WrongCertId => "wrong_cert_id",
            CheckFailure::WrongStatus => "wrong_status",
        }
    }
}

impl Expectation {
    /// Checks a response body: successful, answering the whole CertID that was asked
    /// (hash algorithm, issuer hashes, serial), with the expected certStatus.
    pub fn check(&self, body: &[u8]) -> Result<(), CheckFailure> {
        let single = first_single(body).map_err(|e| match e {
            Malformed::Der(_) => CheckFailure::NotOcsp,
            Malformed::Status(_) => CheckFailure::OcspErrorStatus,
        })?;
        if single.serial != self.serial.as_slice()
            || single.hash_oid != self.hash_oid.as_slice()
            || single.issuer_name_hash != self.issuer_name_hash.as_slice()
            || single.issuer_key_hash != self.issuer_key_hash.as_slice()
        {
            return Err(CheckFailure::WrongCertId);
        }
        let status_ok = match self.status_tag {
            STATUS_GOOD_OR_REVOKED => matches!(single.status_tag, STATUS_GOOD | STATUS_REVOKED),
            expected => single.status_tag == expected,
        };
        if !status_ok {
            return Err(CheckFailure::WrongStatus);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_and_garbage_are_refused() {
        assert_eq!(
            first_single(&[0x30, 0x03, 0x0a, 0x01, 0x06]),
            Err(Malformed::Status(6))
        );
        assert!(matches!(first_single(b"hello"), Err(Malformed::Der(_))));
        assert!(matches!(first_single(&[]), Err(Malformed::Der(_))));
        // Non-minimal length.
        assert!(matches!(
            first_single(&[0x30, 0x81, 0x03, 0x0a, 0x01, 0x00]),
            Err(Malformed::Der(_))
        ));
        // Trailing bytes.
        assert!(matches!(
            first_single(&[0x30, 0x03, 0x0a, 0x01, 0x06, 0x00]),
            Err(Malformed::Der(_))
        ));
    }
}
