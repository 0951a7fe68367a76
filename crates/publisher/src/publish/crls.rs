//! CRLs in the publisher: per-issuer configuration, the checks made before anything is
//! signed, and generating (or importing) every CRL into the snapshot being written.
//!
//! Two modes per issuer. **Sign**: the publisher holds the issuer's own key (CRLs are
//! signed by the CA) and produces a full CRL, optional partitions, the CCADB JSON array of
//! partition URLs, and an optional delta CRL. **Import**: the CA produces its CRLs; they are
//! verified against the issuer certificate and carried byte for byte.
//!
//! cRLNumber is the snapshot sequence: strictly increasing across publishes, restarts and
//! successive publishers (it is derived from the clock and from what the directory holds,
//! and cannot go backwards).

use super::error::{file_error, PublishError};
use ocsp_edge_core::crl::{self, CrlEntry, CrlFacts, CrlScope, Url};
use ocsp_edge_core::model::{CertRecord, CertStatus, RevocationReason};
use ocsp_edge_core::pki::{Certificate, SigningKey};
use ocsp_edge_core::snapshot::{DocumentInput, DocumentKind, CRL_CONTENT_TYPE};
use ocsp_edge_core::time::UnixTime;
use ocsp_edge_core::units::parse_duration;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// CA/Browser Forum BR §4.9.7: a subscriber CRL's nextUpdate is at most 10 days out.
pub const MAX_CRL_VALIDITY: Duration = Duration::from_secs(10 * 86_400);
pub const MIN_CRL_VALIDITY: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlConfig {
    /// The issuer's private key (PEM): the publisher signs the CRLs.
    pub signing_key: Option<PathBuf>,
    /// Instead of signing: the CA's own CRL files, each with the URL it is served at.
    #[serde(default)]
    pub import: Vec<ImportedCrlConfig>,
    /// Where the full CRL is published, e.g. `http://crl.example/ca.crl`.
    pub full_url: Option<String>,
    /// Number of partitions (0: none).
    #[serde(default)]
    pub shards: u32,
    /// Partition URL template with `{shard}`; must match the certificates' CRL
    /// distribution points byte for byte.
    pub shard_url: Option<String>,
    /// Where the CCADB "JSON array of partitioned CRLs" is published.
    pub json_url: Option<String>,
    /// Where the delta CRL is published (enables delta CRLs).
    pub delta_url: Option<String>,
    /// nextUpdate − thisUpdate (1h to 10d).
    #[serde(default = "default_validity")]
    pub validity: String,
}

fn default_validity() -> String {
    "7d".to_string()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportedCrlConfig {
    pub file: PathBuf,
    pub url: String,
}

/// Checked CRL work for one issuer.
pub enum CrlPlan {
    Sign(Box<SignedCrls>),
    Import(Vec<ImportedCrl>),
}

pub struct SignedCrls {
    key: SigningKey,
    full: Option<Url>,
    partitions: Option<(u32, String)>,
    json: Option<Url>,
    delta: Option<Url>,
    validity: Duration,
}

pub struct ImportedCrl {
    path: String,
    der: Vec<u8>,
    summary: crl::CrlSummary,
}

impl CrlConfig {
    pub fn rebase(&mut self, base: &Path) {
        let paths = self
            .signing_key
            .iter_mut()
            .filter(|key| !super::keys::is_token_key(key))
            .chain(self.import.iter_mut().map(|i| &mut i.file));
        for path in paths {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// Every URL path this configuration publishes to (for the duplicate check).
    pub fn paths(&self) -> Vec<String> {
        let mut urls: Vec<String> = [&self.full_url, &self.delta_url, &self.json_url]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if let Some(template) = &self.shard_url {
            urls.extend((0..self.shards).map(|shard| template.replace("{shard}", &shard.to_string())));
        }
        urls.extend(self.import.iter().map(|i| i.url.clone()));
        urls.iter()
            .filter_map(|u| Url::parse(u).ok())
            .map(|u| u.path)
            .collect()
    }

    /// Loads keys and imported files and checks the configuration against `issuer`.
    pub fn load(
        &self,
        name: &str,
        issuer: &Certificate,
        records: &[CertRecord],
        now: UnixTime,
    ) -> Result<CrlPlan, PublishError> {
        let config_error = |m: String| PublishError::Config(format!("issuer {name:?} crl: {m}"));
        match (&self.signing_key, self.import.is_empty()) {
            (Some(key_path), true) => {
                refuse_certificate_hold(name, records)?;
                self.load_signed(key_path, issuer).map_err(|e| match e {
                    PublishError::Config(m) => config_error(m),
                    other => other,
                })
            }
            (None, false) => self.load_imported(issuer, now),
            _ => Err(config_error(
                "give exactly one of `signing_key` and `import`".into(),
            )),
        }
    }

    fn load_signed(&self, key_path: &Path, issuer: &Certificate) -> Result<CrlPlan, PublishError> {
        let key = self.load_key(key_path, issuer)?;
        self.plan_signed(key)
    }

    /// The issuer's own key: a token key, or a PEM file checked against the issuer.
    fn load_key(&self, key_path: &Path, issuer: &Certificate) -> Result<SigningKey, PublishError> {
        if super::keys::is_token_key(key_path) {
            let described =
                std::path::PathBuf::from(format!("the issuer certificate {}", issuer.display_name()));
            return super::keys::read_key_for(key_path, issuer, &described);
        }
        let text = std::fs::read_to_string(key_path).map_err(|e| file_error(key_path, e))?;
        let kind = issuer.key_kind().map_err(|e| file_error(key_path, e))?;
        let key = SigningKey::from_pem(&text, issuer.public_key(), kind).map_err(|e| {
            file_error(
                key_path,
                format!("{e} (CRLs are signed with the issuer's own key)"),
            )
        })?;
        Ok(key)
    }

    fn plan_signed(&self, key: SigningKey) -> Result<CrlPlan, PublishError> {
        let validity = parse_duration(&self.validity)
            .ok()
            .filter(|v| (MIN_CRL_VALIDITY..=MAX_CRL_VALIDITY).contains(v))
            .ok_or_else(|| {
                PublishError::Config(format!(
                    "crl.validity = {:?} must be a duration from 1h to 10d (CA/Browser Forum BR §4.9.7)",
                    self.validity
                ))
            })?;
        let url = |u: &Option<String>| {
            u.as_deref()
                .map(Url::parse)
                .transpose()
                .map_err(PublishError::from)
        };
        let partitions = match (self.shards, &self.shard_url) {
            (0, None) => None,
            (n, Some(template)) if n > 0 && template.contains("{shard}") => {
                Url::parse(&template.replace("{shard}", "0"))?;
                Some((n, template.clone()))
            }
            _ => {
                return Err(PublishError::Config(
                    "`shards` > 0 needs `shard_url` containing {shard}, and the reverse".into(),
                ))
            }
        };
        let full = url(&self.full_url)?;
        if full.is_none() && partitions.is_none() {
            return Err(PublishError::Config(
                "set `full_url`, or `shards` with `shard_url`".into(),
            ));
        }
        let delta = url(&self.delta_url)?;
        if delta.is_some() && full.is_none() {
            return Err(PublishError::Config(
                "a delta CRL needs `full_url` (its base)".into(),
            ));
        }
        let json = url(&self.json_url)?;
        if json.is_some() && partitions.is_none() {
            return Err(PublishError::Config(
                "`json_url` lists partitions: set `shards` and `shard_url`".into(),
            ));
        }
        Ok(CrlPlan::Sign(Box::new(SignedCrls {
            key,
            full,
            partitions,
            json,
            delta,
            validity,
        })))
    }

    fn load_imported(&self, issuer: &Certificate, now: UnixTime) -> Result<CrlPlan, PublishError> {
        let mut imported = Vec::with_capacity(self.import.len());
        for item in &self.import {
            let der = read_crl_file(&item.file)?;
            let summary = crl::read_verified(&der, issuer).map_err(|e| file_error(&item.file, e))?;
            match summary.next_update {
                None => {
                    return Err(file_error(
                        &item.file,
                        "the CRL has no nextUpdate; RFC 5280 requires one",
                    ))
                }
                Some(next_update) if next_update <= now => {
                    return Err(file_error(
                        &item.file,
                        format!(
                            "the CRL expired at {next_update} (its nextUpdate); publishing it would take \
                             responders out of service. Import a current CRL"
                        ),
                    ))
                }
                Some(_) => {}
            }
            let path = Url::parse(&item.url)?.path;
            // Responders refuse a CRL document that is a delta or whose
            // issuingDistributionPoint names other URLs (ocsp_edge_core::snapshot::DocumentError).
            if summary.delta_base.is_some() {
                return Err(file_error(
                    &item.file,
                    "this is a delta CRL (deltaCRLIndicator); only complete or partitioned CRLs can be imported",
                ));
            }
            let points = &summary.distribution_points;
            if !points.is_empty()
                && !points
                    .iter()
                    .any(|uri| Url::parse(uri).is_ok_and(|u| u.path == path))
            {
                return Err(file_error(
                    &item.file,
                    format!(
                    "its issuingDistributionPoint names {points:?}, but it is configured to be served at {}",
                    item.url
                ),
                ));
            }
            imported.push(ImportedCrl { path, der, summary });
        }
        Ok(CrlPlan::Import(imported))
    }
}

/// Accepts DER or PEM (`X509 CRL`).
fn read_crl_file(path: &Path) -> Result<Vec<u8>, PublishError> {
    let bytes = std::fs::read(path).map_err(|e| file_error(path, e))?;
    if bytes.starts_with(b"-----BEGIN") {
        let text = String::from_utf8_lossy(&bytes);
        let block = pem::parse(text.as_bytes()).map_err(|e| file_error(path, e))?;
        return Ok(block.into_contents());
    }
    Ok(bytes)
}

fn refuse_certificate_hold(name: &str, records: &[CertRecord]) -> Result<(), PublishError> {
    let held = records.iter().find(|r| {
        matches!(
            r.status,
            CertStatus::Revoked {
                reason: Some(RevocationReason::CertificateHold),
                ..
            }
        )
    });
    match held {
        Some(record) => Err(PublishError::CertificateHold {
            issuer: name.to_string(),
            serial: record.serial.clone(),
        }),
        None => Ok(()),
    }
}

/// What the CRL step needs from the snapshot being written.
pub struct CrlContext<'a> {
    pub issuer_name: &'a str,
    pub issuer: &'a Certificate,
    pub records: &'a [CertRecord],
    /// Revoked certificates that left `records` on expiring, listed once more (RFC 5280
    /// §3.3: until one CRL issued after the validity period has listed them).
    pub expired_revoked: &'a [CertRecord],
    pub now: UnixTime,
    pub number: u64,
    /// The snapshot directory, to find the base of a delta CRL.
    pub out_dir: &'a Path,
}

type Documents<'a> = Vec<(
    String,
    DocumentKind,
    &'static str,
    Vec<u8>,
    UnixTime,
    UnixTime,
    Option<u64>,
)>;

impl CrlPlan {
    /// Produces every document of this plan and hands each to `push`.
    pub fn write<W: Write>(
        &self,
        context: &CrlContext<'_>,
        writer: &mut ocsp_edge_core::snapshot::SnapshotWriter<W>,
    ) -> Result<usize, PublishError> {
        let documents: Documents<'_> = match self {
            CrlPlan::Import(crls) => crls
                .iter()
                .map(|c| {
                    let next = c.summary.next_update.unwrap_or(c.summary.this_update);
                    (
                        c.path.clone(),
                        DocumentKind::CrlFull,
                        CRL_CONTENT_TYPE,
                        c.der.clone(),
                        c.summary.this_update,
                        next,
                        c.summary.number,
                    )
                })
                .collect(),
            CrlPlan::Sign(signed) => signed.generate(context)?,
        };
        let count = documents.len();
        for (path, kind, content_type, bytes, this_update, next_update, crl_number) in documents {
            writer.push_document(DocumentInput {
                path,
                kind,
                issuer: context.issuer_name.to_string(),
                content_type,
                bytes: &bytes,
                this_update,
                next_update,
                crl_number,
            })?;
        }
        Ok(count)
    }
}

impl SignedCrls {
    fn generate<'a>(&self, context: &CrlContext<'a>) -> Result<Documents<'a>, PublishError> {
        let mut entries: Vec<CrlEntry> = context
            .records
            .iter()
            .chain(context.expired_revoked)
            .filter_map(revoked_entry)
            .collect();
        entries.sort_by(|a, b| a.serial.cmp(&b.serial));
        let next_update = context.now.plus_seconds(self.validity.as_secs() as i64);
        let mut documents = Documents::new();
        let mut emit = |path: &str, kind, scope, list: Vec<&CrlEntry>| -> Result<(), PublishError> {
            let bytes = self.sign(context, next_update, scope, &list)?;
            documents.push((
                path.to_string(),
                kind,
                CRL_CONTENT_TYPE,
                bytes,
                context.now,
                next_update,
                Some(context.number),
            ));
            Ok(())
        };
        if let Some(full) = &self.full {
            let freshest = self.delta.as_ref().map(|d| d.full.clone());
            emit(
                &full.path,
                DocumentKind::CrlFull,
                CrlScope::Full { freshest },
                entries.iter().collect(),
            )?;
            if let Some(delta) = &self.delta {
                // Without an earlier full CRL, the base is the full CRL issued now (same
                // number; RFC 5280 §5.2.4 allows it) and the delta is empty, so the
                // freshestCRL URL in the full CRL always resolves.
                let (base, base_serials) = previous_full_crl(context, &full.path)
                    .unwrap_or_else(|| (context.number, entries.iter().map(|e| e.serial.clone()).collect()));
                let changed = entries
                    .iter()
                    .filter(|e| base_serials.binary_search(&e.serial).is_err())
                    .collect();
                emit(
                    &delta.path,
                    DocumentKind::CrlDelta,
                    CrlScope::Delta { base },
                    changed,
                )?;
            }
        }
        if let Some((shards, template)) = &self.partitions {
            let mut urls = Vec::with_capacity(*shards as usize);
            for shard in 0..*shards {
                let url = Url::parse(&template.replace("{shard}", &shard.to_string()))?;
                let members = entries
                    .iter()
                    .filter(|e| crl::shard_of(&e.serial, *shards) == shard)
                    .collect();
                emit(
                    &url.path,
                    DocumentKind::CrlPartition,
                    CrlScope::Partition {
                        uri: url.full.clone(),
                    },
                    members,
                )?;
                urls.push(url.full);
            }
            if let Some(json) = &self.json {
                let bytes = serde_json::to_vec_pretty(&urls).map_err(|source| PublishError::Encoding {
                    what: "the CCADB partition list",
                    source,
                })?;
                documents.push((
                    json.path.clone(),
                    DocumentKind::CrlIndex,
                    "application/json",
                    bytes,
                    context.now,
                    next_update,
                    None,
                ));
            }
        }
        Ok(documents)
    }

    fn sign(
        &self,
        context: &CrlContext<'_>,
        next_update: UnixTime,
        scope: CrlScope,
        entries: &[&CrlEntry],
    ) -> Result<Vec<u8>, PublishError> {
        let algorithm = self.key.algorithm().algorithm_identifier_der();
        let facts = CrlFacts {
            issuer: context.issuer,
            signature_algorithm_der: algorithm,
            this_update: context.now,
            next_update,
            number: context.number,
            scope,
        };
        let tbs = crl::tbs_cert_list(&facts, entries)?;
        let signature = self.key.sign(&tbs).map_err(PublishError::signing)?;
        Ok(crl::assemble(&tbs, algorithm, &signature))
    }
}

fn revoked_entry(record: &CertRecord) -> Option<CrlEntry> {
    match &record.status {
        CertStatus::Good => None,
        CertStatus::Revoked {
            at,
            reason,
            invalidity,
        } => Some(CrlEntry {
            serial: record.serial.clone(),
            revoked_at: *at,
            reason: *reason,
            invalidity: *invalidity,
        }),
    }
}

/// The newest full CRL served at `path` in the snapshot directory, as the base of a delta:
/// its number and sorted revoked serials. `None` when there is none (the first publish).
fn previous_full_crl(
    context: &CrlContext<'_>,
    path: &str,
) -> Option<(u64, Vec<ocsp_edge_core::model::Serial>)> {
    use ocsp_edge_core::snapshot::{self, Manifest};
    let sequence = snapshot::newest_manifest(context.out_dir).ok()??;
    let manifest =
        Manifest::parse(&std::fs::read(context.out_dir.join(snapshot::manifest_name(sequence))).ok()?)
            .ok()?;
    // Mapped, and only the metadata and the CRL read: the snapshot can be gigabytes.
    let file = std::fs::File::open(context.out_dir.join(&manifest.body.snapshot)).ok()?;
    // A committed snapshot file, which is never modified.
    let bytes = ocsp_edge_core::snapshot::map_committed(&file).ok()?;
    let metadata = ocsp_edge_core::snapshot::read_metadata(&bytes).ok()?;
    let document = metadata
        .documents
        .iter()
        .find(|d| d.path == path && d.kind == DocumentKind::CrlFull)?;
    let der = ocsp_edge_core::snapshot::document_bytes(&bytes, document)?;
    let summary = crl::read_verified(der, context.issuer).ok()?;
    let mut serials = summary.revoked;
    serials.sort();
    Some((summary.number?, serials))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crl_file_is_read_as_der_or_pem_and_its_faults_name_it() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let der = write("crl.der", b"\x30\x00");
        assert_eq!(read_crl_file(&der).unwrap(), b"\x30\x00");
        let pem = write(
            "crl.pem",
            b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n",
        );
        assert_eq!(read_crl_file(&pem).unwrap(), b"\x30\x00");

        let missing = dir.path().join("missing.crl");
        let broken = write(
            "broken.pem",
            b"-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n",
        );
        for path in [missing, broken] {
            match read_crl_file(&path) {
                Err(PublishError::File { path: named, message }) => {
                    assert_eq!(named, path);
                    assert!(!message.is_empty());
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }
}
