//! The change feed between a hub and its caches: `GET /changes?since=A[&wait=S]` on the
//! hub's admin listener.
//!
//! - `200` [`ChangeFeed`]: every certificate whose status changed from sequence `from`
//!   (= A) to `to`, by issuer section name and serial, plus each issuer's CertID hashes so
//!   the cache can name both keys (SHA-1 and SHA-256) it may hold for a serial. `to ==
//!   from` means nothing changed within the wait.
//! - `410` [`Gone`]: the hub cannot describe the changes since A (A is older than its
//!   history, or not one of the sequences it served); the cache drops everything and
//!   acknowledges `to`. A cache that has just started asks `since=0` and gets this.
//!
//! This file holds both sides, no I/O: the hub's bounded [`History`] (fed one step per
//! snapshot swap by [`step_between`]) and the cache's [`plan`] for one answer. The hub
//! must never claim to cover a sequence it did not see swapped in; the cache must never
//! acknowledge a sequence before the invalidations that lead to it are applied (the
//! caller does that in that order, see [`super::gate`]).

use super::entry::CacheKey;
use crate::model::Serial;
use crate::pki::cert::CertIdHash;
use crate::snapshot::verify::IssuerHashes;
use crate::snapshot::Snapshot;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A `200` answer. Unknown fields are tolerated (not `deny_unknown_fields`): hubs and
/// caches are upgraded one at a time, and a newer hub may say more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFeed {
    pub from: u64,
    pub to: u64,
    pub issuers: BTreeMap<String, FeedIssuer>,
    pub changes: Vec<FeedChange>,
}

/// An issuer's CertID hashes, lowercase hex: `[issuerNameHash, issuerKeyHash]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedIssuer {
    pub sha1: [String; 2],
    pub sha256: [String; 2],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedChange {
    /// Issuer section name (a key of `issuers`).
    pub issuer: String,
    /// Uppercase hex, as in index.txt ([`Serial::to_hex`]).
    pub serial: String,
}

/// A `410` answer. It carries the issuer map too, so a cache that has just started (its
/// first answer is always this) learns the hubs' issuer names at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gone {
    pub to: u64,
    #[serde(default)]
    pub issuers: BTreeMap<String, FeedIssuer>,
}

impl FeedIssuer {
    fn of(hashes: &IssuerHashes) -> FeedIssuer {
        let pair = |(name, key): &(Vec<u8>, Vec<u8>)| [hex::encode(name), hex::encode(key)];
        FeedIssuer {
            sha1: pair(&hashes.sha1),
            sha256: pair(&hashes.sha256),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Hub side

/// A certificate whose status changed in one step, kept compact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub issuer: Arc<str>,
    pub serial: Serial,
}

/// The changes between two consecutive served snapshots.
#[derive(Debug)]
pub struct Step {
    pub from: u64,
    pub to: u64,
    pub changes: Vec<Changed>,
}

/// What [`step_between`] found.
#[derive(Debug)]
pub enum StepOutcome {
    Changes(Vec<Changed>),
    /// The snapshots cannot be compared serial by serial (an issuer disappeared or its
    /// certificate changed under the same name): the history restarts.
    Incomparable,
}

/// The changes a cache must invalidate between `older` and `newer`: every certificate
/// whose status differs, except certificates that are new in `newer`. A cache only holds
/// successful answers, and the hub answered `unauthorized` for a serial it did not list,
/// so no cache can hold an entry for a certificate `older` did not have. Leaving
/// issuance out keeps the feed proportional to revocations, not to issuance. Blocking:
/// walks both snapshots' tables.
pub fn step_between(older: &Snapshot, newer: &Snapshot) -> StepOutcome {
    let newer_issuers: BTreeMap<&str, IssuerHashes> = newer.issuer_hashes().collect();
    let comparable = older
        .issuer_hashes()
        .all(|(name, hashes)| newer_issuers.get(name) == Some(&hashes));
    if !comparable {
        return StepOutcome::Incomparable;
    }
    let mut names: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let changes = newer
        .status_changes_since(older)
        .into_iter()
        .filter(|change| change.status.is_none() || older.lists(&change.issuer, &change.serial))
        .map(|change| {
            let issuer = names
                .entry(change.issuer.clone())
                .or_insert_with(|| Arc::from(change.issuer.as_str()))
                .clone();
            Changed {
                issuer,
                serial: change.serial,
            }
        })
        .collect();
    StepOutcome::Changes(changes)
}

/// Bounds on what a hub remembers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Swaps remembered; caches further behind are told `410`.
    pub steps: usize,
    /// Changed certificates remembered across all steps (about 60 bytes each).
    pub records: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps: 1024,
            records: 200_000,
        }
    }
}

/// A hub's memory of the status changes of its swaps: a chain of steps whose `from` is
/// the previous step's `to`, starting at `start`. Only sequences this process served are
/// boundaries, which is what makes "changes since A" exact (a diff across a sequence the
/// hub never saw could miss a status that flipped and flipped back in between).
#[derive(Debug, Default)]
pub struct History {
    start: Option<u64>,
    steps: VecDeque<Arc<Step>>,
    records: usize,
    issuers: Arc<BTreeMap<String, FeedIssuer>>,
    limits: Limits,
}

/// What a hub can say about `since=A`.
#[derive(Debug)]
pub enum Coverage {
    /// No snapshot served yet.
    Empty,
    /// A is the newest sequence (or newer than anything here): wait for a swap.
    Current {
        issuers: Arc<BTreeMap<String, FeedIssuer>>,
    },
    /// A is not a sequence this history can describe changes from.
    Gone {
        to: u64,
        issuers: Arc<BTreeMap<String, FeedIssuer>>,
    },
    Changes {
        from: u64,
        to: u64,
        steps: Vec<Arc<Step>>,
        issuers: Arc<BTreeMap<String, FeedIssuer>>,
    },
}

impl Coverage {
    /// The wire form of `Changes` (built outside the history's lock).
    pub fn feed(
        from: u64,
        to: u64,
        steps: &[Arc<Step>],
        issuers: &BTreeMap<String, FeedIssuer>,
    ) -> ChangeFeed {
        ChangeFeed {
            from,
            to,
            issuers: issuers.clone(),
            changes: steps
                .iter()
                .flat_map(|step| step.changes.iter())
                .map(|c| FeedChange {
                    issuer: c.issuer.to_string(),
                    serial: c.serial.to_hex(),
                })
                .collect(),
        }
    }
}

impl History {
    pub fn new(limits: Limits) -> History {
        History {
            limits,
            ..History::default()
        }
    }

    /// The newest sequence the history reaches.
    pub fn head(&self) -> Option<u64> {
        self.steps.back().map(|s| s.to).or(self.start)
    }

    /// The oldest sequence a cache can resume from.
    pub fn start(&self) -> Option<u64> {
        self.start
    }

    pub fn records(&self) -> usize {
        self.records
    }

    /// Forgets everything: the chain starts again at `at` (the first snapshot, or one
    /// that cannot be compared with the previous).
    pub fn restart(&mut self, at: u64, issuers: BTreeMap<String, FeedIssuer>) {
        self.start = Some(at);
        self.steps.clear();
        self.records = 0;
        self.issuers = Arc::new(issuers);
    }

    /// Records one swap. A step that does not continue the chain, or that alone exceeds
    /// the record limit, restarts it.
    pub fn push(&mut self, step: Step, issuers: BTreeMap<String, FeedIssuer>) {
        if self.head() != Some(step.from) || step.to <= step.from || step.changes.len() > self.limits.records
        {
            self.restart(step.to, issuers);
            return;
        }
        self.records += step.changes.len();
        self.steps.push_back(Arc::new(step));
        self.issuers = Arc::new(issuers);
        while self.steps.len() > self.limits.steps || self.records > self.limits.records {
            let Some(oldest) = self.steps.pop_front() else {
                break;
            };
            self.records -= oldest.changes.len();
            self.start = Some(oldest.to);
        }
    }

    /// What the history can say about the changes since `since`.
    pub fn since(&self, since: u64) -> Coverage {
        let (Some(start), Some(head)) = (self.start, self.head()) else {
            return Coverage::Empty;
        };
        let issuers = self.issuers.clone();
        if since >= head {
            return Coverage::Current { issuers };
        }
        if since < start {
            return Coverage::Gone { to: head, issuers };
        }
        match self.steps.iter().position(|step| step.from == since) {
            Some(first) => Coverage::Changes {
                from: since,
                to: head,
                steps: self.steps.range(first..).cloned().collect(),
                issuers,
            },
            // Inside the chain but not a sequence this hub served.
            None => Coverage::Gone { to: head, issuers },
        }
    }
}

/// The feed's issuer map for `snapshot`.
pub fn issuers_of(snapshot: &Snapshot) -> BTreeMap<String, FeedIssuer> {
    snapshot
        .issuer_hashes()
        .map(|(name, hashes)| (name.to_string(), FeedIssuer::of(&hashes)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Cache side

/// A hub's answer to `since=A`, as the cache received it.
#[derive(Debug)]
pub enum Answer {
    Changes(ChangeFeed),
    Gone(Gone),
}

/// What the cache does with one answer, in this order: invalidate, then acknowledge.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Nothing changed within the wait.
    Nothing,
    Invalidate {
        keys: Vec<CacheKey>,
        acknowledge: u64,
    },
    InvalidateAll {
        acknowledge: u64,
    },
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("asked for changes since {asked}, got changes since {got}")]
    WrongFrom { asked: u64, got: u64 },
    #[error("the feed goes backwards ({from} to {to})")]
    Backwards { from: u64, to: u64 },
    #[error("a change names issuer {0:?}, which the feed does not describe")]
    UnknownIssuer(String),
    #[error("issuer {0:?} has malformed hashes")]
    BadHashes(String),
    #[error("serial {0:?} is not hexadecimal")]
    BadSerial(String),
}

/// One CertID form of an issuer: hash algorithm, issuerNameHash, issuerKeyHash.
type Variant = (CertIdHash, Vec<u8>, Vec<u8>);

/// Decides what one answer to `since=asked` (`None`: nothing acknowledged yet, asked as
/// `since=0`) means for the cache. An answer that does not start exactly at `asked` is
/// refused rather than applied: acknowledging it could skip changes.
pub fn plan(asked: Option<u64>, answer: Answer) -> Result<Plan, FeedError> {
    let feed = match answer {
        Answer::Gone(gone) => return Ok(Plan::InvalidateAll { acknowledge: gone.to }),
        Answer::Changes(feed) => feed,
    };
    let asked = asked.unwrap_or(0);
    if feed.from != asked {
        return Err(FeedError::WrongFrom {
            asked,
            got: feed.from,
        });
    }
    if feed.to < feed.from {
        return Err(FeedError::Backwards {
            from: feed.from,
            to: feed.to,
        });
    }
    if feed.to == feed.from {
        return Ok(Plan::Nothing);
    }
    let mut issuers: BTreeMap<&str, [Variant; 2]> = BTreeMap::new();
    for (name, hashes) in &feed.issuers {
        let decode = |hash: CertIdHash, pair: &[String; 2]| {
            let (n, k) = (hex::decode(&pair[0]).ok()?, hex::decode(&pair[1]).ok()?);
            let len = if hash == CertIdHash::Sha1 { 20 } else { 32 };
            (n.len() == len && k.len() == len).then_some((hash, n, k))
        };
        let both = decode(CertIdHash::Sha1, &hashes.sha1)
            .zip(decode(CertIdHash::Sha256, &hashes.sha256))
            .ok_or_else(|| FeedError::BadHashes(name.clone()))?;
        issuers.insert(name, [both.0, both.1]);
    }
    let mut keys = Vec::with_capacity(feed.changes.len() * 2);
    for change in &feed.changes {
        let variants = issuers
            .get(change.issuer.as_str())
            .ok_or_else(|| FeedError::UnknownIssuer(change.issuer.clone()))?;
        let serial =
            Serial::from_hex(&change.serial).ok_or_else(|| FeedError::BadSerial(change.serial.clone()))?;
        // Both variants: a client may have asked with either hash, and each answer is
        // cached under its own CertID.
        for (hash, name_hash, key_hash) in variants {
            // A serial too long to be cached cannot be in the cache either.
            keys.extend(CacheKey::new(*hash, name_hash, key_hash, &serial));
        }
    }
    Ok(Plan::Invalidate {
        keys,
        acknowledge: feed.to,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(issuer: &str, serial: &str) -> Changed {
        Changed {
            issuer: Arc::from(issuer),
            serial: Serial::from_hex(serial).unwrap(),
        }
    }

    fn step(from: u64, to: u64, serials: &[&str]) -> Step {
        Step {
            from,
            to,
            changes: serials.iter().map(|s| changed("ec", s)).collect(),
        }
    }

    fn serials(coverage: &Coverage) -> Vec<String> {
        match coverage {
            Coverage::Changes {
                from,
                to,
                steps,
                issuers,
            } => Coverage::feed(*from, *to, steps, issuers)
                .changes
                .into_iter()
                .map(|c| c.serial)
                .collect(),
            other => panic!("not changes: {other:?}"),
        }
    }

    #[test]
    fn the_history_covers_exactly_the_sequences_it_served() {
        let mut history = History::new(Limits::default());
        assert!(matches!(history.since(0), Coverage::Empty));
        history.restart(100, BTreeMap::new());
        assert!(matches!(history.since(100), Coverage::Current { .. }));
        assert!(matches!(history.since(0), Coverage::Gone { to: 100, .. }));
        history.push(step(100, 110, &["01"]), BTreeMap::new());
        history.push(step(110, 120, &["02", "03"]), BTreeMap::new());
        assert_eq!(history.head(), Some(120));
        assert_eq!(serials(&history.since(100)), ["01", "02", "03"]);
        assert_eq!(serials(&history.since(110)), ["02", "03"]);
        assert!(matches!(history.since(120), Coverage::Current { .. }));
        assert!(
            matches!(history.since(130), Coverage::Current { .. }),
            "a cache ahead of this hub waits"
        );
        assert!(matches!(history.since(99), Coverage::Gone { to: 120, .. }));
        // 105 lies inside the first step but was never served here: a diff from 100 could
        // miss a status that changed at 105 and changed back at 110.
        assert!(matches!(history.since(105), Coverage::Gone { to: 120, .. }));
    }

    #[test]
    fn a_step_that_does_not_continue_the_chain_restarts_it() {
        let mut history = History::new(Limits::default());
        history.restart(100, BTreeMap::new());
        history.push(step(100, 110, &["01"]), BTreeMap::new());
        history.push(step(115, 120, &["02"]), BTreeMap::new());
        assert_eq!(history.start(), Some(120));
        assert_eq!(history.records(), 0);
        assert!(matches!(history.since(110), Coverage::Gone { to: 120, .. }));
    }

    #[test]
    fn the_history_is_bounded_in_steps_and_records() {
        let mut history = History::new(Limits { steps: 2, records: 3 });
        history.restart(1, BTreeMap::new());
        history.push(step(1, 2, &["01"]), BTreeMap::new());
        history.push(step(2, 3, &["02"]), BTreeMap::new());
        history.push(step(3, 4, &["03"]), BTreeMap::new());
        assert_eq!(history.start(), Some(2), "oldest step dropped");
        assert!(matches!(history.since(1), Coverage::Gone { to: 4, .. }));
        assert_eq!(serials(&history.since(2)), ["02", "03"]);
        // Three steps exceed the step limit: the oldest goes, and 3 records fit the limit.
        history.push(step(4, 5, &["04", "05"]), BTreeMap::new());
        assert_eq!(history.records(), 3);
        assert_eq!(history.start(), Some(3));
        // One more record than the limit: the oldest step goes.
        history.push(step(5, 6, &["06"]), BTreeMap::new());
        assert_eq!(history.records(), 3);
        assert_eq!(history.start(), Some(4));
        history.push(step(6, 7, &["07", "08", "09", "0A"]), BTreeMap::new());
        assert_eq!(history.start(), Some(7), "a step over the record limit restarts");
        assert_eq!(history.records(), 0);
    }

    fn hashes() -> FeedIssuer {
        FeedIssuer {
            sha1: ["11".repeat(20), "22".repeat(20)],
            sha256: ["33".repeat(32), "44".repeat(32)],
        }
    }

    fn feed(from: u64, to: u64, changes: &[(&str, &str)]) -> ChangeFeed {
        ChangeFeed {
            from,
            to,
            issuers: BTreeMap::from([("ec".to_string(), hashes())]),
            changes: changes
                .iter()
                .map(|(issuer, serial)| FeedChange {
                    issuer: issuer.to_string(),
                    serial: serial.to_string(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_plan_invalidates_both_variants_then_acknowledges() {
        let plan = plan(Some(10), Answer::Changes(feed(10, 12, &[("ec", "0A1B")]))).unwrap();
        let serial = Serial::from_hex("0A1B").unwrap();
        let sha1 = CacheKey::new(CertIdHash::Sha1, &[0x11; 20], &[0x22; 20], &serial).unwrap();
        let sha256 = CacheKey::new(CertIdHash::Sha256, &[0x33; 32], &[0x44; 32], &serial).unwrap();
        assert_eq!(
            plan,
            Plan::Invalidate {
                keys: vec![sha1, sha256],
                acknowledge: 12
            }
        );
    }

    #[test]
    fn plans_refuse_what_could_skip_a_change() {
        assert_eq!(
            plan(Some(10), Answer::Changes(feed(9, 12, &[]))),
            Err(FeedError::WrongFrom { asked: 10, got: 9 })
        );
        assert_eq!(
            plan(None, Answer::Changes(feed(5, 12, &[]))),
            Err(FeedError::WrongFrom { asked: 0, got: 5 })
        );
        assert_eq!(
            plan(Some(10), Answer::Changes(feed(10, 9, &[]))),
            Err(FeedError::Backwards { from: 10, to: 9 })
        );
        assert_eq!(
            plan(Some(10), Answer::Changes(feed(10, 12, &[("rsa", "01")]))),
            Err(FeedError::UnknownIssuer("rsa".into()))
        );
        assert_eq!(
            plan(Some(10), Answer::Changes(feed(10, 12, &[("ec", "xyz")]))),
            Err(FeedError::BadSerial("xyz".into()))
        );
        let mut short = feed(10, 12, &[("ec", "01")]);
        short.issuers.get_mut("ec").unwrap().sha256[0] = "33".into();
        assert_eq!(
            plan(Some(10), Answer::Changes(short)),
            Err(FeedError::BadHashes("ec".into()))
        );
        assert_eq!(
            plan(Some(10), Answer::Changes(feed(10, 10, &[]))),
            Ok(Plan::Nothing)
        );
        assert_eq!(
            plan(
                Some(10),
                Answer::Gone(Gone {
                    to: 20,
                    issuers: BTreeMap::new()
                })
            ),
            Ok(Plan::InvalidateAll { acknowledge: 20 })
        );
        assert_eq!(
            plan(
                None,
                Answer::Gone(Gone {
                    to: 20,
                    issuers: BTreeMap::new()
                })
            ),
            Ok(Plan::InvalidateAll { acknowledge: 20 })
        );
    }

    /// Publishes a private copy of the demo PKI twice, applying `edit` to ec/index.txt in
    /// between; returns both verified snapshots.
    fn two_publishes(edit: impl FnOnce(&str) -> String) -> (Snapshot, Snapshot) {
        use crate::snapshot::verify::{SnapshotBytes, TrustAnchors};
        use crate::time::UnixTime;
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
        let pki = tempfile::tempdir().unwrap();
        for sub in ["root", "ec", "rsa"] {
            std::fs::create_dir_all(pki.path().join(sub)).unwrap();
            for file in std::fs::read_dir(demo.join(sub)).unwrap().flatten() {
                if file.path().is_file() {
                    std::fs::copy(file.path(), pki.path().join(sub).join(file.file_name())).unwrap();
                }
            }
        }
        let toml = pki.path().join("publish.toml");
        std::fs::copy(demo.join("publish.toml"), &toml).unwrap();
        let out = tempfile::tempdir().unwrap();
        let now = UnixTime(1_790_000_000);
        let load = |now: UnixTime| {
            let plan = crate::publish::PublishConfig::from_file(&toml)
                .unwrap()
                .load(now)
                .unwrap();
            let report = crate::publish::publish(&plan, out.path(), now, &mut |_| {}).unwrap();
            let trust = TrustAnchors::new(plan.issuers.iter().map(|i| i.certificate.clone()).collect());
            Snapshot::verify(
                &std::fs::read(report.manifest).unwrap(),
                SnapshotBytes::Owned(std::fs::read(report.snapshot).unwrap()),
                &trust,
                now,
            )
            .unwrap()
        };
        let first = load(now);
        let index = pki.path().join("ec/index.txt");
        std::fs::write(&index, edit(&std::fs::read_to_string(&index).unwrap())).unwrap();
        (first, load(now.plus_seconds(10)))
    }

    #[test]
    fn a_step_lists_revocations_and_removals_but_not_issuance() {
        let (older, newer) = two_publishes(|index| {
            let mut lines: Vec<String> = index.lines().map(String::from).collect();
            // Revoke the first certificate, drop the second, issue a new one.
            lines[0] = lines[0].replacen(
                "V\t360101000000Z\t\t",
                "R\t360101000000Z\t261101000000Z,keyCompromise\t",
                1,
            );
            lines.remove(1);
            lines.push("V\t360101000000Z\t\t7A7A7A7A7A7A7A7A7A\tunknown\t/CN=new.demo.test".into());
            lines.join("\n") + "\n"
        });
        let StepOutcome::Changes(changes) = step_between(&older, &newer) else {
            panic!("comparable snapshots")
        };
        let mut listed: Vec<String> = changes
            .iter()
            .map(|c| format!("{}/{}", c.issuer, c.serial.to_hex()))
            .collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "ec/1E0960B0ADC3E0CB164197E49DDD009C",
                "ec/418120203C617166D5C7CEB028FE3776"
            ]
        );
        assert!(matches!(step_between(&older, &older), StepOutcome::Changes(c) if c.is_empty()));
    }

    #[test]
    fn the_wire_format_round_trips_serials() {
        let mut history = History::new(Limits::default());
        history.restart(1, BTreeMap::from([("ec".to_string(), hashes())]));
        // A serial whose top bit is set carries a sign byte in DER but not in hex.
        history.push(
            step(1, 2, &["FF01", "00"]),
            BTreeMap::from([("ec".to_string(), hashes())]),
        );
        let Coverage::Changes {
            from,
            to,
            steps,
            issuers,
        } = history.since(1)
        else {
            panic!("no changes")
        };
        let json = serde_json::to_string(&Coverage::feed(from, to, &steps, &issuers)).unwrap();
        let parsed: ChangeFeed = serde_json::from_str(&json).unwrap();
        let Plan::Invalidate { keys, acknowledge } = plan(Some(1), Answer::Changes(parsed)).unwrap() else {
            panic!("no invalidation")
        };
        assert_eq!(acknowledge, 2);
        let ff01 = Serial::from_hex("FF01").unwrap();
        assert_eq!(ff01.as_der_content(), [0x00, 0xFF, 0x01]);
        assert!(keys.contains(&CacheKey::new(CertIdHash::Sha1, &[0x11; 20], &[0x22; 20], &ff01).unwrap()));
        assert_eq!(keys.len(), 4);
    }
}
