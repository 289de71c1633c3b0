//! `cutover analytics ID [--json]` and `cutover report [--env E] [--days N] [--json]`: numbers
//! from the journal, for one run and over history.
//!
//! Owns: reading the store for the analytics module and printing its results. Must not touch:
//! the computations (`cutover::analytics`).

use std::path::Path;

use anyhow::Result;

use super::{open_store, INVALID, OK};
use cutover::analytics::{report as rep, run as one};
use cutover::engine::Event;

fn fact(r: cutover::store::RunFacts) -> Option<rep::Fact> {
    r.into()
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.0}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn dur(v: Option<f64>) -> String {
    v.map(|s| cutover::spec::human((s * 1000.0) as u64))
        .unwrap_or_else(|| "-".into())
}

pub fn analytics(dir: &Path, id: &str, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let Some(r) = store.find_run(id)? else {
        eprintln!("no deployment `{id}` in {}", dir.display());
        return Ok(INVALID);
    };
    let events: Vec<Event> = store
        .events(r.run_id, 0)?
        .iter()
        .filter_map(|e| serde_json::from_str(&e.json).ok())
        .collect();
    let a = one::analyse(r.run_id, &r.deployment, &events);
    let history: Vec<rep::Fact> = store
        .run_facts(Some(&r.environment), Some(&r.deployment), None)?
        .into_iter()
        .filter_map(fact)
        .collect();
    let place = rep::report(&history, 36_500, chrono::Utc::now())
        .into_iter()
        .next();
    if json {
        out!("{}", serde_json::json!({"run": a, "history": place}));
        return Ok(OK);
    }
    out!(
        "{} run #{} {} in {} ({}): {}",
        r.deployment,
        r.run_id,
        r.version,
        r.environment,
        r.strategy,
        a.outcome.map_or(r.status, |o| o.status())
    );
    if let Some(reason) = &a.reason {
        out!("  {reason}");
    }
    out!(
        "  took {}; waited at gates {}; paused {}; {} traffic shift(s); {} restart(s)",
        dur(a.duration_s),
        dur(Some(a.gate_wait_s)),
        dur(Some(a.paused_s)),
        a.traffic_shifts,
        a.restarts
    );
    out!("  steps:");
    for (d, s) in &a.steps {
        out!("    {:>8}  {d}", dur(Some(*s)));
    }
    if !a.verdicts.is_empty() {
        out!("  verdicts (pass/fail/no data/error):");
        for (name, c) in &a.verdicts {
            out!(
                "    {name:<24} {}/{}/{}/{}",
                c.pass,
                c.fail,
                c.no_data,
                c.error
            );
        }
    }
    for d in &a.decisions {
        out!("  decision: {d}");
    }
    for x in &a.approvals {
        out!("  approved {x}");
    }
    if let Some(p) = place {
        out!(
            "  {} in {}: {} deployment(s), success {}, change fail rate {}, median {}, recovery {}",
            r.deployment,
            r.environment,
            p.deployments,
            pct(p.success_rate),
            pct(p.change_fail_rate),
            dur(p.median_duration_s),
            dur(p.recovery_median_s)
        );
    }
    Ok(OK)
}

pub fn report(
    dir: &Path,
    env: Option<&str>,
    days: i64,
    format: crate::ReportFormat,
    output: Option<&Path>,
) -> Result<u8> {
    use cutover::analytics::export::{self, Format, Window};
    // A window past a thousand years says "everything" (and keeps the date arithmetic in range).
    let days = days.clamp(1, 365_000);
    let store = open_store(dir)?;
    // Only the runs the report's window covers (it reads nothing older).
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::days(days.max(1));
    let facts: Vec<rep::Fact> = store
        .run_facts(env, None, Some(since))?
        .into_iter()
        .filter_map(fact)
        .collect();
    let summaries = rep::report(&facts, days.max(1), now);
    let file_format = match format {
        crate::ReportFormat::Text => None,
        crate::ReportFormat::Md => Some(Format::Markdown),
        crate::ReportFormat::Csv => Some(Format::Csv),
        crate::ReportFormat::Json => Some(Format::Json),
    };
    if let Some(f) = file_format {
        let window = Window {
            days: days.max(1),
            environment: env.map(str::to_string),
            until: None,
        };
        let text = export::render(f, &window, &summaries);
        match output {
            Some(path) => {
                if let Err(e) = std::fs::write(path, &text) {
                    eprintln!("{}: cannot write the report: {e}", path.display());
                    return Ok(super::FAILED);
                }
                eprintln!("wrote {} scope(s) to {}", summaries.len(), path.display());
            }
            None => out!("{}", text.trim_end_matches(['\r', '\n'])),
        }
        return Ok(OK);
    }
    if let Some(path) = output {
        eprintln!(
            "{}: the text table is for the terminal; write a file with --format md, csv or json",
            path.display()
        );
        return Ok(INVALID);
    }
    out!(
        "last {days} day(s){}; dry runs left out; lead time from the specs' metadata.changedAt where they give it",
        env.map(|e| format!(", environment {e}")).unwrap_or_default()
    );
    // The scope column at least 30 cells, wider for a longer name; counted in terminal cells.
    let sw = summaries
        .iter()
        .map(|s| cutover::text::width(&s.scope))
        .max()
        .unwrap_or(0)
        .max(30);
    out!(
        "{:<sw$} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10}  FREQUENCY",
        "SCOPE",
        "DEPLOY",
        "SUCCESS",
        "FAIL RATE",
        "MEDIAN",
        "P90",
        "RECOVERY",
        "LEAD TIME"
    );
    for s in &summaries {
        out!(
            "{} {:>6} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10}  {} ({:.2}/day){}",
            cutover::text::pad(&s.scope, sw, false),
            s.deployments,
            pct(s.success_rate),
            pct(s.change_fail_rate),
            dur(s.median_duration_s),
            dur(s.p90_duration_s),
            dur(s.recovery_median_s),
            dur(s.lead_time_median_s),
            s.frequency,
            s.per_day,
            s.trend
                .as_ref()
                .map(|t| format!(
                    "; 28d trend: {} -> {} deployments, fail rate {:.0}% -> {:.0}%",
                    t.deployments.0,
                    t.deployments.1,
                    t.change_fail_rate.0 * 100.0,
                    t.change_fail_rate.1 * 100.0
                ))
                .unwrap_or_default()
        );
    }
    Ok(OK)
}

/// `cutover prune`: `--older-than` (else `retention.pruneAfter` from cutover.yaml, in ms).
pub fn prune(
    dir: &Path,
    older_than: Option<&str>,
    configured_ms: Option<u64>,
    dry_run: bool,
    json: bool,
) -> Result<u8> {
    let ms = match (older_than, configured_ms) {
        (Some(text), _) => match cutover::spec::parse_duration(text) {
            Ok(ms) => ms,
            Err(e) => {
                eprintln!("--older-than: {e}");
                return Ok(INVALID);
            }
        },
        (None, Some(ms)) => ms,
        (None, None) => {
            eprintln!(
                "how old? --older-than DURATION (such as 90d), or retention.pruneAfter in cutover.yaml"
            );
            return Ok(INVALID);
        }
    };
    let age = chrono::Duration::milliseconds(ms.min(i64::MAX as u64 / 2) as i64);
    let before = chrono::Utc::now()
        .checked_sub_signed(age)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let store = open_store(dir)?;
    let done = cutover::analytics::retention::prune(&store, before, dry_run)?;
    if json {
        out!(
            "{}",
            serde_json::json!({"before": before.to_rfc3339(), "dry_run": dry_run, "runs": done.runs,
                "pruned_runs": done.pruned_runs, "lines": done.lines, "bytes": done.bytes})
        );
        return Ok(OK);
    }
    out!(
        "{} {} routine analysis line(s) ({} as stored) of {} run(s) that finished before {} ({} run(s) looked at){}",
        if dry_run { "would prune" } else { "pruned" },
        done.lines,
        if done.bytes < 1_000_000 {
            format!("{:.1} KB", done.bytes as f64 / 1e3)
        } else {
            format!("{:.1} MB", done.bytes as f64 / 1e6)
        },
        done.pruned_runs,
        before.format("%Y-%m-%d %H:%M UTC"),
        done.runs,
        if dry_run { "" } else { "; the file keeps its size and reuses the space" }
    );
    Ok(OK)
}
