//! Encoding X.509 v2 CRLs (RFC 5280 §5) and the CA/Browser Forum profile for them
//! (BR §7.2): authorityKeyIdentifier, a strictly increasing cRLNumber, reasonCode only
//! where a reason exists (never critical, never certificateHold), invalidityDate, a
//! critical issuingDistributionPoint on partitioned CRLs, and deltaCRLIndicator plus
//! freshestCRL for delta CRLs.
//!
//! Sans-I/O: facts in, DER out. Signing is the caller's (it holds the key).

use crate::der::{self, element, OCTET_STRING, OID, SEQUENCE};
use crate::model::{RevocationReason, Serial};
use crate::oids;
use crate::pki::Certificate;
use crate::time::UnixTime;

/// One revoked certificate as a CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlEntry {
    /// userCertificate: the revoked certificate's serial.
    pub serial: Serial,
    /// revocationDate: when the CA revoked it (UTCTime or GeneralizedTime by year).
    pub revoked_at: UnixTime,
    /// The reasonCode extension, omitted when `None`. Must not be
    /// [`RevocationReason::CertificateHold`]: [`tbs_cert_list`] refuses it.
    pub reason: Option<RevocationReason>,
    /// The invalidityDate extension (RFC 5280 §5.3.2), omitted when `None`.
    pub invalidity: Option<UnixTime>,
}

/// A URL a CRL is published at (distribution point, freshestCRL, the CCADB list) and
/// the path part a responder serves it at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// The whole URL as configured, scheme and host included: what goes into a CRL's
    /// distribution-point and freshestCRL extensions and the CCADB list, byte for byte.
    pub full: String,
    /// The path, from its leading `/`: what a responder matches a GET request against.
    pub path: String,
}

/// Why a text is not a CRL [`Url`]; each names the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not `http://` or `https://` (RFC 5280 §4.2.1.13: CRLs are fetched over HTTP; an
    /// `ldap://` point cannot be served by this responder).
    #[error("{0:?} is not an http:// or https:// URL")]
    Scheme(String),
    /// No `/` after the host, so there is no path to serve the CRL at.
    #[error("{0:?} has no path")]
    NoPath(String),
    /// An empty host, or a query, fragment or space in the path: the path must be one a
    /// responder can match exactly.
    #[error("{0:?} needs a host and a plain path")]
    NotPlain(String),
}

impl Url {
    /// Splits an `http://` or `https://` URL into the whole text and its path. No
    /// percent-decoding or normalisation: the path is matched byte for byte.
    pub fn parse(text: &str) -> Result<Url, UrlError> {
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .ok_or_else(|| UrlError::Scheme(text.to_string()))?;
        let slash = rest.find('/').ok_or_else(|| UrlError::NoPath(text.to_string()))?;
        let path = &rest[slash..];
        if slash == 0 || path.contains(['?', '#', ' ']) {
            return Err(UrlError::NotPlain(text.to_string()));
        }
        Ok(Url {
            full: text.to_string(),
            path: path.to_string(),
        })
    }
}

/// What kind of CRL, and so which scope extensions it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrlScope {
    /// Every revoked certificate of the issuer. `freshest` names the delta CRL, if any.
    Full {
        /// The delta CRL's URL, put in a freshestCRL extension (RFC 5280 §5.2.6).
        freshest: Option<String>,
    },
    /// One partition: the certificates whose CRL distribution point is `uri` (it goes,
    /// byte for byte, into a critical issuingDistributionPoint).
    Partition {
        /// The partition's distribution point URL, exactly as its certificates carry it.
        uri: String,
    },
    /// Changes since the full CRL numbered `base`.
    Delta {
        /// The cRLNumber of the full CRL this delta applies to: its critical
        /// deltaCRLIndicator (RFC 5280 §5.2.4).
        base: u64,
    },
}

/// Everything in a TBSCertList except its entries: who issues it, how it will be signed,
/// when, its number and its scope.
pub struct CrlFacts<'a> {
    /// The CA the CRL is for: its subject becomes the CRL's issuer and its key identifier
    /// the authorityKeyIdentifier. The CRL must then be signed with this CA's key.
    pub issuer: &'a Certificate,
    /// The DER AlgorithmIdentifier of the signature the caller will make; it appears in
    /// the TBSCertList and must equal the one passed to [`assemble`] (RFC 5280 §5.1.1.2).
    pub signature_algorithm_der: &'a [u8],
    /// thisUpdate: when this CRL's information was current.
    pub this_update: UnixTime,
    /// nextUpdate: by when a newer CRL will be issued. Required by RFC 5280 §5.1.2.5 and
    /// the Baseline Requirements, so not optional here.
    pub next_update: UnixTime,
    /// cRLNumber: must increase strictly with each CRL of the same scope (RFC 5280
    /// §5.2.3); the caller tracks it.
    pub number: u64,
    /// Full, one partition, or a delta.
    pub scope: CrlScope,
}

/// Why a CRL cannot be encoded from the facts given. Nothing partial is returned.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrlError {
    /// An entry says certificateHold, which BR §7.2.2 forbids; it names the serial so the
    /// CA's record can be fixed.
    #[error("serial {0} is revoked with reason certificateHold, which the CA/Browser Forum forbids in CRLs")]
    CertificateHold(Serial),
    /// A cRLNumber or delta base does not fit a 20-octet INTEGER. Unreachable from a
    /// `u64` today; kept so a change of type cannot wrap silently.
    #[error("cRLNumber must be below 2^159 (RFC 5280 §5.2.3)")]
    NumberTooLarge,
}

/// The partition a serial falls in: its value as an unsigned big-endian integer, modulo
/// `shards`. Stable across publishes and independent of everything but the serial (the
/// demo certificates' CRL distribution points were assigned with the same rule).
pub fn shard_of(serial: &Serial, shards: u32) -> u32 {
    let shards = u64::from(shards.max(1));
    let remainder = serial
        .as_der_content()
        .iter()
        .fold(0u64, |acc, &byte| ((acc << 8) | u64::from(byte)) % shards);
    remainder as u32
}

/// The DER of TBSCertList (RFC 5280 §5.1.2), version 2, ready for the caller to sign.
/// Entries must be given in the order they should appear; an empty list is omitted.
pub fn tbs_cert_list(facts: &CrlFacts<'_>, entries: &[&CrlEntry]) -> Result<Vec<u8>, CrlError> {
    let mut revoked = Vec::with_capacity(entries.len() * 48);
    for entry in entries {
        if entry.reason == Some(RevocationReason::CertificateHold) {
            return Err(CrlError::CertificateHold(entry.serial.clone()));
        }
        der::write_element(&mut revoked, SEQUENCE, &[&entry_body(entry)]);
    }
    let revoked_certificates = if entries.is_empty() {
        // An empty list is omitted, not encoded empty (RFC 5280 §5.1.2.6).
        Vec::new()
    } else {
        element(SEQUENCE, &[&revoked])
    };
    Ok(element(
        SEQUENCE,
        &[
            &[0x02, 0x01, 0x01], // version v2
            facts.signature_algorithm_der,
            facts.issuer.subject_der(),
            &x509_time(facts.this_update),
            &x509_time(facts.next_update),
            &revoked_certificates,
            &element(0xa0, &[&element(SEQUENCE, &[&crl_extensions(facts)?])]),
        ],
    ))
}

/// The complete CertificateList around a signed TBSCertList: `signature_algorithm_der`
/// must be the one in [`CrlFacts`] and `signature` the raw signature over exactly `tbs`.
/// Nothing is checked here.
pub fn assemble(tbs: &[u8], signature_algorithm_der: &[u8], signature: &[u8]) -> Vec<u8> {
    element(
        SEQUENCE,
        &[
            tbs,
            signature_algorithm_der,
            &element(der::BIT_STRING, &[&[0x00], signature]),
        ],
    )
}

fn entry_body(entry: &CrlEntry) -> Vec<u8> {
    let mut extensions = Vec::new();
    if let Some(reason) = entry.reason {
        extensions.extend(extension(
            oids::EXT_REASON_CODE,
            false,
            &[0x0a, 0x01, reason.code()],
        ));
    }
    if let Some(invalidity) = entry.invalidity {
        // invalidityDate is always GeneralizedTime (RFC 5280 §5.3.2).
        extensions.extend(extension(
            oids::EXT_INVALIDITY_DATE,
            false,
            &crate::ocsp::generalized_time(invalidity),
        ));
    }
    let mut body = element(der::INTEGER, &[entry.serial.as_der_content()]);
    body.extend(x509_time(entry.revoked_at));
    if !extensions.is_empty() {
        body.extend(element(SEQUENCE, &[&extensions]));
    }
    body
}

fn crl_extensions(facts: &CrlFacts<'_>) -> Result<Vec<u8>, CrlError> {
    let key_id = element(0x80, &[&facts.issuer.key_identifier()]);
    let mut out = extension(oids::EXT_AUTHORITY_KEY_ID, false, &element(SEQUENCE, &[&key_id]));
    out.extend(extension(oids::EXT_CRL_NUMBER, false, &integer(facts.number)?));
    match &facts.scope {
        CrlScope::Full { freshest: None } => {}
        CrlScope::Full { freshest: Some(uri) } => {
            let point = element(SEQUENCE, &[&distribution_point_name(uri)]);
            out.extend(extension(
                oids::EXT_FRESHEST_CRL,
                false,
                &element(SEQUENCE, &[&point]),
            ));
        }
        CrlScope::Partition { uri } => {
            // Critical (BR §7.2.2); indirectCRL and onlyContainsAttributeCerts stay FALSE
            // (DEFAULT, so absent).
            let idp = element(SEQUENCE, &[&distribution_point_name(uri)]);
            out.extend(extension(oids::EXT_ISSUING_DISTRIBUTION_POINT, true, &idp));
        }
        CrlScope::Delta { base } => {
            out.extend(extension(oids::EXT_DELTA_CRL_INDICATOR, true, &integer(*base)?));
        }
    }
    Ok(out)
}

/// `[0] { [0] fullName { [6] uniformResourceIdentifier } }`
fn distribution_point_name(uri: &str) -> Vec<u8> {
    let general_name = element(0x86, &[uri.as_bytes()]);
    element(0xa0, &[&element(0xa0, &[&general_name])])
}

fn extension(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let critical: &[u8] = if critical { &[0x01, 0x01, 0xff] } else { &[] };
    element(
        SEQUENCE,
        &[&element(OID, &[oid]), critical, &element(OCTET_STRING, &[value])],
    )
}

fn integer(value: u64) -> Result<Vec<u8>, CrlError> {
    let serial = Serial::from_unsigned(&value.to_be_bytes()).ok_or(CrlError::NumberTooLarge)?;
    Ok(element(der::INTEGER, &[serial.as_der_content()]))
}

/// RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050 (rasn's Time would
/// not switch by itself).
fn x509_time(t: UnixTime) -> Vec<u8> {
    let moment = chrono::DateTime::from_timestamp(t.seconds(), 0).unwrap_or_default();
    if chrono::Datelike::year(&moment) < 2050 {
        element(0x17, &[moment.format("%y%m%d%H%M%SZ").to_string().as_bytes()])
    } else {
        element(0x18, &[moment.format("%Y%m%d%H%M%SZ").to_string().as_bytes()])
    }
}

/// What ocsp-edge needs to know about an existing CRL (one it imports, or the base of a
/// delta): read from the DER without re-encoding anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CrlSummary {
    /// thisUpdate as the CRL states it; not compared with any clock here.
    pub this_update: UnixTime,
    /// nextUpdate; `None` when the CRL omits it (OPTIONAL in the ASN.1, although RFC 5280
    /// §5.1.2.5 and the BRs require CAs to include it).
    pub next_update: Option<UnixTime>,
    /// cRLNumber; `None` when absent or beyond `u64` (so the next number cannot be
    /// derived from it).
    pub number: Option<u64>,
    /// The serials listed, in CRL order; reasons and dates are not read.
    pub revoked: Vec<Serial>,
    /// The URIs of an issuingDistributionPoint's fullName (a partition's scope); empty
    /// when the CRL has none.
    pub distribution_points: Vec<String>,
    /// For a delta CRL: the cRLNumber of its base (deltaCRLIndicator).
    pub delta_base: Option<u64>,
}

/// Why an existing CRL was not accepted by [`read_verified`]; nothing in it is used then.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrlReadError {
    /// Not DER, not a CertificateList, or a field that cannot be read (the text says which).
    #[error("not a DER CRL: {0}")]
    Malformed(String),
    /// Its issuer Name is not the expected CA's subject, byte for byte (holds the CA's
    /// display name).
    #[error("the CRL's issuer is not {0}")]
    WrongIssuer(String),
    /// The signature does not verify under the CA's key, or uses an algorithm this crate
    /// does not verify: the bytes may have been altered or come from another key.
    #[error("the CRL's signature does not verify: {0}")]
    BadSignature(String),
}

impl From<der::DerError> for CrlReadError {
    fn from(e: der::DerError) -> Self {
        CrlReadError::Malformed(e.to_string())
    }
}

/// Parses a CRL and checks that `issuer` issued and signed it: the summary is returned
/// only when the issuer Name matches and the signature over the TBSCertList as received
/// verifies. Validity dates are not checked (the caller decides what is stale).
pub fn read_verified(crl: &[u8], issuer: &Certificate) -> Result<CrlSummary, CrlReadError> {
    let mut outer = der::enter(crl, SEQUENCE)?;
    let tbs = outer.expect(SEQUENCE)?;
    let mut algorithm = der::Reader::new(outer.expect(SEQUENCE)?.content);
    let signature_oid = algorithm.expect(OID)?.content;
    let signature = match outer.expect(der::BIT_STRING)?.content.split_first() {
        Some((0, bits)) => bits,
        _ => return Err(CrlReadError::Malformed("signature BIT STRING".into())),
    };
    outer.finish()?;
    let summary = summarise(tbs.content, issuer)?;
    issuer
        .verify_signed_data(signature_oid, tbs.raw, signature)
        .map_err(|e| {
            CrlReadError::BadSignature(match e {
                crate::pki::CertError::BadSignature => "it was not made with the issuer's key".to_string(),
                other => other.to_string(),
            })
        })?;
    Ok(summary)
}

fn summarise(tbs: &[u8], issuer: &Certificate) -> Result<CrlSummary, CrlReadError> {
    let mut fields = der::Reader::new(tbs);
    fields.optional(der::INTEGER)?; // version
    fields.expect(SEQUENCE)?; // signature algorithm
    if fields.expect(SEQUENCE)?.raw != issuer.subject_der() {
        return Err(CrlReadError::WrongIssuer(issuer.display_name()));
    }
    let time = |element: der::Element<'_>| {
        crate::pki::parse_time(element).map_err(|e| CrlReadError::Malformed(e.to_string()))
    };
    let this_update = time(fields.next_element()?)?;
    let mut summary = CrlSummary {
        this_update,
        next_update: None,
        number: None,
        revoked: Vec::new(),
        distribution_points: Vec::new(),
        delta_base: None,
    };
    while !fields.is_empty() {
        let element = fields.next_element()?;
        match element.tag {
            0x17 | 0x18 => summary.next_update = Some(time(element)?),
            SEQUENCE => summary.revoked = revoked_serials(element.content)?,
            0xa0 => read_extensions(element.content, &mut summary)?,
            _ => {}
        }
    }
    Ok(summary)
}

fn revoked_serials(list: &[u8]) -> Result<Vec<Serial>, CrlReadError> {
    let mut entries = der::Reader::new(list);
    let mut serials = Vec::new();
    while !entries.is_empty() {
        let mut entry = der::Reader::new(entries.expect(SEQUENCE)?.content);
        let serial = entry.expect(der::INTEGER)?.content;
        serials.push(
            Serial::from_der_content(serial).ok_or_else(|| CrlReadError::Malformed("bad serial".into()))?,
        );
    }
    Ok(serials)
}

/// Reads the CRL extensions ocsp-edge relies on: cRLNumber, deltaCRLIndicator and the
/// URIs of an issuingDistributionPoint. Others are skipped.
fn read_extensions(wrapper: &[u8], summary: &mut CrlSummary) -> Result<(), CrlReadError> {
    let mut extensions = der::enter(wrapper, SEQUENCE)?;
    while !extensions.is_empty() {
        let mut extension = der::Reader::new(extensions.expect(SEQUENCE)?.content);
        let oid = extension.expect(OID)?.content;
        extension.optional(0x01)?;
        let value = extension.expect(OCTET_STRING)?.content;
        if oid == oids::EXT_CRL_NUMBER {
            summary.number = small_integer(value)?;
        } else if oid == oids::EXT_DELTA_CRL_INDICATOR {
            summary.delta_base = Some(
                small_integer(value)?
                    .ok_or_else(|| CrlReadError::Malformed("deltaCRLIndicator beyond 2^64".into()))?,
            );
        } else if oid == oids::EXT_ISSUING_DISTRIBUTION_POINT {
            summary.distribution_points = distribution_point_uris(value)?;
        }
    }
    Ok(())
}

/// A DER INTEGER's value when it fits in a u64 (`None` when larger).
fn small_integer(value: &[u8]) -> Result<Option<u64>, CrlReadError> {
    let content = der::enter(value, der::INTEGER)?.remaining();
    let magnitude = content.strip_prefix(&[0]).unwrap_or(content);
    if magnitude.len() > 8 {
        return Ok(None);
    }
    Ok(Some(
        magnitude.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
    ))
}

/// The uniformResourceIdentifier names of an IssuingDistributionPoint's
/// `distributionPoint [0] { fullName [0] GeneralNames }` (the reverse of
/// [`distribution_point_name`]); other name forms are skipped.
fn distribution_point_uris(value: &[u8]) -> Result<Vec<String>, CrlReadError> {
    let mut point = der::enter(value, SEQUENCE)?;
    let Some(name) = point.optional(0xa0)? else {
        return Ok(Vec::new());
    };
    let Some(full_name) = der::Reader::new(name.content).optional(0xa0)? else {
        return Ok(Vec::new());
    };
    let mut names = der::Reader::new(full_name.content);
    let mut uris = Vec::new();
    while !names.is_empty() {
        let general_name = names.next_element()?;
        if general_name.tag == 0x86 {
            let uri = std::str::from_utf8(general_name.content)
                .map_err(|_| CrlReadError::Malformed("a distribution point URI is not text".into()))?;
            uris.push(uri.to_string());
        }
    }
    Ok(uris)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_match_the_demo_certificates_distribution_points() {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo");
        for issuer in ["ec", "rsa"] {
            let dir = demo.join(issuer).join("certs");
            for entry in std::fs::read_dir(&dir).unwrap().flatten().take(20) {
                let text = std::fs::read_to_string(entry.path()).unwrap();
                let cert = Certificate::from_pem(&text).unwrap();
                let printed = std::process::Command::new("openssl")
                    .args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
                    .arg(entry.path())
                    .output()
                    .unwrap()
                    .stdout;
                let expected = format!("/crl/{issuer}/{}.crl", shard_of(cert.serial(), 4));
                assert!(
                    String::from_utf8_lossy(&printed).contains(&expected),
                    "{}",
                    entry.path().display()
                );
            }
        }
    }

    #[test]
    fn shard_of_is_the_serial_modulo_the_count() {
        assert_eq!(shard_of(&Serial::from_hex("0F").unwrap(), 4), 3);
        assert_eq!(shard_of(&Serial::from_hex("0100").unwrap(), 3), 256 % 3);
        let big = Serial::from_hex("FFFFFFFFFFFFFFFFFFFF").unwrap();
        let value: u128 = (1u128 << 80) - 1;
        assert_eq!(shard_of(&big, 7) as u128, value % 7);
        assert_eq!(shard_of(&big, 1), 0);
    }

    #[test]
    fn times_switch_to_generalized_in_2050() {
        assert_eq!(x509_time(UnixTime(2_524_607_999))[0], 0x17); // 2049-12-31T23:59:59Z
        assert_eq!(x509_time(UnixTime(2_524_608_000))[0], 0x18); // 2050-01-01
        assert_eq!(&x509_time(UnixTime(0))[2..], b"700101000000Z");
    }

    #[test]
    fn scope_extensions_are_read_back() {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec/ca.pem");
        let issuer = Certificate::from_pem(&std::fs::read_to_string(demo).unwrap()).unwrap();
        let facts = |scope| CrlFacts {
            issuer: &issuer,
            signature_algorithm_der: &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
            this_update: UnixTime(1_790_000_000),
            next_update: UnixTime(1_790_086_400),
            number: 77,
            scope,
        };
        let read = |scope| {
            let tbs = tbs_cert_list(&facts(scope), &[]).unwrap();
            summarise(der::enter(&tbs, SEQUENCE).unwrap().remaining(), &issuer).unwrap()
        };
        let uri = "http://crl.example/ec/3.crl".to_string();
        let partition = read(CrlScope::Partition { uri: uri.clone() });
        assert_eq!(
            (partition.distribution_points, partition.delta_base),
            (vec![uri], None)
        );
        assert_eq!(partition.number, Some(77));
        let delta = read(CrlScope::Delta { base: 70 });
        assert_eq!((delta.distribution_points.len(), delta.delta_base), (0, Some(70)));
        let full = read(CrlScope::Full {
            freshest: Some("http://crl.example/d.crl".into()),
        });
        assert_eq!((full.distribution_points.len(), full.delta_base), (0, None));
        assert_eq!(full.next_update, Some(UnixTime(1_790_086_400)));
    }

    #[test]
    fn certificate_hold_is_refused() {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/ec/ca.pem");
        let issuer = Certificate::from_pem(&std::fs::read_to_string(demo).unwrap()).unwrap();
        let facts = CrlFacts {
            issuer: &issuer,
            signature_algorithm_der: &[
                0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
            ],
            this_update: UnixTime(1_790_000_000),
            next_update: UnixTime(1_790_086_400),
            number: 1,
            scope: CrlScope::Full { freshest: None },
        };
        let held = CrlEntry {
            serial: Serial::from_hex("01").unwrap(),
            revoked_at: UnixTime(1_780_000_000),
            reason: Some(RevocationReason::CertificateHold),
            invalidity: None,
        };
        assert!(matches!(
            tbs_cert_list(&facts, &[&held]),
            Err(CrlError::CertificateHold(_))
        ));
        let empty = tbs_cert_list(&facts, &[]).unwrap();
        // version, algorithm, issuer, two times, then straight to [0] extensions.
        let mut fields = der::enter(&empty, SEQUENCE).unwrap();
        for _ in 0..5 {
            fields.next_element().unwrap();
        }
        assert_eq!(
            fields.next_element().unwrap().tag,
            0xa0,
            "empty revokedCertificates omitted"
        );
    }
}
