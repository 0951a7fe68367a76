//! S3-compatible object storage, where a publisher uploads snapshots and from which
//! responders replicate. Requests are presigned with rusty-s3 (SigV4, sans-I/O) and sent
//! with the same reqwest client as every other source, so no second HTTP or TLS stack.
//!
//! Objects mirror a publisher's directory under `prefix`: `NNN.snapshot`,
//! `NNN.manifest.json`, `latest.manifest.json`. An upload writes the snapshot first, then
//! its manifest (create-only: `If-None-Match: *`), then `latest.manifest.json` (only if it
//! is still the one read before: `If-Match`), so a reader never sees a manifest without
//! its snapshot, and two publishers cannot overwrite each other's newer manifest.
//!
//! Credentials, in order: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`),
//! then the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
//! `~/.aws/credentials`, profile `profile`/`AWS_PROFILE`/`default`); without any, requests
//! are unsigned (a public bucket).

use ocsp_edge_core::snapshot::{Manifest, LATEST_MANIFEST};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// How long a presigned URL stays valid.
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(900);

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix, e.g. `ocsp/` (empty: the bucket root).
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style URLs (`endpoint/bucket/key`), which every S3-compatible store accepts;
    /// `false` for virtual-hosted style.
    #[serde(default = "default_path_style")]
    pub path_style: bool,
    /// Profile in the shared credentials file.
    #[serde(default)]
    pub profile: Option<String>,
}

fn default_region() -> String {
    "us-east-1".to_string()
}

fn default_path_style() -> bool {
    true
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 configuration: {0}")]
    Config(String),
    #[error("S3 request failed: {0}")]
    Http(String),
    #[error("the store already holds sequence {theirs}, not below this publish's {ours}; another publisher was faster")]
    Newer { theirs: u64, ours: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<reqwest::Error> for S3Error {
    fn from(e: reqwest::Error) -> Self {
        S3Error::Http(e.to_string())
    }
}

/// A bucket, a prefix and credentials: everything needed to sign a request.
pub struct S3Location {
    bucket: Bucket,
    credentials: Option<Credentials>,
    prefix: String,
    label: String,
}

impl S3Location {
    pub fn new(config: &S3Config) -> Result<S3Location, S3Error> {
        let endpoint = url::Url::parse(&config.endpoint)
            .map_err(|e| S3Error::Config(format!("endpoint {:?}: {e}", config.endpoint)))?;
        let style = if config.path_style {
            UrlStyle::Path
        } else {
            UrlStyle::VirtualHost
        };
        let bucket = Bucket::new(endpoint, style, config.bucket.clone(), config.region.clone())
            .map_err(|e| S3Error::Config(format!("bucket {:?}: {e}", config.bucket)))?;
        let prefix = match config.prefix.trim_start_matches('/') {
            "" => String::new(),
            p if p.ends_with('/') => p.to_string(),
            p => format!("{p}/"),
        };
        Ok(S3Location {
            bucket,
            credentials: credentials(config.profile.as_deref()),
            label: format!("s3://{}/{prefix}", config.bucket),
            prefix,
        })
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// A presigned GET URL for `name` under the prefix.
    pub fn get_url(&self, name: &str) -> String {
        let key = format!("{}{name}", self.prefix);
        self.bucket
            .get_object(self.credentials.as_ref(), &key)
            .sign(SIGNATURE_LIFETIME)
            .to_string()
    }

    fn put_url(&self, name: &str) -> String {
        let key = format!("{}{name}", self.prefix);
        self.bucket
            .put_object(self.credentials.as_ref(), &key)
            .sign(SIGNATURE_LIFETIME)
            .to_string()
    }
}

/// Credentials from the environment, then the shared credentials file.
fn credentials(profile: Option<&str>) -> Option<Credentials> {
    if let Some(credentials) = Credentials::from_env() {
        return Some(credentials);
    }
    let file = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".aws/credentials")))?;
    let profile = profile
        .map(String::from)
        .or_else(|| std::env::var("AWS_PROFILE").ok())
        .unwrap_or_else(|| "default".to_string());
    from_credentials_file(&std::fs::read_to_string(file).ok()?, &profile)
}

/// Reads `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token` of one
/// `[profile]` of an AWS shared credentials file (INI).
fn from_credentials_file(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut key, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if !in_profile {
            continue;
        }
        let value = Some(value.trim().to_string());
        match name.trim() {
            "aws_access_key_id" => key = value,
            "aws_secret_access_key" => secret = value,
            "aws_session_token" => token = value,
            _ => {}
        }
    }
    match token {
        Some(token) => Some(Credentials::new_with_token(key?, secret?, token)),
        None => Some(Credentials::new(key?, secret?)),
    }
}

/// The sequence of the store's `latest.manifest.json` and its ETag, if there is one.
pub async fn latest(
    client: &reqwest::Client,
    location: &S3Location,
) -> Result<Option<(u64, String)>, S3Error> {
    let response = client.get(location.get_url(LATEST_MANIFEST)).send().await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(S3Error::Http(format!(
            "GET {LATEST_MANIFEST}: HTTP {}",
            response.status()
        )));
    }
    let etag = etag_of(&response);
    let manifest = Manifest::parse(&response.bytes().await?).map_err(|e| S3Error::Http(e.to_string()))?;
    Ok(Some((manifest.body.sequence, etag)))
}

/// Uploads the snapshot and manifest of `sequence` from `dir`, then points
/// `latest.manifest.json` at it unless the store already holds something newer.
pub async fn upload(
    client: &reqwest::Client,
    location: &S3Location,
    dir: &Path,
    sequence: u64,
) -> Result<(), S3Error> {
    let manifest_name = ocsp_edge_core::snapshot::manifest_name(sequence);
    let manifest_bytes = tokio::fs::read(dir.join(&manifest_name)).await?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| S3Error::Config(e.to_string()))?;
    let previous = latest(client, location).await?;
    if let Some((theirs, _)) = &previous {
        if *theirs >= sequence {
            return Err(S3Error::Newer {
                theirs: *theirs,
                ours: sequence,
            });
        }
    }
    let snapshot = tokio::fs::File::open(dir.join(&manifest.body.snapshot)).await?;
    put(
        client,
        location,
        &manifest.body.snapshot,
        reqwest::Body::from(snapshot),
        None,
    )
    .await?;
    put(
        client,
        location,
        &manifest_name,
        manifest_bytes.clone().into(),
        Some(("if-none-match", "*")),
    )
    .await?;
    let condition = match &previous {
        Some((_, etag)) if !etag.is_empty() => ("if-match", etag.as_str()),
        _ => ("if-none-match", "*"),
    };
    put(
        client,
        location,
        LATEST_MANIFEST,
        manifest_bytes.into(),
        Some(condition),
    )
    .await
}

/// An object's bytes and ETag; `None` when there is no such object.
pub async fn get_object(
    client: &reqwest::Client,
    location: &S3Location,
    name: &str,
) -> Result<Option<(Vec<u8>, String)>, S3Error> {
    let response = client.get(location.get_url(name)).send().await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(S3Error::Http(format!("GET {name}: HTTP {}", response.status())));
    }
    let etag = etag_of(&response);
    Ok(Some((response.bytes().await?.to_vec(), etag)))
}

/// The response's ETag, or empty when it has none (a conditional write then fails at 412).
fn etag_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Writes `name` only if `condition` (`If-None-Match: *` or `If-Match: ETAG`) holds: the
/// new ETag, or `None` when another writer changed the object first (HTTP 412).
pub async fn put_if(
    client: &reqwest::Client,
    location: &S3Location,
    name: &str,
    bytes: Vec<u8>,
    condition: (&str, &str),
) -> Result<Option<String>, S3Error> {
    let response = client
        .put(location.put_url(name))
        .header(condition.0, condition.1)
        .body(bytes)
        .send()
        .await?;
    if response.status() == reqwest::StatusCode::PRECONDITION_FAILED
        || response.status() == reqwest::StatusCode::CONFLICT
    {
        return Ok(None);
    }
    if !response.status().is_success() {
        return Err(S3Error::Http(format!("PUT {name}: HTTP {}", response.status())));
    }
    Ok(Some(etag_of(&response)))
}

async fn put(
    client: &reqwest::Client,
    location: &S3Location,
    name: &str,
    body: reqwest::Body,
    condition: Option<(&str, &str)>,
) -> Result<(), S3Error> {
    let mut request = client.put(location.put_url(name)).body(body);
    if let Some((header, value)) = condition {
        request = request.header(header, value);
    }
    let response = request.send().await?;
    if response.status() == reqwest::StatusCode::PRECONDITION_FAILED {
        return Err(S3Error::Http(format!(
            "PUT {name}: another publisher wrote it first (412); nothing was overwritten"
        )));
    }
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        return Err(S3Error::Http(format!(
            "PUT {name}: HTTP {status}: {}",
            text.chars().take(300).collect::<String>()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_file_profiles_are_read() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[ci]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=E\n";
        let default = from_credentials_file(text, "default").unwrap();
        assert_eq!(
            (default.key(), default.secret(), default.token()),
            ("A", "B", None)
        );
        let ci = from_credentials_file(text, "ci").unwrap();
        assert_eq!((ci.key(), ci.secret(), ci.token()), ("C", "D", Some("E")));
        assert!(from_credentials_file(text, "missing").is_none());
    }

    #[test]
    fn presigned_urls_carry_the_prefix_and_a_signature() {
        let location = S3Location {
            bucket: Bucket::new(
                url::Url::parse("http://127.0.0.1:9000").unwrap(),
                UrlStyle::Path,
                "ocsp",
                "us-east-1",
            )
            .unwrap(),
            credentials: Some(Credentials::new("AK", "SK")),
            prefix: "edge/".into(),
            label: String::new(),
        };
        let url = location.get_url("latest.manifest.json");
        assert!(
            url.starts_with("http://127.0.0.1:9000/ocsp/edge/latest.manifest.json?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Signature="), "{url}");
    }
}
