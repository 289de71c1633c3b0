//! The glyphs the console draws with: Unicode box drawing, blocks and icons, or plain ASCII for
//! terminals and fonts without them (`--ascii`, or a locale that is not UTF-8).
//!
//! Owns: every non-letter glyph the views use, and the small text charts built from them.
//! Must not touch: colours (the theme) or layout.

use ratatui::symbols::border;

/// One consistent set of glyphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbols {
    pub ascii: bool,
    pub border: border::Set<'static>,
    /// Eight levels, lowest first, for sparklines and bar charts.
    pub levels: [&'static str; 8],
    pub full: &'static str,
    pub empty: &'static str,
    pub done: &'static str,
    pub current: &'static str,
    pub todo: &'static str,
    pub ok: &'static str,
    pub fail: &'static str,
    pub warn: &'static str,
    pub gate: &'static str,
    pub paused: &'static str,
    pub running: &'static str,
    pub arrow: &'static str,
    /// Marks text cut to fit.
    pub more: &'static str,
    /// Between two figures read together (`20% asked · 25.0% achieved`).
    pub sep: &'static str,
    /// Chart traces, each a flat and a rising glyph: the canary (or the weight asked), the
    /// baseline, and a threshold.
    pub trace: [(&'static str, &'static str); 3],
    /// A point on a chart (the share served).
    pub point: &'static str,
    /// One cell per judged interval: pass, fail, no data, error.
    pub marks: [&'static str; 4],
}

const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

pub const UNICODE: Symbols = Symbols {
    ascii: false,
    border: border::ROUNDED,
    levels: ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"],
    full: "█",
    empty: "░",
    done: "✔",
    current: "▶",
    todo: "·",
    ok: "✔",
    fail: "✖",
    warn: "⚠",
    gate: "⚑",
    paused: "॥",
    running: "◌",
    arrow: "→",
    more: "…",
    sep: " · ",
    trace: [("━", "┃"), ("─", "│"), ("╌", "╎")],
    point: "•",
    marks: ["✔", "✖", "?", "!"],
};

pub const ASCII: Symbols = Symbols {
    ascii: true,
    border: ASCII_BORDER,
    levels: ["_", ".", ":", "-", "=", "+", "*", "#"],
    full: "#",
    empty: ".",
    done: "[x]",
    current: ">",
    todo: "-",
    ok: "ok",
    fail: "X",
    warn: "!",
    gate: "[?]",
    paused: "||",
    running: "~",
    arrow: "->",
    more: "~",
    sep: ", ",
    trace: [("*", "|"), ("o", ":"), ("-", "-")],
    point: "o",
    marks: ["+", "X", "?", "!"],
};

impl Symbols {
    pub fn pick(unicode: bool) -> Symbols {
        if unicode {
            UNICODE
        } else {
            ASCII
        }
    }

    /// The glyph for `v` on a scale from `lo` to `hi`.
    pub fn level(&self, v: f64, lo: f64, hi: f64) -> &'static str {
        if !v.is_finite() || hi <= lo {
            return self.levels[0];
        }
        let f = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        self.levels[((f * 7.0).round() as usize).min(7)]
    }

    /// A one-line sparkline of the last `width` values, on a shared scale; a gap where a value
    /// is missing (NaN).
    pub fn spark(&self, values: &[f64], lo: f64, hi: f64, width: usize) -> String {
        let start = values.len().saturating_sub(width);
        values[start..]
            .iter()
            .map(|v| {
                if v.is_finite() {
                    self.level(*v, lo, hi)
                } else {
                    " "
                }
            })
            .collect()
    }

    /// A horizontal bar `width` cells wide, `percent` of it filled.
    pub fn bar(&self, percent: f64, width: usize) -> String {
        let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
        format!(
            "{}{}",
            self.full.repeat(filled.min(width)),
            self.empty.repeat(width - filled.min(width))
        )
    }

    /// A vertical bar chart `height` rows tall, one column per value (0..=max), top row first.
    pub fn columns(&self, values: &[f64], max: f64, height: usize) -> Vec<String> {
        let eighths: Vec<usize> = values
            .iter()
            .map(|v| {
                if max <= 0.0 || !v.is_finite() {
                    0
                } else {
                    ((v / max).clamp(0.0, 1.0) * (height * 8) as f64).round() as usize
                }
            })
            .collect();
        (0..height)
            .rev()
            .map(|row| {
                eighths
                    .iter()
                    .map(|e| {
                        let base = row * 8;
                        if *e >= base + 8 {
                            self.full
                        } else if *e > base {
                            self.levels[(*e - base - 1).min(7)]
                        } else {
                            " "
                        }
                    })
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_set_is_plain_ascii() {
        let a = ASCII;
        let all = [
            a.full, a.empty, a.done, a.current, a.todo, a.ok, a.fail, a.warn, a.gate, a.paused,
            a.running, a.arrow, a.point,
        ];
        let traces = a.trace.iter().flat_map(|(f, r)| [*f, *r]);
        for s in all
            .iter()
            .copied()
            .chain(a.levels)
            .chain(a.marks)
            .chain(traces)
        {
            assert!(s.is_ascii(), "{s}");
        }
        assert!(a.border.top_left.is_ascii() && a.border.horizontal_top.is_ascii());
    }

    #[test]
    fn charts() {
        let s = UNICODE;
        assert_eq!(s.spark(&[0.0, 1.0, 0.5], 0.0, 1.0, 10), "▁█▅");
        assert_eq!(s.spark(&[0.0, 1.0, 0.5], 0.0, 1.0, 2), "█▅");
        assert_eq!(s.spark(&[0.0, f64::NAN, 1.0], 0.0, 1.0, 9), "▁ █");
        assert_eq!(ASCII.bar(50.0, 10), "#####.....");
        assert_eq!(s.bar(250.0, 4), "████");
        let cols = ASCII.columns(&[0.0, 5.0, 10.0], 10.0, 2);
        assert_eq!(cols, vec!["  #".to_string(), " ##".to_string()]);
    }
}
