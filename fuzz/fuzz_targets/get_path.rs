//! OCSP GET path decoding (RFC 6960 appendix A.1): percent-escapes, `+` turned into a
//! space, URL-safe characters, missing padding, and a prefix before the base64.
//!
//! Properties: no panic; the hand-written unescaping (runs copied whole, escapes decoded
//! one by one, on the stack or the heap by length) answers exactly as a plain reference
//! built from `percent_encoding` and `base64`: same request, same refusal.
#![no_main]

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use ocsp_edge::ocsp::{decode_request, from_get_path, InPath, OcspRequest, Refusal};

const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn reference(encoded: &str, limit: usize) -> InPath<OcspRequest> {
    if encoded.is_empty() {
        return InPath::NotBase64;
    }
    if encoded.len() > limit.saturating_mul(2) {
        return InPath::NotARequest(Refusal::TooLarge);
    }
    let normalised: Vec<u8> = percent_encoding::percent_decode(encoded.as_bytes())
        .map(|b| match b {
            b' ' | b'-' => b'+',
            b'_' => b'/',
            other => other,
        })
        .collect();
    let Ok(der) = LENIENT.decode(&normalised) else {
        return InPath::NotBase64;
    };
    if der.len() > limit {
        return InPath::NotARequest(Refusal::TooLarge);
    }
    if ocsp_edge::der::enter(&der, ocsp_edge::der::SEQUENCE).is_err() {
        return InPath::NotARequest(Refusal::Malformed("GET path is not a DER SEQUENCE"));
    }
    InPath::Request(decode_request(&der))
}

/// The whole remainder, then the text after each of its first four '/': the first
/// well-formed request wins, else the first request, else the first near-request.
fn reference_path(rest: &str, limit: usize) -> InPath<OcspRequest> {
    let attempts =
        std::iter::once(rest).chain(rest.match_indices('/').take(4).map(|(at, _)| &rest[at + 1..]));
    let answers: Vec<_> = attempts.map(|attempt| reference(attempt, limit)).collect();
    let position = answers
        .iter()
        .position(|a| matches!(a, InPath::Request(r) if !matches!(r, Err(Refusal::Malformed(_)))))
        .or_else(|| answers.iter().position(|a| matches!(a, InPath::Request(_))))
        .or_else(|| answers.iter().position(|a| matches!(a, InPath::NotARequest(_))));
    match position {
        Some(at) => answers.into_iter().nth(at).expect("position is in range"),
        None => InPath::NotBase64,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, path)) = data.split_first() else {
        return;
    };
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    // Limits from tiny to the default (a few KiB), so that both size checks are reached.
    let limit = usize::from(limit) * 16 + 1;
    assert_eq!(
        from_get_path(path, limit, decode_request),
        reference_path(path, limit),
        "{path:?}"
    );
});
