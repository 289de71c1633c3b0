//! Drawing the console from a [`Model`]: the deployment list with status badges, and for the
//! selected deployment its strategy progress, traffic split, instance health, latest verdicts
//! and events. ANSI-16 colours only, so it reads the same over SSH.
//!
//! Owns: layout and text. Must not touch: state (rendering is read-only).

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, Paragraph, Wrap};
use ratatui::Frame;

use super::keymap::{self, Mode};
use super::model::{Model, Row, PANES};
use crate::engine::signals::fmt_num;
use crate::engine::Judgement;

fn badge(status: &str) -> (&'static str, Color) {
    match status {
        "progressing" => ("RUN ", Color::Cyan),
        "paused" => ("PAUS", Color::Yellow),
        "waiting_approval" => ("GATE", Color::Magenta),
        "rolling_back" => ("BACK", Color::Yellow),
        "succeeded" => ("OK  ", Color::Green),
        "rolled_back" => ("RBCK", Color::Red),
        "failed" => ("FAIL", Color::Red),
        _ => ("....", Color::Gray),
    }
}

/// Draw everything.
pub fn draw(f: &mut Frame, m: &Model) {
    let area = f.area();
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
        ])
        .split(area);
    let header = format!(
        " cutover console  user {}{}  {} deployment(s)",
        m.user,
        if m.read_only { "  [read-only]" } else { "" },
        m.rows.len()
    );
    f.render_widget(
        Paragraph::new(header).style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[0],
    );
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(35), Constraint::Percentage(65)])
        .split(rows[1]);
    list(f, m, cols[0]);
    details(f, m, cols[1]);
    footer(f, m, rows[2]);
    match m.mode {
        Mode::Help => help(f, m, area),
        Mode::Confirm => confirm(f, m, area),
        _ => {}
    }
}

fn list(f: &mut Frame, m: &Model, area: Rect) {
    let items: Vec<ListItem> = m
        .visible()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (b, color) = badge(&r.status);
            let mut style = Style::default();
            if i == m.selected {
                style = style.add_modifier(Modifier::REVERSED | Modifier::BOLD);
            }
            ListItem::new(Line::from(vec![
                Span::styled(format!("{b} "), Style::default().fg(color)),
                Span::raw(format!(
                    "{} {} ({})",
                    r.deployment, r.version, r.environment
                )),
            ]))
            .style(style)
        })
        .collect();
    let title = if m.filter.is_empty() {
        " deployments ".to_string()
    } else {
        format!(" deployments /{} ", m.filter)
    };
    f.render_widget(
        List::new(items).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}

fn details(f: &mut Frame, m: &Model, area: Rect) {
    let Some(r) = m.current() else {
        f.render_widget(
            Paragraph::new(
                "no deployments in the state store yet\n\nstart one: cutover apply SPEC",
            )
            .block(Block::default().borders(Borders::ALL).title(" details ")),
            area,
        );
        return;
    };
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(60), Constraint::Percentage(40)])
        .split(area);
    let title: String = PANES
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i == m.pane {
                format!("[{p}]")
            } else {
                format!(" {p} ")
            }
        })
        .collect::<Vec<_>>()
        .join("");
    let lines = match PANES[m.pane] {
        "progress" => progress(r),
        "traffic" => traffic(r),
        "health" => health(r),
        _ => analysis(r),
    };
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {title} ")),
        ),
        parts[0],
    );
    let height = parts[1].height.saturating_sub(2) as usize;
    let start = r.events.len().saturating_sub(height);
    let events: Vec<Line> = r.events[start..]
        .iter()
        .map(|e| Line::from(e.clone()))
        .collect();
    f.render_widget(
        Paragraph::new(events).block(Block::default().borders(Borders::ALL).title(" events ")),
        parts[1],
    );
}

fn progress(r: &Row) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(format!(
        "{} run #{}  {} {}  {}",
        r.deployment, r.run, r.strategy, r.version, r.status
    ))];
    if !r.live && !r.finished {
        out.push(Line::from(Span::styled(
            "no cutover process runs this deployment (interrupted)",
            Style::default().fg(Color::Yellow),
        )));
    }
    if let Some(s) = &r.snapshot {
        if s.steps > 0 {
            let done = if r.finished { s.steps } else { s.step };
            let width = 20usize;
            let filled = (done * width) / s.steps.max(1);
            out.push(Line::from(format!(
                "step {}/{} [{}{}]",
                (s.step + 1).min(s.steps),
                s.steps,
                "#".repeat(filled),
                "-".repeat(width - filled)
            )));
            out.push(Line::from(format!("  {}", s.step_description)));
        }
        if let Some(g) = &s.gate {
            out.push(Line::from(Span::styled(
                format!(
                    "gate {g} waits for approval: press a, or cutover approve {} --gate {g}",
                    r.deployment
                ),
                Style::default().fg(Color::Magenta),
            )));
        }
    }
    if let Some(reason) = &r.reason {
        out.push(Line::from(format!("reason: {reason}")));
    }
    out
}

fn traffic(r: &Row) -> Vec<Line<'static>> {
    let Some(s) = &r.snapshot else {
        return vec![Line::from("no traffic data yet")];
    };
    let mut out = Vec::new();
    for t in &s.traffic {
        out.push(Line::from(t.component.clone()));
        for w in &t.weights {
            let bar = "#".repeat((w.weight as usize) / 5);
            out.push(Line::from(format!(
                "  {:<10} {:>3}% {bar}",
                w.version, w.weight
            )));
        }
    }
    if out.is_empty() {
        out.push(Line::from("no traffic data yet"));
    }
    out
}

fn health(r: &Row) -> Vec<Line<'static>> {
    let Some(s) = &r.snapshot else {
        return vec![Line::from("no instances seen yet")];
    };
    let mut out = Vec::new();
    for i in &s.instances {
        let st = &i.status;
        let state = if st.unhealthy {
            Span::styled("UNHEALTHY", Style::default().fg(Color::Red))
        } else if st.ready {
            Span::styled("ready", Style::default().fg(Color::Green))
        } else {
            Span::styled("not ready", Style::default().fg(Color::Yellow))
        };
        out.push(Line::from(vec![
            Span::raw(format!("{:<22} {:<5} ", st.id, st.probe)),
            state,
            Span::raw(format!(
                " {} fails {} restarts {}{}",
                st.last_latency_ms
                    .map(|l| format!("{l}ms"))
                    .unwrap_or_else(|| "-".into()),
                st.consecutive_failures,
                st.restarts,
                st.detail
                    .as_ref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )),
        ]));
    }
    if out.is_empty() {
        out.push(Line::from("no instances seen yet"));
    }
    out
}

fn analysis(r: &Row) -> Vec<Line<'static>> {
    let Some(s) = &r.snapshot else {
        return vec![Line::from("no verdicts yet")];
    };
    let mut out = Vec::new();
    for v in &s.last_verdicts {
        let (mark, color) = match v.judgement {
            Judgement::Pass => ("pass", Color::Green),
            Judgement::Fail => ("FAIL", Color::Red),
            Judgement::NoData => ("no data", Color::Yellow),
            Judgement::Error => ("ERROR", Color::Yellow),
        };
        let values = match (v.value, v.baseline) {
            (Some(c), Some(b)) => format!(" {} vs baseline {}", fmt_num(c), fmt_num(b)),
            (Some(c), None) => format!(" {}", fmt_num(c)),
            _ => String::new(),
        };
        out.push(Line::from(vec![
            Span::styled(format!("{mark:<7} "), Style::default().fg(color)),
            Span::raw(format!(
                "{}{values} ({}): {}",
                v.signal, v.expected, v.message
            )),
        ]));
    }
    if out.is_empty() {
        out.push(Line::from("no verdicts yet"));
    }
    out
}

fn footer(f: &mut Frame, m: &Model, area: Rect) {
    let text = match (&m.message, m.mode) {
        (_, Mode::Filter) => format!(" filter: /{}_  (enter keep, esc clear)", m.filter),
        (Some(msg), _) => format!(" {msg}"),
        (None, _) if m.read_only => " j/k move  tab pane  / filter  ? help  q quit".to_string(),
        (None, _) => " j/k move  tab pane  p pause  r resume  a approve  P promote  U rollback  ? help  q quit".to_string(),
    };
    f.render_widget(
        Paragraph::new(text).style(Style::default().add_modifier(Modifier::REVERSED)),
        area,
    );
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn help(f: &mut Frame, m: &Model, area: Rect) {
    let lines: Vec<Line> = keymap::help(m.read_only)
        .into_iter()
        .map(|(k, h)| Line::from(format!(" {k:<10} {h}")))
        .collect();
    let rect = centered(area, 64, lines.len() as u16 + 2);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (esc closes) "),
        ),
        rect,
    );
}

fn confirm(f: &mut Frame, m: &Model, area: Rect) {
    let Some(c) = &m.confirm else { return };
    let mut lines = vec![Line::from(c.question.clone()), Line::from("")];
    lines.extend(c.detail.iter().map(|d| Line::from(format!("  {d}"))));
    lines.push(Line::from(""));
    lines.push(Line::from("y/enter yes   n/esc no"));
    let rect = centered(area, 70, lines.len() as u16 + 2);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" confirm ")),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    use crate::engine::event::{ComponentTraffic, Snapshot, Status, Weight};
    use crate::tui::model::Row;

    fn model() -> Model {
        let snap = Snapshot {
            deployment: "shop".into(),
            run: 7,
            version: "1.1.0".into(),
            strategy: "canary".into(),
            environment: "prod".into(),
            status: Status::WaitingApproval,
            step: 6,
            steps: 10,
            step_description: "gate canary-50: wait for approval (autoPromote: false)".into(),
            gate: Some("canary-50".into()),
            traffic: vec![ComponentTraffic {
                component: "web".into(),
                weights: vec![
                    Weight {
                        revision: "web@1.0.0.r1".into(),
                        version: "1.0.0".into(),
                        weight: 50,
                    },
                    Weight {
                        revision: "web@1.1.0.r2".into(),
                        version: "1.1.0".into(),
                        weight: 50,
                    },
                ],
            }],
            instances: Vec::new(),
            last_verdicts: Vec::new(),
            reason: None,
            outcome: None,
        };
        let mut m = Model::new("alice", false);
        m.set_rows(vec![
            Row {
                deployment: "shop".into(),
                run: 7,
                version: "1.1.0".into(),
                environment: "prod".into(),
                strategy: "canary".into(),
                status: "waiting_approval".into(),
                live: true,
                finished: false,
                reason: None,
                snapshot: Some(snap),
                events: vec!["12:00:01 [7/10] web: gate canary-50".into()],
            },
            Row {
                deployment: "api".into(),
                run: 3,
                version: "2.0.0".into(),
                environment: "staging".into(),
                strategy: "rolling".into(),
                status: "rolled_back".into(),
                live: false,
                finished: true,
                reason: Some("rolled back to 1.9.0: metric error_rate failed".into()),
                snapshot: None,
                events: Vec::new(),
            },
        ]);
        m
    }

    fn render(m: &Model, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, m)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut out = String::new();
        for y in 0..h {
            for x in 0..w {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn main_view_80x24() {
        insta::assert_snapshot!(render(&model(), 80, 24));
    }

    #[test]
    fn main_view_120x40_traffic_pane() {
        let mut m = model();
        m.pane = 1;
        insta::assert_snapshot!(render(&m, 120, 40));
    }

    #[test]
    fn help_and_confirm_overlays() {
        let mut m = model();
        m.mode = Mode::Help;
        insta::assert_snapshot!("help", render(&m, 80, 24));
        let mut m = model();
        let _ = m.key(ratatui::crossterm::event::KeyEvent::new(
            ratatui::crossterm::event::KeyCode::Char('U'),
            ratatui::crossterm::event::KeyModifiers::NONE,
        ));
        insta::assert_snapshot!("confirm_rollback", render(&m, 80, 24));
    }

    #[test]
    fn rendering_an_unchanged_model_twice_changes_no_cell() {
        let m = model();
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        t.draw(|f| draw(f, &m)).unwrap();
        let first = t.backend().buffer().clone();
        t.draw(|f| draw(f, &m)).unwrap();
        assert_eq!(&first, t.backend().buffer());
    }
}
