//! Which request a connection sends next.
//!
//! - `Uniform`: every request equally often — each connection walks the requests file in
//!   order from its own offset (the original behaviour).
//! - `Zipf`: request of rank k (1-based) with probability ∝ 1/k^s. Ranks are positions in a
//!   seeded shuffle of the requests file, so the hot requests are spread over the
//!   serial (key) space rather than bunched where the file happens to put them.
//!
//! The Zipf sampler is Hörmann and Derflinger's rejection-inversion method ("Rejection-
//! inversion to generate variates from monotone discrete distributions", 1996), as in
//! Apache Commons RNG: O(1) time and memory per sample for any number of elements, about
//! one logarithm and one exponential per draw.

use crate::prepare::Rng;

/// How the next request is chosen.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    Uniform,
    Zipf { exponent: f64 },
}

impl Distribution {
    pub fn name(&self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Zipf { .. } => "zipf",
        }
    }
}

/// Zipf's law over ranks `1..=n` with exponent `s > 0`.
#[derive(Clone, Copy, Debug)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    pub fn new(n: usize, exponent: f64) -> Result<Zipf, String> {
        if n == 0 {
            return Err("Zipf needs at least one element".into());
        }
        if !(exponent > 0.0 && exponent.is_finite()) {
            return Err(format!("Zipf exponent must be > 0, not {exponent}"));
        }
        let mut zipf = Zipf {
            n: n as f64,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(zipf.n + 0.5);
        zipf.s = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        Ok(zipf)
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> usize {
        loop {
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as usize;
            }
        }
    }

    /// H(x) = ∫ h: (x^(1−s) − 1) / (1 − s), or ln x when s = 1.
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    /// h(x) = x^−s.
    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// The share of all draws that fall on the `k` most probable of `n` ranks under Zipf's
/// law with exponent `s`: Σ_{i≤k} i^−s ÷ Σ_{i≤n} i^−s, summed exactly (smallest terms
/// first). It is the best hit ratio a cache holding a fixed set of `k` of the `n`
/// requests can reach on that mix (the hottest `k`); `k ≥ n` gives 1.
pub fn top_share(n: usize, k: usize, exponent: f64) -> Result<f64, String> {
    if n == 0 {
        return Err("Zipf needs at least one element".into());
    }
    if !(exponent > 0.0 && exponent.is_finite()) {
        return Err(format!("Zipf exponent must be > 0, not {exponent}"));
    }
    let k = k.min(n);
    let weight = |i: usize| {
        if exponent == 1.0 {
            1.0 / i as f64
        } else {
            (i as f64).powf(-exponent)
        }
    };
    let (mut top, mut total) = (0.0, 0.0);
    for i in (1..=n).rev() {
        let w = weight(i);
        total += w;
        if i <= k {
            top += w;
        }
    }
    Ok(top / total)
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x − 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// Picks request indices for one connection.
pub struct Picker {
    kind: PickerKind,
}

enum PickerKind {
    /// Walk the file in order from an offset.
    Walk { next: usize, n: usize },
    /// Zipf rank → position in `order` (shared by all connections).
    Zipf {
        zipf: Zipf,
        rng: Rng,
        order: std::sync::Arc<[u32]>,
    },
}

impl Picker {
    /// Connection `id` of `connections` over `n` requests. `order` (the rank → index
    /// shuffle, see [`rank_order`]) is needed for Zipf only.
    pub fn new(
        distribution: Distribution,
        n: usize,
        id: usize,
        connections: usize,
        seed: u64,
        order: Option<std::sync::Arc<[u32]>>,
    ) -> Picker {
        let kind = match (distribution, order) {
            (Distribution::Zipf { exponent }, Some(order)) => PickerKind::Zipf {
                zipf: Zipf::new(n, exponent).expect("Zipf parameters are validated before a run"),
                rng: connection_rng(seed, id),
                order,
            },
            _ => PickerKind::Walk {
                next: id * n / connections.max(1),
                n,
            },
        };
        Picker { kind }
    }

    pub fn next_index(&mut self) -> usize {
        match &mut self.kind {
            PickerKind::Walk { next, n } => {
                let index = *next;
                *next = if *next + 1 == *n { 0 } else { *next + 1 };
                index
            }
            PickerKind::Zipf { zipf, rng, order } => order[zipf.sample(rng) - 1] as usize,
        }
    }
}

/// Connection `id`'s random stream, derived from the run's seed. SplitMix64 adds a fixed
/// increment to its state at each draw, so two states that differ by a multiple of it are
/// one stream shifted: seeding connection `id` with `seed ^ (id + 1) × increment` gave
/// every other connection the same draws two steps later (50 connections, two distinct
/// request sequences, each replayed 25 times a few requests apart, which a cache turns
/// into hits and coalesced misses). The state is one output of the generator instead.
pub fn connection_rng(seed: u64, id: usize) -> Rng {
    let mut mixer = Rng::new(seed ^ (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    Rng::new(mixer.next_u64())
}

/// Rank → request index: a seeded shuffle of `0..n`.
pub fn rank_order(n: usize, seed: u64) -> std::sync::Arc<[u32]> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    Rng::new(seed).shuffle(&mut order);
    order.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact P(rank = k) for k in 1..=n.
    fn exact(n: usize, s: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        weights.into_iter().map(|w| w / total).collect()
    }

    fn histogram(n: usize, s: f64, draws: usize, seed: u64) -> Vec<f64> {
        let zipf = Zipf::new(n, s).unwrap();
        let mut rng = Rng::new(seed);
        let mut counts = vec![0u64; n];
        for _ in 0..draws {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k), "rank {k} outside 1..={n}");
            counts[k - 1] += 1;
        }
        counts.into_iter().map(|c| c as f64 / draws as f64).collect()
    }

    #[test]
    fn zipf_matches_the_exact_distribution() {
        for (n, s) in [(1000, 1.0), (1000, 0.8), (50, 1.3), (100_000, 1.0)] {
            let draws = 400_000;
            let got = histogram(n, s, draws, 42);
            let want = exact(n, s);
            // The head: each of the top ranks within 3% (relative) of its probability.
            for k in 0..5 {
                let error = (got[k] - want[k]).abs() / want[k];
                assert!(
                    error < 0.03,
                    "n={n} s={s} rank {}: {} vs {}",
                    k + 1,
                    got[k],
                    want[k]
                );
            }
            // Monotone-ish shape: rank 1 > rank 2 > rank 10.
            assert!(got[0] > got[1] && got[1] > got[9.min(n - 1)], "n={n} s={s}");
            // The whole distribution, in dyadic bins of ranks (1, 2, 3–4, 5–8, ...): each
            // bin's count within 5 standard deviations of its expectation. An off-by-one
            // or a biased tail would be hundreds of deviations off at this many draws.
            let mut low = 1;
            while low <= n {
                let high = (2 * low - 1).min(n);
                let got_count: f64 = got[low - 1..high].iter().sum::<f64>() * draws as f64;
                let expected: f64 = want[low - 1..high].iter().sum::<f64>() * draws as f64;
                let z = (got_count - expected) / expected.sqrt();
                assert!(
                    z.abs() < 5.0,
                    "n={n} s={s} ranks {low}..={high}: {got_count} vs {expected:.0} (z={z:.1})"
                );
                low = high + 1;
            }
            // Share of the top 1% of ranks (the "hot set").
            let top = (n / 100).max(1);
            let got_top: f64 = got[..top].iter().sum();
            let want_top: f64 = want[..top].iter().sum();
            assert!(
                (got_top - want_top).abs() < 0.01,
                "n={n} s={s}: top 1% {got_top} vs {want_top}"
            );
        }
    }

    #[test]
    fn zipf_exponent_one_head_share() {
        // s = 1, n = 1000: P(1) = 1/H(1000) ≈ 0.1336; the top 10 ranks ≈ 39.1%.
        let got = histogram(1000, 1.0, 200_000, 7);
        assert!((got[0] - 0.1336).abs() < 0.004, "{}", got[0]);
        let top10: f64 = got[..10].iter().sum();
        assert!((top10 - 0.3913).abs() < 0.006, "{top10}");
    }

    #[test]
    fn top_share_is_the_head_of_the_exact_distribution() {
        // n = 4, s = 1: (1 + 1/2) / (1 + 1/2 + 1/3 + 1/4) = 18/25.
        assert!((top_share(4, 2, 1.0).unwrap() - 0.72).abs() < 1e-12);
        // s = 2: (1 + 1/4) / (1 + 1/4 + 1/9).
        let want = 1.25 / (1.25 + 1.0 / 9.0);
        assert!((top_share(3, 2, 2.0).unwrap() - want).abs() < 1e-12);
        assert_eq!(top_share(10, 0, 1.0).unwrap(), 0.0);
        assert_eq!(top_share(10, 10, 0.8).unwrap(), 1.0);
        assert_eq!(top_share(10, 50, 0.8).unwrap(), 1.0);
        assert!(top_share(0, 1, 1.0).is_err());
        assert!(top_share(10, 1, 0.0).is_err());
        // Against the brute-force sum, for several exponents.
        for s in [0.6, 0.8, 1.0, 1.2] {
            let p = exact(1000, s);
            let want: f64 = p[..10].iter().sum();
            assert!((top_share(1000, 10, s).unwrap() - want).abs() < 1e-12, "s={s}");
        }
        // docs/replication.md's cache measurement: 20,000 CertIDs, capacity 200 (1%):
        // H(200) / H(20000) = 5.878 / 10.480 ≈ 0.561 at s = 1, 0.314 at s = 0.8.
        let one = top_share(20_000, 200, 1.0).unwrap();
        assert!((one - 0.5608).abs() < 0.0005, "{one}");
        let flatter = top_share(20_000, 200, 0.8).unwrap();
        assert!((flatter - 0.3143).abs() < 0.0005, "{flatter}");
        // The sampler agrees: the draws that land on the top 1% of ranks.
        let got = histogram(20_000, 1.0, 200_000, 11);
        let drawn: f64 = got[..200].iter().sum();
        assert!((drawn - one).abs() < 0.005, "{drawn} vs {one}");
    }

    #[test]
    fn zipf_edge_cases() {
        let one = Zipf::new(1, 1.0).unwrap();
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| one.sample(&mut rng) == 1));
        assert!(Zipf::new(0, 1.0).is_err());
        assert!(Zipf::new(10, 0.0).is_err());
        assert!(Zipf::new(10, f64::NAN).is_err());
        // Very steep: nearly always rank 1; very flat: close to uniform.
        let steep = histogram(100, 8.0, 10_000, 3);
        assert!(steep[0] > 0.99);
        let flat = histogram(10, 0.01, 100_000, 3);
        assert!(flat.iter().all(|p| (p - 0.1).abs() < 0.01), "{flat:?}");
    }

    #[test]
    fn connections_draw_independent_streams() {
        // No connection's draws are another's, shifted: 50 connections × 1,000 draws are
        // 50,000 distinct 64-bit values (a shifted copy would repeat almost all of them).
        for seed in [0, 1, 2, 42] {
            let mut seen = std::collections::HashSet::new();
            for id in 0..50 {
                let mut rng = connection_rng(seed, id);
                for _ in 0..1000 {
                    assert!(
                        seen.insert(rng.next_u64()),
                        "seed {seed}: connection {id} repeats a draw"
                    );
                }
            }
        }
        // The old derivation, for the record: connection 2 replayed connection 0.
        let old = |id: u64| Rng::new(1 ^ (id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (mut a, mut c) = (old(0), old(2));
        let a: Vec<u64> = (0..10).map(|_| a.next_u64()).collect();
        let c: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(a[2..], c[..]);
        // Zipf pickers of different connections share few consecutive requests.
        let order = rank_order(40_000, 1);
        let draws = |id| {
            let mut p = Picker::new(
                Distribution::Zipf { exponent: 1.0 },
                40_000,
                id,
                50,
                1,
                Some(order.clone()),
            );
            (0..2000).map(|_| p.next_index()).collect::<Vec<usize>>()
        };
        let (zero, two) = (draws(0), draws(2));
        let same = zero.iter().zip(&two[..]).filter(|(x, y)| x == y).count();
        let shifted = zero[2..].iter().zip(&two[..]).filter(|(x, y)| x == y).count();
        // Independent streams agree where both hit the same hot rank: ~ Σ p² ≈ 1.5%.
        assert!(
            same < 100 && shifted < 100,
            "same {same}, shifted {shifted} of 2000"
        );
    }

    #[test]
    fn pickers_walk_or_follow_the_rank_order() {
        let mut walk = Picker::new(Distribution::Uniform, 10, 1, 2, 0, None);
        let got: Vec<usize> = (0..7).map(|_| walk.next_index()).collect();
        assert_eq!(got, [5, 6, 7, 8, 9, 0, 1]);

        let order = rank_order(1000, 9);
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<u32>>(), "a permutation");
        let mut zipf = Picker::new(
            Distribution::Zipf { exponent: 1.0 },
            1000,
            0,
            1,
            5,
            Some(order.clone()),
        );
        let mut counts = vec![0u32; 1000];
        for _ in 0..100_000 {
            counts[zipf.next_index()] += 1;
        }
        // The most requested index is the rank-1 element of the shuffle.
        let hottest = (0..1000).max_by_key(|&i| counts[i]).unwrap();
        assert_eq!(hottest, order[0] as usize);
        // Two connections draw different streams.
        let mut a = Picker::new(
            Distribution::Zipf { exponent: 1.0 },
            1000,
            0,
            2,
            5,
            Some(order.clone()),
        );
        let mut b = Picker::new(Distribution::Zipf { exponent: 1.0 }, 1000, 1, 2, 5, Some(order));
        let a: Vec<usize> = (0..50).map(|_| a.next_index()).collect();
        let b: Vec<usize> = (0..50).map(|_| b.next_index()).collect();
        assert_ne!(a, b);
    }
}
