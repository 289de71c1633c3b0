//! The audit trail's storage: appending a chained record atomically (across processes: the
//! previous hash is read and the record written in one immediate transaction) and reading the
//! chain and its head.
//!
//! Owns: the `audit` and `audit_head` tables' queries. Must not touch: what is recorded.

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{now_ts, Result, Store};
use crate::governance::audit::{hash, Entry, Record, GENESIS};

impl Store {
    /// Append one record to the chain.
    pub fn append_audit(&self, e: &Entry) -> Result<Record> {
        self.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let last: Option<(i64, String)> = tx
                .query_row(
                    "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (prev_seq, prev) = last.unwrap_or((0, GENESIS.to_string()));
            let seq = prev_seq + 1;
            let ts = now_ts();
            let h = hash(&prev, seq, &ts, e);
            tx.execute(
                "INSERT INTO audit (seq, ts, actor, action, deployment, run_id, environment, detail_json, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    seq,
                    ts,
                    e.actor,
                    e.action,
                    e.deployment,
                    e.run,
                    e.environment,
                    e.detail.to_string(),
                    prev,
                    h
                ],
            )?;
            tx.execute(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET seq = ?1, hash = ?2",
                params![seq, h],
            )?;
            tx.commit()?;
            Ok(Record {
                seq,
                ts,
                entry: e.clone(),
                prev_hash: prev,
                hash: h,
            })
        })
    }

    /// The whole chain, oldest first.
    pub fn audit(&self) -> Result<Vec<Record>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT seq, ts, actor, action, deployment, run_id, environment, detail_json, prev_hash, hash
                 FROM audit ORDER BY seq",
            )?;
            let rows = st.query_map([], |r| {
                let detail: String = r.get(7)?;
                Ok(Record {
                    seq: r.get(0)?,
                    ts: r.get(1)?,
                    entry: Entry {
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        deployment: r.get(4)?,
                        run: r.get(5)?,
                        environment: r.get(6)?,
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                    },
                    prev_hash: r.get(8)?,
                    hash: r.get(9)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The last record's seq and hash as written (to detect removal of the newest records).
    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        self.with(|c| {
            c.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
    }
}
