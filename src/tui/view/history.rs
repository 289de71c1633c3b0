//! The history view (the delivery measures of the filtered runs, their success rate per day and
//! duration per deployment, and the runs) and the drill-down into one run's timeline and
//! verdicts.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::body::Boxed;
use super::columns::{widest, Column, Widths};
use super::delivery;
use super::{dur, Look};
use crate::tui::data::{history_charts, HistRow};
use crate::tui::model::Model;
use crate::tui::theme::Slot;

pub fn draw(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let d = m.delivery();
    let visible = m.visible_history();
    let tall = area.height >= 34;
    let chart_h = if tall { 7 } else { 5 };
    let wide = area.width >= 150;
    let scopes_h = if tall {
        (d.scopes.len() as u16 + 3).min(9)
    } else {
        0
    };
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(if wide { 4 } else { 6 }),
            Constraint::Length(if wide { chart_h } else { chart_h * 2 }),
            Constraint::Length(scopes_h),
            Constraint::Min(3),
        ])
        .split(area);
    delivery::summary(f, m, &d, look, parts[0]);
    let rows: Vec<Rect> = if wide {
        vec![parts[1]]
    } else {
        Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Length(chart_h), Constraint::Length(chart_h)])
            .split(parts[1])
            .to_vec()
    };
    let per_row = if wide { 6 } else { 3 };
    let mut boxes = Vec::new();
    for r in rows {
        boxes.extend(
            Layout::default()
                .direction(Direction::Horizontal)
                .constraints(vec![Constraint::Ratio(1, per_row); per_row as usize])
                .split(r)
                .iter()
                .copied(),
        );
    }
    delivery::weekly(f, &d, look, &boxes[..4]);
    charts(f, &visible, look, &boxes[4..]);
    if tall {
        delivery::scopes(f, &d, look, parts[2]);
    }
    list(f, m, &visible, look, parts[3]);
}

/// Success rate per day and duration per deployment, in two boxes.
fn charts(f: &mut Frame, visible: &[&HistRow], look: &Look, cols: &[Rect]) {
    let (rate, durations) = history_charts(visible);
    let h = cols[0].height.saturating_sub(3) as usize;
    // Success rate per day: one column per day, 0..100%.
    let w = cols[0].width.saturating_sub(8) as usize;
    let days = &rate[rate.len().saturating_sub(w / 2)..];
    let values: Vec<f64> = days.iter().flat_map(|(_, r, _)| [*r, f64::NAN]).collect();
    let mut lines: Vec<Line> = look
        .sym
        .columns(&values, 100.0, h)
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let label = if i == 0 {
                "100%"
            } else if i + 1 == h {
                "  0%"
            } else {
                "    "
            };
            Line::from(vec![
                Span::styled(format!("{label} "), look.s(Slot::ChartAxis)),
                Span::styled(row, look.s(Slot::Ok)),
            ])
        })
        .collect();
    let total: usize = rate.iter().map(|(_, _, n)| n).sum();
    let ok: f64 = rate.iter().map(|(_, r, n)| r * *n as f64 / 100.0).sum();
    lines.push(Line::styled(
        match (days.first(), days.last()) {
            (Some(a), Some(b)) => format!(
                "     {} .. {}  {}/{} succeeded",
                a.0,
                b.0,
                ok.round(),
                total
            ),
            _ => "     no finished deployments yet".to_string(),
        },
        look.s(Slot::Muted),
    ));
    Boxed {
        look,
        title: " success rate per day ".into(),
        focused: false,
        lines,
        wrap: false,
    }
    .draw(f, cols[0]);
    // Duration per deployment, oldest to newest.
    let w = cols[1].width.saturating_sub(9) as usize;
    let shown = &durations[durations.len().saturating_sub(w / 2)..];
    let max = shown.iter().copied().fold(0.0f64, f64::max);
    // One column per deployment with a gap after it, as in the success-rate chart.
    let spaced: Vec<f64> = shown.iter().flat_map(|d| [*d, f64::NAN]).collect();
    let mut lines: Vec<Line> = look
        .sym
        .columns(&spaced, max, h)
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let label = if i == 0 {
                format!("{:>6}", dur(max as i64))
            } else if i + 1 == h {
                format!("{:>6}", "0s")
            } else {
                " ".repeat(6)
            };
            Line::from(vec![
                Span::styled(format!("{label} "), look.s(Slot::ChartAxis)),
                Span::styled(row, look.s(Slot::Gauge)),
            ])
        })
        .collect();
    lines.push(Line::styled(
        match crate::analysis::stats::median(shown) {
            Some(median) => format!(
                "       last {}: median {}, longest {}",
                shown.len(),
                dur(median as i64),
                dur(max as i64)
            ),
            None => String::new(),
        },
        look.s(Slot::Muted),
    ));
    Boxed {
        look,
        title: " duration per deployment ".into(),
        focused: false,
        lines,
        wrap: false,
    }
    .draw(f, cols[1]);
}

/// The history list's columns; the names give way first when a row is too wide.
const LIST: [Column; 9] = [
    Column::right("run"),
    Column::left("deployment", 10),
    Column::left("version", 7),
    Column::left("env", 6),
    Column::left("strategy", 8),
    Column::left("outcome", 16),
    Column::right("took").or_left_out(),
    Column::left("started", 16).or_left_out(),
    Column::left("by", 2).or_left_out(),
];

fn list(f: &mut Frame, m: &Model, visible: &[&HistRow], look: &Look, area: Rect) {
    let height = area.height.saturating_sub(3) as usize;
    let start = super::scroll_start(m.hist_selected, height, visible.len());
    let took = |h: &HistRow| h.duration_s.map(dur).unwrap_or_else(|| "-".into());
    let started = |h: &HistRow| {
        h.started
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    // Sized to every run the filters let through, not only those on screen: the columns stay
    // put while the list scrolls.
    let run_w = visible
        .iter()
        .map(|h| h.run)
        .max()
        .unwrap_or(0)
        .to_string()
        .len();
    let content = [
        run_w,
        widest(visible.iter().map(|h| h.deployment.as_str())),
        widest(visible.iter().map(|h| h.version.as_str())),
        widest(visible.iter().map(|h| h.environment.as_str())),
        widest(visible.iter().map(|h| h.strategy.as_str())),
        16,
        8,
        16,
        widest(visible.iter().map(|h| h.initiator.as_str())),
    ];
    let inner = area.width.saturating_sub(2) as usize;
    let w = Widths::fit(&LIST, &content, inner, &[1, 2, 3, 4]);
    let mut lines = vec![Line::styled(w.head(&LIST), look.s(Slot::Muted))];
    for (i, h) in visible.iter().enumerate().skip(start).take(height) {
        let (_, style) = look.status(h.outcome);
        let cells = [
            h.run.to_string(),
            h.deployment.clone(),
            h.version.clone(),
            h.environment.clone(),
            h.strategy.as_str().to_string(),
            h.outcome.to_string(),
            took(h),
            started(h),
            h.initiator.clone(),
        ];
        let mut row = w.spans(&cells, |i| (i == 5).then_some(style));
        if i == m.hist_selected {
            // The selection bar spans the whole list.
            let used: usize = row.iter().map(|s| s.width()).sum();
            row.push(Span::raw(" ".repeat(inner.saturating_sub(used))));
            lines.push(Line::from(row).style(look.s(Slot::Selection)));
        } else {
            lines.push(Line::from(row));
        }
    }
    if visible.is_empty() {
        lines.push(Line::styled(
            if m.history.is_empty() {
                "no deployments recorded yet"
            } else {
                "no deployments match the filters (e, d, < and > change them)"
            },
            look.s(Slot::Muted),
        ));
    }
    Boxed {
        look,
        title: format!(" deployments ({}) - enter drills down ", visible.len()).into(),
        focused: true,
        lines,
        wrap: false,
    }
    .draw(f, area);
}

pub fn drill(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let Some(d) = &m.drill else {
        f.render_widget(
            Paragraph::new("loading...").block(look.block(" drill-down ", true)),
            area,
        );
        return;
    };
    // Wide enough: the run's metric and traffic charts on the right, the whole height.
    let (area, charts_area) = match &d.row {
        Some(_) if area.width >= 120 => {
            let cols = Layout::default()
                .direction(Direction::Horizontal)
                .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
                .split(area);
            (cols[0], Some(cols[1]))
        }
        _ => (area, None),
    };
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(3),
            Constraint::Percentage(55),
            Constraint::Min(3),
        ])
        .split(area);
    f.render_widget(
        Paragraph::new(d.title.clone())
            .wrap(Wrap { trim: true })
            .style(look.s(Slot::Title))
            .block(look.block(format!(" run #{} ", d.run), false)),
        parts[0],
    );
    let timeline_area = parts[1];
    if let (Some(row), Some(area)) = (&d.row, charts_area) {
        let split = Layout::default()
            .direction(Direction::Vertical)
            .constraints([Constraint::Percentage(70), Constraint::Percentage(30)])
            .split(area);
        let w = |a: Rect| {
            (
                a.width.saturating_sub(2) as usize,
                a.height.saturating_sub(2) as usize,
            )
        };
        let (aw, ah) = w(split[0]);
        let lines = super::analysis::analysis(row, look, aw, ah);
        Boxed {
            look,
            title: " analysis over the run ".into(),
            focused: false,
            lines,
            wrap: false,
        }
        .draw(f, split[0]);
        let (tw, th) = w(split[1]);
        let lines = super::traffic::traffic(row, look, tw, th, None);
        Boxed {
            look,
            title: " traffic over the run ".into(),
            focused: false,
            lines,
            wrap: false,
        }
        .draw(f, split[1]);
    }
    // One scroll position walks the timeline, then the verdicts.
    let (t_scroll, v_scroll) = if d.scroll < d.timeline.len() {
        (d.scroll, 0)
    } else {
        (
            d.timeline.len().saturating_sub(1),
            d.scroll - d.timeline.len(),
        )
    };
    let lines: Vec<Line> = d
        .timeline
        .iter()
        .skip(t_scroll)
        .map(|l| Line::from(l.clone()))
        .collect();
    Boxed {
        look,
        title: format!(" timeline ({} lines, j/k scroll) ", d.timeline.len()).into(),
        focused: true,
        lines,
        wrap: false,
    }
    .draw(f, timeline_area);
    let lines: Vec<Line> = d
        .verdicts
        .iter()
        .skip(v_scroll)
        .map(|l| {
            let slot = if l.contains(" FAIL ") {
                Slot::Error
            } else if l.contains(" nodata ") || l.contains(" ERROR ") {
                Slot::Warn
            } else {
                Slot::Text
            };
            Line::styled(l.clone(), look.s(slot))
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::styled(
            "no analysis verdicts in this run",
            look.s(Slot::Muted),
        )]
    } else {
        lines
    };
    Boxed {
        look,
        title: format!(" verdicts ({}) ", d.verdicts.len()).into(),
        focused: false,
        lines,
        wrap: false,
    }
    .draw(f, parts[2]);
}
