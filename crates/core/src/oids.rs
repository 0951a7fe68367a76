//! Object identifier content octets (what follows tag and length) used across the crate.
//! rasn ships none for OCSP and CRL extensions, and comparing raw octets is cheapest.

pub const SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];

pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub const CURVE_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub const CURVE_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub const ED25519: &[u8] = &[0x2b, 0x65, 0x70];

pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
pub const RSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
pub const RSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
pub const RSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];

pub const EXT_SUBJECT_KEY_ID: &[u8] = &[0x55, 0x1d, 0x0e];
pub const EXT_AUTHORITY_KEY_ID: &[u8] = &[0x55, 0x1d, 0x23];
pub const EXT_CRL_NUMBER: &[u8] = &[0x55, 0x1d, 0x14];
pub const EXT_REASON_CODE: &[u8] = &[0x55, 0x1d, 0x15];
pub const EXT_INVALIDITY_DATE: &[u8] = &[0x55, 0x1d, 0x18];
pub const EXT_DELTA_CRL_INDICATOR: &[u8] = &[0x55, 0x1d, 0x1b];
pub const EXT_ISSUING_DISTRIBUTION_POINT: &[u8] = &[0x55, 0x1d, 0x1c];
pub const EXT_FRESHEST_CRL: &[u8] = &[0x55, 0x1d, 0x2e];
pub const EXT_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
pub const EXT_EXTENDED_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x25];
pub const KP_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
pub const OCSP_NOCHECK: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05];
pub const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];
pub const OCSP_NONCE: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];

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
        assert_eq!(super::EXT_BASIC_CONSTRAINTS, oid_content(&[2, 5, 29, 19]));
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
