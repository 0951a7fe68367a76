//! Publishing snapshots in-process, and forging them as an attacker holding some signing
//! keys would (hostile tests); the live publisher (`publish --watch`) as a child process.

use super::*;

/// Publishes the PKI described by `toml` into `dir` at the current time.
pub fn publish_from(toml: &Path, dir: &Path) -> PublishReport {
    publish_at(toml, dir, UnixTime::now())
}

/// Publishes the PKI described by `toml` into `dir` as if the time were `now`.
pub fn publish_at(toml: &Path, dir: &Path, now: UnixTime) -> PublishReport {
    try_publish_at(toml, dir, now).unwrap_or_else(|e| panic!("{}: {e}", toml.display()))
}

/// [`publish_at`] for a test that expects the publisher to refuse: its error, as text.
pub fn try_publish_at(toml: &Path, dir: &Path, now: UnixTime) -> Result<PublishReport, String> {
    let plan = PublishConfig::from_file(toml)
        .and_then(|config| config.load(now))
        .map_err(|e| e.to_string())?;
    ocsp_edge::publish::publish(&plan, dir, now, &mut |_| {}).map_err(|e| e.to_string())
}

/// Publishes `fixtures/demo/publish.toml` (both issuers) into `dir`.
pub fn publish_demo(dir: &Path) -> PublishReport {
    publish_from(&demo().join("publish.toml"), dir)
}

/// The demo publish plan (every issuer, its signer and key) as of `now`.
pub fn demo_plan(now: UnixTime) -> ocsp_edge::publish::PublishPlan {
    let toml = demo().join("publish.toml");
    PublishConfig::from_file(&toml)
        .and_then(|config| config.load(now))
        .unwrap_or_else(|e| panic!("{}: {e}", toml.display()))
}

/// A snapshot file with its metadata edited by `edit`, which may append bytes (documents)
/// after the records, tables and documents the file already holds.
pub fn forge_snapshot(
    snapshot: &[u8],
    edit: impl FnOnce(&mut ocsp_edge::snapshot::Metadata, &mut Vec<u8>),
) -> Vec<u8> {
    use ocsp_edge::snapshot::{read_metadata, FOOTER_LEN, FOOTER_MAGIC, FORMAT_VERSION};
    let mut metadata = read_metadata(snapshot).expect("a snapshot to forge from");
    let footer = &snapshot[snapshot.len() - FOOTER_LEN..];
    let metadata_offset = u64::from_le_bytes(footer[16..24].try_into().unwrap()) as usize;
    let mut out = snapshot[..metadata_offset].to_vec();
    edit(&mut metadata, &mut out);
    let json = serde_json::to_vec(&metadata).unwrap();
    let mut footer = [0u8; FOOTER_LEN];
    footer[..8].copy_from_slice(FOOTER_MAGIC);
    footer[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    footer[16..24].copy_from_slice(&(out.len() as u64).to_le_bytes());
    footer[24..32].copy_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(footer);
    out
}

/// Appends `bytes` to a snapshot being forged and serves them at `like.path` (replacing
/// any document there), described as `like` says.
pub fn plant_document(
    metadata: &mut ocsp_edge::snapshot::Metadata,
    out: &mut Vec<u8>,
    like: ocsp_edge::snapshot::Document,
    bytes: &[u8],
) {
    metadata.documents.retain(|d| d.path != like.path);
    metadata.documents.push(ocsp_edge::snapshot::Document {
        offset: out.len() as u64,
        length: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        ..like
    });
    out.extend_from_slice(bytes);
}

/// A manifest for `snapshot`: `template`'s body with the size and integrity hash of
/// `snapshot`, edited by `edit`, signed by `signers` only (names as in the plan).
pub fn forge_manifest(
    template: &[u8],
    snapshot: &[u8],
    plan: &ocsp_edge::publish::PublishPlan,
    signers: &[&str],
    edit: impl FnOnce(&mut ocsp_edge::snapshot::ManifestBody),
) -> Vec<u8> {
    use ocsp_edge::snapshot::{ContentHash, Manifest};
    let mut body = Manifest::parse(template).expect("a manifest to forge from").body;
    body.size = snapshot.len() as u64;
    let mut hash = ContentHash::new(body.chunk_size);
    hash.update(snapshot);
    body.sha256_tree = hex::encode(hash.finish().0);
    edit(&mut body);
    let keys: Vec<_> = plan
        .issuers
        .iter()
        .filter(|i| signers.contains(&i.name.as_str()))
        .map(|i| (i.name.as_str(), &i.signer, &i.key))
        .collect();
    assert_eq!(keys.len(), signers.len(), "unknown signer in {signers:?}");
    Manifest::sign(body, &keys).expect("sign").to_json()
}

/// Drops a manifest (named for `sequence`) and its snapshot into a served directory,
/// snapshot first, as a writer to that directory would.
pub fn drop_into(dir: &Path, sequence: u64, manifest: &[u8], snapshot: &[u8]) {
    use ocsp_edge::snapshot::{self, Manifest};
    let name = Manifest::parse(manifest)
        .map(|m| m.body.snapshot)
        .unwrap_or_else(|_| snapshot::snapshot_name(sequence));
    // Each file appears whole (rename), so a refusal is for its content, not a torn read.
    for (name, bytes) in [(name, snapshot), (snapshot::manifest_name(sequence), manifest)] {
        let temporary = dir.join(format!(".forging-{name}"));
        std::fs::write(&temporary, bytes).unwrap();
        std::fs::rename(&temporary, dir.join(name)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// The live publisher (`ocsp-edge publish --watch` as a child process)

/// A running `ocsp-edge publish --watch`; killed (and reaped) when dropped.
pub struct PublisherProcess {
    child: std::process::Child,
    pub admin: SocketAddr,
    log: ChildLog,
}

impl Drop for PublisherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl PublisherProcess {
    /// `ocsp-edge publish --watch --config <toml> --out <out> <args>` with its admin
    /// listener on a kernel-chosen loopback port; returns once it logs that address.
    pub fn start(toml: &Path, out: &Path, args: &[&str]) -> PublisherProcess {
        PublisherProcess::start_with_env(toml, out, args, &[])
    }

    /// [`PublisherProcess::start`] with environment variables (credentials) set.
    pub fn start_with_env(toml: &Path, out: &Path, args: &[&str], env: &[(&str, &str)]) -> PublisherProcess {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ocsp-edge"));
        command
            .envs(env.iter().copied())
            .args(["publish", "--watch", "--admin-listen", "127.0.0.1:0", "--config"])
            .arg(toml)
            .arg("--out")
            .arg(out)
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        let (child, log, admin) = spawn_logged(
            &mut command,
            "publish --watch never logged its admin address",
            |line| log_address(line, "admin="),
        );
        PublisherProcess { child, admin, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends `signal` (`TERM`, `HUP`, `KILL`) with kill(1).
    pub fn signal(&self, signal: &str) {
        let sent = run("kill", &[&format!("-{signal}"), &self.pid().to_string()]);
        assert!(sent.success, "{sent}");
    }

    /// The exit status once it has exited, waiting at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `/metrics` as text.
    pub fn metrics(&self) -> String {
        String::from_utf8_lossy(&get(self.admin, "/metrics").body).into_owned()
    }

    /// The value of the metric line `name` (with its labels, exactly), if present.
    pub fn metric(&self, name: &str) -> Option<f64> {
        metric(&self.metrics(), name)
    }

    pub fn ready(&self) -> (u16, String) {
        let response = get(self.admin, "/readyz");
        (
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
        )
    }
}

/// The newest numbered manifest a publisher wrote into `dir` (not `latest.manifest.json`).
pub fn newest_manifest(dir: &Path) -> PathBuf {
    use ocsp_edge::snapshot;
    let sequence = snapshot::newest_manifest(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .unwrap_or_else(|| panic!("no manifest in {}", dir.display()));
    dir.join(snapshot::manifest_name(sequence))
}
