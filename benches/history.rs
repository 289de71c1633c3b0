//! History at 100,000 runs: builds a store of that many finished runs (the demo's generator,
//! for many teams over a year: every run with its whole journal), then times the commands that
//! read it (`report`, `analytics ID`, `history`, `status`) as a user runs them, each a process of
//! its own (wall time and peak memory), and what the console reads for its history view.
//!
//! `cargo bench --bench history` (the store is kept in `target/tmp` and reused while it has the
//! runs asked: `HISTORY_RUNS=20000` for a smaller one). Prints one line per measure.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutover::store::Store;

const RUNS: usize = 100_000;
const REPEAT: usize = 5;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    let want: usize = std::env::var("HISTORY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RUNS);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("history-{want}"));
    let store = build(&dir, want);
    let size = store.size().unwrap_or_default();
    let per = |b: u64| b / size.events.max(1);
    println!(
        "store: {} runs, {} events; per event: {} B of journal (its table and index), {} B as stored, {} B of the whole database ({:.0} MB)",
        size.runs,
        size.events,
        per(size.journal_bytes),
        per(size.event_bytes),
        per(size.db_bytes),
        size.db_bytes as f64 / 1e6,
    );
    let newest = store
        .run_facts(None, None, None)
        .ok()
        .and_then(|f| f.iter().map(|r| r.run_id).max())
        .unwrap_or(1)
        .to_string();
    for args in [
        vec!["report"],
        vec!["report", "--format", "json"],
        vec!["report", "--env", "production"],
        vec!["report", "--days", "365"],
        vec!["analytics", newest.as_str()],
        vec!["history"],
        vec!["history", "--json"],
        vec!["status"],
    ] {
        let (wall, rss) = process(&dir, &args);
        println!(
            "cutover {:<28} median {:>7.1} ms   peak {:>6.1} MB",
            args.join(" "),
            ms(wall),
            rss as f64 / 1e6
        );
    }
    // Retention on a copy: the runs that finished more than 90 days ago lose their routine
    // analysis lines.
    // Everything in the main file first (the store runs in WAL mode).
    let _ = store.with_conn(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"));
    let copy = dir.with_file_name(format!("history-{want}-pruned"));
    let _ = std::fs::remove_dir_all(&copy);
    let _ = std::fs::create_dir_all(&copy);
    std::fs::copy(dir.join("cutover.db"), copy.join("cutover.db"))
        .unwrap_or_else(|e| panic!("cutover.db: {e}"));
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("--state-dir")
        .arg(&copy)
        .args(["prune", "--older-than", "90d"])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed();
    let pruned = Store::open(&copy)
        .and_then(|s| s.size())
        .unwrap_or_default();
    println!(
        "prune --older-than 90d: {:.1} s; {}; then {} lines, {:.0} MB as stored ({:.0} MB before; pages freed inside are reused by new lines)",
        took.as_secs_f64(),
        String::from_utf8_lossy(&out.stdout).trim(),
        pruned.events,
        pruned.event_bytes as f64 / 1e6,
        size.event_bytes as f64 / 1e6,
    );
    let _ = std::fs::remove_dir_all(&copy);
    // The console: its deployments table, and the history view (the newest 5,000 runs and the
    // delivery measures over them).
    let t = median(|| {
        let _ = cutover::tui::data::rows(&store, None);
    });
    println!("console table rows            median {:>7.1} ms", ms(t));
    let t = median(|| {
        let rows = cutover::tui::data::history(&store, cutover::tui::data::HISTORY_RUNS)
            .unwrap_or_default();
        let mut m = cutover::tui::model::Model::new("bench", true);
        m.set_history(rows);
        let _ = m.delivery();
    });
    println!("console history view          median {:>7.1} ms", ms(t));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The store at `dir`, with at least `want` runs (built when it has fewer).
fn build(dir: &Path, want: usize) -> Store {
    if let Ok(s) = Store::open(dir) {
        if s.run_facts(None, None, None).map(|f| f.len()).unwrap_or(0) >= want {
            return s;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::create_dir_all(dir);
    let store = Store::open(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    // About 1,290 runs a year per team of five services (1,250 here, so that the store holds
    // at least `want`).
    let teams = want.div_ceil(1_250);
    let start = Instant::now();
    let now = chrono::Utc::now();
    let n = cutover::demo_past::seed_teams(&store, now, 365, 7, teams)
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("built {n} runs in {:.0} s", start.elapsed().as_secs_f64());
    assert!(n >= want, "built {n} runs, fewer than the {want} asked");
    store
}

/// Median wall time of `f` over [`REPEAT`] calls (after one to warm up).
fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..REPEAT)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[REPEAT / 2]
}

/// `cutover ARGS` on the store: median wall time and the largest peak resident memory. The
/// command runs under GNU time (`/usr/bin/time`, Debian package `time`), which reports the peak
/// of the command alone (a child's own peak would include this process's memory at the fork).
fn process(dir: &Path, args: &[&str]) -> (Duration, u64) {
    let mut times = Vec::new();
    let mut peak = 0;
    for i in 0..=REPEAT {
        let t = Instant::now();
        let out = Command::new("/usr/bin/time")
            .args(["-f", "%M"])
            .arg(env!("CARGO_BIN_EXE_cutover"))
            .arg("--state-dir")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap_or_else(|e| panic!("/usr/bin/time (apt-get install time): {e}"));
        let took = t.elapsed();
        assert!(out.status.success(), "cutover {args:?} failed");
        let kb: u64 = String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        if i > 0 {
            times.push(took);
            peak = peak.max(kb * 1024);
        }
    }
    times.sort();
    (times[times.len() / 2], peak)
}
