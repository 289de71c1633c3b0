//! The traffic pane: per component, each revision's weight (asked, and the share reached where
//! the platform rounds it) with the requests it serves now; with room, the new version's weight
//! over the run as a staircase, with the share of requests it served at each analysis.

use chrono::{DateTime, Utc};
use ratatui::text::{Line, Span};

use super::chart::{self, Layer, Pen, Scale};
use super::Look;
use crate::engine::signals::fmt_num;
use crate::spec::Strategy;
use crate::tui::data::{Row, TrafficHistory};
use crate::tui::theme::Slot;

/// Cells for the chart's scale on the left.
const AXIS: usize = 6;

pub fn traffic(
    r: &Row,
    look: &Look,
    width: usize,
    height: usize,
    now: Option<DateTime<Utc>>,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let history = r
        .detail
        .as_ref()
        .map(|d| d.traffic.as_slice())
        .unwrap_or(&[]);
    // The split now (a run that recorded no snapshot, such as an imported one, has only its
    // history).
    for t in r.snapshot.iter().flat_map(|s| &s.traffic) {
        out.extend(split(r, t, look, width));
    }
    if out.is_empty() && history.iter().all(|h| h.asked.is_empty()) {
        return vec![Line::from("no traffic data yet")];
    }
    // The staircases, while there is room for a chart of at least 3 rows.
    for h in history.iter().filter(|h| !h.asked.is_empty()) {
        let room = height.saturating_sub(out.len() + 2);
        if room < 3 || width < AXIS + 10 {
            break;
        }
        out.extend(staircase(r, h, look, width - AXIS, room.min(10), now));
    }
    out
}

/// One component's weights now, with bars.
fn split(
    r: &Row,
    t: &crate::engine::event::ComponentTraffic,
    look: &Look,
    width: usize,
) -> Vec<Line<'static>> {
    let bar_w = width.saturating_sub(38).clamp(4, 40);
    let (new_role, old_role) = match r.strategy {
        Strategy::BlueGreen => ("green", "blue"),
        Strategy::Canary => ("canary", "stable"),
        Strategy::Rolling | Strategy::Recreate => ("new", "old"),
    };
    let mut out = Vec::new();
    let total: f64 = t.measured_rps.values().sum();
    // A replica ratio (Kubernetes without a mesh): the platform serves the nearest split its
    // pod counts allow; each revision shows the weight asked and the share reached, and its
    // bar draws the share reached.
    let ratio = t.weights.iter().any(|w| w.achieved.is_some());
    if ratio {
        out.push(Line::from(vec![
            Span::styled(t.component.clone(), look.s(Slot::Title)),
            Span::styled(
                "  replica ratio: pod counts set the split",
                look.s(Slot::Muted),
            ),
        ]));
    } else {
        out.push(Line::styled(t.component.clone(), look.s(Slot::Title)));
    }
    for w in &t.weights {
        let is_new = w.version == r.version;
        let slot = if is_new { Slot::Canary } else { Slot::Baseline };
        let measured = match t.measured_rps.get(&w.revision) {
            Some(rps) if total > 0.0 => {
                format!(
                    " got {:>3.0}% {}/s",
                    100.0 * rps / total,
                    fmt_num((rps * 10.0).round() / 10.0)
                )
            }
            _ => String::new(),
        };
        let label = Span::styled(
            format!(
                " {:<6} {:<9}",
                if is_new { new_role } else { old_role },
                w.version
            ),
            look.s(slot),
        );
        if ratio {
            let reached = w.achieved.unwrap_or(w.weight as f64);
            out.push(Line::from(vec![
                label,
                Span::raw(format!(
                    "{:>3}% asked{}{reached:.1}% achieved",
                    w.weight, look.sym.sep
                )),
            ]));
            out.push(Line::from(vec![
                // The bar's column on exact lines: label (17) and weight (5).
                Span::raw("                      "),
                Span::styled(look.sym.bar(reached, bar_w), look.s(slot)),
                Span::styled(measured, look.s(Slot::Muted)),
            ]));
            continue;
        }
        out.push(Line::from(vec![
            label,
            Span::raw(format!("{:>3}% ", w.weight)),
            Span::styled(look.sym.bar(w.weight as f64, bar_w), look.s(slot)),
            Span::styled(measured, look.s(Slot::Muted)),
        ]));
    }
    if t.weights.is_empty() {
        out.push(Line::styled(" no traffic", look.s(Slot::Muted)));
    }
    out
}

/// The weight asked for the new version over time (a staircase, 0-100%) and the share it
/// served (points), over `width` columns from the first shift to now.
fn staircase(
    r: &Row,
    h: &TrafficHistory,
    look: &Look,
    width: usize,
    height: usize,
    now: Option<DateTime<Utc>>,
) -> Vec<Line<'static>> {
    let Some(start) = h.asked.first().map(|(t, _)| *t) else {
        return Vec::new();
    };
    let last = h
        .asked
        .iter()
        .chain(h.served.iter())
        .map(|(t, _)| *t)
        .max()
        .unwrap_or(start);
    let end = match now {
        Some(n) if !r.finished && n > last => n,
        _ => last,
    };
    let span_ms = (end - start).num_milliseconds().max(1) as f64;
    // The column a moment falls in.
    let col = |t: DateTime<Utc>| {
        (((t - start).num_milliseconds() as f64 / span_ms) * (width - 1) as f64).round() as usize
    };
    let mut asked = vec![f64::NAN; width];
    for (i, (t, w)) in h.asked.iter().enumerate() {
        let to = h.asked.get(i + 1).map_or(width, |(n, _)| col(*n));
        for cell in asked.iter_mut().take(to).skip(col(*t)) {
            *cell = *w;
        }
    }
    let mut served = vec![f64::NAN; width];
    for (t, share) in &h.served {
        if let Some(cell) = served.get_mut(col(*t)) {
            *cell = *share;
        }
    }
    let (flat, rise) = look.sym.trace[0];
    let layers = [
        Layer {
            values: asked,
            pen: Pen::Trace(flat, rise),
            slot: Slot::Canary,
        },
        Layer {
            values: served,
            pen: Pen::Point(look.sym.point),
            slot: Slot::Gauge,
        },
    ];
    let mut out = vec![Line::from(vec![
        Span::styled(
            format!("{} over the run  ", h.component),
            look.s(Slot::Title),
        ),
        Span::styled(
            format!("{flat} weight asked for {}  ", r.version),
            look.s(Slot::Canary),
        ),
        Span::styled(
            format!("{} share served", look.sym.point),
            look.s(Slot::Gauge),
        ),
    ])];
    let scale = Scale { lo: 0.0, hi: 100.0 };
    let percent: fn(f64) -> String = |v| format!("{v:.0}%");
    out.extend(chart::plot(look, &layers, scale, height, (AXIS, percent)));
    out.push(Line::styled(
        format!(
            "{:>w$}{}{}{}",
            "",
            start.format("%H:%M:%S"),
            " ".repeat(width.saturating_sub(16)),
            end.format("%H:%M:%S"),
            w = AXIS
        ),
        look.s(Slot::Muted),
    ));
    out
}
