//! Text as a terminal lays it out: how many cells a string takes (`unicode-width`, what ratatui
//! measures with: a CJK character or an emoji takes two, a combining accent none), padding to a
//! width in cells, and cutting to one between grapheme clusters (`unicode-segmentation`, as
//! ratatui splits them), so an emoji sequence is kept or dropped whole. `format!`'s `{:<w$}`
//! pads by characters, which misaligns wide names.
//!
//! Owns: measuring, padding and cutting. Must not touch: what is written or where.

use unicode_segmentation::UnicodeSegmentation;
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

/// `s` cut to at most `n` cells, its last one `~` when it was longer. A cluster that would
/// straddle the cut (a wide character, an emoji sequence) is left out whole: the result may be
/// a cell short.
pub fn cut(s: &str, n: usize) -> String {
    if width(s) <= n {
        return s.to_string();
    }
    let room = n.saturating_sub(1);
    let mut t = String::new();
    for g in s.graphemes(true) {
        let before = t.len();
        t.push_str(g);
        if width(&t) > room {
            t.truncate(before);
            break;
        }
    }
    if n > 0 {
        t.push('~');
    }
    t
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

    #[test]
    fn a_cut_keeps_within_its_width_and_never_splits_a_cluster() {
        assert_eq!(cut("ショップ", 4), "シ~");
        assert_eq!(cut("ショップ", 5), "ショ~");
        assert_eq!(
            width(&cut("ショップ", 4)),
            3,
            "a cell short rather than half a character"
        );
        assert_eq!(cut("café", 4), "café");
        assert_eq!(cut("abc", 0), "");
        // An emoji with its presentation selector is measured as the terminal draws it.
        let warn = "a\u{26a0}\u{fe0f}bcdef";
        for n in 0..8 {
            assert!(width(&cut(warn, n)) <= n, "{n}: {:?}", cut(warn, n));
        }
        // A family (people joined by ZWJ) is kept or dropped whole.
        let family = "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}xyz";
        let c = cut(family, 3);
        assert!(
            c == "~" || c.starts_with("\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}"),
            "{c:?}"
        );
        assert!(width(&c) <= 3, "{c:?}");
    }
}
