//! What the cache stores and the policies that decide how long and whether: no I/O, no
//! clock (callers pass the time).

use bytes::Bytes;
use ocsp_edge_core::model::{Serial, MAX_SERIAL_LEN};
use ocsp_edge_core::ocsp::{AnsweredStatus, RequestedCertId, VerifiedResponse, ETAG_LEN};
use ocsp_edge_core::pki::CertIdHash;
use ocsp_edge_core::time::UnixTime;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const HASH_LEN: usize = 32;
/// Algorithm, issuer name hash, issuer key hash (each padded to SHA-256's length), serial
/// length and serial content (padded).
const KEY_LEN: usize = 1 + HASH_LEN + HASH_LEN + 1 + MAX_SERIAL_LEN;

/// The whole CertID a response answers for: hash algorithm, issuer name hash, issuer key
/// hash and serial. Matching on less could answer for a certificate the client did not
/// ask about (another issuer sharing a key, or the other hash variant). Fixed-size, so a
/// lookup hashes and compares 89 bytes and allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; KEY_LEN]);

impl CacheKey {
    /// `None` when a hash length does not match its algorithm or the serial is longer than
    /// any stored serial (the request decoder already refuses both).
    pub fn new(hash: CertIdHash, name_hash: &[u8], key_hash: &[u8], serial: &Serial) -> Option<CacheKey> {
        let expected = match hash {
            CertIdHash::Sha1 => 20,
            CertIdHash::Sha256 => 32,
        };
        let serial = serial.as_der_content();
        if name_hash.len() != expected || key_hash.len() != expected || serial.len() > MAX_SERIAL_LEN {
            return None;
        }
        let mut key = [0u8; KEY_LEN];
        key[0] = match hash {
            CertIdHash::Sha1 => 1,
            CertIdHash::Sha256 => 2,
        };
        key[1..1 + expected].copy_from_slice(name_hash);
        key[1 + HASH_LEN..1 + HASH_LEN + expected].copy_from_slice(key_hash);
        let at = 1 + 2 * HASH_LEN;
        key[at] = serial.len() as u8;
        key[at + 1..at + 1 + serial.len()].copy_from_slice(serial);
        Some(CacheKey(key))
    }

    pub fn of(id: &RequestedCertId) -> Option<CacheKey> {
        CacheKey::new(id.hash, &id.issuer_name_hash, &id.issuer_key_hash, &id.serial)
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheKey({})", hex::encode(self.0))
    }
}

/// One verified response, as served on a hit.
#[derive(Debug)]
pub struct Entry {
    /// The complete DER OCSPResponse, exactly as the hub sent it and as verified.
    pub response: Bytes,
    /// SHA-256 of `response` (the ETag).
    pub etag: [u8; ETAG_LEN],
    pub status: AnsweredStatus,
    pub this_update: UnixTime,
    pub next_update: UnixTime,
    /// The hub sequence the response was answered from (`OCSP-Edge-Sequence`).
    pub sequence: u64,
    /// Issuer name for metrics.
    pub issuer: Arc<str>,
    /// Unix seconds from which a hit also fetches a fresher response in the background;
    /// moved forward on each attempt so a failing hub is asked at most once a minute.
    refresh_after: AtomicI64,
}

/// How long to wait between two background refresh attempts of one entry.
pub const REFRESH_RETRY_SECONDS: i64 = 60;

impl Entry {
    pub fn new(response: Bytes, verified: &VerifiedResponse, sequence: u64, issuer: Arc<str>) -> Entry {
        // The hub's ETag comes from its snapshot's template; a cache has only the bytes,
        // so its validator is their hash, computed once per fill.
        let digest = ring::digest::digest(&ring::digest::SHA256, &response);
        let mut etag = [0u8; ETAG_LEN];
        etag.copy_from_slice(&digest.as_ref()[..ETAG_LEN]);
        Entry {
            response,
            etag,
            status: verified.status,
            this_update: verified.this_update,
            next_update: verified.next_update,
            sequence,
            issuer,
            refresh_after: AtomicI64::new(
                ocsp_edge_core::responder::refresh_deadline(verified.this_update, verified.next_update)
                    .seconds(),
            ),
        }
    }

    pub fn revoked(&self) -> bool {
        matches!(self.status, AnsweredStatus::Revoked { .. })
    }

    /// Never served at or past nextUpdate (RFC 5019 §2.2.4: a response past it is stale).
    pub fn servable_at(&self, now: UnixTime) -> bool {
        now < self.next_update
    }

    /// `max-age`: never past nextUpdate, at most `cap`.
    pub fn max_age(&self, now: UnixTime, cap_seconds: u64) -> u64 {
        let left = (self.next_update.seconds() - now.seconds()).max(0) as u64;
        left.min(cap_seconds)
    }

    /// True once per [`REFRESH_RETRY_SECONDS`] after the refresh deadline: the caller then
    /// fetches a fresher response while this one keeps serving.
    ///
    /// The publisher re-signs every response on each publish, but a status that did not
    /// change is not in the change feed, so without this an entry would be served with
    /// its original thisUpdate until nextUpdate, past the CA/Browser Forum's refresh
    /// deadline (BR §4.9.10, see [`ocsp_edge_core::responder::refresh_deadline`]). With every
    /// hub down the entry keeps serving until nextUpdate; only the refresh fails.
    pub fn claim_refresh(&self, now: UnixTime) -> bool {
        let due = self.refresh_after.load(Ordering::Relaxed);
        now.seconds() >= due
            && self
                .refresh_after
                .compare_exchange(
                    due,
                    now.seconds() + REFRESH_RETRY_SECONDS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

/// How long an entry may stay in the cache: until its nextUpdate, measured against the
/// wall clock with sub-second precision (so the cache drops it no later than the moment a
/// client would consider it stale), and zero for anything already past.
pub fn time_to_live(next_update: UnixTime, now: SystemTime) -> Duration {
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(next_update.seconds()).unwrap_or(0));
    end.duration_since(now).unwrap_or(Duration::ZERO)
}

/// Whether a verified fill may be cached, given the hub sequence it was answered from
/// and the sequence the cache has acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Answered from exactly the acknowledged snapshot: consistent with every invalidation
    /// applied so far, and every later change will be invalidated by the feed.
    Cache,
    /// Answered from an older snapshot than the acknowledged one: a status change
    /// between the two may already have been invalidated, so caching (or serving) it could
    /// bring a revoked certificate back as good. Ask again (another hub, or the same one,
    /// which has moved on).
    Retry,
    /// Serve, but do not cache.
    Uncached(UncachedBecause),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UncachedBecause {
    /// Answered from a newer snapshot than acknowledged. It is at least as fresh as what
    /// the cache knows, so serving it is safe; but the feed will describe changes from the
    /// acknowledged sequence, and a hub's steps need not include this one's, so a later
    /// change could not be matched against it reliably.
    AheadOfFeed,
    /// The feed has not acknowledged any sequence yet.
    NotSynchronized,
    /// The hub did not say which sequence it answered from.
    NoSequence,
}

impl UncachedBecause {
    pub fn label(self) -> &'static str {
        match self {
            UncachedBecause::AheadOfFeed => "ahead_of_feed",
            UncachedBecause::NotSynchronized => "not_synchronized",
            UncachedBecause::NoSequence => "no_sequence",
        }
    }
}

/// The admission rule. Strict equality (not just "not older") is what keeps the argument
/// simple: every cached entry then has exactly the status its certificate has in the
/// acknowledged snapshot, and the feed's changes from that snapshot are all it takes to
/// keep it so.
pub fn admit(filled_at: Option<u64>, acknowledged: Option<u64>) -> Admission {
    match (filled_at, acknowledged) {
        (None, _) => Admission::Uncached(UncachedBecause::NoSequence),
        (Some(_), None) => Admission::Uncached(UncachedBecause::NotSynchronized),
        (Some(filled), Some(acked)) if filled == acked => Admission::Cache,
        (Some(filled), Some(acked)) if filled < acked => Admission::Retry,
        (Some(_), Some(_)) => Admission::Uncached(UncachedBecause::AheadOfFeed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(hash: CertIdHash, serial: &str) -> RequestedCertId {
        let len = if hash == CertIdHash::Sha1 { 20 } else { 32 };
        RequestedCertId {
            hash,
            issuer_name_hash: vec![0x11; len],
            issuer_key_hash: vec![0x22; len],
            serial: Serial::from_hex(serial).unwrap(),
        }
    }

    #[test]
    fn keys_distinguish_every_part_of_the_cert_id() {
        let base = CacheKey::of(&id(CertIdHash::Sha1, "0102")).unwrap();
        assert_eq!(base, CacheKey::of(&id(CertIdHash::Sha1, "0102")).unwrap());
        assert_ne!(base, CacheKey::of(&id(CertIdHash::Sha1, "0103")).unwrap());
        assert_ne!(base, CacheKey::of(&id(CertIdHash::Sha1, "010200")).unwrap());
        assert_ne!(base, CacheKey::of(&id(CertIdHash::Sha256, "0102")).unwrap());
        let mut other_name = id(CertIdHash::Sha1, "0102");
        other_name.issuer_name_hash[19] ^= 1;
        assert_ne!(base, CacheKey::of(&other_name).unwrap());
        let mut other_key = id(CertIdHash::Sha1, "0102");
        other_key.issuer_key_hash[0] ^= 1;
        assert_ne!(base, CacheKey::of(&other_key).unwrap());
        // A SHA-1 hash padded with zeros must not collide with a SHA-256 hash that ends in
        // zeros: the algorithm byte separates them.
        let mut padded = id(CertIdHash::Sha256, "0102");
        padded.issuer_name_hash = [vec![0x11; 20], vec![0; 12]].concat();
        padded.issuer_key_hash = [vec![0x22; 20], vec![0; 12]].concat();
        assert_ne!(base, CacheKey::of(&padded).unwrap());
    }

    #[test]
    fn keys_refuse_impossible_shapes() {
        let mut wrong = id(CertIdHash::Sha256, "01");
        wrong.issuer_key_hash.truncate(20);
        assert!(CacheKey::of(&wrong).is_none());
        let longest = "7F".repeat(MAX_SERIAL_LEN);
        assert!(CacheKey::of(&id(CertIdHash::Sha1, &longest)).is_some());
    }

    #[test]
    fn admission_caches_only_fills_of_the_acknowledged_sequence() {
        assert_eq!(admit(Some(10), Some(10)), Admission::Cache);
        assert_eq!(admit(Some(9), Some(10)), Admission::Retry);
        assert_eq!(
            admit(Some(11), Some(10)),
            Admission::Uncached(UncachedBecause::AheadOfFeed)
        );
        assert_eq!(
            admit(Some(11), None),
            Admission::Uncached(UncachedBecause::NotSynchronized)
        );
        assert_eq!(
            admit(None, Some(10)),
            Admission::Uncached(UncachedBecause::NoSequence)
        );
    }

    fn entry(this_update: i64, next_update: i64) -> Entry {
        Entry::new(
            Bytes::from_static(b"response"),
            &VerifiedResponse {
                status: AnsweredStatus::Good,
                produced_at: UnixTime(this_update),
                this_update: UnixTime(this_update),
                next_update: UnixTime(next_update),
            },
            7,
            Arc::from("ec"),
        )
    }

    #[test]
    fn entries_live_until_next_update_and_never_after() {
        let e = entry(1_000_000, 1_000_000 + 96 * 3600);
        let next = e.next_update;
        assert!(e.servable_at(next.plus_seconds(-1)));
        assert!(!e.servable_at(next));
        assert_eq!(e.max_age(next.plus_seconds(-90), 3600), 90);
        assert_eq!(e.max_age(UnixTime(1_000_000), 3600), 3600);
        assert_eq!(e.max_age(next.plus_seconds(10), 3600), 0);
        let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64);
        assert_eq!(
            time_to_live(next, at(next.seconds() - 100)),
            Duration::from_secs(100)
        );
        assert_eq!(
            time_to_live(next, at(next.seconds() - 1) + Duration::from_millis(300)),
            Duration::from_millis(700)
        );
        assert_eq!(time_to_live(next, at(next.seconds() + 5)), Duration::ZERO);
        assert_eq!(
            hex::encode(e.etag),
            hex::encode(&ring::digest::digest(&ring::digest::SHA256, b"response").as_ref()[..ETAG_LEN])
        );
    }

    #[test]
    fn refresh_is_claimed_after_the_deadline_and_at_most_once_a_minute() {
        // 96 h validity: the deadline is 8 h before nextUpdate.
        let e = entry(1_000_000, 1_000_000 + 96 * 3600);
        let deadline = e.next_update.plus_seconds(-8 * 3600);
        assert!(!e.claim_refresh(deadline.plus_seconds(-1)));
        assert!(e.claim_refresh(deadline));
        assert!(!e.claim_refresh(deadline), "claimed twice");
        assert!(!e.claim_refresh(deadline.plus_seconds(REFRESH_RETRY_SECONDS - 1)));
        assert!(e.claim_refresh(deadline.plus_seconds(REFRESH_RETRY_SECONDS)));
    }
}
