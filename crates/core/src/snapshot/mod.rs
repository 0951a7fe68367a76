//! Snapshots: the immutable, versioned, signed files a publisher writes and responders
//! serve from.
//!
//! - [`changes`]: the change list between two snapshots and the digest of it a manifest
//!   signs (no I/O).
//! - [`format`](mod@format): the binary layout and in-place lookups (no I/O).
//! - [`manifest`]: the signed manifest that names a snapshot and vouches for it (no I/O).
//! - [`verify`]: turns a manifest and mapped snapshot bytes into a [`verify::Snapshot`]
//!   that is safe to serve: signatures, trust, hash, structure. Nothing is served before
//!   this passes.
//! - [`documents`]: which documents (CRLs, the CCADB index) a snapshot may serve, and
//!   the issuer signature or binding each needs (no I/O).
//! - [`mapped`]: read-only memory maps of committed snapshot files (the only `unsafe`).
//! - [`store`]: the directory: atomic, never-overwriting writes and finding the newest.
//! - [`unrevoke`]: the edge's refusal of a snapshot that un-revokes without the
//!   publisher's recorded override (no I/O).

pub mod changes;
pub mod documents;
pub mod format;
pub mod manifest;
#[allow(unsafe_code)] // the one exception to the crate's `deny(unsafe_code)`: see its docs
pub mod mapped;
pub mod store;
pub mod unrevoke;
pub mod verify;

pub use verify::{verify_manifest, Snapshot, TrustAnchors, VerifyError};
