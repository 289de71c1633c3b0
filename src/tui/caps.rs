//! What the terminal can show: colour depth and whether to draw Unicode symbols.
//!
//! Owns: reading `NO_COLOR`, `COLORTERM`, `TERM` and the locale variables into a [`Depth`] and a
//! Unicode yes/no. Pure functions over an environment lookup, so every rule is testable; pass
//! [`from_env`] for the real environment. Must not touch: the terminal itself (no queries, no
//! escape sequences).

use std::fmt;
use std::str::FromStr;

use super::theme::Depth;

/// The user's colour choice (`--color`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Detect from the environment.
    #[default]
    Auto,
    /// No colours at all.
    Never,
    /// The 16 ANSI colours.
    Ansi16,
    /// The xterm 256-colour palette.
    Ansi256,
    /// 24-bit RGB.
    TrueColor,
}

/// A `--color` value that is not one of `auto`, `never`, `16`, `256`, `truecolor`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown colour mode \"{given}\": expected auto, never, 16, 256 or truecolor")]
pub struct ColorChoiceError {
    pub given: String,
}

impl FromStr for ColorChoice {
    type Err = ColorChoiceError;

    /// `auto`, `never`, `16`, `256` or `truecolor` (also `24bit`), any case.
    fn from_str(s: &str) -> Result<ColorChoice, ColorChoiceError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(ColorChoice::Auto),
            "never" => Ok(ColorChoice::Never),
            "16" => Ok(ColorChoice::Ansi16),
            "256" => Ok(ColorChoice::Ansi256),
            "truecolor" | "24bit" => Ok(ColorChoice::TrueColor),
            _ => Err(ColorChoiceError {
                given: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for ColorChoice {
    /// The spelling `from_str` reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Never => "never",
            ColorChoice::Ansi16 => "16",
            ColorChoice::Ansi256 => "256",
            ColorChoice::TrueColor => "truecolor",
        })
    }
}

/// The real environment, for [`depth`] and [`unicode`]. Unset and non-UTF-8 values are `None`.
pub fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A variable that is set and not empty.
fn set(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// The colour depth to draw with.
///
/// An explicit choice wins, even over `NO_COLOR` (`Never` is [`Depth::NoColor`]). For `Auto`, in
/// order: `NO_COLOR` set and non-empty -> `NoColor`; `TERM=dumb` -> `NoColor` (checked before
/// `COLORTERM`, which a dumb terminal may inherit from its parent); `COLORTERM` `truecolor` or
/// `24bit` -> `TrueColor`; `TERM` containing `256color` -> `Ansi256`; anything else (unset `TERM`
/// included) -> `Ansi16`. Nothing else implies truecolor: SSH usually drops `COLORTERM`, and a
/// remote `xterm-256color` gets 256 colours, not RGB escapes it may not render.
pub fn depth(choice: ColorChoice, env: &dyn Fn(&str) -> Option<String>) -> Depth {
    match choice {
        ColorChoice::Never => return Depth::NoColor,
        ColorChoice::Ansi16 => return Depth::Ansi16,
        ColorChoice::Ansi256 => return Depth::Ansi256,
        ColorChoice::TrueColor => return Depth::TrueColor,
        ColorChoice::Auto => {}
    }
    if set(env, "NO_COLOR").is_some() {
        return Depth::NoColor;
    }
    let term = set(env, "TERM").unwrap_or_default().to_ascii_lowercase();
    if term == "dumb" {
        return Depth::NoColor;
    }
    let colorterm = set(env, "COLORTERM")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if colorterm == "truecolor" || colorterm == "24bit" {
        return Depth::TrueColor;
    }
    if term.contains("256color") {
        return Depth::Ansi256;
    }
    Depth::Ansi16
}

/// Whether to draw Unicode symbols (box drawing, braille charts, arrows) rather than ASCII.
///
/// `false` when `ascii_flag` is set (`--ascii`), when `TERM=linux` (the Linux console's font
/// lacks most symbols), or when the locale is not UTF-8: the first of `LC_ALL`, `LC_CTYPE`,
/// `LANG` that is set and non-empty decides, and must contain `UTF-8` or `utf8` in any case.
/// With none set the locale is POSIX, which is ASCII, so `false`.
pub fn unicode(ascii_flag: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    if ascii_flag {
        return false;
    }
    if set(env, "TERM").as_deref() == Some("linux") {
        return false;
    }
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .into_iter()
        .find_map(|name| set(env, name));
    match locale {
        Some(l) => {
            let l = l.to_ascii_lowercase();
            l.contains("utf-8") || l.contains("utf8")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn auto(vars: &[(&str, &str)]) -> Depth {
        depth(ColorChoice::Auto, &env(vars))
    }

    #[test]
    fn choices_parse_and_print() {
        for (s, c) in [
            ("auto", ColorChoice::Auto),
            ("never", ColorChoice::Never),
            ("16", ColorChoice::Ansi16),
            ("256", ColorChoice::Ansi256),
            ("truecolor", ColorChoice::TrueColor),
        ] {
            assert_eq!(s.parse::<ColorChoice>(), Ok(c));
            assert_eq!(c.to_string(), s);
        }
        assert_eq!("TrueColor".parse(), Ok(ColorChoice::TrueColor));
        assert_eq!("24bit".parse(), Ok(ColorChoice::TrueColor));
        assert_eq!(ColorChoice::default(), ColorChoice::Auto);
        let e = "always".parse::<ColorChoice>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown colour mode \"always\": expected auto, never, 16, 256 or truecolor"
        );
    }

    #[test]
    fn explicit_choice_wins_even_over_no_color() {
        let e = env(&[("NO_COLOR", "1"), ("TERM", "dumb")]);
        assert_eq!(depth(ColorChoice::TrueColor, &e), Depth::TrueColor);
        assert_eq!(depth(ColorChoice::Ansi256, &e), Depth::Ansi256);
        assert_eq!(depth(ColorChoice::Ansi16, &e), Depth::Ansi16);
        let rich = env(&[("COLORTERM", "truecolor"), ("TERM", "xterm-256color")]);
        assert_eq!(depth(ColorChoice::Never, &rich), Depth::NoColor);
    }

    #[test]
    fn no_color_turns_auto_off_unless_empty() {
        let rich = [("COLORTERM", "truecolor"), ("TERM", "xterm-256color")];
        assert_eq!(auto(&[("NO_COLOR", "1"), rich[0], rich[1]]), Depth::NoColor);
        assert_eq!(
            auto(&[("NO_COLOR", ""), rich[0], rich[1]]),
            Depth::TrueColor
        );
    }

    #[test]
    fn auto_reads_colorterm_then_term() {
        assert_eq!(auto(&[("COLORTERM", "truecolor")]), Depth::TrueColor);
        assert_eq!(
            auto(&[("COLORTERM", "24bit"), ("TERM", "xterm")]),
            Depth::TrueColor
        );
        assert_eq!(auto(&[("COLORTERM", "TrueColor")]), Depth::TrueColor);
        // Any other COLORTERM value (e.g. rxvt's "rxvt-xpm") says nothing about depth.
        assert_eq!(
            auto(&[("COLORTERM", "yes"), ("TERM", "xterm")]),
            Depth::Ansi16
        );
        assert_eq!(auto(&[("TERM", "xterm-256color")]), Depth::Ansi256);
        assert_eq!(auto(&[("TERM", "tmux-256color")]), Depth::Ansi256);
        assert_eq!(auto(&[("TERM", "dumb")]), Depth::NoColor);
        assert_eq!(
            auto(&[("TERM", "dumb"), ("COLORTERM", "truecolor")]),
            Depth::NoColor
        );
        assert_eq!(auto(&[("TERM", "xterm")]), Depth::Ansi16);
        assert_eq!(auto(&[("TERM", "screen")]), Depth::Ansi16);
        assert_eq!(auto(&[("TERM", "linux")]), Depth::Ansi16);
        assert_eq!(auto(&[]), Depth::Ansi16);
    }

    #[test]
    fn ssh_without_colorterm_is_not_truecolor() {
        // SSH forwards TERM but not COLORTERM; SSH_* variables must not imply truecolor.
        let e = [
            ("TERM", "xterm-256color"),
            ("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22"),
            ("SSH_TTY", "/dev/pts/0"),
            ("TERM_PROGRAM", "iTerm.app"),
        ];
        assert_eq!(auto(&e), Depth::Ansi256);
    }

    #[test]
    fn unicode_rules() {
        let utf8 = ("LANG", "en_US.UTF-8");
        assert!(unicode(false, &env(&[utf8])));
        assert!(!unicode(true, &env(&[utf8])), "--ascii wins");
        assert!(!unicode(false, &env(&[utf8, ("TERM", "linux")])));
        assert!(unicode(false, &env(&[utf8, ("TERM", "xterm-256color")])));
        assert!(unicode(false, &env(&[("LC_ALL", "C.utf8")])));
        assert!(unicode(false, &env(&[("LC_CTYPE", "de_DE.Utf-8")])));
        assert!(!unicode(false, &env(&[("LANG", "C")])));
        assert!(!unicode(false, &env(&[("LANG", "en_US.ISO-8859-1")])));
        assert!(!unicode(false, &env(&[])), "POSIX locale is ASCII");
    }

    #[test]
    fn first_set_locale_variable_decides() {
        // LC_ALL overrides LC_CTYPE overrides LANG, in both directions.
        assert!(!unicode(
            false,
            &env(&[("LC_ALL", "C"), ("LC_CTYPE", "en_US.UTF-8"), utf8()])
        ));
        assert!(unicode(
            false,
            &env(&[("LC_ALL", "en_US.UTF-8"), ("LC_CTYPE", "C")])
        ));
        assert!(!unicode(false, &env(&[("LC_CTYPE", "POSIX"), utf8()])));
        assert!(unicode(
            false,
            &env(&[("LC_CTYPE", "en_GB.UTF-8"), ("LANG", "C")])
        ));
        // Empty counts as unset.
        assert!(unicode(
            false,
            &env(&[("LC_ALL", ""), ("LC_CTYPE", ""), utf8()])
        ));
        assert!(!unicode(false, &env(&[("LC_ALL", ""), ("LANG", "C")])));
    }

    fn utf8() -> (&'static str, &'static str) {
        ("LANG", "en_US.UTF-8")
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        assert_eq!(from_env("CUTOVER_CAPS_TEST_SURELY_UNSET_VARIABLE"), None);
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(from_env("PATH"), Some(path));
        }
    }
}
