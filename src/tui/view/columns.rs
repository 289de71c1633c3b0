//! Table columns as wide as their content: each column takes the width of its widest cell (the
//! header's included). When the row is too wide for the box, optional columns are left out from
//! the right first, then the columns named to give way shrink, in order, down to their minimum,
//! their cells cut with `~`. Every row is laid out with the same widths, so rows line up
//! whatever their content (six-digit run numbers, long names).
//!
//! Widths are terminal cells, as the terminal draws them ([`crate::text`]): a CJK name or an
//! emoji takes two, a combining accent none.
//!
//! Owns: choosing the widths and padding or cutting a cell to its width. Must not touch: what
//! the cells say or how they are styled.

pub use crate::text::{cut, width};
use ratatui::style::Style;
use ratatui::text::Span;

/// The gap between two columns.
pub const GAP: &str = "  ";

/// One column: its header, whether it is aligned to the right (numbers), how narrow it may
/// become when the row does not fit (its header's width when it must never shrink), and whether
/// it may be left out.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub head: &'static str,
    pub right: bool,
    pub min: usize,
    pub optional: bool,
}

impl Column {
    pub const fn left(head: &'static str, min: usize) -> Column {
        Column {
            head,
            right: false,
            min,
            optional: false,
        }
    }

    pub const fn right(head: &'static str) -> Column {
        Column {
            head,
            right: true,
            min: head.len(),
            optional: false,
        }
    }

    /// Left out, rather than squeezing the others, when the row does not fit.
    pub const fn or_left_out(self) -> Column {
        Column {
            optional: true,
            ..self
        }
    }
}

/// The widths chosen for a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Widths {
    widths: Vec<usize>,
    right: Vec<bool>,
    shown: Vec<bool>,
}

impl Widths {
    /// Widths for `cols` whose widest cells are `content` (terminal cells, one per column), in
    /// a box `avail` cells wide; when too wide, the columns in `give_way` shrink in that order.
    pub fn fit(cols: &[Column], content: &[usize], avail: usize, give_way: &[usize]) -> Widths {
        let mut widths: Vec<usize> = cols
            .iter()
            .zip(content.iter().chain(std::iter::repeat(&0)))
            .map(|(c, w)| width(c.head).max(*w))
            .collect();
        let mut shown = vec![true; cols.len()];
        let total = |w: &[usize], shown: &[bool]| {
            let n = shown.iter().filter(|s| **s).count();
            w.iter()
                .zip(shown)
                .filter(|(_, s)| **s)
                .map(|(w, _)| w)
                .sum::<usize>()
                + GAP.len() * n.saturating_sub(1)
        };
        for i in (0..cols.len()).rev() {
            if total(&widths, &shown) <= avail {
                break;
            }
            if cols[i].optional {
                shown[i] = false;
            }
        }
        for &i in give_way {
            let over = total(&widths, &shown).saturating_sub(avail);
            if over == 0 {
                break;
            }
            if let (Some(w), Some(c)) = (widths.get_mut(i), cols.get(i)) {
                *w = w.saturating_sub(over).max(c.min).min(*w);
            }
        }
        Widths {
            widths,
            right: cols.iter().map(|c| c.right).collect(),
            shown,
        }
    }

    /// Whether column `i` is shown (an optional one may be left out).
    pub fn shown(&self, i: usize) -> bool {
        self.shown.get(i).copied().unwrap_or(false)
    }

    pub fn get(&self, i: usize) -> usize {
        self.widths.get(i).copied().unwrap_or(0)
    }

    /// `s` in column `i`: cut to its width, padded to it on the side its alignment says.
    pub fn cell(&self, i: usize, s: &str) -> String {
        let w = self.get(i);
        crate::text::pad(&cut(s, w), w, self.right.get(i).copied().unwrap_or(false))
    }

    /// A whole row of cells (the shown ones), joined by the gap; the last is not padded.
    pub fn row<S: AsRef<str>>(&self, cells: &[S]) -> String {
        let mut out = String::new();
        for (n, (i, c)) in cells
            .iter()
            .enumerate()
            .filter(|(i, _)| self.shown(*i))
            .enumerate()
        {
            if n > 0 {
                out.push_str(GAP);
            }
            out.push_str(&self.cell(i, c.as_ref()));
        }
        out.trim_end().to_string()
    }

    /// A row as spans: the shown cells joined by the gap, those `style` names styled, runs of
    /// the others in one span each; the last cell is not padded.
    pub fn spans<S: AsRef<str>>(
        &self,
        cells: &[S],
        style: impl Fn(usize) -> Option<Style>,
    ) -> Vec<Span<'static>> {
        let mut spans = Vec::new();
        let mut raw = String::new();
        let mut first = true;
        let last = (0..cells.len()).rev().find(|i| self.shown(*i));
        for (i, c) in cells.iter().enumerate().filter(|(i, _)| self.shown(*i)) {
            if !first {
                raw.push_str(GAP);
            }
            first = false;
            let mut text = self.cell(i, c.as_ref());
            if Some(i) == last {
                text.truncate(text.trim_end().len());
            }
            match style(i) {
                Some(st) => {
                    if !raw.is_empty() {
                        spans.push(Span::raw(std::mem::take(&mut raw)));
                    }
                    spans.push(Span::styled(text, st));
                }
                None => raw.push_str(&text),
            }
        }
        let raw = raw.trim_end();
        if !raw.is_empty() {
            spans.push(Span::raw(raw.to_string()));
        }
        spans
    }

    /// The header row of `cols`.
    pub fn head(&self, cols: &[Column]) -> String {
        self.row(&cols.iter().map(|c| c.head).collect::<Vec<_>>())
    }
}

/// The widest of `cells`, in terminal cells.
pub fn widest<'a>(cells: impl Iterator<Item = &'a str>) -> usize {
    cells.map(width).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: [Column; 3] = [
        Column::right("run"),
        Column::left("deployment", 8),
        Column::left("by", 2),
    ];

    #[test]
    fn columns_take_their_widest_cell_and_rows_line_up() {
        let rows = [
            ["7", "shop", "alice"],
            ["123456", "payments-gateway", "bob"],
        ];
        let content: Vec<usize> = (0..3).map(|i| widest(rows.iter().map(|r| r[i]))).collect();
        let w = Widths::fit(&COLS, &content, 80, &[1]);
        assert_eq!(w.head(&COLS), "   run  deployment        by");
        assert_eq!(w.row(&rows[0]), "     7  shop              alice");
        assert_eq!(w.row(&rows[1]), "123456  payments-gateway  bob");
    }

    /// Names in CJK or with emoji take two cells a character; rows still line up, as the
    /// terminal draws them (cutting itself is tested in `text`).
    #[test]
    fn wide_characters_count_as_the_cells_they_take() {
        let rows = [["7", "ショップ", "alice"], ["123456", "shop", "bob"]];
        let content: Vec<usize> = (0..3).map(|i| widest(rows.iter().map(|r| r[i]))).collect();
        assert_eq!(content, [6, 8, 5]);
        let w = Widths::fit(&COLS, &content, 80, &[1]);
        let a = w.row(&rows[0]);
        let b = w.row(&rows[1]);
        assert_eq!(a, "     7  ショップ    alice");
        assert_eq!(b, "123456  shop        bob");
        let bob = b.find("bob").unwrap_or(usize::MAX);
        assert_eq!(width(&a[..a.find("alice").unwrap_or(0)]), width(&b[..bob]));
        // Squeezed, the wide name is cut whole characters at a time and the row keeps its width.
        let narrow = [COLS[0], Column::left("deployment", 4), COLS[2]];
        let w = Widths::fit(&narrow, &content, 20, &[1]);
        assert_eq!(w.row(&rows[0]), "     7  ショ~  alice");
        assert_eq!(w.row(&["123456", "shop", "alice"]), "123456  shop   alice");
    }

    #[test]
    fn a_row_too_wide_shrinks_the_columns_that_give_way_to_their_minimum() {
        let content = [6, 30, 5];
        // 6 + 2 + 30 + 2 + 5 = 45 in a box of 30: the name gives way by 15, to 15.
        let w = Widths::fit(&COLS, &content, 30, &[1]);
        assert_eq!(w.get(1), 15);
        assert_eq!(w.cell(1, "a-very-long-deployment-name"), "a-very-long-de~");
        // Never under its minimum, nor wider than its content.
        let w = Widths::fit(&COLS, &content, 10, &[1]);
        assert_eq!(w.get(1), 8);
        let w = Widths::fit(&COLS, &[1, 4, 1], 80, &[1]);
        assert_eq!(w.get(1), 10, "a column is at least as wide as its header");
    }

    #[test]
    fn optional_columns_are_left_out_from_the_right_before_any_name_is_cut() {
        let cols = [
            Column::right("run"),
            Column::left("deployment", 8),
            Column::left("started", 7).or_left_out(),
            Column::left("by", 2).or_left_out(),
        ];
        let cells = ["123456", "payments", "2026-12-01 10:00", "alice"];
        let content: Vec<usize> = cells.iter().map(|c| c.len()).collect();
        // 6 + 2 + 10 + 2 + 16 + 2 + 5 = 43: fits in 43, and in 30 without `by` and `started`.
        let w = Widths::fit(&cols, &content, 43, &[1]);
        assert_eq!(w.row(&cells), "123456  payments    2026-12-01 10:00  alice");
        let w = Widths::fit(&cols, &content, 30, &[1]);
        assert!(!w.shown(2) && !w.shown(3));
        assert_eq!(w.row(&cells), "123456  payments");
        assert_eq!(w.head(&cols), "   run  deployment");
        let spans = w.spans(&cells, |i| (i == 1).then(Style::default));
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "123456  payments");
        assert_eq!(spans.len(), 2);
    }
}
