//! A fixed-size log-linear latency histogram (HdrHistogram-like, 2 significant digits):
//! exact below 256 ns, then 128 sub-buckets per power of two (≤ 0.8% relative error).
//! Recording is an add to an array slot; merging is element-wise addition.

const SUB_BITS: u32 = 8;
const SUB: usize = 1 << SUB_BITS; // 256
const HALF: usize = SUB / 2; // 128
/// Enough buckets for values up to 2^48 ns (~78 hours).
const BUCKETS: usize = SUB + (48 - SUB_BITS as usize) * HALF;

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    sum_ns: u128,
    max_ns: u64,
    min_ns: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index_of(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let bits = 64 - ns.leading_zeros(); // > SUB_BITS
    let shift = bits - SUB_BITS;
    let index = shift as usize * HALF + (ns >> shift) as usize;
    index.min(BUCKETS - 1)
}

/// The highest value that lands in bucket `index` (what percentiles report, like HdrHistogram).
fn highest_of(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let shift = (index / HALF - 1) as u32;
    let mantissa = (index % HALF + HALF) as u64;
    ((mantissa + 1) << shift) - 1
}

impl Histogram {
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            sum_ns: 0,
            max_ns: 0,
            min_ns: u64::MAX,
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[index_of(ns)] += 1;
        self.total += 1;
        self.sum_ns += ns as u128;
        self.max_ns = self.max_ns.max(ns);
        self.min_ns = self.min_ns.min(ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
        self.min_ns = self.min_ns.min(other.min_ns);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    pub fn min_ns(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min_ns
        }
    }

    pub fn mean_ns(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.total as f64
        }
    }

    /// The value at `quantile` (0..=1), never above the exact maximum.
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest_of(index).min(self.max_ns);
            }
        }
        self.max_ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_precise() {
        let mut previous = 0;
        for ns in (0..5_000_000u64).step_by(7).chain([u64::MAX / 2, u64::MAX]) {
            let index = index_of(ns);
            assert!(index >= previous, "monotonic at {ns}");
            previous = index;
            let high = highest_of(index);
            if index < BUCKETS - 1 {
                assert!(high >= ns, "{ns} above its bucket's top {high}");
                assert!((high - ns) as f64 <= ns as f64 * 0.008 + 1.0, "{ns} vs {high}");
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let p50 = h.quantile_ns(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.01, "{p50}");
        assert_eq!(h.quantile_ns(1.0), 1_000_000);
        let mut other = Histogram::new();
        other.record(5_000_000);
        h.merge(&other);
        assert_eq!(h.max_ns(), 5_000_000);
        assert_eq!(h.count(), 1001);
    }
}
