//! Reading a theme file's positioned YAML into styles: slots, colours (names, `#rrggbb`,
//! indexes) and modifiers, collecting every problem with its place and a did-you-mean.
//!
//! Owns: the theme file's grammar. Must not touch: resolving colours to a terminal's depth.

use std::path::Path;

use ratatui::style::{Color, Modifier, Style};

use super::{Slot, Theme};
use crate::spec::decode::did_you_mean;
use crate::spec::yaml::{Key, Kind, Node, Pos};
use crate::spec::Diagnostic;

#[derive(Default)]
pub(super) struct Problems(pub(super) Vec<Diagnostic>);

impl Problems {
    fn at(&mut self, pos: Pos, message: impl Into<String>) {
        self.0.push(Diagnostic::At {
            pos,
            message: message.into(),
        });
    }
}

const TOP_KEYS: &[&str] = &["name", "description", "styles"];
const STYLE_KEYS: &[&str] = &["fg", "bg", "modifiers"];

fn unknown(what: &str, word: &str, allowed: &[&str]) -> String {
    match did_you_mean(word, allowed) {
        Some(s) => format!("unknown {what} \"{word}\" (did you mean \"{s}\"?)"),
        None => format!(
            "unknown {what} \"{word}\": expected one of {}",
            allowed.join(", ")
        ),
    }
}

pub(super) fn read_theme(root: &Node, file_label: &str, p: &mut Problems) -> Theme {
    let stem = Path::new(file_label)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file_label);
    let mut theme = Theme {
        name: stem.to_string(),
        description: String::new(),
        styles: [Style::new(); Slot::COUNT],
    };
    let Kind::Map(entries) = &root.kind else {
        p.at(
            root.pos,
            format!(
                "a theme is a mapping with name, description and styles; found {}",
                root.type_name()
            ),
        );
        return theme;
    };
    let mut styles_seen = false;
    for (key, value) in entries {
        match key.name.as_str() {
            "name" => {
                if let Some(s) = text_value(value, "name", p) {
                    theme.name = s;
                }
            }
            "description" => {
                if let Some(s) = text_value(value, "description", p) {
                    theme.description = s;
                }
            }
            "styles" => {
                styles_seen = true;
                read_styles(key, value, &mut theme.styles, p);
            }
            other => p.at(key.pos, unknown("key", other, TOP_KEYS)),
        }
    }
    if !styles_seen {
        p.at(
            entries.first().map_or(root.pos, |(k, _)| k.pos),
            "missing \"styles\": a theme gives a style to every slot",
        );
    }
    theme
}

fn text_value(n: &Node, what: &str, p: &mut Problems) -> Option<String> {
    match &n.kind {
        Kind::Str(s) => Some(s.clone()),
        Kind::Int(_) | Kind::Float(_) | Kind::Bool(_) => n.raw.clone(),
        _ => {
            p.at(
                n.pos,
                format!("{what}: expected text, found {}", n.type_name()),
            );
            None
        }
    }
}

fn read_styles(key: &Key, n: &Node, styles: &mut [Style; Slot::COUNT], p: &mut Problems) {
    let Kind::Map(entries) = &n.kind else {
        p.at(
            n.pos,
            format!(
                "styles: expected a mapping of slot to style, found {}",
                n.type_name()
            ),
        );
        return;
    };
    let keys: Vec<&str> = Slot::ALL.iter().map(|s| s.key()).collect();
    let mut filled = [false; Slot::COUNT];
    for (k, v) in entries {
        match Slot::from_key(&k.name) {
            Some(slot) => {
                filled[slot as usize] = true;
                if let Some(style) = read_style(slot, v, p) {
                    styles[slot as usize] = style;
                }
            }
            None => p.at(k.pos, unknown("slot", &k.name, &keys)),
        }
    }
    let missing: Vec<String> = Slot::ALL
        .iter()
        .filter(|s| !filled[**s as usize])
        .map(|s| format!("\"{}\"", s.key()))
        .collect();
    if !missing.is_empty() {
        let plural = if missing.len() == 1 { "" } else { "s" };
        p.at(
            key.pos,
            format!(
                "styles: missing slot{plural} {}; every slot needs a style ({{}} for the terminal's own)",
                missing.join(", ")
            ),
        );
    }
}

fn read_style(slot: Slot, n: &Node, p: &mut Problems) -> Option<Style> {
    let entries = match &n.kind {
        Kind::Map(e) => e,
        Kind::Null => {
            p.at(
                n.pos,
                format!(
                    "{slot}: no style given; write {{}} for the terminal's own style, or e.g. {{fg: red, modifiers: [bold]}}"
                ),
            );
            return None;
        }
        _ => {
            p.at(
                n.pos,
                format!(
                    "{slot}: expected a style like {{fg: red, bg: default, modifiers: [bold]}}, found {}",
                    n.type_name()
                ),
            );
            return None;
        }
    };
    let mut style = Style::new();
    let mut ok = true;
    for (k, v) in entries {
        match k.name.as_str() {
            "fg" => match colour(slot, "fg", v, p) {
                Some(c) => style = style.fg(c),
                None => ok = false,
            },
            "bg" => match colour(slot, "bg", v, p) {
                Some(c) => style = style.bg(c),
                None => ok = false,
            },
            "modifiers" => match modifiers(slot, v, p) {
                Some(m) => style = style.add_modifier(m),
                None => ok = false,
            },
            other => {
                p.at(
                    k.pos,
                    format!("{slot}: {}", unknown("key", other, STYLE_KEYS)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(style)
}

/// Colour names accepted in theme files, canonical spellings first (these are suggested).
const COLOURS: &[(&str, Color)] = &[
    ("default", Color::Reset),
    ("black", Color::Black),
    ("red", Color::Red),
    ("green", Color::Green),
    ("yellow", Color::Yellow),
    ("blue", Color::Blue),
    ("magenta", Color::Magenta),
    ("cyan", Color::Cyan),
    ("white", Color::Gray),
    ("bright-black", Color::DarkGray),
    ("bright-red", Color::LightRed),
    ("bright-green", Color::LightGreen),
    ("bright-yellow", Color::LightYellow),
    ("bright-blue", Color::LightBlue),
    ("bright-magenta", Color::LightMagenta),
    ("bright-cyan", Color::LightCyan),
    ("bright-white", Color::White),
    ("gray", Color::Gray),
    ("grey", Color::Gray),
    ("dark-gray", Color::DarkGray),
    ("dark-grey", Color::DarkGray),
];

/// The canonical colour names (no aliases), for suggestions and messages.
const COLOUR_NAMES: &[&str] = &[
    "default",
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "white",
    "bright-black",
    "bright-red",
    "bright-green",
    "bright-yellow",
    "bright-blue",
    "bright-magenta",
    "bright-cyan",
    "bright-white",
];

/// Parse a colour as written in a theme file: a name, `#rrggbb` or `0`-`255`.
pub fn parse_colour(text: &str) -> Result<Color, String> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0);
            return Ok(Color::Rgb(byte(0), byte(2), byte(4)));
        }
        return Err(format!(
            "\"{t}\" is not a colour: write hex colours as \"#rrggbb\""
        ));
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<u8>() {
            Ok(i) => Ok(Color::Indexed(i)),
            Err(_) => Err(format!("colour index {t} is out of range 0-255")),
        };
    }
    let norm = t.to_ascii_lowercase().replace(['_', ' '], "-");
    if let Some((_, c)) = COLOURS.iter().find(|(n, _)| *n == norm) {
        return Ok(*c);
    }
    Err(match did_you_mean(t, COLOUR_NAMES) {
        Some(s) => format!("unknown colour \"{t}\" (did you mean \"{s}\"?)"),
        None => format!(
            "unknown colour \"{t}\": use default, a colour name ({}), \"#rrggbb\" or 0-255",
            COLOUR_NAMES[1..].join(", ")
        ),
    })
}

fn colour(slot: Slot, which: &str, n: &Node, p: &mut Problems) -> Option<Color> {
    let result = match &n.kind {
        Kind::Str(s) => parse_colour(s),
        Kind::Int(i) => match u8::try_from(*i) {
            Ok(i) => Ok(Color::Indexed(i)),
            Err(_) => Err(format!("colour index {i} is out of range 0-255")),
        },
        Kind::Null => Err(format!(
            "{which} has no colour; quote hex colours (\"#1a1b26\"): YAML reads an unquoted # as the start of a comment"
        )),
        _ => Err(format!(
            "{which}: expected a colour name, \"#rrggbb\" or 0-255, found {}",
            n.type_name()
        )),
    };
    match result {
        Ok(c) => Some(c),
        Err(message) => {
            p.at(n.pos, format!("{slot}: {message}"));
            None
        }
    }
}

const MODIFIERS: &[(&str, Modifier)] = &[
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("crossed-out", Modifier::CROSSED_OUT),
];

fn modifiers(slot: Slot, n: &Node, p: &mut Problems) -> Option<Modifier> {
    let items: &[Node] = match &n.kind {
        Kind::Seq(items) => items,
        Kind::Str(_) => std::slice::from_ref(n),
        Kind::Null => &[],
        _ => {
            p.at(
                n.pos,
                format!(
                    "{slot}: modifiers: expected a list like [bold, reversed], found {}",
                    n.type_name()
                ),
            );
            return None;
        }
    };
    let names: Vec<&str> = MODIFIERS.iter().map(|(name, _)| *name).collect();
    let mut out = Modifier::empty();
    let mut ok = true;
    for item in items {
        let Kind::Str(s) = &item.kind else {
            p.at(
                item.pos,
                format!(
                    "{slot}: modifiers: expected a modifier name, found {}",
                    item.type_name()
                ),
            );
            ok = false;
            continue;
        };
        let norm = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        match MODIFIERS.iter().find(|(name, _)| *name == norm) {
            Some((_, m)) => out |= *m,
            None => {
                p.at(
                    item.pos,
                    format!("{slot}: {}", unknown("modifier", s, &names)),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// Property tests: no panic on any text or any colour word, and a theme written from generated
/// styles reads back as exactly those styles.
#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use ratatui::style::{Color, Modifier, Style};

    use super::{parse_colour, COLOURS, MODIFIERS};
    use crate::spec::Diagnostic;
    use crate::tui::theme::{parse, Depth, Slot, ThemeError};

    /// A colour as a theme file spells it, and what it means.
    fn colour() -> impl Strategy<Value = (String, Color)> {
        prop_oneof![
            any::<(u8, u8, u8)>()
                .prop_map(|(r, g, b)| (format!("'#{r:02x}{g:02X}{b:02x}'"), Color::Rgb(r, g, b))),
            any::<u8>().prop_map(|i| (i.to_string(), Color::Indexed(i))),
            any::<u8>().prop_map(|i| (format!("'{i}'"), Color::Indexed(i))),
            prop::sample::select(COLOURS).prop_map(|(n, c)| (n.to_string(), c)),
        ]
    }

    fn style() -> impl Strategy<Value = (String, Style)> {
        let mods = prop::collection::vec(prop::sample::select(MODIFIERS), 0..3);
        (prop::option::of(colour()), prop::option::of(colour()), mods).prop_map(|(fg, bg, mods)| {
            let mut text = Vec::new();
            let mut style = Style::new();
            if let Some((t, c)) = fg {
                text.push(format!("fg: {t}"));
                style = style.fg(c);
            }
            if let Some((t, c)) = bg {
                text.push(format!("bg: {t}"));
                style = style.bg(c);
            }
            if !mods.is_empty() {
                let names: Vec<&str> = mods.iter().map(|(n, _)| *n).collect();
                text.push(format!("modifiers: [{}]", names.join(", ")));
                style = style.add_modifier(mods.iter().fold(Modifier::empty(), |m, (_, x)| m | *x));
            }
            (format!("{{{}}}", text.join(", ")), style)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn written_styles_read_back(styles in prop::collection::vec(style(), Slot::COUNT)) {
            let mut text = String::from("name: generated\ndescription: by proptest\nstyles:\n");
            for (slot, (s, _)) in Slot::ALL.iter().zip(&styles) {
                text.push_str(&format!("  {}: {s}\n", slot.key()));
            }
            let theme = parse("generated.yaml", &text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            for (slot, (_, want)) in Slot::ALL.iter().zip(&styles) {
                prop_assert_eq!(theme.style(*slot), *want, "{}", slot.key());
            }
            for depth in [Depth::TrueColor, Depth::Ansi256, Depth::Ansi16, Depth::NoColor] {
                let _ = theme.resolve(depth);
            }
        }

        #[test]
        fn any_text_is_a_theme_or_problems_with_places(text in "\\PC{0,200}") {
            // Every problem names its line and column (FILE:LINE:COL), except a file with
            // nothing in it.
            if let Err(e) = parse("t.yaml", &text) {
                let ThemeError::Invalid { problems, .. } = &e else {
                    return Err(TestCaseError::fail(format!("not a parse error: {e}")));
                };
                prop_assert!(!problems.is_empty());
                let lines = text.lines().count().max(1);
                for d in problems {
                    match d {
                        Diagnostic::At { pos, .. } => {
                            prop_assert!(pos.line >= 1 && pos.line <= lines + 1 && pos.col >= 1, "{}", e)
                        }
                        Diagnostic::File { message } => prop_assert!(message.contains("empty"), "{}", e),
                        Diagnostic::Field { .. } => prop_assert!(false, "no place: {}", e),
                    }
                }
            }
        }

        #[test]
        fn any_colour_word_is_a_colour_or_a_message(text in "\\PC{0,12}|#[0-9a-fA-F]{0,8}|[0-9]{1,4}") {
            if let Err(message) = parse_colour(&text) {
                prop_assert!(!message.is_empty());
            }
        }
    }
}
