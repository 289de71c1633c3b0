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
