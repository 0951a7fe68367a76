//! The outbound side of ocsp-edge: the one HTTP client builder and presigned S3 requests,
//! shared by the publisher (uploads) and the edge (replication sources, cache hubs).
//! Depends on the core only (for snapshot file names); knows nothing of either side.
//!
//! - [`http_client`]: the one outbound HTTP client builder (rustls on ring, platform
//!   roots, user agent).
//! - [`s3`]: presigned S3 requests (rusty-s3) for the `s3` source and the publisher's
//!   upload, in the right order with conditional writes.

pub mod http_client;
pub mod s3;
