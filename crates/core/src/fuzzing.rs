//! Entry points for the coverage-guided fuzz targets in `fuzz/` (see fuzz/README.md), and
//! nothing else: each reaches a decoder that outside bytes reach in production but that
//! is not public on its own. They add no behaviour; hidden from the docs, not an API.

use crate::ocsp::{OcspRequest, Refusal};

/// The in-place OCSPRequest decoder alone (the serving path tries it first).
pub fn decode_request_in_place(der: &[u8]) -> Result<OcspRequest, Refusal> {
    crate::ocsp::decode_in_place(der).and_then(|request| request.owned())
}

/// The rasn OCSPRequest decoder alone (the authority the in-place one must agree with).
pub fn decode_request_with_rasn(der: &[u8]) -> Result<OcspRequest, Refusal> {
    crate::ocsp::decode_with_rasn(der)
}
