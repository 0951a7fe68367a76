//! The cache tier: a responder that holds no snapshot, only a bounded cache of verified
//! responses read through from hub responders, kept consistent with the hubs by their
//! change feed.
//!
//! - [`entry`]: the cache key (the whole CertID), what an entry holds, how long it may
//!   live (never past nextUpdate) and whether a fill may be cached (the admission rule).
//! - [`feed`]: the `/changes` wire format, the hub's bounded history of status changes,
//!   and the cache's plan for one feed answer (which keys to invalidate, what to
//!   acknowledge). Both sides of the protocol live here so they cannot drift apart.
//! - [`gate`]: the acknowledged hub sequence, and the lock that orders "invalidate, then
//!   acknowledge" against "check the sequence, then insert".
//! - [`tier`]: the I/O: the moka cache, fills from hubs over HTTP with failover, the
//!   long-polling change-feed task, metrics and readiness.
//!
//! The correctness property: once the cache acknowledges hub sequence B, it never serves
//! a status older than B's for any certificate whose status changed up to B. Everything
//! here is arranged around it; see [`gate`] for the ordering argument.
//!
//! This module owns the cache's contents and its view of the hubs. It must never cache
//! or serve a response it has not verified ([`ocsp_edge_core::ocsp::verify_response`]) or one past its
//! nextUpdate, and never make an HTTP-level decision (that is `server::cache_mode`'s).

pub mod entry;
pub mod feed;
pub mod gate;
pub mod metrics;
pub mod tier;

pub use entry::{CacheKey, Entry};
pub use metrics::CacheMetrics;
pub use tier::CacheTier;
