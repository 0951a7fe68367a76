//! `ocsp-edge inspect`: a human-readable account of a snapshot on disk — its manifest,
//! issuers and documents — with an optional serial lookup, and a verdict on whether it
//! verifies (fully with `--trust`, otherwise everything but the signer's authority).

use crate::model::Serial;
use crate::ocsp::RequestedCertId;
use crate::pki::{CertIdHash, Certificate};
use crate::snapshot::{self, Manifest, Snapshot, StoredStatus, TrustAnchors};
use crate::time::UnixTime;
use base64::Engine;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}: no manifest found")]
    NoManifest(PathBuf),
    #[error("{0}")]
    Invalid(String),
}

/// Finds the manifest for `path`: a manifest file, a snapshot file (its sibling
/// manifest), or a directory (its newest manifest).
pub fn manifest_path(path: &Path) -> Result<PathBuf, InspectError> {
    if path.is_dir() {
        let newest = snapshot::newest_manifest(path)
            .map_err(|e| InspectError::Io(path.to_path_buf(), e))?
            .ok_or_else(|| InspectError::NoManifest(path.to_path_buf()))?;
        return Ok(path.join(snapshot::manifest_name(newest)));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    match name.strip_suffix(".snapshot") {
        Some(stem) => Ok(path.with_file_name(format!("{stem}.manifest.json"))),
        None => Ok(path.to_path_buf()),
    }
}

/// Describes the snapshot at `path`; looks `serial` up when given.
pub fn inspect(
    path: &Path,
    trust: Option<&TrustAnchors>,
    serial: Option<&str>,
    now: UnixTime,
) -> Result<String, InspectError> {
    let manifest_file = manifest_path(path)?;
    let manifest_bytes =
        std::fs::read(&manifest_file).map_err(|e| InspectError::Io(manifest_file.clone(), e))?;
    let manifest = Manifest::parse(&manifest_bytes).map_err(|e| InspectError::Invalid(e.to_string()))?;
    let snapshot_file = manifest_file.with_file_name(&manifest.body.snapshot);
    let mut out = describe_manifest(&manifest, &manifest_file);
    // Without --trust, each issuer's own certificate stands in as its anchor: that checks
    // everything except whether the operator trusts those issuers.
    let self_trust;
    let anchors = match trust {
        Some(anchors) => anchors,
        None => {
            self_trust = TrustAnchors::new(embedded_issuers(&snapshot_file)?);
            &self_trust
        }
    };
    // Mapped, not read: a 10-million-certificate snapshot is gigabytes. A delta is
    // verified on its base, from the same directory.
    let dir = manifest_file.parent().unwrap_or(Path::new("."));
    let base = match &manifest.body.base {
        None => Ok(None),
        Some(base) => {
            snapshot::load_snapshot(dir, base.sequence, anchors, now).map(|b| Some(std::sync::Arc::new(b)))
        }
    };
    let loaded = base.and_then(|base| {
        snapshot::load_snapshot_file_on(&manifest_bytes, &snapshot_file, anchors, now, base)
    });
    match loaded {
        Ok(snapshot) => {
            describe_snapshot(&mut out, &snapshot, now);
            let verdict = if trust.is_some() {
                "verified: signatures, signer authority for the trusted issuers, integrity hash and structure"
            } else {
                "verified against the issuers it names (give --trust to check them against yours)"
            };
            let _ = writeln!(out, "{verdict}");
            if let Some(serial) = serial {
                look_up(&mut out, &snapshot, serial)?;
            }
        }
        Err(e) => {
            let _ = writeln!(out, "NOT VALID: {e} (reason: {})", e.label());
        }
    }
    Ok(out)
}

fn describe_manifest(manifest: &Manifest, path: &Path) -> String {
    let body = &manifest.body;
    let mut out = String::new();
    let _ = writeln!(out, "manifest      {}", path.display());
    let _ = writeln!(out, "sequence      {}", body.sequence);
    let _ = writeln!(out, "created       {}", body.created_at);
    let _ = writeln!(
        out,
        "snapshot      {} ({} bytes, sha256 tree {})",
        body.snapshot, body.size, body.sha256_tree
    );
    let _ = writeln!(out, "next update   {} (earliest)", body.earliest_next_update);
    if let Some(base) = &body.base {
        let _ = writeln!(out, "delta         on full snapshot {}", base.sequence);
    }
    for issuer in &body.issuers {
        let _ = writeln!(
            out,
            "issuer        {}: {} ({} certificates)",
            issuer.name, issuer.subject, issuer.entries
        );
    }
    for signature in &manifest.signatures {
        let _ = writeln!(
            out,
            "signature     {} by {}",
            signature.issuer, signature.algorithm
        );
    }
    out
}

fn describe_snapshot(out: &mut String, snapshot: &Snapshot, now: UnixTime) {
    let _ = writeln!(out, "{}", expiry(snapshot.earliest_next_update(), now));
    for document in snapshot.documents() {
        let number = document
            .crl_number
            .map(|n| format!(", cRLNumber {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "document      {} ({:?}, {} bytes{number})",
            document.path, document.kind, document.length
        );
    }
}

/// When the snapshot's first response or document expires, from `now`. A snapshot with
/// neither (no certificates, no CRLs) has no expiry: verification leaves its earliest
/// nextUpdate at the end of time, which is not a duration anyone should read.
fn expiry(earliest_next_update: UnixTime, now: UnixTime) -> String {
    if earliest_next_update.seconds() == i64::MAX {
        return "expires       never: the snapshot holds no responses and no documents".into();
    }
    let expires_in = earliest_next_update.seconds().saturating_sub(now.seconds());
    let (hours, minutes) = (expires_in / 3600, (expires_in % 3600).abs() / 60);
    if expires_in < 0 {
        format!("expired       {}h{minutes:02}m ago", -hours)
    } else {
        format!("expires in    {hours}h{minutes:02}m")
    }
}

/// The issuer certificates a snapshot file names (read from its metadata only).
fn embedded_issuers(snapshot_file: &Path) -> Result<Vec<Certificate>, InspectError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let io = |e| InspectError::Io(snapshot_file.to_path_buf(), e);
    let file = std::fs::File::open(snapshot_file).map_err(io)?;
    // A snapshot file, which is never modified once written.
    let map = crate::snapshot::map_committed(&file).map_err(io)?;
    Ok(crate::snapshot::read_metadata(&map)
        .map(|metadata| {
            metadata
                .issuers
                .iter()
                .filter_map(|i| b64.decode(&i.certificate).ok())
                .filter_map(|der| Certificate::from_der(der).ok())
                .collect()
        })
        .unwrap_or_default())
}

fn look_up(out: &mut String, snapshot: &Snapshot, serial_hex: &str) -> Result<(), InspectError> {
    let serial = Serial::from_hex(serial_hex)
        .ok_or_else(|| InspectError::Invalid(format!("{serial_hex:?} is not a hexadecimal serial")))?;
    let mut found_any = false;
    let issuers: Vec<Certificate> = (0..)
        .map_while(|position| snapshot.section(position))
        .map(|section| section.issuer.clone())
        .collect();
    for issuer in issuers {
        let id = RequestedCertId {
            hash: CertIdHash::Sha256,
            issuer_name_hash: issuer.name_hash(CertIdHash::Sha256),
            issuer_key_hash: issuer.key_hash(CertIdHash::Sha256),
            serial: serial.clone(),
        };
        if let Ok(found) = snapshot.lookup(&id) {
            found_any = true;
            let status = match found.status {
                StoredStatus::Good => "good".to_string(),
                StoredStatus::Revoked { at, reason } => format!(
                    "revoked at {at}{}",
                    reason
                        .map(|r| format!(", reason {}", r.name()))
                        .unwrap_or_default()
                ),
            };
            let _ = writeln!(
                out,
                "serial        {} under {}: {status}; thisUpdate {}, nextUpdate {}, response {} bytes",
                serial,
                issuer.display_name(),
                found.this_update,
                found.next_update,
                found.response_len()
            );
        }
    }
    if !found_any {
        let _ = writeln!(
            out,
            "serial        {serial}: not in this snapshot (answered unauthorized)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_verifies_and_looks_up() {
        let now = UnixTime::now();
        let demo = crate::demo::prepare(now).unwrap();
        let report = inspect(
            &demo.snapshots,
            None,
            Some("19D65DDD1A376A089436F314272F7D18"),
            now,
        )
        .unwrap();
        assert!(report.contains("issuer        ec"), "{report}");
        assert!(
            report.contains("verified against the issuers it names"),
            "{report}"
        );
        assert!(
            report.contains("revoked at 2026-02-01T00:00:00Z, reason keyCompromise"),
            "{report}"
        );
        assert!(report.contains("document      /crl/ec.crl"), "{report}");
        let absent = inspect(&demo.snapshots, None, Some("0BADC0DE"), now).unwrap();
        assert!(absent.contains("not in this snapshot"), "{absent}");

        let only_rsa = TrustAnchors::new(vec![Certificate::from_pem(
            &std::fs::read_to_string(demo.dir.path().join("rsa/ca.pem")).unwrap(),
        )
        .unwrap()]);
        let untrusted = inspect(&demo.snapshots, Some(&only_rsa), None, now).unwrap();
        assert!(
            untrusted.contains("NOT VALID") && untrusted.contains("untrusted_signer"),
            "{untrusted}"
        );
    }

    #[test]
    fn an_empty_snapshot_is_described_without_a_made_up_expiry() {
        let now = UnixTime::now();
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo/publish.toml");
        let mut plan = crate::publish::PublishConfig::from_file(&path)
            .unwrap()
            .load(now)
            .unwrap();
        for issuer in &mut plan.issuers {
            issuer.records.clear();
            issuer.crl = None;
        }
        let dir = tempfile::tempdir().unwrap();
        // The rails refuse an empty publish; earlier versions wrote such snapshots.
        crate::publish::sign::write_snapshot(&plan, dir.path(), now, None, Default::default(), &mut |_| {})
            .unwrap();
        let report = inspect(dir.path(), None, None, now).unwrap();
        // It printed "expires in 2562047787516152h37m", and its manifest said 1970.
        assert!(!report.contains("2562047787516152h"), "{report}");
        assert!(!report.contains("1970"), "{report}");
        assert!(
            report.contains("NOT VALID") && report.contains("nothing in the snapshot has a nextUpdate"),
            "{report}"
        );
        assert_eq!(
            expiry(UnixTime(i64::MAX), now),
            "expires       never: the snapshot holds no responses and no documents"
        );
    }

    #[test]
    fn expiry_reads_as_hours_and_minutes_either_side_of_now() {
        let now = UnixTime(1_790_000_000);
        assert_eq!(
            expiry(now.plus_seconds(3 * 3600 + 5 * 60), now),
            "expires in    3h05m"
        );
        assert_eq!(
            expiry(now.plus_seconds(-(2 * 3600 + 59)), now),
            "expired       2h00m ago"
        );
    }

    #[test]
    fn a_corrupt_snapshot_is_reported_not_valid() {
        let now = UnixTime::now();
        let demo = crate::demo::prepare(now).unwrap();
        let manifest = manifest_path(&demo.snapshots).unwrap();
        let parsed = Manifest::parse(&std::fs::read(&manifest).unwrap()).unwrap();
        let snapshot = demo.snapshots.join(&parsed.body.snapshot);
        let mut bytes = std::fs::read(&snapshot).unwrap();
        bytes[100] ^= 1;
        std::fs::write(&snapshot, bytes).unwrap();
        let report = inspect(&snapshot, None, None, now).unwrap();
        assert!(
            report.contains("NOT VALID") && report.contains("hash_mismatch"),
            "{report}"
        );
    }
}
