//! The main view. On a terminal of [`DASHBOARD`] or more: the deployments as a table sized to
//! its content above every pane of the selected one at once (progress, approvals while a gate
//! waits, health and events on the left; traffic and analysis on the right). Smaller: the
//! deployments as a list beside the panes as tabs. In both, `z` gives the focused pane the
//! whole view.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, Paragraph};
use ratatui::Frame;

use super::body::Boxed;
use super::columns::{widest, Column, Widths, GAP};

use super::{analysis, panes, traffic, Look};
use crate::tui::data::Row;
use crate::tui::model::{Model, PANES};
use crate::tui::theme::Slot;

/// The smallest terminal (columns, rows) that shows every pane at once.
pub const DASHBOARD: (u16, u16) = (120, 36);

pub fn draw(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let Some(r) = m.current() else {
        empty(f, m, look, area);
        return;
    };
    if m.zoom {
        pane(f, m, r, look, area, m.pane, " (z: back)");
        return;
    }
    // The body is the screen less its header and footer lines.
    if area.width >= DASHBOARD.0 && area.height + 2 + u16::from(m.demo) >= DASHBOARD.1 {
        dashboard(f, m, r, look, area);
    } else {
        tabs(f, m, r, look, area);
    }
}

fn empty(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let text = if m.read_only {
        "no deployments in the state store yet"
    } else {
        "no deployments in the state store yet\n\nstart one: :apply SPEC here, or cutover apply SPEC"
    };
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(30), Constraint::Min(20)])
        .split(area);
    list(f, m, look, cols[0]);
    f.render_widget(
        Paragraph::new(text).block(look.block(" details ", false)),
        cols[1],
    );
}

fn dashboard(f: &mut Frame, m: &Model, r: &Row, look: &Look, area: Rect) {
    let shown = m.visible().len() as u16;
    let table_h = shown.clamp(1, (area.height / 5).max(3)) + 3;
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Length(table_h), Constraint::Min(10)])
        .split(area);
    table(f, m, look, rows[0]);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(45), Constraint::Percentage(55)])
        .split(rows[1]);
    let gate_lines = if m.gates().is_empty() && PANES[m.pane] != "approvals" {
        0
    } else {
        (panes::approvals(m, look).len() as u16 + 2).min(cols[0].height / 4)
    };
    let h = cols[0].height;
    let left = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(h * 33 / 100),
            Constraint::Length(gate_lines),
            Constraint::Length(h * 27 / 100),
            Constraint::Min(4),
        ])
        .split(cols[0]);
    pane(f, m, r, look, left[0], 0, "");
    if gate_lines > 0 {
        pane(f, m, r, look, left[1], 4, "");
    }
    pane(f, m, r, look, left[2], 2, "");
    events(f, m, r, look, left[3]);
    let right = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(36), Constraint::Min(8)])
        .split(cols[1]);
    pane(f, m, r, look, right[0], 1, "");
    pane(f, m, r, look, right[1], 3, "");
}

/// One pane in a box titled with its name, bordered as focused when it is.
fn pane(f: &mut Frame, m: &Model, r: &Row, look: &Look, area: Rect, i: usize, note: &str) {
    let title = format!(" {}{note} ", pane_name(m, i));
    let lines = pane_lines(m, r, look, area, i);
    Boxed {
        look,
        title: title.into(),
        focused: i == m.pane,
        lines,
        wrap: true,
    }
    .draw(f, area);
}

fn pane_name(m: &Model, i: usize) -> String {
    let p = PANES[i];
    if p == "approvals" && !m.gates().is_empty() {
        format!("{p}({})", m.gates().len())
    } else {
        p.to_string()
    }
}

fn pane_lines(m: &Model, r: &Row, look: &Look, area: Rect, i: usize) -> Vec<Line<'static>> {
    let width = area.width.saturating_sub(2) as usize;
    let height = area.height.saturating_sub(2) as usize;
    match PANES[i] {
        "progress" => panes::progress(r, m, look, height),
        "traffic" => traffic::traffic(r, look, width, height, m.now),
        "health" => panes::health(r, look, width),
        "analysis" => analysis::analysis(r, look, width, height),
        _ => panes::approvals(m, look),
    }
}

/// The deployments table's columns.
const TABLE: [Column; 8] = [
    Column::left("", 4),
    Column::left("NAME", 8),
    Column::left("VERSION", 7),
    Column::left("ENV", 3),
    Column::left("STRATEGY", 8),
    Column::left("STEP", 4),
    Column::left("WEIGHT", 6),
    Column::left("AGE", 3),
];

/// The deployments, one row each, columns as wide as their content.
fn table(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let visible = m.visible();
    let cells: Vec<[String; 8]> = visible.iter().map(|r| row_cells(m, look, r)).collect();
    let mut content = [0usize; 8];
    for (i, w) in content.iter_mut().enumerate() {
        *w = widest(cells.iter().map(|c| c[i].as_str()));
    }
    // The status badge's column is always 4 wide.
    content[0] = 4;
    // Too wide: the name gives way first.
    let w = Widths::fit(
        &TABLE,
        &content,
        area.width.saturating_sub(2) as usize,
        &[1],
    );
    let mut height = area.height.saturating_sub(3) as usize;
    if cells.len() > height {
        // A line for "N of M".
        height = height.saturating_sub(1);
    }
    let start = super::scroll_start(m.selected, height, cells.len());
    let mut lines = vec![Line::styled(w.head(&TABLE), look.s(Slot::Muted))];
    for (i, (r, c)) in visible
        .iter()
        .zip(&cells)
        .enumerate()
        .skip(start)
        .take(height)
    {
        let (_, badge) = look.status(r.status);
        let selected = i == m.selected;
        let mut spans = vec![Span::styled(
            w.cell(0, &c[0]),
            if selected {
                look.s(Slot::Selection)
            } else {
                badge
            },
        )];
        let rest: Vec<String> = (1..c.len()).map(|i| w.cell(i, &c[i])).collect();
        spans.push(Span::raw(format!("{GAP}{}", rest.join(GAP).trim_end())));
        let line = Line::from(spans);
        lines.push(if selected {
            line.style(look.s(Slot::Selection))
        } else {
            line
        });
    }
    if visible.len() > height {
        lines.push(Line::styled(
            format!(
                "{} of {}, j/k moves",
                (start + height).min(visible.len()),
                visible.len()
            ),
            look.s(Slot::Muted),
        ));
    }
    let title = if m.filter.is_empty() {
        format!(" deployments ({}) ", visible.len())
    } else {
        format!(" deployments /{} ({}) ", m.filter, visible.len())
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

/// A row's cells: status, name, version, environment, strategy, step n/m, the new version's
/// weight, age.
fn row_cells(m: &Model, look: &Look, r: &Row) -> [String; 8] {
    let (badge, _) = look.status(r.status);
    let interrupted = if !r.live && !r.finished {
        format!(" {}", look.sym.paused)
    } else {
        String::new()
    };
    let snap = r.snapshot.as_ref();
    let step = match snap {
        Some(s) if r.finished => format!("{}/{}", s.steps, s.steps),
        Some(s) => format!("{}/{}", (s.step + 1).min(s.steps), s.steps),
        None => "-".into(),
    };
    let weight = snap
        .and_then(|s| s.traffic.first())
        .and_then(|t| t.weights.iter().find(|w| w.version == r.version))
        .map_or("-".into(), |w| format!("{}%", w.weight));
    let age = match (m.minute.or(m.now), r.started) {
        (Some(now), Some(t)) => age((now - t).num_seconds()),
        _ => "-".into(),
    };
    [
        badge.trim_end().to_string(),
        format!("{}{interrupted}", r.deployment),
        r.version.clone(),
        r.environment.clone(),
        r.strategy.as_str().to_string(),
        step,
        weight,
        age,
    ]
}

/// An age as k9s shows one: 42s, 12m, 3h, 5d.
fn age(secs: i64) -> String {
    match secs.max(0) {
        s if s < 60 => "<1m".into(),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Below a dashboard size: the list beside the panes as tabs.
fn tabs(f: &mut Frame, m: &Model, r: &Row, look: &Look, area: Rect) {
    let left = if area.width >= 100 { 34 } else { 30 };
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(left), Constraint::Min(20)])
        .split(area);
    list(f, m, look, cols[0]);
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(62), Constraint::Min(3)])
        .split(cols[1]);
    let mut tabs = Vec::new();
    for i in 0..PANES.len() {
        let name = pane_name(m, i);
        if i == m.pane {
            tabs.push(Span::styled(
                format!("[{name}]"),
                look.s(Slot::Title).add_modifier(Modifier::REVERSED),
            ));
        } else {
            tabs.push(Span::styled(format!(" {name} "), look.s(Slot::Muted)));
        }
    }
    let lines = pane_lines(m, r, look, parts[0], m.pane);
    Boxed {
        look,
        title: Line::from(tabs),
        focused: true,
        lines,
        wrap: true,
    }
    .draw(f, parts[0]);
    events(f, m, r, look, parts[1]);
}

fn list(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let visible = m.visible();
    let start = super::scroll_start(m.selected, height, visible.len());
    let items: Vec<ListItem> = visible
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(i, r)| {
            let (badge, style) = look.status(r.status);
            let owner = if !r.live && !r.finished {
                format!(" {}", look.sym.paused)
            } else {
                String::new()
            };
            // On the selected row the selection colours win, so the badge stays readable.
            let style = if i == m.selected {
                look.s(Slot::Selection)
            } else {
                style
            };
            let line = Line::from(vec![
                Span::styled(format!("{badge} "), style),
                Span::raw(format!(
                    "{} {} {}{owner}",
                    r.deployment, r.version, r.environment
                )),
            ]);
            let item = ListItem::new(line);
            if i == m.selected {
                item.style(look.s(Slot::Selection))
            } else {
                item
            }
        })
        .collect();
    let title = if m.filter.is_empty() {
        " deployments ".to_string()
    } else {
        format!(" deployments /{} ", m.filter)
    };
    f.render_widget(List::new(items).block(look.block(title, false)), area);
}

fn events(f: &mut Frame, m: &Model, r: &Row, look: &Look, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let events: Vec<Line> = r
        .detail
        .as_ref()
        .map(|d| {
            let end = d.events.len().saturating_sub(m.events_back);
            let start = end.saturating_sub(height);
            d.events[start..end]
                .iter()
                .map(|e| Line::from(e.clone()))
                .collect()
        })
        .unwrap_or_default();
    let title = if m.events_back > 0 {
        format!(" events ({} lines back; ] newer) ", m.events_back)
    } else {
        " events ([ older) ".to_string()
    };
    Boxed {
        look,
        title: title.into(),
        focused: false,
        lines: events,
        wrap: false,
    }
    .draw(f, area);
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages_read_as_k9s_shows_them() {
        assert_eq!(super::age(5), "<1m");
        assert_eq!(super::age(125), "2m");
        assert_eq!(super::age(3 * 3600 + 5), "3h");
        assert_eq!(super::age(5 * 86_400), "5d");
    }
}
