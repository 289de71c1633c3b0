//! One driver per target: a run holds each of its targets (a component in an environment on a
//! provider) from its creation until it finishes, so a second run on a target is refused while
//! the first has not ended, whichever process started it.
//!
//! Owns: the `target_locks` table: taking the targets with the run in one immediate transaction
//! (across processes), handing them to a rollback of the holder, releasing them when the run's
//! end is recorded (`finish_run`). Must not touch: what a refusal says or does (the engine).

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{insert_run, now_ts, run_row, NewRun, Result, RunRow, Store, RUN_COLS};

/// The unfinished run that holds a target.
#[derive(Debug, Clone)]
pub struct Holder {
    pub target: String,
    pub run: RunRow,
}

impl Store {
    /// Record a new run holding `targets`, or say which unfinished run holds one of them. A
    /// target held by `take_over` (the run a rollback replaces) passes to the new run; one held
    /// by a finished run is free.
    pub fn create_run_holding(
        &self,
        n: &NewRun,
        targets: &[String],
        take_over: Option<i64>,
    ) -> Result<std::result::Result<i64, Holder>> {
        self.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            for target in targets {
                let held: Option<RunRow> = tx
                    .query_row(
                        &format!(
                            "SELECT {RUN_COLS} FROM runs WHERE run_id =
                               (SELECT run_id FROM target_locks WHERE target = ?1)"
                        ),
                        [target],
                        run_row,
                    )
                    .optional()?;
                if let Some(run) = held {
                    if !run.is_finished() && Some(run.run_id) != take_over {
                        return Ok(Err(Holder {
                            target: target.clone(),
                            run,
                        }));
                    }
                }
            }
            let run = insert_run(&tx, n)?;
            let ts = now_ts();
            for target in targets {
                tx.execute(
                    "INSERT INTO target_locks (target, run_id, acquired_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(target) DO UPDATE SET run_id = ?2, acquired_at = ?3",
                    params![target, run, ts],
                )?;
            }
            tx.commit()?;
            Ok(Ok(run))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::new_run;
    use crate::store::Outcome;

    #[test]
    fn a_target_has_one_unfinished_run_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let t = vec!["local:dev:web".to_string()];
        let first = s
            .create_run_holding(&new_run("a"), &t, None)
            .unwrap()
            .unwrap();
        let held = s
            .create_run_holding(&new_run("b"), &t, None)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (held.target.as_str(), held.run.run_id),
            ("local:dev:web", first)
        );
        // Another target is free; a rollback of the holder takes it over.
        let other = vec!["local:dev:api".to_string()];
        assert!(s
            .create_run_holding(&new_run("c"), &other, None)
            .unwrap()
            .is_ok());
        let rollback = s
            .create_run_holding(&new_run("a"), &t, Some(first))
            .unwrap()
            .unwrap();
        assert!(s
            .create_run_holding(&new_run("d"), &t, None)
            .unwrap()
            .is_err());
        // Its end releases it.
        s.finish_run(rollback, Outcome::RolledBack, "done", &[])
            .unwrap();
        assert!(s
            .create_run_holding(&new_run("d"), &t, None)
            .unwrap()
            .is_ok());
    }
}
