//! ocsp-edge: pre-signed OCSP (and, later, CRLs) served from verified snapshots.
//!
//! The crate is split so that the architecture shows in the layout:
//! - [`model`], [`time`], [`der`], [`units`], [`backoff`]: vocabulary shared by everything; no I/O.
//! - [`pki`]: certificates and signing keys; no I/O.
//! - [`ocsp`]: decoding requests and encoding responses; bytes and `now` in, bytes out.
//! - [`snapshot`]: the snapshot file format, its manifest and the directory store.
//! - [`publish`]: turns a CA's records into a signed snapshot (runs next to the CA).
//! - [`responder`]: answers one OCSP request from a snapshot; no I/O.
//! - [`served`]: what a running responder holds: the served snapshot (arc-swap), the
//!   anti-rollback floor, the directory poller, the hub's change history.
//! - [`metrics`]: the responder's Prometheus metrics.
//! - [`server`]: the hyper/tokio adapter at the edge, plus admin endpoints.
//! - [`sync`]: replication: feeds the responder's snapshot directory from its sources.
//! - [`cache`]: the cache tier: a responder holding a bounded cache of responses read
//!   through from hubs, kept consistent by their change feed.
//! - [`config`], [`demo`]: the typed configuration and the zero-configuration demo.
//! - [`http_client`]: the one outbound HTTP client builder (sources, hubs, S3).
//!
//! Imports go one way (checked by `arch_check.py`, see docs/architecture.md): the core
//! (`time`, `model`, `der`, `oids`, `pki`, `ocsp`, `crl`, `snapshot`, `responder`)
//! imports nothing else; `publish` only the core and `s3`'s configuration; on the edge,
//! `s3`, `http_client` → `config` → `cache` → `metrics` → `served` → `sync` → `server`.
//!
//! Only `server`, `served`, `sync`, `cache`, `s3`, `snapshot::store`, `publish` (its file reading) and the binary touch
//! files, sockets or the clock.

pub mod backoff;
pub mod cache;
pub mod config;
pub mod crl;
pub mod demo;
pub mod der;
#[doc(hidden)]
pub mod fuzzing;
pub mod http_client;
pub mod inspect;
pub mod metrics;
pub mod model;
pub mod ocsp;
pub mod oids;
pub mod pki;
pub mod publish;
pub mod responder;
pub mod s3;
pub mod served;
pub mod server;
pub mod snapshot;
pub mod sync;
pub mod time;
pub mod units;

#[cfg(test)]
mod testing;
