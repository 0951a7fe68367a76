//! Where an OCSP request sits in a GET path (RFC 6960 Appendix A.1, RFC 5019 §5): the path
//! below the responder's prefix, base64 as clients and proxies really send it, and the
//! rule that decides whether a path holds a request at all ([`InPath`]).
//!
//! Pure protocol: the HTTP adapter routes with it, and the snapshot verifier uses the same
//! rule (`is_ocsp_request_path`) to refuse documents placed at a request's path. No I/O,
//! no allocation for paths of ordinary length.

use super::Refusal;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Base64 as clients send it in GET paths: standard alphabet, padding optional.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What follows the OCSP path prefix. The prefix without its trailing slash counts too:
/// clients POST to the AIA URL exactly as written (`http://host/ocsp`).
pub fn ocsp_remainder<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .or_else(|| (path == prefix.trim_end_matches('/')).then_some(""))
}

/// What a GET path below the OCSP prefix holds. This decides who answers it (see
/// docs/architecture.md, "Request path"):
///
/// - an **OCSP request path** — one whose remainder, or the text after one of its first
///   few '/', is base64 of exactly one DER SEQUENCE (what every OCSPRequest is) — is
///   answered by the responder alone, never by a document, so that nothing a snapshot
///   puts at such a path can stand in for the responder's answer;
/// - any other path is a document's if a snapshot has one there;
/// - else base64 (or a path too long to try) is a malformed OCSP request (RFC 6960 A.1:
///   the client meant OCSP), and anything else is not found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InPath<T> {
    /// An OCSP request: what using it gave.
    Request(Result<T, Refusal>),
    /// Not a request, but what an OCSP client may have sent: the refusal it gets when no
    /// document sits at the path.
    NotARequest(Refusal),
    /// Not base64 in any attempt: no OCSP client sent this.
    NotBase64,
}

/// `use_request` applied to the request in a GET path: the whole remainder, else the
/// text after one of its first few '/'. The first attempt that holds a request and is not
/// malformed wins; else the first that holds a request, else the first that might have
/// been one.
pub fn from_get_path<T>(
    rest: &str,
    limit: usize,
    use_request: impl Fn(&[u8]) -> Result<T, Refusal>,
) -> InPath<T> {
    let attempts =
        || std::iter::once(rest).chain(rest.match_indices('/').take(4).map(|(at, _)| &rest[at + 1..]));
    let mut best = InPath::NotBase64;
    for (number, attempt) in attempts().enumerate() {
        match decode_get(attempt, limit, &use_request) {
            InPath::Request(Err(Refusal::Malformed(why))) => {
                if !matches!(best, InPath::Request(_)) {
                    best = InPath::Request(Err(Refusal::Malformed(why)));
                }
            }
            InPath::Request(answer) => return InPath::Request(answer),
            InPath::NotARequest(refusal) => {
                if matches!(best, InPath::NotBase64) {
                    best = InPath::NotARequest(refusal);
                }
            }
            // Every attempt is a suffix of the first, so a byte that is never in a GET
            // path's base64 in the shortest fails them all: a document path such as
            // `crl/ec/3.crl` is ruled out without decoding it once per '/'.
            InPath::NotBase64 if number == 0 => {
                let shortest = attempts().last().unwrap_or(rest);
                if !shortest.bytes().all(in_base64_path) {
                    return best;
                }
            }
            InPath::NotBase64 => {}
        }
    }
    best
}

/// Paths up to this long are decoded on the stack (real requests are ~100 characters,
/// ~160 escaped); longer ones, up to the request limit, on the heap.
const STACK_PATH: usize = 512;

/// Decodes the base64 request in a GET path, tolerating what clients and proxies do to
/// it: percent-encoding (`%2F`, `%2B`, `%3D`), a `+` turned into a space, URL-safe
/// characters, and missing padding. The request is handed to `use_der` rather than
/// returned, so that the common case allocates nothing; `use_der` sees only a request,
/// that is exactly one DER SEQUENCE.
pub fn decode_get<T>(
    encoded: &str,
    limit: usize,
    use_der: impl FnOnce(&[u8]) -> Result<T, Refusal>,
) -> InPath<T> {
    // Nothing after the prefix: the URL POSTs go to, with no request to GET.
    if encoded.is_empty() {
        return InPath::NotBase64;
    }
    if encoded.len() > limit.saturating_mul(2) {
        return InPath::NotARequest(Refusal::TooLarge);
    }
    if encoded.len() <= STACK_PATH {
        decode_get_in(encoded, limit, &mut [0; scratch_len(STACK_PATH)], use_der)
    } else {
        decode_get_in(encoded, limit, &mut vec![0; scratch_len(encoded.len())], use_der)
    }
}

/// Room for a path of `len` characters unescaped, then the request decoded from it
/// (base64 yields at most 3 bytes per 4 characters, plus a partial group).
const fn scratch_len(len: usize) -> usize {
    len + len / 4 * 3 + 3
}

/// [`decode_get`] with `scratch` of at least [`scratch_len`] of the path.
fn decode_get_in<T>(
    encoded: &str,
    limit: usize,
    scratch: &mut [u8],
    use_der: impl FnOnce(&[u8]) -> Result<T, Refusal>,
) -> InPath<T> {
    let (unescaped, der) = scratch.split_at_mut(encoded.len());
    let normalised = if encoded.bytes().any(|b| altered_in_transit(&b)) {
        let len = unescape(encoded.as_bytes(), unescaped);
        &unescaped[..len]
    } else {
        encoded.as_bytes()
    };
    use base64::Engine;
    let Ok(len) = LENIENT_BASE64.decode_slice(normalised, der) else {
        return InPath::NotBase64;
    };
    if len > limit {
        return InPath::NotARequest(Refusal::TooLarge);
    }
    let der = &der[..len];
    if crate::der::enter(der, crate::der::SEQUENCE).is_err() {
        return InPath::NotARequest(Refusal::Malformed("GET path is not a DER SEQUENCE"));
    }
    InPath::Request(use_der(der))
}

/// Whether `path` is an OCSP request path below `prefix` (see [`InPath`]): one that only
/// the responder answers, whatever documents a snapshot holds.
pub(crate) fn is_ocsp_request_path(path: &str, prefix: &str, limit: usize) -> bool {
    ocsp_remainder(path, prefix)
        .is_some_and(|rest| matches!(from_get_path(rest, limit, |_| Ok(())), InPath::Request(_)))
}

/// Whether a byte may appear in a GET path's base64 as clients and proxies send it:
/// the standard or URL-safe alphabet, padding, an escape, or a space.
fn in_base64_path(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'+' | b'/' | b'=' | b'%' | b'-' | b'_' | b' ')
}

/// Whether a path byte is one that clients and proxies put in place of base64: an escape,
/// or a space or URL-safe character.
fn altered_in_transit(byte: &u8) -> bool {
    matches!(byte, b'%' | b' ' | b'-' | b'_')
}

/// Undoes what clients and proxies do to base64 in a path, writing into `out` (at least
/// as long as `path`): `%XX` escapes are decoded, a space or `-` becomes `+`, and `_`
/// becomes `/`. Returns the length written.
///
/// The runs of plain base64 between escapes are copied whole, and only the escapes go
/// through `percent_encoding`: byte by byte, its iterator was the largest user-space cost
/// of a GET in a profile.
fn unescape(path: &[u8], out: &mut [u8]) -> usize {
    let mut written = 0;
    let mut rest = path;
    while !rest.is_empty() {
        let run = rest.iter().position(altered_in_transit).unwrap_or(rest.len());
        out[written..written + run].copy_from_slice(&rest[..run]);
        written += run;
        rest = &rest[run..];
        let Some(&first) = rest.first() else { break };
        // A valid escape is three bytes; a malformed one is kept as it is.
        let valid_escape =
            first == b'%' && rest.len() >= 3 && rest[1].is_ascii_hexdigit() && rest[2].is_ascii_hexdigit();
        let escape = &rest[..if valid_escape { 3 } else { 1 }];
        for byte in percent_encoding::percent_decode(escape) {
            out[written] = match byte {
                b' ' | b'-' => b'+',
                b'_' => b'/',
                other => other,
            };
            written += 1;
        }
        rest = &rest[escape.len()..];
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request in `path`, copied out.
    fn decoded(path: &str, limit: usize) -> Result<Vec<u8>, Refusal> {
        match decode_get(path, limit, |der| Ok(der.to_vec())) {
            InPath::Request(der) => der,
            InPath::NotARequest(refusal) => Err(refusal),
            InPath::NotBase64 => Err(Refusal::Malformed("not base64")),
        }
    }

    #[test]
    fn get_decoding_tolerates_client_variants() {
        let der = vec![0x30, 0x03, 0xfb, 0xff, 0xbf];
        use base64::Engine;
        let standard = base64::engine::general_purpose::STANDARD.encode(&der); // "MAP7/78="
        assert!(standard.contains('/') && standard.contains('+') || standard.contains('/'));
        let variants = [
            standard.clone(),
            standard.trim_end_matches('=').to_string(),
            standard
                .replace('/', "%2F")
                .replace('+', "%2B")
                .replace('=', "%3D"),
            standard.replace('/', "%2f"),
            standard.replace('+', " "),
            standard.replace('+', "-").replace('/', "_"),
            standard.replace('/', "%2F").replace('+', "%20"),
        ];
        for variant in variants {
            assert_eq!(decoded(&variant, 1024).unwrap(), der, "{variant}");
        }
    }

    #[test]
    fn long_get_paths_decode_on_the_heap_like_short_ones() {
        use base64::Engine;
        for len in [
            STACK_PATH * 3 / 4 - 3,
            STACK_PATH * 3 / 4,
            STACK_PATH,
            3 * STACK_PATH,
        ] {
            let content: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let der = crate::der::element(crate::der::SEQUENCE, &[&content]);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&der);
            let escaped = encoded.replace('/', "%2F").replace('+', "%2B");
            for path in [&encoded, encoded.trim_end_matches('='), &escaped] {
                assert_eq!(decoded(path, 4096).unwrap(), der, "{len} bytes as {path}");
            }
        }
        assert_eq!(decoded(&"QUFB".repeat(1000), 2048), Err(Refusal::TooLarge));
    }

    #[test]
    fn unescaping_keeps_malformed_escapes_and_maps_escaped_specials() {
        let mut out = [0u8; 64];
        for (path, expected) in [
            ("ab%2Fcd%2bef%3D", "ab/cd+ef="),
            ("%", "%"),
            ("ab%", "ab%"),
            ("ab%2", "ab%2"),
            ("%zz%41", "%zzA"),
            ("%z%41", "%zA"),
            ("a-b_c d", "a+b/c+d"),
            ("%2D%5F%20", "+/+"),
            ("plain", "plain"),
        ] {
            let len = unescape(path.as_bytes(), &mut out);
            assert_eq!(std::str::from_utf8(&out[..len]).unwrap(), expected, "{path}");
        }
        // The same as decoding the whole path with percent_encoding, on every short
        // string over an alphabet of escapes, hex digits and specials.
        let alphabet = b"%2fFz-_ +A";
        let mut random = crate::testing::xorshift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let state = random();
            let len = (state % 9) as usize;
            let path: Vec<u8> = (0..len)
                .map(|i| alphabet[((state >> (8 + 5 * i)) % alphabet.len() as u64) as usize])
                .collect();
            let whole: Vec<u8> = percent_encoding::percent_decode(&path)
                .map(|b| match b {
                    b' ' | b'-' => b'+',
                    b'_' => b'/',
                    other => other,
                })
                .collect();
            let len = unescape(&path, &mut out);
            assert_eq!(&out[..len], &whole[..], "{:?}", String::from_utf8_lossy(&path));
        }
    }

    #[test]
    fn get_decoding_refuses_garbage_and_oversize() {
        assert!(matches!(decoded("", 1024), Err(Refusal::Malformed(_))));
        assert!(matches!(decoded("not*base64!", 1024), Err(Refusal::Malformed(_))));
        assert_eq!(decoded(&"QUFB".repeat(100), 64), Err(Refusal::TooLarge));
    }

    /// What a path holds, with a `use_request` that accepts any SEQUENCE.
    fn holds(path: &str) -> InPath<usize> {
        from_get_path(path, 1024, |der| Ok(der.len()))
    }

    #[test]
    fn only_base64_of_a_der_sequence_is_an_ocsp_request_path() {
        use base64::Engine;
        let request = crate::der::element(crate::der::SEQUENCE, &[&[0x02, 0x01, 0x07]]);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&request);
        let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&request);
        for path in [
            encoded.clone(),
            url_safe.clone(),
            format!("ocsp/{encoded}"),
            format!("a/b/{url_safe}"),
            // Not base64 as a whole, but the text after a '/' is.
            format!("ocsp.v1/{encoded}"),
            format!("a.b/c!/{url_safe}"),
            encoded.replace('/', "%2F"),
        ] {
            assert_eq!(holds(&path), InPath::Request(Ok(request.len())), "{path}");
        }
        // Base64, but not one SEQUENCE: a client's broken request, unless a document is there.
        let truncated = base64::engine::general_purpose::STANDARD.encode(&request[..4]);
        let trailing = base64::engine::general_purpose::STANDARD.encode([&request[..], &[0]].concat());
        for path in ["QUFB", "nothing-here", "crls/ec/0", &truncated, &trailing] {
            assert!(
                matches!(holds(path), InPath::NotARequest(Refusal::Malformed(_))),
                "{path}"
            );
        }
        assert_eq!(
            holds(&"QUFB".repeat(1000)),
            InPath::NotARequest(Refusal::TooLarge)
        );
        // Nothing an OCSP client sends: not an OCSP request path at all.
        for path in [
            "",
            "crl/ec.crl",
            "crl/ec/0.crl",
            "!!!notbase64",
            "%%%",
            "QUFB%ZZ",
            "ccadb.json",
        ] {
            assert_eq!(holds(path), InPath::NotBase64, "{path:?}");
        }
        // A request the responder finds malformed still belongs to the responder.
        assert_eq!(
            from_get_path(&encoded, 1024, |_| Err::<(), _>(Refusal::Malformed(
                "two requests"
            ))),
            InPath::Request(Err(Refusal::Malformed("two requests")))
        );
        assert!(is_ocsp_request_path(&format!("/ocsp/{encoded}"), "/ocsp/", 1024));
        assert!(is_ocsp_request_path(&format!("/{url_safe}"), "/", 1024));
        assert!(!is_ocsp_request_path(&format!("/crl/{encoded}"), "/ocsp/", 1024));
        assert!(!is_ocsp_request_path("/crl/ec.crl", "/", 1024));
    }

    #[test]
    fn the_prefix_matches_with_and_without_its_trailing_slash() {
        assert_eq!(ocsp_remainder("/ocsp/MEow", "/ocsp/"), Some("MEow"));
        assert_eq!(ocsp_remainder("/ocsp", "/ocsp/"), Some(""));
        assert_eq!(ocsp_remainder("/ocspx", "/ocsp/"), None);
        assert_eq!(ocsp_remainder("/anything", "/"), Some("anything"));
    }
}
