//! Watching input files (index.txt, JSON Lines, imported CRLs) for the live publisher.
//!
//! File notifications (inotify on Linux, through the `notify` crate) on each file's
//! directory, since CAs replace files by rename (`openssl ca` writes `index.txt.new`,
//! then renames it). Network file systems deliver no notifications for changes made on
//! other hosts, so a polling fallback compares each file's (size, mtime, inode) every
//! `poll_interval`; it also takes over when notifications cannot be set up.
//!
//! A PostgreSQL input (`[issuer.postgres]`) gets its own watcher
//! ([`crate::publish::postgres::watch`]: LISTEN/NOTIFY or an incremental poll).
//!
//! Only signals ([`InputChanged`]): the publisher re-reads everything itself, so a missed
//! or doubled event delays a publish at worst. `try_send` never blocks a watcher: a full
//! channel already holds a signal that will cause the same publish.

use crate::publish::signal::{ChangeSender, InputChanged, InputMetrics};
use crate::publish::PublishConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often inputs are polled when notifications are unavailable and no interval is set.
pub const FALLBACK_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The input files of `config`, with the issuer each belongs to.
pub fn input_files(config: &PublishConfig) -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    for issuer in &config.issuers {
        for path in issuer.index.iter().chain(&issuer.json_lines) {
            files.push((issuer.name.clone(), path.clone()));
        }
        for import in issuer.crl.iter().flat_map(|c| c.import.iter()) {
            files.push((issuer.name.clone(), import.file.clone()));
        }
    }
    files
}

/// The watchers of one configuration; dropping it stops them.
pub struct Watchers {
    _notify: Option<notify::RecommendedWatcher>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts every watcher `config` needs: its input files (see [`start`]) and a database
/// watcher for each PostgreSQL input. A PostgreSQL section that does not check is logged
/// and counted; the publish itself then names the problem.
pub fn start_for(
    config: &PublishConfig,
    poll_interval: Option<Duration>,
    sender: ChangeSender,
    metrics: &InputMetrics,
) -> Watchers {
    let mut watchers = start(input_files(config), poll_interval, sender.clone());
    for issuer in &config.issuers {
        let Some(postgres) = &issuer.postgres else {
            continue;
        };
        match postgres.checked(&issuer.name) {
            Ok(input) => watchers
                .tasks
                .push(tokio::spawn(crate::publish::postgres::watch::watch(
                    std::sync::Arc::new(input),
                    sender.clone(),
                    metrics.clone(),
                ))),
            Err(e) => tracing::error!(issuer = %issuer.name, error = %e, "cannot watch the CA database"),
        }
    }
    watchers
}

/// Starts watching `files`: notifications, plus polling every `poll_interval` when given
/// (or every [`FALLBACK_POLL_INTERVAL`] when notifications cannot be set up).
pub fn start(
    files: Vec<(String, PathBuf)>,
    poll_interval: Option<Duration>,
    sender: ChangeSender,
) -> Watchers {
    let notify = match notifications(&files, sender.clone()) {
        Ok(watcher) => Some(watcher),
        Err(e) => {
            tracing::warn!(error = %e, "file notifications unavailable; polling the inputs instead");
            None
        }
    };
    let interval = match (poll_interval, &notify) {
        (Some(interval), _) => Some(interval),
        (None, None) => Some(FALLBACK_POLL_INTERVAL),
        (None, Some(_)) => None,
    };
    let tasks = interval
        .map(|interval| tokio::spawn(poll(files, interval, sender)))
        .into_iter()
        .collect();
    Watchers {
        _notify: notify,
        tasks,
    }
}

fn notifications(
    files: &[(String, PathBuf)],
    sender: ChangeSender,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let by_path: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(issuer, path)| (absolute(path), issuer.clone()))
        .collect();
    let directories: std::collections::BTreeSet<PathBuf> = by_path
        .keys()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    let watched = by_path.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        for path in &event.paths {
            if let Some(issuer) = watched.get(path) {
                let _ = sender.try_send(InputChanged {
                    issuer: issuer.clone(),
                    age: age_of(path),
                });
            }
        }
    })?;
    for directory in directories {
        watcher.watch(&directory, notify::RecursiveMode::NonRecursive)?;
    }
    Ok(watcher)
}

/// How long ago `path` was modified: the input-lag metric's start for files.
fn age_of(path: &Path) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    SystemTime::now().duration_since(modified).ok()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What polling compares: a replaced or rewritten file changes at least one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        inode: metadata.ino(),
    })
}

async fn poll(files: Vec<(String, PathBuf)>, interval: Duration, sender: ChangeSender) {
    let mut last: Vec<Option<Stamp>> = files.iter().map(|(_, path)| stamp(path)).collect();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        for ((issuer, path), previous) in files.iter().zip(last.iter_mut()) {
            let current = stamp(path);
            if current != *previous {
                *previous = current;
                let _ = sender.try_send(InputChanged {
                    issuer: issuer.clone(),
                    age: age_of(path),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn signal_within(
        receiver: &mut crate::publish::signal::ChangeReceiver,
        limit: Duration,
    ) -> Option<InputChanged> {
        tokio::time::timeout(limit, receiver.recv()).await.ok().flatten()
    }

    #[tokio::test]
    async fn polling_sees_a_rewrite_and_stays_quiet_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index.txt");
        std::fs::write(&index, "V\t360101000000Z\t\t01\tunknown\t/CN=a\n").unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
        let task = tokio::spawn(poll(
            vec![("ec".into(), index.clone())],
            Duration::from_millis(50),
            sender,
        ));
        assert_eq!(
            signal_within(&mut receiver, Duration::from_millis(300)).await,
            None
        );
        // Same length, new content: the mtime (or inode, for a rename) tells.
        std::thread::sleep(Duration::from_millis(20));
        let replacement = dir.path().join("index.txt.new");
        std::fs::write(&replacement, "R\t360101000000Z\t\t01\tunknown\t/CN=a\n").unwrap();
        std::fs::rename(&replacement, &index).unwrap();
        let signal = signal_within(&mut receiver, Duration::from_secs(2))
            .await
            .expect("a signal");
        assert_eq!(signal.issuer, "ec");
        assert!(signal.age.is_some_and(|age| age < Duration::from_secs(5)));
        assert_eq!(
            signal_within(&mut receiver, Duration::from_millis(300)).await,
            None
        );
        task.abort();
    }

    #[tokio::test]
    async fn notifications_see_a_file_replaced_by_rename_and_ignore_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("index.txt");
        std::fs::write(&index, "").unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
        let _watchers = start(vec![("ec".into(), index.clone())], None, sender);
        std::fs::write(dir.path().join("index.txt.attr"), "unique_subject = no\n").unwrap();
        assert_eq!(
            signal_within(&mut receiver, Duration::from_millis(300)).await,
            None
        );
        // What `openssl ca` does: write index.txt.new, rename it over index.txt.
        let replacement = dir.path().join("index.txt.new");
        std::fs::write(&replacement, "V\t360101000000Z\t\t01\tunknown\t/CN=a\n").unwrap();
        std::fs::rename(&replacement, &index).unwrap();
        let signal = signal_within(&mut receiver, Duration::from_secs(2))
            .await
            .expect("a signal");
        assert_eq!(signal.issuer, "ec");
    }
}
