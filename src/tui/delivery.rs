//! The history view's delivery measures: which runs it covers (filtered by environment,
//! deployment and a range of weeks ending now), the four key measures over that range against
//! the range before it, week by week, per deployment and environment, and the same as a file's
//! text for the console's export.
//!
//! Owns: the history filters and what is computed from them (pure, from the model's history).
//! Must not touch: the store, files or the terminal (the console loop writes an export).

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

use super::data::HistRow;
use super::model::Model;
use crate::analytics::export::{self, Format, Window};
use crate::analytics::report::{self, Fact, Summary};
use crate::analytics::weekly::{self, Week};

/// The ranges the history view offers, in weeks.
pub const RANGES: [i64; 5] = [2, 4, 8, 13, 26];

/// What the delivery measures were computed from.
#[derive(Debug, Clone, PartialEq)]
struct MemoKey {
    gen: u64,
    len: usize,
    env: Option<String>,
    dep: Option<String>,
    weeks: i64,
    back: i64,
    minute: Option<DateTime<Utc>>,
}

/// The last delivery measures and what they were computed from, and a count of the histories
/// set. Not part of the model's state: it always compares equal, so it never makes the console
/// redraw (a history read again that is the same as before changes nothing on screen).
#[derive(Debug, Default)]
pub struct Memo(
    Mutex<Option<(MemoKey, Arc<Delivery>)>>,
    std::sync::atomic::AtomicU64,
);

impl Memo {
    /// The model's history was replaced.
    pub fn history_changed(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    fn gen(&self) -> u64 {
        self.1.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Clone for Memo {
    /// Empty, with the same count (a clone's history is the same as the original's).
    fn clone(&self) -> Memo {
        Memo(
            Mutex::new(None),
            std::sync::atomic::AtomicU64::new(self.gen()),
        )
    }
}

impl PartialEq for Memo {
    fn eq(&self, _: &Memo) -> bool {
        true
    }
}

/// What the history view shows of its filtered runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The range: its end and length.
    pub end: DateTime<Utc>,
    pub weeks: i64,
    /// Over the range, and over the same length before it (the trend), when the history
    /// reaches back that far.
    pub now: Summary,
    pub before: Option<Summary>,
    pub by_week: Vec<Week>,
    /// Per deployment and environment, over the range.
    pub scopes: Vec<Summary>,
}

impl Model {
    /// The end of the history's range: the end of this minute (else the newest run's start),
    /// less the weeks it was moved back.
    fn history_end(&self) -> DateTime<Utc> {
        let now = match self.minute.or(self.now) {
            Some(t) => t + Duration::seconds(60),
            None => self
                .history
                .iter()
                .filter_map(|h| h.started)
                .max()
                .unwrap_or_default(),
        };
        now - Duration::weeks(self.hist_back)
    }

    /// Move the range a week earlier (`true`) or later (never past now).
    pub fn shift(&mut self, earlier: bool) {
        self.hist_back = if earlier {
            (self.hist_back + 1).min(520)
        } else {
            (self.hist_back - 1).max(0)
        };
        self.hist_selected = 0;
    }

    fn matches(&self, h: &HistRow) -> bool {
        self.hist_env.as_ref().is_none_or(|e| *e == h.environment)
            && self.hist_dep.as_ref().is_none_or(|d| *d == h.deployment)
    }

    /// The history's range: whole weeks (from a Monday) up to its end.
    fn history_range(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let end = self.history_end();
        (
            weekly::week_of(end) - Duration::weeks(self.hist_weeks - 1),
            end,
        )
    }

    /// The runs the history view lists: the filters', in the range, newest first.
    pub fn visible_history(&self) -> Vec<&HistRow> {
        let (since, end) = self.history_range();
        self.history
            .iter()
            .filter(|h| self.matches(h) && h.started.is_none_or(|t| t >= since && t <= end))
            .collect()
    }

    /// The delivery measures of the filtered runs, computed once for each history and filters
    /// (a redraw for anything else reuses them).
    pub fn delivery(&self) -> Arc<Delivery> {
        let key = MemoKey {
            gen: self.delivery_memo.gen(),
            len: self.history.len(),
            env: self.hist_env.clone(),
            dep: self.hist_dep.clone(),
            weeks: self.hist_weeks,
            back: self.hist_back,
            minute: self.minute,
        };
        let Ok(mut memo) = self.delivery_memo.0.lock() else {
            return Arc::new(self.compute_delivery());
        };
        if let Some((k, d)) = memo.as_ref() {
            if *k == key {
                return Arc::clone(d);
            }
        }
        let d = Arc::new(self.compute_delivery());
        *memo = Some((key, Arc::clone(&d)));
        d
    }

    fn compute_delivery(&self) -> Delivery {
        let (since, end) = self.history_range();
        let days = self.hist_weeks * 7;
        let facts: Vec<Fact> = self
            .history
            .iter()
            .filter(|h| self.matches(h))
            .filter_map(HistRow::fact)
            .filter(|f| f.started <= end)
            .collect();
        let in_range: Vec<Fact> = facts
            .iter()
            .filter(|f| f.started >= since)
            .cloned()
            .collect();
        let mut scopes = report::report(&in_range, days, end);
        scopes.pop();
        let before = since - (end - since);
        Delivery {
            end,
            weeks: self.hist_weeks,
            now: report::between(&facts, since, end),
            // The range before counts only where the history covers it (within a week).
            before: facts
                .iter()
                .map(|f| f.started)
                .min()
                .filter(|first| *first <= before + Duration::weeks(1))
                .map(|_| report::between(&facts, before, since)),
            by_week: weekly::weekly(&facts, since, end),
            scopes,
        }
    }

    /// Cycle the environment filter: all, then each environment in the history.
    pub fn next_env(&mut self) {
        let all: Vec<String> = distinct(self.history.iter().map(|h| h.environment.clone()));
        self.hist_env = cycle(&all, self.hist_env.take());
        // A deployment that never ran in the new environment would leave nothing to show.
        let env = self.hist_env.clone();
        if let Some(d) = &self.hist_dep {
            if !self
                .history
                .iter()
                .any(|h| h.deployment == *d && env.as_ref().is_none_or(|e| *e == h.environment))
            {
                self.hist_dep = None;
            }
        }
        self.hist_selected = 0;
    }

    /// Cycle the deployment filter: all, then each deployment (in the chosen environment).
    pub fn next_deployment(&mut self) {
        let all: Vec<String> = distinct(
            self.history
                .iter()
                .filter(|h| self.hist_env.as_ref().is_none_or(|e| *e == h.environment))
                .map(|h| h.deployment.clone()),
        );
        self.hist_dep = cycle(&all, self.hist_dep.take());
        self.hist_selected = 0;
    }

    /// A longer (`true`) or shorter range.
    pub fn range(&mut self, longer: bool) {
        let i = RANGES
            .iter()
            .position(|w| *w == self.hist_weeks)
            .unwrap_or(2);
        let i = if longer {
            (i + 1).min(RANGES.len() - 1)
        } else {
            i.saturating_sub(1)
        };
        self.hist_weeks = RANGES[i];
        self.hist_selected = 0;
    }

    /// Export what the history view shows to `path` (Markdown, CSV or JSON lines by its
    /// extension; a dated Markdown file in the working directory when none is given).
    pub fn export(&mut self, path: Option<&str>) -> Vec<super::model::Effect> {
        let path = path.map(str::to_string).unwrap_or_else(|| {
            format!(
                "cutover-history-{}.md",
                self.history_end().format("%Y%m%d-%H%M")
            )
        });
        let format = match path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()) {
            Some(e) if e == "csv" => Format::Csv,
            Some(e) if e == "json" || e == "jsonl" => Format::Json,
            _ => Format::Markdown,
        };
        vec![
            super::model::Effect::Export {
                text: self.export_text(format),
                path,
            },
            super::model::Effect::Redraw,
        ]
    }

    /// What the history view shows, as a file's text: the summaries per deployment and
    /// environment and overall, then (Markdown) the weeks.
    pub fn export_text(&self, format: Format) -> String {
        let d = self.delivery();
        let mut summaries = d.scopes.clone();
        summaries.push(d.now.clone());
        let window = Window {
            days: d.weeks * 7,
            environment: self.hist_env.clone(),
            until: (self.hist_back > 0).then(|| d.end.format("%Y-%m-%d").to_string()),
        };
        let mut out = export::render(format, &window, &summaries);
        if format == Format::Markdown {
            if let Some(dep) = &self.hist_dep {
                out.push_str(&format!("\nDeployment: {dep}\n"));
            }
            out.push_str("\n| week of | deployments | succeeded | change failure rate | time to restore | lead time |\n|---|---|---|---|---|---|\n");
            for w in &d.by_week {
                let h = |v: Option<f64>| v.map_or("-".to_string(), |s| super::view::dur(s as i64));
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    w.start.format("%Y-%m-%d"),
                    w.deployments,
                    w.succeeded,
                    w.change_fail_rate
                        .map_or("-".to_string(), |r| format!("{:.0}%", r * 100.0)),
                    h(w.restore_median_s),
                    h(w.lead_time_median_s),
                ));
            }
        }
        out
    }
}

fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let set: std::collections::BTreeSet<String> = items.collect();
    set.into_iter().collect()
}

/// The next of `all` after `cur` (none: the first; the last: none, meaning all).
fn cycle(all: &[String], cur: Option<String>) -> Option<String> {
    match cur {
        None => all.first().cloned(),
        Some(c) => all
            .iter()
            .position(|x| *x == c)
            .and_then(|i| all.get(i + 1))
            .cloned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::sample::model;

    #[test]
    fn the_measures_are_kept_until_the_history_or_a_filter_changes() {
        let mut m = model();
        let first = m.delivery();
        assert!(Arc::ptr_eq(&first, &m.delivery()), "kept for a redraw");
        assert_eq!(*first, m.compute_delivery());
        m.hist_weeks = 4;
        let four = m.delivery();
        assert_eq!(four.weeks, 4);
        assert_eq!(*four, m.compute_delivery());
        // A new history (here: without its newest run) is computed again.
        let mut h = m.history.clone();
        h.remove(0);
        m.set_history(h);
        let fewer = m.delivery();
        assert!(!Arc::ptr_eq(&four, &fewer));
        assert_eq!(*fewer, m.compute_delivery());
        assert_ne!(fewer.now.deployments, four.now.deployments);
        // The memo is not state: a model with it filled equals one without.
        let fresh = m.clone();
        assert_eq!(fresh, m);
    }

    #[test]
    fn filters_cycle_and_narrow_the_runs_and_measures() {
        let mut m = model();
        let all = m.visible_history().len();
        assert!(all > 20, "{all}");
        m.next_env();
        let env = m
            .hist_env
            .clone()
            .unwrap_or_else(|| panic!("an environment"));
        assert!(m.visible_history().iter().all(|h| h.environment == env));
        m.next_deployment();
        let dep = m.hist_dep.clone().unwrap_or_else(|| panic!("a deployment"));
        let d = m.delivery();
        assert!(
            d.scopes.iter().all(|s| s.scope == format!("{dep}@{env}")),
            "{:?}",
            d.scopes
        );
        assert_eq!(d.by_week.len(), 8, "{:?}", d.by_week);
        // Through every environment, back to all.
        for _ in 0..10 {
            m.next_env();
            if m.hist_env.is_none() {
                break;
            }
        }
        assert_eq!(m.hist_env, None);
        while m.hist_dep.is_some() {
            m.next_deployment();
        }
        m.range(false);
        assert_eq!(m.hist_weeks, 4);
        m.range(true);
        m.range(true);
        m.range(true);
        m.range(true);
        assert_eq!(m.hist_weeks, 26);
        assert!(m.visible_history().len() >= all);
        // Moved back: the range ends earlier, and newer runs leave it.
        m.range(false);
        m.range(false);
        m.range(false);
        m.range(false);
        let two_weeks = m.visible_history().len();
        m.shift(true);
        m.shift(true);
        let end = m.delivery().end;
        assert!(m
            .visible_history()
            .iter()
            .all(|h| h.started.is_some_and(|t| t <= end)));
        assert_ne!(m.visible_history().len(), two_weeks);
        m.shift(false);
        m.shift(false);
        m.shift(false);
        assert_eq!(m.hist_back, 0);
        // x in the history view exports it, as Markdown unless the path says otherwise.
        m.view = crate::tui::keymap::View::History;
        let x = ratatui::crossterm::event::KeyEvent::new(
            ratatui::crossterm::event::KeyCode::Char('x'),
            ratatui::crossterm::event::KeyModifiers::NONE,
        );
        match m.key(x).first() {
            Some(super::super::model::Effect::Export { path, text }) => {
                assert!(
                    path.starts_with("cutover-history-") && path.ends_with(".md"),
                    "{path}"
                );
                assert!(text.starts_with("# Delivery report"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        match m.command_line("export out.csv").first() {
            Some(super::super::model::Effect::Export { path, text }) => {
                assert_eq!(path, "out.csv");
                assert!(text.starts_with("scope,"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        let md = m.export_text(Format::Markdown);
        assert!(md.contains("| week of |"), "{md}");
        assert!(m.export_text(Format::Csv).lines().count() > 1);
    }
}
