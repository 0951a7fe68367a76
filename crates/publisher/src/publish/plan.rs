//! Publish configuration and input loading.
//!
//! Owns turning a [`PublishConfig`] (a TOML file, or the single-issuer command-line flags)
//! into a [`PublishPlan`]: certificates parsed, the signer checked against its issuer,
//! its key checked against its certificate, every record parsed. Nothing is signed here.

use super::error::{file_error, PublishError};
use super::input;
use super::keys::{is_token_key, read_key_for, read_text};
use ocsp_edge_core::model::{CertRecord, Serial};
use ocsp_edge_core::pki::{CertError, Certificate, SigningKey};
use ocsp_edge_core::time::UnixTime;
use ocsp_edge_core::units::parse_duration;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// CA/Browser Forum BR §4.9.10: OCSP responses valid for at least 8 hours, at most 10 days.
pub const MIN_VALIDITY: Duration = Duration::from_secs(8 * 3600);
pub const MAX_VALIDITY: Duration = Duration::from_secs(10 * 86_400);
pub const DEFAULT_VALIDITY: &str = "96h";

/// The publisher's configuration (`publish --config FILE`, TOML).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// nextUpdate − thisUpdate, e.g. `96h` (8h to 10d).
    #[serde(default = "default_validity")]
    pub validity: String,
    /// How many older snapshots to keep beside the new one.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Which revocation reasons are acceptable (see [`ReasonPolicy`]).
    #[serde(default)]
    pub revocation_reasons: ReasonPolicy,
    /// Also upload each snapshot to S3-compatible storage (after it is complete locally).
    #[serde(default)]
    pub upload: Option<ocsp_edge_transport::s3::S3Config>,
    /// Publish incremental snapshots (see [`DeltaConfig`]); without it every publish is full.
    #[serde(default)]
    pub delta: Option<DeltaConfig>,
    /// Serials (hex) whose revocation this publish may undo (see [`super::rails`]); the
    /// one deliberate way past that rail, logged and recorded in the signed manifest.
    #[serde(default)]
    pub allow_unrevoke: Vec<String>,
    /// How far (percent) an issuer's certificate count may fall against the newest
    /// snapshot, other than by expiry, before a publish is refused. Default 10.
    #[serde(default = "default_max_shrink_percent")]
    pub max_shrink_percent: u8,
    /// Admit serial 0 and serials over 20 octets (RFC 5280 §4.1.2.2 forbids both) for a
    /// legacy CA that issued them.
    #[serde(default)]
    pub allow_legacy_serials: bool,
    /// How `publish --watch` runs (see [`super::live::config::WatchConfig`]); the one-shot
    /// command ignores it.
    #[serde(default)]
    pub watch: Option<super::live::config::WatchConfig>,
    #[serde(rename = "issuer")]
    pub issuers: Vec<IssuerConfig>,
}

/// `[delta]`: between full snapshots, each publish writes a delta against the newest full
/// one, holding only what changed since it: certificates whose status changed, new and
/// removed ones, and responses re-signed because they reached `refresh_after`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeltaConfig {
    /// How long a full snapshot serves as the base; the first publish after that is full
    /// again (new responders start from it, and deltas stop growing). Default `24h`.
    #[serde(default = "default_full_every")]
    pub full_every: String,
    /// Re-sign a response once it is this old (thisUpdate + refresh_after ≤ now). Default:
    /// half the validity, which keeps every response well inside the CA/Browser Forum's
    /// refresh rule when publishing at least every few hours.
    #[serde(default)]
    pub refresh_after: Option<String>,
}

pub const DEFAULT_MAX_SHRINK_PERCENT: u8 = 10;

fn default_max_shrink_percent() -> u8 {
    DEFAULT_MAX_SHRINK_PERCENT
}

fn default_full_every() -> String {
    "24h".into()
}

/// The delta policy, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaPolicy {
    pub full_every: Duration,
    pub refresh_after: Duration,
}

/// Which CRLReasons a CA may use, applied to its records before anything is signed, so
/// OCSP responses and CRLs say the same thing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonPolicy {
    /// CA/Browser Forum BR §7.2.2 for subscriber certificates (and §7.3 for OCSP):
    /// `unspecified` is omitted; only keyCompromise, affiliationChanged, superseded,
    /// cessationOfOperation and privilegeWithdrawn may appear; anything else stops the
    /// publish. The default, for publicly trusted CAs.
    #[default]
    BaselineRequirements,
    /// RFC 5280 §5.3.1: every reason is carried as the CA recorded it (certificateHold
    /// still never appears in a CRL).
    Rfc5280,
}

impl ReasonPolicy {
    /// Normalises `records` in place, or names the first record the policy forbids.
    pub fn apply(self, records: &mut [CertRecord], source: &Path) -> Result<(), PublishError> {
        use ocsp_edge_core::model::{CertStatus, RevocationReason::*};
        if self == ReasonPolicy::Rfc5280 {
            return Ok(());
        }
        for record in records {
            if let CertStatus::Revoked { reason, .. } = &mut record.status {
                match reason {
                    Some(Unspecified) => *reason = None,
                    None | Some(KeyCompromise | AffiliationChanged | Superseded | CessationOfOperation | PrivilegeWithdrawn) => {}
                    Some(other) => {
                        return Err(file_error(
                            source,
                            format!(
                                "serial {}: reason {} is not allowed for subscriber certificates (CA/Browser Forum \
                                 BR §7.2.2 allows keyCompromise, affiliationChanged, superseded, \
                                 cessationOfOperation, privilegeWithdrawn); fix the record, or set \
                                 revocation_reasons = \"rfc5280\" for a CA outside the Baseline Requirements",
                                record.serial,
                                other.name()
                            ),
                        ))
                    }
                }
            }
        }
        Ok(())
    }
}

fn default_validity() -> String {
    DEFAULT_VALIDITY.to_string()
}

fn default_keep() -> usize {
    10
}

/// One issuing CA and where its records, certificate and OCSP signer live.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// A short label for logs, metrics and URLs (letters, digits, `-`, `_`).
    pub name: String,
    pub certificate: PathBuf,
    /// An OpenSSL CA `index.txt`. Exactly one of `index`, `json_lines` and `postgres`.
    pub index: Option<PathBuf>,
    /// A JSON Lines feed, one certificate per line.
    pub json_lines: Option<PathBuf>,
    /// The CA's PostgreSQL database (`[issuer.postgres]`).
    #[serde(default)]
    pub postgres: Option<super::postgres::PostgresConfig>,
    pub signer_certificate: PathBuf,
    pub signer_key: PathBuf,
    /// CRLs for this issuer (none when absent).
    #[serde(default)]
    pub crl: Option<super::crls::CrlConfig>,
}

/// Everything needed to sign, checked.
pub struct PublishPlan {
    pub issuers: Vec<IssuerPlan>,
    pub validity: Duration,
    pub keep: usize,
    /// The sequence must be at least this (e.g. one above what a shared store holds).
    pub sequence_floor: u64,
    /// Incremental publishing; `None`: every publish is full.
    pub delta: Option<DeltaPolicy>,
    /// What the newest snapshot in the store must not lose (see [`super::rails`]).
    pub rails: Rails,
    /// Asked before each step that makes the publish visible (see [`super::fence`]);
    /// `None` for the one-shot command.
    pub fence: Option<std::sync::Arc<dyn super::fence::Fence>>,
}

impl DeltaConfig {
    fn policy(&self, validity: Duration) -> Result<DeltaPolicy, PublishError> {
        let parse = |key: &str, text: &str| {
            parse_duration(text).map_err(|e| PublishError::Config(format!("delta.{key}: {e}")))
        };
        let full_every = parse("full_every", &self.full_every)?;
        let refresh_after = match &self.refresh_after {
            Some(text) => parse("refresh_after", text)?,
            None => validity / 2,
        };
        if refresh_after.is_zero() || refresh_after >= validity {
            return Err(PublishError::Config(format!(
                "delta.refresh_after must be above zero and below the validity ({}s)",
                validity.as_secs()
            )));
        }
        if full_every.is_zero() {
            return Err(PublishError::Config("delta.full_every must be above zero".into()));
        }
        Ok(DeltaPolicy {
            full_every,
            refresh_after,
        })
    }
}

pub struct IssuerPlan {
    pub name: String,
    pub certificate: Certificate,
    pub signer: Certificate,
    pub key: SigningKey,
    pub records: Vec<CertRecord>,
    pub skipped_expired: usize,
    /// The entries the input marks expired, for the rails.
    pub expired: Vec<input::ExpiredEntry>,
    /// The input file the records came from (for messages).
    pub source: PathBuf,
    pub crl: Option<super::crls::CrlPlan>,
}

impl PublishConfig {
    /// Reads a TOML file; relative paths inside it are relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<PublishConfig, PublishError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_error(path, e))?;
        let mut config: PublishConfig = toml::from_str(&text).map_err(|e| file_error(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for issuer in &mut config.issuers {
            issuer.rebase(base);
        }
        Ok(config)
    }

    pub fn validity(&self) -> Result<Duration, PublishError> {
        parse_validity(&self.validity)
    }

    /// Loads and checks every input at `now`.
    pub fn load(&self, now: UnixTime) -> Result<PublishPlan, PublishError> {
        let validity = self.validity()?;
        if self.issuers.is_empty() {
            return Err(PublishError::Config("no [[issuer]] configured".into()));
        }
        check_document_paths(&self.issuers)?;
        let mut names = std::collections::HashSet::new();
        let mut issuers = Vec::with_capacity(self.issuers.len());
        for issuer in &self.issuers {
            if !names.insert(issuer.name.as_str()) {
                return Err(PublishError::Config(format!(
                    "issuer name {:?} is used twice",
                    issuer.name
                )));
            }
            issuers.push(issuer.load(now, validity, self.revocation_reasons, self.input_rules())?);
        }
        let delta = self.delta_policy(validity)?;
        Ok(PublishPlan {
            issuers,
            validity,
            keep: self.keep,
            sequence_floor: 0,
            delta,
            rails: self.rails()?,
            fence: None,
        })
    }

    /// The delta policy, checked; `None` without `[delta]` (every publish is full).
    pub fn delta_policy(&self, validity: Duration) -> Result<Option<DeltaPolicy>, PublishError> {
        self.delta.as_ref().map(|d| d.policy(validity)).transpose()
    }

    fn input_rules(&self) -> input::InputRules {
        input::InputRules {
            allow_legacy_serials: self.allow_legacy_serials,
        }
    }

    /// The rails as configured; `--allow-shrink` is a one-off flag the caller sets after.
    fn rails(&self) -> Result<Rails, PublishError> {
        if self.max_shrink_percent > 100 {
            return Err(PublishError::Config(format!(
                "max_shrink_percent = {} must be 0 to 100",
                self.max_shrink_percent
            )));
        }
        let allow_unrevoke = self
            .allow_unrevoke
            .iter()
            .map(|hex| {
                ocsp_edge_core::model::Serial::from_hex(hex).ok_or_else(|| {
                    PublishError::Config(format!("allow_unrevoke: {hex:?} is not a hexadecimal serial"))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Rails {
            allow_unrevoke,
            allow_shrink: false,
            max_shrink_percent: self.max_shrink_percent,
        })
    }
}

/// Responders serve documents by URL path alone, so two CRLs at one path (even on two
/// host names) would make every responder refuse the snapshot.
fn check_document_paths(issuers: &[IssuerConfig]) -> Result<(), PublishError> {
    let mut seen = std::collections::HashMap::new();
    for issuer in issuers {
        for path in issuer.crl.iter().flat_map(|c| c.paths()) {
            if let Some(other) = seen.insert(path.clone(), issuer.name.clone()) {
                return Err(PublishError::Config(format!(
                    "issuers {other:?} and {:?} both publish a CRL at {path}; responders serve by URL \
                     path only, so give every CRL a distinct path",
                    issuer.name
                )));
            }
        }
    }
    Ok(())
}

/// Parses and range-checks a validity such as `96h`.
pub fn parse_validity(text: &str) -> Result<Duration, PublishError> {
    let validity = parse_duration(text).map_err(|e| PublishError::Config(format!("validity: {e}")))?;
    if !(MIN_VALIDITY..=MAX_VALIDITY).contains(&validity) {
        return Err(PublishError::Config(format!(
            "validity {text} is outside the CA/Browser Forum window of 8h to 10d (Baseline Requirements §4.9.10)"
        )));
    }
    Ok(validity)
}

impl IssuerConfig {
    fn rebase(&mut self, base: &Path) {
        for path in [
            Some(&mut self.certificate),
            self.index.as_mut(),
            self.json_lines.as_mut(),
            Some(&mut self.signer_certificate),
            (!is_token_key(&self.signer_key)).then_some(&mut self.signer_key),
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if let Some(crl) = self.crl.as_mut() {
            crl.rebase(base);
        }
        if let Some(postgres) = self.postgres.as_mut() {
            postgres.rebase(base);
        }
    }

    fn load(
        &self,
        now: UnixTime,
        validity: Duration,
        reasons: ReasonPolicy,
        rules: input::InputRules,
    ) -> Result<IssuerPlan, PublishError> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(PublishError::Config(format!(
                "issuer name {:?} must be letters, digits, '-' or '_'",
                self.name
            )));
        }
        let certificate = read_certificate(&self.certificate)?;
        let signer = read_certificate(&self.signer_certificate)?;
        signer
            .verify_ocsp_signer_for(&certificate, now)
            .map_err(|e| file_error(&self.signer_certificate, signer_problem(&e, &self.certificate)))?;
        let next_update = now.plus_seconds(validity.as_secs() as i64);
        if signer.not_after() < next_update {
            return Err(file_error(
                &self.signer_certificate,
                format!(
                    "the signer certificate expires at {}, before the responses' nextUpdate {next_update}; \
                     clients would reject them. Renew the signer or shorten --validity",
                    signer.not_after()
                ),
            ));
        }
        let key = read_key_for(&self.signer_key, &signer, &self.signer_certificate)?;
        let (mut parsed, source) = self.read_records(rules)?;
        reasons.apply(&mut parsed.records, &source)?;
        let crl = self
            .crl
            .as_ref()
            .map(|c| c.load(&self.name, &certificate, &parsed.records, now))
            .transpose()?;
        Ok(IssuerPlan {
            name: self.name.clone(),
            certificate,
            signer,
            key,
            records: parsed.records,
            skipped_expired: parsed.skipped_expired,
            expired: parsed.expired,
            source,
            crl,
        })
    }

    /// The records, and what to call their source in messages (a path, or the database).
    fn read_records(&self, rules: input::InputRules) -> Result<(input::ParsedInput, PathBuf), PublishError> {
        match (&self.index, &self.json_lines, &self.postgres) {
            (Some(path), None, None) => Ok((
                input::parse_openssl_index_with(path, &read_text(path)?, rules)?,
                path.clone(),
            )),
            (None, Some(path), None) => Ok((
                input::parse_json_lines_with(path, &read_text(path)?, rules)?,
                path.clone(),
            )),
            (None, None, Some(postgres)) => {
                let database = postgres.checked(&self.name)?;
                Ok((database.read_blocking(rules)?, PathBuf::from(database.target())))
            }
            _ => Err(PublishError::Config(format!(
                "issuer {:?}: give exactly one of `index` (OpenSSL index.txt), `json_lines` and `[issuer.postgres]`",
                self.name
            ))),
        }
    }
}

fn signer_problem(error: &CertError, issuer_path: &Path) -> String {
    match error {
        CertError::IssuerNameMismatch | CertError::BadSignature => format!(
            "the signer certificate was not issued by the issuer {} ({error}); a delegated OCSP \
             signer must be issued directly by the CA it answers for (RFC 6960 §4.2.2.2)",
            issuer_path.display()
        ),
        _ => format!(
            "not usable as the OCSP signer for {}: {error}",
            issuer_path.display()
        ),
    }
}

fn read_certificate(path: &Path) -> Result<Certificate, PublishError> {
    Certificate::from_pem(&read_text(path)?).map_err(|e| file_error(path, e))
}

/// The operator's answers to the rails for one publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rails {
    /// Serials whose revocation may be undone (every issuer).
    pub allow_unrevoke: Vec<Serial>,
    /// Skip the shrink check (`--allow-shrink`); an empty input is still refused.
    pub allow_shrink: bool,
    /// The largest drop, in percent of the newest snapshot's count, published unasked.
    pub max_shrink_percent: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_config() -> PublishConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
        PublishConfig::from_file(&path).unwrap()
    }

    const NOW: UnixTime = UnixTime(1_790_000_000);

    #[test]
    fn demo_configuration_loads_both_issuers() {
        let plan = demo_config().load(NOW).unwrap();
        assert_eq!(plan.issuers.len(), 2);
        assert_eq!(plan.validity, Duration::from_secs(96 * 3600));
        for issuer in &plan.issuers {
            assert_eq!(issuer.records.len(), 99, "{}", issuer.name);
            assert_eq!(issuer.skipped_expired, 1, "{}: the E line", issuer.name);
        }
    }

    #[test]
    fn validity_outside_the_forum_window_is_refused() {
        for bad in ["7h", "11d", "0", "soon"] {
            let err = parse_validity(bad).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert_eq!(parse_validity("8h").unwrap().as_secs(), 8 * 3600);
        assert_eq!(parse_validity("10d").unwrap().as_secs(), 10 * 86_400);
    }

    #[test]
    fn publisher_durations_take_the_responders_grammar_and_name_the_key() {
        assert_eq!(parse_validity("4d12h").unwrap().as_secs(), 108 * 3600);
        let delta = |full_every: &str, refresh_after: &str| DeltaConfig {
            full_every: full_every.into(),
            refresh_after: Some(refresh_after.into()),
        };
        let policy = delta("12h30m", "90m")
            .policy(Duration::from_secs(96 * 3600))
            .unwrap();
        assert_eq!(policy.full_every, Duration::from_secs(45_000));
        assert_eq!(policy.refresh_after, Duration::from_secs(5_400));
        for (config, key, value) in [
            (delta("1 day", "1h"), "delta.full_every", "1 day"),
            (delta("24h", "30m1h"), "delta.refresh_after", "30m1h"),
        ] {
            let err = config.policy(Duration::from_secs(96 * 3600)).unwrap_err();
            assert!(matches!(err, PublishError::Config(_)), "{err}");
            let err = err.to_string();
            assert!(err.contains(key) && err.contains(&format!("{value:?}")), "{err}");
        }
    }

    #[test]
    fn signer_from_another_issuer_is_refused_naming_the_file() {
        let mut config = demo_config();
        config.issuers[0].signer_certificate = config.issuers[1].signer_certificate.clone();
        config.issuers[0].signer_key = config.issuers[1].signer_key.clone();
        let err = config.load(NOW).err().unwrap().to_string();
        assert!(err.contains("rsa/ocsp.pem"), "{err}");
        assert!(err.contains("not issued by the issuer"), "{err}");
    }

    #[test]
    fn key_of_another_certificate_is_refused_naming_the_file() {
        let mut config = demo_config();
        config.issuers[0].signer_key = config.issuers[0].signer_key.with_file_name("ca.key");
        let err = config.load(NOW).err().unwrap().to_string();
        assert!(err.contains("ec/ca.key"), "{err}");
        assert!(err.contains("does not belong"), "{err}");
    }

    #[test]
    fn signer_without_ocsp_signing_is_refused() {
        // The EC issuing CA is a valid certificate of the root but has no id-kp-OCSPSigning.
        let mut config = demo_config();
        let ec = config.issuers[0].clone();
        config.issuers = vec![IssuerConfig {
            certificate: ec.certificate.parent().unwrap().join("../root/ca.pem"),
            signer_certificate: ec.certificate.clone(),
            signer_key: ec.certificate.with_file_name("ca.key"),
            ..ec
        }];
        let err = config.load(NOW).err().unwrap().to_string();
        assert!(err.contains("OCSPSigning"), "{err}");
    }

    #[test]
    fn signer_expiring_before_next_update_is_refused() {
        let config = demo_config();
        let signer = read_certificate(&config.issuers[0].signer_certificate).unwrap();
        let late = signer.not_after().plus_seconds(-3600);
        let err = config.load(late).err().unwrap().to_string();
        assert!(err.contains("expires"), "{err}");
    }

    #[test]
    fn an_unparsable_index_line_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = demo_config();
        let index = dir.path().join("index.txt");
        let good = std::fs::read_to_string(config.issuers[0].index.as_ref().unwrap()).unwrap();
        let broken = good.replacen("V\t", "Q\t", 1);
        std::fs::write(&index, broken).unwrap();
        config.issuers[0].index = Some(index.clone());
        let err = config.load(NOW).err().unwrap().to_string();
        assert!(err.starts_with(&format!("{}:1:", index.display())), "{err}");
    }

    #[test]
    fn baseline_requirements_omit_unspecified_and_refuse_ca_compromise() {
        use ocsp_edge_core::model::{CertStatus, RevocationReason, Serial};
        let revoked = |reason| CertRecord {
            serial: Serial::from_hex("01").unwrap(),
            status: CertStatus::Revoked {
                at: NOW,
                reason: Some(reason),
                invalidity: None,
            },
            not_after: None,
        };
        let mut records = vec![
            revoked(RevocationReason::Unspecified),
            revoked(RevocationReason::Superseded),
        ];
        ReasonPolicy::BaselineRequirements
            .apply(&mut records, Path::new("index.txt"))
            .unwrap();
        assert!(matches!(
            records[0].status,
            CertStatus::Revoked { reason: None, .. }
        ));
        assert!(matches!(
            records[1].status,
            CertStatus::Revoked {
                reason: Some(RevocationReason::Superseded),
                ..
            }
        ));

        let mut records = vec![revoked(RevocationReason::CaCompromise)];
        let err = ReasonPolicy::BaselineRequirements
            .apply(&mut records, Path::new("index.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("index.txt") && err.contains("CACompromise") && err.contains("rfc5280"),
            "{err}"
        );
        let mut records = vec![
            revoked(RevocationReason::CaCompromise),
            revoked(RevocationReason::Unspecified),
        ];
        ReasonPolicy::Rfc5280
            .apply(&mut records, Path::new("index.txt"))
            .unwrap();
        assert!(matches!(
            records[1].status,
            CertStatus::Revoked {
                reason: Some(RevocationReason::Unspecified),
                ..
            }
        ));
    }

    #[test]
    fn duplicate_names_and_missing_inputs_are_configuration_errors() {
        let mut config = demo_config();
        config.issuers[1].name = "ec".into();
        assert!(config.load(NOW).err().unwrap().to_string().contains("used twice"));
        let mut config = demo_config();
        config.issuers[0].index = None;
        assert!(config
            .load(NOW)
            .err()
            .unwrap()
            .to_string()
            .contains("exactly one"));
        let mut config = demo_config();
        config.issuers[0].name = "../x".into();
        assert!(config.load(NOW).is_err());
    }
}
