//! The ocsp-edge responder (the edge): serves OCSP and CRLs from verified snapshots or
//! from a cache tier, over hyper/tokio. Depends on the core and the transport, never on
//! the publisher (an edge holds no signing key and loads no PKCS#11 code).
//!
//! - [`server`]: the hyper/tokio adapter, plus admin endpoints; assembles a responder
//!   ([`server::build`]) and owns its HTTP metrics.
//! - [`served`]: what a running responder holds: the served snapshot (arc-swap), the
//!   anti-rollback floor, the directory poller, the hub's change history.
//! - [`sync`]: replication: feeds the responder's snapshot directory from its sources.
//! - [`cache`]: the cache tier: a bounded cache of responses read through from hubs,
//!   kept consistent by their change feed.
//! - [`config`]: the typed, validated configuration.
//!
//! Each component registers its own Prometheus metrics into the one registry that
//! [`server::build`] creates and passes in; there is no crate-wide metrics module.
//!
//! Imports go one way (checked by `arch_check.py`, see docs/architecture.md):
//! `config` → `cache` → `served` → `sync` → `server`.

pub mod cache;
pub mod config;
pub mod served;
pub mod server;
pub mod sync;
