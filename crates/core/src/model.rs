//! The revocation state of one certificate, as the CA's records describe it.
//!
//! Owns the vocabulary shared by the publisher's inputs (index.txt, JSON Lines), the
//! OCSP encoder and (later) the CRL encoder. Pure data: no parsing of files, no I/O.

use crate::time::UnixTime;
use std::fmt;

/// A certificate serial number as the *content octets* of its DER INTEGER: minimal
/// two's-complement big-endian, so a value with the top bit set carries a leading 0x00.
/// Serials order numerically (shorter first, then bytewise), which is also the order of
/// the snapshot's lookup tables.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Serial(Vec<u8>);

impl Ord for Serial {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.len(), &self.0).cmp(&(other.0.len(), &other.0))
    }
}

impl PartialOrd for Serial {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The longest serial ocsp-edge stores. RFC 5280 §4.1.2.2 allows 20 octets of value; one
/// more for the sign byte, and a little slack for non-conforming legacy CAs.
pub const MAX_SERIAL_LEN: usize = 23;

impl Serial {
    /// From the content octets of a DER INTEGER, normalising non-minimal encodings.
    /// Returns `None` for an empty, negative or over-long value.
    pub fn from_der_content(bytes: &[u8]) -> Option<Self> {
        Self::minimal_der_content(bytes).map(|content| Serial(content.to_vec()))
    }

    /// The part of DER INTEGER content `bytes` that [`Serial::from_der_content`] keeps
    /// (redundant leading zero octets dropped), without copying it; `None` when no serial
    /// can have that shape (empty, negative, or over [`MAX_SERIAL_LEN`] octets).
    pub(crate) fn minimal_der_content(bytes: &[u8]) -> Option<&[u8]> {
        if bytes.is_empty() || bytes[0] & 0x80 != 0 {
            return None;
        }
        let mut start = 0;
        while start + 1 < bytes.len() && bytes[start] == 0 && bytes[start + 1] & 0x80 == 0 {
            start += 1;
        }
        let content = &bytes[start..];
        (content.len() <= MAX_SERIAL_LEN).then_some(content)
    }

    /// From an unsigned big-endian magnitude (what hex in index.txt spells).
    pub fn from_unsigned(magnitude: &[u8]) -> Option<Self> {
        let first = magnitude.iter().position(|&b| b != 0);
        let trimmed = match first {
            Some(i) => &magnitude[i..],
            None => &[0u8][..],
        };
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if trimmed[0] & 0x80 != 0 {
            content.push(0);
        }
        content.extend_from_slice(trimmed);
        (content.len() <= MAX_SERIAL_LEN).then_some(Serial(content))
    }

    /// From hexadecimal digits (either case, odd length allowed), as index.txt writes them.
    pub fn from_hex(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let padded = if text.len() % 2 == 1 {
            format!("0{text}")
        } else {
            text.to_string()
        };
        Serial::from_unsigned(&hex::decode(padded).ok()?)
    }

    /// The DER INTEGER content octets: minimal, non-negative, at most [`MAX_SERIAL_LEN`]
    /// long. This is what a CertID's serialNumber and the snapshot's tables hold.
    pub fn as_der_content(&self) -> &[u8] {
        &self.0
    }

    /// Uppercase hex of the magnitude, without a sign byte: the index.txt spelling.
    pub fn to_hex(&self) -> String {
        let magnitude = match self.0.as_slice() {
            [0, rest @ ..] if !rest.is_empty() => rest,
            all => all,
        };
        hex::encode_upper(magnitude)
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// CRLReason (RFC 5280 §5.3.1). Value 7 is unused by the standard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RevocationReason {
    /// No more specific reason applies. RFC 5280 §5.3.1 prefers omitting reasonCode
    /// (`reason: None`) to sending this value.
    Unspecified = 0,
    /// The subject's private key is known or suspected to be compromised.
    KeyCompromise = 1,
    /// The issuing CA's key is known or suspected to be compromised.
    CaCompromise = 2,
    /// The subject's name or other information changed; no compromise is suspected.
    AffiliationChanged = 3,
    /// A new certificate replaces this one; no compromise is suspected.
    Superseded = 4,
    /// The certificate is no longer needed; no compromise is suspected.
    CessationOfOperation = 5,
    /// Suspended, not revoked: may later be released (the only reversible reason). The
    /// CA/Browser Forum Baseline Requirements forbid it for TLS certificates.
    CertificateHold = 6,
    /// Delta CRLs only: an entry that was on hold is released (RFC 5280 §5.2.4).
    RemoveFromCrl = 8,
    /// A privilege granted to the subject was withdrawn.
    PrivilegeWithdrawn = 9,
    /// The attribute authority was compromised (attribute certificates).
    AaCompromise = 10,
}

impl RevocationReason {
    /// The CRLReason ENUMERATED value, as encoded in reasonCode and in the snapshot.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason for a CRLReason value; `None` for 7 and for anything above 10, which
    /// RFC 5280 does not define, so they are refused rather than passed on.
    pub fn from_code(code: u8) -> Option<Self> {
        use RevocationReason::*;
        Some(match code {
            0 => Unspecified,
            1 => KeyCompromise,
            2 => CaCompromise,
            3 => AffiliationChanged,
            4 => Superseded,
            5 => CessationOfOperation,
            6 => CertificateHold,
            8 => RemoveFromCrl,
            9 => PrivilegeWithdrawn,
            10 => AaCompromise,
            _ => return None,
        })
    }

    /// Accepts OpenSSL's spellings (`keyCompromise`, `CACompromise`, ...) case-insensitively,
    /// with or without `_`/`-` separators (`key_compromise`, `cessation-of-operation`).
    pub fn from_name(name: &str) -> Option<Self> {
        use RevocationReason::*;
        let folded: String = name
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect();
        Some(match folded.as_str() {
            "unspecified" => Unspecified,
            "keycompromise" => KeyCompromise,
            "cacompromise" => CaCompromise,
            "affiliationchanged" => AffiliationChanged,
            "superseded" => Superseded,
            "cessationofoperation" => CessationOfOperation,
            "certificatehold" => CertificateHold,
            "removefromcrl" => RemoveFromCrl,
            "privilegewithdrawn" => PrivilegeWithdrawn,
            "aacompromise" => AaCompromise,
            _ => return None,
        })
    }

    /// OpenSSL's spelling, as index.txt and `openssl ca -crl_reason` write it; round-trips
    /// through [`RevocationReason::from_name`].
    pub fn name(self) -> &'static str {
        use RevocationReason::*;
        match self {
            Unspecified => "unspecified",
            KeyCompromise => "keyCompromise",
            CaCompromise => "CACompromise",
            AffiliationChanged => "affiliationChanged",
            Superseded => "superseded",
            CessationOfOperation => "cessationOfOperation",
            CertificateHold => "certificateHold",
            RemoveFromCrl => "removeFromCRL",
            PrivilegeWithdrawn => "privilegeWithdrawn",
            AaCompromise => "AACompromise",
        }
    }
}

/// What the CA says about one certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Issued and not revoked (RFC 6960 §2.2 `good`). Only for serials the CA issued: a
    /// serial the CA has no record of is refused, never answered `good`.
    Good,
    /// Revoked at `at` (revocationTime, RFC 6960 §4.2.1; CRL entry revocationDate).
    Revoked {
        /// When the CA revoked it. Responses and CRLs say this time, not when we learned of it.
        at: UnixTime,
        /// `None` when the CA recorded no reason (RFC 5280: then omit reasonCode).
        reason: Option<RevocationReason>,
        /// When the key is known or suspected to have been compromised (invalidityDate).
        invalidity: Option<UnixTime>,
    },
}

/// One certificate's record from the CA's database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertRecord {
    /// Which certificate, under the issuer whose records these are; unique per issuer.
    pub serial: Serial,
    /// Good or revoked, with the revocation details.
    pub status: CertStatus,
    /// The certificate's notAfter, when the input says it.
    pub not_after: Option<UnixTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_from_hex_adds_sign_byte_and_strips_zeros() {
        let s = Serial::from_hex("00FF").unwrap();
        assert_eq!(s.as_der_content(), &[0x00, 0xFF]);
        assert_eq!(s.to_hex(), "FF");
        let s = Serial::from_hex("1001").unwrap();
        assert_eq!(s.as_der_content(), &[0x10, 0x01]);
        assert_eq!(Serial::from_hex("abc").unwrap().as_der_content(), &[0x0a, 0xbc]);
        assert!(Serial::from_hex("").is_none());
        assert!(Serial::from_hex("xyz").is_none());
        assert!(Serial::from_hex(&"11".repeat(24)).is_none());
    }

    #[test]
    fn serials_order_numerically() {
        let mut serials: Vec<Serial> = ["0100", "FF", "01", "7F", "80"]
            .iter()
            .map(|s| Serial::from_hex(s).unwrap())
            .collect();
        serials.sort();
        let hex: Vec<String> = serials.iter().map(Serial::to_hex).collect();
        assert_eq!(hex, ["01", "7F", "80", "FF", "0100"]);
    }

    #[test]
    fn serial_from_der_normalises_non_minimal_integers() {
        let s = Serial::from_der_content(&[0x00, 0x00, 0x7f]).unwrap();
        assert_eq!(s.as_der_content(), &[0x7f]);
        let s = Serial::from_der_content(&[0x00, 0x00, 0x80]).unwrap();
        assert_eq!(s.as_der_content(), &[0x00, 0x80]);
        assert!(Serial::from_der_content(&[0x80]).is_none(), "negative");
        assert!(Serial::from_der_content(&[]).is_none());
    }

    #[test]
    fn reasons_accept_openssl_and_snake_case_spellings() {
        assert_eq!(
            RevocationReason::from_name("keyCompromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            RevocationReason::from_name("CACompromise"),
            Some(RevocationReason::CaCompromise)
        );
        assert_eq!(
            RevocationReason::from_name("cessation_of_operation"),
            Some(RevocationReason::CessationOfOperation)
        );
        assert_eq!(RevocationReason::from_name("bogus"), None);
        for code in 0..=10 {
            if let Some(r) = RevocationReason::from_code(code) {
                assert_eq!(RevocationReason::from_name(r.name()), Some(r));
                assert_eq!(r.code(), code);
            }
        }
    }
}
