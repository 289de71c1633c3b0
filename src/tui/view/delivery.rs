//! The history view's delivery measures: the four key measures over the range with their trend
//! against the range before, a chart per measure week by week, and a table per deployment and
//! environment.

use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

use super::body::Boxed;
use super::{dur, Look};
use crate::analytics::report::Summary;
use crate::analytics::weekly::Week;
use crate::tui::delivery::Delivery;
use crate::tui::model::Model;
use crate::tui::theme::Slot;

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |r| format!("{:.0}%", r * 100.0))
}

fn time(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| dur(s as i64))
}

/// A measure now against before: an arrow up or down, coloured by whether that is better.
fn trend(
    look: &Look,
    now: Option<f64>,
    before: Option<f64>,
    higher_is_better: bool,
    was: String,
) -> Span<'static> {
    let (Some(a), Some(b)) = (now, before) else {
        return Span::styled(" (no earlier range)", look.s(Slot::Muted));
    };
    let (up, down) = if look.sym.ascii {
        ("^", "v")
    } else {
        ("▲", "▼")
    };
    if (a - b).abs() <= f64::EPSILON.max(b.abs() * 0.02) {
        return Span::styled(format!(" = was {was}"), look.s(Slot::Muted));
    }
    let better = (a > b) == higher_is_better;
    Span::styled(
        format!(" {} was {was}", if a > b { up } else { down }),
        look.s(if better { Slot::Ok } else { Slot::Error }),
    )
}

/// The range, the filters and the four measures with their trends.
pub fn summary(f: &mut Frame, m: &Model, d: &Delivery, look: &Look, area: Rect) {
    let n = &d.now;
    // None: no earlier range to compare with, and every trend says so.
    let b = d.before.as_ref();
    let capped = if m.history.len() >= crate::tui::data::HISTORY_RUNS {
        format!(" (of the newest {} runs only)", m.history.len())
    } else {
        String::new()
    };
    let title = format!(
        " delivery of {} in {}, the {} weeks to {}{capped} ",
        m.hist_dep.as_deref().unwrap_or("every deployment"),
        m.hist_env.as_deref().unwrap_or("every environment"),
        d.weeks,
        d.end.format("%Y-%m-%d")
    );
    let label = |t: &str| Span::styled(t.to_string(), look.s(Slot::Title));
    let lead_n = if n.lead_time_samples > 0 {
        format!(
            " ({} of {} gave changedAt)",
            n.lead_time_samples, n.succeeded
        )
    } else {
        " (no spec gave metadata.changedAt)".into()
    };
    let measures = [
        vec![
            label("deployment frequency "),
            Span::raw(format!("{:.2}/day, {}", n.per_day, n.frequency)),
            trend(
                look,
                Some(n.per_day),
                b.map(|b| b.per_day),
                true,
                b.map_or(String::new(), |b| format!("{:.2}", b.per_day)),
            ),
        ],
        vec![
            label("change failure rate "),
            Span::raw(format!(
                "{} of {}",
                pct(n.change_fail_rate),
                n.deployments - n.running
            )),
            trend(
                look,
                n.change_fail_rate,
                b.and_then(|b| b.change_fail_rate),
                false,
                b.map_or(String::new(), |b| pct(b.change_fail_rate)),
            ),
        ],
        vec![
            label("time to restore "),
            Span::raw(time(n.recovery_median_s)),
            trend(
                look,
                n.recovery_median_s,
                b.and_then(|b| b.recovery_median_s),
                false,
                b.map_or(String::new(), |b| time(b.recovery_median_s)),
            ),
        ],
        vec![
            label("lead time for changes "),
            Span::raw(format!("{}{lead_n}", time(n.lead_time_median_s))),
            trend(
                look,
                n.lead_time_median_s,
                b.and_then(|b| b.lead_time_median_s),
                false,
                b.map_or(String::new(), |b| time(b.lead_time_median_s)),
            ),
        ],
    ];
    // Two measures a line where they fit, else one.
    let lines: Vec<Line> = if area.height >= 6 {
        measures.into_iter().map(Line::from).collect()
    } else {
        let [a, b, c, d] = measures;
        let gap = || Span::raw("    ");
        vec![
            Line::from([a, vec![gap()], b].concat()),
            Line::from([c, vec![gap()], d].concat()),
        ]
    };
    Boxed {
        look,
        title: title.into(),
        focused: false,
        lines,
        wrap: false,
    }
    .draw(f, area);
}

/// A duration in at most 5 cells, for an axis: 42s, 17m, 31h, 12d.
fn short(secs: f64) -> String {
    let s = secs.max(0.0) as i64;
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 48 * 3600 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A weekly chart: its title, its value in a week, how a value reads, its colour.
type Measure = (
    &'static str,
    fn(&Week) -> Option<f64>,
    fn(f64) -> String,
    Slot,
);

/// One chart per measure, a column per week.
pub fn weekly(f: &mut Frame, d: &Delivery, look: &Look, boxes: &[Rect]) {
    let measures: [Measure; 4] = [
        (
            "deployments per week",
            |w| Some(w.deployments as f64),
            |v| format!("{v:.0}"),
            Slot::Gauge,
        ),
        (
            "change failure rate",
            |w| w.change_fail_rate.map(|r| r * 100.0),
            |v| format!("{v:.0}%"),
            Slot::Error,
        ),
        ("time to restore", |w| w.restore_median_s, short, Slot::Warn),
        (
            "lead time for changes",
            |w| w.lead_time_median_s,
            short,
            Slot::Ok,
        ),
    ];
    for ((title, value, fmt, slot), area) in measures.iter().zip(boxes) {
        let values: Vec<f64> = d
            .by_week
            .iter()
            .map(|w| value(w).unwrap_or(f64::NAN))
            .collect();
        let axis = 7usize;
        let inner_w = area.width.saturating_sub(2) as usize;
        let room = inner_w.saturating_sub(axis);
        let n = values.len().max(1);
        // Two cells and a gap per week where they fit, else one cell each.
        let (bar, gap) = if n * 3 <= room {
            (2, 1)
        } else {
            (1, usize::from(n * 2 <= room))
        };
        let shown = &values[values.len().saturating_sub(room / (bar + gap).max(1))..];
        let cols: Vec<f64> = shown
            .iter()
            .flat_map(|v| std::iter::repeat_n(*v, bar).chain(std::iter::repeat_n(f64::NAN, gap)))
            .collect();
        let max = shown
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let h = area.height.saturating_sub(3) as usize;
        let mut lines: Vec<Line> = look
            .sym
            .columns(&cols, max, h)
            .into_iter()
            .enumerate()
            .map(|(i, row)| {
                let label = if i == 0 && max > 0.0 {
                    fmt(max)
                } else if i + 1 == h {
                    "0".into()
                } else {
                    String::new()
                };
                let label: String = label.chars().take(axis - 1).collect();
                Line::from(vec![
                    Span::styled(
                        format!("{label:>w$} ", w = axis - 1),
                        look.s(Slot::ChartAxis),
                    ),
                    Span::styled(row, look.s(*slot)),
                ])
            })
            .collect();
        let last = shown
            .iter()
            .rev()
            .find(|v| v.is_finite())
            .map_or("-".into(), |v| fmt(*v));
        let first_week = d.by_week.get(d.by_week.len().saturating_sub(shown.len()));
        lines.push(Line::styled(
            format!(
                "{:>w$}{} {} now {last}",
                "",
                first_week.map_or(String::new(), |w| w.start.format("%m-%d").to_string()),
                look.sym.arrow,
                w = axis
            ),
            look.s(Slot::Muted),
        ));
        Boxed {
            look,
            title: format!(" {title} ").into(),
            focused: false,
            lines,
            wrap: false,
        }
        .draw(f, *area);
    }
}

/// The measures per deployment and environment.
pub fn scopes(f: &mut Frame, d: &Delivery, look: &Look, area: Rect) {
    let w = d
        .scopes
        .iter()
        .map(|s| crate::text::width(&s.scope))
        .max()
        .unwrap_or(5)
        .max(5);
    let mut lines = vec![Line::styled(
        format!(
            "{:<w$}  {:>7}  {:>8}  {:>11}  {:>9}  {:>9}  {:>9}",
            "scope", "deploys", "per day", "change fail", "restore", "lead time", "median"
        ),
        look.s(Slot::Muted),
    )];
    let row = |s: &Summary| {
        format!(
            "{}  {:>7}  {:>8.2}  {:>11}  {:>9}  {:>9}  {:>9}",
            crate::text::pad(&s.scope, w, false),
            s.deployments,
            s.per_day,
            pct(s.change_fail_rate),
            time(s.recovery_median_s),
            time(s.lead_time_median_s),
            time(s.median_duration_s),
        )
    };
    let mut height = area.height.saturating_sub(3) as usize;
    if d.scopes.len() > height {
        height = height.saturating_sub(1);
    }
    lines.extend(d.scopes.iter().take(height).map(|s| Line::from(row(s))));
    if d.scopes.len() > height {
        lines.push(Line::styled(
            format!(
                "{} more: d or e narrows, x exports them all",
                d.scopes.len() - height
            ),
            look.s(Slot::Muted),
        ));
    }
    Boxed {
        look,
        title: " per deployment and environment ".into(),
        focused: false,
        lines,
        wrap: false,
    }
    .draw(f, area);
}
