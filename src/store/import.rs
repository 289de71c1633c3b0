//! Runs that happened elsewhere, written with their own times: a history brought in whole (the
//! demo's generated past, a benchmark's large store).
//!
//! Owns: inserting finished runs and their journals in one transaction. Must not touch:
//! revisions (a past run serves nothing here) or the audit trail (it records what this store's
//! people did).

use rusqlite::params;

use super::{codec, NewRun, Outcome, Result, Store};

/// A finished run and its journal, with the times it had.
#[derive(Debug, Clone)]
pub struct PastRun {
    pub run: NewRun,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: String,
    pub outcome: Outcome,
    pub reason: String,
    /// The step it ended at, and its last snapshot (JSON; `{}` when there is none).
    pub step: usize,
    pub snapshot_json: String,
    /// (ts, kind, json), oldest first.
    pub events: Vec<(String, String, String)>,
}

/// An event's JSON with its `run` set to the id the run got here (the generator cannot know it).
fn with_run(json: &str, run: i64) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(mut o)) if o.contains_key("run") => {
            o.insert("run".into(), run.into());
            serde_json::Value::Object(o).to_string()
        }
        _ => json.to_string(),
    }
}

impl Store {
    /// Write `runs` (all or none), in order; their ids.
    pub fn import_runs(&self, runs: &[PastRun]) -> Result<Vec<i64>> {
        self.with(|c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
            let mut ids = Vec::with_capacity(runs.len());
            {
                let mut run_stmt = tx.prepare(
                    "INSERT INTO runs (deployment, kind, name, version, strategy, environment,
                       provider, dry_run, spec_json, plan_json, status, step, snapshot_json,
                       outcome, reason, initiator, owner_pid, started_at, updated_at, finished_at,
                       changed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?11, ?14,
                       ?15, NULL, ?16, ?17, ?17,
                       CASE WHEN json_valid(?9) AND json_type(?9, '$.metadata.changedAt') = 'text'
                         THEN json_extract(?9, '$.metadata.changedAt') END)",
                )?;
                let mut event_stmt = tx.prepare(
                    "INSERT INTO events (run_id, ts, kind, json) VALUES (?1, ?2, ?3, ?4)",
                )?;
                for p in runs {
                    let n = &p.run;
                    run_stmt.execute(params![
                        n.deployment,
                        n.kind.as_str(),
                        n.name,
                        n.version,
                        n.strategy.as_str(),
                        n.environment,
                        n.provider.as_str(),
                        n.dry_run as i64,
                        n.spec_json,
                        n.plan_json,
                        p.outcome.as_str(),
                        p.step as i64,
                        p.snapshot_json,
                        p.reason,
                        n.initiator,
                        p.started_at,
                        p.finished_at,
                    ])?;
                    let id = tx.last_insert_rowid();
                    for (ts, kind, json) in &p.events {
                        event_stmt.execute(params![
                            id,
                            ts,
                            kind,
                            codec::encode(&with_run(json, id))
                        ])?;
                    }
                    ids.push(id);
                }
            }
            tx.commit()?;
            Ok(ids)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ProviderKind, Strategy};
    use crate::store::RunKind;

    #[test]
    fn past_runs_keep_their_times_outcomes_and_journals() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let past = PastRun {
            run: NewRun {
                deployment: "shop".into(),
                kind: RunKind::Deploy,
                name: "shop".into(),
                version: "0.9.0".into(),
                strategy: Strategy::Canary,
                environment: "production".into(),
                provider: ProviderKind::Local,
                dry_run: false,
                spec_json: "{}".into(),
                plan_json: "{}".into(),
                initiator: "ana".into(),
            },
            started_at: "2026-10-01T10:00:00.000Z".into(),
            finished_at: "2026-10-01T10:09:00.000Z".into(),
            outcome: Outcome::RolledBack,
            reason: "error_rate failed".into(),
            step: 3,
            snapshot_json: "{}".into(),
            events: vec![(
                "2026-10-01T10:00:00.000Z".into(),
                "started".into(),
                "{\"run\":0,\"kind\":\"started\"}".into(),
            )],
        };
        let ids = store
            .import_runs(&[past.clone(), past])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ids.len(), 2);
        let r = store
            .run(ids[0])
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("run"));
        assert_eq!(r.started_at, "2026-10-01T10:00:00.000Z");
        assert_eq!(r.finished_at.as_deref(), Some("2026-10-01T10:09:00.000Z"));
        assert_eq!(r.outcome, Some(Outcome::RolledBack));
        assert!(r.is_finished() && r.owner_pid.is_none());
        let events = store.events(ids[1], 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), 1);
        // Each event names the run it was written under.
        assert!(
            events[0].json.contains(&format!("\"run\":{}", ids[1])),
            "{}",
            events[0].json
        );
    }
}
