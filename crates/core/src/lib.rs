//! The protocol core of ocsp-edge: everything that turns bytes and a time into bytes or a
//! typed outcome, with no runtime, socket, HTTP stack, configuration loader or metrics
//! registry. The publisher and the edge both build on it; it depends on neither.
//!
//! - [`time`], [`model`], [`der`], [`units`], [`backoff`]: vocabulary shared by everything; no I/O.
//! - [`pki`]: certificates and signing keys; no I/O.
//! - [`ocsp`]: decoding requests and encoding responses; bytes and `now` in, bytes out.
//! - [`crl`]: encoding and reading CRLs; the partition function; CRL URLs.
//! - [`snapshot`]: the snapshot file format, its manifest, verification and the directory
//!   store (file names, atomic never-overwriting writes).
//! - [`responder`]: answers one OCSP request from a snapshot; no I/O.
//!
//! # The public surface
//!
//! What other crates may use is exactly what rustdoc shows; every public item is
//! documented (`missing_docs` is on for this crate) and `unreachable_pub` keeps anything
//! crate-internal marked `pub(crate)`. The modules above are public; the submodules of
//! [`ocsp`], [`pki`] and [`snapshot`] are private, and each of those three re-exports,
//! with `pub use`, exactly the items the publisher, the server, the root crate's
//! re-exports (`ocsp_edge::snapshot`, ...) and the tests, benches and fuzz targets use
//! (`ocsp::encode_request`, `snapshot::read_metadata`), grouped and explained in its
//! module docs, as rustls and quinn-proto do. Kept inside:
//! - `oids`, private: OID comparisons are decided here, so no other crate needs the octets;
//! - the DER writers, OID helpers, response-template internals, snapshot file magic,
//!   entry and index-slot sizes, the manifest's signed-message construction and the
//!   signature checks behind `Certificate::verify_issued_by`, all `pub(crate)`;
//! - `fuzzing`, public but `#[doc(hidden)]`: entry points for `fuzz/` only, not an API.
//!
//! Only `snapshot::store` touches files, and only `snapshot::mapped` has `unsafe` code
//! (it memory-maps snapshot files). The crate is `#![deny(unsafe_code)]` with a single
//! `#[allow(unsafe_code)]` on that module rather than `#![forbid(unsafe_code)]`, because a
//! `forbid` cannot be lifted for one module; the allowed module is small and every
//! `unsafe` block in it carries its `SAFETY:` argument.

#![deny(unsafe_code)]

pub mod backoff;
pub mod crl;
pub mod der;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod ocsp;
mod oids;
pub mod pki;
pub mod responder;
pub mod snapshot;
pub mod time;
pub mod units;

#[cfg(test)]
mod testing;
