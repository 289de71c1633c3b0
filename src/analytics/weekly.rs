//! The four key delivery measures week by week, for the console's history view: deployments
//! (and successful ones), change failure rate, time to restore (a failed or rolled-back
//! deployment's end to the next success in the same deployment and environment, counted in the
//! week of the failure, wherever its fix lands), and lead time for changes (from the spec's
//! `metadata.changedAt` to the success, where it says).
//!
//! Weeks start on Monday, 00:00 UTC. Owns: bucketing [`Fact`]s (pure). Must not touch: the store.

use chrono::{DateTime, Datelike, Duration, Utc};

use super::report::Fact;
use crate::analysis::stats::median;
use crate::store::{Outcome, RunKind};

/// One week's measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Week {
    /// Monday, 00:00 UTC.
    pub start: DateTime<Utc>,
    pub deployments: usize,
    pub succeeded: usize,
    /// Failed or rolled back over finished, none when nothing finished.
    pub change_fail_rate: Option<f64>,
    pub restore_median_s: Option<f64>,
    pub lead_time_median_s: Option<f64>,
}

/// The Monday, 00:00 UTC, of the week `t` falls in.
pub fn week_of(t: DateTime<Utc>) -> DateTime<Utc> {
    let day = t.date_naive() - Duration::days(i64::from(t.weekday().num_days_from_monday()));
    day.and_hms_opt(0, 0, 0).map_or(t, |d| d.and_utc())
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}

/// Each week from the one holding `from` to the one holding `to`, over the deployments among
/// `facts` (rollback runs are not deployments).
pub fn weekly(facts: &[Fact], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Week> {
    let mut deploys: Vec<&Fact> = facts
        .iter()
        .filter(|f| f.kind != RunKind::Rollback)
        .collect();
    deploys.sort_by_key(|f| f.started);
    let mut weeks = Vec::new();
    let mut start = week_of(from);
    while start <= to {
        let end = start + Duration::days(7);
        let inside: Vec<&&Fact> = deploys
            .iter()
            .filter(|f| f.started >= start && f.started < end)
            .collect();
        let is = |f: &&&Fact, o: Outcome| f.outcome == Some(o);
        let succeeded = inside.iter().filter(|f| is(f, Outcome::Succeeded)).count();
        let bad: Vec<&&&Fact> = inside
            .iter()
            .filter(|f| is(f, Outcome::Failed) || is(f, Outcome::RolledBack))
            .collect();
        let finished = succeeded + bad.len();
        let restores: Vec<f64> = bad
            .iter()
            .filter_map(|f| {
                let broke = f.finished?;
                let fix = deploys.iter().find(|g| {
                    g.started > f.started
                        && g.deployment == f.deployment
                        && g.environment == f.environment
                        && g.outcome == Some(Outcome::Succeeded)
                })?;
                Some(secs(fix.finished? - broke))
            })
            .collect();
        let leads: Vec<f64> = inside
            .iter()
            .filter(|f| is(f, Outcome::Succeeded))
            .filter_map(|f| Some(secs(f.finished? - f.changed_at?)))
            .collect();
        weeks.push(Week {
            start,
            deployments: inside.len(),
            succeeded,
            change_fail_rate: (finished > 0).then(|| bad.len() as f64 / finished as f64),
            restore_median_s: median(&restores),
            lead_time_median_s: median(&leads),
        });
        start = end;
    }
    weeks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::store::parse_ts(s).unwrap_or_else(|| panic!("{s}"))
    }

    fn fact(dep: &str, started: &str, mins: i64, outcome: Outcome, lead_h: Option<i64>) -> Fact {
        let started = at(started);
        Fact {
            deployment: dep.into(),
            environment: "production".into(),
            kind: RunKind::Deploy,
            outcome: Some(outcome),
            started,
            finished: Some(started + Duration::minutes(mins)),
            changed_at: lead_h.map(|h| started - Duration::hours(h)),
        }
    }

    #[test]
    fn weeks_start_on_monday_and_a_restore_counts_in_the_week_it_broke() {
        // 2026-11-23 is a Monday.
        assert_eq!(
            week_of(at("2026-11-29T23:00:00Z")),
            at("2026-11-23T00:00:00Z")
        );
        assert_eq!(
            week_of(at("2026-11-30T00:00:00Z")),
            at("2026-11-30T00:00:00Z")
        );
        let facts = vec![
            fact(
                "shop",
                "2026-11-24T10:00:00Z",
                10,
                Outcome::Succeeded,
                Some(2),
            ),
            // Broken on Sunday, fixed on Monday: restored in 2h10m, counted on Sunday's week.
            fact(
                "shop",
                "2026-11-29T22:00:00Z",
                10,
                Outcome::RolledBack,
                None,
            ),
            fact("shop", "2026-11-30T00:10:00Z", 10, Outcome::Succeeded, None),
            fact("pay", "2026-11-30T09:00:00Z", 5, Outcome::Failed, None),
        ];
        let weeks = weekly(
            &facts,
            at("2026-11-25T00:00:00Z"),
            at("2026-12-01T12:00:00Z"),
        );
        assert_eq!(weeks.len(), 2);
        let (a, b) = (&weeks[0], &weeks[1]);
        assert_eq!((a.deployments, a.succeeded), (2, 1));
        assert_eq!(a.change_fail_rate, Some(0.5));
        assert_eq!(a.restore_median_s, Some(7800.0));
        assert_eq!(a.lead_time_median_s, Some(2.0 * 3600.0 + 600.0));
        // A failure never fixed has no restore time; no change time, no lead time.
        assert_eq!((b.deployments, b.succeeded), (2, 1));
        assert_eq!(b.restore_median_s, None);
        assert_eq!(b.lead_time_median_s, None);
    }
}
