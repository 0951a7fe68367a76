//! `[watch]` in the publisher's configuration, and the settings checked from it. Part of
//! the publish configuration ([`super::super::plan`] holds it), so it must never import
//! the service around it.

use crate::publish::error::PublishError;
use ocsp_edge_core::units::parse_duration;
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8082";

/// `[watch]` in the publisher's configuration: how `publish --watch` runs. Every key is
/// optional; flags override them.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WatchConfig {
    /// How long after a change is seen its publish starts (default `1s`).
    pub debounce: Option<String>,
    /// Also poll the input files this often (for network file systems, which deliver no
    /// notifications of changes made elsewhere). Default: notifications only.
    pub poll_interval: Option<String>,
    /// The admin listener (default 127.0.0.1:8082).
    pub admin_listen: Option<String>,
    /// How long the store's lease lasts unless renewed (default `30s`).
    pub lease_duration: Option<String>,
    /// How often the holder renews it, at most a third of the duration (default: a third).
    pub lease_renew: Option<String>,
    /// How long SIGTERM waits for the publish in progress before abandoning it (default `30s`).
    pub shutdown_grace: Option<String>,
    /// After a failed publish, try again this long after even without a change (default `30s`).
    pub retry_after: Option<String>,
    /// Where the active/standby lease lives: `directory` (the default: a lease file in
    /// `--out`, which the publishers share) or `s3` (an object beside the snapshots in
    /// the `[upload]` bucket, written with conditional requests; each publisher may then
    /// have its own `--out`).
    pub lease: Option<String>,
}

/// Where the lease lives (`watch.lease`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseStore {
    Directory,
    S3,
}

/// [`WatchConfig`], checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchSettings {
    pub debounce: Duration,
    pub poll_interval: Option<Duration>,
    pub admin_listen: SocketAddr,
    pub lease_duration: Duration,
    pub lease_renew: Duration,
    pub shutdown_grace: Duration,
    pub retry_after: Duration,
    pub lease_store: LeaseStore,
}

impl WatchConfig {
    pub fn settings(&self) -> Result<WatchSettings, PublishError> {
        let duration = |key: &str, value: &Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => parse_duration(text).map_err(|e| PublishError::Config(format!("watch.{key}: {e}"))),
        };
        let lease_duration = duration("lease_duration", &self.lease_duration, Duration::from_secs(30))?;
        let lease_renew = duration("lease_renew", &self.lease_renew, lease_duration / 3)?;
        if lease_duration < Duration::from_secs(3)
            || lease_renew.is_zero()
            || lease_renew * 3 > lease_duration
        {
            return Err(PublishError::Config(format!(
                "watch.lease_renew ({}s) must be above zero and at most a third of watch.lease_duration ({}s, at least 3s), \
                 so that a holder stops writing before its lease could expire for others",
                lease_renew.as_secs(),
                lease_duration.as_secs()
            )));
        }
        let poll_interval = match &self.poll_interval {
            None => None,
            Some(_) => Some(duration("poll_interval", &self.poll_interval, Duration::ZERO)?)
                .filter(|interval| !interval.is_zero()),
        };
        let admin = self.admin_listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
        let admin_listen = admin.parse().map_err(|_| {
            PublishError::Config(format!(
                "watch.admin_listen = {admin:?} is not an address like 127.0.0.1:8082"
            ))
        })?;
        Ok(WatchSettings {
            debounce: duration("debounce", &self.debounce, Duration::from_secs(1))?,
            poll_interval,
            admin_listen,
            lease_duration,
            lease_renew,
            shutdown_grace: duration("shutdown_grace", &self.shutdown_grace, Duration::from_secs(30))?,
            lease_store: match self.lease.as_deref() {
                None | Some("directory") => LeaseStore::Directory,
                Some("s3") => LeaseStore::S3,
                Some(other) => {
                    return Err(PublishError::Config(format!(
                        "watch.lease = {other:?}: give \"directory\" or \"s3\""
                    )))
                }
            },
            retry_after: duration("retry_after", &self.retry_after, Duration::from_secs(30))?
                .max(Duration::from_secs(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_settings_have_defaults_and_refuse_an_unsafe_lease() {
        let defaults = WatchConfig::default().settings().unwrap();
        assert_eq!(defaults.debounce, Duration::from_secs(1));
        assert_eq!(defaults.lease_renew, Duration::from_secs(10));
        assert_eq!(defaults.admin_listen.to_string(), DEFAULT_ADMIN_LISTEN);
        assert_eq!(defaults.poll_interval, None);
        let unsafe_renewal = WatchConfig {
            lease_duration: Some("30s".into()),
            lease_renew: Some("11s".into()),
            ..WatchConfig::default()
        };
        assert!(unsafe_renewal
            .settings()
            .unwrap_err()
            .to_string()
            .contains("third"));
        let bad = WatchConfig {
            debounce: Some("soon".into()),
            ..WatchConfig::default()
        };
        assert!(bad.settings().unwrap_err().to_string().contains("watch.debounce"));
    }
}
