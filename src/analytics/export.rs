//! The delivery report as a file: Markdown (a table a wiki or a pull request renders), CSV (a
//! spreadsheet's columns, one row per scope) or JSON lines (one summary per line, as
//! `report --json` prints them).
//!
//! Owns: writing [`Summary`] rows in those formats. Must not touch: how they are computed
//! (`report`), where they go (the command line writes the file).

use super::report::Summary;

/// A report file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Json,
}

/// What the report covers, for the file's title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub days: i64,
    pub environment: Option<String>,
    /// The day the range ends, when it is not today (the console's history moved back).
    pub until: Option<String>,
}

/// `summaries` in `format`, ending with a newline.
pub fn render(format: Format, window: &Window, summaries: &[Summary]) -> String {
    match format {
        Format::Markdown => markdown(window, summaries),
        Format::Csv => csv(summaries),
        Format::Json => summaries
            .iter()
            .filter_map(|s| serde_json::to_string(s).ok())
            .map(|l| l + "\n")
            .collect(),
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", x * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn secs(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(s) if s < 90.0 => format!("{s:.0}s"),
        Some(s) if s < 5400.0 => format!("{:.1}m", s / 60.0),
        Some(s) => format!("{:.1}h", s / 3600.0),
    }
}

fn num(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_default()
}

/// A Markdown table cell: pipes escaped, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn markdown(window: &Window, summaries: &[Summary]) -> String {
    let mut out = format!(
        "# Delivery report: {}{}\n\nDry runs left out. Lead time runs from a spec's `metadata.changedAt` to its deployment's success, where the spec gives it.\n\n",
        match &window.until {
            Some(u) => format!("{} day(s) to {}", window.days, cell(u)),
            None => format!("last {} day(s)", window.days),
        },
        window
            .environment
            .as_deref()
            .map(|e| format!(", environment {}", cell(e)))
            .unwrap_or_default()
    );
    out.push_str(
        "| scope | deployments | success | change fail rate | median | p90 | recovery | lead time | frequency | trend (28 days) |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n");
    for s in summaries {
        let trend = s
            .trend
            .as_ref()
            .map(|t| {
                format!(
                    "{} → {} deployments, fail rate {:.0}% → {:.0}%",
                    t.deployments.0,
                    t.deployments.1,
                    t.change_fail_rate.0 * 100.0,
                    t.change_fail_rate.1 * 100.0
                )
            })
            .unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ({:.2}/day) | {} |\n",
            cell(&s.scope),
            s.deployments,
            pct(s.success_rate),
            pct(s.change_fail_rate),
            secs(s.median_duration_s),
            secs(s.p90_duration_s),
            secs(s.recovery_median_s),
            secs(s.lead_time_median_s),
            s.frequency,
            s.per_day,
            trend
        ));
    }
    out
}

/// An RFC 4180 field: quoted when it holds a comma, a quote or a line break (kept here rather
/// than a CSV crate: one function for fields cutover writes itself).
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv(summaries: &[Summary]) -> String {
    let mut out = String::from(
        "scope,deployments,succeeded,failed,rolled_back,running,rollback_runs,success_rate,change_fail_rate,\
         median_duration_s,p90_duration_s,per_day,frequency,recovery_median_s,lead_time_median_s,lead_time_samples,\
         trend_deployments_before,trend_deployments_after,trend_fail_rate_before,trend_fail_rate_after\r\n",
    );
    for s in summaries {
        let t = s.trend.as_ref();
        let row = [
            field(&s.scope),
            s.deployments.to_string(),
            s.succeeded.to_string(),
            s.failed.to_string(),
            s.rolled_back.to_string(),
            s.running.to_string(),
            s.rollback_runs.to_string(),
            num(s.success_rate),
            num(s.change_fail_rate),
            num(s.median_duration_s),
            num(s.p90_duration_s),
            format!("{:.3}", s.per_day),
            field(s.frequency),
            num(s.recovery_median_s),
            num(s.lead_time_median_s),
            s.lead_time_samples.to_string(),
            t.map(|t| t.deployments.0.to_string()).unwrap_or_default(),
            t.map(|t| t.deployments.1.to_string()).unwrap_or_default(),
            num(t.map(|t| t.change_fail_rate.0)),
            num(t.map(|t| t.change_fail_rate.1)),
        ];
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::report::Trend;

    fn summary(scope: &str) -> Summary {
        Summary {
            scope: scope.into(),
            deployments: 12,
            succeeded: 10,
            failed: 1,
            rolled_back: 1,
            running: 0,
            rollback_runs: 1,
            success_rate: Some(10.0 / 12.0),
            change_fail_rate: Some(2.0 / 12.0),
            median_duration_s: Some(600.0),
            p90_duration_s: Some(7200.0),
            per_day: 0.5,
            frequency: "weekly to daily",
            recovery_median_s: None,
            lead_time_median_s: Some(5400.0),
            lead_time_samples: 4,
            trend: Some(Trend {
                deployments: (5, 7),
                change_fail_rate: (0.2, 0.1),
                median_duration_s: (None, None),
            }),
        }
    }

    #[test]
    fn markdown_is_a_table_with_one_row_per_scope() {
        let w = Window {
            days: 30,
            environment: Some("production".into()),
            until: None,
        };
        let md = render(Format::Markdown, &w, &[summary("shop@production")]);
        assert!(md.starts_with("# Delivery report: last 30 day(s), environment production\n"));
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with('|')).collect();
        assert_eq!(rows.len(), 3, "{md}");
        assert_eq!(
            rows[2],
            "| shop@production | 12 | 83.3% | 16.7% | 10.0m | 2.0h | - | 1.5h | weekly to daily (0.50/day) | 5 → 7 deployments, fail rate 20% → 10% |"
        );
        // Every row has as many cells as the header.
        let cells = |r: &str| r.matches(" | ").count();
        assert_eq!(cells(rows[2]), cells(rows[0]), "{md}");
        assert_eq!(rows[1].matches('|').count(), rows[0].matches('|').count());
        let piped = render(Format::Markdown, &w, &[summary("a|b")]);
        assert!(piped.contains("| a\\|b |"), "{piped}");
    }

    #[test]
    fn csv_has_a_header_and_quotes_what_needs_it() {
        let w = Window {
            days: 90,
            environment: None,
            until: None,
        };
        let text = render(Format::Csv, &w, &[summary("shop@prod"), summary("a,\"b\"")]);
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 3);
        let header = lines[0].split(',').count();
        assert_eq!(header, 20);
        assert_eq!(
            lines[1],
            "shop@prod,12,10,1,1,0,1,0.833,0.167,600.000,7200.000,0.500,weekly to daily,,5400.000,4,5,7,0.200,0.100"
        );
        assert!(lines[2].starts_with("\"a,\"\"b\"\"\",12,"), "{}", lines[2]);
    }

    #[test]
    fn json_is_one_summary_per_line() {
        let w = Window {
            days: 90,
            environment: None,
            until: None,
        };
        let text = render(Format::Json, &w, &[summary("x"), summary("y")]);
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["scope"], "y");
        assert_eq!(rows[0]["trend"]["deployments"][1], 7);
    }
}
