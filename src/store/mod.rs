//! The state store: one SQLite file per state dir, the bus between cutover processes.
//!
//! Owns: runs (one per deployment attempt), revisions per component and environment, the append-only
//! event journal, commands sent from one process to the engine that owns a run, promotions, and
//! the hash-chained audit trail (`audit`). Must not touch: engine decisions, governance rules,
//! or tables other modules own (they run their own queries through [`Store::with_conn`]).
//! All calls are blocking; async callers use [`Store::call`]. A call tries again while another
//! connection holds the database, for a bounded time (`faults`); a caller that must never wait
//! on the disk queues its writes and has them written in order with [`Store::write_all`]
//! (`journal`; the engine's journal writer does).

pub mod audit;
mod codec;
mod commands;
mod facts;
pub mod faults;
mod feed;
mod import;
pub mod journal;
mod kinds;
mod lag;
mod locks;
pub mod modes;
mod promotions;
mod prune;
mod revisions;
mod schema;
mod size;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

pub use facts::RunFacts;
pub use faults::Fault;
pub use feed::FeedEvent;
pub use import::PastRun;
pub use journal::Write;
pub use kinds::{Outcome, RevisionState, RunKind, Status};
pub use lag::LagNote;
pub use locks::Holder;
pub use promotions::PromotionRow;
pub use size::Size;

use crate::spec::{ProviderKind, Replicas, Strategy};
use kinds::{opt_word, word};

pub use schema::VERSION as SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Sql(#[from] rusqlite::Error),
    /// A query on the database file failed; names the file (and, for a fault that may pass,
    /// what to do about it).
    #[error("state store {}: {error}{}", path.display(), hint(error))]
    Db {
        path: PathBuf,
        /// (Not a `source`: its text is already in this error's.)
        error: rusqlite::Error,
    },
    #[error("state store: cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("state store schema version {found} is newer than this cutover understands ({supported}); upgrade cutover")]
    TooNew { found: i64, supported: i64 },
    #[error("state store: background task failed: {0}")]
    Join(String),
    #[error("state store: {0}")]
    Data(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

fn hint(e: &rusqlite::Error) -> String {
    match Fault::of(e) {
        Some(f @ (Fault::Full | Fault::ReadOnly)) => format!(" ({})", f.hint()),
        _ => String::new(),
    }
}

impl StoreError {
    /// The passing fault behind this error (busy, full, read-only, I/O), if it is one: a write
    /// that failed so can be tried again later.
    pub fn fault(&self) -> Option<Fault> {
        match self {
            StoreError::Sql(e) | StoreError::Db { error: e, .. } => Fault::of(e),
            _ => None,
        }
    }
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

/// A stored RFC 3339 timestamp (events, runs, gates) as UTC. The form this store writes
/// (`2026-12-01T10:00:00.123Z`, or without the milliseconds) is read directly; any other RFC
/// 3339 text goes through chrono's parser.
pub fn parse_ts(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    utc_ts(ts).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(ts)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z`, the form [`now_ts`] writes.
fn utc_ts(ts: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let b = ts.as_bytes();
    if !(b.len() == 20 || b.len() == 24) || b[b.len() - 1] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let seps = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if seps.iter().any(|(i, c)| b[*i] != *c) {
        return None;
    }
    let ms = if b.len() == 24 {
        if b[19] != b'.' {
            return None;
        }
        num(20, 23)?
    } else {
        0
    };
    chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?
        .and_hms_milli_opt(num(11, 13)?, num(14, 16)?, num(17, 19)?, ms)
        .map(|t| t.and_utc())
}

/// RFC 3339 now, in UTC with milliseconds.
pub fn now_ts() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRow {
    pub run_id: i64,
    pub deployment: String,
    pub kind: RunKind,
    pub name: String,
    pub version: String,
    pub strategy: Strategy,
    pub environment: String,
    pub provider: ProviderKind,
    pub dry_run: bool,
    pub status: Status,
    pub step: i64,
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
    pub initiator: String,
    pub owner_pid: Option<i64>,
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    #[serde(skip)]
    pub spec_json: String,
    #[serde(skip)]
    pub plan_json: String,
    #[serde(skip)]
    pub snapshot_json: String,
}

impl RunRow {
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Whether a live process drives this run: it is unfinished and the process that owns it
    /// still exists. Only such a run answers commands (approve, pause, ...); any other
    /// unfinished run waits to be taken over (`resume`) or rolled back.
    pub fn has_live_driver(&self) -> bool {
        !self.is_finished() && self.owner_pid.is_some_and(pid_alive)
    }
}

pub(crate) const RUN_COLS: &str = "run_id, deployment, kind, name, version, strategy, environment, provider, dry_run, status, step, outcome, reason, initiator, owner_pid, started_at, updated_at, finished_at, spec_json, plan_json, snapshot_json";

pub(crate) fn run_row(r: &Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        run_id: r.get(0)?,
        deployment: r.get(1)?,
        kind: word(r, 2)?,
        name: r.get(3)?,
        version: r.get(4)?,
        strategy: word(r, 5)?,
        environment: r.get(6)?,
        provider: word(r, 7)?,
        dry_run: r.get::<_, i64>(8)? != 0,
        status: word(r, 9)?,
        step: r.get(10)?,
        outcome: opt_word(r, 11)?,
        reason: r.get(12)?,
        initiator: r.get(13)?,
        owner_pid: r.get(14)?,
        started_at: r.get(15)?,
        updated_at: r.get(16)?,
        finished_at: r.get(17)?,
        spec_json: r.get(18)?,
        plan_json: r.get(19)?,
        snapshot_json: r.get(20)?,
    })
}

/// A run's last journal line, recorded with its outcome.
#[derive(Debug, Clone)]
pub struct LastWords<'a> {
    pub ts: &'a str,
    pub kind: &'a str,
    pub json: &'a str,
    pub step: usize,
    pub snapshot_json: &'a str,
    pub audit: Option<&'a audit::Entry>,
}

/// What a new run records.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub deployment: String,
    pub kind: RunKind,
    pub name: String,
    pub version: String,
    pub strategy: Strategy,
    pub environment: String,
    pub provider: ProviderKind,
    pub dry_run: bool,
    pub spec_json: String,
    pub plan_json: String,
    pub initiator: String,
}

/// What a new revision records.
#[derive(Debug, Clone)]
pub struct NewRevision {
    pub run: i64,
    pub component: String,
    pub environment: String,
    pub version: String,
    pub dry_run: bool,
    pub replicas: Replicas,
    pub config_json: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionRow {
    pub rev_id: i64,
    pub rev_key: String,
    pub run_id: i64,
    pub component: String,
    pub environment: String,
    pub version: String,
    pub dry_run: bool,
    pub status: RevisionState,
    pub replicas: Replicas,
    pub created_at: String,
    #[serde(skip)]
    pub config_json: String,
}

impl RevisionRow {
    /// Failed or rolled back: never a rollback target.
    pub fn is_bad(&self) -> bool {
        self.status.is_bad()
    }
}

const REV_COLS: &str = "rev_id, rev_key, run_id, component, environment, version, dry_run, status, replicas, created_at, config_json";

fn rev_row(r: &Row) -> rusqlite::Result<RevisionRow> {
    Ok(RevisionRow {
        rev_id: r.get(0)?,
        rev_key: r.get(1)?,
        run_id: r.get(2)?,
        component: r.get(3)?,
        environment: r.get(4)?,
        version: r.get(5)?,
        dry_run: r.get::<_, i64>(6)? != 0,
        status: word(r, 7)?,
        replicas: {
            let n: i64 = r.get(8)?;
            Replicas::try_from(n).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    8,
                    rusqlite::types::Type::Integer,
                    e.into(),
                )
            })?
        },
        created_at: r.get(9)?,
        config_json: r.get(10)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub seq: i64,
    pub run_id: i64,
    pub ts: String,
    pub kind: String,
    pub json: String,
}

fn event_row(r: &Row) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: r.get(0)?,
        run_id: r.get(1)?,
        ts: r.get(2)?,
        kind: r.get(3)?,
        json: codec::column(r, 4)?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandRow {
    pub id: i64,
    pub run_id: i64,
    pub kind: String,
    pub args_json: String,
    pub actor: String,
    pub created_at: String,
    pub result: Option<String>,
}

impl Store {
    /// Open (creating if needed) the store in a state dir.
    pub fn open(dir: &Path) -> Result<Store> {
        create_private_dir(dir)?;
        let shared = modes::check_dir(dir)?;
        let path = dir.join("cutover.db");
        let at = |error| StoreError::Db {
            path: path.clone(),
            error,
        };
        let mut conn = Connection::open(&path).map_err(at)?;
        // Short: a busy call is tried again by `with` (and a queued write by its writer), so no
        // call blocks a thread for long on another process's lock.
        conn.busy_timeout(faults::BUSY_TIMEOUT).map_err(at)?;
        faults::retry_busy(|| conn.pragma_update(None, "journal_mode", "WAL")).map_err(at)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(at)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(at)?;
        schema::migrate(&mut conn).map_err(|e| match e {
            StoreError::Sql(e) => at(e),
            other => other,
        })?;
        modes::fix_files(dir, shared);
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes whenever another connection (another process) commits to the database: a
    /// reader can skip re-reading while it stays the same.
    pub fn data_version(&self) -> Result<i64> {
        self.with(|c| c.query_row("PRAGMA data_version", [], |r| r.get(0)))
    }

    /// Run `f` on the connection; while another connection holds the database, try again
    /// with backoff for up to [`faults::PATIENCE`], letting go of the connection in between.
    /// (`f` may run more than once: a transaction in it is rolled back on each failure.)
    fn with<T>(&self, f: impl Fn(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        faults::retry_busy(|| self.once_raw(&f)).map_err(|e| self.at(e))
    }

    /// One try of `f` on the connection, no retry: for a caller that retries in its own way.
    fn once<T>(&self, f: impl Fn(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.once_raw(&f).map_err(|e| self.at(e))
    }

    fn once_raw<T>(&self, f: &impl Fn(&Connection) -> rusqlite::Result<T>) -> rusqlite::Result<T> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        f(&conn)
    }

    fn at(&self, error: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            error,
        }
    }

    /// Run `f` on the store's connection (blocking; serialized with every other call on this
    /// handle; tried again while the database is busy, so `f` may run more than once): for a
    /// module that owns its own tables (`local::table`) and their queries.
    pub fn with_conn<T>(&self, f: impl Fn(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        self.with(f)
    }

    /// Run a blocking store call off the async runtime's threads.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T> + Send + 'static,
    {
        let s = self.clone();
        tokio::task::spawn_blocking(move || f(&s))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))?
    }

    // ---- runs ----

    pub fn create_run(&self, n: &NewRun) -> Result<i64> {
        self.with(|c| insert_run(c, n))
    }

    pub fn update_run(
        &self,
        run: i64,
        status: Status,
        step: usize,
        snapshot_json: &str,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?2, step = ?3, snapshot_json = ?4, updated_at = ?5 WHERE run_id = ?1",
                params![run, status.as_str(), step as i64, snapshot_json, now_ts()],
            )
            .map(|_| ())
        })
    }

    /// Record how a run ended and, in the same transaction, where its revisions now stand
    /// (the new one active, the old one retired, ...): either all of it is recorded or none.
    pub fn finish_run(
        &self,
        run: i64,
        outcome: Outcome,
        reason: &str,
        revisions: &[(String, RevisionState)],
    ) -> Result<()> {
        self.finish_run_journaled(run, outcome, reason, revisions, None)
    }

    /// [`Store::finish_run`], with the run's last words (its `finished` event, its snapshot and
    /// audit entry) in the same transaction: a crash never leaves an outcome without its event,
    /// nor an event without its outcome.
    pub fn finish_run_journaled(
        &self,
        run: i64,
        outcome: Outcome,
        reason: &str,
        revisions: &[(String, RevisionState)],
        last: Option<&LastWords>,
    ) -> Result<()> {
        let ts = now_ts();
        self.with(|c| {
            let tx =
                rusqlite::Transaction::new_unchecked(c, rusqlite::TransactionBehavior::Immediate)?;
            if let Some(w) = last {
                tx.execute(
                    "INSERT INTO events (run_id, ts, kind, json) VALUES (?1, ?2, ?3, ?4)",
                    params![run, w.ts, w.kind, codec::encode(w.json)],
                )?;
                tx.execute(
                    "UPDATE runs SET step = ?2, snapshot_json = ?3 WHERE run_id = ?1",
                    params![run, w.step as i64, w.snapshot_json],
                )?;
                if let Some(a) = w.audit {
                    audit::insert_audit(&tx, a)?;
                }
            }
            finish_in(&tx, run, outcome, reason, revisions, &ts)?;
            tx.commit()
        })
    }

    /// The owning process lets go of a run it did not finish (interrupted).
    pub fn release_run(&self, run: i64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET owner_pid = NULL, updated_at = ?2 WHERE run_id = ?1",
                params![run, now_ts()],
            )
            .map(|_| ())
        })
    }

    /// Take over an unfinished run whose owner is gone (released, or its process died).
    /// Returns the run as it was, or `None` when it finished or a live process owns it.
    pub fn claim_run(&self, run: i64, pid: i64) -> Result<Option<RunRow>> {
        let Some(row) = self.run(run)? else {
            return Ok(None);
        };
        if row.is_finished() || row.owner_pid.is_some_and(|p| p != pid && pid_alive(p)) {
            return Ok(None);
        }
        // Only if nobody claimed it since we looked.
        let changed = self.with(|c| {
            c.execute(
                "UPDATE runs SET owner_pid = ?2, updated_at = ?3
                 WHERE run_id = ?1 AND outcome IS NULL AND owner_pid IS ?4",
                params![run, pid, now_ts(), row.owner_pid],
            )
        })?;
        Ok((changed == 1).then_some(row))
    }

    /// The revisions a run created.
    pub fn run_revisions(&self, run: i64) -> Result<Vec<RevisionRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {REV_COLS} FROM revisions WHERE run_id = ?1 ORDER BY rev_id"
            ))?;
            let rows = st.query_map([run], rev_row)?;
            rows.collect()
        })
    }

    pub fn run(&self, run: i64) -> Result<Option<RunRow>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE run_id = ?1"),
                [run],
                run_row,
            )
            .optional()
        })
    }

    /// `ID` is the latest run of that deployment; `ID#N` or a bare run number names one run.
    pub fn find_run(&self, ident: &str) -> Result<Option<RunRow>> {
        if let Some((dep, n)) = ident.rsplit_once('#') {
            let Ok(n) = n.parse::<i64>() else {
                return Ok(None);
            };
            return Ok(self.run(n)?.filter(|r| r.deployment == dep));
        }
        let latest = self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {RUN_COLS} FROM runs WHERE deployment = ?1 ORDER BY run_id DESC LIMIT 1"
                ),
                [ident],
                run_row,
            )
            .optional()
        })?;
        if latest.is_some() {
            return Ok(latest);
        }
        match ident.parse::<i64>() {
            Ok(n) => self.run(n),
            Err(_) => Ok(None),
        }
    }

    /// Runs, newest first; optionally in one environment.
    pub fn runs(&self, env: Option<&str>, limit: usize) -> Result<Vec<RunRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE (?1 IS NULL OR environment = ?1)
                 ORDER BY run_id DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![env, limit as i64], run_row)?;
            rows.collect()
        })
    }

    /// Runs that have not finished.
    pub fn active_runs(&self) -> Result<Vec<RunRow>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE outcome IS NULL ORDER BY run_id"
            ))?;
            let rows = st.query_map([], run_row)?;
            rows.collect()
        })
    }

    // ---- events ----

    pub fn append_event(&self, run: i64, ts: &str, kind: &str, json: &str) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO events (run_id, ts, kind, json) VALUES (?1, ?2, ?3, ?4)",
                params![run, ts, kind, codec::encode(json)],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// The newest `limit` events of a run, oldest first.
    pub fn recent_events(&self, run: i64, limit: usize) -> Result<Vec<EventRow>> {
        let mut rows = self.with(|c| {
            let mut st = c.prepare(
                "SELECT seq, run_id, ts, kind, json FROM events WHERE run_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![run, limit as i64], event_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        rows.reverse();
        Ok(rows)
    }

    pub fn events(&self, run: i64, after_seq: i64) -> Result<Vec<EventRow>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT seq, run_id, ts, kind, json FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = st.query_map(params![run, after_seq], event_row)?;
            rows.collect()
        })
    }
}

/// Insert a run row (owned by this process); its id.
fn insert_run(c: &Connection, n: &NewRun) -> rusqlite::Result<i64> {
    let ts = now_ts();
    c.execute(
        "INSERT INTO runs (deployment, kind, name, version, strategy, environment, provider, dry_run,
           spec_json, plan_json, status, initiator, owner_pid, started_at, updated_at, changed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending', ?11, ?12, ?13, ?13,
           CASE WHEN json_valid(?9) AND json_type(?9, '$.metadata.changedAt') = 'text'
             THEN json_extract(?9, '$.metadata.changedAt') END)",
        params![
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
            n.initiator,
            std::process::id() as i64,
            ts
        ],
    )?;
    Ok(c.last_insert_rowid())
}

/// Record a run's end inside a caller's transaction: its revisions' states, its outcome, and
/// its targets let go.
fn finish_in(
    tx: &Connection,
    run: i64,
    outcome: Outcome,
    reason: &str,
    revisions: &[(String, RevisionState)],
    ts: &str,
) -> rusqlite::Result<()> {
    set_states(tx, revisions, ts)?;
    tx.execute(
        "UPDATE runs SET status = ?2, outcome = ?2, reason = ?3, finished_at = ?4, updated_at = ?4,
           owner_pid = NULL WHERE run_id = ?1",
        params![run, outcome.as_str(), reason, ts],
    )?;
    tx.execute("DELETE FROM target_locks WHERE run_id = ?1", [run])?;
    Ok(())
}

/// Set revisions' states inside a caller's transaction.
fn set_states(
    tx: &Connection,
    states: &[(String, RevisionState)],
    ts: &str,
) -> rusqlite::Result<()> {
    for (key, state) in states {
        tx.execute(
            "UPDATE revisions SET status = ?2, updated_at = ?3 WHERE rev_key = ?1",
            params![key, state.as_str(), ts],
        )?;
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })
}

/// Whether the process that owns a run is still alive (Linux: /proc).
pub fn pid_alive(pid: i64) -> bool {
    pid > 0 && Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_in_the_stores_own_form_read_like_any_rfc_3339_text() {
        for ts in [
            "2026-12-01T10:00:00.123Z",
            "2026-12-01T10:00:00Z",
            "2024-02-29T23:59:59.999Z",
            "2026-12-01T11:00:00+01:00",
            "2026-12-01T10:00:00.5Z",
        ] {
            let chrono = chrono::DateTime::parse_from_rfc3339(ts)
                .ok()
                .map(|t| t.with_timezone(&chrono::Utc));
            assert_eq!(super::parse_ts(ts), chrono, "{ts}");
        }
        for bad in ["2026-13-01T10:00:00Z", "2026-12-01T10:00:0xZ", ""] {
            assert_eq!(super::parse_ts(bad), None, "{bad}");
        }
    }

    use super::*;
    use std::time::Duration;

    pub(super) fn new_run(dep: &str) -> NewRun {
        NewRun {
            deployment: dep.into(),
            kind: RunKind::Deploy,
            name: "n".into(),
            version: "1".into(),
            strategy: Strategy::Canary,
            environment: "dev".into(),
            provider: ProviderKind::Simulated,
            dry_run: true,
            spec_json: "{}".into(),
            plan_json: "{}".into(),
            initiator: "me".into(),
        }
    }

    #[test]
    fn a_call_waits_out_a_short_lock_and_gives_up_on_a_long_one_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let hold = |d: Duration| {
            let path = s.path().to_path_buf();
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                let c = Connection::open(path).unwrap();
                c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                tx.send(()).unwrap();
                std::thread::sleep(d);
                c.execute_batch("COMMIT").unwrap();
            });
            rx.recv().unwrap();
            t
        };
        // Held for 1 s: tried again until it goes through.
        let t = hold(Duration::from_secs(1));
        let t0 = std::time::Instant::now();
        s.create_run(&new_run("app")).unwrap();
        assert!(
            t0.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t0.elapsed()
        );
        t.join().unwrap();
        // Held for longer than the call's patience: a busy fault, naming the file, in time.
        let t = hold(faults::PATIENCE + Duration::from_secs(2));
        let t0 = std::time::Instant::now();
        let err = s.create_run(&new_run("app")).unwrap_err();
        let took = t0.elapsed();
        assert_eq!(err.fault(), Some(Fault::Busy), "{err}");
        assert!(err.to_string().contains("cutover.db"), "{err}");
        assert!(
            took < faults::PATIENCE + faults::MAX_PAUSE + Duration::from_millis(500),
            "{took:?}"
        );
        // Reads go on meanwhile (WAL).
        assert_eq!(s.runs(None, 10).unwrap().len(), 1);
        t.join().unwrap();
    }

    #[test]
    fn runs_revisions_events_and_commands_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let r1 = s.create_run(&new_run("app")).unwrap();
        let r2 = s.create_run(&new_run("app")).unwrap();
        assert_eq!(s.find_run("app").unwrap().unwrap().run_id, r2);
        assert_eq!(
            s.find_run(&format!("app#{r1}")).unwrap().unwrap().run_id,
            r1
        );
        assert!(s.find_run("nope").unwrap().is_none());
        let (_, key) = s
            .insert_revision(&NewRevision {
                run: r1,
                component: "api".into(),
                environment: "dev".into(),
                version: "1".into(),
                dry_run: true,
                replicas: Replicas::new(3).unwrap(),
                config_json: "{}".into(),
            })
            .unwrap();
        s.set_revision_status(&key, RevisionState::Active).unwrap();
        assert_eq!(
            s.active_revision("api", "dev", true)
                .unwrap()
                .unwrap()
                .rev_key,
            key
        );
        assert!(s.active_revision("api", "dev", false).unwrap().is_none());
        for k in ["x", "y", "z"] {
            s.append_event(r1, &now_ts(), k, "{}").unwrap();
        }
        assert_eq!(s.events(r1, 0).unwrap().len(), 3);
        let recent: Vec<String> = s
            .recent_events(r1, 2)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(recent, ["y", "z"]);
        let c = s.enqueue_command(r2, "pause", "{}", "me").unwrap();
        assert_eq!(s.take_commands(&[r2]).unwrap().len(), 1);
        assert!(s.take_commands(&[r2]).unwrap().is_empty());
        s.complete_command(c, "ok").unwrap();
        assert_eq!(s.command_result(c).unwrap().as_deref(), Some("ok"));
        s.finish_run(r1, Outcome::Succeeded, "done", &[]).unwrap();
        assert_eq!(s.active_runs().unwrap().len(), 1);
        // Reopening keeps everything and does not re-run migrations.
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.runs(None, 10).unwrap().len(), 2);
    }
}
