//! `cutover history` and `cutover report` as text: their columns line up as the terminal draws
//! them, with names in wide characters (CJK takes two cells a character) and long ones.

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{isolated, run_within};
use cutover::spec::{ProviderKind, Strategy};
use cutover::store::{NewRun, Outcome, RunKind, Store};
use cutover::text::width;

fn store_with_runs(state: &std::path::Path) {
    let store = Store::open(state).expect("store");
    for (deployment, environment, version) in [
        ("shop", "本番", "1.0.0"),
        ("shop", "production", "2.0.0-ベータ"),
        (
            "a-deployment-name-longer-than-thirty-cells",
            "staging",
            "1.0.0",
        ),
    ] {
        let run = store
            .create_run(&NewRun {
                deployment: deployment.into(),
                kind: RunKind::Deploy,
                name: deployment.into(),
                version: version.into(),
                strategy: Strategy::Canary,
                environment: environment.into(),
                provider: ProviderKind::Local,
                dry_run: false,
                spec_json: "{}".into(),
                plan_json: "{}".into(),
                initiator: "ana".into(),
            })
            .expect("run");
        store
            .finish_run(run, Outcome::Succeeded, "done", &[])
            .expect("finish");
    }
}

/// The terminal column at which `word` starts in `line`.
fn column(line: &str, word: &str) -> usize {
    let at = line
        .find(word)
        .unwrap_or_else(|| panic!("{word:?} not in {line:?}"));
    width(&line[..at])
}

#[test]
fn history_and_report_line_up_in_terminal_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    store_with_runs(&state);
    let run = |args: &[&str]| {
        let out = run_within(
            isolated(&state, dir.path(), args),
            args,
            Duration::from_secs(20),
        )
        .expect("ran");
        assert_eq!(out.code(), 0, "{}", out.explain());
        out.stdout
    };

    let history = run(&["history"]);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 4, "{history}");
    // Every row's strategy (and the header's) starts at the same cell.
    let at = column(lines[0], "STRATEGY");
    for l in &lines[1..] {
        assert_eq!(column(l, "canary"), at, "{history}");
    }

    let report = run(&["report"]);
    let rows: Vec<&str> = report
        .lines()
        .filter(|l| l.contains('@') || l.starts_with("all ") || l.starts_with("SCOPE"))
        .collect();
    assert_eq!(rows.len(), 5, "{report}");
    // The deployment counts' column ends at the same cell in every row, the header's included.
    let end = |l: &str, word: &str| column(l, word) + width(word);
    let at = end(rows[0], "DEPLOY");
    for l in &rows[1..] {
        let count = l.split_whitespace().nth(1).unwrap_or_else(|| panic!("{l}"));
        let start = l.find(&format!(" {count} ")).map(|b| width(&l[..b + 1]));
        assert_eq!(start.map(|s| s + width(count)), Some(at), "{report}");
    }
}
