//! The analysis pane: each judged metric over the run. With room, a chart per metric (canary and
//! baseline lines, the threshold as a line) above a timeline of its verdicts, one mark per
//! interval (pass, fail, no data, error); without, a sparkline per series. Then the counts
//! toward the limits and the health verdicts.

use ratatui::text::{Line, Span};

use super::chart::{self, Layer, Pen, Scale};
use super::panes::judgement;
use super::Look;
use crate::engine::signals::{fmt_num, SignalKind};
use crate::engine::Judgement;
use crate::tui::data::{Row, Series};
use crate::tui::theme::Slot;

/// Cells for a chart's scale on the left.
const AXIS: usize = 9;

/// The pane's lines for `width` × `height` cells.
pub fn analysis(r: &Row, look: &Look, width: usize, height: usize) -> Vec<Line<'static>> {
    let series = r
        .detail
        .as_ref()
        .map(|d| d.series.as_slice())
        .unwrap_or(&[]);
    let tail = limits(r, look);
    // Per series: its header and verdict timeline, and its reason when it does not pass; then
    // the legend and the time span once.
    let fixed: usize = series
        .iter()
        .map(|s| 2 + usize::from(s.judgement != Judgement::Pass))
        .sum::<usize>()
        + 2
        + tail.len();
    let chart_h = match series.len() {
        0 => 0,
        n => (height.saturating_sub(fixed) / n).min(10),
    };
    let mut out = Vec::new();
    if chart_h >= 2 && width > AXIS + 8 {
        out.push(legend(look));
        for s in series {
            out.extend(charted(s, look, width - AXIS, chart_h));
        }
        out.push(span(series, look));
    } else {
        for s in series {
            out.extend(sparklines(s, look, width));
        }
    }
    out.extend(tail);
    if out.is_empty() {
        out.push(Line::from("no verdicts yet"));
    }
    out
}

fn header(s: &Series, look: &Look) -> Line<'static> {
    let (mark, style) = judgement(look, s.judgement);
    let last = s.canary.last().copied().filter(|v| v.is_finite());
    let base = s.baseline.last().copied().filter(|v| v.is_finite());
    let now = last.map(fmt_num).unwrap_or_else(|| "-".into());
    let text = if s.condition {
        let base = base
            .map(|b| format!(", base {}", fmt_num(b)))
            .unwrap_or_default();
        format!("  {} (now {now}{base})", s.expected)
    } else {
        let base = base
            .map(|b| format!(" (base {})", fmt_num(b)))
            .unwrap_or_default();
        format!("  {now}{base} must be {}", s.expected)
    };
    Line::from(vec![
        Span::styled(format!("{mark:<6} "), style),
        Span::styled(s.name.clone(), look.s(Slot::Title)),
        Span::raw(text),
    ])
}

fn legend(look: &Look) -> Line<'static> {
    let [c, b, t] = look.sym.trace;
    let m = look.sym.marks;
    Line::from(vec![
        Span::styled(format!("{} canary ", c.0), look.s(Slot::Canary)),
        Span::styled(format!("{} baseline ", b.0), look.s(Slot::Baseline)),
        Span::styled(format!("{} threshold  ", t.0), look.s(Slot::Threshold)),
        Span::styled(format!("{} pass ", m[0]), look.s(Slot::Ok)),
        Span::styled(format!("{} fail ", m[1]), look.s(Slot::Error)),
        Span::styled(format!("{} nodata ", m[2]), look.s(Slot::NoData)),
        Span::styled(format!("{} error", m[3]), look.s(Slot::Warn)),
    ])
}

/// One scale for a series' canary and baseline values and its threshold, so they compare.
fn scale(s: &Series) -> Scale {
    Scale::of(
        s.canary
            .iter()
            .chain(s.baseline.iter())
            .copied()
            .chain(s.threshold),
    )
}

/// One metric as a chart `height` rows tall and `width` columns wide, with its verdicts.
fn charted(s: &Series, look: &Look, width: usize, height: usize) -> Vec<Line<'static>> {
    let mut out = vec![header(s, look)];
    let scale = scale(s);
    let mut layers = Vec::new();
    if let Some(t) = s.threshold {
        let [_, _, (flat, rise)] = look.sym.trace;
        layers.push(Layer {
            values: vec![t; width],
            pen: Pen::Trace(flat, rise),
            slot: Slot::Threshold,
        });
    }
    let [(cf, cr), (bf, br), _] = look.sym.trace;
    if s.baseline.iter().any(|v| v.is_finite()) {
        layers.push(Layer {
            values: chart::spread(&s.baseline, width),
            pen: Pen::Trace(bf, br),
            slot: Slot::Baseline,
        });
    }
    layers.push(Layer {
        values: chart::spread(&s.canary, width),
        pen: Pen::Trace(cf, cr),
        slot: Slot::Canary,
    });
    out.extend(chart::plot(
        look,
        &layers,
        scale,
        height,
        (AXIS, chart::axis_label),
    ));
    out.push(chart::marks_line(
        look,
        "verdicts",
        &chart::spread_marks(&s.marks, width),
        AXIS,
    ));
    if s.judgement != Judgement::Pass {
        let (_, style) = judgement(look, s.judgement);
        out.push(Line::styled(format!("  {}", s.message), style));
    }
    out
}

/// When the intervals shown were judged, and how many.
fn span(series: &[Series], look: &Look) -> Line<'static> {
    let times = || series.iter().flat_map(|s| s.times.iter().flatten());
    let (first, last) = (times().min(), times().max());
    let n = series.iter().map(|s| s.marks.len()).max().unwrap_or(0);
    let text = match (first, last) {
        (Some(a), Some(b)) => format!(
            "{:>w$}{} {} {}, {n} interval(s)",
            "",
            a.format("%H:%M:%S"),
            look.sym.arrow,
            b.format("%H:%M:%S"),
            w = AXIS
        ),
        _ => format!("{:>w$}{n} interval(s)", "", w = AXIS),
    };
    Line::styled(text, look.s(Slot::Muted))
}

/// One metric as sparklines: the compact form for a small pane.
fn sparklines(s: &Series, look: &Look, width: usize) -> Vec<Line<'static>> {
    let mut out = vec![header(s, look)];
    let spark_w = width.saturating_sub(34).clamp(8, 60);
    let finite = |v: &Vec<f64>| v.iter().copied().filter(|x| x.is_finite()).count();
    // Both series are drawn whole (gaps where no value came), so their columns line up.
    let scale = scale(s);
    let (lo, hi) = (scale.lo, scale.hi);
    if finite(&s.canary) > 0 {
        let mut spans = vec![
            Span::styled("  canary   ", look.s(Slot::Canary)),
            Span::styled(
                look.sym.spark(&s.canary, lo, hi, spark_w),
                look.s(Slot::Canary),
            ),
        ];
        if let Some(t) = s.threshold {
            spans.push(Span::styled(
                format!("  threshold {} ({})", fmt_num(t), look.sym.level(t, lo, hi)),
                look.s(Slot::Threshold),
            ));
        }
        out.push(Line::from(spans));
    }
    if finite(&s.baseline) > 0 {
        out.push(Line::from(vec![
            Span::styled("  baseline ", look.s(Slot::Baseline)),
            Span::styled(
                look.sym.spark(&s.baseline, lo, hi, spark_w),
                look.s(Slot::Baseline),
            ),
        ]));
    }
    if s.judgement != Judgement::Pass {
        let (_, style) = judgement(look, s.judgement);
        out.push(Line::styled(format!("  {}", s.message), style));
    }
    out
}

/// Counts toward the limits, from the latest verdicts, and the health verdicts.
fn limits(r: &Row, look: &Look) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let Some(snap) = &r.snapshot else {
        return out;
    };
    if let Some(c) = snap.last_verdicts.iter().find_map(|v| v.counts.clone()) {
        out.push(Line::styled(
            format!(
                "limits: failures {}/{}  no data {}/{} in a row  errors {}/{} in a row",
                c.failures,
                c.failure_limit,
                c.no_data_in_row,
                c.no_data_limit,
                c.errors_in_row,
                c.error_limit
            ),
            look.s(Slot::Muted),
        ));
    }
    for v in snap
        .last_verdicts
        .iter()
        .filter(|v| v.source == SignalKind::Health)
    {
        let (mark, style) = judgement(look, v.judgement);
        out.push(Line::from(vec![
            Span::styled(format!("{mark:<6} "), style),
            Span::raw(format!("health: {}", v.message)),
        ]));
    }
    out
}
