//! Retention's writes: finding finished runs older than a time that have not been pruned, and
//! replacing some of a run's journal lines by one summary line, in one transaction.
//!
//! Owns: those queries. Must not touch: which lines to remove or what the summary says (the
//! caller decides, `analytics::retention`), the audit trail or the runs' rows.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{codec, Result, Store};

impl Store {
    /// Up to `limit` runs that finished before `before` (RFC 3339) and have no `pruned` line,
    /// oldest first, after run `after`.
    pub fn runs_to_prune(&self, before: &str, after: i64, limit: usize) -> Result<Vec<i64>> {
        self.with(|c| {
            let mut st = c.prepare_cached(
                "SELECT run_id FROM runs r
                 WHERE r.run_id > ?3 AND r.finished_at IS NOT NULL AND r.finished_at < ?1
                   AND NOT EXISTS (SELECT 1 FROM events e
                                   WHERE e.run_id = r.run_id AND e.kind = 'pruned')
                 ORDER BY run_id LIMIT ?2",
            )?;
            let rows = st.query_map(params![before, limit as i64, after], |r| r.get(0))?;
            rows.collect()
        })
    }

    /// The bytes lines `seqs` of `run` take as stored.
    pub fn stored_bytes(&self, run: i64, seqs: &[i64]) -> Result<u64> {
        self.with(|c| {
            let mut size = c.prepare_cached(
                "SELECT COALESCE(LENGTH(CAST(json AS BLOB)), 0) FROM events
                 WHERE seq = ?1 AND run_id = ?2",
            )?;
            let mut total = 0u64;
            for seq in seqs {
                let n: Option<i64> = size.query_row(params![seq, run], |r| r.get(0)).optional()?;
                total += n.unwrap_or(0) as u64;
            }
            Ok(total)
        })
    }

    /// Remove the lines `remove` of `run` and write `summary` (ts, kind, json) in place of the
    /// first of them, in one transaction; the bytes the removed lines took as stored. Nothing
    /// is done (0) when the run has a `pruned` line by then (another prune got there first).
    pub fn replace_lines(
        &self,
        run: i64,
        remove: &[i64],
        summary: (&str, &str, &str),
    ) -> Result<u64> {
        let Some(&first) = remove.iter().min() else {
            return Ok(0);
        };
        self.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let done: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM events WHERE run_id = ?1 AND kind = 'pruned')",
                [run],
                |r| r.get(0),
            )?;
            if done {
                return Ok(0);
            }
            let mut freed = 0u64;
            {
                let mut size = tx.prepare_cached(
                    "SELECT LENGTH(CAST(json AS BLOB)) FROM events WHERE seq = ?1 AND run_id = ?2",
                )?;
                let mut del =
                    tx.prepare_cached("DELETE FROM events WHERE seq = ?1 AND run_id = ?2")?;
                for seq in remove {
                    let n: Option<i64> =
                        size.query_row(params![seq, run], |r| r.get(0)).optional()?;
                    freed += n.unwrap_or(0) as u64;
                    del.execute(params![seq, run])?;
                }
            }
            let (ts, kind, json) = summary;
            tx.execute(
                "INSERT INTO events (seq, run_id, ts, kind, json) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![first, run, ts, kind, codec::encode(json)],
            )?;
            tx.commit()?;
            Ok(freed)
        })
    }
}
