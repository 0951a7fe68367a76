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
