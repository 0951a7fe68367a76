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

/// What every input watcher reports about its source, registered into the registry the
/// live publisher's admin listener serves (`/metrics`):
/// `ocsp_edge_publisher_input_connected{issuer}` (1 while the watcher is connected to or
/// watching its source) and `ocsp_edge_publisher_input_errors_total{issuer,kind}`.
/// Cloning shares the series.
#[derive(Clone)]
pub struct InputMetrics {
    connected: prometheus::IntGaugeVec,
    errors: prometheus::IntCounterVec,
}

impl InputMetrics {
    /// Registers both families in `registry` (once per registry; clone the result for
    /// every watcher).
    pub fn register(registry: &prometheus::Registry) -> Result<InputMetrics, prometheus::Error> {
        let connected = prometheus::IntGaugeVec::new(
            prometheus::Opts::new(
                "ocsp_edge_publisher_input_connected",
                "1 while the publisher's watcher of this issuer's input is connected to it",
            ),
            &["issuer"],
        )?;
        let errors = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "ocsp_edge_publisher_input_errors_total",
                "Failures watching or reaching an issuer's input, by kind",
            ),
            &["issuer", "kind"],
        )?;
        registry.register(Box::new(connected.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        Ok(InputMetrics { connected, errors })
    }

    pub fn set_connected(&self, issuer: &str, connected: bool) {
        self.connected
            .with_label_values(&[issuer])
            .set(i64::from(connected));
    }

    pub fn error(&self, issuer: &str, kind: &str) {
        self.errors.with_label_values(&[issuer, kind]).inc();
    }
}
