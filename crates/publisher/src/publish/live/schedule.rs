//! When the live publisher publishes: pure functions of the state and `now`, no I/O, no
//! clock, so every rule is unit-tested.
//!
//! - A change is published at most `debounce` after it was seen ([`Debounce`]): the first
//!   change opens a window, later ones join it, the publish closes it. A change seen while
//!   a publish runs opens the next window.
//! - Nothing changed: the publisher still wakes for the earliest of ([`next_due`])
//!   - the oldest response's re-signing time: its thisUpdate + `refresh_after` (the delta
//!     policy's, half the validity by default), never later than the CA/Browser Forum's
//!     refresh deadline (BR §4.9.10: within 4 days of thisUpdate and 8 hours before
//!     nextUpdate; half the validity for responses valid under 16 hours);
//!   - the next full snapshot, `full_every` after the delta base was made;
//!   - the CRLs' reissue (BR §4.9.7: at least every 7 days; earlier when the configured
//!     CRL validity is short, at half of it), counted from the newest publish, which
//!     reissues every CRL.
//! - A failed publish is retried `retry_after` later (and at once on the next change).

use ocsp_edge_core::responder::refresh_deadline;
use ocsp_edge_core::time::UnixTime;
use std::time::Duration;

/// BR §4.9.7: a CRL is reissued at least every seven days.
pub const CRL_REISSUE_AT_MOST: Duration = Duration::from_secs(7 * 86_400);

/// Unix seconds, as the snapshot stores times.
pub type Seconds = i64;

/// A trailing window from the first change seen to its publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debounce {
    /// When the first change of the open window was seen (monotonic milliseconds).
    opened_at: Option<u64>,
}

impl Debounce {
    /// Records a change seen at `now_ms`.
    pub fn change(&mut self, now_ms: u64) {
        self.opened_at.get_or_insert(now_ms);
    }

    /// When the open window must be published (`None`: nothing pending).
    pub fn due_at(&self, debounce: Duration) -> Option<u64> {
        let window = u64::try_from(debounce.as_millis()).unwrap_or(u64::MAX);
        self.opened_at.map(|opened| opened.saturating_add(window))
    }

    pub fn is_due(&self, now_ms: u64, debounce: Duration) -> bool {
        self.due_at(debounce).is_some_and(|due| now_ms >= due)
    }

    /// A publish starts: it will carry every change seen so far. Returns when the window
    /// it closes was opened (for the input-lag metric).
    pub fn take(&mut self) -> Option<u64> {
        self.opened_at.take()
    }
}

/// What the newest snapshot in the store says about its own freshness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreState {
    /// When the newest snapshot was published (its thisUpdate for new responses and CRLs).
    pub created_at: Seconds,
    /// The earliest nextUpdate of anything it serves (responses and CRLs).
    pub earliest_next_update: Seconds,
    /// For a delta: when its base (the newest full snapshot) was made.
    pub base_created_at: Option<Seconds>,
}

/// The publish configuration, as far as the schedule needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// nextUpdate − thisUpdate of a response.
    pub validity: Duration,
    /// Re-sign a response this long after its thisUpdate.
    pub refresh_after: Duration,
    /// With deltas: how long a full snapshot stays the base.
    pub full_every: Option<Duration>,
    /// The shortest CRL validity configured, when any issuer publishes CRLs.
    pub crl_validity: Option<Duration>,
}

/// The CA/Browser Forum's refresh deadline (BR §4.9.10) of a response with this
/// thisUpdate and validity: the edge's rule, [`refresh_deadline`], in this module's units.
pub fn br_refresh_deadline(this_update: Seconds, validity: Duration) -> Seconds {
    let this_update = UnixTime(this_update);
    refresh_deadline(this_update, this_update.plus_seconds(secs(validity))).seconds()
}

/// The oldest response's thisUpdate: every response of a publish has the same validity,
/// so the earliest nextUpdate less the validity (earlier still when a short-lived CRL is
/// the earliest: then the schedule only wakes sooner).
pub fn oldest_this_update(store: &StoreState, policy: &Policy) -> Seconds {
    store
        .earliest_next_update
        .saturating_sub(secs(policy.validity))
        .min(store.created_at)
}

/// The refresh deadline of the oldest response the store serves.
pub fn oldest_refresh_deadline(store: &StoreState, policy: &Policy) -> Seconds {
    br_refresh_deadline(oldest_this_update(store, policy), policy.validity)
}

/// Why a scheduled publish is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Responses reach `refresh_after` (or their BR refresh deadline).
    Refresh,
    /// The delta base reaches `full_every`.
    Full,
    /// The CRLs must be reissued.
    Crl,
}

/// The next publish nothing else asks for, and why.
pub fn next_due(store: &StoreState, policy: &Policy) -> (Seconds, Reason) {
    let oldest = oldest_this_update(store, policy);
    let refresh = oldest
        .saturating_add(secs(policy.refresh_after))
        .min(br_refresh_deadline(oldest, policy.validity));
    let mut due = (refresh, Reason::Refresh);
    if let (Some(every), Some(base)) = (
        policy.full_every,
        store.base_created_at.or(Some(store.created_at)),
    ) {
        due = earlier(due, (base.saturating_add(secs(every)), Reason::Full));
    }
    if let Some(validity) = policy.crl_validity {
        let every = CRL_REISSUE_AT_MOST.min(validity / 2);
        due = earlier(due, (store.created_at.saturating_add(secs(every)), Reason::Crl));
    }
    due
}

fn earlier(a: (Seconds, Reason), b: (Seconds, Reason)) -> (Seconds, Reason) {
    if b.0 < a.0 {
        b
    } else {
        a
    }
}

fn secs(duration: Duration) -> Seconds {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const T0: i64 = 1_790_000_000;

    fn policy(validity_h: u64, refresh_h: u64) -> Policy {
        Policy {
            validity: Duration::from_secs(validity_h * 3600),
            refresh_after: Duration::from_secs(refresh_h * 3600),
            full_every: None,
            crl_validity: None,
        }
    }

    fn fresh(validity_h: i64) -> StoreState {
        StoreState {
            created_at: T0,
            earliest_next_update: T0 + validity_h * H,
            base_created_at: None,
        }
    }

    #[test]
    fn a_window_opens_on_the_first_change_and_later_changes_do_not_delay_it() {
        let second = Duration::from_secs(1);
        let mut debounce = Debounce::default();
        assert_eq!(debounce.due_at(second), None);
        assert!(!debounce.is_due(u64::MAX, second));
        debounce.change(10_000);
        debounce.change(10_900);
        assert_eq!(debounce.due_at(second), Some(11_000));
        assert!(!debounce.is_due(10_999, second));
        assert!(debounce.is_due(11_000, second));
        assert_eq!(debounce.take(), Some(10_000));
        assert_eq!(debounce.due_at(second), None, "the publish closed the window");
        debounce.change(12_000);
        assert_eq!(debounce.due_at(second), Some(13_000));
        debounce.change(u64::MAX);
        assert_eq!(
            Debounce {
                opened_at: Some(u64::MAX)
            }
            .due_at(second),
            Some(u64::MAX)
        );
    }

    #[test]
    fn the_forum_deadline_is_four_days_or_eight_hours_before_next_update() {
        // 96 h: 8 h before nextUpdate (88 h) comes before 4 days (96 h).
        assert_eq!(
            br_refresh_deadline(T0, Duration::from_secs(96 * 3600)),
            T0 + 88 * H
        );
        // 10 days: 4 days comes first.
        assert_eq!(
            br_refresh_deadline(T0, Duration::from_secs(240 * 3600)),
            T0 + 96 * H
        );
        // Under 16 h: half the validity.
        assert_eq!(br_refresh_deadline(T0, Duration::from_secs(8 * 3600)), T0 + 4 * H);
        assert_eq!(
            br_refresh_deadline(T0, Duration::from_secs(16 * 3600)),
            T0 + 8 * H
        );
    }

    #[test]
    fn nothing_changed_wakes_at_refresh_after_of_the_oldest_response() {
        assert_eq!(
            next_due(&fresh(96), &policy(96, 48)),
            (T0 + 48 * H, Reason::Refresh)
        );
        // A refresh_after beyond the forum's deadline is clamped to the deadline.
        assert_eq!(
            next_due(&fresh(96), &policy(96, 95)),
            (T0 + 88 * H, Reason::Refresh)
        );
        // Deltas keep base responses: the oldest one (earliest nextUpdate) decides.
        let store = StoreState {
            created_at: T0 + 10 * H,
            earliest_next_update: T0 + 96 * H,
            base_created_at: Some(T0),
        };
        assert_eq!(next_due(&store, &policy(96, 48)), (T0 + 48 * H, Reason::Refresh));
        // Seconds-long refresh_after, as tests use.
        let short = Policy {
            refresh_after: Duration::from_secs(20),
            ..policy(8, 1)
        };
        assert_eq!(next_due(&fresh(8), &short), (T0 + 20, Reason::Refresh));
    }

    #[test]
    fn full_snapshots_and_crls_come_on_their_own_schedule() {
        let with_full = Policy {
            full_every: Some(Duration::from_secs(24 * 3600)),
            ..policy(96, 48)
        };
        let delta = StoreState {
            created_at: T0 + 20 * H,
            earliest_next_update: T0 + 116 * H,
            base_created_at: Some(T0),
        };
        assert_eq!(next_due(&delta, &with_full), (T0 + 24 * H, Reason::Full));
        let short_crls = Policy {
            crl_validity: Some(Duration::from_secs(2 * 3600)),
            ..policy(96, 48)
        };
        assert_eq!(next_due(&fresh(96), &short_crls), (T0 + H, Reason::Crl));
        // Weekly CRLs never come before the responses' own refresh (at most 4 days).
        let weekly = Policy {
            crl_validity: Some(Duration::from_secs(10 * 86_400)),
            ..policy(240, 230)
        };
        assert_eq!(next_due(&fresh(240), &weekly), (T0 + 96 * H, Reason::Refresh));
    }
}
