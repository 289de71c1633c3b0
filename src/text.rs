//! Text as a terminal lays it out: how many cells a string takes (`unicode-width`, what ratatui
//! measures with: a CJK character or an emoji takes two, a combining accent none) and padding to
//! a width in cells. `format!`'s `{:<w$}` pads by characters, which misaligns wide names.
//!
//! Owns: measuring and padding. Must not touch: what is written or where.

use unicode_width::UnicodeWidthStr;

/// How many terminal cells `s` takes.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` padded with spaces to `w` cells, on the left when `right` (numbers), else on the right;
/// as it is when already that wide.
pub fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right {
        fill + s
    } else {
        format!("{s}{fill}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_characters_take_two_cells_and_pad_to_the_same_column() {
        assert_eq!(width("shop"), 4);
        assert_eq!(width("ショップ"), 8);
        assert_eq!(width("cafe\u{301}"), 4, "a combining accent takes no cell");
        assert_eq!(pad("ショップ", 10, false), "ショップ  ");
        assert_eq!(pad("shop", 10, false), "shop      ");
        assert_eq!(pad("7", 3, true), "  7");
        assert_eq!(pad("toolong", 3, false), "toolong");
    }
}
