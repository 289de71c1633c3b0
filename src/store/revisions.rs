//! Revisions in the store: each component's revisions per environment, their states, and the
//! one serving now.
//!
//! Owns: the `revisions` table's queries. Must not touch: runs' own rows, the journal.

use rusqlite::{params, OptionalExtension};

use super::*;

impl Store {
    // ---- revisions ----

    /// Record a new revision; returns its row id and key.
    pub fn insert_revision(&self, n: &NewRevision) -> Result<(i64, String)> {
        let ts = now_ts();
        let NewRevision {
            run,
            component,
            environment,
            version,
            dry_run,
            replicas,
            config_json,
        } = n;
        let dry_run = *dry_run;
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            tx.execute(
                "INSERT INTO revisions (rev_key, run_id, component, environment, version, dry_run, status,
                   replicas, config_json, created_at, updated_at)
                 VALUES ('', ?1, ?2, ?3, ?4, ?5, 'deploying', ?6, ?7, ?8, ?8)",
                params![run, component, environment, version, dry_run as i64, replicas.get(), config_json, ts],
            )?;
            let id = tx.last_insert_rowid();
            let key = format!("{component}@{version}.r{id}");
            tx.execute(
                "UPDATE revisions SET rev_key = ?2 WHERE rev_id = ?1",
                params![id, key],
            )?;
            tx.commit()?;
            Ok((id, key))
        })
    }

    /// Record a revision that runs on the platform though no run of this store started it
    /// (adopted as a first rollout's baseline, or started by another machine's cutover) as the
    /// active one, under the key the platform knows it by; one that is recorded already
    /// becomes active again. One transaction.
    pub fn insert_found_revision(&self, n: &NewRevision, key: &str) -> Result<i64> {
        let ts = now_ts();
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let existing: Option<i64> = tx
                .query_row(
                    "SELECT rev_id FROM revisions WHERE rev_key = ?1",
                    [key],
                    |r| r.get(0),
                )
                .optional()?;
            let id = match existing {
                Some(id) => {
                    tx.execute(
                        "UPDATE revisions SET status = 'active', updated_at = ?2 WHERE rev_id = ?1",
                        params![id, ts],
                    )?;
                    id
                }
                None => {
                    tx.execute(
                        "INSERT INTO revisions (rev_key, run_id, component, environment, version, dry_run, status,
                           replicas, config_json, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7, ?8, ?9, ?9)",
                        params![key, n.run, n.component, n.environment, n.version, n.dry_run as i64,
                            n.replicas.get(), n.config_json, ts],
                    )?;
                    tx.last_insert_rowid()
                }
            };
            tx.commit()?;
            Ok(id)
        })
    }

    pub fn set_revision_status(&self, key: &str, status: RevisionState) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE revisions SET status = ?2, updated_at = ?3 WHERE rev_key = ?1",
                params![key, status.as_str(), now_ts()],
            )
            .map(|_| ())
        })
    }

    /// Revisions of a component in an environment, newest first.
    pub fn revisions(
        &self,
        component: &str,
        environment: &str,
        dry_run: bool,
    ) -> Result<Vec<RevisionRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {REV_COLS} FROM revisions WHERE component = ?1 AND environment = ?2 AND dry_run = ?3
                 ORDER BY rev_id DESC"
            ))?;
            let rows = st.query_map(params![component, environment, dry_run as i64], rev_row)?;
            rows.collect()
        })
    }

    /// The revision serving a component now.
    pub fn active_revision(
        &self,
        component: &str,
        environment: &str,
        dry_run: bool,
    ) -> Result<Option<RevisionRow>> {
        Ok(self
            .revisions(component, environment, dry_run)?
            .into_iter()
            .find(|r| r.status == RevisionState::Active))
    }

    pub fn revision(&self, key: &str) -> Result<Option<RevisionRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {REV_COLS} FROM revisions WHERE rev_key = ?1"),
                [key],
                rev_row,
            )
            .optional()
        })
    }
}
