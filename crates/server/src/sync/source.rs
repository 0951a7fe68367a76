//! Where snapshots come from: a directory, an HTTP(S) origin, or a peer responder.
//!
//! A source answers two questions: "is there a manifest newer than N?" (cheaply: a
//! directory listing, or a conditional GET that costs one small request when nothing
//! changed, or a long-poll that returns as soon as a peer has something newer) and
//! "stream this snapshot file into that file" (bounded by the size the already-verified
//! manifest states). A source never decides what is trusted: the caller verifies.
//!
//! HTTP layout (what a publisher's directory looks like behind any static web server, and
//! what a responder's admin listener serves under `/snapshots/`):
//! `<base>latest.manifest.json` (the newest manifest) and `<base><NNN>.snapshot`.

use crate::config::SourceConfig;
use futures_util::StreamExt;
use ocsp_edge_core::snapshot::{self, LATEST_MANIFEST};
use reqwest::header;
use std::path::PathBuf;
use std::time::Duration;

/// Manifests are small; anything larger is not one.
const MAX_MANIFEST_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Http(String),
    #[error("the download is larger than the {expected} bytes the manifest states")]
    TooLarge { expected: u64 },
    #[error("the download ended after {got} of {expected} bytes")]
    Truncated { got: u64, expected: u64 },
    #[error("the download of {size} bytes did not finish within {deadline:?}")]
    Deadline { size: u64, deadline: Duration },
}

/// Why a configured source cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceConfigError {
    #[error(transparent)]
    S3(#[from] ocsp_edge_transport::s3::S3Error),
    #[error(transparent)]
    Client(#[from] ocsp_edge_transport::http_client::ClientError),
}

impl From<reqwest::Error> for SourceError {
    fn from(e: reqwest::Error) -> Self {
        SourceError::Http(e.to_string())
    }
}

pub enum Source {
    Directory {
        path: PathBuf,
    },
    Http {
        client: reqwest::Client,
        locator: Locator,
        /// Long-poll (peers support it; plain origins ignore the query string).
        long_poll: Option<Duration>,
        /// Validators of the last manifest received, for conditional GETs.
        etag: Option<String>,
        last_modified: Option<String>,
        /// Validators of the manifest fetched in the current round; they become `etag` and
        /// `last_modified` only once the round succeeds ([`Source::round_succeeded`]), so a
        /// failed download is retried instead of being answered 304 forever.
        pending: Option<(Option<String>, Option<String>)>,
    },
}

impl Source {
    /// Reads the source's CA bundle, if any: blocking.
    pub fn from_config(config: &SourceConfig, long_poll: Duration) -> Result<Source, SourceConfigError> {
        let http = |locator, ca_file: Option<&PathBuf>, polls: bool| {
            Ok(Source::Http {
                client: http_client(ca_file, long_poll)?,
                locator,
                long_poll: polls.then_some(long_poll),
                etag: None,
                last_modified: None,
                pending: None,
            })
        };
        match config {
            SourceConfig::Directory { path } => Ok(Source::Directory { path: path.clone() }),
            SourceConfig::S3(s3) => {
                let location = ocsp_edge_transport::s3::S3Location::new(s3)?;
                http(Locator::S3(Box::new(location)), None, false)
            }
            SourceConfig::Http { url, ca_file } => http(Locator::Base(url.clone()), ca_file.as_ref(), false),
            SourceConfig::Peer { url, ca_file } => http(Locator::Base(url.clone()), ca_file.as_ref(), true),
        }
    }

    /// A short name for logs and metric labels.
    pub fn label(&self) -> String {
        match self {
            Source::Directory { path } => path.display().to_string(),
            Source::Http { locator, .. } => locator.label(),
        }
    }

    pub fn long_polls(&self) -> bool {
        matches!(
            self,
            Source::Http {
                long_poll: Some(_),
                ..
            }
        )
    }

    /// The source's newest manifest if its sequence may be above `current`; `None` when
    /// nothing changed. The sequence is only a hint here: the caller verifies.
    pub async fn newer_manifest(&mut self, current: u64) -> Result<Option<Vec<u8>>, SourceError> {
        match self {
            Source::Directory { path } => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || newest_in_directory(&path, current))
                    .await
                    .map_err(|e| SourceError::Io(std::io::Error::other(e)))?
            }
            Source::Http {
                client,
                locator,
                long_poll,
                etag,
                last_modified,
                pending,
            } => {
                let url = match long_poll {
                    Some(wait) => format!(
                        "{}?after={current}&wait={}",
                        locator.url(LATEST_MANIFEST),
                        wait.as_secs()
                    ),
                    None => locator.url(LATEST_MANIFEST),
                };
                let mut request = client.get(url);
                if let Some(tag) = etag.as_deref() {
                    request = request.header(header::IF_NONE_MATCH, tag);
                }
                if let Some(date) = last_modified.as_deref() {
                    request = request.header(header::IF_MODIFIED_SINCE, date);
                }
                let response = request.send().await?;
                if response.status() == reqwest::StatusCode::NOT_MODIFIED {
                    return Ok(None);
                }
                if !response.status().is_success() {
                    return Err(SourceError::Http(format!(
                        "{LATEST_MANIFEST}: HTTP {}",
                        response.status()
                    )));
                }
                let header_text = |name| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(String::from)
                };
                let validators =
                    if validators_settled(&header_text(header::DATE), &header_text(header::LAST_MODIFIED)) {
                        (header_text(header::ETAG), header_text(header::LAST_MODIFIED))
                    } else {
                        (None, None)
                    };
                let body = read_limited(response, MAX_MANIFEST_BYTES).await?;
                *pending = Some(validators);
                Ok(Some(body))
            }
        }
    }

    /// Keeps the validators of this round's manifest for the next conditional GET.
    pub fn round_succeeded(&mut self) {
        if let Source::Http {
            etag,
            last_modified,
            pending,
            ..
        } = self
        {
            if let Some((new_etag, new_date)) = pending.take() {
                *etag = new_etag;
                *last_modified = new_date;
            }
        }
    }

    /// The manifest file `name` (e.g. a delta's base), bounded in size.
    pub async fn fetch_manifest(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        match self {
            Source::Directory { path } => {
                let path = path.join(name);
                tokio::task::spawn_blocking(move || read_manifest_file(&path))
                    .await
                    .map_err(|e| SourceError::Io(std::io::Error::other(e)))?
            }
            Source::Http { client, locator, .. } => {
                let response = client.get(locator.url(name)).send().await?;
                if !response.status().is_success() {
                    return Err(SourceError::Http(format!("{name}: HTTP {}", response.status())));
                }
                read_limited(response, MAX_MANIFEST_BYTES).await
            }
        }
    }

    /// Streams the snapshot file `name` into `out`; it must be exactly `size` bytes. The
    /// caller bounds the whole download with a deadline; this never writes past `size`.
    pub async fn download(&self, name: &str, size: u64, out: std::fs::File) -> Result<(), SourceError> {
        match self {
            Source::Directory { path } => {
                let path = path.join(name);
                tokio::task::spawn_blocking(move || copy_file(&path, size, out))
                    .await
                    .map_err(|e| SourceError::Io(std::io::Error::other(e)))?
            }
            Source::Http { client, locator, .. } => {
                use tokio::io::AsyncWriteExt;
                let response = client.get(locator.url(name)).send().await?;
                if !response.status().is_success() {
                    return Err(SourceError::Http(format!("{name}: HTTP {}", response.status())));
                }
                // tokio's file writes on the blocking pool, off the runtime's workers.
                let mut out = tokio::fs::File::from_std(out);
                let mut written = 0u64;
                let mut body = response.bytes_stream();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk?;
                    written = written.saturating_add(chunk.len() as u64);
                    if written > size {
                        return Err(SourceError::TooLarge { expected: size });
                    }
                    out.write_all(&chunk).await?;
                }
                out.flush().await?;
                check_size(written, size)
            }
        }
    }
}

/// Where a source's snapshots come from, as replication uses it: [`Source`] in
/// production, scripted fakes in tests.
pub trait SnapshotSource: Send + Sync {
    /// A short name for logs and metric labels.
    fn label(&self) -> String;
    /// Whether a manifest request waits for something newer (then the next round starts
    /// at once).
    fn long_polls(&self) -> bool;
    /// The newest manifest if its sequence may be above `current`; `None`: unchanged.
    fn newer_manifest(
        &mut self,
        current: u64,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, SourceError>> + Send;
    /// The round that fetched the last manifest completed.
    fn round_succeeded(&mut self);
    /// The manifest file `name`, bounded in size.
    fn fetch_manifest(
        &self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Vec<u8>, SourceError>> + Send;
    /// Streams the snapshot file `name`, exactly `size` bytes, into `out`.
    fn download(
        &self,
        name: &str,
        size: u64,
        out: std::fs::File,
    ) -> impl std::future::Future<Output = Result<(), SourceError>> + Send;
}

impl SnapshotSource for Source {
    fn label(&self) -> String {
        Source::label(self)
    }
    fn long_polls(&self) -> bool {
        Source::long_polls(self)
    }
    async fn newer_manifest(&mut self, current: u64) -> Result<Option<Vec<u8>>, SourceError> {
        Source::newer_manifest(self, current).await
    }
    fn round_succeeded(&mut self) {
        Source::round_succeeded(self)
    }
    async fn fetch_manifest(&self, name: &str) -> Result<Vec<u8>, SourceError> {
        Source::fetch_manifest(self, name).await
    }
    async fn download(&self, name: &str, size: u64, out: std::fs::File) -> Result<(), SourceError> {
        Source::download(self, name, size, out).await
    }
}

fn read_manifest_file(path: &std::path::Path) -> Result<Vec<u8>, SourceError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_regular(path)?
        .take_bytes(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(SourceError::TooLarge {
            expected: MAX_MANIFEST_BYTES as u64,
        });
    }
    Ok(bytes)
}

/// Copies exactly `size` bytes of the file at `path` into `out` (blocking).
fn copy_file(path: &std::path::Path, size: u64, mut out: std::fs::File) -> Result<(), SourceError> {
    let mut input = open_regular(path)?;
    let copied = std::io::copy(&mut (&mut input).take_bytes(size.saturating_add(1)), &mut out)?;
    check_size(copied, size)
}

/// Opens a regular file; anything else in a source directory (a FIFO that would block
/// the reading thread forever, a device) is refused before it is opened.
fn open_regular(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    std::fs::File::open(path)
}

/// Where an HTTP source's files are: below a base URL, or in an S3 bucket (presigned).
pub enum Locator {
    Base(String),
    S3(Box<ocsp_edge_transport::s3::S3Location>),
}

impl Locator {
    fn url(&self, name: &str) -> String {
        match self {
            Locator::Base(base) => format!("{base}{name}"),
            Locator::S3(location) => location.get_url(name),
        }
    }

    fn label(&self) -> String {
        match self {
            Locator::Base(base) => base.clone(),
            Locator::S3(location) => location.label().to_string(),
        }
    }
}

/// Whether an origin's validators can tell this version from the next one. Static servers
/// derive them from the file's modification time in whole seconds (nginx's ETag is
/// mtime-size, Last-Modified has one-second resolution), so a file replaced again within
/// the same second keeps them, and a conditional GET would be answered 304 until the next
/// publish. Validators issued less than two seconds after Last-Modified are therefore not
/// reused; the next poll fetches the small manifest again instead.
fn validators_settled(date: &Option<String>, last_modified: &Option<String>) -> bool {
    let parse = |text: &Option<String>| {
        text.as_deref()
            .and_then(ocsp_edge_core::time::UnixTime::parse_http_date)
    };
    match (parse(date), parse(last_modified)) {
        (Some(date), Some(modified)) => date.seconds() - modified.seconds() >= 2,
        // Without both dates there is no way to tell; an ETag alone (e.g. a content hash)
        // is trusted.
        _ => last_modified.is_none(),
    }
}

trait TakeBytes: std::io::Read + Sized {
    fn take_bytes(self, limit: u64) -> std::io::Take<Self> {
        self.take(limit)
    }
}

impl<R: std::io::Read> TakeBytes for R {}

fn check_size(got: u64, expected: u64) -> Result<(), SourceError> {
    match got.cmp(&expected) {
        std::cmp::Ordering::Less => Err(SourceError::Truncated { got, expected }),
        std::cmp::Ordering::Greater => Err(SourceError::TooLarge { expected }),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

fn newest_in_directory(path: &std::path::Path, current: u64) -> Result<Option<Vec<u8>>, SourceError> {
    let newest = snapshot::newest_manifest(path)?;
    match newest {
        Some(sequence) if sequence > current => Ok(Some(read_manifest_file(
            &path.join(snapshot::manifest_name(sequence)),
        )?)),
        _ => Ok(None),
    }
}

async fn read_limited(response: reqwest::Response, limit: usize) -> Result<Vec<u8>, SourceError> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
        if body.len() > limit {
            return Err(SourceError::Http(format!(
                "{LATEST_MANIFEST} is larger than {limit} bytes"
            )));
        }
    }
    Ok(body)
}

/// The shared HTTP client with a read timeout past the long poll, trusting the platform's
/// roots plus `ca_file`. Blocking (reads the file).
fn http_client(ca_file: Option<&PathBuf>, long_poll: Duration) -> Result<reqwest::Client, SourceConfigError> {
    let builder =
        ocsp_edge_transport::http_client::client_builder().read_timeout(long_poll + Duration::from_secs(15));
    Ok(ocsp_edge_transport::http_client::build_with_ca_files(
        builder,
        ca_file.map(PathBuf::as_path),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_of_a_file_changed_this_second_are_not_reused() {
        let at = |t: i64| Some(ocsp_edge_core::time::UnixTime(t).to_http_date());
        assert!(!validators_settled(&at(1_790_000_001), &at(1_790_000_000)));
        assert!(!validators_settled(&at(1_790_000_000), &at(1_790_000_000)));
        assert!(validators_settled(&at(1_790_000_002), &at(1_790_000_000)));
        assert!(validators_settled(&None, &None), "an ETag alone is trusted");
        assert!(
            !validators_settled(&None, &at(1_790_000_000)),
            "no Date: cannot tell"
        );
    }
}
