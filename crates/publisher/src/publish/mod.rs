//! The publisher: reads the CA's revocation state and writes a signed snapshot.
//!
//! - [`input`]: index.txt and JSON Lines parsing (no I/O).
//! - [`error`]: [`PublishError`], naming the file (and line) at fault.
//! - [`keys`]: loading a signing key from a PEM file or a PKCS#11 token.
//! - [`plan`]: the publish configuration and loading every input file, with errors that
//!   name the file (and line) at fault. Everything is checked before anything is signed.
//! - [`sequence`]: numbering a new snapshot (pure).
//! - [`sign`]: pre-signing on all cores and streaming the snapshot to disk.
//! - [`changes`]: the change list a manifest commits to, for caches' change feed.
//! - [`delta`]: what an incremental snapshot carries (no I/O).
//! - [`hsm`]: signing keys held in a PKCS#11 token.
//! - [`rails`]: what a publish may not do to the newest snapshot (no I/O): lose a
//!   revocation, shrink sharply, or go empty.
//! - [`postgres`]: PostgreSQL as the CA's database: a consistent read, and a watcher
//!   (LISTEN/NOTIFY or polling) for the live publisher.
//! - [`signal`]: how an input tells the live publisher that it may have changed.
//! - [`fence`]: the check a publish makes right before it becomes visible.
//! - [`live`]: `publish --watch`, the publisher as a service: watching inputs, the
//!   publish schedule, the store's lease, the admin listener and signals.
//!
//! The publisher never deletes or rewrites a snapshot a responder might be serving,
//! except old ones beyond the retention count, and only after a newer one is complete.

pub mod changes;
pub mod crls;
pub mod delta;
pub mod error;
pub mod fence;
pub mod hsm;
pub mod input;
pub mod keys;
pub mod live;
pub mod plan;
pub mod postgres;
pub mod rails;
pub mod sequence;
pub mod sign;
pub mod signal;

pub use error::PublishError;
pub use plan::{IssuerConfig, IssuerPlan, PublishConfig, PublishPlan};
pub use sign::{publish, PublishReport};
