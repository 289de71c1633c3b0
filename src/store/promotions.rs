//! Promotion records: which run in an environment came from which verified run in another.
//!
//! Owns: the `promotions` table's queries. Must not touch: promotion rules.

use rusqlite::{params, OptionalExtension};

use super::{now_ts, run_row, Result, RunRow, Store, RUN_COLS};

/// One promotion.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PromotionRow {
    pub run_id: i64,
    pub deployment: String,
    pub from_env: String,
    pub to_env: String,
    pub source_run: i64,
    pub actor: String,
    pub override_reason: Option<String>,
    pub ts: String,
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub fn record_promotion(
        &self,
        run: i64,
        deployment: &str,
        from_env: &str,
        to_env: &str,
        source_run: i64,
        actor: &str,
        override_reason: Option<&str>,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO promotions (run_id, deployment, from_env, to_env, source_run, actor, override_reason, ts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![run, deployment, from_env, to_env, source_run, actor, override_reason, now_ts()],
            )
            .map(|_| ())
        })
    }

    /// The promotion that made run `run`, if it was one.
    pub fn promotion(&self, run: i64) -> Result<Option<PromotionRow>> {
        self.with(|c| {
            c.query_row(
                "SELECT run_id, deployment, from_env, to_env, source_run, actor, override_reason, ts
                 FROM promotions WHERE run_id = ?1",
                [run],
                |r| {
                    Ok(PromotionRow {
                        run_id: r.get(0)?,
                        deployment: r.get(1)?,
                        from_env: r.get(2)?,
                        to_env: r.get(3)?,
                        source_run: r.get(4)?,
                        actor: r.get(5)?,
                        override_reason: r.get(6)?,
                        ts: r.get(7)?,
                    })
                },
            )
            .optional()
        })
    }

    /// The latest deployment run (not a rollback) of a deployment in an environment.
    pub fn latest_in(&self, deployment: &str, env: &str) -> Result<Option<RunRow>> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {RUN_COLS} FROM runs WHERE deployment = ?1 AND environment = ?2
                     AND kind IN ('deploy', 'promote') ORDER BY run_id DESC LIMIT 1"
                ),
                params![deployment, env],
                run_row,
            )
            .optional()
        })
    }
}
