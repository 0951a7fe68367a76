//! Verifying an OCSP response received from another responder (RFC 6960 §3.2, §4.2),
//! as a cache does before it keeps or serves one.
//!
//! Sans-I/O: bytes, the CertID that was asked about, the trusted issuers and `now` in; a
//! typed verdict out. Owns the reading of OCSPResponse/BasicOCSPResponse with the crate's
//! DER reader, because the signature covers `tbsResponseData` exactly as received (rasn
//! would re-encode it). Must never accept a response it has not checked completely: the
//! bytes it approves are served to relying parties as they are.

use crate::der::{self, Reader, BIT_STRING, OCTET_STRING, OID, SEQUENCE};
use crate::model::{RevocationReason, Serial};
use crate::ocsp::{RequestedCertId, ResponseStatus};
use crate::oids;
use crate::pki::{CertError, CertIdHash, Certificate};
use crate::time::UnixTime;

/// How far a response's thisUpdate may lie in our future. The publisher stamps thisUpdate
/// with its own clock at publish time; a cache whose clock is a few seconds behind would
/// otherwise refuse every response of a fresh publish. Accepting a response from slightly
/// in the future gains an attacker nothing (it is still signed by the CA's signer).
const CLOCK_SKEW_SECONDS: i64 = 60;

/// The certificate status a verified response states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnsweredStatus {
    /// certStatus `good`: the signer vouches the certificate is not revoked.
    Good,
    /// certStatus `revoked`, with its RevokedInfo.
    Revoked {
        /// revocationTime: when the CA revoked it, as the signed response states.
        at: UnixTime,
        /// revocationReason, when the response carries one (a value RFC 5280 does not
        /// define makes the whole response `Malformed`).
        reason: Option<RevocationReason>,
    },
}

/// What a verified response says, for headers and expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedResponse {
    /// good or revoked; an `unknown` response is never verified
    /// ([`ResponseError::StatusUnknown`]).
    pub status: AnsweredStatus,
    /// producedAt: when the response was signed; a cache compares it with the change
    /// feed to refuse an answer older than a change it knows of.
    pub produced_at: UnixTime,
    /// thisUpdate: at most 60 seconds after the `now` it was verified at.
    pub this_update: UnixTime,
    /// nextUpdate: after both thisUpdate and the `now` it was verified at; the response
    /// must not be served from this second on (`Expires`, cache eviction).
    pub next_update: UnixTime,
}

/// Why a response was not accepted. [`ResponseError::label`] is the stable metric label.
/// Every rejection means the bytes are neither cached nor served.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Not DER or not the RFC 6960 structure; names the field that failed.
    #[error("not a DER OCSPResponse: {0}")]
    Malformed(&'static str),
    /// A well-formed error response (`tryLater`, `unauthorized`, ...): the upstream had no
    /// answer, which is not a verification failure of any signature.
    #[error("the response status is {0:?}, not successful")]
    NotSuccessful(ResponseStatus),
    /// responseStatus 4 or above 6: undefined, so nothing else in the bytes is trusted.
    #[error("the response status {0} is not defined by RFC 6960")]
    UnknownStatus(u8),
    /// responseType is not id-pkix-ocsp-basic, the only type RFC 6960 §4.2.1 defines.
    #[error("the response is not an id-pkix-ocsp-basic response")]
    NotBasic,
    /// Zero or several SingleResponses: served bytes must answer exactly one certificate.
    #[error("the response carries {0} SingleResponses; exactly one is served")]
    NotOneResponse(usize),
    /// The CertID inside differs from the one asked about in any field (hash algorithm,
    /// either issuer hash, serial): a valid response for another certificate, as an
    /// upstream replaying one would send.
    #[error("the response answers for a different certificate than the one asked about")]
    WrongCertId,
    /// No trusted issuer has the asked CertID's name and key hashes.
    #[error("the response's issuer is not a trusted issuer")]
    UnknownIssuer,
    /// The responderID names neither an embedded certificate nor the issuer.
    #[error("no certificate in the response matches its responderID")]
    ResponderMismatch,
    /// The signer is not the issuer and not a delegate the issuer certified for OCSP and
    /// valid now (RFC 6960 §4.2.2.2); holds the failed check.
    #[error("the signer may not sign OCSP for the issuer: {0}")]
    UntrustedSigner(CertError),
    /// The signature over tbsResponseData does not verify under the signer's key.
    #[error("the response signature does not verify: {0}")]
    BadSignature(CertError),
    /// certStatus `unknown`: the publisher never signs it, so such a response did not
    /// come from this deployment's data.
    #[error("the certificate status is unknown (the publisher never signs it)")]
    StatusUnknown,
    /// No nextUpdate: with no end to its validity it could be replayed forever.
    #[error("the response has no nextUpdate")]
    NoNextUpdate,
    /// Outside its window at `now`: thisUpdate more than 60 s ahead, nextUpdate reached,
    /// or nextUpdate not after thisUpdate.
    #[error("the response is not valid at {now} (thisUpdate {this_update}, nextUpdate {next_update})")]
    NotFresh {
        /// The time it was checked at.
        now: UnixTime,
        /// The response's thisUpdate.
        this_update: UnixTime,
        /// The response's nextUpdate.
        next_update: UnixTime,
    },
}

impl ResponseError {
    /// Every label [`ResponseError::label`] can return.
    pub const LABELS: [&'static str; 9] = [
        "malformed",
        "not_successful",
        "wrong_cert_id",
        "unknown_issuer",
        "untrusted_signer",
        "bad_signature",
        "unsupported",
        "not_fresh",
        "not_one_response",
    ];

    /// A stable, low-cardinality metric label; several variants share one.
    pub fn label(&self) -> &'static str {
        match self {
            ResponseError::Malformed(_) | ResponseError::UnknownStatus(_) => "malformed",
            ResponseError::NotSuccessful(_) => "not_successful",
            ResponseError::WrongCertId => "wrong_cert_id",
            ResponseError::UnknownIssuer => "unknown_issuer",
            ResponseError::ResponderMismatch | ResponseError::UntrustedSigner(_) => "untrusted_signer",
            ResponseError::BadSignature(_) => "bad_signature",
            ResponseError::NotBasic | ResponseError::StatusUnknown | ResponseError::NoNextUpdate => {
                "unsupported"
            }
            ResponseError::NotFresh { .. } => "not_fresh",
            ResponseError::NotOneResponse(_) => "not_one_response",
        }
    }
}

/// The OCSPResponseStatus of a DER OCSPResponse, without looking further.
pub fn response_status(response: &[u8]) -> Result<ResponseStatus, ResponseError> {
    let mut outer = der::enter(response, SEQUENCE).map_err(|_| ResponseError::Malformed("outer SEQUENCE"))?;
    let status = outer
        .expect(0x0a)
        .map_err(|_| ResponseError::Malformed("responseStatus"))?;
    match status.content {
        [0] => Ok(ResponseStatus::Successful),
        [1] => Ok(ResponseStatus::MalformedRequest),
        [2] => Ok(ResponseStatus::InternalError),
        [3] => Ok(ResponseStatus::TryLater),
        [5] => Ok(ResponseStatus::SigRequired),
        [6] => Ok(ResponseStatus::Unauthorized),
        [other] => Err(ResponseError::UnknownStatus(*other)),
        _ => Err(ResponseError::Malformed("responseStatus length")),
    }
}

/// Verifies that `response` is a successful basic OCSP response for exactly `asked`,
/// signed by `asked`'s issuer (one of `issuers`) or by a delegated signer it certified
/// for OCSP (RFC 6960 §4.2.2.2), and valid at `now` (thisUpdate ≤ now + skew,
/// now < nextUpdate).
pub fn verify_response(
    response: &[u8],
    asked: &RequestedCertId,
    issuers: &[Certificate],
    now: UnixTime,
) -> Result<VerifiedResponse, ResponseError> {
    verify(response, asked, issuers, now, None)
}

/// Delegated signers already found certified for OCSP by an issuer. One signer signs
/// every response of its issuer, so a cache that verifies a stream of them checks the
/// signer's certificate (a parse and an ECDSA/RSA verification) once instead of per
/// response; only its validity period is checked again each time.
#[derive(Debug, Default)]
pub struct KnownSigners {
    /// (issuer certificate DER, signer certificate).
    known: std::sync::RwLock<Vec<(Vec<u8>, std::sync::Arc<Certificate>)>>,
}

/// Signers remembered at most; a responder sees one or two per issuer (a rotation).
const KNOWN_SIGNERS: usize = 32;

impl KnownSigners {
    /// An empty memory: the first response of each signer is checked in full.
    pub fn new() -> KnownSigners {
        KnownSigners::default()
    }

    /// [`verify_response`], remembering the signers it accepts.
    pub fn verify_response(
        &self,
        response: &[u8],
        asked: &RequestedCertId,
        issuers: &[Certificate],
        now: UnixTime,
    ) -> Result<VerifiedResponse, ResponseError> {
        verify(response, asked, issuers, now, Some(self))
    }

    fn lookup(&self, issuer: &Certificate, der: &[u8]) -> Option<std::sync::Arc<Certificate>> {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        known
            .iter()
            .find(|(issuer_der, signer)| signer.der() == der && issuer_der.as_slice() == issuer.der())
            .map(|(_, signer)| signer.clone())
    }

    fn remember(&self, issuer: &Certificate, signer: &Certificate) {
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.len() >= KNOWN_SIGNERS {
            known.clear();
        }
        known.push((issuer.der().to_vec(), std::sync::Arc::new(signer.clone())));
    }
}

fn verify(
    response: &[u8],
    asked: &RequestedCertId,
    issuers: &[Certificate],
    now: UnixTime,
    known: Option<&KnownSigners>,
) -> Result<VerifiedResponse, ResponseError> {
    let status = response_status(response)?;
    if status != ResponseStatus::Successful {
        return Err(ResponseError::NotSuccessful(status));
    }
    let basic = parse_basic(response)?;
    if basic.single.cert_id != *asked {
        return Err(ResponseError::WrongCertId);
    }
    // The issuer is found by the CertID hashes the client asked with (already known to be
    // the response's own): a response can only speak for that issuer.
    let issuer = issuers
        .iter()
        .find(|issuer| {
            issuer.name_hash(asked.hash) == asked.issuer_name_hash
                && issuer.key_hash(asked.hash) == asked.issuer_key_hash
        })
        .ok_or(ResponseError::UnknownIssuer)?;
    let remembered = known.and_then(|known| {
        basic
            .certs
            .iter()
            .find_map(|der| known.lookup(issuer, der))
            .filter(|signer| basic.responder_id.names(signer))
    });
    let signer = match remembered {
        Some(signer) => {
            // Certified for this issuer when first seen; it may have expired since.
            signer
                .verify_valid_at(now)
                .map_err(ResponseError::UntrustedSigner)?;
            signer
        }
        None => {
            let signer = responder(&basic, issuer)?;
            if !signer.same_entity(issuer) {
                signer
                    .verify_ocsp_signer_for(issuer, now)
                    .map_err(ResponseError::UntrustedSigner)?;
                if let Some(known) = known {
                    known.remember(issuer, &signer);
                }
            }
            std::sync::Arc::new(signer)
        }
    };
    signer
        .verify_signed_data(basic.signature_oid, basic.tbs, basic.signature)
        .map_err(ResponseError::BadSignature)?;
    let single = basic.single;
    let next_update = single.next_update.ok_or(ResponseError::NoNextUpdate)?;
    if single.this_update > now.plus_seconds(CLOCK_SKEW_SECONDS)
        || now >= next_update
        || next_update <= single.this_update
    {
        return Err(ResponseError::NotFresh {
            now,
            this_update: single.this_update,
            next_update,
        });
    }
    Ok(VerifiedResponse {
        status: single.status.ok_or(ResponseError::StatusUnknown)?,
        produced_at: basic.produced_at,
        this_update: single.this_update,
        next_update,
    })
}

/// The certificate whose key signed the response: the one the responderID names, among
/// the embedded certificates, or the issuer itself.
fn responder(basic: &Basic<'_>, issuer: &Certificate) -> Result<Certificate, ResponseError> {
    for der in &basic.certs {
        let certificate = Certificate::from_der(der.to_vec())
            .map_err(|_| ResponseError::Malformed("embedded certificate"))?;
        if basic.responder_id.names(&certificate) {
            return Ok(certificate);
        }
    }
    if basic.responder_id.names(issuer) {
        return Ok(issuer.clone());
    }
    Err(ResponseError::ResponderMismatch)
}

enum ResponderId<'a> {
    ByName(&'a [u8]),
    ByKey(&'a [u8]),
}

impl ResponderId<'_> {
    fn names(&self, candidate: &Certificate) -> bool {
        match self {
            ResponderId::ByKey(hash) => candidate.key_id() == *hash,
            ResponderId::ByName(name) => candidate.subject_der() == *name,
        }
    }
}

struct Single {
    cert_id: RequestedCertId,
    /// `None`: `unknown`.
    status: Option<AnsweredStatus>,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
}

struct Basic<'a> {
    tbs: &'a [u8],
    responder_id: ResponderId<'a>,
    produced_at: UnixTime,
    single: Single,
    signature_oid: &'a [u8],
    signature: &'a [u8],
    certs: Vec<&'a [u8]>,
}

fn parse_basic(response: &[u8]) -> Result<Basic<'_>, ResponseError> {
    let bad = |what: &'static str| move |_| ResponseError::Malformed(what);
    let mut outer = der::enter(response, SEQUENCE).map_err(bad("outer SEQUENCE"))?;
    outer.expect(0x0a).map_err(bad("responseStatus"))?;
    let wrapper = outer.expect(0xa0).map_err(bad("responseBytes"))?;
    outer.finish().map_err(bad("trailing data"))?;
    let mut response_bytes = der::enter(wrapper.content, SEQUENCE).map_err(bad("ResponseBytes"))?;
    if response_bytes.expect(OID).map_err(bad("responseType"))?.content != oids::OCSP_BASIC {
        return Err(ResponseError::NotBasic);
    }
    let octets = response_bytes.expect(OCTET_STRING).map_err(bad("response"))?;
    response_bytes.finish().map_err(bad("ResponseBytes"))?;

    let mut basic = der::enter(octets.content, SEQUENCE).map_err(bad("BasicOCSPResponse"))?;
    let tbs = basic.expect(SEQUENCE).map_err(bad("tbsResponseData"))?;
    let algorithm = basic.expect(SEQUENCE).map_err(bad("signatureAlgorithm"))?;
    let signature = basic.expect(BIT_STRING).map_err(bad("signature"))?;
    let mut certs = Vec::new();
    if let Some(list) = basic.optional(0xa0).map_err(bad("certs"))? {
        let mut list = der::enter(list.content, SEQUENCE).map_err(bad("certs"))?;
        while !list.is_empty() {
            certs.push(list.expect(SEQUENCE).map_err(bad("certs"))?.raw);
        }
    }
    basic.finish().map_err(bad("BasicOCSPResponse"))?;
    let signature_oid = Reader::new(algorithm.content)
        .expect(OID)
        .map_err(bad("signatureAlgorithm"))?
        .content;
    let signature = match signature.content.split_first() {
        Some((0, bits)) => bits,
        _ => return Err(ResponseError::Malformed("signature has unused bits")),
    };

    let mut data = Reader::new(tbs.content);
    if let Some(version) = data.optional(0xa0).map_err(bad("version"))? {
        // v1 is the only version (and DEFAULT, so DER omits it; accept it spelled out).
        if version.content != [0x02, 0x01, 0x00] {
            return Err(ResponseError::Malformed("unsupported ResponseData version"));
        }
    }
    let responder = data.next_element().map_err(bad("responderID"))?;
    let responder_id = match responder.tag {
        0xa1 => ResponderId::ByName(responder.content),
        0xa2 => ResponderId::ByKey(
            der::enter(responder.content, OCTET_STRING)
                .map_err(bad("responderID byKey"))?
                .remaining(),
        ),
        _ => return Err(ResponseError::Malformed("responderID")),
    };
    let produced_at = generalized_time(data.expect(0x18).map_err(bad("producedAt"))?)?;
    let mut responses = Reader::new(data.expect(SEQUENCE).map_err(bad("responses"))?.content);
    data.optional(0xa1).map_err(bad("responseExtensions"))?;
    data.finish().map_err(bad("ResponseData"))?;
    let mut singles = Vec::new();
    while !responses.is_empty() {
        singles.push(responses.expect(SEQUENCE).map_err(bad("SingleResponse"))?);
    }
    // RFC 6960 allows several, but the bytes are served as they are, and Go's
    // x/crypto/ocsp and Python's cryptography reject or mishandle more than one.
    let [single] = singles[..] else {
        return Err(ResponseError::NotOneResponse(singles.len()));
    };
    Ok(Basic {
        tbs: tbs.raw,
        responder_id,
        produced_at,
        single: parse_single(single.content)?,
        signature_oid,
        signature,
        certs,
    })
}

fn parse_single(content: &[u8]) -> Result<Single, ResponseError> {
    let bad = |what: &'static str| move |_| ResponseError::Malformed(what);
    let mut single = Reader::new(content);
    let cert_id = single.expect(SEQUENCE).map_err(bad("certID"))?;
    let status = single.next_element().map_err(bad("certStatus"))?;
    let this_update = generalized_time(single.expect(0x18).map_err(bad("thisUpdate"))?)?;
    let next_update = match single.optional(0xa0).map_err(bad("nextUpdate"))? {
        Some(wrapper) => {
            let mut inner = Reader::new(wrapper.content);
            let time = generalized_time(inner.expect(0x18).map_err(bad("nextUpdate"))?)?;
            inner.finish().map_err(bad("nextUpdate"))?;
            Some(time)
        }
        None => None,
    };
    single.optional(0xa1).map_err(bad("singleExtensions"))?;
    single.finish().map_err(bad("SingleResponse"))?;
    Ok(Single {
        cert_id: parse_cert_id(cert_id.content)?,
        status: parse_status(status)?,
        this_update,
        next_update,
    })
}

fn parse_cert_id(content: &[u8]) -> Result<RequestedCertId, ResponseError> {
    let bad = |what: &'static str| move |_| ResponseError::Malformed(what);
    let mut id = Reader::new(content);
    let mut algorithm = Reader::new(id.expect(SEQUENCE).map_err(bad("hashAlgorithm"))?.content);
    let oid = algorithm.expect(OID).map_err(bad("hashAlgorithm"))?.content;
    let name_hash = id.expect(OCTET_STRING).map_err(bad("issuerNameHash"))?.content;
    let key_hash = id.expect(OCTET_STRING).map_err(bad("issuerKeyHash"))?.content;
    let serial = id.expect(der::INTEGER).map_err(bad("serialNumber"))?.content;
    id.finish().map_err(bad("CertID"))?;
    // A hash we do not support cannot equal the CertID asked about (which was decoded
    // with the same rules), so it is simply a different certificate.
    let hash = CertIdHash::from_oid(oid).ok_or(ResponseError::WrongCertId)?;
    Ok(RequestedCertId {
        hash,
        issuer_name_hash: name_hash.to_vec(),
        issuer_key_hash: key_hash.to_vec(),
        serial: Serial::from_der_content(serial).ok_or(ResponseError::WrongCertId)?,
    })
}

/// CertStatus: good `[0] IMPLICIT NULL`, revoked `[1] IMPLICIT RevokedInfo`, unknown
/// `[2] IMPLICIT NULL` (returned as `None`).
fn parse_status(element: der::Element<'_>) -> Result<Option<AnsweredStatus>, ResponseError> {
    match (element.tag, element.content) {
        (0x80, []) => Ok(Some(AnsweredStatus::Good)),
        (0x82, []) => Ok(None),
        (0xa1, content) => {
            let mut info = Reader::new(content);
            let at = generalized_time(
                info.expect(0x18)
                    .map_err(|_| ResponseError::Malformed("revocationTime"))?,
            )?;
            let reason = match info
                .optional(0xa0)
                .map_err(|_| ResponseError::Malformed("revocationReason"))?
            {
                Some(wrapper) => match der::enter(wrapper.content, 0x0a)
                    .map_err(|_| ResponseError::Malformed("revocationReason"))?
                    .remaining()
                {
                    [code] => Some(
                        RevocationReason::from_code(*code)
                            .ok_or(ResponseError::Malformed("revocationReason value"))?,
                    ),
                    _ => return Err(ResponseError::Malformed("revocationReason length")),
                },
                None => None,
            };
            info.finish()
                .map_err(|_| ResponseError::Malformed("RevokedInfo"))?;
            Ok(Some(AnsweredStatus::Revoked { at, reason }))
        }
        _ => Err(ResponseError::Malformed("certStatus")),
    }
}

/// GeneralizedTime in whole seconds, `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2).
fn generalized_time(element: der::Element<'_>) -> Result<UnixTime, ResponseError> {
    std::str::from_utf8(element.content)
        .ok()
        .and_then(|text| crate::time::parse_asn1_time(text, false))
        .ok_or(ResponseError::Malformed("GeneralizedTime"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CertStatus;
    use crate::ocsp::response::{ResponseTemplate, SingleFacts};
    use crate::pki::SigningKey;
    use std::path::Path;

    const NOW: UnixTime = UnixTime(1_790_000_000);

    fn fixture(path: &str) -> String {
        let full = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/demo")
            .join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
    }

    fn certificate(path: &str) -> Certificate {
        Certificate::from_pem(&fixture(path)).unwrap()
    }

    struct Signer {
        issuer: Certificate,
        certificate: Certificate,
        key: SigningKey,
    }

    /// The EC issuer with its delegated signer, or signing for itself.
    fn signer(delegated: bool) -> Signer {
        let issuer = certificate("ec/ca.pem");
        let (cert, key) = if delegated {
            ("ec/ocsp.pem", "ec/ocsp.key")
        } else {
            ("ec/ca.pem", "ec/ca.key")
        };
        let certificate = certificate(cert);
        let key = SigningKey::from_pem(
            &fixture(key),
            certificate.public_key(),
            certificate.key_kind().unwrap(),
        )
        .unwrap();
        Signer {
            issuer,
            certificate,
            key,
        }
    }

    fn asked(issuer: &Certificate, hash: CertIdHash, serial: &str) -> RequestedCertId {
        RequestedCertId {
            hash,
            issuer_name_hash: issuer.name_hash(hash),
            issuer_key_hash: issuer.key_hash(hash),
            serial: Serial::from_hex(serial).unwrap(),
        }
    }

    fn signed(signer: &Signer, hash: CertIdHash, serial: &str, status: &CertStatus) -> Vec<u8> {
        let template = ResponseTemplate::new(
            &signer.issuer,
            &signer.certificate,
            signer.key.algorithm().algorithm_identifier_der(),
        );
        let serial = Serial::from_hex(serial).unwrap();
        let facts = SingleFacts {
            serial: serial.as_der_content(),
            status,
            produced_at: NOW,
            this_update: NOW,
            next_update: NOW.plus_seconds(96 * 3600),
        };
        let tbs = template.tbs_response_data(hash, &facts);
        template.assemble(hash, &facts, &signer.key.sign(&tbs).unwrap())
    }

    #[test]
    fn accepts_delegated_and_issuer_signed_responses_for_both_hashes() {
        let revoked = CertStatus::Revoked {
            at: UnixTime(1_780_000_000),
            reason: Some(RevocationReason::KeyCompromise),
            invalidity: None,
        };
        for delegated in [true, false] {
            let signer = signer(delegated);
            let anchors = [signer.issuer.clone()];
            for hash in CertIdHash::ALL {
                let good = signed(&signer, hash, "0A1B2C", &CertStatus::Good);
                let verified =
                    verify_response(&good, &asked(&signer.issuer, hash, "0A1B2C"), &anchors, NOW).unwrap();
                assert_eq!(verified.status, AnsweredStatus::Good);
                assert_eq!(verified.this_update, NOW);
                assert_eq!(verified.next_update, NOW.plus_seconds(96 * 3600));
                let bad = signed(&signer, hash, "0A1B2D", &revoked);
                let verified =
                    verify_response(&bad, &asked(&signer.issuer, hash, "0A1B2D"), &anchors, NOW).unwrap();
                assert_eq!(
                    verified.status,
                    AnsweredStatus::Revoked {
                        at: UnixTime(1_780_000_000),
                        reason: Some(RevocationReason::KeyCompromise)
                    }
                );
            }
        }
    }

    #[test]
    fn every_flipped_byte_is_refused_or_harmless() {
        // Flipping any single bit must never yield a response that verifies with a
        // different meaning; the only acceptable outcomes are a refusal or (for bits the
        // signature does not cover, such as the embedded certificate's own signature
        // parameters) the same verdict.
        let signer = signer(true);
        let anchors = [signer.issuer.clone()];
        let id = asked(&signer.issuer, CertIdHash::Sha256, "0A1B2C");
        let good = signed(&signer, CertIdHash::Sha256, "0A1B2C", &CertStatus::Good);
        let original = verify_response(&good, &id, &anchors, NOW).unwrap();
        // The same with a signer memo that already knows the genuine signer.
        let known = KnownSigners::new();
        known.verify_response(&good, &id, &anchors, NOW).unwrap();
        for memo in [None, Some(&known)] {
            let mut refused = 0;
            for at in 0..good.len() {
                let mut tampered = good.clone();
                tampered[at] ^= 0x01;
                match verify(&tampered, &id, &anchors, NOW, memo) {
                    Ok(verdict) => assert_eq!(verdict, original, "flip at {at} changed the meaning"),
                    Err(_) => refused += 1,
                }
            }
            assert!(
                refused > good.len() * 9 / 10,
                "only {refused} of {} flips refused",
                good.len()
            );
        }
    }

    #[test]
    fn a_flipped_signature_byte_is_a_bad_signature() {
        let signer = signer(true);
        let id = asked(&signer.issuer, CertIdHash::Sha1, "0A1B2C");
        let mut response = signed(&signer, CertIdHash::Sha1, "0A1B2C", &CertStatus::Good);
        // The signature BIT STRING follows tbsResponseData and the algorithm; the ECDSA
        // r value sits a few bytes into it.
        let tbs_end = {
            let mut outer = der::enter(&response, SEQUENCE).unwrap();
            outer.expect(0x0a).unwrap();
            let wrapper = outer.expect(0xa0).unwrap();
            let mut bytes = der::enter(wrapper.content, SEQUENCE).unwrap();
            bytes.expect(OID).unwrap();
            let octets = bytes.expect(OCTET_STRING).unwrap();
            let mut basic = der::enter(octets.content, SEQUENCE).unwrap();
            basic.expect(SEQUENCE).unwrap();
            basic.expect(SEQUENCE).unwrap();
            let signature = basic.expect(BIT_STRING).unwrap();
            signature.content.as_ptr() as usize - response.as_ptr() as usize
        };
        response[tbs_end + 10] ^= 0x40;
        assert!(matches!(
            verify_response(&response, &id, std::slice::from_ref(&signer.issuer), NOW),
            Err(ResponseError::BadSignature(_))
        ));
    }

    #[test]
    fn refuses_other_certificates_issuers_signers_and_times() {
        let signer = signer(true);
        let anchors = [signer.issuer.clone()];
        let response = signed(&signer, CertIdHash::Sha1, "0A1B2C", &CertStatus::Good);
        let id = asked(&signer.issuer, CertIdHash::Sha1, "0A1B2C");
        assert_eq!(
            verify_response(
                &response,
                &asked(&signer.issuer, CertIdHash::Sha1, "0A1B2D"),
                &anchors,
                NOW
            ),
            Err(ResponseError::WrongCertId)
        );
        assert_eq!(
            verify_response(
                &response,
                &asked(&signer.issuer, CertIdHash::Sha256, "0A1B2C"),
                &anchors,
                NOW
            ),
            Err(ResponseError::WrongCertId),
            "a SHA-1 answer to a SHA-256 question"
        );
        let rsa = certificate("rsa/ca.pem");
        assert_eq!(
            verify_response(&response, &id, &[rsa], NOW),
            Err(ResponseError::UnknownIssuer)
        );
        let expiry = NOW.plus_seconds(96 * 3600);
        assert!(matches!(
            verify_response(&response, &id, &anchors, expiry),
            Err(ResponseError::NotFresh { .. })
        ));
        assert!(verify_response(&response, &id, &anchors, expiry.plus_seconds(-1)).is_ok());
        assert!(verify_response(&response, &id, &anchors, NOW.plus_seconds(-CLOCK_SKEW_SECONDS)).is_ok());
        assert!(matches!(
            verify_response(
                &response,
                &id,
                &anchors,
                NOW.plus_seconds(-CLOCK_SKEW_SECONDS - 1)
            ),
            Err(ResponseError::NotFresh { .. })
        ));
        // The EC issuer's delegated signer, but the response claims the RSA issuer's
        // CertID: the signer is not certified by that issuer.
        let rsa_issuer = certificate("rsa/ca.pem");
        let forged_issuer = Signer {
            issuer: rsa_issuer.clone(),
            certificate: signer.certificate.clone(),
            key: signer.key,
        };
        let forged = signed(&forged_issuer, CertIdHash::Sha1, "0A1B2C", &CertStatus::Good);
        assert!(matches!(
            verify_response(
                &forged,
                &asked(&rsa_issuer, CertIdHash::Sha1, "0A1B2C"),
                &[rsa_issuer],
                NOW
            ),
            Err(ResponseError::UntrustedSigner(_))
        ));
    }

    #[test]
    fn a_remembered_signer_is_still_checked_for_validity_and_the_signature() {
        let signer = signer(true);
        let anchors = [signer.issuer.clone()];
        let known = KnownSigners::new();
        let id = asked(&signer.issuer, CertIdHash::Sha1, "0A1B2C");
        let good = signed(&signer, CertIdHash::Sha1, "0A1B2C", &CertStatus::Good);
        for _ in 0..2 {
            assert!(known.verify_response(&good, &id, &anchors, NOW).is_ok());
        }
        assert_eq!(known.known.read().unwrap().len(), 1, "remembered once");
        // Remembered, but past its notAfter: refused.
        let late = signer.certificate.not_after().plus_seconds(1);
        assert!(matches!(
            known.verify_response(&good, &id, &anchors, late),
            Err(ResponseError::UntrustedSigner(_) | ResponseError::NotFresh { .. })
        ));
        // Remembered for the EC issuer only: the same signer claiming the RSA issuer's
        // CertIDs is checked from scratch and refused.
        let rsa_issuer = certificate("rsa/ca.pem");
        let forged = signed(
            &Signer {
                issuer: rsa_issuer.clone(),
                certificate: signer.certificate.clone(),
                key: SigningKey::from_pem(
                    &fixture("ec/ocsp.key"),
                    signer.certificate.public_key(),
                    signer.certificate.key_kind().unwrap(),
                )
                .unwrap(),
            },
            CertIdHash::Sha1,
            "0A1B2C",
            &CertStatus::Good,
        );
        assert!(matches!(
            known.verify_response(
                &forged,
                &asked(&rsa_issuer, CertIdHash::Sha1, "0A1B2C"),
                &[rsa_issuer],
                NOW
            ),
            Err(ResponseError::UntrustedSigner(_))
        ));
        // The signature is checked every time.
        let mut tampered = good.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(known.verify_response(&tampered, &id, &anchors, NOW).is_err());
        let mut flipped_signature = good.clone();
        let at = flipped_signature.len() / 2;
        flipped_signature[at] ^= 0x01;
        assert!(known
            .verify_response(&flipped_signature, &id, &anchors, NOW)
            .is_err());
    }

    #[test]
    fn error_statuses_and_garbage_are_typed() {
        let id = asked(&certificate("ec/ca.pem"), CertIdHash::Sha1, "01");
        for status in [
            ResponseStatus::Unauthorized,
            ResponseStatus::TryLater,
            ResponseStatus::MalformedRequest,
        ] {
            let body = crate::ocsp::encode_error_response(status);
            assert_eq!(response_status(body), Ok(status));
            assert_eq!(
                verify_response(body, &id, &[], NOW),
                Err(ResponseError::NotSuccessful(status))
            );
        }
        assert!(matches!(
            verify_response(b"", &id, &[], NOW),
            Err(ResponseError::Malformed(_))
        ));
        assert_eq!(
            response_status(&[0x30, 0x03, 0x0a, 0x01, 0x04]),
            Err(ResponseError::UnknownStatus(4))
        );
        let signer = signer(true);
        let good = signed(&signer, CertIdHash::Sha1, "01", &CertStatus::Good);
        for cut in 0..good.len() {
            assert!(verify_response(&good[..cut], &id, std::slice::from_ref(&signer.issuer), NOW).is_err());
        }
    }

    #[test]
    fn rasn_reads_the_same_response() {
        let signer = signer(true);
        let good = signed(&signer, CertIdHash::Sha256, "0A1B2C", &CertStatus::Good);
        let decoded: rasn_ocsp::OcspResponse = rasn::der::decode(&good).unwrap();
        let bytes = decoded.bytes.unwrap();
        let basic: rasn_ocsp::BasicOcspResponse = rasn::der::decode(&bytes.response).unwrap();
        let single = &basic.tbs_response_data.responses[0];
        assert!(matches!(single.cert_status, rasn_ocsp::CertStatus::Good));
        assert_eq!(
            single.cert_id.issuer_key_hash.as_ref(),
            signer.issuer.key_hash(CertIdHash::Sha256)
        );
    }
}
