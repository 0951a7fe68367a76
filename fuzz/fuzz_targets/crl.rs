//! CRL import (`crl::read_verified`: a CA's own CRL read back, parsed before its
//! signature is checked) against both demo issuers.
//!
//! Properties: no panic; a CRL accepted for one issuer is refused for the other (its
//! issuer name and signature are checked).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocsp_edge::crl::read_verified;
use ocsp_edge_fuzz_common::issuers;

fuzz_target!(|data: &[u8]| {
    let [ec, rsa] = issuers();
    let for_ec = read_verified(data, ec);
    let for_rsa = read_verified(data, rsa);
    assert!(
        !(for_ec.is_ok() && for_rsa.is_ok()),
        "one CRL verified for two issuers"
    );
});
