//! The last word before a publish becomes visible: a [`Fence`] the publish asks right
//! before each rename that makes a file of it visible (the snapshot, then its manifest),
//! and between chunks while it signs.
//!
//! The one-shot `publish` command has none. The live publisher (`publish --watch`) uses
//! one to stop writing the moment it may no longer hold the store's lease (another
//! publisher may be taking over) or shutdown has abandoned the publish in progress. A
//! refused check ends the publish with [`Fenced`]; its temporary files are removed as it
//! unwinds and nothing it wrote is visible, since files appear only under their final
//! name, by rename, after they are complete.
//!
//! Owns the interface only; never writes anything.

/// Asked before each step that makes part of a publish visible.
pub trait Fence: Send + Sync {
    /// `Ok` when the publish may go on; otherwise why it must stop.
    fn check(&self) -> Result<(), Fenced>;
}

/// Why a publish was stopped before it became visible. Nothing of it was published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fenced {
    /// The store's lease is not (or may soon not be) held by this publisher.
    #[error("not publishing: {0}")]
    LeaseLost(String),
    /// Shutdown gave up on the publish in progress after its grace period.
    #[error("publish abandoned: shutting down")]
    Abandoned,
}
