//! Latency histograms: the one implementation behind the router's per-second windows
//! (`local::metrics`) and the load generator's report (`load`), on `hdrhistogram`.
//!
//! Owns: recording latencies (microseconds, 1 µs to 100 s; longer ones count as 100 s, the
//! exact maximum is kept aside), merging histograms of the same precision, and nearest-rank
//! quantiles. Must not touch: what the latencies are of, windows, or formatting.
//!
//! A quantile is the upper bound of the bucket holding the nearest-rank value, capped at the
//! exact maximum: never under the true value, and over it by less than the bucket width
//! ([`Precision`]). Recording is O(1) with no allocation.

use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest latency told apart, in microseconds (100 s).
pub const MAX_US: u64 = 100_000_000;

/// How finely a histogram tells latencies apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// One significant digit: a value is reported less than 1/16 (6.25%) over, exact below
    /// 32 µs; 384 counters (3 KiB). For many small histograms (the router's one per second).
    Coarse,
    /// Two significant digits: less than 1/128 (0.8%) over, exact below 256 µs; 2688 counters
    /// (21 KiB). For one summary (a load run).
    Fine,
}

impl Precision {
    fn digits(self) -> u8 {
        match self {
            Precision::Coarse => 1,
            Precision::Fine => 2,
        }
    }
}

/// A latency histogram; see the module documentation.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    h: Histogram<u64>,
    max_us: u64,
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new(precision: Precision) -> LatencyHistogram {
        // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 low, 1..=5 digits): no
        // input reaches this, it cannot fail at run time, and the tests build every precision.
        let h = Histogram::new_with_bounds(1, MAX_US, precision.digits())
            .expect("constant histogram bounds are valid");
        LatencyHistogram { h, max_us: 0 }
    }

    /// An empty histogram of the same precision (no bounds to check again).
    pub fn empty_like(&self) -> LatencyHistogram {
        LatencyHistogram {
            h: Histogram::new_from(&self.h),
            max_us: 0,
        }
    }

    /// Forget every value, keeping the precision and the memory.
    pub fn clear(&mut self) {
        self.h.reset();
        self.max_us = 0;
    }

    /// Count one latency.
    pub fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.h.saturating_record(us);
        self.max_us = self.max_us.max(us);
    }

    /// Add another histogram's counts: a copy or one pass over the counters when both have the
    /// same precision (as the callers' do); values of another precision are re-bucketed.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // The same bounds on both sides: nothing in `add` can fail.
        if self.h.add(&other.h).is_ok() {
            self.max_us = self.max_us.max(other.max_us);
        }
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.h.len()
    }

    /// The largest latency counted, exact, in microseconds (0 when empty).
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The nearest-rank `q`-quantile (`0 < q <= 1`) in microseconds, as the module says;
    /// `None` when empty.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        (self.count() > 0).then(|| self.h.value_at_quantile(q).min(self.max_us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn nearest_rank_quantiles_never_under_and_within_the_precision() {
        for (p, rel) in [
            (Precision::Fine, 1.0 / 128.0),
            (Precision::Coarse, 1.0 / 16.0),
        ] {
            let mut h = LatencyHistogram::new(p);
            for v in 1..=100 {
                h.record(ms(v));
            }
            assert_eq!(h.count(), 100);
            for (q, want_ms) in [(0.5, 50u64), (0.9, 90), (0.99, 99), (1.0, 100)] {
                let got = h.quantile_us(q).unwrap_or(0) as f64;
                let want = (want_ms * 1000) as f64;
                assert!(
                    got >= want && got <= want * (1.0 + rel),
                    "{p:?} q={q}: {got}"
                );
            }
            assert_eq!(h.max_us(), 100_000);
            assert_eq!(h.quantile_us(1.0), Some(100_000), "capped at the exact max");
        }
    }

    #[test]
    fn exact_for_small_values_and_saturating_for_huge_ones() {
        let mut h = LatencyHistogram::new(Precision::Fine);
        h.record(Duration::from_micros(7));
        assert_eq!(h.quantile_us(0.5), Some(7));
        h.record(Duration::from_micros(255));
        assert_eq!(h.quantile_us(1.0), Some(255));
        let mut c = LatencyHistogram::new(Precision::Coarse);
        c.record(Duration::from_micros(31));
        assert_eq!(c.quantile_us(0.5), Some(31));
        c.record(Duration::ZERO);
        assert_eq!(c.quantile_us(0.5), Some(0));
        // Past 100 s: counted in the last bucket, the maximum stays exact.
        c.record(Duration::from_secs(1_000_000));
        c.record(Duration::MAX);
        assert_eq!(c.count(), 4);
        assert_eq!(c.max_us(), u64::MAX);
        assert!(c.quantile_us(1.0).unwrap_or(0) >= MAX_US);
    }

    #[test]
    fn empty_merge_and_clear() {
        let mut a = LatencyHistogram::new(Precision::Coarse);
        assert_eq!(a.quantile_us(0.5), None);
        assert_eq!(a.max_us(), 0);
        let mut b = a.empty_like();
        for v in [1, 2, 3] {
            a.record(ms(v));
        }
        b.record(ms(40));
        let mut sum = a.empty_like();
        sum.merge(&a);
        sum.merge(&b);
        sum.merge(&a.empty_like());
        assert_eq!(sum.count(), 4);
        assert_eq!(sum.max_us(), 40_000);
        assert_eq!(sum.quantile_us(1.0), Some(40_000));
        assert!(sum.quantile_us(0.5).unwrap_or(0) >= 2_000);
        // Another precision is re-bucketed.
        let mut fine = LatencyHistogram::new(Precision::Fine);
        fine.record(ms(9));
        sum.merge(&fine);
        assert_eq!(sum.count(), 5);
        sum.clear();
        assert_eq!(
            (sum.count(), sum.max_us(), sum.quantile_us(0.9)),
            (0, 0, None)
        );
    }
}
