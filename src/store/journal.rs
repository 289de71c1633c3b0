//! Writing what a run does, in order, many lines at a time: journal lines, audit records, the
//! run's row (status, step, snapshot), its end, and answers to commands, all in one immediate
//! transaction per batch, so a batch is written whole or not at all and nothing overtakes.
//!
//! Owns: the batch's shape and its SQL. Must not touch: when to try again (the engine's journal
//! writer decides, and tells the operator), or what a line says.

use rusqlite::{params, TransactionBehavior};

use super::{audit, finish_in, now_ts, Outcome, Result, RevisionState, Status, Store};

/// One thing to record.
#[derive(Debug, Clone)]
pub enum Write {
    /// A line of a run's event journal.
    Event {
        run: i64,
        ts: String,
        kind: String,
        json: String,
    },
    /// A record of the audit chain.
    Audit(audit::Entry),
    /// Where a run stands: its status, step and snapshot. Only the last of a run's in a batch is
    /// written (each replaces the one before).
    RunState {
        run: i64,
        status: Status,
        step: usize,
        snapshot_json: String,
    },
    /// The run's end, as [`Store::finish_run`] records it (its revisions, outcome, targets let
    /// go).
    Finish {
        run: i64,
        outcome: Outcome,
        reason: String,
        revisions: Vec<(String, RevisionState)>,
    },
    /// The answer to a command another process wrote (`commands.result`).
    Answer { id: i64, result: String },
}

impl Write {
    /// The run it belongs to, when it belongs to one.
    pub fn run(&self) -> Option<i64> {
        match self {
            Write::Event { run, .. } | Write::RunState { run, .. } | Write::Finish { run, .. } => {
                Some(*run)
            }
            Write::Audit(e) => e.run,
            Write::Answer { .. } => None,
        }
    }
}

impl Store {
    /// Write `writes` in order, in one immediate transaction: all or nothing. One try: a busy
    /// database (after SQLite's short wait), a full disk or a read-only file is an error with
    /// [`super::StoreError::fault`] set, for the caller to try again.
    pub fn write_all(&self, writes: &[Write]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // The last state of each run in the batch: earlier ones would be overwritten anyway.
        let mut last_state = std::collections::HashMap::new();
        for (i, w) in writes.iter().enumerate() {
            if let Write::RunState { run, .. } = w {
                last_state.insert(*run, i);
            }
        }
        self.once(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            for (i, w) in writes.iter().enumerate() {
                write_one(&tx, w, last_state.get(&w.run().unwrap_or(-1)) == Some(&i))?;
            }
            tx.commit()
        })
    }
}

fn write_one(tx: &rusqlite::Connection, w: &Write, last_state: bool) -> rusqlite::Result<()> {
    match w {
        Write::Event {
            run,
            ts,
            kind,
            json,
        } => {
            tx.execute(
                "INSERT INTO events (run_id, ts, kind, json) VALUES (?1, ?2, ?3, ?4)",
                params![run, ts, kind, super::codec::encode(json)],
            )?;
        }
        Write::Audit(e) => {
            audit::insert_audit(tx, e)?;
        }
        Write::RunState {
            run,
            status,
            step,
            snapshot_json,
        } => {
            if last_state {
                tx.execute(
                    // A finished run keeps the status its end gave it (its last snapshot
                    // is still recorded).
                    "UPDATE runs SET status = CASE WHEN outcome IS NULL THEN ?2 ELSE status END,
                       step = ?3, snapshot_json = ?4, updated_at = ?5
                     WHERE run_id = ?1",
                    params![run, status.as_str(), *step as i64, snapshot_json, now_ts()],
                )?;
            }
        }
        Write::Finish {
            run,
            outcome,
            reason,
            revisions,
        } => finish_in(tx, *run, *outcome, reason, revisions, &now_ts())?,
        Write::Answer { id, result } => {
            tx.execute(
                "UPDATE commands SET result = ?2 WHERE id = ?1",
                params![id, result],
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::new_run;

    #[test]
    fn a_batch_is_written_in_order_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let run = s.create_run(&new_run("app")).unwrap();
        let ev = |kind: &str| Write::Event {
            run,
            ts: now_ts(),
            kind: kind.into(),
            json: "{}".into(),
        };
        let state = |step| Write::RunState {
            run,
            status: Status::Progressing,
            step,
            snapshot_json: format!("{{\"step\":{step}}}"),
        };
        s.write_all(&[ev("a"), state(1), ev("b"), state(2)])
            .unwrap();
        let kinds: Vec<String> = s
            .events(run, 0)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["a", "b"]);
        assert_eq!(s.run(run).unwrap().unwrap().step, 2);
        // A failing write (no such run: foreign key) undoes the whole batch.
        let bad = Write::Event {
            run: 9999,
            ts: now_ts(),
            kind: "x".into(),
            json: "{}".into(),
        };
        let err = s.write_all(&[ev("c"), bad]).unwrap_err();
        assert!(err.fault().is_none(), "{err}");
        assert_eq!(s.events(run, 0).unwrap().len(), 2);
        // The end, with a state written after it in the same batch that must not undo it.
        s.write_all(&[
            ev("finished"),
            Write::Finish {
                run,
                outcome: Outcome::RolledBack,
                reason: "r".into(),
                revisions: vec![],
            },
            state(3),
        ])
        .unwrap();
        let row = s.run(run).unwrap().unwrap();
        assert_eq!(row.outcome, Some(Outcome::RolledBack));
        assert_eq!(row.status, Status::RolledBack);
        assert_eq!(
            row.snapshot_json, "{\"step\":3}",
            "the last snapshot is kept"
        );
    }

    #[test]
    fn a_full_database_is_a_fault_and_the_batch_goes_in_once_there_is_room() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let run = s.create_run(&new_run("app")).unwrap();
        let pages: i64 = s
            .with_conn(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0)))
            .unwrap();
        s.with_conn(|c| c.pragma_update(None, "max_page_count", pages))
            .unwrap();
        // Text that does not compress (the journal's lines are compressed).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let big: String = (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        let batch = [Write::Event {
            run,
            ts: now_ts(),
            kind: "big".into(),
            json: big,
        }];
        let err = s.write_all(&batch).unwrap_err();
        assert_eq!(err.fault(), Some(crate::store::Fault::Full), "{err}");
        assert!(err.to_string().contains("cutover.db"), "{err}");
        assert!(s.events(run, 0).unwrap().is_empty());
        s.with_conn(|c| c.pragma_update(None, "max_page_count", 1_073_741_823))
            .unwrap();
        s.write_all(&batch).unwrap();
        assert_eq!(s.events(run, 0).unwrap().len(), 1);
    }
}
