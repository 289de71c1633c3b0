//! What the metrics exporter reads: the newest run of each deployment in each environment, and
//! the journal's lines of a few kinds after a sequence number, with their run's target.
//!
//! Owns: those queries. Must not touch: what the exporter makes of them.

use rusqlite::params;

use super::{run_row, word, Result, RunKind, RunRow, Store, RUN_COLS};

/// A journal line with the deployment and environment of its run.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    pub seq: i64,
    pub run_id: i64,
    pub ts: String,
    pub kind: String,
    pub json: String,
    pub deployment: String,
    pub environment: String,
    pub started_at: String,
    /// What the run did: a deployment, a promotion, or an operator's rollback.
    pub run_kind: RunKind,
}

impl Store {
    /// The newest run (not a dry run) of each deployment in each environment, by deployment.
    pub fn latest_per_target(&self) -> Result<Vec<RunRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE run_id IN
                   (SELECT MAX(run_id) FROM runs WHERE dry_run = 0 GROUP BY deployment, environment)
                 ORDER BY deployment, environment"
            ))?;
            let rows = st.query_map([], run_row)?;
            rows.collect()
        })
    }

    /// Up to `limit` journal lines of runs that are not dry runs, of the `kinds` given, after
    /// `after_seq`, oldest first.
    pub fn feed(&self, after_seq: i64, kinds: &[&str], limit: usize) -> Result<Vec<FeedEvent>> {
        let kinds = kinds
            .iter()
            .map(|k| format!("'{}'", k.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(",");
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT e.seq, e.run_id, e.ts, e.kind, e.json, r.deployment, r.environment, r.started_at, r.kind
                 FROM events e JOIN runs r ON r.run_id = e.run_id
                 WHERE e.seq > ?1 AND r.dry_run = 0 AND e.kind IN ({kinds})
                 ORDER BY e.seq LIMIT ?2"
            ))?;
            let rows = st.query_map(params![after_seq, limit as i64], |r| {
                Ok(FeedEvent {
                    seq: r.get(0)?,
                    run_id: r.get(1)?,
                    ts: r.get(2)?,
                    kind: r.get(3)?,
                    json: super::codec::column(r, 4)?,
                    deployment: r.get(5)?,
                    environment: r.get(6)?,
                    started_at: r.get(7)?,
                    run_kind: word(r, 8)?,
                })
            })?;
            rows.collect()
        })
    }
}
