//! The main view's panes for one deployment, as lines: strategy progress, traffic split,
//! instance health, canary metrics with sparklines, and pending approvals.

use crate::engine::signals::SignalKind;
use crate::spec::Strategy;
use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{dur, Look};
use crate::engine::signals::fmt_num;
use crate::engine::Judgement;
use crate::tui::data::Row;
use crate::tui::model::Model;
use crate::tui::theme::Slot;

fn judgement(look: &Look, j: Judgement) -> (&'static str, Style) {
    match j {
        Judgement::Pass => ("pass", look.s(Slot::Ok)),
        Judgement::Fail => ("FAIL", look.s(Slot::Error)),
        Judgement::NoData => ("nodata", look.s(Slot::NoData)),
        Judgement::Error => ("ERROR", look.s(Slot::Warn)),
    }
}

pub fn progress(r: &Row, m: &Model, look: &Look, height: usize) -> Vec<Line<'static>> {
    let (badge, style) = look.status(r.status);
    let mut out = vec![Line::from(vec![
        Span::styled(format!("{} ", badge.trim()), style),
        Span::styled(
            format!("{} {}", r.deployment, r.version),
            look.s(Slot::Title),
        ),
        Span::raw(format!(
            "  {} in {}, run #{} by {}",
            r.strategy, r.environment, r.run, r.initiator
        )),
    ])];
    if !r.live && !r.finished {
        out.push(Line::styled(
            format!(
                "{} interrupted: no cutover process runs it. r takes it over here.",
                look.sym.paused
            ),
            look.s(Slot::Warn),
        ));
    }
    let snap = r.snapshot.as_ref();
    let live = r.detail.as_ref();
    // Timers: time in step and the countdown to the next decision.
    if let (Some(now), false) = (m.now, r.finished) {
        let mut t = Vec::new();
        if let Some(since) = live.and_then(|l| l.step_since) {
            t.push(format!("in this step {}", dur((now - since).num_seconds())));
        }
        if let Some(next) = live.and_then(|l| l.next_decision) {
            let left = (next - now).num_seconds();
            t.push(if left > 0 {
                format!("next decision in {}", dur(left))
            } else {
                "deciding now".to_string()
            });
        }
        if !t.is_empty() {
            out.push(Line::styled(t.join(", "), look.s(Slot::Muted)));
        }
    }
    if let Some(g) = snap.and_then(|s| s.gate.as_ref()) {
        out.push(Line::styled(
            format!(
                "{} gate {g} waits for approval: press a (or cutover approve {} --gate {g})",
                look.sym.gate, r.deployment
            ),
            look.s(Slot::Gate),
        ));
    }
    if let Some(reason) = &r.reason {
        out.push(Line::styled(
            format!("reason: {reason}"),
            look.s(Slot::Muted),
        ));
    }
    // The step timeline, scrolled so the current step shows.
    let steps = &r.plan;
    if !steps.is_empty() {
        let cur = snap.map(|s| s.step).unwrap_or(0);
        let room = height.saturating_sub(out.len() + 1).max(3);
        let start = cur
            .saturating_sub(room / 3)
            .min(steps.len().saturating_sub(room));
        out.push(Line::styled(
            format!(
                "steps {}/{}",
                if r.finished {
                    steps.len()
                } else {
                    (cur + 1).min(steps.len())
                },
                steps.len()
            ),
            look.s(Slot::Title),
        ));
        for (i, d) in steps.iter().enumerate().skip(start).take(room) {
            let (icon, slot) =
                if r.finished && r.status == crate::store::Status::Succeeded || i < cur {
                    (look.sym.done, Slot::Ok)
                } else if i == cur && !r.finished {
                    (look.sym.current, Slot::StatusProgressing)
                } else if i == cur {
                    (look.sym.fail, Slot::Error)
                } else {
                    (look.sym.todo, Slot::Muted)
                };
            let text_style = if i == cur && !r.finished {
                look.s(Slot::Title)
            } else if i < cur || r.finished {
                look.s(Slot::Text)
            } else {
                look.s(Slot::Muted)
            };
            out.push(Line::from(vec![
                Span::styled(format!(" {icon} "), look.s(slot)),
                Span::styled(format!("{:>2}. {d}", i + 1), text_style),
            ]));
        }
    }
    out
}

pub fn traffic(r: &Row, look: &Look, width: usize) -> Vec<Line<'static>> {
    let Some(s) = &r.snapshot else {
        return vec![Line::from("no traffic data yet")];
    };
    let bar_w = width.saturating_sub(38).clamp(4, 40);
    let (new_role, old_role) = match r.strategy {
        Strategy::BlueGreen => ("green", "blue"),
        Strategy::Canary => ("canary", "stable"),
        Strategy::Rolling | Strategy::Recreate => ("new", "old"),
    };
    let mut out = Vec::new();
    for t in &s.traffic {
        let total: f64 = t.measured_rps.values().sum();
        // A replica ratio (Kubernetes without a mesh): the platform serves the nearest split
        // its pod counts allow; each revision shows the weight asked and the share reached,
        // and its bar draws the share reached.
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
    }
    if out.is_empty() {
        out.push(Line::from("no traffic data yet"));
    }
    out
}

pub fn health(r: &Row, look: &Look, width: usize) -> Vec<Line<'static>> {
    let Some(s) = &r.snapshot else {
        return vec![Line::from("no instances seen yet")];
    };
    // Pods (instances with a phase) as kubectl lists them; other instances as before.
    let mut out = if s.instances.iter().any(|i| i.status.phase.is_some()) {
        super::pods::table(&s.instances, look, width)
    } else {
        Vec::new()
    };
    let local = || s.instances.iter().filter(|i| i.status.phase.is_none());
    if local().next().is_some() {
        out.push(Line::styled(
            format!(
                "{:<24} {:<5} {:<10} {:>7} {:>5} {:>4}",
                "instance", "probe", "status", "latency", "fails", "rst"
            ),
            look.s(Slot::Muted),
        ));
    }
    for i in local() {
        let st = &i.status;
        let (state, slot) = if st.unhealthy {
            ("UNHEALTHY", Slot::Error)
        } else if st.ready {
            ("ready", Slot::Ok)
        } else {
            ("not ready", Slot::Warn)
        };
        let mut spans = vec![
            Span::raw(format!("{:<24} {:<5} ", st.id, st.probe)),
            Span::styled(format!("{state:<10}"), look.s(slot)),
            Span::raw(format!(
                " {:>7} {:>5} {:>4}",
                st.last_latency_ms
                    .map(|l| format!("{}ms", fmt_num((l * 10.0).round() / 10.0)))
                    .unwrap_or_else(|| "-".into()),
                st.consecutive_failures,
                st.restarts,
            )),
        ];
        if let Some(d) = &st.detail {
            spans.push(Span::styled(format!("  {d}"), look.s(Slot::Muted)));
        }
        out.push(Line::from(spans));
    }
    if out.is_empty() {
        out.push(Line::from("no instances seen yet"));
    }
    out
}

pub fn analysis(r: &Row, look: &Look, width: usize) -> Vec<Line<'static>> {
    let series = r
        .detail
        .as_ref()
        .map(|d| d.series.as_slice())
        .unwrap_or(&[]);
    let mut out = Vec::new();
    let spark_w = width.saturating_sub(34).clamp(8, 60);
    for s in series {
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
        out.push(Line::from(vec![
            Span::styled(format!("{mark:<6} "), style),
            Span::styled(s.name.clone(), look.s(Slot::Title)),
            Span::raw(text),
        ]));
        let finite = |v: &Vec<f64>| {
            v.iter()
                .copied()
                .filter(|x| x.is_finite())
                .collect::<Vec<_>>()
        };
        let (c, b) = (finite(&s.canary), finite(&s.baseline));
        // Both series are drawn whole (gaps where no value came), so their columns line up.
        let (cs, bs) = (&s.canary, &s.baseline);
        let hi = c
            .iter()
            .chain(b.iter())
            .copied()
            .chain(s.threshold)
            .fold(0.0f64, f64::max);
        let lo = c
            .iter()
            .chain(b.iter())
            .copied()
            .chain(s.threshold)
            .fold(f64::INFINITY, f64::min)
            .min(0.0);
        if !c.is_empty() {
            let mut spans = vec![
                Span::styled("  canary   ", look.s(Slot::Canary)),
                Span::styled(look.sym.spark(cs, lo, hi, spark_w), look.s(Slot::Canary)),
            ];
            if let Some(t) = s.threshold {
                spans.push(Span::styled(
                    format!("  threshold {} ({})", fmt_num(t), look.sym.level(t, lo, hi)),
                    look.s(Slot::Threshold),
                ));
            }
            out.push(Line::from(spans));
        }
        if !b.is_empty() {
            out.push(Line::from(vec![
                Span::styled("  baseline ", look.s(Slot::Baseline)),
                Span::styled(look.sym.spark(bs, lo, hi, spark_w), look.s(Slot::Baseline)),
            ]));
        }
        if s.judgement != Judgement::Pass {
            out.push(Line::styled(format!("  {}", s.message), style));
        }
    }
    // Counts toward the limits, from the latest verdicts.
    if let Some(snap) = &r.snapshot {
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
    }
    if out.is_empty() {
        out.push(Line::from("no verdicts yet"));
    }
    out
}

pub fn approvals(m: &Model, look: &Look) -> Vec<Line<'static>> {
    let gates = m.gates();
    if gates.is_empty() {
        return vec![Line::styled("no gate is waiting", look.s(Slot::Muted))];
    }
    let mut out = Vec::new();
    for r in gates {
        let gate = r
            .snapshot
            .as_ref()
            .and_then(|s| s.gate.clone())
            .unwrap_or_default();
        let waited = match (m.now, r.detail.as_ref().and_then(|d| d.gate_since)) {
            (Some(now), Some(since)) => format!(", waiting {}", dur((now - since).num_seconds())),
            _ => String::new(),
        };
        out.push(Line::from(vec![
            Span::styled(format!("{} ", look.sym.gate), look.s(Slot::Gate)),
            Span::styled(
                format!("{} {} gate {gate}", r.deployment, r.version),
                look.s(Slot::Title),
            ),
            Span::raw(format!(" ({}{waited})", r.environment)),
        ]));
        match r.snapshot.as_ref().and_then(|s| s.gate_view.as_ref()) {
            Some(v) => {
                let approved = if v.approved_by.is_empty() {
                    String::new()
                } else {
                    format!(": {}", v.approved_by.join(", "))
                };
                out.push(Line::from(format!(
                    "   approvals {} of {}{approved}",
                    v.approved_by.len(),
                    v.required
                )));
                out.push(Line::from(format!("   may approve: {}", v.may_approve)));
                // Count from when the gate opened, with the console's clock.
                let left = |after: u64| match (m.now, v.due_at(after)) {
                    (Some(now), Some(at)) => format!("in {}", dur((at - now).num_seconds())),
                    _ => format!("{} after opening", dur((after / 1000) as i64)),
                };
                if let Some((what, after)) = &v.next_escalation {
                    out.push(Line::styled(
                        format!("   next escalation {}: {what}", left(*after)),
                        look.s(Slot::Warn),
                    ));
                }
                out.push(Line::from(match v.timeout_ms {
                    Some(t) => format!("   time left: {}", left(t).trim_start_matches("in ")),
                    None => "   time left: no timeout".to_string(),
                }));
            }
            None => out.push(Line::from(
                "   who may approve: any operator on this host; time left: no timeout",
            )),
        }
        out.push(Line::styled(
            format!(
                "   a here, or: cutover approve {} --gate {gate}   reject: cutover reject {} --reason ...",
                r.deployment, r.deployment
            ),
            look.s(Slot::Muted),
        ));
    }
    out
}
