//! Writing a pane's lines into its box. A line that fits is written as it is; only a line wider
//! than the box is word-wrapped (or cut, for panes that do not wrap). ratatui's `Paragraph` with
//! wrapping runs every grapheme of every line through its word wrapper, which was most of the
//! dashboard's frame: here a line pays for wrapping only when it needs it, and the output is the
//! same cell for cell (the view snapshots hold it to that).
//!
//! Owns: placing lines in a rectangle. Must not touch: what the lines say.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::symbols::border;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};
use ratatui::Frame;

use super::Look;
use crate::tui::theme::Slot;

/// Lines in a bordered box with a title (in the look's border glyphs and styles, bordered as
/// focused when `focused`), wrapped where they do not fit when `wrap` is set, cut at the edge
/// otherwise.
pub struct Boxed<'a> {
    pub look: &'a Look,
    pub title: Line<'a>,
    pub focused: bool,
    pub lines: Vec<Line<'a>>,
    pub wrap: bool,
}

impl Boxed<'_> {
    pub fn draw(self, f: &mut Frame, area: Rect) {
        f.render_widget(self, area);
    }
}

impl Widget for Boxed<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let area = area.intersection(buf.area);
        let look = self.look;
        let border = look.s(if self.focused {
            Slot::BorderFocus
        } else {
            Slot::Border
        });
        let inner = frame(buf, area, &look.sym.border, border);
        if area.width > 2 && area.height > 0 {
            let title = Rect {
                x: area.x + 1,
                width: area.width - 2,
                height: 1,
                ..area
            };
            let shown = Rect {
                width: u16::try_from(self.title.width())
                    .unwrap_or(u16::MAX)
                    .min(title.width),
                ..title
            };
            buf.set_style(shown, look.s(Slot::Title));
            write_line(buf, title.x, title.y, &self.title, title.width);
        }
        lines(self.lines, self.wrap, inner, buf);
    }
}

/// `lines` from the top of `area`, as many as fit.
pub fn lines(lines: Vec<Line>, wrap: bool, area: Rect, buf: &mut Buffer) {
    let mut y = area.y;
    for line in lines {
        if y >= area.bottom() || area.width == 0 {
            return;
        }
        if !wrap || line.width() <= usize::from(area.width) {
            write_line(buf, area.x, y, &line, area.width);
            y += 1;
            continue;
        }
        let p = Paragraph::new(line).wrap(Wrap { trim: false });
        let rows = u16::try_from(p.line_count(area.width)).unwrap_or(u16::MAX);
        let rect = Rect {
            y,
            height: rows.min(area.bottom() - y),
            ..area
        };
        p.render(rect, buf);
        y = y.saturating_add(rows);
    }
}

/// A border around `area` in `set`, drawn as ratatui's `Block` draws one (sides, then corners
/// over them) without restyling every cell inside; returns the area inside.
fn frame(buf: &mut Buffer, area: Rect, set: &border::Set, style: Style) -> Rect {
    if area.is_empty() {
        return area;
    }
    let (l, r, t, b) = (area.left(), area.right() - 1, area.top(), area.bottom() - 1);
    for y in t..=b {
        buf[(l, y)].set_symbol(set.vertical_left).set_style(style);
        buf[(r, y)].set_symbol(set.vertical_right).set_style(style);
    }
    for (y, side) in [(t, set.horizontal_top), (b, set.horizontal_bottom)] {
        let start = buf.index_of(l, y);
        for cell in &mut buf.content[start..=start + usize::from(r - l)] {
            cell.set_symbol(side).set_style(style);
        }
    }
    for (x, y, corner) in [
        (r, b, set.bottom_right),
        (r, t, set.top_right),
        (l, b, set.bottom_left),
        (l, t, set.top_left),
    ] {
        buf[(x, y)].set_symbol(corner).set_style(style);
    }
    Rect {
        x: l + 1,
        y: t + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    }
}

/// A one-row bar (the header, the footer): `style` across `area`, `line` from its left.
pub fn row(buf: &mut Buffer, area: Rect, line: &Line, style: Style) {
    let area = area.intersection(buf.area);
    if area.is_empty() {
        return;
    }
    buf.set_style(area, style);
    write_line(buf, area.x, area.y, line, area.width);
}

/// Every cell of the frame in `style` (a frame starts blank, so this is its background).
pub fn fill(buf: &mut Buffer, style: Style) {
    for cell in &mut buf.content {
        cell.set_style(style);
    }
}

/// A character that is one cell wide and a grapheme of its own whatever follows it: printable
/// ASCII, the middle dot, bullet and ellipsis, arrows, box drawing and block elements (the
/// glyphs of charts, borders, bars and sparklines).
fn simple(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{b7}' | '\u{2022}' | '\u{2026}' | '\u{2190}'..='\u{21ff}' | '\u{2500}'..='\u{259f}')
}

/// What `Buffer::set_line` does, without segmenting graphemes or measuring widths for spans made
/// only of [`simple`] characters: each of those is a cell.
fn write_line(buf: &mut Buffer, x: u16, y: u16, line: &Line, max_width: u16) {
    let area = buf.area;
    if y < area.top() || y >= area.bottom() || x < area.left() {
        return;
    }
    let right = x.saturating_add(max_width).min(area.right());
    let mut x = x;
    for span in line {
        if x >= right {
            return;
        }
        let style = line.style.patch(span.style);
        if span.content.chars().all(simple) {
            let start = buf.index_of(x, y);
            let room = usize::from(right - x);
            let mut n = 0;
            for (cell, c) in buf.content[start..start + room]
                .iter_mut()
                .zip(span.content.chars())
            {
                cell.set_char(c).set_style(style);
                n += 1;
            }
            x += n;
        } else {
            let want = span.width();
            let from = x;
            x = buf
                .set_stringn(x, y, span.content.as_ref(), usize::from(right - x), style)
                .0;
            // A wide character that did not fit ends the line, as ratatui's truncation does
            // (the next span must not fill the cell it left).
            if usize::from(x - from) < want {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::text::Span;

    fn drawn(ls: Vec<Line>, wrap: bool, w: u16, h: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        lines(ls, wrap, buf.area, &mut buf);
        buf
    }

    fn paragraph(ls: Vec<Line>, wrap: bool, w: u16, h: u16) -> Buffer {
        let mut buf = Buffer::empty(Rect::new(0, 0, w, h));
        let p = Paragraph::new(ls);
        let p = if wrap {
            p.wrap(Wrap { trim: false })
        } else {
            p
        };
        p.render(buf.area, &mut buf);
        buf
    }

    #[test]
    fn lines_come_out_as_a_paragraph_draws_them() {
        let sample = || {
            vec![
                Line::from("short"),
                Line::from(vec![
                    Span::raw("a line that is much wider "),
                    Span::styled("than its box", ratatui::style::Style::new().bold()),
                ]),
                Line::from("══ wide glyphs ✔ ✖"),
                Line::from(""),
                Line::from("last"),
                Line::from("━━┃──│╌╎ ▁▂█░ → … · •"),
                Line::styled("✔ mixed ━━ line", ratatui::style::Style::new().red()),
                Line::from(vec![
                    Span::raw("wide 漢字漢字漢字"),
                    Span::raw("x"),
                    Span::raw("🚀 y"),
                ]),
            ]
        };
        for wrap in [true, false] {
            for (w, h) in [(12, 10), (12, 4), (40, 3), (1, 5), (40, 10)] {
                assert_eq!(
                    drawn(sample(), wrap, w, h),
                    paragraph(sample(), wrap, w, h),
                    "wrap {wrap} at {w}x{h}"
                );
            }
        }
    }
}

#[cfg(test)]
mod simple_chars {
    use super::*;

    #[test]
    fn every_simple_character_is_one_cell_as_ratatui_measures_it() {
        let all: String = (0..0x2600u32)
            .filter_map(char::from_u32)
            .filter(|c| simple(*c))
            .collect();
        let n = all.chars().count() as u16;
        let area = Rect::new(0, 0, n + 2, 1);
        let (mut a, mut b) = (Buffer::empty(area), Buffer::empty(area));
        a.set_line(0, 0, &Line::from(all.as_str()), n + 2);
        write_line(&mut b, 0, 0, &Line::from(all.as_str()), n + 2);
        assert_eq!(a, b);
        assert_eq!(a.content[usize::from(n)].symbol(), " ");
    }
}
