//! The state store failing under a run (issue 11): held locked by another connection, full, and
//! read-only. The run goes on (and rolls back when it must) without waiting on the disk, the
//! operator is told, and every line that was broadcast ends up in the journal, in order.
//!
//! Runs on the simulated provider over a real store, in real time (the faults are real SQLite
//! errors: another connection's `BEGIN EXCLUSIVE`, `PRAGMA max_page_count` for SQLITE_FULL,
//! `PRAGMA query_only` for SQLITE_READONLY); the read-only file as a real non-root OS user.

#[allow(dead_code)]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutover::engine::{Engine, Event, EventKind, Outcome, RunOptions};
use cutover::provider::simulated::{Fault, Simulated};
use cutover::spec::ValidSpec;
use cutover::store::Store;

/// The bundled canary, quick: ready in 1 s, analysis every 250 ms, two 2.5 s stages.
fn quick_canary(version: &str) -> ValidSpec {
    let text = include_str!("../specs/canary.yaml")
        .replace("'1.2.0'", &format!("'{version}'"))
        .replace("initialDelaySeconds: 30", "initialDelaySeconds: 0")
        .replace("periodSeconds: 10", "periodSeconds: 1")
        .replace("duration: 600000", "duration: 2500")
        .replace("analysisInterval: 60000", "analysisInterval: 250");
    common::load_spec(&text)
}

fn opts() -> RunOptions {
    RunOptions {
        dry_run: true,
        auto_approve: true,
        initiator: "tester".into(),
    }
}

fn real_time_engine(store: &Store, sim: Arc<Simulated>) -> Engine {
    Engine::new(cutover::engine::EngineConfig {
        store: store.clone(),
        provider: sim,
        signals: Arc::new(cutover::engine::Builtin::default()),
        virtual_clock: false,
        poll_store: false,
        governance: Default::default(),
        wall_clock_gates: false,
    })
}

/// A store with 1.1.0 serving.
async fn with_v1(faults: Vec<Fault>) -> (tempfile::TempDir, Store, Arc<Simulated>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let sim = Arc::new(Simulated::new(faults));
    let e = real_time_engine(&store, sim.clone());
    let h = e.start(quick_canary("1.1.0"), opts()).await.unwrap();
    assert_eq!(h.join.await.unwrap(), Outcome::Succeeded);
    (dir, store, sim)
}

fn is_journal_notice(k: &EventKind) -> bool {
    matches!(
        k,
        EventKind::JournalDelayed { .. }
            | EventKind::JournalCaughtUp { .. }
            | EventKind::JournalLost { .. }
    )
}

/// Every line broadcast for `run` (but the journal's own notices) is in the journal, in the
/// same order, with nothing missing and nothing extra; and the journal says it caught up.
fn assert_journal_matches(store: &Store, run: i64, heard: &[(Instant, Event)]) {
    let broadcast: Vec<(String, String)> = heard
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e.run == run && !is_journal_notice(&e.kind))
        .map(|e| (e.ts.clone(), e.kind.name().to_string()))
        .collect();
    let rows = store.events(run, 0).unwrap();
    let journaled: Vec<(String, String)> = rows
        .iter()
        .filter(|r| !r.kind.starts_with("journal_"))
        .map(|r| (r.ts.clone(), r.kind.clone()))
        .collect();
    assert_eq!(
        journaled, broadcast,
        "the journal must hold every broadcast line, in order"
    );
    assert!(
        rows.iter().any(|r| r.kind == "journal_caught_up"),
        "the delay is recorded in the journal: {:?}",
        rows.iter().map(|r| &r.kind).collect::<Vec<_>>()
    );
}

/// Events heard, with when.
type Heard = Arc<Mutex<Vec<(Instant, Event)>>>;

/// Collect every event of the engine, with when it was heard, until the run finishes.
fn collect(e: &Engine) -> (Heard, tokio::task::JoinHandle<()>) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let mut rx = e.subscribe();
    let h = heard.clone();
    let task = tokio::spawn(async move {
        while let Ok(ev) = rx.recv().await {
            let last = matches!(ev.kind, EventKind::Finished { .. });
            h.lock().unwrap().push((Instant::now(), ev));
            if last {
                break;
            }
        }
    });
    (heard, task)
}

/// Wait (up to `within`) until an event satisfying `f` has been heard.
async fn heard_one(
    heard: &Mutex<Vec<(Instant, Event)>>,
    within: Duration,
    f: impl Fn(&Event) -> bool,
) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if heard.lock().unwrap().iter().any(|(_, e)| f(e)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_does_not_stall_the_run_and_loses_no_line() {
    let (_dir, store, sim) = with_v1(vec![]).await;
    let e = real_time_engine(&store, sim.clone());
    let (heard, collector) = collect(&e);
    let h = e.start(quick_canary("1.2.0"), opts()).await.unwrap();
    let run = h.run_id;
    assert!(
        heard_one(&heard, Duration::from_secs(20), |e| matches!(
            e.kind,
            EventKind::Analysis { .. }
        ))
        .await,
        "the canary never reached its analysis"
    );
    // Another process holds the database for 3 s.
    let path = store.path().to_path_buf();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let locker = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let from = Instant::now();
        locked_tx.send(from).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        c.execute_batch("COMMIT").unwrap();
        (from, Instant::now())
    });
    let _ = locked_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    // `status` in another process says the run's journal is behind while the store is held.
    assert!(
        heard_one(&heard, Duration::from_secs(3), |e| matches!(
            e.kind,
            EventKind::JournalDelayed { .. }
        ))
        .await,
        "journal_delayed within 3 s of the lock"
    );
    let state = store.path().parent().unwrap().to_path_buf();
    let status = tokio::task::spawn_blocking(move || {
        common::cutover(&state, &["status", "--json"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&status.stdout).to_string();
    let line: serde_json::Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["run"] == run)
        .unwrap_or_else(|| {
            panic!(
                "no status line for run {run}: {text} {}",
                String::from_utf8_lossy(&status.stderr)
            )
        });
    assert!(
        line["journal_pending"]["lines"].as_u64().unwrap_or(0) > 0,
        "status shows the lines waiting: {line}"
    );
    let outcome = tokio::time::timeout(Duration::from_secs(60), h.join)
        .await
        .expect("the run must end")
        .unwrap();
    let (from, to) = locker.join().unwrap();
    collector.await.unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    let heard = heard.lock().unwrap().clone();
    // Analysis went on live while the database was held: every 250 ms, never a long stall.
    let during: Vec<Instant> = heard
        .iter()
        .filter(|(t, e)| *t >= from && *t <= to && matches!(e.kind, EventKind::Analysis { .. }))
        .map(|(t, _)| *t)
        .collect();
    assert!(
        during.len() >= 6,
        "only {} analyses were broadcast during the 3 s lock",
        during.len()
    );
    let longest = during
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    assert!(
        longest < Duration::from_millis(1200),
        "analysis stalled for {longest:?} during the lock"
    );
    eprintln!(
        "lock held {:?}: {} analyses broadcast meanwhile, longest gap {longest:?}",
        to - from,
        during.len()
    );
    // The operator was told, naming the file and the cause.
    let delayed = heard
        .iter()
        .find_map(|(_, e)| match &e.kind {
            EventKind::JournalDelayed { lines, error } => Some((*lines, error.clone())),
            _ => None,
        })
        .expect("a journal_delayed event while the store was held");
    assert!(delayed.0 > 0, "{delayed:?}");
    assert!(
        delayed.1.contains("cutover.db") && delayed.1.contains("locked"),
        "{delayed:?}"
    );
    assert!(
        heard
            .iter()
            .any(|(_, e)| matches!(e.kind, EventKind::JournalCaughtUp { .. })),
        "the operator hears that the journal caught up"
    );
    assert!(e.flush_journal(Duration::from_secs(10)).await);
    assert_journal_matches(&store, run, &heard);
    let row = store.run(run).unwrap().unwrap();
    assert_eq!(row.outcome, Some(Outcome::Succeeded));
}

/// Make the store full: not a page more (`max_page_count`), and every page it has filled.
fn fill_up(store: &Store) {
    store
        .with_conn(|c| {
            c.execute_batch("CREATE TABLE IF NOT EXISTS filler (x BLOB)")?;
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            c.pragma_update(None, "max_page_count", pages)?;
            for size in [4096, 1024, 256, 64, 16, 4, 1] {
                while c
                    .execute("INSERT INTO filler VALUES (randomblob(?1))", [size])
                    .is_ok()
                {}
            }
            Ok(())
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_mid_rollout_does_not_block_the_rollback() {
    // 1.2.0's error rate goes bad 3 s after it starts: the canary must be rolled back while the
    // store cannot take a single page more.
    let fault = Fault::parse("1.2.0:error_rate=0.3@3s").unwrap();
    let (_dir, store, sim) = with_v1(vec![fault]).await;
    let e = real_time_engine(&store, sim.clone());
    let (heard, collector) = collect(&e);
    let h = e.start(quick_canary("1.2.0"), opts()).await.unwrap();
    let run = h.run_id;
    assert!(
        heard_one(&heard, Duration::from_secs(20), |e| matches!(
            e.kind,
            EventKind::TrafficShifted { .. }
        ))
        .await,
        "the canary never took traffic"
    );
    // The disk is full from now on (SQLITE_FULL on the next page the store needs, and no room
    // left in the pages it has: the journal's lines are compressed and would fit there).
    fill_up(&store);
    let outcome = tokio::time::timeout(Duration::from_secs(60), h.join)
        .await
        .expect("the run must end")
        .unwrap();
    collector.await.unwrap();
    assert_eq!(outcome, Outcome::RolledBack);
    // Traffic is back on 1.1.0 and 1.2.0 is gone, whatever the store says.
    common::only_on(&sim, "1.1.0");
    let heard = heard.lock().unwrap().clone();
    let delayed = heard
        .iter()
        .find_map(|(_, e)| match &e.kind {
            EventKind::JournalDelayed { error, .. } => Some(error.clone()),
            _ => None,
        })
        .expect("a journal_delayed event while the disk was full");
    assert!(
        delayed.contains("cutover.db") && delayed.contains("full"),
        "{delayed}"
    );
    let note = heard.iter().find_map(|(_, e)| match &e.kind {
        EventKind::Finished { journal, .. } => Some(journal.clone()),
        _ => None,
    });
    let note = note
        .flatten()
        .expect("the finished line says lines are pending");
    assert!(note.contains("not yet written"), "{note}");
    // Nothing of the end could be written yet: the store still shows the run unfinished.
    assert_eq!(store.run(run).unwrap().unwrap().outcome, None);
    assert!(e.journal_lag().unfinished.contains(&run));
    // Space comes back: every line is written, in order, and the run's end with it.
    store
        .with_conn(|c| c.pragma_update(None, "max_page_count", 1_073_741_823))
        .unwrap();
    assert!(e.flush_journal(Duration::from_secs(10)).await);
    assert_eq!(e.journal_lag(), Default::default());
    assert_journal_matches(&store, run, &heard);
    let row = store.run(run).unwrap().unwrap();
    assert_eq!(row.outcome, Some(Outcome::RolledBack));
    let snap: cutover::engine::Snapshot = serde_json::from_str(&row.snapshot_json).unwrap();
    assert_eq!(
        snap.outcome,
        Some(Outcome::RolledBack),
        "the last snapshot is recorded"
    );
    let kinds: Vec<String> = store
        .events(run, 0)
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert!(kinds.iter().any(|k| k == "rollback_started"), "{kinds:?}");
    // The targets were let go with the run's end: a new run on them is accepted.
    let next = e.start(quick_canary("1.3.0"), opts()).await;
    assert!(next.is_ok(), "{:?}", next.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_mid_run_is_told_and_nothing_is_lost() {
    let (_dir, store, sim) = with_v1(vec![]).await;
    let before = store.events(1, 0).unwrap().len();
    let e = real_time_engine(&store, sim.clone());
    let (heard, collector) = collect(&e);
    let h = e.start(quick_canary("1.2.0"), opts()).await.unwrap();
    let run = h.run_id;
    assert!(
        heard_one(&heard, Duration::from_secs(20), |e| matches!(
            e.kind,
            EventKind::Analysis { .. }
        ))
        .await
    );
    // The store's connection may no longer write (SQLITE_READONLY) for 2 s.
    store
        .with_conn(|c| c.pragma_update(None, "query_only", true))
        .unwrap();
    let told = heard_one(&heard, Duration::from_secs(5), |e| {
        matches!(&e.kind, EventKind::JournalDelayed { error, .. }
            if error.contains("cutover.db") && error.contains("readonly") && error.contains("permissions"))
    })
    .await;
    assert!(
        told,
        "the operator is told the store is read-only, naming the file"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    store
        .with_conn(|c| c.pragma_update(None, "query_only", false))
        .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), h.join)
        .await
        .expect("the run must end")
        .unwrap();
    collector.await.unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(e.flush_journal(Duration::from_secs(10)).await);
    let heard = heard.lock().unwrap().clone();
    assert_journal_matches(&store, run, &heard);
    // What was recorded before is all still there.
    assert_eq!(store.events(1, 0).unwrap().len(), before);
}

#[test]
fn a_store_another_user_cannot_write_is_a_clear_error_naming_the_file() {
    // Root ignores file modes: the store is made by root and used by a real non-root user who
    // may read it but not write it.
    let root = cutover::identity::real_uid() == 0;
    let has_tools =
        common::skip::on_path("useradd").is_some() && common::skip::on_path("runuser").is_some();
    if !common::skip::skip_unless(
        root && has_tools,
        "store_faults::a_store_another_user_cannot_write_is_a_clear_error_naming_the_file",
        "needs root with useradd and runuser (a real user whom file modes bind)",
    ) {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    let user = format!("costore{}", std::process::id() % 100_000);
    let ok = Command::new("useradd")
        .args(["-M", "-N", "-s", "/bin/sh", &user])
        .status()
        .unwrap();
    assert!(ok.success(), "useradd {user}");
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::process::Command::new("userdel").arg(&self.0).status();
        }
    }
    let _gone = Gone(user.clone());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.path().join("state");
    let spec = common::v110(dir.path(), "canary.yaml");
    std::fs::set_permissions(&spec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let first = common::cutover(
        &state,
        &[
            "apply",
            spec.to_str().unwrap(),
            "--dry-run",
            "--auto-approve",
        ],
    )
    .output()
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let recorded = common::cutover(&state, &["history", "--json"])
        .output()
        .unwrap();
    // Readable by others, writable by root only.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in std::fs::read_dir(&state).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let out = Command::new("runuser")
        .args([
            "-u",
            &user,
            "--",
            env!("CARGO_BIN_EXE_cutover"),
            "--state-dir",
        ])
        .arg(&state)
        .args([
            "apply",
            spec.to_str().unwrap(),
            "--dry-run",
            "--auto-approve",
        ])
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("as {user}: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    let db = state.join("cutover.db");
    assert!(
        err.contains(&db.display().to_string()) && err.contains("readonly"),
        "the error names the file and says it is read-only: {err}"
    );
    // Nothing already recorded is lost.
    let after = common::cutover(&state, &["history", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&after.stdout),
        String::from_utf8_lossy(&recorded.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_before_the_store_takes_the_end_says_which_run_stays_unfinished() {
    let (_dir, store, sim) = with_v1(vec![]).await;
    let e = real_time_engine(&store, sim.clone());
    let (heard, collector) = collect(&e);
    let h = e.start(quick_canary("1.2.0"), opts()).await.unwrap();
    let run = h.run_id;
    assert!(
        heard_one(&heard, Duration::from_secs(20), |e| matches!(
            e.kind,
            EventKind::Analysis { .. }
        ))
        .await
    );
    // Another process holds the database until after this one has shut down.
    let path = store.path().to_path_buf();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(60));
        c.execute_batch("COMMIT").unwrap();
    });
    held_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(60), h.join)
        .await
        .expect("the run ends while the store is held")
        .unwrap();
    collector.await.unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    let report = e.shutdown(Duration::from_millis(500)).await;
    assert!(report.journal.lines > 0, "{:?}", report.journal);
    assert_eq!(report.journal.unfinished, vec![run]);
    assert!(
        report
            .journal
            .error
            .as_deref()
            .is_some_and(|e| e.contains("locked")),
        "{:?}",
        report.journal
    );
    assert_eq!(store.run(run).unwrap().unwrap().outcome, None);
    // While the process lives, the lines still go in once the store is free.
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert!(e.flush_journal(Duration::from_secs(10)).await);
    assert_eq!(
        store.run(run).unwrap().unwrap().outcome,
        Some(Outcome::Succeeded)
    );
}

/// A local canary (real processes behind the router) whose store is held by another process
/// for 4 s during its analysis: `apply --json` keeps printing analyses, says the journal is
/// delayed, succeeds, and every line it printed is in the journal in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_canary_goes_on_while_its_store_is_held() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let host = common::Host::new();
    let port = common::free_port();
    let spec = |version: &str| {
        let text = format!(
            "{}rollback:
  enabled: true
  automatic: true
  strategy: {{type: immediate}}
  timeout: 30s
metadata:
  canaryConfig:
    stages:
      - {{name: canary-20, percentage: 20, duration: 7s}}
      - {{name: full, percentage: 100, duration: 0}}
    metrics:
      - {{name: error_rate, threshold: 0.05, operator: lt}}
    analysisInterval: 500ms
",
            common::LocalSpec::demo(version, port).yaml()
        );
        common::write_in(host.path(), &format!("canary-{version}.yaml"), &text)
    };
    let v1 = spec("1.0.0");
    let v2 = spec("1.1.0");
    let first = common::spawn_apply(host.path(), &v1)
        .wait_with_output()
        .await
        .unwrap();
    assert!(first.status.success());
    // The canary is judged on real requests.
    let load = common::Load::start(port, 100, Duration::from_secs(40));
    let mut child = common::spawn_apply(host.path(), &v2);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let db = host.path().join("cutover.db");
    let mut printed: Vec<(Instant, serde_json::Value)> = Vec::new();
    let mut holder = None;
    let mut shifted = false;
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            // Held during the 20% stage's analysis (after the host was told the weights: the
            // host's own records are another matter).
            shifted |= v["kind"] == "traffic_shifted";
            if holder.is_none() && shifted && v["kind"] == "analysis" {
                let db = db.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                holder = Some(std::thread::spawn(move || {
                    let c = rusqlite::Connection::open(db).unwrap();
                    c.execute_batch("BEGIN EXCLUSIVE").unwrap();
                    let from = Instant::now();
                    tx.send(()).unwrap();
                    std::thread::sleep(Duration::from_secs(4));
                    c.execute_batch("COMMIT").unwrap();
                    (from, Instant::now())
                }));
                rx.recv().unwrap();
            }
            printed.push((Instant::now(), v));
        }
    };
    tokio::time::timeout(Duration::from_secs(90), read)
        .await
        .expect("apply finished within 90 s");
    let status = child.wait().await.unwrap();
    let _ = load.stop();
    let (from, to) = holder
        .expect("the canary reached its analysis")
        .join()
        .unwrap();
    let last = &printed.last().unwrap().1;
    assert_eq!(status.code(), Some(0), "{last}");
    assert_eq!(last["kind"], "finished");
    let during: Vec<Instant> = printed
        .iter()
        .filter(|(t, v)| *t >= from && *t <= to && v["kind"] == "analysis")
        .map(|(t, _)| *t)
        .collect();
    let longest = during
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    eprintln!(
        "local canary, store held {:?}: {} analyses printed meanwhile, longest gap {longest:?}",
        to - from,
        during.len()
    );
    assert!(
        during.len() >= 5,
        "{} analyses during the 4 s lock",
        during.len()
    );
    assert!(longest < Duration::from_millis(1500), "stalled {longest:?}");
    assert!(
        printed.iter().any(|(_, v)| v["kind"] == "journal_delayed"
            && v["error"]
                .as_str()
                .is_some_and(|e| e.contains("cutover.db"))),
        "apply printed a journal_delayed line naming the store"
    );
    // Every printed line is in the journal, in order.
    let run = last["run"].as_i64().unwrap();
    let store = Store::open(host.path()).unwrap();
    let journaled: Vec<(String, String)> = store
        .events(run, 0)
        .unwrap()
        .into_iter()
        .filter(|r| !r.kind.starts_with("journal_"))
        .map(|r| (r.ts, r.kind))
        .collect();
    let shown: Vec<(String, String)> = printed
        .iter()
        .map(|(_, v)| v)
        .filter(|v| !v["kind"].as_str().unwrap_or("").starts_with("journal_"))
        .map(|v| {
            (
                v["ts"].as_str().unwrap().to_string(),
                v["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(journaled, shown);
    assert_eq!(
        store.run(run).unwrap().unwrap().outcome,
        Some(Outcome::Succeeded)
    );
}

/// `apply` interrupted (SIGINT) while another process holds its store: it does not give up on
/// the store's first refusal; it says it waits for the journal, writes it once the store is
/// free, and exits 3 with the run paused in the store.
#[test]
fn an_interrupted_apply_waits_for_a_held_store_and_saves_its_run() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let v110 = common::v110(dir.path(), "canary.yaml");
    let first = common::cutover(
        &state,
        &[
            "apply",
            v110.to_str().unwrap(),
            "--dry-run",
            "--auto-approve",
        ],
    )
    .output()
    .unwrap();
    assert!(first.status.success());
    let spec = common::seed_spec("canary.yaml");
    let mut child = common::cutover(
        &state,
        &["apply", spec.to_str().unwrap(), "--dry-run", "--json"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let err = common::drain(child.stderr.take().unwrap());
    let (rx, reader) = common::lines_of(child.stdout.take().unwrap());
    common::until_line(&rx, "\"gate_waiting\"", Duration::from_secs(20));
    // Another process holds the store for 6 s from now.
    let db = state.join("cutover.db");
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute_batch("BEGIN EXCLUSIVE").unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(6));
        c.execute_batch("COMMIT").unwrap();
    });
    held_rx.recv().unwrap();
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = common::wait_exit(&mut child, Duration::from_secs(40), || {
        "apply did not exit after SIGINT".to_string()
    });
    holder.join().unwrap();
    reader.join().unwrap();
    let err = err.join().unwrap();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(
        err.contains("waiting up to") && err.contains("journal line(s)"),
        "apply says it waits for the store: {err}"
    );
    assert!(!err.contains("NOT RECORDED"), "{err}");
    let rest: Vec<String> = rx.try_iter().collect();
    let last: serde_json::Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(last["kind"], "interrupted", "{last}");
    assert_eq!(last["deployment"], "my-app-v1.2.0", "{last}");
    // The pause is recorded.
    let st = common::cutover(&state, &["status", "my-app-v1.2.0", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["status"], "paused", "{v}");
}
