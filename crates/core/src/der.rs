//! A minimal, bounds-checked DER reader and the few writers the encoders need.
//!
//! rasn does the structural decoding and encoding. This module exists for what rasn
//! cannot give back: the *exact* bytes of a field as they appear in the input (a
//! certificate's tbsCertificate and subject Name must be hashed and verified as
//! received, never re-encoded), and cheap length-prefixing when assembling responses
//! from pre-encoded pieces. It never panics on hostile input: every read is checked.

/// A DER universal or context tag byte, as it appears on the wire (low-tag-number form).
pub type Tag = u8;

/// SEQUENCE and SEQUENCE OF (universal 16, constructed bit set: X.690 §8.9, §8.10).
pub const SEQUENCE: Tag = 0x30;
/// INTEGER (universal 2): two's-complement big-endian content, minimal in DER (X.690 §8.3).
pub const INTEGER: Tag = 0x02;
/// BIT STRING (universal 3): the first content octet counts the unused trailing bits, so
/// a signature or key is the content *after* that octet (X.690 §8.6).
pub const BIT_STRING: Tag = 0x03;
/// OCTET STRING (universal 4): opaque bytes; extension values are wrapped in one.
pub const OCTET_STRING: Tag = 0x04;
/// OBJECT IDENTIFIER (universal 6): the content octets encode the arcs base 128 (X.690 §8.19).
pub const OID: Tag = 0x06;

/// One element: its tag, its content, and the whole encoding (header + content).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Element<'a> {
    /// The identifier octet: one of the constants above or a context tag (`0xa0 | n`).
    pub tag: Tag,
    /// The content octets only, without tag and length.
    pub content: &'a [u8],
    /// Tag, length and content exactly as received: what a signature covers, so hash and
    /// verify this, never a re-encoding.
    pub raw: &'a [u8],
}

/// Reads elements one after another from a byte slice.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

/// Why bytes are not the DER this reader expected. Hostile input ends in one of these,
/// never in a panic or an out-of-bounds read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DerError {
    /// The input ends inside a tag, a length or the content a length announced.
    #[error("truncated DER")]
    Truncated,
    /// The indefinite form (`0x80`, BER only) or a length of more than 4 octets (over
    /// 4 GiB, far beyond anything this service accepts).
    #[error("unsupported DER length form")]
    BadLength,
    /// A tag number of 31 or more (multi-octet identifier): nothing this crate reads uses one.
    #[error("multi-byte DER tags are not supported here")]
    HighTag,
    /// The element is present but is not the one the structure requires at this position.
    #[error("expected DER tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag {
        /// The tag the caller asked for.
        expected: Tag,
        /// The tag the input has.
        found: Tag,
    },
    /// Bytes follow the last element of a structure that must end there (DER has exactly
    /// one encoding; extra bytes would be unsigned smuggled data).
    #[error("trailing bytes after DER element")]
    Trailing,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the first byte of `input`; nothing is checked until read.
    pub fn new(input: &'a [u8]) -> Self {
        Reader { rest: input }
    }

    /// Whether every byte has been read: the loop condition for a SEQUENCE OF.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, whatever its tag.
    pub fn next_element(&mut self) -> Result<Element<'a>, DerError> {
        let input = self.rest;
        let (&tag, after_tag) = input.split_first().ok_or(DerError::Truncated)?;
        if tag & 0x1f == 0x1f {
            return Err(DerError::HighTag);
        }
        let (&first, after_len0) = after_tag.split_first().ok_or(DerError::Truncated)?;
        let (length, after_len) = if first < 0x80 {
            (first as usize, after_len0)
        } else {
            let count = (first & 0x7f) as usize;
            if count == 0 || count > 4 || after_len0.len() < count {
                return Err(DerError::BadLength);
            }
            let length = after_len0[..count]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | b as usize);
            (length, &after_len0[count..])
        };
        if after_len.len() < length {
            return Err(DerError::Truncated);
        }
        let header = input.len() - after_len.len();
        let element = Element {
            tag,
            content: &after_len[..length],
            raw: &input[..header + length],
        };
        self.rest = &after_len[length..];
        Ok(element)
    }

    /// The next element, which must carry `tag`.
    pub fn expect(&mut self, tag: Tag) -> Result<Element<'a>, DerError> {
        let element = self.next_element()?;
        if element.tag != tag {
            return Err(DerError::UnexpectedTag {
                expected: tag,
                found: element.tag,
            });
        }
        Ok(element)
    }

    /// Skips the next element if it carries `tag`; returns it if so.
    pub fn optional(&mut self, tag: Tag) -> Result<Option<Element<'a>>, DerError> {
        match self.rest.first() {
            Some(&t) if t == tag => self.next_element().map(Some),
            _ => Ok(None),
        }
    }

    /// The bytes not read yet.
    pub fn remaining(self) -> &'a [u8] {
        self.rest
    }

    /// Errors unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DerError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DerError::Trailing)
        }
    }
}

/// Parses `input` as exactly one element with `tag` and returns a reader over its content.
pub fn enter(input: &[u8], tag: Tag) -> Result<Reader<'_>, DerError> {
    let mut outer = Reader::new(input);
    let element = outer.expect(tag)?;
    outer.finish()?;
    Ok(Reader::new(element.content))
}

/// Appends a DER length to `out`, in the minimal form DER requires (X.690 §10.1).
pub(crate) fn write_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
        return;
    }
    let bytes = (length as u64).to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (8 - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends tag, length and the concatenation of `parts` to `out`.
pub(crate) fn write_element(out: &mut Vec<u8>, tag: Tag, parts: &[&[u8]]) {
    out.push(tag);
    write_length(out, parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// `tag, length, parts...` as a new vector.
pub fn element(tag: Tag, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 6);
    write_element(&mut out, tag, parts);
    out
}

/// Encodes a dotted OID's content octets (the inverse of [`oid_arcs`]); the tests check
/// the `oids` constants against their dotted forms with it.
pub(crate) fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, rest) = match arcs {
        [a, b, rest @ ..] => (a * 40 + b, rest),
        _ => return out,
    };
    for arc in std::iter::once(first).chain(rest.iter().copied()) {
        let mut chunk = Vec::new();
        let mut value = arc;
        chunk.push((value & 0x7f) as u8);
        value >>= 7;
        while value > 0 {
            chunk.push(0x80 | (value & 0x7f) as u8);
            value >>= 7;
        }
        out.extend(chunk.iter().rev());
    }
    out
}

/// The arcs of an OID given as its content octets: the inverse of [`oid_content`]. Best
/// effort on malformed input (an arc too large for 64 bits wraps, a truncated last arc is
/// dropped); never panics.
pub(crate) fn oid_arcs(content: &[u8]) -> Vec<u64> {
    let mut arcs = Vec::new();
    let mut value: u64 = 0;
    for &byte in content {
        value = (value << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                // The first subidentifier packs two arcs: 40 * first + second.
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend(std::iter::repeat_n(7u8, 0x80));
        let mut r = Reader::new(&long);
        let e = r.expect(OCTET_STRING).unwrap();
        assert_eq!(e.content.len(), 0x80);
        assert_eq!(e.raw.len(), 0x83);
        r.finish().unwrap();
    }

    #[test]
    fn rejects_truncation_and_wrong_tags() {
        assert_eq!(
            Reader::new(&[0x30, 0x05, 1, 2]).next_element(),
            Err(DerError::Truncated)
        );
        assert_eq!(Reader::new(&[0x30]).next_element(), Err(DerError::Truncated));
        assert_eq!(
            Reader::new(&[0x30, 0x85, 0, 0, 0, 0, 1]).next_element(),
            Err(DerError::BadLength)
        );
        assert!(matches!(
            Reader::new(&[0x02, 0x01, 0x00]).expect(SEQUENCE),
            Err(DerError::UnexpectedTag { .. })
        ));
        assert_eq!(
            enter(&[0x30, 0x00, 0x00], SEQUENCE).err(),
            Some(DerError::Trailing)
        );
    }

    #[test]
    fn writes_lengths_minimally() {
        let mut out = Vec::new();
        write_length(&mut out, 0x7f);
        write_length(&mut out, 0x80);
        write_length(&mut out, 0x1234);
        assert_eq!(out, vec![0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn decodes_oids_back_to_their_arcs() {
        for arcs in [
            vec![1, 3, 6, 1, 5, 5, 7, 48, 1, 2],
            vec![2, 16, 840, 1, 101, 3, 4, 2, 1],
            vec![2, 999, 3],
        ] {
            assert_eq!(oid_arcs(&oid_content(&arcs)), arcs);
        }
        assert_eq!(
            oid_arcs(&[0xff; 40]),
            Vec::<u64>::new(),
            "unterminated: nothing, no panic"
        );
    }

    #[test]
    fn encodes_oids() {
        // id-pkix-ocsp-basic 1.3.6.1.5.5.7.48.1.1
        assert_eq!(
            hex::encode(oid_content(&[1, 3, 6, 1, 5, 5, 7, 48, 1, 1])),
            "2b0601050507300101"
        );
        // sha256 2.16.840.1.101.3.4.2.1
        assert_eq!(
            hex::encode(oid_content(&[2, 16, 840, 1, 101, 3, 4, 2, 1])),
            "608648016503040201"
        );
    }
}
