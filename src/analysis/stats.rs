//! Statistics for canary analysis: canary versus baseline over the same window.
//!
//! What this module owns:
//! - the standard normal distribution ([`normal_cdf`], [`normal_sf`], [`normal_quantile`]),
//!   implemented here without dependencies;
//! - the Mann-Whitney U test ([`mann_whitney_u`]), matching `scipy.stats.mannwhitneyu`;
//! - the Hodges-Lehmann shift estimate and its distribution-free confidence interval
//!   ([`hodges_lehmann`], [`hl_interval`]);
//! - a per-metric classifier with the semantics of Kayenta's NetflixACAJudge
//!   ([`classify`]) and the summary score over several metrics ([`score`], [`classify_score`]).
//!
//! What it must not do: fetch metrics, read the clock, log, or decide anything about a rollout.
//! Everything here is a pure function of the numbers it is given; the engine decides what a
//! `High` or a score of 60 means for a deployment, and records the `reason` strings produced here
//! in its events.
//!
//! Conventions: `x` / `canary` is the experiment, `y` / `baseline` the control. A positive shift
//! means the canary is higher than the baseline.

use std::fmt;

// ---------------------------------------------------------------------------------------------
// Standard normal distribution
// ---------------------------------------------------------------------------------------------

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;
const SQRT_PI: f64 = 1.772_453_850_905_516;

/// Complementary error function.
///
/// For `0 <= x < 2.5` it uses the everywhere-positive series
/// `erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n (2x^2)^n x / (1*3*...*(2n+1))` and returns `1 - erf`;
/// for `x >= 2.5` the continued fraction
/// `erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))` evaluated backwards
/// over 60 terms; `erfc(-x) = 2 - erfc(x)`. Relative error below 2e-12 everywhere (checked
/// against `scipy.special.erfc` on a 0.001 grid over [0, 30]), far better than the 1e-7 that the
/// p-values here need.
fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 2.5 {
        let two_x2 = 2.0 * x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= two_x2 / (2.0 * n + 1.0);
            sum += term;
        }
        return 1.0 - FRAC_2_SQRT_PI * (-x * x).exp() * sum;
    }
    if x.is_infinite() {
        return 0.0;
    }
    let mut t = x;
    for n in (1..=60).rev() {
        t = x + (f64::from(n) / 2.0) / t;
    }
    (-x * x).exp() / SQRT_PI / t
}

/// Standard normal cumulative distribution function, `P(Z <= z)` (scipy `special.ndtr`).
pub fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Standard normal survival function, `P(Z > z)` (scipy `stats.norm.sf`), accurate in the upper
/// tail (no `1 - cdf` cancellation).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile (inverse CDF, scipy `special.ndtri`).
///
/// Acklam's rational approximation (relative error below 1.15e-9) followed by one Halley step
/// against [`normal_cdf`], which brings it to about machine precision. Returns `-inf` for 0,
/// `+inf` for 1 and NaN outside [0, 1].
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.02425;

    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - P_LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    // One Halley step: e = cdf(x) - p; u = e * sqrt(2 pi) * exp(x^2 / 2).
    // In the upper half the error is taken from the survival function to keep precision.
    let e = if p > 0.5 {
        (1.0 - p) - normal_sf(x)
    } else {
        normal_cdf(x) - p
    };
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    if u.is_finite() {
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|a| a.is_finite())
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// The `q`-quantile of an ascending sample, linearly interpolated between the two closest
/// order statistics (R's type 7, numpy's default `linear`): position `h = (n - 1) q`, value
/// `s[floor h] + (h - floor h) (s[floor h + 1] - s[floor h])`. The median (`q = 0.5`) of an
/// even count is the midpoint of the middle two. `None` when empty or `q` is outside [0, 1].
fn quantile_of_sorted(s: &[f64], q: f64) -> Option<f64> {
    if s.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let h = (s.len() - 1) as f64 * q;
    let i = h.floor() as usize;
    let f = h - i as f64;
    let lo = *s.get(i)?;
    let Some(&hi) = s.get(i + 1) else {
        return Some(lo);
    };
    Some(if f == 0.0 || lo == hi {
        lo
    } else if f == 0.5 {
        lo.midpoint(hi)
    } else if lo.is_finite() && hi.is_finite() {
        (lo + (hi - lo) * f).min(hi)
    } else if f < 0.5 {
        lo
    } else {
        hi
    })
}

/// The `q`-quantile (`0 <= q <= 1`) of a sample, interpolated as numpy's and R's defaults do
/// (see `quantile_of_sorted`): the one quantile of raw samples in cutover (medians and p90s
/// of canary metrics, deployment durations, recovery times). `None` when empty, when `q` is
/// outside [0, 1] or when any value is NaN.
pub fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.iter().any(|a| a.is_nan()) {
        return None;
    }
    quantile_of_sorted(&sorted(v), q)
}

/// Median of a sample (mean of the two middle values for an even count). `None` when empty or
/// when any value is NaN.
pub fn median(v: &[f64]) -> Option<f64> {
    quantile(v, 0.5)
}

fn mean(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        None
    } else {
        Some(v.iter().sum::<f64>() / v.len() as f64)
    }
}

// ---------------------------------------------------------------------------------------------
// Mann-Whitney U
// ---------------------------------------------------------------------------------------------

/// Alternative hypothesis of the Mann-Whitney test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// The distributions differ.
    TwoSided,
    /// `x` is stochastically greater than `y`.
    Greater,
    /// `x` is stochastically less than `y`.
    Less,
}

/// How a Mann-Whitney p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MwMethod {
    /// Exact null distribution of U (both samples have at most [`MW_EXACT_MAX`] values, no ties).
    Exact,
    /// Normal approximation with tie and continuity correction.
    Asymptotic,
}

/// Largest sample size (each side) for which the exact distribution is used.
pub const MW_EXACT_MAX: usize = 8;

/// Result of [`mann_whitney_u`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MwResult {
    /// U statistic of `x`: the number of pairs with `x_i > y_j`, ties counting one half
    /// (scipy's `statistic`).
    pub u: f64,
    /// Signed standardized statistic of `x`:
    /// `(U - n1 n2 / 2 - 0.5 sgn(U - n1 n2 / 2)) / sigma` with the tie-corrected sigma; 0 when all
    /// values are tied. Positive when `x` tends to be larger. Informational (also for the exact
    /// method).
    pub z: f64,
    /// p-value for the requested alternative.
    pub p_value: f64,
    /// Which computation produced `p_value`.
    pub method: MwMethod,
}

struct RankSums {
    /// Sum of the (average) ranks of `x` in the pooled sample.
    r1: f64,
    /// `sum over tie groups of t^3 - t`.
    tie_term: f64,
}

fn rank_sums(x: &[f64], y: &[f64]) -> RankSums {
    let mut pooled: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut r1 = 0.0;
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i + 1;
        while j < pooled.len() && pooled[j].0 == pooled[i].0 {
            j += 1;
        }
        // Positions i..j (0-based) share ranks i+1..=j; their average is (i + 1 + j) / 2.
        let avg = (i + 1 + j) as f64 / 2.0;
        let in_x = pooled[i..j].iter().filter(|p| p.1).count();
        r1 += avg * in_x as f64;
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    RankSums { r1, tie_term }
}

/// Null-distribution counts of U for sample sizes `m`, `n`: `counts[u]` is the number of the
/// `C(m + n, m)` equally likely arrangements giving `U = u`. Recurrence on the largest value:
/// `f(m, n; u) = f(m - 1, n; u - n) + f(m, n - 1; u)`.
fn mw_exact_counts(m: usize, n: usize) -> Vec<u64> {
    let mut table: Vec<Vec<Vec<u64>>> = vec![vec![Vec::new(); n + 1]; m + 1];
    for i in 0..=m {
        for j in 0..=n {
            if i == 0 || j == 0 {
                table[i][j] = vec![1];
                continue;
            }
            let mut v = vec![0u64; i * j + 1];
            for (u, c) in table[i - 1][j].iter().enumerate() {
                v[u + j] += c;
            }
            for (u, c) in table[i][j - 1].iter().enumerate() {
                v[u] += c;
            }
            table[i][j] = v;
        }
    }
    std::mem::take(&mut table[m][n])
}

/// `P(U >= k)` under the null for sizes `m`, `n` (no ties).
fn mw_exact_sf(k: f64, m: usize, n: usize) -> f64 {
    let counts = mw_exact_counts(m, n);
    let total: u64 = counts.iter().sum();
    let start = if k <= 0.0 { 0 } else { k.ceil() as usize };
    let upper: u64 = counts.iter().skip(start).sum();
    upper as f64 / total as f64
}

/// Mann-Whitney U (Wilcoxon rank-sum) test of `x` against `y`.
///
/// Matches `scipy.stats.mannwhitneyu(x, y, use_continuity=True, alternative=...)`:
/// - ranks of the pooled sample, ties get the average rank; `U = R1 - n1 (n1 + 1) / 2`;
/// - method: **exact** when both samples have at most 8 values ([`MW_EXACT_MAX`]) and there are no
///   ties, as scipy `method="exact"` (the p-value is `P(U' >= U)` under the exact null
///   distribution, doubled and capped at 1 for two-sided); otherwise **asymptotic**, as scipy
///   `method="asymptotic"`: `sigma = sqrt(n1 n2 / 12 * ((N + 1) - sum(t^3 - t) / (N (N - 1))))`,
///   `z = (U' - n1 n2 / 2 - 0.5) / sigma` and `p = sf(z)` (times 2, capped at 1, for two-sided),
///   where `U'` is `U1` for `Greater`, `U2 = n1 n2 - U1` for `Less` and `max(U1, U2)` for
///   `TwoSided`. Note the difference from scipy's `method="auto"`, which picks exact as soon as
///   *one* sample has at most 8 values; here both must.
/// - all values tied: the test has no information; `z = 0`, `p = 1` (scipy also gives 1).
///
/// Returns `None` when a sample is empty or any value is NaN or infinite.
pub fn mann_whitney_u(x: &[f64], y: &[f64], alternative: Alternative) -> Option<MwResult> {
    if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let n = n1 + n2;
    let RankSums { r1, tie_term } = rank_sums(x, y);
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let mu = n1 * n2 / 2.0;
    let sigma = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();

    let z = if sigma > 0.0 {
        let d = u1 - mu;
        let corrected = if d > 0.0 {
            d - 0.5
        } else if d < 0.0 {
            d + 0.5
        } else {
            0.0
        };
        corrected / sigma
    } else {
        0.0
    };

    let (u_tail, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let ties = tie_term > 0.0;
    let exact = !ties && x.len() <= MW_EXACT_MAX && y.len() <= MW_EXACT_MAX;
    let (p, method) = if exact {
        let m = x.len().min(y.len());
        let nn = x.len().max(y.len());
        (mw_exact_sf(u_tail, m, nn), MwMethod::Exact)
    } else if sigma > 0.0 {
        (normal_sf((u_tail - mu - 0.5) / sigma), MwMethod::Asymptotic)
    } else {
        (1.0, MwMethod::Asymptotic)
    };
    let p_value = (p * factor).clamp(0.0, 1.0);
    Some(MwResult {
        u: u1,
        z,
        p_value,
        method,
    })
}

// ---------------------------------------------------------------------------------------------
// Hodges-Lehmann
// ---------------------------------------------------------------------------------------------

/// Maps an f64 to an i64 whose integer order is the numeric order of the floats (an involution:
/// applying it to the bits of the result gives the float back).
fn order_key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ ((b >> 63) & i64::MAX)
}

fn from_order_key(k: i64) -> f64 {
    f64::from_bits((k ^ ((k >> 63) & i64::MAX)) as u64)
}

/// The `n1 * n2` pairwise differences `x_i - y_j`, held implicitly as the two sorted samples.
///
/// Order statistics are found without materializing the differences: `count_le(t)` counts the
/// differences `<= t` with a two-pointer sweep (floating-point subtraction is monotone, so the
/// computed differences are non-decreasing in `x_i` and non-increasing in `y_j`), and the k-th
/// smallest difference is the smallest float `t` with `count_le(t) >= k`, found by bisection over
/// the ordered bit patterns of floats between the smallest and the largest difference (at most 64
/// steps). The result is exactly the k-th smallest of the computed differences, in
/// `O((n1 + n2) * 64)` time and `O(n1 + n2)` memory, so no size cap or subsampling is needed.
struct PairDiffs {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl PairDiffs {
    fn new(x: &[f64], y: &[f64]) -> Option<Self> {
        if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) {
            return None;
        }
        (x.len() as u64).checked_mul(y.len() as u64)?;
        Some(PairDiffs {
            x: sorted(x),
            y: sorted(y),
        })
    }

    fn len(&self) -> u64 {
        self.x.len() as u64 * self.y.len() as u64
    }

    fn count_le(&self, t: f64) -> u64 {
        let n2 = self.y.len();
        let mut p = 0usize;
        let mut count = 0u64;
        for &xi in &self.x {
            while p < n2 && xi - self.y[p] > t {
                p += 1;
            }
            count += (n2 - p) as u64;
        }
        count
    }

    /// The k-th smallest difference, `1 <= k <= len()`.
    fn kth(&self, k: u64) -> Option<f64> {
        if k == 0 || k > self.len() {
            return None;
        }
        let lo_v = self.x.first()? - self.y.last()?;
        let hi_v = self.x.last()? - self.y.first()?;
        let mut lo = order_key(lo_v) as i128;
        let mut hi = order_key(hi_v) as i128;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.count_le(from_order_key(mid as i64)) >= k {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        // `+ 0.0` turns a -0.0 into +0.0.
        Some(from_order_key(lo as i64) + 0.0)
    }

    fn median(&self) -> Option<f64> {
        let m = self.len();
        if m % 2 == 1 {
            self.kth(m.div_ceil(2))
        } else {
            Some((self.kth(m / 2)? + self.kth(m / 2 + 1)?) / 2.0)
        }
    }
}

/// Hodges-Lehmann estimate of the shift of `x` relative to `y`: the median of all `n1 * n2`
/// pairwise differences `x_i - y_j` (mean of the two middle ones for an even count), computed
/// exactly for any sample size (see the selection algorithm on the internal `PairDiffs`). For
/// samples without ties this is R's `wilcox.test(x, y, conf.int = TRUE, exact = TRUE)$estimate`.
///
/// `None` when a sample is empty or has a NaN or infinite value.
pub fn hodges_lehmann(x: &[f64], y: &[f64]) -> Option<f64> {
    PairDiffs::new(x, y)?.median()
}

/// Unclamped order-statistic index `k` of the distribution-free interval (see [`hl_interval`]);
/// negative when the samples are too small for the requested confidence.
fn hl_k_raw(n1: usize, n2: usize, confidence: f64) -> f64 {
    let m = n1 as f64 * n2 as f64;
    let z = normal_quantile(1.0 - (1.0 - confidence) / 2.0);
    (m / 2.0 - z * (m * ((n1 + n2) as f64 + 1.0) / 12.0).sqrt()).floor()
}

/// Order-statistic index `k` of the distribution-free interval (see [`hl_interval`]).
fn hl_k(n1: usize, n2: usize, confidence: f64) -> u64 {
    let k = hl_k_raw(n1, n2, confidence);
    if k > 0.0 {
        k as u64
    } else {
        0
    }
}

/// Two-sided `confidence` interval for the shift of `x` relative to `y` (`0 < confidence < 1`).
///
/// Exactly what is computed: with `M = n1 n2`, `z = Phi^-1(1 - (1 - confidence) / 2)` and
/// `k = floor(M / 2 - z * sqrt(n1 n2 (n1 + n2 + 1) / 12))` (clamped at 0), the interval is
/// `[D_(k+1), D_(M-k)]` where `D_(1) <= ... <= D_(M)` are the sorted pairwise differences
/// `x_i - y_j` (1-based). This is the normal approximation to the null distribution of U without
/// tie or continuity correction in `k`. R's `wilcox.test(conf.int = TRUE, exact = FALSE,
/// correct = TRUE)` instead root-finds the continuity- and tie-corrected statistic with
/// `uniroot(tol = 1e-4)`; on the test samples here both land on the same order statistics to
/// within that tolerance, but with heavy ties they can differ by an order statistic. The
/// differences are never materialized, so any sample size is fast.
///
/// `None` when a sample is empty, has a NaN or infinite value, or `confidence` is not in (0, 1).
pub fn hl_interval(x: &[f64], y: &[f64], confidence: f64) -> Option<(f64, f64)> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let d = PairDiffs::new(x, y)?;
    let k = hl_k(x.len(), y.len(), confidence);
    Some((d.kth(k + 1)?, d.kth(d.len() - k)?))
}

// ---------------------------------------------------------------------------------------------
// Per-metric classification (Kayenta NetflixACAJudge semantics)
// ---------------------------------------------------------------------------------------------

/// Which change of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Higher is bad (latency, error rate): only `High` fails.
    Increase,
    /// Lower is bad (throughput, success rate): only `Low` fails.
    Decrease,
    /// Any significant change is bad (Kayenta's default).
    Either,
}

impl Direction {
    /// Parses `increase`, `decrease` or `either` (case-insensitive).
    pub fn parse(s: &str) -> Option<Direction> {
        match s.trim().to_ascii_lowercase().as_str() {
            "increase" => Some(Direction::Increase),
            "decrease" => Some(Direction::Decrease),
            "either" => Some(Direction::Either),
            _ => None,
        }
    }

    /// The lowercase name, as [`Direction::parse`] accepts it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::Either => "either",
        }
    }

    fn high_is_bad(self) -> bool {
        matches!(self, Direction::Increase | Direction::Either)
    }

    fn low_is_bad(self) -> bool {
        matches!(self, Direction::Decrease | Direction::Either)
    }
}

/// Verdict on one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricResult {
    /// No significant change in a bad direction.
    Pass,
    /// The canary is significantly higher than the baseline, and higher is bad.
    High,
    /// The canary is significantly lower than the baseline, and lower is bad.
    Low,
    /// Canary or baseline has no data; does not count against the score.
    NoData,
    /// No data for a metric that must have data (and is not critical); counts as a failure.
    NoDataFail,
    /// The metric could not be classified (invalid configuration).
    Error,
}

impl MetricResult {
    /// Lowercase name for events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricResult::Pass => "pass",
            MetricResult::High => "high",
            MetricResult::Low => "low",
            MetricResult::NoData => "nodata",
            MetricResult::NoDataFail => "nodata_fail",
            MetricResult::Error => "error",
        }
    }
}

impl fmt::Display for MetricResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-metric judge settings, with Kayenta's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeConfig {
    /// Confidence level of the shift interval (Kayenta 0.98).
    pub confidence: f64,
    /// Tolerance band as a fraction of the absolute Hodges-Lehmann estimate (Kayenta 0.25).
    pub tolerance: f64,
    /// Which change is bad (Kayenta default `Either`).
    pub direction: Direction,
    /// A critical metric that is not `Pass` fails the whole analysis (see [`score`]).
    pub critical: bool,
    /// Missing data is a failure (`NoDataFail`) rather than `NoData` (non-critical metrics only;
    /// a critical metric without data is `NoData`, which fails the score as critical).
    pub must_have_data: bool,
    /// `High` also requires `mean(canary) / mean(baseline) >= allowed_increase` (default 1.0).
    pub allowed_increase: f64,
    /// `Low` also requires `mean(canary) / mean(baseline) <= allowed_decrease` (default 1.0).
    pub allowed_decrease: f64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            confidence: 0.98,
            tolerance: 0.25,
            direction: Direction::Either,
            critical: false,
            must_have_data: false,
            allowed_increase: 1.0,
            allowed_decrease: 1.0,
        }
    }
}

/// Verdict on one metric with everything needed to agree with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The verdict.
    pub result: MetricResult,
    /// Hodges-Lehmann shift, canary minus baseline.
    pub estimate: Option<f64>,
    /// Confidence interval of the shift at `JudgeConfig::confidence`.
    pub interval: Option<(f64, f64)>,
    /// Two-sided Mann-Whitney p-value (see [`mann_whitney_u`]); informational, the verdict comes
    /// from the interval.
    pub p_value: Option<f64>,
    /// Median of the canary values used.
    pub canary_median: Option<f64>,
    /// Median of the baseline values used.
    pub baseline_median: Option<f64>,
    /// Effect size: `mean(canary) / mean(baseline)`; `None` when either mean is 0 (then the
    /// effect-size condition is skipped, as Kayenta does with its NaN ratio).
    pub effect_size: Option<f64>,
    /// The verdict in words, with the numbers behind it.
    pub reason: String,
}

/// Formats a number with about four significant digits.
fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if (p - p.round()).abs() < 1e-9 {
        format!("{}%", p.round())
    } else {
        format!("{}%", num(p))
    }
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 1e-4 => format!("{p:.1e}"),
        Some(p) => format!("{p:.4}"),
        None => "n/a".to_string(),
    }
}

/// Classifies one metric of the canary against the baseline, as Kayenta's `MannWhitneyClassifier`
/// (NetflixACAJudge) does:
///
/// 1. NaN and infinite values are dropped first (Prometheus' NaN means "no sample"); the reason
///    says how many.
/// 2. Either sample empty: `NoData`, or `NoDataFail` when `must_have_data` and not `critical`.
/// 3. Identical samples (same sorted values) or all values equal: `Pass`.
/// 4. Hodges-Lehmann shift `estimate` (canary - baseline) and its `confidence` interval
///    `[lo, hi]` ([`hl_interval`]); tolerance band `±tolerance * |estimate|`; effect size
///    `mean(canary) / mean(baseline)` (undefined when either mean is 0: then not checked).
///    Kayenta adds tiny noise when both samples are constant because R's interval fails there;
///    the order-statistic interval needs no noise, so this is deterministic.
/// 5. `High` when `lo > tolerance * |estimate|` and the effect size is `>= allowed_increase`;
///    `Low` when `hi < -tolerance * |estimate|` and the effect size is `<= allowed_decrease`;
///    a `High` or `Low` in a direction that is not bad for the metric is `Pass` (the reason says
///    so); everything else is `Pass`. When the samples are too small for the requested confidence
///    (`k < 0` in [`hl_interval`]) the interval is the whole range of differences and the reason
///    says so; the verdict rule is unchanged.
///
/// An invalid configuration (confidence outside (0, 1), negative or non-finite tolerance,
/// non-finite allowed increase/decrease) gives `Error`.
pub fn classify(canary: &[f64], baseline: &[f64], cfg: &JudgeConfig) -> Classification {
    let mut out = Classification {
        result: MetricResult::Error,
        estimate: None,
        interval: None,
        p_value: None,
        canary_median: None,
        baseline_median: None,
        effect_size: None,
        reason: String::new(),
    };
    let valid = cfg.confidence > 0.0
        && cfg.confidence < 1.0
        && cfg.tolerance.is_finite()
        && cfg.tolerance >= 0.0
        && cfg.allowed_increase.is_finite()
        && cfg.allowed_decrease.is_finite();
    if !valid {
        out.reason = format!(
            "invalid judge configuration: confidence {} must be in (0, 1), tolerance {} must be \
             finite and >= 0, allowed increase {} and decrease {} must be finite",
            cfg.confidence, cfg.tolerance, cfg.allowed_increase, cfg.allowed_decrease
        );
        return out;
    }

    let c: Vec<f64> = canary.iter().copied().filter(|v| v.is_finite()).collect();
    let b: Vec<f64> = baseline.iter().copied().filter(|v| v.is_finite()).collect();
    let dropped = (canary.len() - c.len()) + (baseline.len() - b.len());
    let dropped_note = if dropped > 0 {
        format!(" ({dropped} NaN/infinite values ignored)")
    } else {
        String::new()
    };
    let sc = sorted(&c);
    let sb = sorted(&b);
    out.canary_median = quantile_of_sorted(&sc, 0.5);
    out.baseline_median = quantile_of_sorted(&sb, 0.5);

    if c.is_empty() || b.is_empty() {
        let fail = cfg.must_have_data && !cfg.critical;
        out.result = if fail {
            MetricResult::NoDataFail
        } else {
            MetricResult::NoData
        };
        out.reason = format!(
            "no data: canary has {} values, baseline {}{}{}",
            c.len(),
            b.len(),
            dropped_note,
            if fail {
                "; this metric must have data"
            } else {
                ""
            }
        );
        return out;
    }

    let medians = format!(
        "canary median {}, baseline median {} ({} vs {} values){}",
        out.canary_median.map_or("n/a".to_string(), num),
        out.baseline_median.map_or("n/a".to_string(), num),
        c.len(),
        b.len(),
        dropped_note
    );

    let (mc, mb) = (mean(&c), mean(&b));
    out.effect_size = match (mc, mb) {
        (Some(mc), Some(mb)) if mc != 0.0 && mb != 0.0 => Some(mc / mb),
        _ => None,
    };

    if sc == sb {
        out.result = MetricResult::Pass;
        out.estimate = Some(0.0);
        out.interval = Some((0.0, 0.0));
        out.p_value = Some(1.0);
        out.reason = format!("canary and baseline samples are identical; {medians}");
        return out;
    }
    if sc.first() == sc.last() && sb.first() == sb.last() && sc.first() == sb.first() {
        out.result = MetricResult::Pass;
        out.estimate = Some(0.0);
        out.interval = Some((0.0, 0.0));
        out.p_value = Some(1.0);
        out.reason = format!("all canary and baseline values are equal; {medians}");
        return out;
    }

    out.p_value = mann_whitney_u(&c, &b, Alternative::TwoSided).map(|r| r.p_value);
    let (estimate, (lo, hi)) = match (hodges_lehmann(&c, &b), hl_interval(&c, &b, cfg.confidence)) {
        (Some(e), Some(i)) => (e, i),
        _ => {
            out.result = MetricResult::Error;
            out.reason = format!("could not compute the shift interval; {medians}");
            return out;
        }
    };
    out.estimate = Some(estimate);
    out.interval = Some((lo, hi));

    let band = cfg.tolerance * estimate.abs();
    let shift = format!(
        "shift {} ({} CI {}..{})",
        signed(estimate),
        percent(cfg.confidence),
        signed(lo),
        signed(hi)
    );
    let band_text = format!(
        "tolerance band ±{} ({} of |shift|)",
        num(band),
        percent(cfg.tolerance)
    );
    let ratio_text = match out.effect_size {
        Some(r) => format!("mean ratio {}", num(r)),
        None => "mean ratio undefined (a mean is 0), not checked".to_string(),
    };
    let small = if hl_k_raw(c.len(), b.len(), cfg.confidence) < 0.0 {
        format!(
            "; too few values for {} confidence: the interval spans all pairwise differences",
            percent(cfg.confidence)
        )
    } else {
        String::new()
    };
    let tail = format!("Mann-Whitney p={}; {medians}{small}", p_text(out.p_value));

    let above = lo > band;
    let below = hi < -band;
    if above {
        let effect_ok = out.effect_size.is_none_or(|r| r >= cfg.allowed_increase);
        let bad = cfg.direction.high_is_bad();
        out.result = if bad && effect_ok {
            MetricResult::High
        } else {
            MetricResult::Pass
        };
        let verdict = if !bad {
            format!(
                "pass: canary is higher than baseline but only a {} is bad for this metric",
                cfg.direction.as_str()
            )
        } else if !effect_ok {
            "pass: canary is significantly higher than baseline but the mean ratio is below the \
             allowed increase"
                .to_string()
        } else {
            "canary is higher than baseline".to_string()
        };
        let effect_cmp = match out.effect_size {
            Some(_) => format!(
                "{ratio_text} (allowed increase {})",
                num(cfg.allowed_increase)
            ),
            None => ratio_text,
        };
        out.reason =
            format!("{verdict}: {shift} lies entirely above the {band_text}; {effect_cmp}; {tail}");
    } else if below {
        let effect_ok = out.effect_size.is_none_or(|r| r <= cfg.allowed_decrease);
        let bad = cfg.direction.low_is_bad();
        out.result = if bad && effect_ok {
            MetricResult::Low
        } else {
            MetricResult::Pass
        };
        let verdict = if !bad {
            format!(
                "pass: canary is lower than baseline but only an {} is bad for this metric",
                cfg.direction.as_str()
            )
        } else if !effect_ok {
            "pass: canary is significantly lower than baseline but the mean ratio is above the \
             allowed decrease"
                .to_string()
        } else {
            "canary is lower than baseline".to_string()
        };
        let effect_cmp = match out.effect_size {
            Some(_) => format!(
                "{ratio_text} (allowed decrease {})",
                num(cfg.allowed_decrease)
            ),
            None => ratio_text,
        };
        out.reason =
            format!("{verdict}: {shift} lies entirely below the {band_text}; {effect_cmp}; {tail}");
    } else {
        out.result = MetricResult::Pass;
        out.reason = format!(
            "pass: no difference beyond tolerance: {shift} reaches into the {band_text}; \
             {ratio_text}; {tail}"
        );
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

/// Class of a summary score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreClass {
    /// Score at or above the pass threshold.
    Pass,
    /// Score at or above the marginal threshold but below pass.
    Marginal,
    /// Score below the marginal threshold.
    Fail,
}

impl ScoreClass {
    /// Lowercase name for events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreClass::Pass => "pass",
            ScoreClass::Marginal => "marginal",
            ScoreClass::Fail => "fail",
        }
    }
}

impl fmt::Display for ScoreClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default pass threshold of the summary score (Spinnaker's common setting).
pub const DEFAULT_PASS_SCORE: f64 = 95.0;
/// Default marginal threshold of the summary score.
pub const DEFAULT_MARGINAL_SCORE: f64 = 75.0;

/// Summary score over several metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// 0..=100.
    pub value: f64,
    /// Class of `value` against the thresholds.
    pub class: ScoreClass,
    /// Why, in words (counts, or which rule forced 0).
    pub reason: String,
}

/// `score >= pass` is `Pass`, `score >= marginal` is `Marginal`, anything else (NaN included) is
/// `Fail` (Kayenta `ThresholdScoreClassifier`).
pub fn classify_score(value: f64, pass: f64, marginal: f64) -> ScoreClass {
    if value >= pass {
        ScoreClass::Pass
    } else if value >= marginal {
        ScoreClass::Marginal
    } else {
        ScoreClass::Fail
    }
}

/// [`score_with_thresholds`] with pass 95 and marginal 75.
pub fn score(results: &[(MetricResult, bool, f64)]) -> Score {
    score_with_thresholds(results, DEFAULT_PASS_SCORE, DEFAULT_MARGINAL_SCORE)
}

/// Summary score of metric verdicts `(result, critical, weight)` in one group, as Kayenta's
/// `WeightedSumScorer`:
///
/// - any critical metric that is not `Pass` (including a critical `NoData`) ⇒ 0;
/// - any `Error` ⇒ 0 (Kayenta marks a metric whose classification failed as critical);
/// - `NoData` on at least half of the metrics ⇒ 0;
/// - otherwise `100 * W(Pass) / W(Pass + High + Low + NoDataFail)` where `W` sums the weights
///   (`NoData` is left out); with equal weights this is Kayenta's
///   `100 * Pass / (Pass + High + Low + NoDataFail)`. A weight that is negative or not finite
///   counts as 1; a weight of 0 leaves the metric out of the ratio (it still counts for the
///   critical and no-data rules). When nothing is left to count (no metrics, or only zero
///   weights), the score is 100.
pub fn score_with_thresholds(
    results: &[(MetricResult, bool, f64)],
    pass: f64,
    marginal: f64,
) -> Score {
    let finish = |value: f64, reason: String| Score {
        value,
        class: classify_score(value, pass, marginal),
        reason,
    };
    let count = |r: MetricResult| results.iter().filter(|e| e.0 == r).count();
    let (n_pass, n_high, n_low, n_nodata, n_fail, n_error) = (
        count(MetricResult::Pass),
        count(MetricResult::High),
        count(MetricResult::Low),
        count(MetricResult::NoData),
        count(MetricResult::NoDataFail),
        count(MetricResult::Error),
    );
    let counts = format!(
        "{n_pass} pass, {n_high} high, {n_low} low, {n_nodata} no data, {n_fail} missing \
         required data, {n_error} error of {}",
        results.len()
    );

    let critical: Vec<String> = results
        .iter()
        .enumerate()
        .filter(|(_, e)| e.1 && e.0 != MetricResult::Pass)
        .map(|(i, e)| format!("#{} {}", i + 1, e.0))
        .collect();
    if !critical.is_empty() {
        return finish(
            0.0,
            format!(
                "critical metric not passing ({}) forces 0; {counts}",
                critical.join(", ")
            ),
        );
    }
    if n_error > 0 {
        return finish(
            0.0,
            format!("{n_error} metric(s) could not be classified (error) forces 0; {counts}"),
        );
    }
    if !results.is_empty() && 2 * n_nodata >= results.len() {
        return finish(
            0.0,
            format!("no data on at least half of the metrics forces 0; {counts}"),
        );
    }

    let weight = |w: f64| if w.is_finite() && w >= 0.0 { w } else { 1.0 };
    let mut passed = 0.0;
    let mut judged = 0.0;
    for (r, _, w) in results {
        match r {
            MetricResult::Pass => {
                passed += weight(*w);
                judged += weight(*w);
            }
            MetricResult::High | MetricResult::Low | MetricResult::NoDataFail => {
                judged += weight(*w);
            }
            MetricResult::NoData | MetricResult::Error => {}
        }
    }
    if judged <= 0.0 {
        return finish(100.0, format!("nothing to judge counts 100; {counts}"));
    }
    let value = (100.0 * passed / judged).clamp(0.0, 100.0);
    finish(value, format!("score {}: {counts}", num(value)))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    macro_rules! assert_close {
        ($a:expr, $b:expr, $tol:expr) => {{
            let (a, b, tol): (f64, f64, f64) = ($a, $b, $tol);
            assert!(
                close(a, b, tol),
                "{} = {a} but expected {b} (±{tol})",
                stringify!($a)
            );
        }};
    }

    // Samples used below. Reference values were computed with scipy 1.17.1 and R 4.2.2.
    const A_X: [f64; 10] = [19.1, 22.4, 17.8, 25.3, 21.0, 23.9, 20.2, 24.6, 18.7, 26.1];
    const A_Y: [f64; 11] = [
        15.2, 18.3, 16.9, 20.5, 14.8, 17.4, 19.9, 16.1, 21.7, 15.6, 18.9,
    ];
    const B_X: [f64; 7] = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0];
    const B_Y: [f64; 8] = [2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0];
    const C_X: [f64; 5] = [3.1, 4.7, 2.2, 5.9, 4.1];
    const C_Y: [f64; 6] = [1.8, 2.9, 3.5, 1.2, 2.4, 0.7];

    // ---- quantiles of a sample ----

    #[test]
    fn quantiles_interpolate_like_r_type_7() {
        // R: quantile(A_X, c(0, .25, .5, .9, 1)) = 17.8 19.375 21.7 25.38 26.1 (type 7).
        for (q, want) in [
            (0.0, 17.8),
            (0.25, 19.375),
            (0.5, 21.7),
            (0.9, 25.38),
            (1.0, 26.1),
        ] {
            assert_close!(quantile(&A_X, q).unwrap(), want, 1e-12);
        }
        // The median of an even count is the mean of the middle two, not either of them.
        assert_eq!(median(&[1200.0, 600.0]), Some(900.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[0.1, 0.7]), Some((0.1 + 0.7) / 2.0));
        assert_eq!(quantile(&[600.0, 1200.0], 0.9), Some(1140.0));
        assert_eq!(quantile(&[5.0], 0.99), Some(5.0));
        // Empty, NaN and q outside [0, 1] have no answer; infinities are values.
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
        assert_eq!(quantile(&[1.0, 2.0], 1.5), None);
        assert_eq!(quantile(&[1.0, 2.0], -0.1), None);
        assert_eq!(quantile(&[1.0, 2.0], f64::NAN), None);
        assert_eq!(median(&[1.0, f64::INFINITY]), Some(f64::INFINITY));
        assert_eq!(
            quantile(&[f64::NEG_INFINITY, 0.0], 0.25),
            Some(f64::NEG_INFINITY)
        );
        assert_eq!(quantile(&[f64::NEG_INFINITY, 0.0], 0.75), Some(0.0));
        // Monotone in q and within the sample's range.
        let mut last = f64::NEG_INFINITY;
        for i in 0..=1000 {
            let v = quantile(&C_X, f64::from(i) / 1000.0).unwrap();
            assert!(v >= last && (2.2..=5.9).contains(&v), "q={i}/1000: {v}");
            last = v;
        }
    }

    // ---- normal distribution ----

    #[test]
    fn normal_cdf_and_sf_match_scipy() {
        // (z, scipy.special.ndtr(z), scipy.stats.norm.sf(z))
        let cases = [
            (0.0, 0.5, 0.5),
            (0.5, 0.6914624612740131, 0.3085375387259869),
            (1.0, 0.8413447460685429, 0.15865525393145707),
            (1.959963984540054, 0.975, 0.025),
            (2.5, 0.9937903346742238, 0.006209665325776132),
            (3.0, 0.9986501019683699, 0.0013498980316300933),
            (5.0, 0.9999997133484281, 2.866515718791933e-07),
            (8.0, 0.9999999999999993, 6.22096057427174e-16),
            (-1.3, 0.09680048458561036, 0.9031995154143897),
            (-6.0, 9.865876450376946e-10, 0.9999999990134123),
            (10.0, 1.0, 7.61985302416047e-24),
        ];
        for (z, cdf, sf) in cases {
            assert_close!(normal_cdf(z), cdf, 1e-14);
            assert!(
                ((normal_sf(z) - sf) / sf).abs() < 1e-11,
                "sf({z}) = {} vs {sf}",
                normal_sf(z)
            );
        }
        assert_eq!(normal_sf(f64::INFINITY), 0.0);
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
        assert!(normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn normal_quantile_matches_scipy() {
        // (p, scipy.special.ndtri(p))
        let cases = [
            (1e-10, -6.361340902404056),
            (1e-05, -4.264890793922825),
            (0.001, -3.090232306167813),
            (0.01, -2.3263478740408408),
            (0.02425, -1.972961051311885),
            (0.05, -1.6448536269514729),
            (0.3, -0.5244005127080409),
            (0.5, 0.0),
            (0.7, 0.5244005127080407),
            (0.975, 1.959963984540054),
            (0.99, 2.3263478740408408),
            (0.999, 3.090232306167813),
            (0.999999999, 5.997807019601637),
        ];
        for (p, q) in cases {
            assert_close!(normal_quantile(p), q, 1e-12 * q.abs().max(1.0));
        }
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
        assert!(normal_quantile(1.5).is_nan());
        assert!(normal_quantile(f64::NAN).is_nan());
    }

    // ---- Mann-Whitney U ----

    #[test]
    fn mann_whitney_no_ties_asymptotic_matches_scipy_and_r() {
        // scipy.stats.mannwhitneyu(A_X, A_Y, alternative=ALT, method="auto") — both n > 8, so
        // asymptotic with continuity correction: U = 95.0 and
        //   two-sided 0.005410729359599601, greater 0.0027053646797998007,
        //   less 0.9978272262383697.
        // R: wilcox.test(A_X, A_Y, exact=FALSE, correct=TRUE) gives W = 95,
        //   p = 0.0054107293595996083 (greater 0.0027053646797998042, less 0.99782722623836972).
        let two = mann_whitney_u(&A_X, &A_Y, Alternative::TwoSided).unwrap();
        assert_eq!(two.u, 95.0);
        assert_eq!(two.method, MwMethod::Asymptotic);
        assert_close!(two.p_value, 0.005410729359599601, 1e-9);
        let greater = mann_whitney_u(&A_X, &A_Y, Alternative::Greater).unwrap();
        assert_close!(greater.p_value, 0.0027053646797998007, 1e-9);
        let less = mann_whitney_u(&A_X, &A_Y, Alternative::Less).unwrap();
        assert_close!(less.p_value, 0.9978272262383697, 1e-9);
        // z = (95 - 55 - 0.5) / sqrt(110 * 22 / 12), no ties.
        assert_close!(two.z, 39.5 / (110.0f64 * 22.0 / 12.0).sqrt(), 1e-12);
        assert!(two.z > 0.0);
    }

    #[test]
    fn mann_whitney_ties_matches_scipy() {
        // scipy.stats.mannwhitneyu([1,2,2,3,3,3,4], [2,3,3,4,4,5,5,6], alternative=ALT)
        // (ties ⇒ asymptotic with tie correction): U = 11.0,
        //   two-sided 0.04988443697992588, greater 0.98122802559914, less 0.02494221848996294.
        // R: wilcox.test(..., exact=FALSE, correct=TRUE)$p.value = 0.049884436979925902.
        let two = mann_whitney_u(&B_X, &B_Y, Alternative::TwoSided).unwrap();
        assert_eq!(two.u, 11.0);
        assert_eq!(two.method, MwMethod::Asymptotic);
        assert_close!(two.p_value, 0.04988443697992588, 1e-9);
        let greater = mann_whitney_u(&B_X, &B_Y, Alternative::Greater).unwrap();
        assert_close!(greater.p_value, 0.98122802559914, 1e-9);
        let less = mann_whitney_u(&B_X, &B_Y, Alternative::Less).unwrap();
        assert_close!(less.p_value, 0.02494221848996294, 1e-9);
        assert!(two.z < 0.0);
    }

    #[test]
    fn mann_whitney_exact_small_samples_match_scipy() {
        // scipy.stats.mannwhitneyu([3.1,4.7,2.2,5.9,4.1], [1.8,2.9,3.5,1.2,2.4,0.7],
        //   alternative=ALT, method="exact"): U = 26.0,
        //   two-sided 0.05194805194805195 (= 2 * 12/462: 12 of the C(11,5) = 462
        //   arrangements have U >= 26),
        //   greater 0.025974025974025976, less 0.9848484848484849.
        // (method="asymptotic" would give 0.05523425371806383 two-sided.)
        let two = mann_whitney_u(&C_X, &C_Y, Alternative::TwoSided).unwrap();
        assert_eq!(two.u, 26.0);
        assert_eq!(two.method, MwMethod::Exact);
        assert_close!(two.p_value, 0.05194805194805195, 1e-12);
        let greater = mann_whitney_u(&C_X, &C_Y, Alternative::Greater).unwrap();
        assert_close!(greater.p_value, 0.025974025974025976, 1e-12);
        let less = mann_whitney_u(&C_X, &C_Y, Alternative::Less).unwrap();
        assert_close!(less.p_value, 0.9848484848484849, 1e-12);
    }

    #[test]
    fn mann_whitney_exact_counts_are_the_null_distribution() {
        // C(5 + 6, 5) = 462 arrangements, symmetric about m*n/2 = 15.
        let counts = mw_exact_counts(5, 6);
        assert_eq!(counts.len(), 31);
        assert_eq!(counts.iter().sum::<u64>(), 462);
        for u in 0..counts.len() {
            assert_eq!(counts[u], counts[30 - u]);
        }
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 1);
        assert_eq!(counts[2], 2);
        // Largest allowed case: C(16, 8).
        assert_eq!(mw_exact_counts(8, 8).iter().sum::<u64>(), 12870);
    }

    #[test]
    fn mann_whitney_swapping_samples_mirrors() {
        let xy = mann_whitney_u(&A_X, &A_Y, Alternative::Greater).unwrap();
        let yx = mann_whitney_u(&A_Y, &A_X, Alternative::Less).unwrap();
        assert_eq!(yx.u, 110.0 - xy.u);
        assert_close!(xy.p_value, yx.p_value, 1e-15);
        assert_close!(xy.z, -yx.z, 1e-15);
    }

    #[test]
    fn mann_whitney_degenerate_inputs() {
        assert!(mann_whitney_u(&[], &[1.0], Alternative::TwoSided).is_none());
        assert!(mann_whitney_u(&[1.0], &[], Alternative::TwoSided).is_none());
        assert!(mann_whitney_u(&[1.0, f64::NAN], &[1.0], Alternative::TwoSided).is_none());
        assert!(mann_whitney_u(&[1.0], &[f64::INFINITY], Alternative::Less).is_none());
        // scipy.stats.mannwhitneyu([2,2,2], [2,2,2,2], method="asymptotic") = (6.0, 1.0)
        let all_tied = mann_whitney_u(&[2.0; 3], &[2.0; 4], Alternative::TwoSided).unwrap();
        assert_eq!(all_tied.u, 6.0);
        assert_eq!(all_tied.z, 0.0);
        assert_eq!(all_tied.p_value, 1.0);
    }

    // ---- Hodges-Lehmann ----

    /// Brute force: all pairwise differences, sorted.
    fn all_diffs(x: &[f64], y: &[f64]) -> Vec<f64> {
        let mut d: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        d.sort_by(f64::total_cmp);
        d
    }

    /// Deterministic pseudo-random samples (LCG), rounded to `step` so that ties occur.
    fn lcg_sample(seed: u64, n: usize, scale: f64, step: f64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                ((u * scale) / step).round() * step
            })
            .collect()
    }

    #[test]
    fn hodges_lehmann_estimate_matches_r() {
        // R: median(outer(A_X, A_Y, "-")) = 4.0999999999999979, which is also
        // wilcox.test(A_X, A_Y, conf.int=TRUE, exact=TRUE)$estimate (no ties);
        // numpy.median of the differences = 4.099999999999998.
        // (exact=FALSE root-finds instead and reports 4.0999236, within its tol 1e-4.)
        assert_close!(
            hodges_lehmann(&A_X, &A_Y).unwrap(),
            4.099999999999998,
            1e-12
        );
        // Ties: R median(outer(B_X, B_Y, "-")) = -1; wilcox.test(exact=FALSE) -1.0000286.
        assert_eq!(hodges_lehmann(&B_X, &B_Y).unwrap(), -1.0);
        assert!(hodges_lehmann(&[], &[1.0]).is_none());
        assert!(hodges_lehmann(&[f64::NAN], &[1.0]).is_none());
    }

    #[test]
    fn hl_interval_matches_order_statistics_and_r() {
        // Documented formula, evaluated by hand in Python on the sorted 110 differences:
        // confidence 0.98: z = 2.3263478740408408, k = floor(55 - z*sqrt(110*22/12)) = 21,
        //   CI = [D_22, D_89] = [0.8000000000000007, 7.700000000000003];
        // confidence 0.95: z = 1.959963984540054, k = 27,
        //   CI = [D_28, D_83] = [1.7000000000000028, 7.0].
        // R: wilcox.test(A_X, A_Y, conf.int=TRUE, conf.level=0.98, exact=FALSE, correct=TRUE)
        //   $conf.int = 0.79993657062120882 7.7000155843700924, and at conf.level=0.95
        //   1.6999554296614927 7.0000710838189999 (uniroot tol 1e-4).
        let (lo, hi) = hl_interval(&A_X, &A_Y, 0.98).unwrap();
        assert_close!(lo, 0.8000000000000007, 1e-12);
        assert_close!(hi, 7.700000000000003, 1e-12);
        assert_close!(lo, 0.7999365706212088, 1e-3);
        assert_close!(hi, 7.700015584370092, 1e-3);
        let (lo, hi) = hl_interval(&A_X, &A_Y, 0.95).unwrap();
        assert_close!(lo, 1.7000000000000028, 1e-12);
        assert_close!(hi, 7.0, 1e-12);
        assert_close!(lo, 1.6999554296614927, 1e-3);
        assert_close!(hi, 7.000071083819, 1e-3);
        assert_eq!(hl_k(10, 11, 0.98), 21);
        assert_eq!(hl_k(10, 11, 0.95), 27);
    }

    #[test]
    fn hl_interval_with_ties_matches_order_statistics_and_r() {
        // By hand (Python): 56 differences, k = floor(28 - 2.3263*sqrt(56*16/12)) = 7 at 0.98,
        //   CI = [D_8, D_49] = [-3, 0].
        // R: wilcox.test(B_X, B_Y, conf.int=TRUE, conf.level=0.98, exact=FALSE, correct=TRUE)
        //   $conf.int = -3.0000466405807464 4.9563254418085991e-05.
        let (lo, hi) = hl_interval(&B_X, &B_Y, 0.98).unwrap();
        assert_eq!((lo, hi), (-3.0, 0.0));
        assert_close!(lo, -3.0000466405807464, 1e-3);
        assert_close!(hi, 4.956325441808599e-05, 1e-3);
        assert!(hi.is_sign_positive());
    }

    #[test]
    fn hl_interval_rejects_bad_input() {
        assert!(hl_interval(&A_X, &A_Y, 0.0).is_none());
        assert!(hl_interval(&A_X, &A_Y, 1.0).is_none());
        assert!(hl_interval(&A_X, &A_Y, f64::NAN).is_none());
        assert!(hl_interval(&[], &A_Y, 0.98).is_none());
        // One value each: the only difference, whatever the confidence.
        assert_eq!(hl_interval(&[5.0], &[2.0], 0.98), Some((3.0, 3.0)));
    }

    #[test]
    fn selection_equals_brute_force_for_every_rank() {
        for (seed, n1, n2) in [(1, 13, 17), (2, 1, 9), (3, 20, 20), (4, 7, 1)] {
            let x = lcg_sample(seed, n1, 10.0, 0.5);
            let y = lcg_sample(seed + 100, n2, 10.0, 0.5);
            let d = all_diffs(&x, &y);
            let p = PairDiffs::new(&x, &y).unwrap();
            for (i, want) in d.iter().enumerate() {
                assert_eq!(p.kth(i as u64 + 1).unwrap(), *want + 0.0, "rank {}", i + 1);
            }
            assert!(p.kth(0).is_none());
            assert!(p.kth(d.len() as u64 + 1).is_none());
        }
        // Negative and mixed-sign values, including zeros.
        let x = [-3.5, -0.0, 0.0, 2.25, 1e-300];
        let y = [0.0, -1e-300, 4.0, -2.0];
        let d = all_diffs(&x, &y);
        let p = PairDiffs::new(&x, &y).unwrap();
        for (i, want) in d.iter().enumerate() {
            assert_eq!(p.kth(i as u64 + 1).unwrap(), *want + 0.0);
        }
    }

    #[test]
    fn large_samples_match_brute_force_and_stay_fast() {
        // 300 x 700 = 210 000 pairs (> 200 000): still exact, compared with sorting them all.
        let x = lcg_sample(7, 300, 100.0, 0.01);
        let y = lcg_sample(8, 700, 90.0, 0.01);
        let d = all_diffs(&x, &y);
        let m = d.len();
        let want_median = (d[m / 2 - 1] + d[m / 2]) / 2.0;
        assert_eq!(hodges_lehmann(&x, &y).unwrap(), want_median);
        let k = hl_k(300, 700, 0.98) as usize;
        assert_eq!(
            hl_interval(&x, &y, 0.98).unwrap(),
            (d[k] + 0.0, d[m - 1 - k] + 0.0)
        );
        // 40 000 x 40 000 = 1.6e9 pairs: far beyond materializing, still quick.
        let big_x = lcg_sample(9, 40_000, 1000.0, 0.001);
        let big_y: Vec<f64> = lcg_sample(10, 40_000, 1000.0, 0.001)
            .iter()
            .map(|v| v - 100.0)
            .collect();
        let start = std::time::Instant::now();
        let est = hodges_lehmann(&big_x, &big_y).unwrap();
        let (lo, hi) = hl_interval(&big_x, &big_y, 0.98).unwrap();
        assert!(lo <= est && est <= hi);
        assert!((est - 100.0).abs() < 20.0, "estimate {est}");
        assert!(start.elapsed().as_secs() < 30);
    }

    // ---- classifier ----

    /// 100, 101, ..., 119: a pure shift `s` of this sample has HL estimate `s` and, at 0.98,
    /// k = floor(200 - 2.3263 * sqrt(400 * 41 / 12)) = 113, so the interval is [s - 5, s + 5]
    /// (D_114 and D_287 of the differences s + (i - j): by hand, 105 differences are <= s - 6
    /// and 120 are <= s - 5).
    fn base() -> Vec<f64> {
        (0..20).map(|i| 100.0 + f64::from(i)).collect()
    }

    fn shifted(s: f64) -> Vec<f64> {
        base().iter().map(|v| v + s).collect()
    }

    #[test]
    fn clearly_higher_canary_is_high() {
        let c = classify(&shifted(40.0), &base(), &JudgeConfig::default());
        assert_eq!(c.result, MetricResult::High);
        assert_eq!(c.estimate, Some(40.0));
        assert_eq!(c.interval, Some((35.0, 45.0)));
        assert_eq!(c.canary_median, Some(149.5));
        assert_eq!(c.baseline_median, Some(109.5));
        assert_close!(c.effect_size.unwrap(), 149.5 / 109.5, 1e-12);
        assert!(c.p_value.unwrap() < 1e-6);
        assert!(
            c.reason.starts_with(
                "canary is higher than baseline: shift +40.00 (98% CI +35.00..+45.00)"
            ),
            "{}",
            c.reason
        );
        assert!(
            c.reason.contains("tolerance band ±10.00 (25% of |shift|)"),
            "{}",
            c.reason
        );
        assert!(c.reason.contains("mean ratio 1.365"), "{}", c.reason);
    }

    #[test]
    fn clearly_lower_canary_is_low() {
        let c = classify(&shifted(-40.0), &base(), &JudgeConfig::default());
        assert_eq!(c.result, MetricResult::Low);
        assert_eq!(c.interval, Some((-45.0, -35.0)));
        assert!(
            c.reason.starts_with("canary is lower than baseline"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn shift_within_tolerance_passes() {
        // s = 6: the interval [1, 11] is entirely above 0 (a significant shift) but its lower
        // bound 1 is inside the band 0.25 * 6 = 1.5, so Kayenta passes it.
        let c = classify(&shifted(6.0), &base(), &JudgeConfig::default());
        assert_eq!(c.interval, Some((1.0, 11.0)));
        assert_eq!(c.result, MetricResult::Pass);
        assert!(
            c.reason.starts_with("pass: no difference beyond tolerance"),
            "{}",
            c.reason
        );
        // s = 3: not even significant.
        let c = classify(&shifted(3.0), &base(), &JudgeConfig::default());
        assert_eq!(c.interval, Some((-2.0, 8.0)));
        assert_eq!(c.result, MetricResult::Pass);
        // s = 10: [5, 15] clears the band 2.5.
        let c = classify(&shifted(10.0), &base(), &JudgeConfig::default());
        assert_eq!(c.result, MetricResult::High);
    }

    #[test]
    fn equal_samples_pass() {
        let cfg = JudgeConfig::default();
        let c = classify(&base(), &base(), &cfg);
        assert_eq!(c.result, MetricResult::Pass);
        assert!(c.reason.contains("identical"));
        let mut reversed = base();
        reversed.reverse();
        assert_eq!(
            classify(&reversed, &base(), &cfg).result,
            MetricResult::Pass
        );
        let c = classify(&[7.0; 5], &[7.0; 9], &cfg);
        assert_eq!(c.result, MetricResult::Pass);
        assert!(c
            .reason
            .contains("all canary and baseline values are equal"));
    }

    #[test]
    fn constant_but_different_samples_are_judged_without_noise() {
        let c = classify(&[5.0; 10], &[3.0; 10], &JudgeConfig::default());
        assert_eq!(c.result, MetricResult::High);
        assert_eq!(c.interval, Some((2.0, 2.0)));
    }

    #[test]
    fn tiny_samples_say_the_interval_is_the_full_range() {
        // 3 vs 3: k = floor(4.5 - 2.326 * sqrt(9 * 7 / 12)) < 0, so the interval is [D_1, D_9].
        let c = classify(&[5.0, 6.0, 7.0], &[1.0, 2.0, 3.0], &JudgeConfig::default());
        assert_eq!(c.interval, Some((2.0, 6.0)));
        assert_eq!(c.result, MetricResult::High);
        assert!(
            c.reason.contains("too few values for 98% confidence"),
            "{}",
            c.reason
        );
        let c = classify(&shifted(40.0), &base(), &JudgeConfig::default());
        assert!(!c.reason.contains("too few values"));
    }

    #[test]
    fn zero_baseline_error_rate_skips_the_effect_size() {
        // Baseline error rate 0 everywhere, canary around 30%: mean ratio undefined, still High.
        let canary = [0.28, 0.31, 0.30, 0.29, 0.33, 0.30, 0.27, 0.32, 0.30, 0.31];
        let c = classify(&canary, &[0.0; 10], &JudgeConfig::default());
        assert_eq!(c.result, MetricResult::High);
        assert_eq!(c.effect_size, None);
        assert!(c.reason.contains("mean ratio undefined"), "{}", c.reason);
    }

    #[test]
    fn effect_size_threshold_gates_high() {
        let cfg = JudgeConfig {
            allowed_increase: 1.5,
            ..JudgeConfig::default()
        };
        // Ratio 149.5 / 109.5 = 1.37 < 1.5: significant but allowed.
        let c = classify(&shifted(40.0), &base(), &cfg);
        assert_eq!(c.result, MetricResult::Pass);
        assert!(
            c.reason.contains("below the allowed increase"),
            "{}",
            c.reason
        );
        let cfg = JudgeConfig {
            allowed_decrease: 0.5,
            ..JudgeConfig::default()
        };
        let c = classify(&shifted(-40.0), &base(), &cfg);
        assert_eq!(c.result, MetricResult::Pass);
    }

    #[test]
    fn direction_decides_which_change_is_bad() {
        let inc = JudgeConfig {
            direction: Direction::Increase,
            ..JudgeConfig::default()
        };
        let dec = JudgeConfig {
            direction: Direction::Decrease,
            ..JudgeConfig::default()
        };
        assert_eq!(
            classify(&shifted(40.0), &base(), &inc).result,
            MetricResult::High
        );
        let c = classify(&shifted(-40.0), &base(), &inc);
        assert_eq!(c.result, MetricResult::Pass);
        assert!(c.reason.contains("only an increase is bad"), "{}", c.reason);
        assert_eq!(
            classify(&shifted(-40.0), &base(), &dec).result,
            MetricResult::Low
        );
        let c = classify(&shifted(40.0), &base(), &dec);
        assert_eq!(c.result, MetricResult::Pass);
        assert!(c.reason.contains("only a decrease is bad"), "{}", c.reason);
        assert_eq!(Direction::parse(" Increase"), Some(Direction::Increase));
        assert_eq!(Direction::parse("either"), Some(Direction::Either));
        assert_eq!(Direction::parse("up"), None);
    }

    #[test]
    fn missing_data_is_nodata_or_nodata_fail() {
        let mut cfg = JudgeConfig::default();
        let c = classify(&[], &base(), &cfg);
        assert_eq!(c.result, MetricResult::NoData);
        assert_eq!(c.reason, "no data: canary has 0 values, baseline 20");
        assert_eq!(classify(&base(), &[], &cfg).result, MetricResult::NoData);
        // NaN is no sample.
        let c = classify(&[f64::NAN, f64::NAN], &base(), &cfg);
        assert_eq!(c.result, MetricResult::NoData);
        assert!(c.reason.contains("2 NaN/infinite values ignored"));
        cfg.must_have_data = true;
        assert_eq!(
            classify(&[], &base(), &cfg).result,
            MetricResult::NoDataFail
        );
        // A critical metric without data stays NoData; the score fails it as critical.
        cfg.critical = true;
        assert_eq!(classify(&[], &base(), &cfg).result, MetricResult::NoData);
    }

    #[test]
    fn nan_values_are_dropped_before_judging() {
        let mut canary = shifted(40.0);
        canary.push(f64::NAN);
        let c = classify(&canary, &base(), &JudgeConfig::default());
        assert_eq!(c.result, MetricResult::High);
        assert_eq!(c.interval, Some((35.0, 45.0)));
        assert!(c.reason.contains("1 NaN/infinite values ignored"));
    }

    #[test]
    fn invalid_config_is_error() {
        for cfg in [
            JudgeConfig {
                confidence: 1.0,
                ..JudgeConfig::default()
            },
            JudgeConfig {
                tolerance: -0.1,
                ..JudgeConfig::default()
            },
            JudgeConfig {
                allowed_increase: f64::NAN,
                ..JudgeConfig::default()
            },
        ] {
            let c = classify(&shifted(1.0), &base(), &cfg);
            assert_eq!(c.result, MetricResult::Error);
            assert!(c.reason.starts_with("invalid judge configuration"));
        }
    }

    // ---- scoring ----

    use MetricResult::{High, Low, NoData, NoDataFail, Pass};

    #[test]
    fn score_counts_pass_over_judged() {
        let s = score(&[(Pass, false, 1.0); 4]);
        assert_eq!((s.value, s.class), (100.0, ScoreClass::Pass));
        let s = score(&[
            (Pass, false, 1.0),
            (Pass, false, 1.0),
            (Pass, false, 1.0),
            (High, false, 1.0),
        ]);
        assert_eq!((s.value, s.class), (75.0, ScoreClass::Marginal));
        let s = score(&[
            (Pass, false, 1.0),
            (Low, false, 1.0),
            (Pass, false, 1.0),
            (High, false, 1.0),
        ]);
        assert_eq!((s.value, s.class), (50.0, ScoreClass::Fail));
        // NoData is left out of the ratio; NoDataFail counts as a failure.
        let s = score(&[(Pass, false, 1.0), (Pass, false, 1.0), (NoData, false, 1.0)]);
        assert_eq!(s.value, 100.0);
        let s = score(&[
            (Pass, false, 1.0),
            (Pass, false, 1.0),
            (Pass, false, 1.0),
            (NoDataFail, false, 1.0),
        ]);
        assert_eq!(s.value, 75.0);
        assert!(s.reason.contains("3 pass"), "{}", s.reason);
    }

    #[test]
    fn critical_failures_force_zero() {
        let s = score(&[(Pass, false, 1.0), (Pass, false, 1.0), (High, true, 1.0)]);
        assert_eq!((s.value, s.class), (0.0, ScoreClass::Fail));
        assert!(
            s.reason
                .starts_with("critical metric not passing (#3 high)"),
            "{}",
            s.reason
        );
        // Critical without data fails too.
        let s = score(&[(Pass, false, 1.0), (Pass, false, 1.0), (NoData, true, 1.0)]);
        assert_eq!(s.value, 0.0);
        // A critical Pass is fine.
        let s = score(&[(Pass, true, 1.0), (Pass, false, 1.0)]);
        assert_eq!(s.value, 100.0);
        // An error is treated as a critical failure.
        let s = score(&[
            (Pass, false, 1.0),
            (MetricResult::Error, false, 1.0),
            (Pass, false, 1.0),
        ]);
        assert_eq!(s.value, 0.0);
    }

    #[test]
    fn too_much_missing_data_forces_zero() {
        let s = score(&[(Pass, false, 1.0), (NoData, false, 1.0)]);
        assert_eq!(s.value, 0.0);
        assert!(s.reason.starts_with("no data on at least half"));
        let s = score(&[(Pass, false, 1.0), (Pass, false, 1.0), (NoData, false, 1.0)]);
        assert_eq!(s.value, 100.0);
        let s = score(&[]);
        assert_eq!((s.value, s.class), (100.0, ScoreClass::Pass));
    }

    #[test]
    fn weights_and_thresholds() {
        // Weighted: pass 3 of (3 + 1).
        let s = score(&[(Pass, false, 3.0), (High, false, 1.0)]);
        assert_eq!(s.value, 75.0);
        // Negative or NaN weights count 1.
        let s = score(&[(Pass, false, f64::NAN), (High, false, -2.0)]);
        assert_eq!(s.value, 50.0);
        let s = score_with_thresholds(&[(Pass, false, 1.0), (High, false, 1.0)], 50.0, 25.0);
        assert_eq!(s.class, ScoreClass::Pass);
        assert_eq!(classify_score(95.0, 95.0, 75.0), ScoreClass::Pass);
        assert_eq!(classify_score(94.99, 95.0, 75.0), ScoreClass::Marginal);
        assert_eq!(classify_score(75.0, 95.0, 75.0), ScoreClass::Marginal);
        assert_eq!(classify_score(74.99, 95.0, 75.0), ScoreClass::Fail);
        assert_eq!(classify_score(f64::NAN, 95.0, 75.0), ScoreClass::Fail);
    }

    #[test]
    fn end_to_end_judgement() {
        let cfg = JudgeConfig::default();
        let latency = classify(&shifted(40.0), &base(), &cfg);
        let errors = classify(&base(), &base(), &cfg);
        let throughput = classify(&shifted(2.0), &base(), &cfg);
        let s = score(&[
            (latency.result, false, 1.0),
            (errors.result, false, 1.0),
            (throughput.result, false, 1.0),
        ]);
        assert_close!(s.value, 200.0 / 3.0, 1e-12);
        assert_eq!(s.class, ScoreClass::Fail);
        assert_eq!(MetricResult::NoDataFail.to_string(), "nodata_fail");
        assert_eq!(ScoreClass::Marginal.to_string(), "marginal");
    }
}
