//! Certificates and CRLs read with rasn-pkix, so a test compares decoded fields rather than
//! the layout of `openssl … -text` (which changes between OpenSSL versions). `openssl`
//! stays the judge of whether a document verifies; this is how a test reads what it says.

use super::*;
use rasn_pkix::{
    AuthorityKeyIdentifier, CertificateList, CrlDistributionPoints, CrlReason, DistributionPointName,
    Extension, GeneralName, IssuingDistributionPoint, SubjectKeyIdentifier, Time,
};
use std::collections::BTreeMap;

/// `id-ce` (2.5.29) extension arcs.
pub mod ext {
    pub const SUBJECT_KEY_IDENTIFIER: u32 = 14;
    pub const CRL_NUMBER: u32 = 20;
    pub const CRL_DISTRIBUTION_POINTS: u32 = 31;
    pub const REASON_CODE: u32 = 21;
    pub const INVALIDITY_DATE: u32 = 24;
    pub const DELTA_CRL_INDICATOR: u32 = 27;
    pub const ISSUING_DISTRIBUTION_POINT: u32 = 28;
    pub const AUTHORITY_KEY_IDENTIFIER: u32 = 35;
    pub const FRESHEST_CRL: u32 = 46;
}

/// The extension `2.5.29.<arc>` in `extensions`, if present.
pub fn find_extension(extensions: &[Extension], arc: u32) -> Option<&Extension> {
    extensions.iter().find(|e| e.extn_id[..] == [2, 5, 29, arc])
}

/// An extension's value decoded as `T`; a test failure naming the extension otherwise.
pub fn extension_value<T: rasn::Decode>(extension: &Extension) -> T {
    rasn::der::decode(&extension.extn_value)
        .unwrap_or_else(|e| panic!("extension {}: {e}", extension.extn_id))
}

pub fn unix_of(time: &Time) -> i64 {
    match time {
        Time::Utc(t) => t.timestamp(),
        Time::General(t) => t.timestamp(),
    }
}

/// A serial number as upper-case hex without leading zero bytes (as index.txt spells it
/// after [`normalise_serial`]).
pub fn serial_hex(serial: &rasn::types::Integer) -> String {
    let der = rasn::der::encode(serial).expect("encode INTEGER");
    // Tag, one length byte (serials are at most 20 bytes), content.
    normalise_serial(&hex::encode_upper(&der[2..]))
}

/// Upper-case hex without leading zeros, so serials from different sources compare.
pub fn normalise_serial(hex: &str) -> String {
    let upper = hex.trim().to_ascii_uppercase();
    let trimmed = upper.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    }
}

/// The URIs of a distribution point's fullName.
pub fn full_name_uris(name: Option<&DistributionPointName>) -> Vec<String> {
    match name {
        Some(DistributionPointName::FullName(names)) => names
            .iter()
            .map(|n| match n {
                GeneralName::Uri(uri) => uri.to_string(),
                other => panic!("fullName holds a non-URI name: {other:?}"),
            })
            .collect(),
        other => panic!("not a fullName distribution point: {other:?}"),
    }
}

/// The extensions of the PEM certificate at `path`.
pub fn certificate_extensions(path: &Path) -> Vec<Extension> {
    let pem = pem::parse(std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cert: rasn_pkix::Certificate =
        rasn::der::decode(pem.contents()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    cert.tbs_certificate
        .extensions
        .map(|e| e.to_vec())
        .unwrap_or_default()
}

/// The subjectKeyIdentifier of the PEM certificate at `path`.
pub fn subject_key_identifier(path: &Path) -> Vec<u8> {
    let extensions = certificate_extensions(path);
    let ski = find_extension(&extensions, ext::SUBJECT_KEY_IDENTIFIER).expect("subjectKeyIdentifier");
    extension_value::<SubjectKeyIdentifier>(ski).to_vec()
}

/// The fullName URIs of the CRL Distribution Points of the PEM certificate at `path`.
pub fn crl_distribution_point_uris(path: &Path) -> Vec<String> {
    let extensions = certificate_extensions(path);
    find_extension(&extensions, ext::CRL_DISTRIBUTION_POINTS)
        .map(|e| {
            extension_value::<CrlDistributionPoints>(e)
                .iter()
                .flat_map(|p| full_name_uris(p.distribution_point.as_ref()))
                .collect()
        })
        .unwrap_or_default()
}

/// One revokedCertificates entry.
#[derive(Debug)]
pub struct CrlEntryView {
    pub revoked_at: i64,
    pub extensions: Vec<Extension>,
}

impl CrlEntryView {
    pub fn reason(&self) -> Option<CrlReason> {
        find_extension(&self.extensions, ext::REASON_CODE).map(extension_value)
    }

    pub fn invalidity_date(&self) -> Option<i64> {
        find_extension(&self.extensions, ext::INVALIDITY_DATE)
            .map(|e| extension_value::<rasn::types::GeneralizedTime>(e).timestamp())
    }
}

/// A DER CRL, decoded.
#[derive(Debug)]
pub struct CrlView {
    /// The raw version value: 1 is v2.
    pub version: u64,
    pub this_update: i64,
    pub next_update: Option<i64>,
    pub extensions: Vec<Extension>,
    /// By [`normalise_serial`]d serial; a serial listed twice fails the test.
    pub entries: BTreeMap<String, CrlEntryView>,
    /// The tags of the TBSCertList fields as encoded, to tell an omitted
    /// revokedCertificates from an empty one (rasn decodes both as empty).
    pub tbs_field_tags: Vec<u8>,
}

impl CrlView {
    pub fn parse(der: &[u8]) -> CrlView {
        let crl: CertificateList = rasn::der::decode(der).unwrap_or_else(|e| panic!("not a DER CRL: {e}"));
        let tbs = crl.tbs_cert_list;
        let mut entries = BTreeMap::new();
        for entry in tbs.revoked_certificates {
            let serial = serial_hex(&entry.user_certificate);
            let view = CrlEntryView {
                revoked_at: unix_of(&entry.revocation_date),
                extensions: entry.crl_entry_extensions.map(|e| e.to_vec()).unwrap_or_default(),
            };
            assert!(
                entries.insert(serial.clone(), view).is_none(),
                "serial {serial} listed twice"
            );
        }
        CrlView {
            version: tbs.version.raw_value(),
            this_update: unix_of(&tbs.this_update),
            next_update: tbs.next_update.as_ref().map(unix_of),
            extensions: tbs.crl_extensions.map(|e| e.to_vec()).unwrap_or_default(),
            entries,
            tbs_field_tags: tbs_field_tags(der),
        }
    }

    /// Reads the DER CRL in the file at `path`.
    pub fn read(path: &Path) -> CrlView {
        CrlView::parse(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    pub fn extension(&self, arc: u32) -> Option<&Extension> {
        find_extension(&self.extensions, arc)
    }

    pub fn number(&self) -> u64 {
        let number: rasn::types::Integer =
            extension_value(self.extension(ext::CRL_NUMBER).expect("CRL Number"));
        u64::try_from(&number).expect("a CRL number that fits u64")
    }

    /// (critical, base CRL number) of the Delta CRL Indicator.
    pub fn delta_base(&self) -> Option<(bool, u64)> {
        self.extension(ext::DELTA_CRL_INDICATOR).map(|e| {
            let base: rasn::types::Integer = extension_value(e);
            (e.critical, u64::try_from(&base).expect("base fits u64"))
        })
    }

    /// (critical, keyIdentifier) of the Authority Key Identifier.
    pub fn authority_key_id(&self) -> Option<(bool, Option<Vec<u8>>)> {
        self.extension(ext::AUTHORITY_KEY_IDENTIFIER).map(|e| {
            let aki: AuthorityKeyIdentifier = extension_value(e);
            (e.critical, aki.key_identifier.map(|k| k.to_vec()))
        })
    }

    /// (critical, URIs) of the Freshest CRL extension.
    pub fn freshest_crl(&self) -> Option<(bool, Vec<String>)> {
        self.extension(ext::FRESHEST_CRL).map(|e| {
            let points: CrlDistributionPoints = extension_value(e);
            let uris = points
                .iter()
                .flat_map(|p| full_name_uris(p.distribution_point.as_ref()))
                .collect();
            (e.critical, uris)
        })
    }

    /// (critical, value) of the Issuing Distribution Point.
    pub fn issuing_distribution_point(&self) -> Option<(bool, IssuingDistributionPoint)> {
        self.extension(ext::ISSUING_DISTRIBUTION_POINT)
            .map(|e| (e.critical, extension_value(e)))
    }

    /// Whether the revokedCertificates field is encoded at all (RFC 5280 §5.1.2.6: an
    /// empty list is omitted, not sent as an empty SEQUENCE).
    pub fn has_revoked_certificates_field(&self) -> bool {
        // version, signature, issuer, thisUpdate, nextUpdate, [revokedCertificates,] [0].
        self.tbs_field_tags.get(5) == Some(&0x30)
    }
}

/// The tags of the TBSCertList fields (read with the project's bounds-checked DER reader,
/// which is not under test here).
fn tbs_field_tags(crl: &[u8]) -> Vec<u8> {
    use ocsp_edge::der;
    let mut outer = der::enter(crl, der::SEQUENCE).expect("CRL SEQUENCE");
    let tbs = outer.expect(der::SEQUENCE).expect("TBSCertList");
    let mut fields = der::Reader::new(tbs.content);
    let mut tags = Vec::new();
    while !fields.is_empty() {
        tags.push(fields.next_element().expect("TBSCertList field").tag);
    }
    tags
}
