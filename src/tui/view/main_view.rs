//! The main view: the deployment list with status badges, and the selected deployment's panes
//! (progress, traffic, health, analysis, approvals) above its newest events.

use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, Paragraph, Wrap};
use ratatui::Frame;

use super::{panes, Look};
use crate::tui::model::{Model, PANES};
use crate::tui::theme::Slot;

pub fn draw(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let left = if area.width >= 100 { 34 } else { 30 };
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Percentage(left), Constraint::Min(20)])
        .split(area);
    list(f, m, look, cols[0]);
    details(f, m, look, cols[1]);
}

fn list(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let items: Vec<ListItem> = m
        .visible()
        .iter()
        .enumerate()
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

fn details(f: &mut Frame, m: &Model, look: &Look, area: Rect) {
    let Some(r) = m.current() else {
        let text = if m.read_only {
            "no deployments in the state store yet"
        } else {
            "no deployments in the state store yet\n\nstart one: :apply SPEC here, or cutover apply SPEC"
        };
        f.render_widget(
            Paragraph::new(text).block(look.block(" details ", false)),
            area,
        );
        return;
    };
    let parts = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Percentage(62), Constraint::Min(3)])
        .split(area);
    let mut tabs = Vec::new();
    for (i, p) in PANES.iter().enumerate() {
        let name = if *p == "approvals" && !m.gates().is_empty() {
            format!("{p}({})", m.gates().len())
        } else {
            p.to_string()
        };
        if i == m.pane {
            tabs.push(Span::styled(
                format!("[{name}]"),
                look.s(Slot::Title).add_modifier(Modifier::REVERSED),
            ));
        } else {
            tabs.push(Span::styled(format!(" {name} "), look.s(Slot::Muted)));
        }
    }
    let width = parts[0].width.saturating_sub(2) as usize;
    let height = parts[0].height.saturating_sub(2) as usize;
    let lines = match PANES[m.pane] {
        "progress" => panes::progress(r, m, look, height),
        "traffic" => panes::traffic(r, look, width),
        "health" => panes::health(r, look, width),
        "analysis" => panes::analysis(r, look, width),
        _ => panes::approvals(m, look),
    };
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(look.block(Line::from(tabs), true)),
        parts[0],
    );
    let height = parts[1].height.saturating_sub(2) as usize;
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
    f.render_widget(
        Paragraph::new(events).block(look.block(title, false)),
        parts[1],
    );
}
