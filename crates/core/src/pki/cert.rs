//! X.509 certificates as ocsp-edge needs them: the exact bytes to hash into CertIDs
//! and ResponderIDs, signature verification against an issuer, and the checks a
//! delegated OCSP signer must pass (RFC 6960 §4.2.2.2, CA/Browser Forum BR §7.1.2.8).
//!
//! Parses once, up front, into an owned value; it keeps the original DER and never
//! re-encodes it (a re-encoded certificate may no longer match its signature).

use crate::der::{self, DerError, Element, Reader};
use crate::model::Serial;
use crate::oids;
use crate::pki::keys::{PublicKeyKind, SignatureAlgorithm};
use crate::time::UnixTime;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use std::ops::Range;

/// Why a certificate was not parsed, or not accepted for what it was asked to do. Each
/// variant is a refusal: a certificate that fails a check is never used for that purpose.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertError {
    /// Not PEM, not DER, or not an X.509 Certificate (the text says which field).
    #[error("not a valid X.509 certificate: {0}")]
    Malformed(String),
    /// The PEM text parsed but held no `CERTIFICATE` block (a key file given by mistake).
    #[error("no certificate found in the PEM text")]
    NoCertificate,
    /// The certificate parsed, but its key is not one this crate can verify with; asked
    /// only when the key is used.
    #[error("unsupported public key algorithm (expected EC P-256/P-384, RSA or Ed25519)")]
    UnsupportedKey,
    /// The signature algorithm OID is unknown or does not fit the signer's key type
    /// (say, an RSA OID under an EC key).
    #[error("unsupported signature algorithm")]
    UnsupportedSignature,
    /// The certificate's issuer Name is not the candidate issuer's subject, byte for byte:
    /// it was not issued by that CA.
    #[error("the certificate's issuer name does not match the issuer's subject")]
    IssuerNameMismatch,
    /// The signature was not made by the issuer's key over these exact bytes.
    #[error("the certificate's signature does not verify with the issuer's key")]
    BadSignature,
    /// A delegated OCSP signer without id-kp-OCSPSigning in extKeyUsage (RFC 6960
    /// §4.2.2.2): clients would reject its responses.
    #[error("the certificate lacks extended key usage id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9)")]
    MissingOcspSigning,
    /// A delegated OCSP signer without id-pkix-ocsp-nocheck, which BR §7.1.2.8 requires
    /// (clients would otherwise have to check the signer's own revocation).
    #[error("the certificate lacks the id-pkix-ocsp-nocheck extension (1.3.6.1.5.5.7.48.1.5)")]
    MissingNoCheck,
    /// `at` is before notBefore or after notAfter (both inclusive bounds, RFC 5280 §4.1.2.5).
    #[error("the certificate is not valid at {at} (valid from {not_before} to {not_after})")]
    OutsideValidity {
        /// The time the check was made for (the caller's `now`).
        at: UnixTime,
        /// The certificate's notBefore.
        not_before: UnixTime,
        /// The certificate's notAfter.
        not_after: UnixTime,
    },
}

impl From<DerError> for CertError {
    fn from(e: DerError) -> Self {
        CertError::Malformed(e.to_string())
    }
}

/// A parsed certificate that owns its DER and remembers where each field lies in it.
#[derive(Clone, Debug)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: Range<usize>,
    issuer: Range<usize>,
    subject: Range<usize>,
    public_key: Range<usize>,
    signature: Range<usize>,
    signature_oid: Vec<u8>,
    key_kind: Option<PublicKeyKind>,
    serial: Serial,
    not_before: UnixTime,
    not_after: UnixTime,
    ocsp_signing: bool,
    ocsp_nocheck: bool,
    subject_key_id: Option<Vec<u8>>,
}

/// Hash algorithms a CertID may use (RFC 6960 §4.1.1; RFC 9919 adds SHA-256 as the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CertIdHash {
    /// SHA-1: what RFC 5019 §2.1.1 clients send, and so most requests. Only ever hashes
    /// public names and keys here, where collisions gain an attacker nothing.
    Sha1,
    /// SHA-256 (RFC 9919).
    Sha256,
}

impl CertIdHash {
    /// Both, in the order responses are pre-signed for each CertID hash.
    pub const ALL: [CertIdHash; 2] = [CertIdHash::Sha1, CertIdHash::Sha256];

    /// The hash of `data` under this algorithm (20 or 32 bytes).
    pub(crate) fn digest(self, data: &[u8]) -> Vec<u8> {
        let algorithm = match self {
            CertIdHash::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            CertIdHash::Sha256 => &ring::digest::SHA256,
        };
        ring::digest::digest(algorithm, data).as_ref().to_vec()
    }

    /// The algorithm's OID content octets, as a CertID's hashAlgorithm carries them
    /// (parameters absent or NULL).
    pub fn oid(self) -> &'static [u8] {
        match self {
            CertIdHash::Sha1 => oids::SHA1,
            CertIdHash::Sha256 => oids::SHA256,
        }
    }

    /// The algorithm for a CertID hashAlgorithm OID; `None` for any other hash, which the
    /// responder refuses rather than guesses at.
    pub(crate) fn from_oid(oid: &[u8]) -> Option<Self> {
        CertIdHash::ALL.into_iter().find(|h| h.oid() == oid)
    }

    /// `sha1` or `sha256`: the lowercase spelling for messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            CertIdHash::Sha1 => "sha1",
            CertIdHash::Sha256 => "sha256",
        }
    }
}

impl Certificate {
    /// Parses every `CERTIFICATE` block of a PEM text, in order.
    pub fn all_from_pem(text: &str) -> Result<Vec<Certificate>, CertError> {
        let blocks = pem::parse_many(text).map_err(|e| CertError::Malformed(e.to_string()))?;
        let certs = blocks
            .into_iter()
            .filter(|b| b.tag() == "CERTIFICATE")
            .map(|b| Certificate::from_der(b.into_contents()))
            .collect::<Result<Vec<_>, _>>()?;
        if certs.is_empty() {
            return Err(CertError::NoCertificate);
        }
        Ok(certs)
    }

    /// The first certificate of a PEM text.
    pub fn from_pem(text: &str) -> Result<Certificate, CertError> {
        Ok(Certificate::all_from_pem(text)?.swap_remove(0))
    }

    /// Parses one DER certificate and keeps `der` as is. Fails on any trailing byte; an
    /// unsupported key is not a failure here (see [`Certificate::key_kind`]).
    pub fn from_der(der: Vec<u8>) -> Result<Certificate, CertError> {
        let parsed = parse(&der)?;
        Ok(Certificate { der, ..parsed })
    }

    /// The certificate exactly as received: what goes into a response's `certs` and what
    /// two certificates are compared by.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER of the subject Name, exactly as encoded (hashed into CertID.issuerNameHash
    /// when this certificate is the issuer).
    pub(crate) fn subject_der(&self) -> &[u8] {
        &self.der[self.subject.clone()]
    }

    /// The DER of the issuer Name, exactly as encoded: must equal the issuer's
    /// [`Certificate::subject_der`] for [`Certificate::verify_issued_by`].
    fn issuer_der(&self) -> &[u8] {
        &self.der[self.issuer.clone()]
    }

    /// The subjectPublicKey BIT STRING contents without the unused-bits octet.
    pub fn public_key(&self) -> &[u8] {
        &self.der[self.public_key.clone()]
    }

    /// The family and curve of the subject key, or [`CertError::UnsupportedKey`] when
    /// this crate cannot verify with it.
    pub fn key_kind(&self) -> Result<PublicKeyKind, CertError> {
        self.key_kind.ok_or(CertError::UnsupportedKey)
    }

    /// The certificate's serialNumber, normalised to minimal DER content.
    pub fn serial(&self) -> &Serial {
        &self.serial
    }

    /// notBefore: the first second the certificate is valid (inclusive).
    pub fn not_before(&self) -> UnixTime {
        self.not_before
    }

    /// notAfter: the last second the certificate is valid (inclusive, RFC 5280 §4.1.2.5).
    pub fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// A one-line human name for messages: the subject's CN when present, else hex.
    pub fn display_name(&self) -> String {
        common_name(self.subject_der()).unwrap_or_else(|| hex::encode(self.subject_der()))
    }

    /// The key identifier for authorityKeyIdentifier in what this certificate signs: its
    /// subjectKeyIdentifier when present (RFC 5280 §4.2.1.1), else the SHA-1 of its key.
    pub fn key_identifier(&self) -> Vec<u8> {
        self.subject_key_id.clone().unwrap_or_else(|| self.key_id())
    }

    /// SHA-1 of the public key: the ResponderID byKey value (RFC 6960 §4.2.1).
    pub fn key_id(&self) -> Vec<u8> {
        CertIdHash::Sha1.digest(self.public_key())
    }

    /// CertID.issuerNameHash for certificates this one issued.
    pub fn name_hash(&self, hash: CertIdHash) -> Vec<u8> {
        hash.digest(self.subject_der())
    }

    /// CertID.issuerKeyHash for certificates this one issued.
    pub fn key_hash(&self, hash: CertIdHash) -> Vec<u8> {
        hash.digest(self.public_key())
    }

    /// True when both certificates carry the same subject and key.
    pub fn same_entity(&self, other: &Certificate) -> bool {
        self.subject_der() == other.subject_der() && self.public_key() == other.public_key()
    }

    /// Checks that `issuer` issued this certificate: names chain and the signature verifies.
    pub fn verify_issued_by(&self, issuer: &Certificate) -> Result<(), CertError> {
        if self.issuer_der() != issuer.subject_der() {
            return Err(CertError::IssuerNameMismatch);
        }
        issuer.verify_signed_data(
            &self.signature_oid,
            &self.der[self.tbs.clone()],
            &self.der[self.signature.clone()],
        )
    }

    /// Verifies `signature` over `message` made with this certificate's key under the
    /// X.509 signature algorithm `signature_oid` (as in certificates and CRLs).
    pub(crate) fn verify_signed_data(
        &self,
        signature_oid: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CertError> {
        let algorithm = certificate_signature_algorithm(signature_oid, self.key_kind()?)?;
        UnparsedPublicKey::new(algorithm, self.public_key())
            .verify(message, signature)
            .map_err(|_| CertError::BadSignature)
    }

    /// Checks that this certificate may sign OCSP responses for `issuer` at `now`: the
    /// issuer itself, or a delegated signer issued directly by it with id-kp-OCSPSigning
    /// and id-pkix-ocsp-nocheck.
    pub fn verify_ocsp_signer_for(&self, issuer: &Certificate, now: UnixTime) -> Result<(), CertError> {
        self.verify_valid_at(now)?;
        if self.same_entity(issuer) {
            return Ok(());
        }
        self.verify_issued_by(issuer)?;
        if !self.ocsp_signing {
            return Err(CertError::MissingOcspSigning);
        }
        if !self.ocsp_nocheck {
            return Err(CertError::MissingNoCheck);
        }
        Ok(())
    }

    /// Errors with [`CertError::OutsideValidity`] unless notBefore ≤ `now` ≤ notAfter.
    pub fn verify_valid_at(&self, now: UnixTime) -> Result<(), CertError> {
        if now < self.not_before || now > self.not_after {
            return Err(CertError::OutsideValidity {
                at: now,
                not_before: self.not_before,
                not_after: self.not_after,
            });
        }
        Ok(())
    }

    /// Whether `signature` over `message` was made by this certificate's key with
    /// `algorithm`; false as well when the algorithm does not fit the key type. Used to
    /// prove a key (or an HSM object) belongs to this certificate before signing with it.
    pub fn verify_signature(&self, algorithm: SignatureAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        let kind_matches = matches!(
            (algorithm, self.key_kind),
            (SignatureAlgorithm::EcdsaP256Sha256, Some(PublicKeyKind::EcP256))
                | (SignatureAlgorithm::EcdsaP384Sha384, Some(PublicKeyKind::EcP384))
                | (SignatureAlgorithm::RsaPkcs1Sha256, Some(PublicKeyKind::Rsa))
                | (SignatureAlgorithm::Ed25519, Some(PublicKeyKind::Ed25519))
        );
        kind_matches
            && UnparsedPublicKey::new(algorithm.verification_algorithm(), self.public_key())
                .verify(message, signature)
                .is_ok()
    }
}

/// The ring algorithm that verifies a certificate signature of `oid` made by an issuer key
/// of `issuer_key`.
fn certificate_signature_algorithm(
    oid: &[u8],
    issuer_key: PublicKeyKind,
) -> Result<&'static dyn VerificationAlgorithm, CertError> {
    use PublicKeyKind::*;
    Ok(match (oid, issuer_key) {
        (o, EcP256) if o == oids::ECDSA_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        (o, EcP256) if o == oids::ECDSA_SHA384 => &signature::ECDSA_P256_SHA384_ASN1,
        (o, EcP384) if o == oids::ECDSA_SHA256 => &signature::ECDSA_P384_SHA256_ASN1,
        (o, EcP384) if o == oids::ECDSA_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        (o, Rsa) if o == oids::RSA_SHA256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        (o, Rsa) if o == oids::RSA_SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        (o, Rsa) if o == oids::RSA_SHA512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        (o, Ed25519) if o == oids::ED25519 => &signature::ED25519,
        _ => return Err(CertError::UnsupportedSignature),
    })
}

fn range_of(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

/// Parses the fields we use. Returns a `Certificate` with an empty `der`; the caller moves
/// the bytes in (the ranges index into them).
fn parse(input: &[u8]) -> Result<Certificate, CertError> {
    let mut cert = der::enter(input, der::SEQUENCE)?;
    let tbs = cert.expect(der::SEQUENCE)?;
    let signature_algorithm = cert.expect(der::SEQUENCE)?;
    let signature = bit_string_bytes(cert.expect(der::BIT_STRING)?)?;
    cert.finish()?;

    let mut fields = Reader::new(tbs.content);
    fields.optional(0xa0)?; // [0] EXPLICIT version
    let serial = fields.expect(der::INTEGER)?;
    fields.expect(der::SEQUENCE)?; // inner signature AlgorithmIdentifier
    let issuer = fields.expect(der::SEQUENCE)?;
    let (not_before, not_after) = parse_validity(fields.expect(der::SEQUENCE)?)?;
    let subject = fields.expect(der::SEQUENCE)?;
    let spki = fields.expect(der::SEQUENCE)?;
    let (key_kind, public_key) = parse_spki(spki)?;
    let mut extensions = Extensions::default();
    while !fields.is_empty() {
        let element = fields.next_element()?;
        if element.tag == 0xa3 {
            extensions = parse_extensions(element)?;
        }
    }

    Ok(Certificate {
        der: Vec::new(),
        tbs: range_of(input, tbs.raw),
        issuer: range_of(input, issuer.raw),
        subject: range_of(input, subject.raw),
        public_key: range_of(input, public_key),
        signature: range_of(input, signature),
        signature_oid: Reader::new(signature_algorithm.content)
            .expect(der::OID)?
            .content
            .to_vec(),
        key_kind,
        serial: Serial::from_der_content(serial.content)
            .ok_or_else(|| CertError::Malformed("serial number is negative, empty or too long".into()))?,
        not_before,
        not_after,
        ocsp_signing: extensions.ocsp_signing,
        ocsp_nocheck: extensions.ocsp_nocheck,
        subject_key_id: extensions.subject_key_id,
    })
}

fn bit_string_bytes(element: Element<'_>) -> Result<&[u8], CertError> {
    match element.content.split_first() {
        Some((0, bits)) => Ok(bits),
        _ => Err(CertError::Malformed("BIT STRING with unused bits".into())),
    }
}

fn parse_validity(validity: Element<'_>) -> Result<(UnixTime, UnixTime), CertError> {
    let mut r = Reader::new(validity.content);
    let not_before = parse_time(r.next_element()?)?;
    let not_after = parse_time(r.next_element()?)?;
    r.finish()?;
    Ok((not_before, not_after))
}

/// UTCTime (YYMMDDHHMMSSZ, RFC 5280 pivot at 50) or GeneralizedTime (YYYYMMDDHHMMSSZ).
pub(crate) fn parse_time(element: Element<'_>) -> Result<UnixTime, CertError> {
    let text =
        std::str::from_utf8(element.content).map_err(|_| CertError::Malformed("time is not ASCII".into()))?;
    crate::time::parse_asn1_time(text, element.tag == 0x17)
        .ok_or_else(|| CertError::Malformed(format!("bad time {text:?}")))
}

fn parse_spki(spki: Element<'_>) -> Result<(Option<PublicKeyKind>, &[u8]), CertError> {
    let mut r = Reader::new(spki.content);
    let algorithm = r.expect(der::SEQUENCE)?;
    let key = bit_string_bytes(r.expect(der::BIT_STRING)?)?;
    let mut alg = Reader::new(algorithm.content);
    let oid = alg.expect(der::OID)?.content;
    let parameter = alg.optional(der::OID)?.map(|e| e.content);
    let kind = match (oid, parameter) {
        (o, Some(p)) if o == oids::EC_PUBLIC_KEY && p == oids::CURVE_P256 => Some(PublicKeyKind::EcP256),
        (o, Some(p)) if o == oids::EC_PUBLIC_KEY && p == oids::CURVE_P384 => Some(PublicKeyKind::EcP384),
        (o, _) if o == oids::RSA_ENCRYPTION => Some(PublicKeyKind::Rsa),
        (o, _) if o == oids::ED25519 => Some(PublicKeyKind::Ed25519),
        _ => None,
    };
    Ok((kind, key))
}

#[derive(Default)]
struct Extensions {
    ocsp_signing: bool,
    ocsp_nocheck: bool,
    subject_key_id: Option<Vec<u8>>,
}

fn parse_extensions(wrapper: Element<'_>) -> Result<Extensions, CertError> {
    let mut found = Extensions::default();
    let mut list = der::enter(wrapper.content, der::SEQUENCE)?;
    while !list.is_empty() {
        let mut extension = Reader::new(list.expect(der::SEQUENCE)?.content);
        let oid = extension.expect(der::OID)?.content;
        extension.optional(0x01)?; // critical BOOLEAN
        let value = extension.expect(der::OCTET_STRING)?.content;
        if oid == oids::OCSP_NOCHECK {
            found.ocsp_nocheck = true;
        } else if oid == oids::EXT_SUBJECT_KEY_ID {
            found.subject_key_id = Some(der::enter(value, der::OCTET_STRING)?.remaining().to_vec());
        } else if oid == oids::EXT_EXTENDED_KEY_USAGE {
            let mut purposes = der::enter(value, der::SEQUENCE)?;
            while !purposes.is_empty() {
                if purposes.expect(der::OID)?.content == oids::KP_OCSP_SIGNING {
                    found.ocsp_signing = true;
                }
            }
        }
    }
    Ok(found)
}

/// The first commonName (2.5.4.3) in a Name, for messages.
fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = der::enter(name, der::SEQUENCE).ok()?;
    while let Ok(rdn) = rdns.next_element() {
        let mut attributes = Reader::new(rdn.content);
        while let Ok(attribute) = attributes.expect(der::SEQUENCE) {
            let mut r = Reader::new(attribute.content);
            if r.expect(der::OID).ok()?.content == [0x55, 0x04, 0x03] {
                return String::from_utf8(r.next_element().ok()?.content.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture(path: &str) -> Certificate {
        let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/demo")
            .join(path);
        let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
        Certificate::from_pem(&text).unwrap()
    }

    const NOW: UnixTime = UnixTime(1_790_000_000); // 2026-09

    #[test]
    fn demo_signers_are_valid_delegates_of_their_issuers() {
        for issuer in ["ec", "rsa"] {
            let ca = fixture(&format!("{issuer}/ca.pem"));
            let signer = fixture(&format!("{issuer}/ocsp.pem"));
            signer.verify_ocsp_signer_for(&ca, NOW).unwrap();
            assert!(!signer.same_entity(&ca));
        }
    }

    #[test]
    fn issuer_may_sign_for_itself() {
        let ca = fixture("ec/ca.pem");
        ca.verify_ocsp_signer_for(&ca, NOW).unwrap();
    }

    #[test]
    fn signer_of_another_issuer_is_refused() {
        let ec = fixture("ec/ca.pem");
        let rsa_signer = fixture("rsa/ocsp.pem");
        assert_eq!(
            rsa_signer.verify_ocsp_signer_for(&ec, NOW),
            Err(CertError::IssuerNameMismatch)
        );
    }

    #[test]
    fn issuing_ca_lacks_ocsp_signing_for_the_root() {
        let root = fixture("root/ca.pem");
        let ec = fixture("ec/ca.pem");
        ec.verify_issued_by(&root).unwrap();
        assert_eq!(
            ec.verify_ocsp_signer_for(&root, NOW),
            Err(CertError::MissingOcspSigning)
        );
    }

    #[test]
    fn expired_signer_is_refused() {
        let ca = fixture("ec/ca.pem");
        let signer = fixture("ec/ocsp.pem");
        let late = signer.not_after().plus_seconds(1);
        assert!(matches!(
            signer.verify_ocsp_signer_for(&ca, late),
            Err(CertError::OutsideValidity { .. })
        ));
    }

    #[test]
    fn tampered_signature_is_refused() {
        let ca = fixture("ec/ca.pem");
        let signer = fixture("ec/ocsp.pem");
        let mut der = signer.der().to_vec();
        // Flip the last byte of the public key: the certificate still parses, but the
        // issuer's signature no longer covers what it says.
        let key_byte = signer.public_key.end - 1;
        der[key_byte] ^= 1;
        let tampered = Certificate::from_der(der).unwrap();
        assert_eq!(tampered.verify_issued_by(&ca), Err(CertError::BadSignature));
    }

    #[test]
    fn hashes_match_openssl_names() {
        let ca = fixture("ec/ca.pem");
        assert_eq!(ca.key_kind().unwrap(), PublicKeyKind::EcP256);
        assert_eq!(fixture("rsa/ca.pem").key_kind().unwrap(), PublicKeyKind::Rsa);
        assert_eq!(ca.name_hash(CertIdHash::Sha1).len(), 20);
        assert_eq!(ca.key_hash(CertIdHash::Sha256).len(), 32);
        assert_eq!(ca.public_key().len(), 65, "uncompressed P-256 point");
        assert!(ca.display_name().contains("EC Issuing CA"));
    }

    #[test]
    fn key_identifier_is_the_subject_key_identifier() {
        let ca = fixture("ec/ca.pem");
        let text = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectKeyIdentifier", "-in"])
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec/ca.pem"))
            .output()
            .unwrap()
            .stdout;
        let printed: String = String::from_utf8(text)
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .replace(':', "");
        assert_eq!(hex::encode_upper(ca.key_identifier()), printed);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Certificate::from_der(vec![]).is_err());
        assert!(Certificate::from_der(vec![0x30, 0x03, 0x02, 0x01, 0x01]).is_err());
        assert_eq!(
            Certificate::from_pem("hello").err(),
            Some(CertError::NoCertificate)
        );
        let good = fixture("ec/ca.pem");
        for cut in [1, 10, 100, good.der().len() - 1] {
            assert!(Certificate::from_der(good.der()[..cut].to_vec()).is_err());
        }
    }
}
