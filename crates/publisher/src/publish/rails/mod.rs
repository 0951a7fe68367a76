//! Safety rails: what a publish may not do to the newest snapshot in the store.
//!
//! A revocation is the one datum this system exists to carry, and the publisher signs
//! whatever the CA's export says. So before anything is written, the checked plan is
//! compared with the newest snapshot of the store (loaded verified, as deltas load it):
//!
//! - a serial revoked there may not become good, change its revocation time, or leave
//!   before its notAfter (RFC 5280 §5 and BR §7.2 keep a revoked entry listed until the
//!   certificate expires). Snapshots do not record notAfter, so a revoked serial may leave
//!   only when the input still lists it as expired with a notAfter that has passed; an
//!   unknown notAfter counts as "not yet". `--allow-unrevoke SERIAL` (or `allow_unrevoke`)
//!   is the one way past, logged and recorded in the signed manifest for the edges;
//! - an issuer's certificate count may not fall by more than `max_shrink_percent` (other
//!   than by entries the input marks expired) unless `--allow-shrink`;
//! - an empty input is never published, unless the snapshot's issuer was empty too.
//!
//! A revoked certificate that has just expired leaves the OCSP tables but stays in the
//! CRLs once more when no earlier snapshot's CRL was issued after its notAfter: RFC 5280
//! §3.3 keeps an entry until it appears on one CRL issued beyond the validity period.
//!
//! Owns the comparison; [`refusal`] its findings and their messages. Never writes, never
//! signs, never reads files.

pub mod refusal;

pub use super::plan::Rails;
pub use refusal::{Loss, LostRevocation, Problem, RailError};

use super::plan::{IssuerPlan, PublishPlan, MAX_VALIDITY};
use ocsp_edge_core::model::{CertRecord, CertStatus, Serial};
use ocsp_edge_core::snapshot::{merge_by_serial, serial_key, ManifestUnrevocation, Snapshot, StoredStatus};
use ocsp_edge_core::time::UnixTime;

/// How many serials a message names before it says "and N more".
const NAMED_SERIALS: usize = 5;

/// What a publish that passed the rails must carry besides its input.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// The un-revocations the manifest records (see [`check`]).
    pub unrevoked: Vec<ManifestUnrevocation>,
    /// By issuer name: revoked certificates that expired since the newest snapshot was
    /// made, for this publish's CRLs only (RFC 5280 §3.3: listed on one CRL issued after
    /// the certificate's validity). Their invalidity date is not known any more.
    pub expired_revoked: std::collections::HashMap<String, Vec<CertRecord>>,
}

/// Checks `plan` against `newest` (the newest snapshot of the store, verified) at `now`.
/// Returns, besides what [`Checked`] says, the un-revocations the manifest must record: those this publish makes under
/// `allow_unrevoke`, and those the newest manifest recorded within the last
/// [`MAX_VALIDITY`] (an edge that skipped that snapshot still needs to see them; after
/// that, whatever it served then has expired).
pub fn check(plan: &PublishPlan, newest: Option<&Snapshot>, now: UnixTime) -> Result<Checked, RailError> {
    let mut problems = Vec::new();
    let mut expired_revoked = std::collections::HashMap::new();
    let mut overridden: Vec<(&str, LostRevocation)> = Vec::new();
    for issuer in &plan.issuers {
        let previous = newest.and_then(|snapshot| {
            let position = snapshot.issuer_names().position(|name| name == issuer.name)?;
            Some((snapshot, position))
        });
        let Some((snapshot, position)) = previous else {
            if issuer.records.is_empty() {
                problems.push(Problem::Empty {
                    file: issuer.source.clone(),
                    issuer: issuer.name.clone(),
                    previous: None,
                });
            }
            continue;
        };
        let comparison = compare(
            issuer,
            snapshot.live_statuses(position),
            snapshot.created_at(),
            now,
        );
        let sequence = snapshot.sequence();
        if !comparison.expired_revoked.is_empty() {
            expired_revoked.insert(issuer.name.clone(), comparison.expired_revoked);
        }
        let (allowed, lost): (Vec<_>, Vec<_>) = comparison
            .lost
            .into_iter()
            .partition(|l| plan.rails.allow_unrevoke.contains(&l.serial));
        overridden.extend(allowed.into_iter().map(|one| (issuer.name.as_str(), one)));
        if !lost.is_empty() {
            problems.push(Problem::LostRevocations {
                file: issuer.source.clone(),
                issuer: issuer.name.clone(),
                sequence,
                count: lost.len(),
                lost: lost.into_iter().take(NAMED_SERIALS).collect(),
            });
        }
        let after = issuer.records.len() as u64;
        if after == 0 && comparison.before > 0 {
            problems.push(Problem::Empty {
                file: issuer.source.clone(),
                issuer: issuer.name.clone(),
                previous: Some((sequence, comparison.before)),
            });
            continue;
        }
        let dropped = comparison
            .before
            .saturating_sub(after)
            .saturating_sub(comparison.expired);
        let limit = u128::from(plan.rails.max_shrink_percent) * u128::from(comparison.before);
        if !plan.rails.allow_shrink && u128::from(dropped) * 100 > limit {
            problems.push(Problem::Shrink {
                file: issuer.source.clone(),
                issuer: issuer.name.clone(),
                sequence,
                before: comparison.before,
                after,
                expired: comparison.expired,
                limit_percent: plan.rails.max_shrink_percent,
            });
        } else if dropped > 0 && plan.rails.allow_shrink {
            tracing::warn!(issuer = %issuer.name, before = comparison.before, after, "allow_shrink: publishing a smaller certificate count");
        }
    }
    if !problems.is_empty() {
        return Err(RailError { problems });
    }
    for serial in &plan.rails.allow_unrevoke {
        if !overridden.iter().any(|(_, one)| &one.serial == serial) {
            tracing::warn!(%serial, "allow_unrevoke names a serial this publish does not un-revoke; it has no effect");
        }
    }
    let mut unrevoked = Vec::with_capacity(overridden.len());
    for (issuer, one) in overridden {
        tracing::warn!(issuer, serial = %one.serial, revoked_at = %one.revoked_at, loss = ?one.loss,
            "allow_unrevoke: publishing the loss of a revocation, as the operator asked; recorded in the manifest");
        unrevoked.push(ManifestUnrevocation {
            issuer: issuer.to_string(),
            serial: one.serial.to_hex(),
            at: now.to_rfc3339(),
        });
    }
    if let Some(newest) = newest {
        carry_forward(&mut unrevoked, &newest.manifest().body.unrevoked, plan, now);
    }
    Ok(Checked {
        unrevoked,
        expired_revoked,
    })
}

/// Appends the recent un-revocations of the previous manifest that are not already listed.
fn carry_forward(
    unrevoked: &mut Vec<ManifestUnrevocation>,
    previous: &[ManifestUnrevocation],
    plan: &PublishPlan,
    now: UnixTime,
) {
    let window = MAX_VALIDITY.as_secs() as i64;
    for old in previous {
        let recent = UnixTime::parse_rfc3339(&old.at).is_some_and(|at| at.plus_seconds(window) > now);
        let still_an_issuer = plan.issuers.iter().any(|i| i.name == old.issuer);
        let listed = unrevoked
            .iter()
            .any(|u| u.issuer == old.issuer && u.serial == old.serial);
        if recent && still_an_issuer && !listed {
            unrevoked.push(old.clone());
        }
    }
}

/// What comparing one issuer's input with its section of the newest snapshot found.
struct Comparison {
    /// Every revocation lost, in serial order.
    lost: Vec<LostRevocation>,
    /// Certificates the snapshot serves for this issuer.
    before: u64,
    /// Of those, how many the input lists as expired (and so may leave).
    expired: u64,
    /// Revoked ones that expired after the snapshot was made (its CRLs predate that).
    expired_revoked: Vec<CertRecord>,
}

/// One merge walk over the snapshot's records and the input's, both in serial order.
fn compare(
    issuer: &IssuerPlan,
    previous: impl Iterator<Item = (Serial, StoredStatus)>,
    previous_created: UnixTime,
    now: UnixTime,
) -> Comparison {
    // The snapshot's table order (see `sign::begin_section`), which merge_by_serial follows.
    let mut records: Vec<&CertRecord> = issuer.records.iter().collect();
    records.sort_by_cached_key(|r| serial_key(r.serial.as_der_content()));
    let mut expired: Vec<(&Serial, Option<UnixTime>)> =
        issuer.expired.iter().map(|e| (&e.serial, e.not_after)).collect();
    expired.sort_unstable();
    let expired_not_after = |serial: &Serial| {
        expired
            .binary_search_by(|(s, _)| (*s).cmp(serial))
            .ok()
            .map(|at| expired[at].1)
    };
    let mut comparison = Comparison {
        lost: Vec::new(),
        before: 0,
        expired: 0,
        expired_revoked: Vec::new(),
    };
    let wanted = records.iter().map(|r| (r.serial.clone(), &r.status));
    for (serial, was, wanted) in merge_by_serial(previous, wanted) {
        let Some(was) = was else { continue };
        comparison.before += 1;
        let marked_expired = || expired_not_after(&serial);
        let loss = match (was, wanted) {
            (StoredStatus::Good, None) => {
                comparison.expired += u64::from(marked_expired().is_some());
                None
            }
            (StoredStatus::Good, Some(_)) => None,
            (StoredStatus::Revoked { .. }, Some(CertStatus::Good)) => Some(Loss::Unrevoked),
            (StoredStatus::Revoked { at, .. }, Some(CertStatus::Revoked { at: to, .. })) => {
                (at != *to).then_some(Loss::RevocationTimeChanged { to: *to })
            }
            (StoredStatus::Revoked { at, reason }, None) => match marked_expired() {
                Some(Some(not_after)) if not_after <= now => {
                    comparison.expired += 1;
                    if not_after > previous_created {
                        comparison.expired_revoked.push(CertRecord {
                            serial: serial.clone(),
                            status: CertStatus::Revoked {
                                at,
                                reason,
                                invalidity: None,
                            },
                            not_after: Some(not_after),
                        });
                    }
                    None
                }
                not_after => Some(Loss::Removed {
                    not_after: not_after.flatten(),
                }),
            },
        };
        if let (Some(loss), StoredStatus::Revoked { at, .. }) = (loss, was) {
            comparison.lost.push(LostRevocation {
                serial,
                revoked_at: at,
                loss,
            });
        }
    }
    comparison
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::input::ExpiredEntry;
    use crate::publish::plan::{DeltaPolicy, PublishConfig};
    use crate::publish::PublishError;
    use crate::publish::{publish, PublishReport};
    use ocsp_edge_core::snapshot::Manifest;
    use std::path::Path;
    use std::time::Duration;

    const NOW: UnixTime = UnixTime(1_790_000_000);
    const LATER: UnixTime = UnixTime(1_790_003_600);

    fn demo_plan() -> PublishPlan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
        PublishConfig::from_file(&path).unwrap().load(NOW).unwrap()
    }

    fn delta(mut plan: PublishPlan) -> PublishPlan {
        plan.delta = Some(DeltaPolicy {
            full_every: Duration::from_secs(86_400),
            refresh_after: Duration::from_secs(48 * 3600),
        });
        plan
    }

    /// Both kinds of publish: every rail must hold for a delta as for a full snapshot.
    fn both_kinds() -> [(&'static str, PublishPlan); 2] {
        [("full", demo_plan()), ("delta", delta(demo_plan()))]
    }

    fn first_revoked(plan: &PublishPlan) -> usize {
        plan.issuers[0]
            .records
            .iter()
            .position(|r| matches!(r.status, CertStatus::Revoked { .. }))
            .unwrap()
    }

    /// Publishes `plan` at NOW into a fresh store, then runs `change` on it.
    fn published(plan: &PublishPlan) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        publish(plan, dir.path(), NOW, &mut |_| {}).unwrap();
        dir
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Publishes `plan` at LATER and expects a refusal that wrote nothing; its message.
    fn refused(plan: &PublishPlan, dir: &Path) -> String {
        let before = listing(dir);
        let outcome = publish(plan, dir, LATER, &mut |_| {});
        assert_eq!(listing(dir), before, "a refused publish wrote something");
        match outcome {
            Err(PublishError::Refused(e)) => e.to_string(),
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(report) => panic!("published {report:?}"),
        }
    }

    fn manifest_of(report: &PublishReport) -> Manifest {
        Manifest::parse(&std::fs::read(&report.manifest).unwrap()).unwrap()
    }

    #[test]
    fn a_revoked_serial_turned_good_is_refused_naming_it_unless_allowed() {
        for (kind, mut plan) in both_kinds() {
            let dir = published(&plan);
            let at = first_revoked(&plan);
            let serial = plan.issuers[0].records[at].serial.clone();
            plan.issuers[0].records[at].status = CertStatus::Good;
            let message = refused(&plan, dir.path());
            for needle in [
                "refusing to publish; nothing was written.",
                "ec/index.txt: issuer \"ec\" would lose 1 revocation",
                &format!("serial {serial} (revoked "),
                "is good in the input",
                &format!("--allow-unrevoke {serial} "),
            ] {
                assert!(message.contains(needle), "{kind}: {needle:?} not in {message}");
            }

            plan.rails.allow_unrevoke = vec![serial.clone()];
            let report = publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap();
            let recorded = manifest_of(&report).body.unrevoked;
            assert_eq!(recorded.len(), 1, "{kind}");
            assert_eq!(
                (recorded[0].issuer.as_str(), recorded[0].serial.as_str()),
                ("ec", serial.to_hex().as_str())
            );
            // The next publish, with no override, keeps the record for edges that skipped it.
            plan.rails.allow_unrevoke.clear();
            let next = publish(&plan, dir.path(), LATER.plus_seconds(60), &mut |_| {}).unwrap();
            assert_eq!(manifest_of(&next).body.unrevoked, recorded, "{kind}");
            // ... for as long as any snapshot served before can still be valid.
            let much_later = LATER.plus_seconds(MAX_VALIDITY.as_secs() as i64 + 60);
            let plan = demo_plan_at(much_later, &plan);
            let last = publish(&plan, dir.path(), much_later, &mut |_| {}).unwrap();
            assert!(manifest_of(&last).body.unrevoked.is_empty(), "{kind}");
        }
    }

    /// `plan`'s records, loaded for a later time (the demo signer must still be valid).
    fn demo_plan_at(now: UnixTime, like: &PublishPlan) -> PublishPlan {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo/publish.toml");
        let mut plan = PublishConfig::from_file(&path).unwrap().load(now).unwrap();
        for (issuer, old) in plan.issuers.iter_mut().zip(&like.issuers) {
            issuer.records = old.records.clone();
        }
        plan
    }

    #[test]
    fn a_changed_revocation_time_is_refused() {
        for (kind, mut plan) in both_kinds() {
            let dir = published(&plan);
            let at = first_revoked(&plan);
            if let CertStatus::Revoked { at: time, .. } = &mut plan.issuers[0].records[at].status {
                *time = time.plus_seconds(86_400);
            }
            let message = refused(&plan, dir.path());
            assert!(message.contains("has revocation time"), "{kind}: {message}");
        }
    }

    #[test]
    fn a_revoked_serial_may_leave_only_once_the_input_shows_it_expired() {
        for (kind, mut plan) in both_kinds() {
            let dir = published(&plan);
            let at = first_revoked(&plan);
            let record = plan.issuers[0].records.remove(at);
            let message = refused(&plan, dir.path());
            assert!(
                message.contains(&format!("serial {} (revoked", record.serial))
                    && message.contains("is missing from the input, and its notAfter is unknown"),
                "{kind}: {message}"
            );
            let expired = |not_after: Option<UnixTime>| ExpiredEntry {
                serial: record.serial.clone(),
                not_after,
            };
            for not_after in [None, Some(LATER.plus_seconds(1))] {
                plan.issuers[0].expired = vec![expired(not_after)];
                let message = refused(&plan, dir.path());
                assert!(message.contains("revocation"), "{kind} {not_after:?}: {message}");
            }
            plan.issuers[0].expired = vec![expired(Some(LATER.plus_seconds(-1)))];
            publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap();
        }
    }

    /// Whether the full CRL of `report`'s snapshot lists `serial` (verified first).
    fn full_crl_lists(plan: &PublishPlan, report: &PublishReport, serial: &Serial) -> bool {
        let bytes = std::fs::read(&report.snapshot).unwrap();
        let metadata = ocsp_edge_core::snapshot::read_metadata(&bytes).unwrap();
        let document = metadata
            .documents
            .iter()
            .find(|d| d.path == "/crl/ec.crl")
            .unwrap();
        let der = ocsp_edge_core::snapshot::document_bytes(&bytes, document).unwrap();
        ocsp_edge_core::crl::read_verified(der, &plan.issuers[0].certificate)
            .unwrap()
            .revoked
            .contains(serial)
    }

    #[test]
    fn a_revoked_certificate_that_just_expired_is_on_one_more_crl_then_leaves() {
        for (kind, mut plan) in both_kinds() {
            let dir = published(&plan);
            let at = first_revoked(&plan);
            let record = plan.issuers[0].records.remove(at);
            // Expired after the newest snapshot (and its CRL) was made, before this publish.
            plan.issuers[0].expired = vec![ExpiredEntry {
                serial: record.serial.clone(),
                not_after: Some(NOW.plus_seconds(60)),
            }];
            let first_after = publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap();
            assert!(
                full_crl_lists(&plan, &first_after, &record.serial),
                "{kind}: the first CRL issued after its notAfter must list it (RFC 5280 §3.3)"
            );
            let trust = ocsp_edge_core::snapshot::TrustAnchors::new(vec![
                plan.issuers[0].certificate.clone(),
                plan.issuers[1].certificate.clone(),
            ]);
            let served =
                ocsp_edge_core::snapshot::load_snapshot(dir.path(), first_after.sequence, &trust, LATER)
                    .unwrap();
            assert_eq!(
                served.status_of("ec", &record.serial),
                None,
                "{kind}: OCSP drops it"
            );
            let second_after = publish(&plan, dir.path(), LATER.plus_seconds(60), &mut |_| {}).unwrap();
            assert!(!full_crl_lists(&plan, &second_after, &record.serial), "{kind}");
        }
    }

    #[test]
    fn a_count_drop_beyond_the_limit_is_refused_unless_allowed_or_by_expiry() {
        for (kind, mut plan) in both_kinds() {
            let dir = published(&plan);
            // 99 certificates: losing 9 (9%) is within the default 10%, 11 is not.
            let keep_all = plan.issuers[1].records.clone();
            let mut gone = 0;
            plan.issuers[1].records.retain(|r| {
                let leaves = r.status == CertStatus::Good && gone < 11;
                gone += usize::from(leaves);
                !leaves
            });
            let message = refused(&plan, dir.path());
            for needle in [
                "rsa/index.txt: issuer \"rsa\" lists 88 certificates where snapshot",
                "has 99: 11 fewer (11%), not counting 0 marked expired, more than the 10% (max_shrink_percent)",
                "--allow-shrink",
            ] {
                assert!(message.contains(needle), "{kind}: {needle:?} not in {message}");
            }
            plan.issuers[1].expired = keep_all
                .iter()
                .filter(|r| !plan.issuers[1].records.contains(r))
                .take(2)
                .map(|r| ExpiredEntry {
                    serial: r.serial.clone(),
                    not_after: None,
                })
                .collect();
            // 11 gone, 2 of them marked expired: 9 (9%) unexplained.
            publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap();

            let dir = published(&demo_plan());
            plan.issuers[1].expired.clear();
            plan.rails.allow_shrink = true;
            publish(&plan, dir.path(), LATER, &mut |_| {}).unwrap();
        }
    }

    #[test]
    fn an_empty_input_is_refused_even_with_allow_shrink() {
        for (kind, mut plan) in both_kinds() {
            let dir = published(&plan);
            // Keep the revoked ones' rail out of the way: only good certificates existed.
            plan.issuers[1].records.clear();
            plan.rails.allow_shrink = true;
            plan.rails.allow_unrevoke = demo_plan().issuers[1]
                .records
                .iter()
                .map(|r| r.serial.clone())
                .collect();
            let message = refused(&plan, dir.path());
            assert!(
                message.contains("rsa/index.txt: issuer \"rsa\" has no certificates, but snapshot")
                    && message.contains("has 99. An empty input is never published"),
                "{kind}: {message}"
            );
            // A first publish has nothing to compare with: empty is refused too.
            let fresh = tempfile::tempdir().unwrap();
            let out = fresh.path().join("store");
            let outcome = publish(&plan, &out, NOW, &mut |_| {});
            let message = outcome.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains("no earlier snapshot"), "{kind}: {message}");
            assert!(!out.exists(), "{kind}: the store was created");
        }
    }
}
