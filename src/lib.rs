//! ocsp-edge: pre-signed OCSP and CRLs served from verified snapshots.
//!
//! The workspace is split so that the architecture is what the compiler enforces
//! (docs/architecture.md draws the graph):
//! - `ocsp-edge-core` ([`der`], [`model`], [`time`], [`pki`], [`ocsp`], [`crl`],
//!   [`snapshot`], [`responder`], [`units`], [`backoff`]): the protocol; no tokio, hyper, HTTP client,
//!   configuration loader or metrics.
//! - `ocsp-edge-transport` ([`http_client`], [`s3`]): the outbound HTTP and S3 client.
//! - `ocsp-edge-publisher` ([`publish`]): turns a CA's records into a signed snapshot.
//! - `ocsp-edge-server` ([`server`], [`served`], [`sync`], [`cache`], [`config`]): the
//!   edge responder.
//! - this crate: the `ocsp-edge` binary that wires them, [`demo`] and [`inspect`]. It
//!   re-exports every module under the path it had before the split, so tests, benches
//!   and fuzz targets name them as `ocsp_edge::snapshot`, `ocsp_edge::publish`, ...

#[doc(hidden)]
pub use ocsp_edge_core::fuzzing;
pub use ocsp_edge_core::{backoff, crl, der, model, ocsp, pki, responder, snapshot, time, units};
pub use ocsp_edge_publisher::publish;
pub use ocsp_edge_server::{cache, config, served, server, sync};
pub use ocsp_edge_transport::{http_client, s3};

pub mod demo;
pub mod inspect;
