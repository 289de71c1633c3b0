//! Versioned migrations of the state store.
//!
//! Owns: the SQL schema and its upgrade path (`PRAGMA user_version`). Must not touch: queries.

use rusqlite::Connection;

/// Each entry upgrades the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: deployments (one row per run), revisions, the event journal, commands between processes.
    "CREATE TABLE runs (
        run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment  TEXT NOT NULL,
        kind        TEXT NOT NULL DEFAULT 'deploy',
        name        TEXT NOT NULL,
        version     TEXT NOT NULL,
        strategy    TEXT NOT NULL,
        environment TEXT NOT NULL,
        provider    TEXT NOT NULL,
        dry_run     INTEGER NOT NULL DEFAULT 0,
        spec_json   TEXT NOT NULL,
        plan_json   TEXT NOT NULL,
        status      TEXT NOT NULL,
        step        INTEGER NOT NULL DEFAULT 0,
        snapshot_json TEXT NOT NULL DEFAULT '{}',
        outcome     TEXT,
        reason      TEXT,
        initiator   TEXT NOT NULL,
        owner_pid   INTEGER,
        started_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE INDEX runs_by_deployment ON runs(deployment, run_id);
    CREATE INDEX runs_by_env ON runs(environment, run_id);
    CREATE TABLE revisions (
        rev_id      INTEGER PRIMARY KEY AUTOINCREMENT,
        rev_key     TEXT NOT NULL UNIQUE,
        run_id      INTEGER NOT NULL REFERENCES runs(run_id),
        component   TEXT NOT NULL,
        environment TEXT NOT NULL,
        version     TEXT NOT NULL,
        dry_run     INTEGER NOT NULL DEFAULT 0,
        status      TEXT NOT NULL,
        replicas    INTEGER NOT NULL,
        config_json TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX revisions_by_component ON revisions(component, environment, dry_run, rev_id);
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id  INTEGER NOT NULL REFERENCES runs(run_id),
        ts      TEXT NOT NULL,
        kind    TEXT NOT NULL,
        json    TEXT NOT NULL
    );
    CREATE INDEX events_by_run ON events(run_id, seq);
    CREATE TABLE commands (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      INTEGER NOT NULL REFERENCES runs(run_id),
        kind        TEXT NOT NULL,
        args_json   TEXT NOT NULL,
        actor       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        consumed_at TEXT,
        result      TEXT
    );
    CREATE INDEX commands_pending ON commands(run_id, consumed_at);",
    // 2: what the local host runs, so a restarted host can replace it cleanly.
    "CREATE TABLE host_revisions (
        rev_key    TEXT PRIMARY KEY,
        component  TEXT NOT NULL,
        spec_json  TEXT NOT NULL,
        replicas   INTEGER NOT NULL,
        weight     INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    );",
    // 3: the audit trail, a hash chain, and its head (to notice the newest records removed).
    "CREATE TABLE audit (
        seq         INTEGER PRIMARY KEY,
        ts          TEXT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        deployment  TEXT NOT NULL,
        run_id      INTEGER,
        environment TEXT NOT NULL,
        detail_json TEXT NOT NULL,
        prev_hash   TEXT NOT NULL,
        hash        TEXT NOT NULL
    );
    CREATE TABLE audit_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  INTEGER NOT NULL,
        hash TEXT NOT NULL
    );",
    // 4: promotions between environments: which run came from which verified run.
    "CREATE TABLE promotions (
        run_id          INTEGER PRIMARY KEY REFERENCES runs(run_id),
        deployment      TEXT NOT NULL,
        from_env        TEXT NOT NULL,
        to_env          TEXT NOT NULL,
        source_run      INTEGER NOT NULL REFERENCES runs(run_id),
        actor           TEXT NOT NULL,
        override_reason TEXT,
        ts              TEXT NOT NULL
    );
    CREATE INDEX promotions_by_env ON promotions(to_env, run_id);",
    // 5: one driver per target (a component in an environment on a provider): the run that
    // holds each target until it finishes.
    "CREATE TABLE target_locks (
        target      TEXT PRIMARY KEY,
        run_id      INTEGER NOT NULL REFERENCES runs(run_id),
        acquired_at TEXT NOT NULL
    );",
    // 6: what reports read of each run, in an index of its own (a report over 100,000 runs
    // reads the index, not the runs' specs and snapshots), with the spec's
    // `metadata.changedAt` kept as a column.
    "ALTER TABLE runs ADD COLUMN changed_at TEXT;
    UPDATE runs SET changed_at = json_extract(spec_json, '$.metadata.changedAt')
      WHERE json_valid(spec_json)
        AND json_type(spec_json, '$.metadata.changedAt') = 'text';
    CREATE INDEX runs_facts ON runs(dry_run, environment, deployment, run_id, kind, outcome,
      started_at, finished_at, changed_at);",
];

/// The schema version this build writes.
pub const VERSION: i64 = MIGRATIONS.len() as i64;

/// Bring the database up to [`VERSION`]; refuse a newer one.
pub fn migrate(conn: &mut Connection) -> Result<(), super::StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > VERSION {
        return Err(super::StoreError::TooNew {
            found: current,
            supported: VERSION,
        });
    }
    if current == VERSION {
        return Ok(());
    }
    // Processes opening a new state dir at the same moment migrate the same file: each takes the
    // write lock first and reads the version again under it, so every migration runs once.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store written before version 6 gets each run's `metadata.changedAt` as a column, and
    /// the reports' facts read it.
    #[test]
    fn version_6_keeps_the_change_time_of_runs_recorded_before_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("cutover.db");
        let mut c = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
        for sql in &MIGRATIONS[..5] {
            c.execute_batch(sql).unwrap_or_else(|e| panic!("{e}"));
        }
        c.pragma_update(None, "user_version", 5)
            .unwrap_or_else(|e| panic!("{e}"));
        for (spec, dry) in [
            (r#"{"metadata":{"changedAt":"2026-11-30T08:00:00Z"}}"#, 0),
            (r#"{"metadata":{"changedAt":17}}"#, 0),
            ("not json", 0),
            ("{}", 1),
        ] {
            c.execute(
                "INSERT INTO runs (deployment, name, version, strategy, environment, provider,
                   dry_run, spec_json, plan_json, status, initiator, started_at, updated_at)
                 VALUES ('shop', 'shop', '1.0.0', 'canary', 'prod', 'local', ?2, ?1, '{}',
                   'succeeded', 'alice', '2026-11-30T09:00:00Z', '2026-11-30T09:00:00Z')",
                rusqlite::params![spec, dry],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        migrate(&mut c).unwrap_or_else(|e| panic!("{e}"));
        drop(c);
        let store = crate::store::Store::open(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let facts = store
            .run_facts(None, None, None)
            .unwrap_or_else(|e| panic!("{e}"));
        // The dry run left out; only a text change time is kept.
        let mut changed: Vec<(i64, Option<String>)> = facts
            .iter()
            .map(|f| (f.run_id, f.changed_at.map(|t| t.to_rfc3339())))
            .collect();
        changed.sort();
        assert_eq!(
            changed,
            [
                (1, Some("2026-11-30T08:00:00+00:00".into())),
                (2, None),
                (3, None)
            ]
        );
        assert_eq!(
            store
                .run_facts(Some("prod"), Some("nope"), None)
                .unwrap_or_else(|e| panic!("{e}")),
            []
        );
    }
}
