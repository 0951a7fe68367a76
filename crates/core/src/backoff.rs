//! Retry pacing shared by everything that retries: exponential backoff with a cap, and
//! the jitter that keeps a fleet of responders or caches from retrying in lockstep.
//!
//! Pure arithmetic plus a random factor; never sleeps and never reads the clock (callers
//! wait however their runtime waits).

use std::time::Duration;

/// `first` doubled per failure after the first (`failures` ≤ 1 waits `first`), capped by
/// `cap`. Saturates instead of overflowing, however many failures.
pub fn exponential(first: Duration, cap: Duration, failures: u32) -> Duration {
    first
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(cap)
}

/// `pause` scaled by a random factor in [0.8, 1.2).
pub fn jittered(pause: Duration) -> Duration {
    pause.mul_f64(rand::random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_wait_up_to_the_cap_without_overflow() {
        let ms = Duration::from_millis;
        let waits: Vec<Duration> = (0..6).map(|n| exponential(ms(100), ms(1_000), n)).collect();
        assert_eq!(waits, [ms(100), ms(100), ms(200), ms(400), ms(800), ms(1_000)]);
        assert_eq!(exponential(ms(100), Duration::MAX, u32::MAX), ms(100 << 16));
        assert_eq!(exponential(Duration::MAX, Duration::MAX, 40), Duration::MAX);
    }

    #[test]
    fn jitter_stays_within_a_fifth_and_varies() {
        let pause = Duration::from_secs(10);
        let samples: Vec<Duration> = (0..200).map(|_| jittered(pause)).collect();
        assert!(samples
            .iter()
            .all(|s| *s >= Duration::from_secs(8) && *s < Duration::from_secs(12)));
        assert!(samples.iter().any(|s| *s != samples[0]), "not jittered at all");
    }
}
