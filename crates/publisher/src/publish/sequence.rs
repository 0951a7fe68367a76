//! How a new snapshot is numbered: strictly above everything in the store, and derived
//! from the clock so that a restarted or standby publisher cannot go backwards. Pure
//! arithmetic; reads neither the store nor the clock (both are passed in).

use ocsp_edge_core::time::UnixTime;

/// Why no sequence can be given to a new snapshot.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SequenceError {
    #[error(
        "the snapshot store holds sequence {highest}, beyond now + {skew_seconds}s ({limit}): sequences \
         are unix seconds at publish time, so it did not come from an honest publisher with a \
         correct clock, and responders refuse anything numbered that high (future_sequence). \
         Check this host's clock; then remove the manifests numbered above {limit} (and their \
         snapshots) from the output directory and any upload store, and publish again"
    )]
    Poisoned {
        highest: u64,
        limit: u64,
        skew_seconds: u64,
    },
    #[error(
        "the sequence floor {floor} (one above the upload store's) is beyond now + \
         {skew_seconds}s ({limit}); responders would refuse it. Check this host's clock and \
         the upload store's newest manifest"
    )]
    FloorInTheFuture {
        floor: u64,
        limit: u64,
        skew_seconds: u64,
    },
}

/// The sequence of the next snapshot: strictly increasing, and derived from the clock so
/// that a publisher restarted on an empty directory (or a standby taking over) cannot go
/// backwards: max(highest + 1, now, floor). Responders refuse sequences beyond now + the
/// skew, so a store already beyond that (poisoned, or written with a clock far ahead) is
/// refused here with an explanation rather than carried forward, and no addition wraps.
pub fn next_sequence(highest: u64, now: UnixTime, floor: u64) -> Result<u64, SequenceError> {
    let skew_seconds = ocsp_edge_core::snapshot::DEFAULT_MAX_SEQUENCE_SKEW.as_secs();
    let clock = u64::try_from(now.seconds()).unwrap_or(0);
    let limit = clock.saturating_add(skew_seconds);
    // `highest < limit <= u64::MAX`, so the addition below cannot overflow.
    if highest >= limit {
        return Err(SequenceError::Poisoned {
            highest,
            limit,
            skew_seconds,
        });
    }
    if floor > limit {
        return Err(SequenceError::FloorInTheFuture {
            floor,
            limit,
            skew_seconds,
        });
    }
    Ok((highest + 1).max(clock).max(floor))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = UnixTime(1_790_000_000);

    #[test]
    fn sequences_are_checked_against_overflow_and_a_poisoned_store() {
        let clock = NOW.seconds() as u64;
        assert_eq!(next_sequence(0, NOW, 0), Ok(clock));
        assert_eq!(next_sequence(clock + 5, NOW, 0), Ok(clock + 6));
        assert_eq!(next_sequence(0, NOW, clock + 9), Ok(clock + 9));
        // A store holding u64::MAX (finding 1 persisted it) must not wrap to 0 or 1.
        for poisoned in [u64::MAX, clock + 86_400] {
            let refused = next_sequence(poisoned, NOW, 0);
            assert!(matches!(refused, Err(SequenceError::Poisoned { highest, .. }) if highest == poisoned));
        }
        assert!(matches!(
            next_sequence(0, NOW, u64::MAX),
            Err(SequenceError::FloorInTheFuture { .. })
        ));
        // Before the epoch (a broken clock) the sequence still only comes from the store.
        assert_eq!(next_sequence(7, UnixTime(-5), 0), Ok(8));
    }
}
