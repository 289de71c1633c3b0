//! Retention: a finished run's routine analysis lines (every verdict a pass, the decision to
//! continue), once the run is older than the retention, are replaced by one `pruned` line with
//! their verdict counts per signal. What an operator or an audit needs stays as it was: every
//! other line (starts, steps, traffic, gates and who decided them, pauses, each analysis with a
//! verdict that was not a pass or a decision that was not to continue, rollbacks, the end), the
//! audit trail (its own table and hash chain) and the runs' rows that reports read.
//!
//! Owns: choosing the lines and writing their summary. Must not touch: the audit trail, runs'
//! rows, or runs that have not finished.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::event::AnalysisDecision;
use crate::engine::{Event, EventKind, Judgement};
use crate::store::{Store, StoreError};

/// What a prune did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pruned {
    /// Runs looked at (finished before the time, not pruned before).
    pub runs: usize,
    /// Runs that had routine lines, and those lines.
    pub pruned_runs: usize,
    pub lines: usize,
    /// The bytes those lines took as stored.
    pub bytes: u64,
}

/// Runs read per query.
const BATCH: usize = 500;

/// Prune every run that finished before `before`; with `dry_run`, only count.
pub fn prune(store: &Store, before: DateTime<Utc>, dry_run: bool) -> Result<Pruned, StoreError> {
    let cut = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut out = Pruned::default();
    let mut after = 0;
    loop {
        let runs = store.runs_to_prune(&cut, after, BATCH)?;
        for &run in &runs {
            after = run;
            out.runs += 1;
            let rows = store.events(run, 0)?;
            let mut routine = Vec::new();
            let mut verdicts: BTreeMap<String, [u32; 4]> = BTreeMap::new();
            let mut first: Option<Event> = None;
            let mut last_ts = String::new();
            for row in &rows {
                let Ok(ev) = serde_json::from_str::<Event>(&row.json) else {
                    continue;
                };
                if !is_routine(&ev.kind) {
                    continue;
                }
                if let EventKind::Analysis { verdicts: vs, .. } = &ev.kind {
                    for v in vs {
                        verdicts.entry(v.signal.clone()).or_default()[0] += 1;
                    }
                }
                routine.push(row.seq);
                last_ts = ev.ts.clone();
                first.get_or_insert(ev);
            }
            let Some(first) = first else { continue };
            out.pruned_runs += 1;
            out.lines += routine.len();
            if dry_run {
                out.bytes += store.stored_bytes(run, &routine)?;
                continue;
            }
            let summary = Event {
                ts: first.ts.clone(),
                deployment: first.deployment.clone(),
                run,
                kind: EventKind::Pruned {
                    lines: routine.len(),
                    verdicts,
                    from: first.ts.clone(),
                    to: last_ts,
                },
            };
            let json = serde_json::to_string(&summary).unwrap_or_default();
            out.bytes += store.replace_lines(run, &routine, (&summary.ts, "pruned", &json))?;
        }
        if runs.len() < BATCH {
            return Ok(out);
        }
    }
}

/// An analysis whose every verdict passed and whose decision was to go on.
fn is_routine(kind: &EventKind) -> bool {
    match kind {
        EventKind::Analysis {
            verdicts, decision, ..
        } => {
            *decision == AnalysisDecision::Continue
                && !verdicts.is_empty()
                && verdicts.iter().all(|v| v.judgement == Judgement::Pass)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::run::analyse;
    use chrono::Duration;

    fn journal(store: &Store, run: i64) -> Vec<Event> {
        store
            .events(run, 0)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .filter_map(|r| serde_json::from_str(&r.json).ok())
            .collect()
    }

    #[test]
    fn old_runs_lose_their_routine_lines_and_keep_every_count_and_decision() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let now = Utc::now();
        let n = crate::demo_past::seed(&store, now, 60, 7).unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 50);
        let before = now - Duration::days(30);
        let facts = store
            .run_facts(None, None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        let runs: Vec<i64> = facts.iter().map(|f| f.run_id).collect();
        let analytics = |store: &Store| -> Vec<_> {
            runs.iter()
                .map(|r| {
                    let mut a = analyse(*r, "x", &journal(store, *r));
                    a.duration_s = None;
                    a
                })
                .collect()
        };
        let was = analytics(&store);
        let lines_before = store.size().unwrap_or_else(|e| panic!("{e}")).events;
        let kept: Vec<Vec<Event>> = runs.iter().map(|r| journal(&store, *r)).collect();

        // A dry run counts and changes nothing.
        let dry = prune(&store, before, true).unwrap_or_else(|e| panic!("{e}"));
        assert!(dry.lines > 100 && dry.pruned_runs > 10, "{dry:?}");
        assert_eq!(
            store.size().unwrap_or_else(|e| panic!("{e}")).events,
            lines_before
        );

        let done = prune(&store, before, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(done, dry, "the dry run said what the prune did");
        assert!(done.bytes > 0);
        assert_eq!(
            store.size().unwrap_or_else(|e| panic!("{e}")).events,
            lines_before - done.lines as u64 + done.pruned_runs as u64
        );
        // Every run's analytics (verdict counts per signal, steps, gates, decisions, traffic,
        // outcome) are what they were; the reports' rows did not change.
        assert_eq!(analytics(&store), was);
        assert_eq!(
            store
                .run_facts(None, None, None)
                .unwrap_or_else(|e| panic!("{e}")),
            facts
        );
        for (r, old) in runs.iter().zip(&kept) {
            let new = journal(&store, *r);
            let finished = facts
                .iter()
                .find(|f| f.run_id == *r)
                .and_then(|f| f.finished);
            if finished.is_none_or(|t| t >= before) {
                assert_eq!(&new, old, "run {r} finished after the cut: untouched");
                continue;
            }
            // What stays is every line that was not a routine analysis, in order, with the
            // summary where the first routine line was.
            let others: Vec<&Event> = old.iter().filter(|e| !is_routine(&e.kind)).collect();
            let now_others: Vec<&Event> = new
                .iter()
                .filter(|e| !matches!(e.kind, EventKind::Pruned { .. }))
                .collect();
            assert_eq!(now_others, others, "run {r}");
            let first_routine = old.iter().position(|e| is_routine(&e.kind));
            let summary_at = new
                .iter()
                .position(|e| matches!(e.kind, EventKind::Pruned { .. }));
            assert_eq!(summary_at, first_routine, "run {r}");
            assert_eq!(new.last().map(|e| e.kind.name()), Some("finished"));
        }
        // Pruned once: a second prune finds nothing to do.
        let again = prune(&store, before, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.lines, 0, "{again:?}");
    }
}
