//! How an input tells the live publisher (`publish --watch`) that it may have changed.
//!
//! Watchers (file notifications or polling for index.txt and JSON Lines, LISTEN/NOTIFY or
//! an incremental poll for a database) only signal. The publisher then re-reads the whole
//! input consistently and decides what to publish, so a signal never carries data and a
//! lost or duplicated signal can delay a publish but never change what it says.

use std::time::Duration;

/// One input may have changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputChanged {
    /// The configured name of the issuer whose input changed.
    pub issuer: String,
    /// How long before the signal the change was made at the source, when the source
    /// knows (a database commit time); it feeds the publisher's input-lag metric.
    pub age: Option<Duration>,
}

/// Where watchers send their signals; the live publisher holds the receiving end.
pub type ChangeSender = tokio::sync::mpsc::Sender<InputChanged>;

/// The live publisher's end of the channel.
pub type ChangeReceiver = tokio::sync::mpsc::Receiver<InputChanged>;
