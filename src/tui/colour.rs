//! Colour arithmetic for themes: the xterm palette, and quantising RGB and indexed colours to the
//! depth a terminal has (ratatui sends RGB as 24-bit whatever the terminal, so this is ours).
//!
//! Owns: mapping colours between depths. Must not touch: theme files or styles.

use ratatui::style::Color;

use super::theme::Depth;

/// The 16 ANSI colours with xterm's default RGB values, in palette order (index = ANSI number).
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

/// Levels of the xterm 6x6x6 colour cube (indices 16-231).
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The RGB value xterm uses for a 256-palette index.
pub fn xterm_rgb(index: u8) -> (u8, u8, u8) {
    match index {
        0..=15 => ANSI16[index as usize].1,
        16..=231 => {
            let i = index - 16;
            (
                CUBE[(i / 36) as usize],
                CUBE[((i / 6) % 6) as usize],
                CUBE[(i % 6) as usize],
            )
        }
        _ => {
            let v = 8 + 10 * (index - 232);
            (v, v, v)
        }
    }
}

fn dist2(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| {
        let d = i32::from(x) - i32::from(y);
        (d * d) as u32
    };
    d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
}

/// The nearest xterm-256 index among the colour cube and the gray ramp (16-255; the first 16
/// are left out because terminals repaint them). Ties go to the lower index.
pub(crate) fn nearest_256(rgb: (u8, u8, u8)) -> u8 {
    let mut best = (u32::MAX, 16u8);
    for i in 16..=255u8 {
        let d = dist2(rgb, xterm_rgb(i));
        if d < best.0 {
            best = (d, i);
        }
    }
    best.1
}

/// The nearest of the 16 named ANSI colours, by xterm's RGB values. Ties go to the lower index.
fn nearest_16(rgb: (u8, u8, u8)) -> Color {
    let mut best = (u32::MAX, Color::Black);
    for (c, v) in ANSI16 {
        let d = dist2(rgb, v);
        if d < best.0 {
            best = (d, c);
        }
    }
    best.1
}

/// A colour as the terminal at `depth` can show it.
///
/// * `TrueColor` keeps every colour.
/// * `Ansi256` maps `Rgb` to the nearest xterm-256 index (cube or gray ramp, by squared RGB
///   distance); named and indexed colours stay.
/// * `Ansi16` maps `Rgb` and `Indexed` to the nearest of the 16 named colours by xterm's RGB
///   values (indices 0-15 map to their names directly); named colours stay.
/// * `NoColor` turns everything into `Color::Reset`.
///
/// For example `#ff0000` is `LightRed` (xterm's bright red, an exact match) at `Ansi16` and
/// index 196 at `Ansi256`; `#808080` is index 244 (gray ramp, exact) at `Ansi256` and
/// `DarkGray` at `Ansi16`.
pub fn quantize(c: Color, depth: Depth) -> Color {
    match depth {
        Depth::TrueColor => c,
        Depth::NoColor => Color::Reset,
        Depth::Ansi256 => match c {
            Color::Rgb(r, g, b) => Color::Indexed(nearest_256((r, g, b))),
            other => other,
        },
        Depth::Ansi16 => match c {
            Color::Rgb(r, g, b) => nearest_16((r, g, b)),
            Color::Indexed(i) if i < 16 => ANSI16[i as usize].0,
            Color::Indexed(i) => nearest_16(xterm_rgb(i)),
            other => other,
        },
    }
}
