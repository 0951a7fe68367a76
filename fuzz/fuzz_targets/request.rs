//! The OCSP request decoder as the server runs it (in place, rasn as the fallback), then
//! the lookup of what it decoded in the demo snapshot.
//!
//! Properties: no panic; the borrowing and owning entry points agree; an accepted request
//! re-encodes to one that decodes the same; a lookup that finds a response builds it at
//! the length it announces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::ocsp::{decode_request, encode_request, with_request};
use ocsp_edge_fuzz_common::published;

fuzz_target!(|data: &[u8]| {
    let decoded = decode_request(data);
    assert_eq!(with_request(data, |request| request.owned()), decoded);
    let Ok(request) = decoded else { return };
    let nonce = request.has_nonce.then_some(&[7u8; 16][..]);
    let again = decode_request(&encode_request(&request.cert_id, nonce));
    assert_eq!(
        again.as_ref(),
        Ok(&request),
        "re-encoded request decodes differently"
    );
    if let Ok(found) = published().snapshot.lookup(&request.cert_id) {
        assert_eq!(found.serial, request.cert_id.serial.as_der_content());
        assert_eq!(found.response().len(), found.response_len());
    }
});
