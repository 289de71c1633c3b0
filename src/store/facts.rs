//! What reports read of each run (target, kind, outcome, start, end, when its change was made),
//! from an index that holds exactly that: a report over 100,000 runs never reads their specs,
//! plans or snapshots.
//!
//! Owns: that query. Must not touch: what reports make of it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::params;
use rusqlite::types::ValueRef;

use super::Outcome;
use super::{kinds::opt_word, kinds::word, Result, RunKind, Store};

/// One run as reports see it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunFacts {
    pub run_id: i64,
    /// One allocation per place, shared by its runs (they come in the index's order, place by
    /// place).
    pub deployment: Arc<str>,
    pub environment: Arc<str>,
    pub kind: RunKind,
    /// `None` while running.
    pub outcome: Option<Outcome>,
    /// `None` where the recorded time cannot be read.
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    /// The spec's `metadata.changedAt`, when it gives one.
    pub changed_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Every run that is not a dry run (in the index's order, not by time), in `environment`
    /// and of `deployment` when given, and started at or after `since` when given (a day early:
    /// times are compared as recorded text, so the caller filters the first day again).
    pub fn run_facts(
        &self,
        environment: Option<&str>,
        deployment: Option<&str>,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<RunFacts>> {
        let since = since.map(|t| {
            (t - chrono::Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT run_id, deployment, environment, kind, outcome, started_at,
                   finished_at, changed_at
                 FROM runs INDEXED BY runs_facts
                 WHERE dry_run = 0 AND (?1 IS NULL OR environment = ?1)
                   AND (?2 IS NULL OR deployment = ?2)
                   AND (?3 IS NULL OR started_at >= ?3)",
            )?;
            let mut names = (Shared::default(), Shared::default());
            let rows = st.query_map(params![environment, deployment, since], |r| {
                Ok(RunFacts {
                    run_id: r.get(0)?,
                    deployment: names.0.read(r, 1)?,
                    environment: names.1.read(r, 2)?,
                    kind: word(r, 3)?,
                    outcome: opt_word(r, 4)?,
                    started: time(r, 5)?,
                    finished: time(r, 6)?,
                    changed_at: time(r, 7)?,
                })
            })?;
            rows.collect()
        })
    }
}

/// The last name read from a column, handed out again while the next rows repeat it.
#[derive(Default)]
struct Shared(Option<Arc<str>>);

impl Shared {
    fn read(&mut self, r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Arc<str>> {
        let text = r.get_ref(i)?.as_str()?;
        match &self.0 {
            Some(last) if **last == *text => Ok(last.clone()),
            _ => {
                let name: Arc<str> = text.into();
                self.0 = Some(name.clone());
                Ok(name)
            }
        }
    }
}

/// The recorded time in column `i`, read in place (no copy of the text).
fn time(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(match r.get_ref(i)? {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(super::parse_ts),
        _ => None,
    })
}
