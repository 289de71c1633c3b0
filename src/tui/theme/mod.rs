//! Console themes: named styles for semantic slots (text, selection, status badges, chart lines
//! ...), read from k9s-skin-like YAML files and quantised to what the terminal can show.
//!
//! Owns: the [`Slot`] list, the theme file format, the four shipped themes in `themes/`, and
//! colour quantisation ([`quantize`]). Must not touch: drawing (that is `view`) or terminal
//! detection (that is `caps`).
//!
//! A theme file:
//!
//! ```yaml
//! name: default
//! description: ANSI 16 colours; reads the same over SSH
//! styles:
//!   text: {fg: default}
//!   selection: {fg: black, bg: cyan, modifiers: [bold]}
//!   # ... every slot in Slot::ALL
//! ```
//!
//! Colours are `default` (the terminal's own colour), the 16 ANSI names (`black`, `red`,
//! `green`, `yellow`, `blue`, `magenta`, `cyan`, `white` (also `gray`), `bright-black` (also
//! `dark-gray`), `bright-red`, ..., `bright-white`), `"#rrggbb"` (quoted: an unquoted `#` starts
//! a YAML comment) or an integer 0-255 (xterm palette index). Modifiers are `bold`, `dim`,
//! `italic`, `underlined`, `reversed` and `crossed-out`. Leaving out `fg` or `bg` inherits it
//! from the widget underneath; `default` sets it to the terminal's default.
//!
//! ANSI 7 is "white" in terminal manuals but `Color::Gray` in ratatui; ANSI 15 ("bright white")
//! is `Color::White`. The names here follow the terminal manuals.

use std::fmt;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};

use crate::spec::yaml;
use crate::spec::Diagnostic;

pub use super::colour::{quantize, xterm_rgb};
use crate::spec::decode::did_you_mean;
pub use read::parse_colour;
use read::{read_theme, Problems};

mod read;

/// Largest theme file accepted, in bytes.
pub const MAX_THEME_BYTES: u64 = 256 * 1024;

/// A semantic place in the console that a theme gives a style to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// Ordinary text.
    Text,
    /// Secondary text: timestamps, hints, placeholders.
    Muted,
    /// Pane titles.
    Title,
    /// Pane borders.
    Border,
    /// The border of the pane that has focus.
    BorderFocus,
    /// The top line of the console.
    Header,
    /// The bottom line of the console.
    Footer,
    /// The selected row.
    Selection,
    /// Key names in key hints (`p`, `r`, `?`).
    Key,
    StatusPending,
    StatusProgressing,
    StatusPaused,
    /// Waiting for an approval gate.
    StatusWaiting,
    StatusRollingBack,
    StatusSucceeded,
    StatusRolledBack,
    StatusFailed,
    /// A passing check.
    Ok,
    /// A warning or a not-ready instance.
    Warn,
    /// A failing check or an error message.
    Error,
    /// A check with no data.
    NoData,
    /// The canary's series in charts.
    Canary,
    /// The baseline's series in charts.
    Baseline,
    /// Threshold lines in charts.
    Threshold,
    /// Approval gates in the strategy progress.
    Gate,
    /// Chart axes and labels.
    ChartAxis,
    /// Progress gauges (traffic split, steps).
    Gauge,
    /// The `:` command line.
    CommandLine,
    /// Dialogs and pop-ups (help, confirmations).
    Dialog,
}

impl Slot {
    /// How many slots there are.
    pub const COUNT: usize = 29;

    /// Every slot, in declaration order (`Slot::ALL[s as usize] == s`).
    pub const ALL: [Slot; Slot::COUNT] = [
        Slot::Text,
        Slot::Muted,
        Slot::Title,
        Slot::Border,
        Slot::BorderFocus,
        Slot::Header,
        Slot::Footer,
        Slot::Selection,
        Slot::Key,
        Slot::StatusPending,
        Slot::StatusProgressing,
        Slot::StatusPaused,
        Slot::StatusWaiting,
        Slot::StatusRollingBack,
        Slot::StatusSucceeded,
        Slot::StatusRolledBack,
        Slot::StatusFailed,
        Slot::Ok,
        Slot::Warn,
        Slot::Error,
        Slot::NoData,
        Slot::Canary,
        Slot::Baseline,
        Slot::Threshold,
        Slot::Gate,
        Slot::ChartAxis,
        Slot::Gauge,
        Slot::CommandLine,
        Slot::Dialog,
    ];

    /// The slot's key in a theme file.
    pub fn key(self) -> &'static str {
        match self {
            Slot::Text => "text",
            Slot::Muted => "muted",
            Slot::Title => "title",
            Slot::Border => "border",
            Slot::BorderFocus => "border_focus",
            Slot::Header => "header",
            Slot::Footer => "footer",
            Slot::Selection => "selection",
            Slot::Key => "key",
            Slot::StatusPending => "status_pending",
            Slot::StatusProgressing => "status_progressing",
            Slot::StatusPaused => "status_paused",
            Slot::StatusWaiting => "status_waiting",
            Slot::StatusRollingBack => "status_rolling_back",
            Slot::StatusSucceeded => "status_succeeded",
            Slot::StatusRolledBack => "status_rolled_back",
            Slot::StatusFailed => "status_failed",
            Slot::Ok => "ok",
            Slot::Warn => "warn",
            Slot::Error => "error",
            Slot::NoData => "no_data",
            Slot::Canary => "canary",
            Slot::Baseline => "baseline",
            Slot::Threshold => "threshold",
            Slot::Gate => "gate",
            Slot::ChartAxis => "chart_axis",
            Slot::Gauge => "gauge",
            Slot::CommandLine => "command_line",
            Slot::Dialog => "dialog",
        }
    }

    /// The slot with this theme-file key.
    pub fn from_key(key: &str) -> Option<Slot> {
        Slot::ALL.into_iter().find(|s| s.key() == key)
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// How many colours the terminal can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// No colours: modifiers only.
    NoColor,
    /// The 16 ANSI colours, whose exact look is the terminal's palette.
    Ansi16,
    /// The xterm 256-colour palette.
    Ansi256,
    /// 24-bit RGB.
    TrueColor,
}

/// A set of styles, one per [`Slot`].
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub description: String,
    styles: [Style; Slot::COUNT],
}

impl Default for Theme {
    /// The shipped `default` theme (ANSI 16 colours).
    fn default() -> Theme {
        builtin("default").unwrap_or_else(|| Theme {
            name: "default".into(),
            description: String::new(),
            styles: [Style::new(); Slot::COUNT],
        })
    }
}

impl Theme {
    /// The style for a slot, already quantised to the depth the theme was resolved for (a theme
    /// straight from a file keeps its colours as written).
    pub fn style(&self, slot: Slot) -> Style {
        self.styles[slot as usize]
    }

    /// A copy with every colour quantised to `depth` (see [`quantize`]).
    ///
    /// At [`Depth::NoColor`] every colour becomes `Color::Reset` and modifiers stay; the
    /// selection and header additionally get `REVERSED` when they had a background colour, or
    /// when no modifier would otherwise set them apart, so they stay visible.
    pub fn resolve(&self, depth: Depth) -> Theme {
        let mut out = self.clone();
        for slot in Slot::ALL {
            let before = self.styles[slot as usize];
            let mut s = before;
            s.fg = s.fg.map(|c| quantize(c, depth));
            s.bg = s.bg.map(|c| quantize(c, depth));
            if depth == Depth::NoColor && matches!(slot, Slot::Selection | Slot::Header) {
                let had_bg = before.bg.is_some_and(|c| c != Color::Reset);
                if had_bg || s.add_modifier.is_empty() {
                    s = s.add_modifier(Modifier::REVERSED);
                }
            }
            out.styles[slot as usize] = s;
        }
        out
    }
}

/// The shipped themes, by name.
pub fn builtin_names() -> &'static [&'static str] {
    &["default", "dark", "light", "mono"]
}

fn builtin_text(name: &str) -> Option<&'static str> {
    match name {
        "default" => Some(include_str!("../../../themes/default.yaml")),
        "dark" => Some(include_str!("../../../themes/dark.yaml")),
        "light" => Some(include_str!("../../../themes/light.yaml")),
        "mono" => Some(include_str!("../../../themes/mono.yaml")),
        _ => None,
    }
}

fn parse_builtin(name: &str) -> Option<Result<Theme, ThemeError>> {
    builtin_text(name).map(|text| parse(&format!("themes/{name}.yaml"), text))
}

/// A shipped theme by name (`None` for an unknown name). Every shipped file is checked by the
/// unit tests to parse and fill every slot.
pub fn builtin(name: &str) -> Option<Theme> {
    parse_builtin(name).and_then(Result::ok)
}

/// Load a theme: a built-in name, else a path to a YAML theme file. A built-in name wins over a
/// file of the same name in the working directory.
pub fn load(name_or_path: &str) -> Result<Theme, ThemeError> {
    if let Some(theme) = parse_builtin(name_or_path) {
        return theme;
    }
    let path = Path::new(name_or_path);
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(source) => {
            let looks_like_path = name_or_path.contains(['/', '\\'])
                || matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml")
                );
            if looks_like_path || source.kind() != std::io::ErrorKind::NotFound {
                return Err(ThemeError::Io {
                    path: name_or_path.to_string(),
                    source,
                });
            }
            return Err(ThemeError::NotFound {
                name: name_or_path.to_string(),
                suggestion: did_you_mean(name_or_path, builtin_names()).map(str::to_string),
            });
        }
    };
    let file = || name_or_path.to_string();
    if meta.is_dir() {
        return Err(whole_file(file(), "is a directory, not a theme file"));
    }
    if meta.len() > MAX_THEME_BYTES {
        return Err(whole_file(
            file(),
            format!(
                "file is {} bytes; theme files larger than {MAX_THEME_BYTES} bytes are refused",
                meta.len()
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(|source| ThemeError::Io {
        path: file(),
        source,
    })?;
    let text = yaml::check_bytes(&bytes).map_err(|e| syntax_error(&file(), e))?;
    parse(name_or_path, text)
}

/// Why a theme could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// Not a built-in name and no such file.
    #[error(
        "no theme named \"{name}\"{}: built-in themes are {}, or give a path to a .yaml file",
        .suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default(),
        builtin_names().join(", ")
    )]
    NotFound {
        name: String,
        suggestion: Option<String>,
    },
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The file was read but is not a valid theme; one problem per line, each as
    /// `FILE:LINE:COL: message`.
    #[error("{}", .problems.iter().map(|d| d.render(.file)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        file: String,
        problems: Vec<Diagnostic>,
    },
}

fn whole_file(file: String, message: impl Into<String>) -> ThemeError {
    ThemeError::Invalid {
        file,
        problems: vec![Diagnostic::File {
            message: message.into(),
        }],
    }
}

fn syntax_error(file: &str, e: yaml::SyntaxError) -> ThemeError {
    ThemeError::Invalid {
        file: file.to_string(),
        problems: vec![match e.pos {
            Some(pos) => Diagnostic::At {
                pos,
                message: e.message,
            },
            None => Diagnostic::File { message: e.message },
        }],
    }
}

/// Parse a theme file's text; `file_label` names the file in error messages. Every problem is
/// reported, each with its line and column.
pub fn parse(file_label: &str, text: &str) -> Result<Theme, ThemeError> {
    if text.trim().is_empty() {
        return Err(whole_file(
            file_label.to_string(),
            "file is empty; expected a theme (name, description, styles)",
        ));
    }
    let root = yaml::check_bytes(text.as_bytes())
        .and_then(yaml::parse)
        .map_err(|e| syntax_error(file_label, e))?;
    let mut p = Problems::default();
    let theme = read_theme(&root, file_label, &mut p);
    if p.0.is_empty() {
        Ok(theme)
    } else {
        let mut problems = p.0;
        problems.sort_by_key(|d| match d {
            Diagnostic::At { pos, .. } => (pos.line, pos.col),
            _ => (0, 0),
        });
        Err(ThemeError::Invalid {
            file: file_label.to_string(),
            problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::colour::nearest_256;
    use super::*;

    fn all_depths() -> [Depth; 4] {
        [
            Depth::TrueColor,
            Depth::Ansi256,
            Depth::Ansi16,
            Depth::NoColor,
        ]
    }

    fn full_theme(styles_extra: &str) -> String {
        let mut s = String::from("name: t\nstyles:\n");
        for slot in Slot::ALL {
            s.push_str(&format!("  {}: {{}}\n", slot.key()));
        }
        s.push_str(styles_extra);
        s
    }

    fn err(text: &str) -> String {
        parse("themes/x.yaml", text).unwrap_err().to_string()
    }

    #[test]
    fn slots_are_in_index_order_with_unique_keys() {
        for (i, slot) in Slot::ALL.iter().enumerate() {
            assert_eq!(*slot as usize, i);
            assert_eq!(Slot::from_key(slot.key()), Some(*slot));
        }
        let mut keys: Vec<_> = Slot::ALL.iter().map(|s| s.key()).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), Slot::COUNT);
    }

    #[test]
    fn every_builtin_parses_and_fills_every_slot() {
        for name in builtin_names() {
            let text = builtin_text(name).unwrap();
            let theme = match parse(&format!("themes/{name}.yaml"), text) {
                Ok(t) => t,
                Err(e) => panic!("themes/{name}.yaml does not parse:\n{e}"),
            };
            assert_eq!(theme.name, *name);
            assert!(!theme.description.is_empty(), "{name} has no description");
            // Every slot is written in the file (parse refuses missing slots; check anyway).
            for slot in Slot::ALL {
                assert!(
                    text.contains(&format!("\n  {}: ", slot.key())),
                    "{name} lacks {slot}"
                );
            }
            assert_eq!(builtin(name), Some(theme.clone()));
            assert_eq!(load(name).unwrap(), theme);
        }
        assert_eq!(builtin("nope"), None);
    }

    #[test]
    fn default_theme_uses_only_ansi_names() {
        let t = builtin("default").unwrap();
        for slot in Slot::ALL {
            let s = t.style(slot);
            for c in [s.fg, s.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                    "default.{slot} uses {c:?}"
                );
            }
        }
        assert_eq!(t.resolve(Depth::Ansi16), t);
        assert_eq!(Theme::default(), t);
    }

    #[test]
    fn dark_theme_is_truecolor() {
        let t = builtin("dark").unwrap();
        assert!(matches!(t.style(Slot::Text).fg, Some(Color::Rgb(..))));
        assert!(matches!(t.style(Slot::Selection).bg, Some(Color::Rgb(..))));
    }

    #[test]
    fn mono_has_no_colours_and_keeps_selection_and_header_visible() {
        let t = builtin("mono").unwrap();
        for slot in Slot::ALL {
            let s = t.style(slot);
            assert_eq!((s.fg, s.bg), (None, None), "mono.{slot} has a colour");
        }
        for slot in [Slot::Selection, Slot::Header] {
            assert!(t.style(slot).add_modifier.contains(Modifier::REVERSED));
        }
        assert_eq!(t.resolve(Depth::NoColor), t);
    }

    #[test]
    fn selection_and_header_stay_visible_at_every_depth() {
        for name in builtin_names() {
            for depth in all_depths() {
                let t = builtin(name).unwrap().resolve(depth);
                let text = t.style(Slot::Text);
                for slot in [Slot::Selection, Slot::Header] {
                    let s = t.style(slot);
                    assert_ne!(s, text, "{name}.{slot} at {depth:?} looks like text");
                    let has_bg = s.bg.is_some_and(|c| c != Color::Reset);
                    assert!(
                        has_bg || s.add_modifier.contains(Modifier::REVERSED),
                        "{name}.{slot} at {depth:?} has neither a background nor reversed"
                    );
                    if let (Some(fg), Some(bg)) = (s.fg, s.bg) {
                        assert!(
                            fg != bg || fg == Color::Reset,
                            "{name}.{slot} at {depth:?}: fg = bg = {fg:?}"
                        );
                    }
                }
            }
        }
    }

    /// The statuses keep their meaning (hue family) when the truecolor themes drop to 16
    /// colours, as they do over SSH to a plain `xterm`.
    #[test]
    fn themes_degrade_to_sensible_ansi16() {
        use Color::*;
        let family = |c: Color| match c {
            Red | LightRed => "red",
            Green | LightGreen => "green",
            Yellow | LightYellow => "yellow",
            Blue | LightBlue => "blue",
            Magenta | LightMagenta => "magenta",
            Cyan | LightCyan => "cyan",
            _ => "other",
        };
        let want = [
            (Slot::StatusProgressing, "cyan"),
            (Slot::StatusPaused, "yellow"),
            (Slot::StatusWaiting, "magenta"),
            (Slot::StatusRollingBack, "yellow"),
            (Slot::StatusSucceeded, "green"),
            (Slot::StatusRolledBack, "red"),
            (Slot::StatusFailed, "red"),
            (Slot::Ok, "green"),
            (Slot::Warn, "yellow"),
            (Slot::Error, "red"),
        ];
        for name in ["default", "dark", "light"] {
            let t = builtin(name).unwrap().resolve(Depth::Ansi16);
            for (slot, fam) in want {
                let fg = t.style(slot).fg.unwrap_or(Reset);
                assert_eq!(family(fg), fam, "{name}.{slot} at Ansi16 is {fg:?}");
            }
            let canary = t.style(Slot::Canary).fg;
            assert_ne!(
                canary,
                t.style(Slot::Baseline).fg,
                "{name}: canary = baseline"
            );
        }
    }

    #[test]
    fn quantize_known_values() {
        let red = Color::Rgb(255, 0, 0);
        assert_eq!(quantize(red, Depth::TrueColor), red);
        assert_eq!(quantize(red, Depth::Ansi256), Color::Indexed(196));
        // xterm's bright red is exactly #ff0000; its normal red is #cd0000.
        assert_eq!(quantize(red, Depth::Ansi16), Color::LightRed);
        assert_eq!(quantize(Color::Rgb(200, 10, 5), Depth::Ansi16), Color::Red);
        // #808080 is exactly gray-ramp step 12 (8 + 10 * 12 = 128).
        let gray = Color::Rgb(0x80, 0x80, 0x80);
        assert_eq!(quantize(gray, Depth::Ansi256), Color::Indexed(244));
        assert_eq!(quantize(gray, Depth::Ansi16), Color::DarkGray);
        assert_eq!(
            quantize(Color::Rgb(0, 0, 0), Depth::Ansi256),
            Color::Indexed(16)
        );
        assert_eq!(
            quantize(Color::Rgb(255, 255, 255), Depth::Ansi256),
            Color::Indexed(231)
        );
        assert_eq!(
            quantize(Color::Rgb(0x5f, 0x87, 0xaf), Depth::Ansi256),
            Color::Indexed(67)
        );
        // Indexed colours: low 16 map by name, the rest by their xterm RGB.
        assert_eq!(quantize(Color::Indexed(9), Depth::Ansi16), Color::LightRed);
        assert_eq!(
            quantize(Color::Indexed(196), Depth::Ansi16),
            Color::LightRed
        );
        assert_eq!(
            quantize(Color::Indexed(244), Depth::Ansi16),
            Color::DarkGray
        );
        assert_eq!(
            quantize(Color::Indexed(244), Depth::Ansi256),
            Color::Indexed(244)
        );
        // Named colours and the terminal default pass through every depth but NoColor.
        for depth in [Depth::TrueColor, Depth::Ansi256, Depth::Ansi16] {
            assert_eq!(quantize(Color::Cyan, depth), Color::Cyan);
            assert_eq!(quantize(Color::Reset, depth), Color::Reset);
        }
        for c in [red, Color::Cyan, Color::Indexed(3), Color::Reset] {
            assert_eq!(quantize(c, Depth::NoColor), Color::Reset);
        }
    }

    #[test]
    fn xterm_palette_matches_xterm() {
        assert_eq!(xterm_rgb(16), (0, 0, 0));
        assert_eq!(xterm_rgb(21), (0, 0, 255));
        assert_eq!(xterm_rgb(67), (0x5f, 0x87, 0xaf));
        assert_eq!(xterm_rgb(231), (255, 255, 255));
        assert_eq!(xterm_rgb(232), (8, 8, 8));
        assert_eq!(xterm_rgb(255), (238, 238, 238));
        for i in 16..=255u8 {
            assert_eq!(
                nearest_256(xterm_rgb(i)),
                i,
                "every palette entry is its own nearest"
            );
        }
    }

    #[test]
    fn resolve_quantises_every_slot() {
        let dark = builtin("dark").unwrap();
        assert_eq!(dark.resolve(Depth::TrueColor), dark);
        for depth in [Depth::Ansi256, Depth::Ansi16] {
            let t = dark.resolve(depth);
            for slot in Slot::ALL {
                let s = t.style(slot);
                for c in [s.fg, s.bg].into_iter().flatten() {
                    assert!(!matches!(c, Color::Rgb(..)), "{slot} at {depth:?}: {c:?}");
                    if depth == Depth::Ansi16 {
                        assert!(!matches!(c, Color::Indexed(_)), "{slot}: {c:?}");
                    }
                }
                assert_eq!(s.add_modifier, dark.style(slot).add_modifier);
            }
            assert_eq!(t.resolve(depth), t, "resolve is idempotent");
        }
    }

    #[test]
    fn no_color_keeps_modifiers_and_reverses_selection() {
        let text = full_theme("")
            .replace(
                "  selection: {}\n",
                "  selection: {fg: black, bg: cyan, modifiers: [bold]}\n",
            )
            .replace("  header: {}\n", "  header: {fg: \"#000000\"}\n")
            .replace(
                "  key: {}\n",
                "  key: {fg: yellow, modifiers: [underlined]}\n",
            )
            .replace("  dialog: {}\n", "  dialog: {bg: blue}\n");
        let t = parse("t.yaml", &text).unwrap().resolve(Depth::NoColor);
        let sel = t.style(Slot::Selection);
        assert_eq!((sel.fg, sel.bg), (Some(Color::Reset), Some(Color::Reset)));
        assert_eq!(sel.add_modifier, Modifier::BOLD | Modifier::REVERSED);
        // No background, but nothing else would set the header apart either.
        assert!(t
            .style(Slot::Header)
            .add_modifier
            .contains(Modifier::REVERSED));
        let key = t.style(Slot::Key);
        assert_eq!(key.fg, Some(Color::Reset));
        assert_eq!(key.add_modifier, Modifier::UNDERLINED);
        // Other slots with a background are not reversed.
        assert_eq!(t.style(Slot::Dialog).add_modifier, Modifier::empty());
        assert_eq!(t.style(Slot::Text), Style::new());
        // Every builtin keeps reversed on the selection and header.
        for name in builtin_names() {
            let t = builtin(name).unwrap().resolve(Depth::NoColor);
            for slot in [Slot::Selection, Slot::Header] {
                assert!(
                    t.style(slot).add_modifier.contains(Modifier::REVERSED),
                    "{name}.{slot}"
                );
            }
        }
    }

    #[test]
    fn colours_and_modifiers_parse() {
        let text = full_theme("").replace(
            "  text: {}\n",
            "  text: {fg: \"#1A2b3c\", bg: 236, modifiers: [bold, crossed-out, DIM]}\n",
        );
        let t = parse("t.yaml", &text).unwrap();
        assert_eq!(t.name, "t");
        assert_eq!(
            t.style(Slot::Text),
            Style::new()
                .fg(Color::Rgb(0x1a, 0x2b, 0x3c))
                .bg(Color::Indexed(236))
                .add_modifier(Modifier::BOLD | Modifier::CROSSED_OUT | Modifier::DIM)
        );
        assert_eq!(t.style(Slot::Muted), Style::new());
        // Without a name, the file's stem names the theme.
        let unnamed = full_theme("").replace("name: t\n", "");
        assert_eq!(parse("themes/solar.yaml", &unnamed).unwrap().name, "solar");
        for (name, c) in [
            ("default", Color::Reset),
            ("white", Color::Gray),
            ("gray", Color::Gray),
            ("bright-black", Color::DarkGray),
            ("bright_white", Color::White),
            ("Bright-Cyan", Color::LightCyan),
            ("255", Color::Indexed(255)),
        ] {
            assert_eq!(parse_colour(name), Ok(c), "{name}");
        }
        assert!(parse_colour("#12345").is_err());
        assert!(parse_colour("256").unwrap_err().contains("0-255"));
    }

    #[test]
    fn missing_slot_names_the_slot_file_and_place() {
        let text = full_theme("").replace("  gauge: {}\n", "");
        let e = err(&text);
        assert_eq!(
            e,
            "themes/x.yaml:2:1: styles: missing slot \"gauge\"; every slot needs a style ({} for the terminal's own)"
        );
        let e = err("name: t\nstyles:\n  text: {}\n");
        assert!(
            e.starts_with("themes/x.yaml:2:1: styles: missing slots \"muted\", "),
            "{e}"
        );
        let e = err("name: t\n");
        assert!(
            e.starts_with("themes/x.yaml:1:1: missing \"styles\""),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_get_did_you_mean_with_position() {
        let e = err(&full_theme("  selction: {}\n"));
        assert_eq!(
            e,
            format!(
                "themes/x.yaml:{}:3: unknown slot \"selction\" (did you mean \"selection\"?)",
                Slot::COUNT + 3
            )
        );
        let e = err(&full_theme("").replace("name: t\n", "name: t\nstlyes: {}\n"));
        assert_eq!(
            e,
            "themes/x.yaml:2:1: unknown key \"stlyes\" (did you mean \"styles\"?)"
        );
        let e = err(&full_theme("  border-focus: {}\n").replace("  border_focus: {}\n", ""));
        assert!(
            e.contains("unknown slot \"border-focus\" (did you mean \"border_focus\"?)"),
            "{e}"
        );
        let e = err(&full_theme("").replace("  title: {}\n", "  title: {fgg: red}\n"));
        assert!(
            e.ends_with(":5:11: title: unknown key \"fgg\" (did you mean \"fg\"?)"),
            "{e}"
        );
    }

    #[test]
    fn bad_colours_and_modifiers_are_positioned() {
        let text = full_theme("").replace("  text: {}\n", "  text: {fg: bleu}\n");
        assert_eq!(
            err(&text),
            "themes/x.yaml:3:14: text: unknown colour \"bleu\" (did you mean \"blue\"?)"
        );
        let text = full_theme("").replace(
            "  muted: {}\n",
            "  muted:\n    fg: 300\n    modifiers: [bold, bld, blink]\n",
        );
        let e = err(&text);
        let lines: Vec<_> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert_eq!(
            lines[0],
            "themes/x.yaml:5:9: muted: colour index 300 is out of range 0-255"
        );
        assert_eq!(
            lines[1],
            "themes/x.yaml:6:23: muted: unknown modifier \"bld\" (did you mean \"bold\"?)"
        );
        assert!(
            lines[2].starts_with(
                "themes/x.yaml:6:28: muted: unknown modifier \"blink\": expected one of bold, dim"
            ),
            "{e}"
        );
        // An unquoted hex colour is a YAML comment: say so.
        let text = full_theme("").replace("  text: {}\n", "  text:\n    fg: #ff0000\n");
        assert!(err(&text).contains("quote hex colours"), "{}", err(&text));
        let text = full_theme("").replace("  text: {}\n", "  text:\n");
        assert!(err(&text).contains("text: no style given"));
        let text = full_theme("").replace("  text: {}\n", "  text: red\n");
        assert!(err(&text).contains("text: expected a style like"));
    }

    #[test]
    fn syntax_and_shape_errors() {
        assert!(err("").contains("empty"));
        assert!(err("[1, 2]").starts_with("themes/x.yaml:1:1: a theme is a mapping"));
        let e = err("name: t\nstyles: {text: {fg: red}\n");
        assert!(e.starts_with("themes/x.yaml:"), "{e}");
    }

    #[test]
    fn load_reports_unknown_names_and_reads_files() {
        let e = load("foo").unwrap_err().to_string();
        assert_eq!(
            e,
            "no theme named \"foo\": built-in themes are default, dark, light, mono, or give a path to a .yaml file"
        );
        let e = load("drak").unwrap_err().to_string();
        assert!(
            e.starts_with("no theme named \"drak\" (did you mean \"dark\"?): "),
            "{e}"
        );
        let e = load("missing/theme.yaml").unwrap_err();
        assert!(matches!(e, ThemeError::Io { .. }), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.yaml");
        std::fs::write(&path, full_theme("")).unwrap();
        let t = load(path.to_str().unwrap()).unwrap();
        assert_eq!(t.name, "t");
        std::fs::write(&path, full_theme("  extra: {}\n")).unwrap();
        let e = load(path.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}:", path.display())), "{e}");
        let e = load(dir.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
    }
}
