//! The console's keys: one table per mode, from which both dispatch and the `?` help are made
//! (so help is never out of date).
//!
//! Owns: mapping a key in a mode to an [`Action`], and which actions mutate (hidden and refused in
//! read-only mode). Must not touch: state or rendering.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where the console is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The deployment list and the selected deployment's panes.
    Normal,
    /// The `?` help overlay.
    Help,
    /// A yes/no question (promote, roll back, quit with runs in flight).
    Confirm,
    /// Typing a `/` filter.
    Filter,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    NextPane,
    PrevPane,
    /// Keep what was typed (filter mode).
    Open,
    Back,
    Help,
    Filter,
    Redraw,
    Quit,
    Pause,
    Resume,
    Approve,
    Promote,
    Rollback,
    Yes,
    No,
}

impl Action {
    /// Changes a deployment: hidden and refused in read-only mode.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Action::Pause | Action::Resume | Action::Approve | Action::Promote | Action::Rollback
        )
    }
}

/// One binding: the key as shown, the key, the action, what it does.
pub struct Binding {
    pub keys: &'static str,
    pub code: KeyCode,
    pub ctrl: bool,
    pub action: Action,
    pub help: &'static str,
}

const fn b(keys: &'static str, code: KeyCode, action: Action, help: &'static str) -> Binding {
    Binding {
        keys,
        code,
        ctrl: false,
        action,
        help,
    }
}

/// The normal mode's keys, in help order.
pub const NORMAL: &[Binding] = &[
    b("k/up", KeyCode::Up, Action::Up, "previous deployment"),
    b(
        "k/up",
        KeyCode::Char('k'),
        Action::Up,
        "previous deployment",
    ),
    b("j/down", KeyCode::Down, Action::Down, "next deployment"),
    b(
        "j/down",
        KeyCode::Char('j'),
        Action::Down,
        "next deployment",
    ),
    b("tab", KeyCode::Tab, Action::NextPane, "next pane"),
    b("l/right", KeyCode::Char('l'), Action::NextPane, "next pane"),
    b("l/right", KeyCode::Right, Action::NextPane, "next pane"),
    b(
        "shift-tab",
        KeyCode::BackTab,
        Action::PrevPane,
        "previous pane",
    ),
    b(
        "h/left",
        KeyCode::Char('h'),
        Action::PrevPane,
        "previous pane",
    ),
    b("h/left", KeyCode::Left, Action::PrevPane, "previous pane"),
    b("esc", KeyCode::Esc, Action::Back, "back"),
    b(
        "/",
        KeyCode::Char('/'),
        Action::Filter,
        "filter deployments",
    ),
    b("?", KeyCode::Char('?'), Action::Help, "this help"),
    Binding {
        keys: "ctrl-l",
        code: KeyCode::Char('l'),
        ctrl: true,
        action: Action::Redraw,
        help: "redraw the screen",
    },
    b(
        "p",
        KeyCode::Char('p'),
        Action::Pause,
        "pause the deployment",
    ),
    b("r", KeyCode::Char('r'), Action::Resume, "resume it"),
    b(
        "a",
        KeyCode::Char('a'),
        Action::Approve,
        "approve the gate it waits at",
    ),
    b(
        "P",
        KeyCode::Char('P'),
        Action::Promote,
        "promote: skip the remaining analysis (asks first)",
    ),
    b(
        "U",
        KeyCode::Char('U'),
        Action::Rollback,
        "roll back (shows the plan, asks first)",
    ),
    b("q", KeyCode::Char('q'), Action::Quit, "quit"),
];

const CONFIRM: &[Binding] = &[
    b("y", KeyCode::Char('y'), Action::Yes, "yes"),
    b("enter", KeyCode::Enter, Action::Yes, "yes"),
    b("n", KeyCode::Char('n'), Action::No, "no"),
    b("esc", KeyCode::Esc, Action::No, "no"),
];

/// The action for a key in a mode (`None`: the key does nothing there).
pub fn action(mode: Mode, key: KeyEvent, read_only: bool) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    let table = match mode {
        Mode::Normal => NORMAL,
        Mode::Confirm => CONFIRM,
        Mode::Help => {
            return matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            )
            .then_some(Action::Back)
        }
        // Filter mode takes text; only esc and enter are actions.
        Mode::Filter => {
            return match key.code {
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Enter => Some(Action::Open),
                _ => None,
            }
        }
    };
    table
        .iter()
        .find(|bnd| bnd.code == key.code && bnd.ctrl == ctrl)
        .map(|bnd| bnd.action)
        .filter(|a| !(read_only && a.mutates()))
}

/// Help lines, generated from the table (duplicates by key label dropped).
pub fn help(read_only: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for bnd in NORMAL {
        if read_only && bnd.action.mutates() {
            continue;
        }
        if out.iter().any(|(k, _)| k == bnd.keys) {
            continue;
        }
        out.push((bnd.keys.to_string(), bnd.help.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn every_normal_key_maps_and_read_only_drops_mutations() {
        for bnd in NORMAL {
            let ev = KeyEvent::new(
                bnd.code,
                if bnd.ctrl {
                    KeyModifiers::CONTROL
                } else {
                    KeyModifiers::NONE
                },
            );
            assert_eq!(
                action(Mode::Normal, ev, false),
                Some(bnd.action),
                "{}",
                bnd.keys
            );
            let ro = action(Mode::Normal, ev, true);
            if bnd.action.mutates() {
                assert_eq!(ro, None, "{} is refused read-only", bnd.keys);
            } else {
                assert_eq!(ro, Some(bnd.action));
            }
        }
        assert_eq!(action(Mode::Normal, key(KeyCode::Char('z')), false), None);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [Mode::Normal, Mode::Help, Mode::Confirm, Mode::Filter] {
            assert_eq!(action(mode, ctrl_c, true), Some(Action::Quit));
        }
    }

    #[test]
    fn modes_have_their_own_keys() {
        assert_eq!(
            action(Mode::Confirm, key(KeyCode::Char('y')), false),
            Some(Action::Yes)
        );
        assert_eq!(
            action(Mode::Confirm, key(KeyCode::Esc), false),
            Some(Action::No)
        );
        assert_eq!(action(Mode::Confirm, key(KeyCode::Char('p')), false), None);
        assert_eq!(
            action(Mode::Help, key(KeyCode::Esc), false),
            Some(Action::Back)
        );
        assert_eq!(action(Mode::Help, key(KeyCode::Char('p')), false), None);
        assert_eq!(
            action(Mode::Filter, key(KeyCode::Char('p')), false),
            None,
            "text, not a command"
        );
        assert_eq!(
            action(Mode::Filter, key(KeyCode::Enter), false),
            Some(Action::Open)
        );
    }

    #[test]
    fn help_is_generated_and_hides_mutations_read_only() {
        let full = help(false);
        assert!(full.iter().any(|(k, _)| k == "U"));
        let ro = help(true);
        assert!(!ro.iter().any(|(k, _)| k == "U" || k == "p" || k == "a"));
        assert!(ro.iter().any(|(k, _)| k == "q"));
    }
}
