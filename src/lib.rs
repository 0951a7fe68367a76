//! ocsp-edge: pre-signed OCSP (and, later, CRLs) served from verified snapshots.
//!
//! The crate is split so that the architecture shows in the layout:
//! - [`model`], [`time`], [`der`]: vocabulary shared by everything; no I/O.
//! - [`pki`]: certificates and signing keys; no I/O.
//! - [`ocsp`]: decoding requests and encoding responses; bytes and `now` in, bytes out.
//! - [`snapshot`]: the snapshot file format, its manifest and the directory store.
//! - [`publish`]: turns a CA's records into a signed snapshot (runs next to the CA).
//! - [`responder`]: answers one OCSP request from a snapshot; no I/O.
//! - [`server`]: the hyper/tokio adapter at the edge, plus admin endpoints and metrics.
//! - [`sync`]: replication: feeds the responder's snapshot directory from its sources.
//! - [`cache`]: the cache tier: a responder holding a bounded cache of responses read
//!   through from hubs, kept consistent by their change feed.
//! - [`config`], [`demo`]: the typed configuration and the zero-configuration demo.
//!
//! Only `server`, `snapshot::store`, `publish` (its file reading) and the binary touch
//! files, sockets or the clock.

pub mod cache;
pub mod config;
pub mod crl;
pub mod demo;
pub mod der;
#[doc(hidden)]
pub mod fuzzing;
pub mod http_client;
pub mod inspect;
pub mod model;
pub mod ocsp;
pub mod oids;
pub mod pki;
pub mod publish;
pub mod responder;
pub mod s3;
pub mod server;
pub mod snapshot;
pub mod sync;
pub mod time;

#[cfg(test)]
mod testing;
