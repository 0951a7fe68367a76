//! Load-testing support for ocsp-edge: a cheap closed-loop HTTP/1.1 client, an OCSP
//! response checker, a latency histogram, request/feed preparation and the report table.
//!
//! Used by the `loadgen` and `ceiling` binaries and by `loadtest/run.sh`; see
//! loadtest/README.md.

pub mod check;
pub mod client;
pub mod cpu;
pub mod distribution;
pub mod histogram;
pub mod http;
pub mod prepare;
pub mod report;
pub mod targets;
