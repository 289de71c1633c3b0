//! Weights as replica counts, for a component whose revisions share one Service: the counts
//! nearest the weights asked (`cutover_kube::ratio`) and the shares they achieve.
//!
//! Owns: turning a weight list into per-revision replica counts. Must not touch: the cluster.

use cutover_kube::ratio;

use crate::provider::RevisionKey;

/// Per revision, the replicas to run and the share (percent) of traffic those counts give.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    pub replicas: Vec<(RevisionKey, u32)>,
    pub achieved: Vec<(RevisionKey, f64)>,
}

/// The counts for `weights` (percent per revision, the new revision last, as the engine lists
/// them), where `full(key)` is a revision's replicas at full size.
pub fn counts(weights: &[(RevisionKey, u32)], full: &dyn Fn(&RevisionKey) -> u32) -> Counts {
    let serving: Vec<&(RevisionKey, u32)> = weights.iter().filter(|(_, w)| *w > 0).collect();
    let mut replicas: Vec<(RevisionKey, u32)> = weights
        .iter()
        .filter(|(_, w)| *w == 0)
        .map(|(k, _)| (k.clone(), 0))
        .collect();
    match serving.as_slice() {
        [] => {}
        [(k, _)] => replicas.push((k.clone(), full(k))),
        [(stable, _), (canary, w)] => {
            // The component's size is the new revision's; one pod of surge is allowed when it
            // comes closer to the weight, as Argo Rollouts does with maxSurge.
            let total = full(canary).max(1);
            let (c, s) = ratio::counts(total, *w, true);
            replicas.push((stable.clone(), s));
            replicas.push((canary.clone(), c));
        }
        many => {
            // More than two serving revisions (rare: a rollback through several): each its
            // share of the largest, at least one pod.
            let total = many.iter().map(|(k, _)| full(k)).max().unwrap_or(1);
            for (k, w) in many {
                let n = ((total as u64 * *w as u64 + 50) / 100).max(1) as u32;
                replicas.push((k.clone(), n));
            }
        }
    }
    let all: u32 = replicas.iter().map(|(_, n)| *n).sum();
    let achieved = weights
        .iter()
        .map(|(k, _)| {
            let n = replicas
                .iter()
                .find(|(rk, _)| rk == k)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            (k.clone(), ratio::achieved(n, all - n))
        })
        .collect();
    Counts { replicas, achieved }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> RevisionKey {
        RevisionKey(s.into())
    }

    #[test]
    fn a_canary_weight_becomes_the_nearest_pod_counts() {
        let full = |_: &RevisionKey| 4;
        let c = counts(&[(k("old"), 80), (k("new"), 20)], &full);
        assert_eq!(c.replicas, vec![(k("old"), 4), (k("new"), 1)]);
        assert_eq!(c.achieved, vec![(k("old"), 80.0), (k("new"), 20.0)]);
        let c = counts(&[(k("old"), 50), (k("new"), 50)], &full);
        assert_eq!(c.replicas, vec![(k("old"), 2), (k("new"), 2)]);
        let c = counts(&[(k("old"), 70), (k("new"), 30)], &|_: &RevisionKey| 3);
        // 1 of 3 (33%) or 1 of 4 (25%): 33% is nearer 30%.
        assert_eq!(c.replicas, vec![(k("old"), 2), (k("new"), 1)]);
        assert!((c.achieved[1].1 - 33.333).abs() < 0.01);
    }

    #[test]
    fn the_ends_run_one_side_at_full_size() {
        let full = |key: &RevisionKey| if key.0 == "old" { 3 } else { 5 };
        let c = counts(&[(k("old"), 0), (k("new"), 100)], &full);
        assert_eq!(c.replicas, vec![(k("old"), 0), (k("new"), 5)]);
        assert_eq!(c.achieved, vec![(k("old"), 0.0), (k("new"), 100.0)]);
        let c = counts(&[(k("old"), 100), (k("new"), 0)], &full);
        assert_eq!(c.replicas, vec![(k("new"), 0), (k("old"), 3)]);
        assert!(counts(&[], &full).replicas.is_empty());
    }
}
