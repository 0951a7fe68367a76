//! Object identifier content octets (what follows tag and length) used across the crate.
//! rasn ships none for OCSP and CRL extensions, and comparing raw octets is cheapest.
//!
//! Private to the core: every decision that compares an OID (which hash, which key, which
//! extension) is made here, so no other crate needs the raw octets. Each constant's doc
//! gives its dotted form, and a test checks the octets against it.

/// 1.3.14.3.2.26, id-sha1: only as a CertID hash, which RFC 5019 §2.1.1 has clients use.
pub(crate) const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// 2.16.840.1.101.3.4.2.1, id-sha256: the other CertID hash accepted.
pub(crate) const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

/// 1.2.840.10045.2.1, id-ecPublicKey (RFC 5480 §2.1.1); the curve is a parameter.
pub(crate) const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// 1.2.840.10045.3.1.7, secp256r1 (RFC 5480 §2.1.1.1).
pub(crate) const CURVE_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// 1.3.132.0.34, secp384r1 (RFC 5480 §2.1.1.1).
pub(crate) const CURVE_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// 1.2.840.113549.1.1.1, rsaEncryption (RFC 8017 appendix C).
pub(crate) const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// 1.3.101.112, id-Ed25519: key and signature algorithm at once (RFC 8410 §3).
pub(crate) const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// 1.2.840.10045.4.3.2, ecdsa-with-SHA256 (RFC 5758 §3.2), parameters absent.
pub(crate) const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
/// 1.2.840.10045.4.3.3, ecdsa-with-SHA384 (RFC 5758 §3.2), parameters absent.
pub(crate) const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
/// 1.2.840.113549.1.1.11, sha256WithRSAEncryption (RFC 4055 §5), NULL parameters.
pub(crate) const RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
/// 1.2.840.113549.1.1.12, sha384WithRSAEncryption (RFC 4055 §5), NULL parameters.
pub(crate) const RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
/// 1.2.840.113549.1.1.13, sha512WithRSAEncryption (RFC 4055 §5), NULL parameters.
pub(crate) const RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];

/// 2.5.29.14, subjectKeyIdentifier (RFC 5280 §4.2.1.2).
pub(crate) const EXT_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
/// 2.5.29.35, authorityKeyIdentifier (RFC 5280 §4.2.1.1, §5.2.1).
pub(crate) const EXT_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
/// 2.5.29.20, cRLNumber (RFC 5280 §5.2.3).
pub(crate) const EXT_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
/// 2.5.29.21, CRL entry reasonCode (RFC 5280 §5.3.1).
pub(crate) const EXT_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
/// 2.5.29.24, CRL entry invalidityDate (RFC 5280 §5.3.2).
pub(crate) const EXT_INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];
/// 2.5.29.27, deltaCRLIndicator (RFC 5280 §5.2.4).
pub(crate) const EXT_DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
/// 2.5.29.28, issuingDistributionPoint (RFC 5280 §5.2.5): how a partitioned CRL says which
/// partition it is.
pub(crate) const EXT_ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
/// 2.5.29.46, freshestCRL (RFC 5280 §5.2.6): where a full CRL points at its deltas.
pub(crate) const EXT_FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
/// 2.5.29.37, extKeyUsage (RFC 5280 §4.2.1.12).
pub(crate) const EXT_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
/// 1.3.6.1.5.5.7.3.9, id-kp-OCSPSigning: a delegated responder certificate must carry it
/// (RFC 6960 §4.2.2.2).
pub(crate) const KP_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
/// 1.3.6.1.5.5.7.48.1.5, id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
pub(crate) const OCSP_NOCHECK: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];
/// 1.3.6.1.5.5.7.48.1.1, id-pkix-ocsp-basic: the only responseType produced (RFC 6960
/// §4.2.1).
pub(crate) const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
/// 1.3.6.1.5.5.7.48.1.2, id-pkix-ocsp-nonce (RFC 6960 §4.4.1, RFC 9654).
pub(crate) const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];

#[cfg(test)]
mod tests {
    use crate::der::oid_content;

    #[test]
    fn constants_match_their_dotted_form() {
        assert_eq!(super::SHA1, oid_content(&[1, 3, 14, 3, 2, 26]));
        assert_eq!(super::SHA256, oid_content(&[2, 16, 840, 1, 101, 3, 4, 2, 1]));
        assert_eq!(super::EC_PUBLIC_KEY, oid_content(&[1, 2, 840, 10045, 2, 1]));
        assert_eq!(super::CURVE_P256, oid_content(&[1, 2, 840, 10045, 3, 1, 7]));
        assert_eq!(super::CURVE_P384, oid_content(&[1, 3, 132, 0, 34]));
        assert_eq!(super::RSA_ENCRYPTION, oid_content(&[1, 2, 840, 113549, 1, 1, 1]));
        assert_eq!(super::ED25519, oid_content(&[1, 3, 101, 112]));
        assert_eq!(super::ECDSA_SHA256, oid_content(&[1, 2, 840, 10045, 4, 3, 2]));
        assert_eq!(super::ECDSA_SHA384, oid_content(&[1, 2, 840, 10045, 4, 3, 3]));
        assert_eq!(super::RSA_SHA256, oid_content(&[1, 2, 840, 113549, 1, 1, 11]));
        assert_eq!(super::RSA_SHA384, oid_content(&[1, 2, 840, 113549, 1, 1, 12]));
        assert_eq!(super::RSA_SHA512, oid_content(&[1, 2, 840, 113549, 1, 1, 13]));
        assert_eq!(super::EXT_SUBJECT_KEY_ID, oid_content(&[2, 5, 29, 14]));
        assert_eq!(super::EXT_AUTHORITY_KEY_ID, oid_content(&[2, 5, 29, 35]));
        assert_eq!(super::EXT_CRL_NUMBER, oid_content(&[2, 5, 29, 20]));
        assert_eq!(super::EXT_REASON_CODE, oid_content(&[2, 5, 29, 21]));
        assert_eq!(super::EXT_INVALIDITY_DATE, oid_content(&[2, 5, 29, 24]));
        assert_eq!(super::EXT_DELTA_CRL_INDICATOR, oid_content(&[2, 5, 29, 27]));
        assert_eq!(
            super::EXT_ISSUING_DISTRIBUTION_POINT,
            oid_content(&[2, 5, 29, 28])
        );
        assert_eq!(super::EXT_FRESHEST_CRL, oid_content(&[2, 5, 29, 46]));
        assert_eq!(super::EXT_EXTENDED_KEY_USAGE, oid_content(&[2, 5, 29, 37]));
        assert_eq!(super::KP_OCSP_SIGNING, oid_content(&[1, 3, 6, 1, 5, 5, 7, 3, 9]));
        assert_eq!(super::OCSP_NOCHECK, oid_content(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 5]));
        assert_eq!(super::OCSP_BASIC, oid_content(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 1]));
        assert_eq!(super::OCSP_NONCE, oid_content(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 2]));
    }
}
