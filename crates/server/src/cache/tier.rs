//! The cache tier at the edge: the moka cache, fills from hubs (POST, failover, verify,
//! admit), the change-feed task (long-poll, invalidate, acknowledge), metrics and
//! readiness.
//!
//! Owns every network exchange with hubs. Decisions are delegated: what a response means
//! to [`ocsp_edge_core::ocsp::verify_response`], whether it may be cached to [`super::entry::admit`] under
//! [`super::gate::Gate`], what a feed answer means to [`super::feed::plan`].

use super::entry::{self, Admission, CacheKey, Entry};
use super::feed::{self, Answer, ChangeFeed, FeedError, FeedTrust, Gone, Plan, SignedNames};
use super::gate::{AdmissionGuard, Gate};
use super::metrics::CacheMetrics;
use crate::config::CacheConfig;
use bytes::Bytes;
use moka::future::Cache;
use ocsp_edge_core::ocsp::{self, encode_request, Refusal, RequestedCertId, ResponseError, ResponseStatus};
use ocsp_edge_core::pki::{CertIdHash, Certificate};
use ocsp_edge_core::time::UnixTime;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Response header a hub puts on its successful OCSP answers when the request carries
/// it (with any value): the sequence of the snapshot the answer came from (what the
/// admission rule compares). Only caches ask, so public answers stay as they were and
/// the hub formats nothing extra for them.
pub const SEQUENCE_HEADER: &str = "ocsp-edge-sequence";
/// Pre-signed responses are about 1 KB; an RSA-4096 delegated signer's is under 4 KB.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// One feed answer holds at most the hub's `snapshots.changes_max_records` (10,000 by
/// default, under 1 MB as JSON); this leaves room for a hub configured higher.
const MAX_FEED_BYTES: usize = 64 << 20;
/// A step longer than one answer comes in pages, joined before it is checked: at most
/// this many records (a hub's whole history holds 200,000 by default) and pages.
const MAX_STEP_RECORDS: usize = 1_000_000;
const MAX_PAGES: usize = 1_000;
/// Cache keys whose signed change time is remembered (about 120 bytes each): the
/// changes of the last 50,000 certificates (two keys each).
const REMEMBERED_CHANGES: usize = 100_000;

/// Why one fill attempt got nothing servable from one hub.
#[derive(Debug, thiserror::Error)]
pub enum FillFailure {
    #[error("hub unreachable: {0}")]
    Unreachable(String),
    #[error("hub answered HTTP {0}")]
    HttpStatus(u16),
    #[error("hub answer larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("hub answered {0:?}")]
    HubUnavailable(ResponseStatus),
    #[error("hub answer refused: {0}")]
    Invalid(#[from] ResponseError),
    #[error("hub answered from sequence {filled:?}, older than the acknowledged {acknowledged:?}")]
    Lagging {
        filled: Option<u64>,
        acknowledged: Option<u64>,
    },
    #[error("the response was produced at {produced}, before its certificate's signed change at {changed}")]
    Stale { produced: i64, changed: i64 },
}

impl FillFailure {
    /// The labels of its own variants; refusals of the hub's answer add
    /// [`ResponseError::LABELS`] (see [`FillFailure::labels`]).
    const OWN_LABELS: [&'static str; 6] = [
        "unreachable",
        "http_status",
        "too_large",
        "hub_unavailable",
        "lagging",
        "stale",
    ];

    /// Every label [`FillFailure::label`] can return (metrics pre-create their series).
    pub fn labels() -> impl Iterator<Item = &'static str> {
        Self::OWN_LABELS.into_iter().chain(ResponseError::LABELS)
    }

    pub fn label(&self) -> &'static str {
        match self {
            FillFailure::Unreachable(_) => "unreachable",
            FillFailure::HttpStatus(_) => "http_status",
            FillFailure::TooLarge => "too_large",
            FillFailure::HubUnavailable(_) => "hub_unavailable",
            FillFailure::Lagging { .. } => "lagging",
            FillFailure::Stale { .. } => "stale",
            FillFailure::Invalid(e) => e.label(),
        }
    }
}

/// Why one change-feed round failed.
#[derive(Debug, thiserror::Error)]
enum FeedFailure {
    #[error("hub unreachable: {0}")]
    Unreachable(String),
    #[error("hub answered HTTP {0}")]
    HttpStatus(u16),
    #[error("the answer is larger than {MAX_FEED_BYTES} bytes")]
    TooLarge,
    #[error("the answer is not the expected JSON: {0}")]
    Json(String),
    #[error("a paged step does not continue where the previous page ended")]
    BrokenPages,
    #[error(transparent)]
    Refused(#[from] FeedError),
}

/// The outcome of a miss or refresh, across all hubs tried.
enum Fetched {
    /// Admitted: insert, then drop the guard.
    Cache(Arc<Entry>, AdmissionGuard),
    /// Verified and servable, not to be cached.
    Serve(Arc<Entry>),
    /// A hub refused the request; pass the refusal on, uncached.
    Refused(Refusal),
    /// No hub gave anything servable.
    Failed,
}

/// What a miss that did not end in the cache gives the waiting requests (moka hands the
/// "error" of a coalesced fill to every request that waited for it).
#[derive(Debug)]
enum NotCached {
    Serve(Arc<Entry>),
    Refused(Refusal),
    Failed,
}

struct Hub {
    ocsp: String,
    admin: String,
}

/// A trusted issuer, with its CertID hashes precomputed and the name the hubs use for it.
struct Anchor {
    certificate: Certificate,
    sha1: (Vec<u8>, Vec<u8>),
    sha256: (Vec<u8>, Vec<u8>),
    /// The issuer section name a verified manifest gives it; the certificate's common name
    /// until then. Only for metrics labels, so only ever from signed data: an unsigned
    /// feed could otherwise mint a new label series with every answer.
    name: RwLock<Arc<str>>,
}

impl Anchor {
    fn matches(&self, id: &RequestedCertId) -> bool {
        let (name, key) = match id.hash {
            CertIdHash::Sha1 => &self.sha1,
            CertIdHash::Sha256 => &self.sha256,
        };
        *name == id.issuer_name_hash && *key == id.issuer_key_hash
    }

    fn name(&self) -> Arc<str> {
        self.name.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// For recently changed certificates, when their change was signed (their step's manifest
/// `created_at`, keyed by each CertID form). The `OCSP-Edge-Sequence` header that decides
/// whether a fill is cached is not signed: on the path from a hub, a response signed
/// before a revocation could be relabelled with the current sequence. A response's
/// producedAt is signed, and the publisher signs a certificate's new status at the
/// publish that changes it, so a response for a certificate the feed reported changed,
/// produced before that change, is a replay or a lagging hub's: never served nor cached.
/// Bounded: the oldest are forgotten first (then only the header decides, as before).
/// Times have one-second resolution, so a response from a publish within the same second
/// as the change passes this check (and only the header decides).
#[derive(Default)]
struct ChangedAt {
    at: std::collections::HashMap<CacheKey, UnixTime>,
    order: std::collections::VecDeque<CacheKey>,
}

impl ChangedAt {
    fn record(&mut self, key: CacheKey, at: UnixTime) {
        if self.at.insert(key, at).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > REMEMBERED_CHANGES {
            if let Some(oldest) = self.order.pop_front() {
                self.at.remove(&oldest);
            }
        }
    }

    fn get(&self, key: &CacheKey) -> Option<UnixTime> {
        self.at.get(key).copied()
    }
}

/// Entries expire at their nextUpdate (moka's per-entry expiry), measured on the wall
/// clock when inserted.
struct UntilNextUpdate;

impl moka::Expiry<CacheKey, Arc<Entry>> for UntilNextUpdate {
    fn expire_after_create(&self, _: &CacheKey, value: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(entry::time_to_live(value.next_update, SystemTime::now()))
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        value: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry::time_to_live(value.next_update, SystemTime::now()))
    }
}

pub struct CacheTier {
    cache: Cache<CacheKey, Arc<Entry>>,
    gate: Gate,
    /// Written only under the gate's write lock (with the invalidations), read by fills
    /// under its read lock: a fill checked after an acknowledgement sees its changes.
    changed_at: Mutex<ChangedAt>,
    hubs: Vec<Hub>,
    client: reqwest::Client,
    anchors: Vec<Anchor>,
    /// The same anchors, for checking the feed's manifests.
    trust: FeedTrust,
    signers: ocsp::KnownSigners,
    /// Index of the hub that last answered a fill; fills start there.
    preferred: AtomicUsize,
    /// Unix seconds of the last answer from any hub (0: never).
    last_contact: AtomicI64,
    metrics: CacheMetrics,
}

/// Why a cache tier cannot be built from its configuration (`cache.hubs`).
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("at least one hub is required")]
    NoHubs,
    #[error(transparent)]
    Client(#[from] ocsp_edge_transport::http_client::ClientError),
}

impl CacheTier {
    pub fn new(
        config: &CacheConfig,
        issuers: &[Certificate],
        metrics: CacheMetrics,
    ) -> Result<CacheTier, TierError> {
        // Hub indexes are taken modulo the number of hubs.
        if config.hubs.is_empty() {
            return Err(TierError::NoHubs);
        }
        let client = ocsp_edge_transport::http_client::build_with_ca_files(
            ocsp_edge_transport::http_client::client_builder(),
            config.hubs.iter().filter_map(|hub| hub.ca_file.as_deref()),
        )?;
        let anchors = issuers
            .iter()
            .map(|certificate| {
                let hashes = |h| (certificate.name_hash(h), certificate.key_hash(h));
                Anchor {
                    sha1: hashes(CertIdHash::Sha1),
                    sha256: hashes(CertIdHash::Sha256),
                    name: RwLock::new(Arc::from(certificate.display_name())),
                    certificate: certificate.clone(),
                }
            })
            .collect();
        // Series that exist from the start, at 0, so that increase() sees the first event.
        for hub in &config.hubs {
            metrics.feed_failures.with_label_values(&[&hub.admin]);
        }
        for reason in FillFailure::labels() {
            metrics.fill_failures.with_label_values(&[reason]);
        }
        Ok(CacheTier {
            cache: Cache::builder()
                .max_capacity(config.capacity)
                .expire_after(UntilNextUpdate)
                .build(),
            gate: Gate::new(),
            changed_at: Mutex::default(),
            hubs: config
                .hubs
                .iter()
                .map(|hub| Hub {
                    ocsp: hub.ocsp.clone(),
                    admin: hub.admin.clone(),
                })
                .collect(),
            client,
            anchors,
            trust: FeedTrust::new(issuers),
            signers: ocsp::KnownSigners::new(),
            preferred: AtomicUsize::new(0),
            last_contact: AtomicI64::new(0),
            metrics,
        })
    }

    pub fn acknowledged(&self) -> Option<u64> {
        self.gate.acknowledged()
    }

    /// Answers one CertID: from the cache, or through one (coalesced) fill.
    pub async fn answer(
        self: &Arc<Self>,
        id: &RequestedCertId,
        timeout: Duration,
        now: UnixTime,
    ) -> Result<Arc<Entry>, Refusal> {
        // No trusted issuer, no response we could verify: refuse without asking a hub.
        let anchor = self
            .anchors
            .iter()
            .find(|a| a.matches(id))
            .ok_or(Refusal::UnknownIssuer)?;
        let key = CacheKey::of(id).ok_or(Refusal::Malformed("CertID of an impossible shape"))?;
        if let Some(entry) = self.cache.get(&key).await {
            if entry.servable_at(now) {
                self.metrics.hits.inc();
                if entry.claim_refresh(now) {
                    self.spawn_refresh(id.clone(), key, timeout);
                }
                return Ok(entry);
            }
            // moka measures expiry on its own clock; the second of nextUpdate is final.
            self.cache.invalidate(&key).await;
        }
        self.metrics.misses.inc();
        let held: Arc<Mutex<Option<AdmissionGuard>>> = Arc::default();
        let filled = self
            .cache
            .try_get_with(key, self.fill(id, anchor, timeout, held.clone()))
            .await;
        // moka inserts an admitted entry before try_get_with returns; only now may the
        // feed invalidate and acknowledge (see super::gate).
        drop(held.lock().unwrap_or_else(|p| p.into_inner()).take());
        match filled {
            Ok(entry) if entry.servable_at(now) => Ok(entry),
            Ok(_) => Err(Refusal::Expired),
            Err(not_cached) => match &*not_cached {
                NotCached::Serve(entry) => Ok(entry.clone()),
                NotCached::Refused(refusal) => Err(*refusal),
                NotCached::Failed => Err(Refusal::Unavailable),
            },
        }
    }

    /// The init future of a miss: an admitted entry is returned for moka to insert, with
    /// its admission guard left in `held` for the caller to drop after the insertion.
    async fn fill(
        &self,
        id: &RequestedCertId,
        anchor: &Anchor,
        timeout: Duration,
        held: Arc<Mutex<Option<AdmissionGuard>>>,
    ) -> Result<Arc<Entry>, NotCached> {
        match self.fetch(id, anchor, timeout).await {
            Fetched::Cache(entry, guard) => {
                *held.lock().unwrap_or_else(|p| p.into_inner()) = Some(guard);
                Ok(entry)
            }
            Fetched::Serve(entry) => Err(NotCached::Serve(entry)),
            Fetched::Refused(refusal) => Err(NotCached::Refused(refusal)),
            Fetched::Failed => Err(NotCached::Failed),
        }
    }

    /// Replaces an entry past its refresh deadline with a fresher response, in the
    /// background; the old one keeps serving meanwhile, and if this fails.
    fn spawn_refresh(self: &Arc<Self>, id: RequestedCertId, key: CacheKey, timeout: Duration) {
        let tier = self.clone();
        tokio::spawn(async move {
            let Some(anchor) = tier.anchors.iter().find(|a| a.matches(&id)) else {
                return;
            };
            if let Fetched::Cache(entry, guard) = tier.fetch(&id, anchor, timeout).await {
                tier.cache.insert(key, entry).await;
                drop(guard);
            }
        });
    }

    /// Asks the hubs, starting with the one that answered last, until one gives something
    /// to serve or pass on. One extra attempt beyond the number of hubs: a hub that
    /// answered from a sequence just before the acknowledged one has moved on by then.
    async fn fetch(&self, id: &RequestedCertId, anchor: &Anchor, timeout: Duration) -> Fetched {
        let request = encode_request(id, None);
        first_answer(
            self.hubs.len(),
            &self.preferred,
            |index| self.attempt(&self.hubs[index], &request, id, anchor, timeout),
            |index, failure: FillFailure| {
                self.metrics
                    .fill_failures
                    .with_label_values(&[failure.label()])
                    .inc();
                tracing::debug!(hub = %self.hubs[index].ocsp, error = %failure, "fill attempt failed");
            },
        )
        .await
        .unwrap_or(Fetched::Failed)
    }

    async fn attempt(
        &self,
        hub: &Hub,
        request: &[u8],
        id: &RequestedCertId,
        anchor: &Anchor,
        timeout: Duration,
    ) -> Result<Fetched, FillFailure> {
        let (body, sequence) = self.post(hub, request, timeout).await?;
        self.touch();
        match ocsp::response_status(&body)? {
            ResponseStatus::Successful => {}
            // The hub holds no record of the serial: pass the refusal on, uncached (the
            // issuer is ours, checked before asking).
            ResponseStatus::Unauthorized => return Ok(self.refused(Refusal::UnassignedSerial)),
            ResponseStatus::MalformedRequest => {
                return Ok(self.refused(Refusal::Malformed("refused as malformed by the hub")))
            }
            other => return Err(FillFailure::HubUnavailable(other)),
        }
        let verified = self.signers.verify_response(
            &body,
            id,
            std::slice::from_ref(&anchor.certificate),
            UnixTime::now(),
        )?;
        let entry = Arc::new(Entry::new(body, &verified, sequence.unwrap_or(0), anchor.name()));
        let (admission, guard) = self.gate.admit(sequence).await;
        // A fill the header already says is older is refused as `lagging` below.
        let changed = CacheKey::of(id)
            .filter(|_| admission != Admission::Retry)
            .and_then(|key| self.lock_changed_at().get(&key));
        if let Some(changed) = changed.filter(|&changed| verified.produced_at < changed) {
            drop(guard);
            return Err(FillFailure::Stale {
                produced: verified.produced_at.seconds(),
                changed: changed.seconds(),
            });
        }
        match (admission, guard) {
            (Admission::Cache, Some(guard)) => {
                self.metrics.fills.with_label_values(&["cached"]).inc();
                Ok(Fetched::Cache(entry, guard))
            }
            (Admission::Retry, _) => Err(FillFailure::Lagging {
                filled: sequence,
                acknowledged: self.gate.acknowledged(),
            }),
            (Admission::Uncached(because), _) => {
                self.metrics.fills.with_label_values(&[because.label()]).inc();
                Ok(Fetched::Serve(entry))
            }
            (Admission::Cache, None) => Ok(Fetched::Serve(entry)),
        }
    }

    fn lock_changed_at(&self) -> std::sync::MutexGuard<'_, ChangedAt> {
        self.changed_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refused(&self, refusal: Refusal) -> Fetched {
        self.metrics.fills.with_label_values(&["hub_refused"]).inc();
        Fetched::Refused(refusal)
    }

    async fn post(
        &self,
        hub: &Hub,
        request: &[u8],
        timeout: Duration,
    ) -> Result<(Bytes, Option<u64>), FillFailure> {
        let unreachable = |e: reqwest::Error| FillFailure::Unreachable(e.to_string());
        let response = self
            .client
            .post(&hub.ocsp)
            .header(reqwest::header::CONTENT_TYPE, "application/ocsp-request")
            .header(SEQUENCE_HEADER, "?")
            .body(request.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FillFailure::HttpStatus(response.status().as_u16()));
        }
        let sequence = response
            .headers()
            .get(SEQUENCE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = read_limited(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| e.map_or(FillFailure::TooLarge, unreachable))?;
        Ok((body, sequence))
    }

    fn touch(&self) {
        self.last_contact
            .store(UnixTime::now().seconds(), Ordering::Relaxed);
    }

    /// Follows the hubs' change feed until `stop` flips: one long-poll at a time to one hub
    /// (the next one after a failure), applying each answer before asking again.
    /// `current_config` is asked before every round, so a reload takes effect; `None`
    /// (cache mode switched off) ends the task.
    pub async fn run_feed(
        self: Arc<Self>,
        current_config: impl Fn() -> Option<CacheConfig> + Send + 'static,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut schedule = FeedSchedule::default();
        loop {
            let Some(config) = current_config() else {
                return;
            };
            let started = Instant::now();
            let admin = &self.hubs[schedule.hub(self.hubs.len())].admin;
            let round = tokio::select! {
                round = self.feed_once(admin, &config) => round,
                _ = stop.changed() => return,
            };
            let pause = match round {
                Ok(()) => schedule.answered(started.elapsed()),
                Err(e) => {
                    let pause = schedule.failed();
                    self.metrics.feed_failures.with_label_values(&[admin]).inc();
                    tracing::warn!(hub = %admin, error = %e, failures = schedule.failures, "change feed round failed");
                    pause
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn feed_once(&self, admin: &str, config: &CacheConfig) -> Result<(), FeedFailure> {
        let asked = self.gate.acknowledged();
        let url = format!(
            "{admin}changes?since={}&wait={}",
            asked.unwrap_or(0),
            config.change_wait.as_secs()
        );
        let timeout = config.change_wait + config.request_timeout + Duration::from_secs(5);
        let mut answer = self.ask(&url, timeout).await?;
        self.touch();
        if let Answer::Changes(feed) = &mut answer {
            self.join_pages(admin, feed, config.request_timeout).await?;
        }
        let floor = self.gate.floor();
        let plan = match feed::plan(asked, floor, answer, &self.trust, UnixTime::now()) {
            Ok(plan) => plan,
            Err(refusal) => {
                self.refuse(&refusal).await;
                return Err(refusal.into());
            }
        };
        self.apply(plan).await;
        Ok(())
    }

    /// One `/changes` request.
    async fn ask(&self, url: &str, timeout: Duration) -> Result<Answer, FeedFailure> {
        let response = self
            .client
            .get(url)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| FeedFailure::Unreachable(e.to_string()))?;
        let status = response.status();
        let body = read_limited(response, MAX_FEED_BYTES)
            .await
            .map_err(|e| e.map_or(FeedFailure::TooLarge, |e| FeedFailure::Unreachable(e.to_string())))?;
        let json = |e: serde_json::Error| FeedFailure::Json(e.to_string());
        match status {
            reqwest::StatusCode::OK => Ok(Answer::Changes(
                serde_json::from_slice::<ChangeFeed>(&body).map_err(json)?,
            )),
            reqwest::StatusCode::GONE => {
                Ok(Answer::Gone(serde_json::from_slice::<Gone>(&body).map_err(json)?))
            }
            other => Err(FeedFailure::HttpStatus(other.as_u16())),
        }
    }

    /// Completes an answer that ends inside a step (its `to` is short of its last step's):
    /// asks for the rest of that step, page by page, and joins them into `feed`. Nothing
    /// here is trusted; [`feed::plan`] checks the joined step against its signed digest.
    async fn join_pages(
        &self,
        admin: &str,
        feed: &mut ChangeFeed,
        timeout: Duration,
    ) -> Result<(), FeedFailure> {
        for _ in 0..MAX_PAGES {
            let Some(last) = feed.steps.last() else {
                return Ok(());
            };
            if feed.to == last.to {
                return Ok(());
            }
            let (from, to) = (last.from, last.to);
            let offset = last
                .first
                .checked_add(last.count)
                .ok_or(FeedFailure::BrokenPages)?;
            let url = format!("{admin}changes?since={from}&offset={offset}");
            let Answer::Changes(page) = self.ask(&url, timeout).await? else {
                // The hub forgot the step meanwhile: nothing of it can be proven.
                return Err(FeedFailure::BrokenPages);
            };
            let mut steps = page.steps.into_iter();
            let continued = steps
                .next()
                .filter(|next| (next.from, next.to, next.first) == (from, to, offset) && page.from == from)
                .ok_or(FeedFailure::BrokenPages)?;
            if let Some(last) = feed.steps.last_mut() {
                last.count = last
                    .count
                    .checked_add(continued.count)
                    .ok_or(FeedFailure::BrokenPages)?;
            }
            if continued.count == 0 && page.to == from {
                return Err(FeedFailure::BrokenPages);
            }
            feed.steps.extend(steps);
            feed.changes.extend(page.changes);
            feed.to = page.to;
            if feed.changes.len() > MAX_STEP_RECORDS {
                return Err(FeedFailure::TooLarge);
            }
        }
        Err(FeedFailure::BrokenPages)
    }

    /// Counts a refused answer and takes the safe path: everything cached is dropped and
    /// nothing stays acknowledged (fills are served uncached until a 410 with a signed
    /// manifest restarts the cache), since the hub claimed changes the cache cannot
    /// apply. Except a refusal to go backwards: the cache's own state is still newer
    /// than what it was offered, and stays.
    async fn refuse(&self, refusal: &FeedError) {
        self.metrics
            .feed_refused
            .with_label_values(&[refusal.label()])
            .inc();
        if matches!(refusal, FeedError::Backwards { .. }) {
            tracing::warn!(error = %refusal, acknowledged = ?self.gate.acknowledged(), "change feed answer refused; acknowledged sequence kept");
            return;
        }
        self.gate.forget(async { self.cache.invalidate_all() }).await;
        self.metrics.invalidate_all.inc();
        tracing::warn!(error = %refusal, "change feed answer refused: not proven by the publisher's signatures; cache dropped, nothing acknowledged");
    }

    /// Invalidates, then acknowledges, with no fill inserting in between.
    async fn apply(&self, plan: Plan) {
        match plan {
            Plan::Nothing => {}
            Plan::Invalidate {
                keys,
                acknowledge,
                names,
            } => {
                let mut removed = 0u64;
                let acknowledged = self
                    .gate
                    .advance(acknowledge, async {
                        for (key, changed_at) in &keys {
                            removed += u64::from(self.cache.remove(key).await.is_some());
                            self.lock_changed_at().record(*key, *changed_at);
                        }
                    })
                    .await;
                self.metrics.invalidations.inc_by(removed);
                self.learn_names(&names);
                tracing::info!(
                    acknowledge,
                    acknowledged,
                    changed = keys.len() / 2,
                    removed,
                    "change feed applied"
                );
            }
            Plan::InvalidateAll { acknowledge, names } => {
                let first = self.gate.acknowledged().is_none();
                self.gate
                    .advance(acknowledge, async { self.cache.invalidate_all() })
                    .await;
                self.metrics.invalidate_all.inc();
                self.learn_names(&names);
                if first {
                    tracing::info!(acknowledged = acknowledge, "change feed synchronized");
                } else {
                    tracing::warn!(
                        acknowledged = acknowledge,
                        "the hub cannot describe the changes since the acknowledged sequence; cache dropped"
                    );
                }
            }
        }
    }

    /// Labels anchors with the issuer section names of the newest verified manifest.
    fn learn_names(&self, names: &SignedNames) {
        for (anchor, name) in self.anchors.iter().zip(names) {
            if name.is_empty() {
                continue;
            }
            let mut slot = anchor.name.write().unwrap_or_else(|p| p.into_inner());
            if **slot != **name {
                *slot = Arc::from(name.as_str());
            }
        }
    }

    /// Ready when a hub answered within twice the change-feed wait (a healthy long-poll
    /// answers at least that often), or the cache holds something to serve. Not ready only
    /// when it can answer nothing but `tryLater`. With entries but no hub it keeps serving
    /// them until their nextUpdate, like a snapshot responder with every source down:
    /// taking it out of rotation would only move its traffic to caches that, in a hub
    /// outage, are in the same state.
    pub fn readiness(&self, now: UnixTime, config: &CacheConfig) -> Result<(), &'static str> {
        let window = (config.change_wait * 2 + config.request_timeout).as_secs() as i64;
        let last = self.last_contact.load(Ordering::Relaxed);
        if last > 0 && now.seconds() - last <= window {
            return Ok(());
        }
        if self.cache.entry_count() > 0 {
            return Ok(());
        }
        Err("no hub answered recently and nothing is cached")
    }

    /// Brings moka's counts up to date (it applies writes in batches); before a scrape.
    pub async fn settle(&self) {
        self.cache.run_pending_tasks().await;
    }

    pub fn refresh_gauges(&self) {
        self.metrics.entries.set(self.cache.entry_count() as i64);
        self.metrics
            .acknowledged
            .set(self.gate.acknowledged().unwrap_or(0) as i64);
        self.metrics
            .last_hub_contact
            .set(self.last_contact.load(Ordering::Relaxed));
    }
}

/// Reads a body of at most `limit` bytes. `Err(None)`: larger; `Err(Some(e))`: the
/// transfer failed.
/// Asks the hubs in turn, starting with `preferred`, until one answers: the failover of
/// every fill. One extra attempt beyond the number of hubs (see [`CacheTier::fetch`]).
/// The hub that answered becomes `preferred`, so the next fill starts there; each failure
/// is handed to `failed` with its hub's index.
async fn first_answer<T, E, Attempt>(
    hubs: usize,
    preferred: &AtomicUsize,
    mut attempt: impl FnMut(usize) -> Attempt,
    mut failed: impl FnMut(usize, E),
) -> Option<T>
where
    Attempt: std::future::Future<Output = Result<T, E>>,
{
    let first = preferred.load(Ordering::Relaxed);
    for round in 0..=hubs {
        let index = first.wrapping_add(round) % hubs.max(1);
        match attempt(index).await {
            Ok(answer) => {
                preferred.store(index, Ordering::Relaxed);
                return Some(answer);
            }
            Err(failure) => failed(index, failure),
        }
    }
    None
}

/// Which hub the change feed asks and how long it pauses between rounds: the same hub
/// while it answers; after a failure the next hub, after a backoff that doubles from
/// [`FEED_BACKOFF_START`] up to [`FEED_BACKOFF_CAP`], jittered by ±20% so caches do not
/// retry in lockstep. An answer resets the backoff.
#[derive(Debug, Default)]
struct FeedSchedule {
    hub: usize,
    failures: u32,
}

const FEED_BACKOFF_START: Duration = Duration::from_millis(100);
const FEED_BACKOFF_CAP: Duration = Duration::from_secs(5);
/// A hub that answers at once every time (no long-poll) is not spun on.
const FEED_MIN_ROUND: Duration = Duration::from_millis(100);

impl FeedSchedule {
    /// The index of the hub to ask, among `hubs`.
    fn hub(&self, hubs: usize) -> usize {
        self.hub % hubs.max(1)
    }

    /// After a round that was answered and took `elapsed`: the pause before the next.
    fn answered(&mut self, elapsed: Duration) -> Duration {
        self.failures = 0;
        FEED_MIN_ROUND.saturating_sub(elapsed)
    }

    /// After a failed round: moves to the next hub; the pause before asking it.
    fn failed(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.hub = self.hub.wrapping_add(1);
        ocsp_edge_core::backoff::jittered(ocsp_edge_core::backoff::exponential(
            FEED_BACKOFF_START,
            FEED_BACKOFF_CAP,
            self.failures.saturating_add(1),
        ))
    }
}

async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, Option<reqwest::Error>> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > limit {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted hub: what each hub index answers, in order of asking; records the asks.
    struct ScriptedHubs {
        answers: Mutex<Vec<(usize, Result<&'static str, &'static str>)>>,
        asked: Mutex<Vec<usize>>,
    }

    impl ScriptedHubs {
        /// `script`: for each hub index, whether it answers (`Ok(name)`) or fails.
        fn new(script: &[(usize, Result<&'static str, &'static str>)]) -> ScriptedHubs {
            ScriptedHubs {
                answers: Mutex::new(script.to_vec()),
                asked: Mutex::default(),
            }
        }

        async fn ask(&self, index: usize) -> Result<&'static str, &'static str> {
            self.asked.lock().unwrap().push(index);
            let mut answers = self.answers.lock().unwrap();
            let at = answers
                .iter()
                .position(|(hub, _)| *hub == index)
                .unwrap_or_else(|| panic!("hub {index} asked beyond its script"));
            answers.remove(at).1
        }

        /// Asks through [`first_answer`]; (its answer, the failures it reported).
        async fn fill(&self, hubs: usize, preferred: &AtomicUsize) -> (Option<&'static str>, Vec<usize>) {
            let mut failures = Vec::new();
            let answer = first_answer(
                hubs,
                preferred,
                |index| self.ask(index),
                |index, _| failures.push(index),
            )
            .await;
            (answer, failures)
        }

        fn asked(&self) -> Vec<usize> {
            std::mem::take(&mut self.asked.lock().unwrap())
        }
    }

    #[tokio::test]
    async fn when_the_first_hub_fails_the_second_answers_and_is_asked_first_next_time() {
        let hubs = ScriptedHubs::new(&[(0, Err("refused")), (1, Ok("hub 1")), (1, Ok("hub 1 again"))]);
        let preferred = AtomicUsize::new(0);
        assert_eq!(hubs.fill(3, &preferred).await, (Some("hub 1"), vec![0]));
        assert_eq!(hubs.asked(), [0, 1]);
        assert_eq!(preferred.load(Ordering::Relaxed), 1);
        // The next fill does not try the hub that failed first.
        assert_eq!(hubs.fill(3, &preferred).await, (Some("hub 1 again"), vec![]));
        assert_eq!(hubs.asked(), [1]);
    }

    #[tokio::test]
    async fn a_hub_that_recovers_is_used_again_when_the_others_fail() {
        let hubs = ScriptedHubs::new(&[
            (0, Err("down")),
            (1, Ok("hub 1")),
            (1, Err("now down")),
            (2, Err("down too")),
            (0, Ok("hub 0, back")),
        ]);
        let preferred = AtomicUsize::new(0);
        assert_eq!(hubs.fill(3, &preferred).await.0, Some("hub 1"));
        assert_eq!(hubs.fill(3, &preferred).await, (Some("hub 0, back"), vec![1, 2]));
        assert_eq!(hubs.asked(), [0, 1, 1, 2, 0]);
        assert_eq!(preferred.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn when_every_hub_fails_each_is_asked_once_plus_one_retry_and_nothing_changes() {
        let hubs = ScriptedHubs::new(&[(1, Err("a")), (0, Err("b")), (1, Err("c"))]);
        let preferred = AtomicUsize::new(1);
        assert_eq!(hubs.fill(2, &preferred).await, (None, vec![1, 0, 1]));
        assert_eq!(hubs.asked(), [1, 0, 1]);
        assert_eq!(preferred.load(Ordering::Relaxed), 1, "no hub answered");
    }

    /// Whether `pause` is `base` jittered by at most ±20%.
    fn jittered(pause: Duration, base: Duration) -> bool {
        pause >= base.mul_f64(0.79) && pause <= base.mul_f64(1.21)
    }

    #[test]
    fn the_feed_moves_to_the_next_hub_after_each_failure_and_backs_off_up_to_the_cap() {
        let mut schedule = FeedSchedule::default();
        assert_eq!(schedule.hub(3), 0);
        let expected_ms = [200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for (round, base) in expected_ms.into_iter().enumerate() {
            let pause = schedule.failed();
            assert!(
                jittered(pause, Duration::from_millis(base)),
                "failure {}: {pause:?}",
                round + 1
            );
            assert_eq!(schedule.hub(3), (round + 1) % 3, "failure {}", round + 1);
        }
        for _ in 0..100 {
            assert!(schedule.failed() <= FEED_BACKOFF_CAP.mul_f64(1.2), "capped");
        }
    }

    #[test]
    fn an_answer_resets_the_feed_backoff_and_keeps_its_hub() {
        let mut schedule = FeedSchedule::default();
        schedule.failed();
        schedule.failed();
        assert_eq!(schedule.hub(3), 2);
        assert_eq!(
            schedule.answered(Duration::from_millis(30)),
            Duration::from_millis(70)
        );
        assert_eq!(
            schedule.answered(Duration::from_secs(20)),
            Duration::ZERO,
            "a long-poll"
        );
        assert_eq!(schedule.hub(3), 2, "the hub that answered is asked again");
        // The wrapped-around hub 0 (recovered meanwhile) is asked after hub 2 fails.
        assert!(jittered(schedule.failed(), Duration::from_millis(200)), "reset");
        assert_eq!(schedule.hub(3), 0);
    }

    #[test]
    fn feed_backoff_is_jittered() {
        let pauses: std::collections::HashSet<Duration> = (0..20)
            .map(|_| {
                let mut schedule = FeedSchedule::default();
                schedule.failed()
            })
            .collect();
        assert!(pauses.len() > 1, "20 caches would retry in lockstep: {pauses:?}");
    }

    #[test]
    fn every_response_refusal_has_a_fill_failure_label() {
        for label in ResponseError::LABELS {
            assert!(FillFailure::labels().any(|l| l == label), "{label}");
        }
    }
}
