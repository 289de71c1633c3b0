//! The main view's text panes for one deployment, as lines: strategy progress, instance health
//! and pending approvals (traffic and analysis, with their charts, are `traffic` and `analysis`).

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use super::{dur, Look};
use crate::engine::signals::fmt_num;
use crate::engine::Judgement;
use crate::tui::data::Row;
use crate::tui::model::Model;
use crate::tui::theme::Slot;

pub(super) fn judgement(look: &Look, j: Judgement) -> (&'static str, Style) {
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
    // The instance column gives way in a narrow pane, so that a row stays on one line.
    let id_w = width.saturating_sub(36).clamp(12, 24);
    if local().next().is_some() {
        out.push(Line::styled(
            format!(
                "{:<id_w$} {:<5} {:<10} {:>7} {:>5} {:>4}",
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
            Span::raw(format!(
                "{} {:<5} ",
                crate::text::pad(&crate::text::cut(&st.id, id_w), id_w, false),
                st.probe
            )),
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
