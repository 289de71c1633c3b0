//! A canary weight as a replica ratio, for clusters without a traffic router: both revisions sit
//! behind one Service, so the share each serves is its share of the ready pods.
//!
//! Owns: choosing the counts nearest the asked weight, the way Argo Rollouts does
//! (`approximateWeightedCanaryStableReplicaCounts`), and the weight those counts achieve.
//! Must not touch: the cluster.

/// Replica counts for a canary at `weight` percent of a component that runs `total` replicas at
/// full size: `(canary, stable)`. With `surge`, the sum may be `total + 1` when that comes closer
/// to the weight. A weight strictly between 0 and 100 never gives 0 canary or 0 stable pods when
/// `total` is at least 2.
pub fn counts(total: u32, weight: u32, surge: bool) -> (u32, u32) {
    let weight = weight.min(100);
    if total == 0 {
        return (0, 0);
    }
    if weight == 0 {
        return (0, total);
    }
    if weight == 100 {
        return (total, 0);
    }
    let mut best: Option<(u32, u32, f64)> = None;
    let sums: &[u32] = if surge { &[total, total + 1] } else { &[total] };
    for &sum in sums {
        let exact = sum as f64 * weight as f64 / 100.0;
        for canary in [exact.floor() as u32, exact.ceil() as u32] {
            let canary = canary.clamp(0, sum);
            let stable = sum - canary;
            // Both sides keep a pod when they can: a canary at 1-99% has traffic, and so does
            // the stable revision.
            if sum >= 2 && (canary == 0 || stable == 0) {
                continue;
            }
            let diff = (achieved(canary, stable) - weight as f64).abs();
            let better = match best {
                None => true,
                // Closer wins; on a tie, fewer pods in all, then the smaller canary.
                Some((bc, bs, bd)) => {
                    diff < bd - 1e-9
                        || ((diff - bd).abs() <= 1e-9 && (canary + stable, canary) < (bc + bs, bc))
                }
            };
            if better {
                best = Some((canary, stable, diff));
            }
        }
    }
    match best {
        Some((c, s, _)) => (c, s),
        // One replica in all and a weight strictly inside: it serves one side only; the
        // nearer one.
        None if weight >= 50 => (1, 0),
        None => (0, 1),
    }
}

/// The canary's share of traffic, percent, when `canary` and `stable` pods serve.
pub fn achieved(canary: u32, stable: u32) -> f64 {
    let all = canary + stable;
    if all == 0 {
        0.0
    } else {
        canary as f64 * 100.0 / all as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_counts() {
        assert_eq!(counts(10, 20, false), (2, 8));
        assert_eq!(counts(4, 20, false), (1, 3));
        assert_eq!(counts(3, 50, false), (1, 2));
        assert_eq!(counts(3, 50, true), (2, 2));
        assert_eq!(counts(5, 1, false), (1, 4));
        assert_eq!(counts(5, 99, false), (4, 1));
        assert_eq!(counts(5, 0, true), (0, 5));
        assert_eq!(counts(5, 100, true), (5, 0));
        assert_eq!(counts(1, 30, false), (0, 1));
        assert_eq!(counts(1, 70, false), (1, 0));
        assert_eq!(counts(0, 50, true), (0, 0));
    }

    #[test]
    fn achieved_share() {
        assert_eq!(achieved(1, 3), 25.0);
        assert_eq!(achieved(0, 0), 0.0);
        let (c, s) = counts(3, 20, false);
        assert!((achieved(c, s) - 33.333).abs() < 0.01);
    }

    #[test]
    fn every_weight_keeps_both_sides_and_stays_close() {
        for total in 2..=12 {
            for w in 1..100 {
                for surge in [false, true] {
                    let (c, s) = counts(total, w, surge);
                    assert!(c >= 1 && s >= 1, "{total} {w}");
                    assert!(c + s == total || (surge && c + s == total + 1));
                    // Never further than one pod's share from the weight.
                    assert!((achieved(c, s) - w as f64).abs() <= 100.0 / total as f64 + 1e-9);
                }
            }
        }
    }
}
