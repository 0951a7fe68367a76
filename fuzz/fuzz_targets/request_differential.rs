//! The in-place OCSP request decoder against rasn's, the authority it must agree with.
//!
//! Properties (those of the unit test `the_fast_path_agrees_with_rasn`, on inputs a
//! coverage-guided fuzzer finds): where both accept, they decode the same CertID and nonce
//! flag; where rasn accepts, the serving decoder answers exactly as rasn does. (The
//! in-place path does not validate the parts an answer ignores — requestorName, the
//! signature, per-request extensions — so it may accept what rasn refuses.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::fuzzing::{decode_request_in_place, decode_request_with_rasn};
use ocsp_edge::ocsp::decode_request;

fuzz_target!(|data: &[u8]| {
    let reference = decode_request_with_rasn(data);
    let fast = decode_request_in_place(data);
    if let (Ok(fast), Ok(reference)) = (&fast, &reference) {
        assert_eq!(fast, reference, "in-place and rasn decode differently");
    }
    if reference.is_ok() {
        assert_eq!(
            decode_request(data),
            reference,
            "the serving decoder disagrees with rasn"
        );
    }
});
