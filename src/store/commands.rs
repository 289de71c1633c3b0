//! Commands in the store: what one process asks of the engine that owns a run, and its answer.
//!
//! Owns: the `commands` table's queries. Must not touch: what a command does (the engine).

use rusqlite::params;

use super::*;

impl Store {
    // ---- commands ----

    pub fn enqueue_command(
        &self,
        run: i64,
        kind: &str,
        args_json: &str,
        actor: &str,
    ) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO commands (run_id, kind, args_json, actor, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run, kind, args_json, actor, now_ts()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Commands not yet taken, for the given runs; marks them taken.
    pub fn take_commands(&self, runs: &[i64]) -> Result<Vec<CommandRow>> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let list = runs
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let rows: Vec<CommandRow> = {
                let mut st = tx.prepare(&format!(
                    "SELECT id, run_id, kind, args_json, actor, created_at, result FROM commands
                     WHERE consumed_at IS NULL AND run_id IN ({list}) ORDER BY id"
                ))?;
                let rows = st.query_map([], |r| {
                    Ok(CommandRow {
                        id: r.get(0)?,
                        run_id: r.get(1)?,
                        kind: r.get(2)?,
                        args_json: r.get(3)?,
                        actor: r.get(4)?,
                        created_at: r.get(5)?,
                        result: r.get(6)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let ts = now_ts();
            for row in &rows {
                tx.execute(
                    "UPDATE commands SET consumed_at = ?2 WHERE id = ?1",
                    params![row.id, ts],
                )?;
            }
            tx.commit()?;
            Ok(rows)
        })
    }

    pub fn complete_command(&self, id: i64, result: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE commands SET result = ?2 WHERE id = ?1",
                params![id, result],
            )
            .map(|_| ())
        })
    }

    pub fn command_result(&self, id: i64) -> Result<Option<String>> {
        self.with(|c| {
            c.query_row("SELECT result FROM commands WHERE id = ?1", [id], |r| {
                r.get::<_, Option<String>>(0)
            })
        })
    }
}
