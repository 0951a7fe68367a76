//! The change feed between a hub and its caches: `GET /changes?since=A[&wait=S][&offset=N]`
//! on the hub's admin listener.
//!
//! - `200` [`ChangeFeed`]: the certificates whose status changed from sequence `from`
//!   (= A), by issuer section name and serial, in [`FeedStep`]s: one per snapshot the hub
//!   swapped in, each with that snapshot's **signed manifest**, whose
//!   [`ChangeDigest`](ocsp_edge_core::snapshot::ChangeDigest) commits to exactly that
//!   step's list. `to == from` with no steps means nothing changed within the wait. At most
//!   `snapshots.changes_max_records` records per answer: a longer step is sent in pages
//!   (`offset=N` asks for the rest of the step from A), and a page that ends inside a step
//!   has `to == from` so a cache that does not know pages never acknowledges it.
//! - `410` [`Gone`]: the hub cannot describe, with evidence, the changes since A (A is
//!   older than its history, not one of the sequences it served, or a swap skipped a
//!   publish so no signed digest matches the step); it carries the signed manifest of `to`.
//!   The cache drops everything and acknowledges `to`. A cache that has just started asks
//!   `since=0` and gets this.
//!
//! This file holds both sides, no I/O: the hub's bounded [`History`] (fed one step per
//! snapshot swap by [`step_between`]) and the cache's [`plan`] for one answer. The hub
//! must never claim to cover a sequence it did not see swapped in, nor serve a step whose
//! list does not match the digest its manifest signs. The cache acknowledges nothing on
//! the hub's word: a sequence only with its signed manifest, a step only if the list it
//! received has the signed digest, never a sequence below one it acknowledged before, and
//! never before the invalidations that lead to it are applied (the caller does that in
//! that order, see [`super::gate`]). Issuer names from the feed are never trusted: the
//! CertID hashes to invalidate come from the cache's own trust anchors, matched through
//! the signed manifest.

use super::entry::CacheKey;
use ocsp_edge_core::model::Serial;
use ocsp_edge_core::pki::{CertIdHash, Certificate};
use ocsp_edge_core::snapshot::{
    self, verify_manifest, IssuerHashes, Manifest, Snapshot, TrustAnchors, VerifyError,
};
use ocsp_edge_core::time::UnixTime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A `200` answer. Unknown fields are tolerated (not `deny_unknown_fields`): hubs and
/// caches are upgraded one at a time, and a newer hub may say more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFeed {
    pub from: u64,
    pub to: u64,
    /// Unsigned; kept for caches from before [`FeedStep`]s, which used it to name CertIDs.
    /// Current caches ignore it (see [`plan`]).
    pub issuers: BTreeMap<String, FeedIssuer>,
    /// The records of every step in this answer, step after step.
    pub changes: Vec<FeedChange>,
    /// Absent from hubs that predate evidence: a cache then has nothing to check and
    /// acknowledges nothing.
    #[serde(default)]
    pub steps: Vec<FeedStep>,
}

/// One swap's worth of `changes`, with the evidence for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedStep {
    pub from: u64,
    pub to: u64,
    /// The signed manifest of `to`, as JSON text.
    pub manifest: String,
    /// Index, within the step's whole list, of its first record in this answer.
    pub first: u64,
    /// How many of this answer's `changes` belong to the step.
    pub count: u64,
}

/// An issuer's CertID hashes, lowercase hex: `[issuerNameHash, issuerKeyHash]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedIssuer {
    pub sha1: [String; 2],
    pub sha256: [String; 2],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedChange {
    /// Issuer section name (one the step's manifest lists).
    pub issuer: String,
    /// Uppercase hex, as in index.txt ([`Serial::to_hex`]).
    pub serial: String,
}

/// A `410` answer. It carries the issuer map too, for caches from before evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gone {
    pub to: u64,
    #[serde(default)]
    pub issuers: BTreeMap<String, FeedIssuer>,
    /// The signed manifest of `to`, as JSON text.
    #[serde(default)]
    pub manifest: Option<String>,
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

/// The changes between two consecutive served snapshots, with the newer one's manifest.
#[derive(Debug)]
pub struct Step {
    pub from: u64,
    pub to: u64,
    pub changes: Vec<Changed>,
    /// The signed manifest of `to` (JSON), whose change digest matches `changes`.
    pub manifest: Arc<str>,
}

/// What [`step_between`] found.
#[derive(Debug)]
pub enum StepOutcome {
    /// The step, matching the digest `newer`'s manifest signs.
    Changes(Vec<Changed>),
    /// The snapshots cannot be compared serial by serial (an issuer disappeared or its
    /// certificate changed under the same name): the history restarts.
    Incomparable,
    /// `newer`'s manifest signs no list from `older` (the hub skipped a publish, or the
    /// publisher had no previous snapshot), or a different one: the step cannot be
    /// proven to caches, so the history restarts and caches start over.
    Unproven,
}

/// The changes a cache must invalidate between `older` and `newer`
/// ([`snapshot::changes_between`]), if `newer`'s manifest commits to exactly them.
/// Blocking: walks both snapshots' tables.
pub fn step_between(older: &Snapshot, newer: &Snapshot) -> StepOutcome {
    let Some(list) = snapshot::changes_between(older, newer) else {
        return StepOutcome::Incomparable;
    };
    let signed = newer.manifest().body.changes.as_ref();
    if signed != Some(&snapshot::change_digest_of(older.sequence(), &list)) {
        return StepOutcome::Unproven;
    }
    let mut names: BTreeMap<String, Arc<str>> = BTreeMap::new();
    let changes = list
        .into_iter()
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

/// The manifest of `snapshot` as served in the feed.
pub fn manifest_text(snapshot: &Snapshot) -> Arc<str> {
    Arc::from(String::from_utf8_lossy(&snapshot.manifest().to_json()).as_ref())
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
    /// The signed manifest of the head.
    manifest: Option<Arc<str>>,
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
        manifest: Option<Arc<str>>,
    },
    Changes {
        from: u64,
        to: u64,
        steps: Vec<Arc<Step>>,
        issuers: Arc<BTreeMap<String, FeedIssuer>>,
    },
}

impl Coverage {
    /// The wire form of `Changes` (built outside the history's lock): whole steps while
    /// they fit in `max_records`, then as much of the next one as fits if it is the first
    /// (records from `offset` on, for the first step). Always makes progress: at least
    /// one record, or one whole empty step.
    pub fn page(
        from: u64,
        steps: &[Arc<Step>],
        issuers: &BTreeMap<String, FeedIssuer>,
        offset: usize,
        max_records: usize,
    ) -> ChangeFeed {
        let mut feed = ChangeFeed {
            from,
            to: from,
            issuers: issuers.clone(),
            changes: Vec::new(),
            steps: Vec::new(),
        };
        let mut budget = max_records.max(1);
        for (position, step) in steps.iter().enumerate() {
            let first = if position == 0 {
                offset.min(step.changes.len())
            } else {
                0
            };
            let remaining = step.changes.len() - first;
            if position > 0 && remaining > budget {
                break;
            }
            let taken = remaining.min(budget);
            feed.changes
                .extend(step.changes[first..first + taken].iter().map(|c| FeedChange {
                    issuer: c.issuer.to_string(),
                    serial: c.serial.to_hex(),
                }));
            feed.steps.push(FeedStep {
                from: step.from,
                to: step.to,
                manifest: step.manifest.to_string(),
                first: first as u64,
                count: taken as u64,
            });
            budget -= taken;
            if taken < remaining {
                // Ends inside the step: nothing in this answer may be acknowledged yet.
                return feed;
            }
            feed.to = step.to;
            if budget == 0 {
                break;
            }
        }
        feed
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
    /// whose step from the previous cannot be compared or proven), whose signed manifest
    /// is `manifest`.
    pub fn restart(&mut self, at: u64, issuers: BTreeMap<String, FeedIssuer>, manifest: Option<Arc<str>>) {
        self.start = Some(at);
        self.steps.clear();
        self.records = 0;
        self.issuers = Arc::new(issuers);
        self.manifest = manifest;
    }

    /// Records one swap. A step that does not continue the chain, or that alone exceeds
    /// the record limit, restarts it.
    pub fn push(&mut self, step: Step, issuers: BTreeMap<String, FeedIssuer>) {
        if self.head() != Some(step.from) || step.to <= step.from || step.changes.len() > self.limits.records
        {
            self.restart(step.to, issuers, Some(step.manifest));
            return;
        }
        self.records += step.changes.len();
        self.manifest = Some(step.manifest.clone());
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
        let gone = || Coverage::Gone {
            to: head,
            issuers: issuers.clone(),
            manifest: self.manifest.clone(),
        };
        if since >= head {
            return Coverage::Current { issuers };
        }
        if since < start {
            return gone();
        }
        match self.steps.iter().position(|step| step.from == since) {
            Some(first) => Coverage::Changes {
                from: since,
                to: head,
                steps: self.steps.range(first..).cloned().collect(),
                issuers,
            },
            // Inside the chain but not a sequence this hub served.
            None => gone(),
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

/// A hub's answer to `since=A`, as the cache received it (a paged step already joined:
/// its pages' records in order, the step's `count` their sum).
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
        /// Each key with the signed time (its step's manifest `created_at`) its
        /// certificate changed at: no response produced before it may be served again.
        keys: Vec<(CacheKey, UnixTime)>,
        acknowledge: u64,
        names: SignedNames,
    },
    InvalidateAll {
        acknowledge: u64,
        names: SignedNames,
    },
}

/// For each of the cache's trust anchors (by position), the issuer section name the
/// newest verified manifest gives it: what metrics may label it with.
pub type SignedNames = Vec<String>;

/// A trust anchor's CertID forms, computed by the cache from the certificate itself.
type Variant = (CertIdHash, Vec<u8>, Vec<u8>);

/// What the cache trusts, and the CertID forms of each anchor, in the anchors' order.
#[derive(Clone, Debug)]
pub struct FeedTrust {
    anchors: TrustAnchors,
    variants: Vec<[Variant; 2]>,
}

impl FeedTrust {
    pub fn new(issuers: &[Certificate]) -> FeedTrust {
        let variants = issuers
            .iter()
            .map(|c| {
                let form = |h| (h, c.name_hash(h), c.key_hash(h));
                [form(CertIdHash::Sha1), form(CertIdHash::Sha256)]
            })
            .collect();
        FeedTrust {
            anchors: TrustAnchors::new(issuers.to_vec()),
            variants,
        }
    }
}

/// Why an answer was refused. Nothing of a refused answer is acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("asked for changes since {asked:?}, got changes since {got}")]
    WrongFrom { asked: Option<u64>, got: u64 },
    #[error("sequence {to} is below the acknowledged {floor}")]
    Backwards { to: u64, floor: u64 },
    #[error("the answer carries no signed manifest to prove it")]
    NoEvidence,
    #[error("the manifest does not verify: {0}")]
    Untrusted(#[from] VerifyError),
    #[error("the manifest is not signed for trusted issuer {0}")]
    Uncovered(String),
    #[error("the manifest is for sequence {signed}, the step claims {claimed}")]
    WrongManifest { signed: u64, claimed: u64 },
    #[error("the manifest commits to no change list since {0}")]
    Unproven(u64),
    #[error("the change list does not match the signed digest ({got} records, {signed} signed)")]
    DigestMismatch { got: u64, signed: u64 },
    #[error("a change names issuer {0:?}, which the step's manifest does not list")]
    UnknownIssuer(String),
    #[error("serial {0:?} is not hexadecimal")]
    BadSerial(String),
    #[error("the answer's steps and records do not add up")]
    Malformed,
}

impl FeedError {
    /// Every label [`FeedError::label`] can return (metrics pre-create their series).
    pub const LABELS: [&'static str; 11] = [
        "wrong_from",
        "backwards",
        "no_evidence",
        "untrusted_manifest",
        "uncovered",
        "wrong_manifest",
        "unproven",
        "digest_mismatch",
        "unknown_issuer",
        "bad_serial",
        "malformed",
    ];

    pub fn label(&self) -> &'static str {
        match self {
            FeedError::WrongFrom { .. } => "wrong_from",
            FeedError::Backwards { .. } => "backwards",
            FeedError::NoEvidence => "no_evidence",
            FeedError::Untrusted(_) => "untrusted_manifest",
            FeedError::Uncovered(_) => "uncovered",
            FeedError::WrongManifest { .. } => "wrong_manifest",
            FeedError::Unproven(_) => "unproven",
            FeedError::DigestMismatch { .. } => "digest_mismatch",
            FeedError::UnknownIssuer(_) => "unknown_issuer",
            FeedError::BadSerial(_) => "bad_serial",
            FeedError::Malformed => "malformed",
        }
    }
}

/// Names from a hub end up in logs: keep them short.
fn clipped(text: &str) -> String {
    text.chars().take(64).collect()
}

/// A verified manifest: the manifest, and for each issuer it lists (in its order) the
/// position of the cache's trust anchor that issuer's signature chains to.
struct Evidence {
    manifest: Manifest,
    anchor_of_issuer: Vec<usize>,
}

impl Evidence {
    /// Verifies `text` against the cache's trust anchors ([`verify_manifest`]) and checks
    /// it speaks for every one of them: a manifest signed for fewer issuers than the cache
    /// trusts says nothing about the others' changes, so it cannot vouch that none
    /// happened.
    fn verify(text: &str, trust: &FeedTrust, now: UnixTime) -> Result<Evidence, FeedError> {
        let (manifest, anchors) = verify_manifest(text.as_bytes(), &trust.anchors, now)?;
        let issuers = trust.anchors.issuers();
        let mut anchor_of_issuer = Vec::with_capacity(anchors.len());
        for (anchor, _signer) in &anchors {
            let position = issuers
                .iter()
                .position(|c| c.der() == anchor.der())
                .ok_or_else(|| FeedError::Uncovered(anchor.display_name()))?;
            anchor_of_issuer.push(position);
        }
        if let Some(missing) = (0..issuers.len()).find(|p| !anchor_of_issuer.contains(p)) {
            return Err(FeedError::Uncovered(clipped(&issuers[missing].display_name())));
        }
        Ok(Evidence {
            manifest,
            anchor_of_issuer,
        })
    }

    fn names(&self, trust: &FeedTrust) -> SignedNames {
        let mut names = vec![String::new(); trust.variants.len()];
        for (issuer, &anchor) in self.manifest.body.issuers.iter().zip(&self.anchor_of_issuer) {
            names[anchor] = clipped(&issuer.name);
        }
        names
    }

    fn anchor_named(&self, name: &str) -> Option<usize> {
        let position = self.manifest.body.issuers.iter().position(|i| i.name == name)?;
        self.anchor_of_issuer.get(position).copied()
    }
}

/// Decides what one answer to `since=asked` (`None`: nothing acknowledged, asked as
/// `since=0`) means for the cache, which has never acknowledged anything above `floor`.
/// Everything acknowledged is proven by a manifest signed for every anchor in `trust`:
/// a `410`'s `to` by its manifest, each step by its manifest's change digest, which the
/// records received must match exactly, and steps must chain from `asked`.
pub fn plan(
    asked: Option<u64>,
    floor: u64,
    answer: Answer,
    trust: &FeedTrust,
    now: UnixTime,
) -> Result<Plan, FeedError> {
    let feed = match answer {
        Answer::Gone(gone) => {
            let evidence =
                Evidence::verify(gone.manifest.as_deref().ok_or(FeedError::NoEvidence)?, trust, now)?;
            let signed = evidence.manifest.body.sequence;
            if signed != gone.to {
                return Err(FeedError::WrongManifest {
                    signed,
                    claimed: gone.to,
                });
            }
            if gone.to < floor {
                return Err(FeedError::Backwards { to: gone.to, floor });
            }
            return Ok(Plan::InvalidateAll {
                acknowledge: gone.to,
                names: evidence.names(trust),
            });
        }
        Answer::Changes(feed) => feed,
    };
    let Some(asked) = asked.filter(|&asked| asked == feed.from) else {
        return Err(FeedError::WrongFrom {
            asked,
            got: feed.from,
        });
    };
    if feed.steps.is_empty() {
        return match feed.to == feed.from && feed.changes.is_empty() {
            true => Ok(Plan::Nothing),
            false => Err(FeedError::NoEvidence),
        };
    }
    let mut cursor = asked;
    let mut records = feed.changes.iter();
    let mut keys = Vec::new();
    let mut names = SignedNames::new();
    for step in &feed.steps {
        if step.from != cursor {
            return Err(FeedError::WrongFrom {
                asked: Some(cursor),
                got: step.from,
            });
        }
        let evidence = Evidence::verify(&step.manifest, trust, now)?;
        let body = &evidence.manifest.body;
        if body.sequence != step.to || step.to <= step.from {
            return Err(FeedError::WrongManifest {
                signed: body.sequence,
                claimed: step.to,
            });
        }
        let changed_at = UnixTime::parse_rfc3339(&body.created_at).ok_or(FeedError::Malformed)?;
        let signed = match &body.changes {
            Some(signed) if signed.since == step.from => signed,
            _ => return Err(FeedError::Unproven(step.from)),
        };
        if step.first != 0 {
            return Err(FeedError::Malformed);
        }
        let count = usize::try_from(step.count).map_err(|_| FeedError::Malformed)?;
        let mut list: Vec<(&str, Serial)> = Vec::with_capacity(count.min(feed.changes.len()));
        for change in records.by_ref().take(count) {
            let anchor = evidence
                .anchor_named(&change.issuer)
                .ok_or_else(|| FeedError::UnknownIssuer(clipped(&change.issuer)))?;
            let serial = Serial::from_hex(&change.serial)
                .ok_or_else(|| FeedError::BadSerial(clipped(&change.serial)))?;
            // Both variants: a client may have asked with either hash, and each answer is
            // cached under its own CertID. A serial too long to be cached cannot be in
            // the cache either.
            for (hash, name_hash, key_hash) in &trust.variants[anchor] {
                keys.extend(CacheKey::new(*hash, name_hash, key_hash, &serial).map(|key| (key, changed_at)));
            }
            list.push((change.issuer.as_str(), serial));
        }
        if list.len() != count {
            return Err(FeedError::Malformed);
        }
        let got = snapshot::change_digest(step.from, list.iter().map(|(issuer, serial)| (*issuer, serial)));
        if got != *signed {
            return Err(FeedError::DigestMismatch {
                got: got.count,
                signed: signed.count,
            });
        }
        names = evidence.names(trust);
        cursor = step.to;
    }
    if records.next().is_some() || feed.to != cursor {
        return Err(FeedError::Malformed);
    }
    if cursor < floor {
        return Err(FeedError::Backwards { to: cursor, floor });
    }
    Ok(Plan::Invalidate {
        keys,
        acknowledge: cursor,
        names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocsp_edge_core::pki::SigningKey;
    use ocsp_edge_core::snapshot::{ManifestBody, SnapshotBytes};

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
            manifest: Arc::from(format!("manifest {to}")),
        }
    }

    fn serials(coverage: &Coverage) -> Vec<String> {
        match coverage {
            Coverage::Changes {
                from, steps, issuers, ..
            } => Coverage::page(*from, steps, issuers, 0, usize::MAX)
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
        history.restart(100, BTreeMap::new(), Some(Arc::from("m100")));
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
        // A 410 carries the head's manifest as evidence.
        match history.since(99) {
            Coverage::Gone {
                to: 120, manifest, ..
            } => assert_eq!(manifest.as_deref(), Some("manifest 120")),
            other => panic!("{other:?}"),
        }
        // 105 lies inside the first step but was never served here: a diff from 100 could
        // miss a status that changed at 105 and changed back at 110.
        assert!(matches!(history.since(105), Coverage::Gone { to: 120, .. }));
    }

    #[test]
    fn a_step_that_does_not_continue_the_chain_restarts_it() {
        let mut history = History::new(Limits::default());
        history.restart(100, BTreeMap::new(), None);
        history.push(step(100, 110, &["01"]), BTreeMap::new());
        history.push(step(115, 120, &["02"]), BTreeMap::new());
        assert_eq!(history.start(), Some(120));
        assert_eq!(history.records(), 0);
        assert!(matches!(history.since(110), Coverage::Gone { to: 120, .. }));
    }

    #[test]
    fn the_history_is_bounded_in_steps_and_records() {
        let mut history = History::new(Limits { steps: 2, records: 3 });
        history.restart(1, BTreeMap::new(), None);
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

    #[test]
    fn pages_hold_whole_steps_or_part_of_the_first_and_never_claim_a_partial_step() {
        let steps: Vec<Arc<Step>> = vec![
            Arc::new(step(1, 2, &["01", "02", "03"])),
            Arc::new(step(2, 3, &["04"])),
            Arc::new(step(3, 4, &[])),
            Arc::new(step(4, 5, &["05", "06"])),
        ];
        let issuers = BTreeMap::new();
        let page = Coverage::page(1, &steps, &issuers, 0, 2);
        assert_eq!(page.changes.len(), 2);
        assert_eq!(page.to, 1, "a page ending inside a step acknowledges nothing");
        assert_eq!((page.steps[0].first, page.steps[0].count), (0, 2));
        let rest = Coverage::page(1, &steps, &issuers, 2, 2);
        let got: Vec<_> = rest
            .steps
            .iter()
            .map(|s| (s.from, s.to, s.first, s.count))
            .collect();
        assert_eq!(got, [(1, 2, 2, 1), (2, 3, 0, 1)]);
        assert_eq!(rest.to, 3);
        let all = Coverage::page(1, &steps, &issuers, 0, 100);
        assert_eq!(all.to, 5);
        assert_eq!(all.changes.len(), 6);
        assert_eq!(all.steps.len(), 4);
        // Whole steps only after the first: a step that does not fit waits for the next page.
        let some = Coverage::page(2, &steps[1..], &issuers, 0, 2);
        assert_eq!(some.to, 4);
        assert_eq!(some.changes.len(), 1);
    }

    /// A private demo PKI published twice (the second time with `edit` applied to
    /// ec/index.txt): the snapshots, their trust anchors and the PKI directory.
    struct Published {
        older: Snapshot,
        newer: Snapshot,
        trust: FeedTrust,
        pki: tempfile::TempDir,
        _out: tempfile::TempDir,
    }

    fn two_publishes(edit: impl FnOnce(&str) -> String) -> Published {
        let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo");
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
        let mut anchors = Vec::new();
        let mut load = |now: UnixTime| {
            let plan = ocsp_edge_publisher::publish::PublishConfig::from_file(&toml)
                .unwrap()
                .load(now)
                .unwrap();
            let report = ocsp_edge_publisher::publish::publish(&plan, out.path(), now, &mut |_| {}).unwrap();
            anchors = plan
                .issuers
                .iter()
                .map(|i| i.certificate.clone())
                .collect::<Vec<_>>();
            Snapshot::verify(
                &std::fs::read(report.manifest).unwrap(),
                SnapshotBytes::Owned(std::fs::read(report.snapshot).unwrap()),
                &TrustAnchors::new(anchors.clone()),
                now,
            )
            .unwrap()
        };
        let older = load(now);
        let index = pki.path().join("ec/index.txt");
        std::fs::write(&index, edit(&std::fs::read_to_string(&index).unwrap())).unwrap();
        let newer = load(now.plus_seconds(10));
        Published {
            older,
            newer,
            trust: FeedTrust::new(&anchors),
            pki,
            _out: out,
        }
    }

    /// Revokes the first certificate of ec/index.txt, drops the second, issues a new one.
    fn revoke_remove_issue(index: &str) -> String {
        let mut lines: Vec<String> = index.lines().map(String::from).collect();
        lines[0] = lines[0].replacen(
            "V\t360101000000Z\t\t",
            "R\t360101000000Z\t261101000000Z,keyCompromise\t",
            1,
        );
        lines.remove(1);
        lines.push("V\t360101000000Z\t\t7A7A7A7A7A7A7A7A7A\tunknown\t/CN=new.demo.test".into());
        lines.join("\n") + "\n"
    }

    const REVOKED: &str = "1E0960B0ADC3E0CB164197E49DDD009C";
    const REMOVED: &str = "418120203C617166D5C7CEB028FE3776";

    #[test]
    fn a_step_lists_revocations_and_removals_but_not_issuance_and_matches_the_signed_digest() {
        let published = two_publishes(revoke_remove_issue);
        let (older, newer) = (&published.older, &published.newer);
        let signed = newer
            .manifest()
            .body
            .changes
            .clone()
            .expect("the publisher signs a digest");
        assert_eq!((signed.since, signed.count), (older.sequence(), 2));
        let StepOutcome::Changes(changes) = step_between(older, newer) else {
            panic!("comparable snapshots with a matching digest")
        };
        let mut listed: Vec<String> = changes
            .iter()
            .map(|c| format!("{}/{}", c.issuer, c.serial.to_hex()))
            .collect();
        listed.sort();
        assert_eq!(listed, [format!("ec/{REVOKED}"), format!("ec/{REMOVED}")]);
        assert!(
            older.manifest().body.changes.is_none(),
            "nothing before the first"
        );
        // The hub cannot prove a step it did not see published: here, from newer to
        // itself (what a hub that skipped a publish would compute).
        assert!(matches!(step_between(newer, newer), StepOutcome::Unproven));
        assert!(matches!(step_between(older, older), StepOutcome::Unproven));
    }

    /// The hub's side for one swap from `older` to `newer`: a history, as a hub holds it.
    fn hub(published: &Published) -> History {
        let mut history = History::new(Limits::default());
        history.restart(
            published.older.sequence(),
            issuers_of(&published.older),
            Some(manifest_text(&published.older)),
        );
        let StepOutcome::Changes(changes) = step_between(&published.older, &published.newer) else {
            panic!("a provable step")
        };
        history.push(
            Step {
                from: published.older.sequence(),
                to: published.newer.sequence(),
                changes,
                manifest: manifest_text(&published.newer),
            },
            issuers_of(&published.newer),
        );
        history
    }

    fn answer(history: &History, since: u64) -> Answer {
        match history.since(since) {
            Coverage::Changes {
                from, steps, issuers, ..
            } => Answer::Changes(Coverage::page(from, &steps, &issuers, 0, usize::MAX)),
            Coverage::Gone {
                to,
                issuers,
                manifest,
            } => Answer::Gone(Gone {
                to,
                issuers: (*issuers).clone(),
                manifest: manifest.map(|m| m.to_string()),
            }),
            other => panic!("{other:?}"),
        }
    }

    fn now() -> UnixTime {
        UnixTime(1_790_000_100)
    }

    #[test]
    fn a_proven_step_invalidates_both_variants_of_each_change_then_acknowledges() {
        let published = two_publishes(revoke_remove_issue);
        let (a, b) = (published.older.sequence(), published.newer.sequence());
        let history = hub(&published);
        let plan = plan(Some(a), a, answer(&history, a), &published.trust, now()).unwrap();
        let Plan::Invalidate {
            keys,
            acknowledge,
            names,
        } = plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(acknowledge, b);
        assert_eq!(names, ["ec", "rsa"], "labels come from the signed manifest");
        let ec = &published.trust.anchors.issuers()[0];
        for serial in [REVOKED, REMOVED] {
            let serial = Serial::from_hex(serial).unwrap();
            for hash in [CertIdHash::Sha1, CertIdHash::Sha256] {
                let key = CacheKey::new(hash, &ec.name_hash(hash), &ec.key_hash(hash), &serial).unwrap();
                let signed_time = UnixTime::parse_rfc3339(&published.newer.manifest().body.created_at);
                assert!(keys.contains(&(key, signed_time.unwrap())), "{serial:?} {hash:?}");
            }
        }
        assert_eq!(keys.len(), 4);
        // A 410 proves its `to` with the head's manifest.
        assert_eq!(
            plan_of(&published, None, 0, answer(&history, 0)).unwrap(),
            Plan::InvalidateAll {
                acknowledge: b,
                names: vec!["ec".into(), "rsa".into()]
            }
        );
        // Nothing new within the wait.
        let nothing = ChangeFeed {
            from: b,
            to: b,
            issuers: BTreeMap::new(),
            changes: vec![],
            steps: vec![],
        };
        assert_eq!(
            plan_of(&published, Some(b), b, Answer::Changes(nothing)).unwrap(),
            Plan::Nothing
        );
    }

    fn plan_of(
        published: &Published,
        asked: Option<u64>,
        floor: u64,
        answer: Answer,
    ) -> Result<Plan, FeedError> {
        plan(asked, floor, answer, &published.trust, now())
    }

    fn changes_answer(published: &Published) -> ChangeFeed {
        let a = published.older.sequence();
        match answer(&hub(published), a) {
            Answer::Changes(feed) => feed,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_emptied_or_altered_change_list_is_refused() {
        let published = two_publishes(revoke_remove_issue);
        let a = published.older.sequence();
        let refused = |feed: ChangeFeed| {
            plan_of(&published, Some(a), a, Answer::Changes(feed))
                .unwrap_err()
                .label()
        };

        // The attack of the review: the list emptied, counts adjusted to match.
        let mut emptied = changes_answer(&published);
        emptied.changes.clear();
        emptied.steps[0].count = 0;
        assert_eq!(refused(emptied), "digest_mismatch");

        // One change swapped for another certificate of the same issuer.
        let mut swapped = changes_answer(&published);
        swapped.changes[0].serial = "01".into();
        assert_eq!(refused(swapped), "digest_mismatch");

        // The evidence removed: an old-style answer claiming a step.
        let mut bare = changes_answer(&published);
        bare.steps.clear();
        assert_eq!(refused(bare), "no_evidence");

        // Records that belong to no step.
        let mut extra = changes_answer(&published);
        let first = extra.changes[0].clone();
        extra.changes.push(first);
        assert_eq!(refused(extra), "malformed");

        // A change under a name the manifest does not list: refused with a fixed label,
        // whatever the name (feed-supplied names never become labels).
        let mut unknown = changes_answer(&published);
        unknown.changes[0].issuer = "x".repeat(10_000);
        let error = plan_of(&published, Some(a), a, Answer::Changes(unknown)).unwrap_err();
        assert_eq!(error.label(), "unknown_issuer");
        assert!(error.to_string().len() < 200, "names are clipped in messages");

        // The feed's unsigned CertID hashes are not used: garbage there changes nothing.
        let mut hashes = changes_answer(&published);
        for issuer in hashes.issuers.values_mut() {
            issuer.sha1 = ["00".repeat(20), "00".repeat(20)];
        }
        let Plan::Invalidate { keys, .. } = plan_of(&published, Some(a), a, Answer::Changes(hashes)).unwrap()
        else {
            panic!()
        };
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn a_step_is_refused_unless_its_manifest_proves_it() {
        let published = two_publishes(revoke_remove_issue);
        let (a, b) = (published.older.sequence(), published.newer.sequence());
        let refused = |feed: ChangeFeed| {
            plan_of(&published, Some(a), a, Answer::Changes(feed))
                .unwrap_err()
                .label()
        };

        // The older manifest offered as the newer's.
        let mut replayed = changes_answer(&published);
        replayed.steps[0].manifest = manifest_text(&published.older).to_string();
        assert_eq!(refused(replayed), "wrong_manifest");

        // A manifest whose body was edited after signing.
        let mut edited = changes_answer(&published);
        edited.steps[0].manifest = edited.steps[0]
            .manifest
            .replacen("\"count\": 2", "\"count\": 0", 1);
        assert_eq!(refused(edited), "untrusted_manifest");

        // The body re-signed with a key no trust anchor certified (the root CA's).
        let mut body: ManifestBody = published.newer.manifest().body.clone();
        body.changes = Some(snapshot::change_digest(a, []));
        let root = Certificate::from_pem(
            &std::fs::read_to_string(published.pki.path().join("root/ca.pem")).unwrap(),
        )
        .unwrap();
        let key = SigningKey::from_pem(
            &std::fs::read_to_string(published.pki.path().join("root/ca.key")).unwrap(),
            root.public_key(),
            root.key_kind().unwrap(),
        )
        .unwrap();
        let forged = Manifest::sign(body, &[("ec", &root, &key), ("rsa", &root, &key)]).unwrap();
        let mut wrong_key = changes_answer(&published);
        wrong_key.changes.clear();
        wrong_key.steps[0].count = 0;
        wrong_key.steps[0].manifest = String::from_utf8(forged.to_json()).unwrap();
        assert_eq!(refused(wrong_key), "untrusted_manifest");

        // A step the hub claims from a sequence other than the one asked.
        assert_eq!(
            plan_of(
                &published,
                Some(a - 1),
                a - 1,
                Answer::Changes(changes_answer(&published))
            )
            .unwrap_err()
            .label(),
            "wrong_from"
        );
        // Nothing acknowledged yet: only a 410 can start the cache.
        assert_eq!(
            plan_of(&published, None, 0, Answer::Changes(changes_answer(&published)))
                .unwrap_err()
                .label(),
            "wrong_from"
        );
        // A manifest signed for only one of the issuers the cache trusts.
        let only_ec = FeedTrust::new(&published.trust.anchors.issuers()[..1]);
        let partial = plan(
            Some(a),
            a,
            Answer::Changes(changes_answer(&published)),
            &only_ec,
            now(),
        );
        assert_eq!(
            partial.unwrap_err().label(),
            "untrusted_manifest",
            "rsa is not trusted"
        );
        let with_extra = FeedTrust::new(&[
            published.trust.anchors.issuers()[0].clone(),
            published.trust.anchors.issuers()[1].clone(),
            root.clone(),
        ]);
        let uncovered = plan(
            Some(a),
            a,
            Answer::Changes(changes_answer(&published)),
            &with_extra,
            now(),
        );
        // The core's verifier already refuses a manifest that does not cover every trust
        // anchor; the cache's own check stays as a second line (see Evidence::verify).
        assert!(
            matches!(uncovered.unwrap_err().label(), "untrusted_manifest" | "uncovered"),
            "a manifest missing a trusted issuer was accepted"
        );
        let _ = b;
    }

    #[test]
    fn sequences_never_move_backwards() {
        let published = two_publishes(revoke_remove_issue);
        let (a, b) = (published.older.sequence(), published.newer.sequence());
        // A genuine, signed 410 for the older sequence, offered to a cache at the newer.
        let stale = Answer::Gone(Gone {
            to: a,
            issuers: BTreeMap::new(),
            manifest: Some(manifest_text(&published.older).to_string()),
        });
        assert_eq!(
            plan_of(&published, Some(b), b, stale).unwrap_err().label(),
            "backwards"
        );
        // Also after the cache dropped its acknowledgement (the floor stays).
        let stale = Answer::Gone(Gone {
            to: a,
            issuers: BTreeMap::new(),
            manifest: Some(manifest_text(&published.older).to_string()),
        });
        assert_eq!(
            plan_of(&published, None, b, stale).unwrap_err().label(),
            "backwards"
        );
        // A 410 whose `to` is not its manifest's, or that has none.
        let lying = Answer::Gone(Gone {
            to: u64::MAX,
            issuers: BTreeMap::new(),
            manifest: Some(manifest_text(&published.newer).to_string()),
        });
        assert_eq!(
            plan_of(&published, None, 0, lying).unwrap_err().label(),
            "wrong_manifest"
        );
        let bare = Answer::Gone(Gone {
            to: b,
            issuers: BTreeMap::new(),
            manifest: None,
        });
        assert_eq!(
            plan_of(&published, None, 0, bare).unwrap_err().label(),
            "no_evidence"
        );
    }

    #[test]
    fn every_feed_error_label_is_listed() {
        let errors = [
            FeedError::WrongFrom { asked: None, got: 1 },
            FeedError::Backwards { to: 1, floor: 2 },
            FeedError::NoEvidence,
            FeedError::Untrusted(VerifyError::HashMismatch),
            FeedError::Uncovered("x".into()),
            FeedError::WrongManifest {
                signed: 1,
                claimed: 2,
            },
            FeedError::Unproven(1),
            FeedError::DigestMismatch { got: 1, signed: 2 },
            FeedError::UnknownIssuer("x".into()),
            FeedError::BadSerial("x".into()),
            FeedError::Malformed,
        ];
        let labels: Vec<_> = errors.iter().map(FeedError::label).collect();
        assert_eq!(labels, FeedError::LABELS);
    }

    #[test]
    fn the_wire_format_round_trips_serials() {
        let mut history = History::new(Limits::default());
        history.restart(1, BTreeMap::new(), None);
        // A serial whose top bit is set carries a sign byte in DER but not in hex.
        history.push(step(1, 2, &["FF01", "00"]), BTreeMap::new());
        let Answer::Changes(feed) = answer(&history, 1) else {
            panic!("no changes")
        };
        let json = serde_json::to_string(&feed).unwrap();
        let parsed: ChangeFeed = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, feed);
        let ff01 = Serial::from_hex(&parsed.changes[0].serial).unwrap();
        assert_eq!(ff01.as_der_content(), [0x00, 0xFF, 0x01]);
        // An answer from a hub that predates steps still parses (and proves nothing).
        let old: ChangeFeed = serde_json::from_str(r#"{"from":1,"to":2,"issuers":{},"changes":[]}"#).unwrap();
        assert!(old.steps.is_empty());
    }
}
