//! Deployment windows and freezes: when an environment accepts new deployments.
//!
//! Owns: deciding, for an instant, whether an environment is open, and saying why not and when
//! it opens. Must not touch: anything else (the engine asks before starting a run).

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

use super::config::{minutes, Environment};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn in_window(e: &Environment, t: DateTime<Utc>) -> bool {
    if e.windows.is_empty() {
        return true;
    }
    let day = DAYS[t.weekday().num_days_from_monday() as usize];
    let m = t.hour() * 60 + t.minute();
    e.windows.iter().any(|w| {
        let on_day = w.days.is_empty() || w.days.iter().any(|d| d.to_lowercase() == day);
        let (from, to) = (
            minutes(&w.from).unwrap_or(0),
            minutes(&w.to).unwrap_or(1440),
        );
        on_day && m >= from && m < to
    })
}

/// Why an environment does not accept a deployment now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[serde(tag = "closed", rename_all = "snake_case")]
pub enum Closed {
    /// A freeze is on.
    #[error("{environment} is frozen until {until}{}", reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Frozen {
        environment: String,
        until: String,
        reason: Option<String>,
    },
    /// Outside every deployment window.
    #[error("{environment} accepts deployments only in its windows ({}){}", windows.join("; "), next.as_ref().map(|n| format!("; next opening {n}")).unwrap_or_default())]
    OutsideWindows {
        environment: String,
        windows: Vec<String>,
        next: Option<String>,
    },
}

/// Whether `e` accepts a deployment at `t`; the refusal names the freeze or the windows and
/// when the environment opens next.
pub fn open(e: &Environment, t: DateTime<Utc>) -> Result<(), Closed> {
    for f in &e.freezes {
        let (Ok(a), Ok(b)) = (
            DateTime::parse_from_rfc3339(&f.from),
            DateTime::parse_from_rfc3339(&f.to),
        ) else {
            continue;
        };
        if t >= a && t < b {
            return Err(Closed::Frozen {
                environment: e.name.clone(),
                until: b
                    .with_timezone(&Utc)
                    .format("%Y-%m-%d %H:%M UTC")
                    .to_string(),
                reason: (!f.reason.is_empty()).then(|| f.reason.clone()),
            });
        }
    }
    if in_window(e, t) {
        return Ok(());
    }
    let list: Vec<String> = e
        .windows
        .iter()
        .map(|w| {
            let days = if w.days.is_empty() {
                "every day".to_string()
            } else {
                w.days.join(",")
            };
            format!("{days} {}-{} UTC", w.from, w.to)
        })
        .collect();
    // The next opening, minute by minute over a week (windows are minute-aligned).
    let start = t - Duration::seconds(i64::from(t.second()));
    let next = (1..=7 * 24 * 60)
        .map(|i| start + Duration::minutes(i))
        .find(|c| in_window(e, *c));
    Err(Closed::OutsideWindows {
        environment: e.name.clone(),
        windows: list,
        next: next.map(|n| n.format("%a %Y-%m-%d %H:%M UTC").to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::config::parse;

    #[test]
    fn windows_and_freezes() {
        let ws = parse(
            "environments:
  - name: production
    windows:
      - {days: [mon, tue, wed, thu, fri], from: '09:00', to: '17:00'}
    freezes:
      - {from: '2026-12-24T00:00:00Z', to: '2026-12-27T00:00:00Z', reason: holidays}
",
        )
        .unwrap();
        let e = ws.env("production").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(
            open(e, at("2026-11-26T10:00:00Z")).is_ok(),
            "thursday morning"
        );
        let err = open(e, at("2026-11-28T10:00:00Z")).unwrap_err().to_string();
        assert!(
            err.contains("only in its windows (mon,tue,wed,thu,fri 09:00-17:00 UTC)"),
            "{err}"
        );
        assert!(
            err.contains("next opening Mon 2026-11-30 09:00 UTC"),
            "{err}"
        );
        let err = open(e, at("2026-12-24T10:00:00Z")).unwrap_err().to_string();
        assert_eq!(
            err,
            "production is frozen until 2026-12-27 00:00 UTC: holidays"
        );
        assert!(
            open(e, at("2026-11-26T17:00:00Z")).is_err(),
            "the end is exclusive"
        );
    }
}
