//! The HTTP client ocsp-edge sends every outbound request with (replication sources, the
//! cache tier's hubs, S3): rustls on the ring provider, platform roots, a user agent. Each
//! user adds its own timeouts and extra roots. Must never turn certificate checking off.

use std::time::Duration;

/// The starting point of every HTTP client ocsp-edge builds: rustls on the ring provider
/// (installed here, once; reqwest panics without one), platform roots, a user agent.
pub fn client_builder() -> reqwest::ClientBuilder {
    // Installing twice is harmless; the first call wins.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("ocsp-edge/", env!("CARGO_PKG_VERSION")))
}
