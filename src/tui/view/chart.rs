//! Charts in text cells: values over time as step lines with vertical joins (a canary against
//! its baseline and threshold, the weight asked as a staircase), points (the share served), and
//! a row of one mark per judged interval.
//!
//! Owns: putting values on a grid of cells and turning it into styled lines. Must not touch:
//! what the values mean or where they come from (the panes resample and label them).

use ratatui::text::{Line, Span};

use super::Look;
use crate::engine::signals::fmt_num;
use crate::engine::Judgement;
use crate::tui::theme::Slot;

/// How one layer is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Pen {
    /// A step line: the flat glyph at each value, the rising glyph where it moves between rows.
    Trace(&'static str, &'static str),
    /// A point at each value, nothing between.
    Point(&'static str),
}

/// One series on a chart: a value per column (NaN where there is none).
pub struct Layer {
    pub values: Vec<f64>,
    pub pen: Pen,
    pub slot: Slot,
}

/// The scale of a chart: from `lo` to `hi`, never empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
}

impl Scale {
    /// From zero (or the lowest value, if below) to the highest of the values given.
    pub fn of(values: impl Iterator<Item = f64>) -> Scale {
        let (mut lo, mut hi) = (0.0f64, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !hi.is_finite() || hi <= lo {
            hi = lo + 1.0;
        }
        Scale { lo, hi }
    }

    /// The row (0 at the top) of `v` on a chart `height` rows tall.
    fn row(&self, v: f64, height: usize) -> usize {
        let f = ((self.hi - v) / (self.hi - self.lo)).clamp(0.0, 1.0);
        (f * (height.saturating_sub(1)) as f64).round() as usize
    }
}

/// `values` spread over `width` columns. With fewer values than columns each value holds its
/// share of them (a step); with more, each column shows the last value of its bucket.
pub fn spread(values: &[f64], width: usize) -> Vec<f64> {
    let n = values.len();
    if n == 0 || width == 0 {
        return vec![f64::NAN; width];
    }
    (0..width)
        .map(|x| {
            if n <= width {
                values[x * n / width]
            } else {
                let (a, b) = (x * n / width, ((x + 1) * n / width).max(x * n / width + 1));
                values[a..b.min(n)]
                    .iter()
                    .rev()
                    .copied()
                    .find(|v| v.is_finite())
                    .unwrap_or(f64::NAN)
            }
        })
        .collect()
}

/// Judgements over `width` columns: each at the first column of its share, or the worst of
/// each bucket when there are more judgements than columns (a failure is never hidden).
pub fn spread_marks(marks: &[Judgement], width: usize) -> Vec<Option<Judgement>> {
    let n = marks.len();
    let rank = |j: &Judgement| match j {
        Judgement::Pass => 0,
        Judgement::NoData => 1,
        Judgement::Error => 2,
        Judgement::Fail => 3,
    };
    if n <= width {
        let mut out = vec![None; width];
        // At the first column `spread` gives the same value.
        for (i, m) in marks.iter().enumerate() {
            out[(i * width).div_ceil(n).min(width - 1)] = Some(*m);
        }
        return out;
    }
    (0..width)
        .map(|x| {
            let (a, b) = (x * n / width, ((x + 1) * n / width).max(x * n / width + 1));
            marks[a..b.min(n)].iter().copied().max_by_key(rank)
        })
        .collect()
}

/// The chart's rows, top first, each prefixed by `axis` cells of its scale (the top and bottom
/// values, as `label` writes them). Later layers draw over earlier ones.
pub fn plot(
    look: &Look,
    layers: &[Layer],
    scale: Scale,
    height: usize,
    (axis, label): (usize, fn(f64) -> String),
) -> Vec<Line<'static>> {
    let width = layers.iter().map(|l| l.values.len()).max().unwrap_or(0);
    let mut grid: Vec<Vec<Option<(&'static str, Slot)>>> = vec![vec![None; width]; height];
    for layer in layers {
        let mut prev: Option<usize> = None;
        for (x, v) in layer.values.iter().enumerate() {
            if !v.is_finite() {
                prev = None;
                continue;
            }
            let row = scale.row(*v, height);
            match layer.pen {
                Pen::Trace(flat, rise) => {
                    if let Some(p) = prev {
                        let (a, b) = (p.min(row), p.max(row));
                        for cell in grid.iter_mut().take(b).skip(a + 1) {
                            cell[x] = Some((rise, layer.slot));
                        }
                    }
                    grid[row][x] = Some((flat, layer.slot));
                }
                Pen::Point(glyph) => grid[row][x] = Some((glyph, layer.slot)),
            }
            prev = Some(row);
        }
    }
    grid.into_iter()
        .enumerate()
        .map(|(y, cells)| {
            let label = if y == 0 {
                label(scale.hi)
            } else if y + 1 == height {
                label(scale.lo)
            } else {
                String::new()
            };
            // Never wider than the axis, so the rows stay aligned.
            let label: String = label.chars().take(axis.saturating_sub(1)).collect();
            let mut spans = vec![Span::styled(
                format!("{label:>w$} ", w = axis.saturating_sub(1)),
                look.s(Slot::ChartAxis),
            )];
            spans.extend(runs(
                look,
                cells.into_iter().map(|c| c.unwrap_or((" ", Slot::Text))),
            ));
            Line::from(spans)
        })
        .collect()
}

/// One mark per judged interval, coloured by its judgement, after a label `axis` cells wide.
pub fn marks_line(
    look: &Look,
    label: &str,
    marks: &[Option<Judgement>],
    axis: usize,
) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("{label:>w$} ", w = axis.saturating_sub(1)),
        look.s(Slot::ChartAxis),
    )];
    spans.extend(runs(
        look,
        marks.iter().map(|m| match m {
            None => (" ", Slot::Text),
            Some(Judgement::Pass) => (look.sym.marks[0], Slot::Ok),
            Some(Judgement::Fail) => (look.sym.marks[1], Slot::Error),
            Some(Judgement::NoData) => (look.sym.marks[2], Slot::NoData),
            Some(Judgement::Error) => (look.sym.marks[3], Slot::Warn),
        }),
    ));
    Line::from(spans)
}

/// Cells grouped into spans of one style.
fn runs(look: &Look, cells: impl Iterator<Item = (&'static str, Slot)>) -> Vec<Span<'static>> {
    let mut out: Vec<Span<'static>> = Vec::new();
    let mut cur: Option<(String, Slot)> = None;
    for (glyph, slot) in cells {
        match &mut cur {
            Some((text, s)) if *s == slot => text.push_str(glyph),
            _ => {
                if let Some((text, s)) = cur.take() {
                    out.push(Span::styled(text, look.s(s)));
                }
                cur = Some((glyph.to_string(), slot));
            }
        }
    }
    // Blank cells at the end need not be written: a frame starts blank.
    if let Some((text, s)) = cur {
        if !(s == Slot::Text && text.trim().is_empty()) {
            out.push(Span::styled(text, look.s(s)));
        }
    }
    out
}

/// An axis label: the value to three significant figures.
pub fn axis_label(v: f64) -> String {
    fmt_num(round(v))
}

/// Three significant figures, enough for an axis.
fn round(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let mag = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * mag).round() / mag
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::symbols::ASCII;
    use crate::tui::theme::{self, Depth};

    fn look() -> Look {
        let t = theme::builtin("mono").unwrap_or_else(|| panic!("mono theme"));
        Look::new(&t, Depth::NoColor, ASCII)
    }

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn spreading_steps_few_values_and_keeps_the_last_of_many() {
        assert_eq!(spread(&[1.0, 2.0], 4), vec![1.0, 1.0, 2.0, 2.0]);
        assert_eq!(spread(&[1.0, 2.0, 3.0, f64::NAN], 2), vec![2.0, 3.0]);
        assert!(spread(&[], 3).iter().all(|v| v.is_nan()));
    }

    #[test]
    fn marks_sit_at_each_intervals_first_column_and_a_failure_is_never_hidden() {
        use Judgement::*;
        assert_eq!(
            spread_marks(&[Pass, Fail], 4),
            vec![Some(Pass), None, Some(Fail), None]
        );
        assert_eq!(
            spread_marks(&[Pass, Pass, Fail, Pass], 2),
            vec![Some(Pass), Some(Fail)]
        );
        assert_eq!(
            spread_marks(&[NoData, Pass, Error], 3),
            vec![Some(NoData), Some(Pass), Some(Error)]
        );
    }

    #[test]
    fn a_step_line_rises_with_a_join_and_a_threshold_runs_across() {
        let look = look();
        let layers = [
            Layer {
                values: vec![3.0; 6],
                pen: Pen::Trace("-", "-"),
                slot: Slot::Threshold,
            },
            Layer {
                values: spread(&[0.0, 4.0], 6),
                pen: Pen::Trace("*", "|"),
                slot: Slot::Canary,
            },
        ];
        let lines = text(&plot(
            &look,
            &layers,
            Scale::of([0.0, 4.0].into_iter()),
            5,
            (3, axis_label),
        ));
        assert_eq!(
            lines,
            vec![" 4    ***", "   ---|--", "      |", "      |", " 0 ***",]
        );
    }

    #[test]
    fn the_scale_starts_at_zero_and_is_never_empty() {
        assert_eq!(
            Scale::of([2.0, 5.0].into_iter()),
            Scale { lo: 0.0, hi: 5.0 }
        );
        assert_eq!(Scale::of([-1.0].into_iter()), Scale { lo: -1.0, hi: 0.0 });
        assert_eq!(Scale::of(std::iter::empty()), Scale { lo: 0.0, hi: 1.0 });
    }
}
