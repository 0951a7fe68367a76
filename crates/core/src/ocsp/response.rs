//! Encoding OCSP responses (RFC 6960 §4.2.1).
//!
//! Two kinds: the unsigned error responses (a status and nothing else, encoded once at
//! start-up) and the signed BasicOCSPResponse the publisher pre-signs for each CertID.
//! Signing itself is done by the caller's key; this module only lays out bytes.

use crate::der::{self, element, OCTET_STRING, OID, SEQUENCE};
use crate::model::CertStatus;
use crate::oids;
use crate::pki::{CertIdHash, Certificate};
use crate::time::UnixTime;

/// OCSPResponseStatus (RFC 6960 §4.2.1). Value 4 is unused by the standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ResponseStatus {
    /// responseBytes follow: the only status with a signed body.
    Successful = 0,
    /// The request is not valid OCSP syntax (and, here, not exactly one CertID).
    MalformedRequest = 1,
    /// The responder is in an inconsistent state; clients try another responder.
    InternalError = 2,
    /// The responder cannot answer now (nothing fresh to serve); clients retry later.
    TryLater = 3,
    /// The client must sign its request. Never sent by ocsp-edge, which ignores
    /// request signatures; listed so every defined value decodes.
    SigRequired = 5,
    /// Not authorised to answer for this certificate; RFC 5019 §2.2.3 uses it for "no
    /// record", which is how unknown issuers and serials are refused.
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

/// Everything that is the same in every response one signer produces for one issuer,
/// pre-encoded, so that a response is its per-certificate facts and a signature laid
/// into these pieces. The publisher signs the ResponseData this template encodes; a
/// responder rebuilds the identical bytes around the stored signature.
#[derive(Clone, Debug)]
pub struct ResponseTemplate {
    /// `[2] EXPLICIT KeyHash` (responderID byKey).
    responder_id: Vec<u8>,
    /// The AlgorithmIdentifier of the signature.
    signature_algorithm: Vec<u8>,
    /// The whole `certs [0] EXPLICIT SEQUENCE OF Certificate` field with the delegated
    /// signer's certificate, or empty when the issuer signs for itself (Go's x/crypto/ocsp
    /// rejects a CA-signed response that embeds the CA).
    certs: Vec<u8>,
    /// Per CertID hash (SHA-1, SHA-256): the CertID content before the serial
    /// (hashAlgorithm, issuerNameHash, issuerKeyHash).
    cert_id_prefix: [Vec<u8>; 2],
    /// Per CertID hash: 8 bytes identifying everything above, the first half of ETags.
    etag_prefix: [[u8; 8]; 2],
}

/// The per-certificate facts of one response.
#[derive(Clone, Copy, Debug)]
pub struct SingleFacts<'a> {
    /// The serial's DER INTEGER content octets.
    pub serial: &'a [u8],
    /// certStatus: `good`, or `revoked` with revocationTime and the reason if one is
    /// recorded (invalidityDate is a CRL matter and is not encoded here).
    pub status: &'a CertStatus,
    /// producedAt: when the publisher signed the response.
    pub produced_at: UnixTime,
    /// thisUpdate: the time the status is known to be correct at (RFC 6960 §4.2.2.1).
    pub this_update: UnixTime,
    /// nextUpdate: the response must not be served at or after it. Always present,
    /// as RFC 5019 §2.2.4 requires of pre-produced responses.
    pub next_update: UnixTime,
}

/// Bytes of one GeneralizedTime element (`YYYYMMDDHHMMSSZ`).
const TIME_LEN: usize = 17;
/// `OBJECT IDENTIFIER id-pkix-ocsp-basic`, whole element.
const BASIC_OID_LEN: usize = 2 + oids::OCSP_BASIC.len();
/// Bytes of the ETag's signature half.
const ETAG_SIGNATURE_BYTES: usize = 16;
/// Bytes of an ETag before hex encoding: 8 bytes naming the template and CertID hash,
/// then the last 16 bytes of the signature.
pub const ETAG_LEN: usize = 8 + ETAG_SIGNATURE_BYTES;

fn hash_index(hash: CertIdHash) -> usize {
    match hash {
        CertIdHash::Sha1 => 0,
        CertIdHash::Sha256 => 1,
    }
}

impl ResponseTemplate {
    /// The template for responses about `issuer`'s certificates signed by `signer`'s key
    /// with `signature_algorithm_der`. The signer's certificate is embedded unless it is
    /// the issuer itself.
    pub fn new(issuer: &Certificate, signer: &Certificate, signature_algorithm_der: &[u8]) -> Self {
        let embedded = (!signer.same_entity(issuer)).then(|| signer.der());
        Self::from_parts(issuer, &signer.key_id(), signature_algorithm_der, embedded)
    }

    /// The template from its parts, as a snapshot stores them.
    pub(crate) fn from_parts(
        issuer: &Certificate,
        responder_key_id: &[u8],
        signature_algorithm_der: &[u8],
        embedded_signer: Option<&[u8]>,
    ) -> Self {
        let responder_id = element(0xa2, &[&element(OCTET_STRING, &[responder_key_id])]);
        let certs = embedded_signer
            .map(|c| element(0xa0, &[&element(SEQUENCE, &[c])]))
            .unwrap_or_default();
        let prefix = |hash: CertIdHash| {
            let mut prefix = element(SEQUENCE, &[&element(OID, &[hash.oid()]), &[0x05, 0x00]]);
            prefix.extend(element(OCTET_STRING, &[&issuer.name_hash(hash)]));
            prefix.extend(element(OCTET_STRING, &[&issuer.key_hash(hash)]));
            prefix
        };
        let cert_id_prefix = [prefix(CertIdHash::Sha1), prefix(CertIdHash::Sha256)];
        let etag_prefix = |prefix: &[u8]| {
            let mut context = ring::digest::Context::new(&ring::digest::SHA256);
            for part in [&responder_id[..], signature_algorithm_der, &certs, prefix] {
                context.update(&(part.len() as u64).to_be_bytes());
                context.update(part);
            }
            let mut tag = [0u8; 8];
            tag.copy_from_slice(&context.finish().as_ref()[..8]);
            tag
        };
        ResponseTemplate {
            etag_prefix: [etag_prefix(&cert_id_prefix[0]), etag_prefix(&cert_id_prefix[1])],
            responder_id,
            signature_algorithm: signature_algorithm_der.to_vec(),
            certs,
            cert_id_prefix,
        }
    }

    /// Whether responses embed the signer's certificate.
    pub fn embeds_signer(&self) -> bool {
        !self.certs.is_empty()
    }

    /// The DER of ResponseData (what gets signed) for one certificate and CertID hash.
    pub fn tbs_response_data(&self, hash: CertIdHash, facts: &SingleFacts<'_>) -> Vec<u8> {
        let sizes = Sizes::of(self, hash, facts, 0);
        let mut out = Vec::with_capacity(sizes.tbs);
        self.write_tbs(hash, facts, &sizes, &mut out);
        out
    }

    /// The length of the complete OCSPResponse for `facts` and a signature of
    /// `signature_len` bytes.
    pub(crate) fn response_len(
        &self,
        hash: CertIdHash,
        facts: &SingleFacts<'_>,
        signature_len: usize,
    ) -> usize {
        Sizes::of(self, hash, facts, signature_len).total
    }

    /// Appends the complete OCSPResponse (RFC 6960 §4.2.1) around `signature`, which
    /// must be the signature over [`Self::tbs_response_data`] of the same facts.
    /// Lengths are computed first and the bytes written front to back: one pass, no
    /// intermediate buffers.
    pub(crate) fn write_response(
        &self,
        hash: CertIdHash,
        facts: &SingleFacts<'_>,
        signature: &[u8],
        out: &mut Vec<u8>,
    ) {
        let sizes = Sizes::of(self, hash, facts, signature.len());
        out.reserve(sizes.total);
        put_header(out, SEQUENCE, sizes.response_content);
        out.extend_from_slice(&[0x0a, 0x01, ResponseStatus::Successful as u8]);
        put_header(out, 0xa0, sizes.response_bytes);
        put_header(out, SEQUENCE, sizes.response_bytes_content);
        put_header(out, OID, oids::OCSP_BASIC.len());
        out.extend_from_slice(oids::OCSP_BASIC);
        put_header(out, OCTET_STRING, sizes.basic);
        put_header(out, SEQUENCE, sizes.basic_content);
        self.write_tbs(hash, facts, &sizes, out);
        out.extend_from_slice(&self.signature_algorithm);
        put_header(out, der::BIT_STRING, 1 + signature.len());
        out.push(0x00);
        out.extend_from_slice(signature);
        out.extend_from_slice(&self.certs);
    }

    /// The complete OCSPResponse as a new vector (the tests' way to build one).
    #[cfg(test)]
    pub(crate) fn assemble(&self, hash: CertIdHash, facts: &SingleFacts<'_>, signature: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_response(hash, facts, signature, &mut out);
        out
    }

    /// A strong validator for the response built from this template and `signature`:
    /// the template's tag and the signature's last bytes. Any change to the signed facts
    /// changes the signature (ECDSA is randomised; RSA and Ed25519 are deterministic in
    /// what they sign), and any change to the unsigned parts changes the tag, so equal
    /// ETags mean equal bytes without hashing the response on every request.
    pub(crate) fn etag(&self, hash: CertIdHash, signature: &[u8]) -> [u8; ETAG_LEN] {
        let mut etag = [0u8; ETAG_LEN];
        etag[..8].copy_from_slice(&self.etag_prefix[hash_index(hash)]);
        let tail = &signature[signature.len().saturating_sub(ETAG_SIGNATURE_BYTES)..];
        etag[ETAG_LEN - tail.len()..].copy_from_slice(tail);
        etag
    }

    fn write_tbs(&self, hash: CertIdHash, facts: &SingleFacts<'_>, sizes: &Sizes, out: &mut Vec<u8>) {
        // version is DEFAULT v1 and so omitted; responderID is [2] EXPLICIT KeyHash.
        put_header(out, SEQUENCE, sizes.tbs_content);
        out.extend_from_slice(&self.responder_id);
        put_time(out, facts.produced_at);
        put_header(out, SEQUENCE, sizes.single);
        put_header(out, SEQUENCE, sizes.single_content);
        put_header(out, SEQUENCE, sizes.cert_id_content);
        out.extend_from_slice(&self.cert_id_prefix[hash_index(hash)]);
        put_header(out, der::INTEGER, facts.serial.len());
        out.extend_from_slice(facts.serial);
        match facts.status {
            CertStatus::Good => out.extend_from_slice(&[0x80, 0x00]),
            CertStatus::Revoked { at, reason, .. } => {
                put_header(out, 0xa1, revoked_info_len(reason.is_some()));
                put_time(out, *at);
                if let Some(reason) = reason {
                    out.extend_from_slice(&[0xa0, 0x03, 0x0a, 0x01, reason.code()]);
                }
            }
        }
        put_time(out, facts.this_update);
        put_header(out, 0xa0, TIME_LEN);
        put_time(out, facts.next_update);
    }
}

/// Content lengths of every constructed element of one response, innermost first.
struct Sizes {
    cert_id_content: usize,
    single_content: usize,
    single: usize,
    tbs_content: usize,
    tbs: usize,
    basic_content: usize,
    basic: usize,
    response_bytes_content: usize,
    response_bytes: usize,
    response_content: usize,
    total: usize,
}

impl Sizes {
    fn of(
        template: &ResponseTemplate,
        hash: CertIdHash,
        facts: &SingleFacts<'_>,
        signature_len: usize,
    ) -> Self {
        let cert_id_content = template.cert_id_prefix[hash_index(hash)].len() + tlv_len(facts.serial.len());
        let status = match facts.status {
            CertStatus::Good => 2,
            CertStatus::Revoked { reason, .. } => tlv_len(revoked_info_len(reason.is_some())),
        };
        let single_content = tlv_len(cert_id_content) + status + TIME_LEN + tlv_len(TIME_LEN);
        let single = tlv_len(single_content);
        let tbs_content = template.responder_id.len() + TIME_LEN + tlv_len(single);
        let tbs = tlv_len(tbs_content);
        let basic_content =
            tbs + template.signature_algorithm.len() + tlv_len(1 + signature_len) + template.certs.len();
        let basic = tlv_len(basic_content);
        let response_bytes_content = BASIC_OID_LEN + tlv_len(basic);
        let response_bytes = tlv_len(response_bytes_content);
        let response_content = 3 + tlv_len(response_bytes);
        Sizes {
            cert_id_content,
            single_content,
            single,
            tbs_content,
            tbs,
            basic_content,
            basic,
            response_bytes_content,
            response_bytes,
            response_content,
            total: tlv_len(response_content),
        }
    }
}

/// RevokedInfo content: revocationTime, then `[0] EXPLICIT CRLReason` when known.
fn revoked_info_len(with_reason: bool) -> usize {
    TIME_LEN + if with_reason { 5 } else { 0 }
}

/// Bytes of a whole element with `content` bytes of content (DER definite length).
fn tlv_len(content: usize) -> usize {
    1 + length_octets(content) + content
}

fn length_octets(content: usize) -> usize {
    match content {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xff_ffff => 4,
        _ => 5,
    }
}

fn put_header(out: &mut Vec<u8>, tag: u8, content: usize) {
    out.push(tag);
    if content < 0x80 {
        out.push(content as u8);
        return;
    }
    let bytes = (content as u32).to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (4 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

fn put_time(out: &mut Vec<u8>, t: UnixTime) {
    out.extend_from_slice(&[0x18, 15]);
    out.extend_from_slice(&generalized_time_digits(t));
}

/// `YYYYMMDDHHMMSSZ` in whole seconds (RFC 5280 §4.1.2.5.2), computed with integer
/// arithmetic (days to civil date, H. Hinnant's algorithm): this runs for every
/// response served, where a formatting library would cost more than the rest of the
/// encoding. Times outside years 0000–9999 are clamped to that range.
fn generalized_time_digits(t: UnixTime) -> [u8; 15] {
    const FIRST: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const LAST: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let seconds = t.seconds().clamp(FIRST, LAST);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let mut out = *b"00000000000000Z";
    let mut put = |at: usize, width: usize, mut value: i64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(4, 2, month);
    put(6, 2, day);
    put(8, 2, second_of_day / 3600);
    put(10, 2, second_of_day / 60 % 60);
    put(12, 2, second_of_day % 60);
    out
}

/// GeneralizedTime element in whole seconds (tag, length and the digits above).
pub(crate) fn generalized_time(t: UnixTime) -> Vec<u8> {
    let mut out = Vec::with_capacity(TIME_LEN);
    put_time(&mut out, t);
    out
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

    /// The straightforward nested encoding (every element built bottom-up), as the
    /// reference the single-pass writer must reproduce byte for byte.
    fn reference(
        template: &ResponseTemplate,
        hash: CertIdHash,
        facts: &SingleFacts<'_>,
        signature: &[u8],
    ) -> Vec<u8> {
        let status = match facts.status {
            CertStatus::Good => vec![0x80, 0x00],
            CertStatus::Revoked { at, reason, .. } => {
                let reason = reason
                    .map(|r| element(0xa0, &[&[0x0a, 0x01, r.code()]]))
                    .unwrap_or_default();
                element(0xa1, &[&chrono_time(*at), &reason])
            }
        };
        let cert_id = element(
            SEQUENCE,
            &[
                &template.cert_id_prefix[hash_index(hash)],
                &element(der::INTEGER, &[facts.serial]),
            ],
        );
        let single = element(
            SEQUENCE,
            &[
                &cert_id,
                &status,
                &chrono_time(facts.this_update),
                &element(0xa0, &[&chrono_time(facts.next_update)]),
            ],
        );
        let tbs = element(
            SEQUENCE,
            &[
                &template.responder_id,
                &chrono_time(facts.produced_at),
                &element(SEQUENCE, &[&single]),
            ],
        );
        let basic = element(
            SEQUENCE,
            &[
                &tbs,
                &template.signature_algorithm,
                &element(der::BIT_STRING, &[&[0x00], signature]),
                &template.certs,
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
            &[&[0x0a, 0x01, 0x00], &element(0xa0, &[&response_bytes])],
        )
    }

    fn chrono_time(t: UnixTime) -> Vec<u8> {
        let text = chrono::DateTime::from_timestamp(t.seconds(), 0)
            .unwrap()
            .format("%Y%m%d%H%M%SZ")
            .to_string();
        element(0x18, &[text.as_bytes()])
    }

    fn demo_template(issuer: &str, embedded_len: usize) -> ResponseTemplate {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo");
        let read = |name: &str| {
            let pem = std::fs::read(dir.join(issuer).join(name)).unwrap();
            Certificate::from_der(pem::parse(pem).unwrap().into_contents()).unwrap()
        };
        let (ca, signer) = (read("ca.pem"), read("ocsp.pem"));
        let algorithm = [
            0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
        ];
        let template = ResponseTemplate::from_parts(
            &ca,
            &signer.key_id(),
            &algorithm,
            Some(&signer.der()[..embedded_len.min(signer.der().len())]),
        );
        assert_eq!(
            ResponseTemplate::new(&ca, &signer, &algorithm).etag_prefix,
            ResponseTemplate::from_parts(&ca, &signer.key_id(), &algorithm, Some(signer.der())).etag_prefix
        );
        template
    }

    #[test]
    fn the_single_pass_writer_reproduces_the_nested_encoding_at_every_length_boundary() {
        let reasons = [None, Some(RevocationReason::KeyCompromise)];
        let serials: [&[u8]; 4] = [&[1], &[0x00, 0x80], &[0x7f; 16], &[0x11; 20]];
        // Embedded certificates of different sizes move the outer lengths across the
        // one-, two- and three-octet length forms.
        for embedded in [0, 60, 120, 200, 10_000] {
            let template = demo_template("ec", embedded);
            for hash in CertIdHash::ALL {
                for serial in serials {
                    for signature_len in [0usize, 64, 71, 72, 256, 512] {
                        let signature: Vec<u8> = (0..signature_len).map(|i| i as u8).collect();
                        let statuses = [CertStatus::Good].into_iter().chain(reasons.iter().map(|reason| {
                            CertStatus::Revoked {
                                at: UnixTime(1_700_000_123),
                                reason: *reason,
                                invalidity: None,
                            }
                        }));
                        for status in statuses {
                            let facts = SingleFacts {
                                serial,
                                status: &status,
                                produced_at: UnixTime(1_790_000_000),
                                this_update: UnixTime(1_790_000_000),
                                next_update: UnixTime(1_790_345_600),
                            };
                            let expected = reference(&template, hash, &facts, &signature);
                            assert_eq!(template.assemble(hash, &facts, &signature), expected);
                            assert_eq!(
                                template.response_len(hash, &facts, signature.len()),
                                expected.len()
                            );
                            let tbs = template.tbs_response_data(hash, &facts);
                            assert!(expected.windows(tbs.len()).any(|w| w == tbs));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn generalized_time_matches_chrono_across_the_calendar() {
        let mut next = crate::testing::xorshift(0x9e37_79b9_7f4a_7c15);
        let edges = [
            0,
            951_782_400,
            951_868_799,
            4_107_542_400,
            -1,
            -86_400,
            253_402_300_799,
        ];
        let random = (0..100_000).map(|_| (next() % 253_402_300_800) as i64 - 2_208_988_800);
        for t in edges.into_iter().chain(random) {
            assert_eq!(generalized_time(UnixTime(t)), chrono_time(UnixTime(t)), "{t}");
        }
        assert_eq!(&generalized_time_digits(UnixTime(i64::MAX)), b"99991231235959Z");
        assert_eq!(&generalized_time_digits(UnixTime(i64::MIN)), b"00000101000000Z");
    }

    #[test]
    fn etags_differ_with_the_signature_and_the_template() {
        let template = demo_template("ec", usize::MAX);
        let other = demo_template("ec", 100);
        let (a, b) = ([1u8; 72], [2u8; 72]);
        assert_ne!(
            template.etag(CertIdHash::Sha1, &a),
            template.etag(CertIdHash::Sha1, &b)
        );
        assert_ne!(
            template.etag(CertIdHash::Sha1, &a),
            template.etag(CertIdHash::Sha256, &a)
        );
        assert_ne!(
            template.etag(CertIdHash::Sha1, &a),
            other.etag(CertIdHash::Sha1, &a)
        );
        assert_eq!(
            template.etag(CertIdHash::Sha1, &a),
            template.etag(CertIdHash::Sha1, &a)
        );
        // Short signatures (a malformed snapshot) are padded, never a panic.
        let _ = template.etag(CertIdHash::Sha256, &[7u8; 3]);
    }
}
