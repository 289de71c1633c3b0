//! `cutover report --format md|csv|json [--output FILE]`: the delivery report as a file, over a
//! real store holding finished runs.

#[allow(dead_code)]
mod common;

use std::time::Duration;

use common::{isolated, run_within, Out};
use cutover::spec::{ProviderKind, Strategy};
use cutover::store::{NewRun, Outcome, RunKind, Store};

fn store_with_runs(state: &std::path::Path) {
    let store = Store::open(state).expect("store");
    // 1.2.0's spec says its change was made two hours ago: its lead time.
    let changed = (chrono::Utc::now() - chrono::Duration::hours(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let with_change = format!("{{\"metadata\":{{\"changedAt\":\"{changed}\"}}}}");
    for (version, outcome, spec_json) in [
        ("1.0.0", Outcome::Succeeded, "{}"),
        ("1.1.0", Outcome::RolledBack, "{}"),
        ("1.2.0", Outcome::Succeeded, with_change.as_str()),
    ] {
        let run = store
            .create_run(&NewRun {
                deployment: "shop".into(),
                kind: RunKind::Deploy,
                name: "shop".into(),
                version: version.into(),
                strategy: Strategy::Canary,
                environment: "production".into(),
                provider: ProviderKind::Local,
                dry_run: false,
                spec_json: spec_json.into(),
                plan_json: "{}".into(),
                initiator: "ana".into(),
            })
            .expect("run");
        store.finish_run(run, outcome, "done", &[]).expect("finish");
    }
}

fn report(state: &std::path::Path, dir: &std::path::Path, args: &[&str]) -> Out {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    run_within(isolated(state, dir, &all), &all, Duration::from_secs(20)).expect("report ran")
}

#[test]
fn the_report_is_written_as_markdown_csv_or_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    store_with_runs(&state);

    // --output alone writes Markdown.
    let md_path = dir.path().join("report.md");
    let out = report(
        &state,
        dir.path(),
        &["--output", &md_path.to_string_lossy()],
    );
    assert_eq!(out.code(), 0, "{}", out.explain());
    assert!(out.stderr.contains("wrote 2 scope(s)"), "{}", out.explain());
    let md = std::fs::read_to_string(&md_path).expect("markdown written");
    assert!(md.starts_with("# Delivery report: last 90 day(s)"), "{md}");
    let row = md
        .lines()
        .find(|l| l.starts_with("| shop@production |"))
        .expect("a row for shop in production");
    assert!(row.contains("| 3 | 66.7% | 33.3% |"), "{row}");

    // CSV: a header and one row per scope, the same numbers.
    let csv_path = dir.path().join("report.csv");
    let out = report(
        &state,
        dir.path(),
        &["--format", "csv", "--output", &csv_path.to_string_lossy()],
    );
    assert_eq!(out.code(), 0, "{}", out.explain());
    let csv = std::fs::read_to_string(&csv_path).expect("csv written");
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("scope,deployments,succeeded,failed,rolled_back"));
    let shop = lines
        .iter()
        .find(|l| l.starts_with("shop@production,"))
        .expect("shop row");
    assert!(shop.starts_with("shop@production,3,2,0,1,"), "{shop}");
    // Lead time: one sample (the other success gives no change time), about two hours.
    let cols: Vec<&str> = shop.split(',').collect();
    let at = |name: &str| lines[0].split(',').position(|h| h == name).expect(name);
    assert_eq!(cols[at("lead_time_samples")], "1", "{shop}");
    let lead: f64 = cols[at("lead_time_median_s")].parse().expect("a number");
    assert!((7190.0..7300.0).contains(&lead), "{lead}");

    // JSON to standard output, as --json prints it.
    let out = report(
        &state,
        dir.path(),
        &["--format", "json", "--env", "production"],
    );
    assert_eq!(out.code(), 0, "{}", out.explain());
    let rows: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(rows
        .iter()
        .any(|r| r["scope"] == "shop@production" && r["deployments"] == 3));
    let same = report(&state, dir.path(), &["--json", "--env", "production"]);
    assert_eq!(same.stdout, out.stdout);

    // The terminal's table is not a file format; an unwritable path is an error.
    let out = report(
        &state,
        dir.path(),
        &["--format", "text", "--output", "x.txt"],
    );
    assert_eq!(out.code(), 2, "{}", out.explain());
    let out = report(&state, dir.path(), &["--output", "/nonexistent/dir/r.md"]);
    assert_eq!(out.code(), 1, "{}", out.explain());
    assert!(
        out.stderr.contains("cannot write the report"),
        "{}",
        out.explain()
    );
}

#[test]
fn a_change_time_must_be_an_rfc_3339_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = |changed: &str| {
        format!(
            "id: shop
name: shop
version: '1.0.0'
strategy: recreate
environment: production
components:
  - {{id: api, name: api, version: '1.0.0', replicas: 1}}
infrastructure: {{provider: simulated}}
rollback: {{enabled: true, automatic: true, strategy: {{type: immediate}}, timeout: 10000}}
metadata:
  changedAt: {changed}
"
        )
    };
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, spec("'2026-11-30T14:02:00+01:00'")).expect("spec");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, spec("yesterday")).expect("spec");
    let state = dir.path().join("state");
    let run = |p: &std::path::Path| {
        let args = ["validate", &*p.to_string_lossy()];
        run_within(
            isolated(&state, dir.path(), &args),
            &args,
            Duration::from_secs(20),
        )
        .expect("validate ran")
    };
    let out = run(&good);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = run(&bad);
    assert_eq!(out.code(), 2, "{}", out.explain());
    assert!(
        out.all()
            .contains("metadata.changedAt: expected an RFC 3339 time"),
        "{}",
        out.explain()
    );
}
