//! Drawing the console from a [`Model`]: the main view (deployments and the selected one's panes),
//! the history view with charts, the drill-down, and the overlays (help, confirm, quit, command
//! line). Colours come from the theme's semantic slots and glyphs from the symbol set, so the same
//! code draws ANSI-16, truecolor, mono and ASCII.
//!
//! Owns: layout and text. Must not touch: state (rendering is read-only and has no clock of its
//! own: times are computed from `Model::now` and, for ages and the history's range,
//! `Model::minute`).

mod analysis;
mod body;
mod chart;
mod columns;
mod delivery;
mod history;
mod main_view;
mod panes;
mod pods;
mod traffic;

use crate::store::Status;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use super::keymap::{self, Mode, View};
use super::model::{Model, COMMANDS};
use super::symbols::Symbols;
use super::theme::{Depth, Slot, Theme};

/// How things look: the resolved theme and the glyph set.
#[derive(Debug, Clone, PartialEq)]
pub struct Look {
    /// Resolved for `depth`.
    pub theme: Theme,
    pub depth: Depth,
    pub sym: Symbols,
}

impl Look {
    /// A theme as written, resolved for a colour depth, with a glyph set.
    pub fn new(theme: &Theme, depth: Depth, sym: Symbols) -> Look {
        Look {
            theme: theme.resolve(depth),
            depth,
            sym,
        }
    }

    pub fn s(&self, slot: Slot) -> Style {
        self.theme.style(slot)
    }

    /// A bordered block with a title. It has no style of its own: the frame under it is already
    /// in the text style (a dialog over a cleared area sets its own).
    pub fn block<'a>(&self, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
        Block::default()
            .borders(Borders::ALL)
            .border_set(self.sym.border)
            .border_style(self.s(if focused {
                Slot::BorderFocus
            } else {
                Slot::Border
            }))
            .title(title)
            .title_style(self.s(Slot::Title))
    }

    /// The badge and style for a run status.
    pub fn status(&self, status: Status) -> (&'static str, Style) {
        let (text, slot) = match status {
            Status::Progressing => ("RUN ", Slot::StatusProgressing),
            Status::Paused => ("PAUS", Slot::StatusPaused),
            Status::WaitingApproval => ("GATE", Slot::StatusWaiting),
            Status::RollingBack => ("BACK", Slot::StatusRollingBack),
            Status::Succeeded => ("OK  ", Slot::StatusSucceeded),
            Status::RolledBack => ("RBCK", Slot::StatusRolledBack),
            Status::Failed => ("FAIL", Slot::StatusFailed),
            Status::Pending => ("....", Slot::StatusPending),
        };
        (text, self.s(slot))
    }
}

/// The first row to show of `len` rows in `height` lines so that row `selected` is on screen.
pub fn scroll_start(selected: usize, height: usize, len: usize) -> usize {
    selected
        .saturating_sub(height.saturating_sub(1))
        .min(len.saturating_sub(height))
}

/// Seconds as people read them: 42s, 3m05s, 1h02m.
pub fn dur(secs: i64) -> String {
    let s = secs.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// Draw everything.
pub fn draw(f: &mut Frame, m: &Model, look: &Look) {
    let area = f.area();
    body::fill(f.buffer_mut(), look.s(Slot::Text));
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(u16::from(m.demo)),
            Constraint::Length(1),
        ])
        .split(area);
    header(f, m, look, rows[0]);
    if m.demo {
        let hint = Line::from(format!(" {}", hint(m)));
        body::row(f.buffer_mut(), rows[2], &hint, look.s(Slot::Key));
    }
    match m.view {
        View::Main => main_view::draw(f, m, look, rows[1]),
        View::History => history::draw(f, m, look, rows[1]),
        View::Drill => history::drill(f, m, look, rows[1]),
    }
    footer(f, m, look, rows[3]);
    match m.mode {
        Mode::Help => help(f, m, look, area),
        Mode::Confirm => confirm(f, m, look, area),
        Mode::Quit => quit(f, m, look, area),
        _ => {}
    }
}

/// The demo's hint: what to press next, from what is on screen.
fn hint(m: &Model) -> String {
    if m.view != View::Main {
        return "esc goes back; enter drills into a run; the demo keeps rolling meanwhile".into();
    }
    if let Some(r) = m.gates().first() {
        let gate = r
            .snapshot
            .as_ref()
            .and_then(|s| s.gate.clone())
            .unwrap_or_default();
        return format!(
            "demo: {} {} waits at gate {gate}: select it and press a to approve (demo-bot does after a minute)",
            r.deployment, r.version
        );
    }
    match m.current() {
        Some(r) if r.status == Status::RollingBack => format!(
            "demo: {} {} failed its analysis and is rolling back by itself: see why in analysis and events",
            r.deployment, r.version
        ),
        Some(r) if r.status == Status::RolledBack => format!(
            "demo: {} {} rolled back by itself: enter shows its whole story; H opens 60 days of history",
            r.deployment, r.version
        ),
        Some(r) if !r.finished => format!(
            "demo: {} {} is rolling out: l/h moves the focus, z zooms a pane; j/k picks another deployment",
            r.deployment, r.version
        ),
        _ => "demo: H opens 60 days of history with delivery measures; enter drills into a run; ? lists every key".into(),
    }
}

fn header(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let gates = m.gates().len();
    let view = match m.view {
        View::Main => "deployments",
        View::History => "history",
        View::Drill => "drill-down",
    };
    let mut spans = vec![
        Span::styled(
            " cutover ",
            look.s(Slot::Header).add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("{view}  "), look.s(Slot::Header)),
        Span::styled(
            format!(
                "operator {}{}  {} deployment(s)",
                m.user,
                if m.read_only { " [read-only]" } else { "" },
                m.rows.len()
            ),
            look.s(Slot::Header),
        ),
    ];
    if gates > 0 {
        spans.push(Span::styled(
            format!("  {} {gates} gate(s) waiting", look.sym.gate),
            look.s(Slot::Header).patch(look.s(Slot::Gate)),
        ));
    }
    if m.demo {
        spans.push(Span::styled("  demo", look.s(Slot::Header)));
    }
    // The bar's style fills the rest of the row (no spaces to write).
    body::row(
        f.buffer_mut(),
        area,
        &Line::from(spans),
        look.s(Slot::Header),
    );
}

fn footer(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let (text, slot) = match (&m.quitting, &m.message, m.mode) {
        (Some(q), _, _) => (
            format!(" {q} {} deployment(s), then quitting...", m.owned.len()),
            Slot::Footer,
        ),
        (_, _, Mode::Filter) => (
            format!(" /{}_   enter keeps it, esc clears it", m.filter),
            Slot::CommandLine,
        ),
        (_, _, Mode::Command) => (format!(" :{}_", m.input), Slot::CommandLine),
        (_, Some(msg), _) => (format!(" {msg}"), Slot::Footer),
        (_, None, _) => {
            let short = |k: &str| match k {
                "enter" => Some("drill"),
                "H" => Some("history"),
                "esc/H" | "esc" if m.view != View::Main => Some("back"),
                "p" => Some("pause"),
                "r" => Some("resume"),
                "a" => Some("approve"),
                "U" => Some("rollback"),
                "e" => Some("environment"),
                "d" => Some("deployment"),
                "<" => Some("shorter"),
                ">" => Some("longer"),
                "[" if m.view == View::History => Some("earlier"),
                "x" => Some("export"),
                ":" => Some("command"),
                "?" => Some("help"),
                "q" => Some("quit"),
                _ => None,
            };
            let keys: Vec<String> = keymap::help(m.view, m.read_only)
                .into_iter()
                .filter_map(|(k, _)| short(&k).map(|s| format!("{k} {s}")))
                .collect();
            (format!(" {}", keys.join("  ")), Slot::Footer)
        }
    };
    body::row(f.buffer_mut(), area, &Line::from(text), look.s(slot));
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

fn dialog(f: &mut Frame, look: &Look, area: Rect, title: &str, lines: Vec<Line>, w: u16) {
    let rect = centered(area, w, lines.len() as u16 + 2);
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .style(look.s(Slot::Dialog))
            .block(
                look.block(format!(" {title} "), true)
                    .style(look.s(Slot::Dialog)),
            ),
        rect,
    );
}

fn help(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let mut lines: Vec<Line> = keymap::help(m.view, m.read_only)
        .into_iter()
        .map(|(k, h)| {
            Line::from(vec![
                Span::styled(format!(" {k:<10} "), look.s(Slot::Key)),
                Span::raw(h),
            ])
        })
        .collect();
    if area.height as usize > lines.len() + COMMANDS.len() + 6 {
        lines.push(Line::from(""));
        lines.push(Line::styled(" commands after :", look.s(Slot::Title)));
        for (c, h) in COMMANDS {
            lines.push(Line::from(vec![
                Span::styled(format!(" {c:<19} "), look.s(Slot::Key)),
                Span::raw(*h),
            ]));
        }
    }
    dialog(f, look, area, "keys (esc closes)", lines, 76);
}

fn confirm(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let Some(c) = &m.confirm else { return };
    let mut lines = vec![Line::from(c.question.clone()), Line::from("")];
    lines.extend(c.detail.iter().map(|d| Line::from(format!("  {d}"))));
    lines.push(Line::from(""));
    lines.push(Line::styled("y/enter yes   n/esc no", look.s(Slot::Key)));
    dialog(f, look, area, "confirm", lines, 72);
}

fn quit(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let running = m.running_owned();
    let names: Vec<String> = m
        .rows
        .iter()
        .filter(|r| running.contains(&r.run))
        .map(|r| format!("{} {}", r.deployment, r.version))
        .collect();
    let mut lines = vec![
        Line::from(format!(
            "This console runs {} deployment(s): {}.",
            running.len(),
            names.join(", ")
        )),
        Line::from("What should happen to them?"),
        Line::from(""),
    ];
    for (k, h) in keymap::quit_choices(m.read_only) {
        lines.push(Line::from(vec![
            Span::styled(format!(" {k:<5} "), look.s(Slot::Key)),
            Span::raw(h),
        ]));
    }
    dialog(f, look, area, "quit", lines, 72);
}

#[cfg(test)]
mod tests;
