//! The console's keys: one table per mode, from which both dispatch and the `?` help are made
//! (so help is never out of date).
//!
//! Owns: mapping a key in a mode to an [`Action`], and which actions mutate (hidden and refused in
//! read-only mode). Must not touch: state or rendering.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Which overlay or input the console is in (over any view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Keys go to the view.
    Normal,
    /// The `?` help overlay.
    Help,
    /// A yes/no question (promote, roll back).
    Confirm,
    /// Typing a `/` filter.
    Filter,
    /// Typing a `:` command.
    Command,
    /// Quitting while this console runs deployments: pause them or roll them back.
    Quit,
}

/// Which page the console shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Deployments and the selected one's panes.
    Main,
    /// Past deployments with charts.
    History,
    /// One deployment's whole timeline and verdicts.
    Drill,
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    Top,
    Bottom,
    /// Scroll the events pane back (older) or forward (newer).
    OlderEvents,
    NewerEvents,
    NextPane,
    PrevPane,
    /// The focused pane fills the screen, or goes back to its place.
    Zoom,
    /// History: the next environment, the next deployment (then all again).
    NextEnv,
    NextDeployment,
    /// History: a shorter or longer range of weeks.
    Shorter,
    Longer,
    /// History: the range a week earlier or later.
    Earlier,
    Later,
    /// Write what the view shows to a file.
    Export,
    /// Drill down (views); keep what was typed (filter, command).
    Open,
    Back,
    Help,
    Filter,
    Command,
    History,
    Redraw,
    Quit,
    Pause,
    Resume,
    Approve,
    Promote,
    Rollback,
    Yes,
    No,
    /// Quit dialog: pause the runs this console owns, then quit.
    QuitPause,
    /// Quit dialog: roll them back, then quit.
    QuitRollback,
}

impl Action {
    /// Changes a deployment: hidden and refused in read-only mode.
    pub fn mutates(self) -> bool {
        matches!(
            self,
            Action::Pause
                | Action::Resume
                | Action::Approve
                | Action::Promote
                | Action::Rollback
                | Action::QuitRollback
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

const REDRAW: Binding = Binding {
    keys: "ctrl-l",
    code: KeyCode::Char('l'),
    ctrl: true,
    action: Action::Redraw,
    help: "redraw the screen",
};

/// The main view's keys, in help order.
pub const MAIN: &[Binding] = &[
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
    b(
        "z",
        KeyCode::Char('z'),
        Action::Zoom,
        "zoom the focused pane to the whole screen, and back",
    ),
    b(
        "[/pgup",
        KeyCode::Char('['),
        Action::OlderEvents,
        "scroll the events back",
    ),
    b(
        "[/pgup",
        KeyCode::PageUp,
        Action::OlderEvents,
        "scroll the events back",
    ),
    b(
        "]/pgdn",
        KeyCode::Char(']'),
        Action::NewerEvents,
        "scroll the events forward",
    ),
    b(
        "]/pgdn",
        KeyCode::PageDown,
        Action::NewerEvents,
        "scroll the events forward",
    ),
    b(
        "enter",
        KeyCode::Enter,
        Action::Open,
        "drill down: the whole timeline and verdicts",
    ),
    b(
        "H",
        KeyCode::Char('H'),
        Action::History,
        "history of past deployments",
    ),
    b(
        "esc",
        KeyCode::Esc,
        Action::Back,
        "back, or clear the filter",
    ),
    b(
        "/",
        KeyCode::Char('/'),
        Action::Filter,
        "filter deployments",
    ),
    b(
        ":",
        KeyCode::Char(':'),
        Action::Command,
        "command line (:help lists commands)",
    ),
    b("?", KeyCode::Char('?'), Action::Help, "this help"),
    REDRAW,
    b(
        "p",
        KeyCode::Char('p'),
        Action::Pause,
        "pause the deployment",
    ),
    b(
        "r",
        KeyCode::Char('r'),
        Action::Resume,
        "resume it (takes over an interrupted one)",
    ),
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

/// The history view's keys.
pub const HISTORY: &[Binding] = &[
    b("k/up", KeyCode::Up, Action::Up, "newer deployment"),
    b("k/up", KeyCode::Char('k'), Action::Up, "newer deployment"),
    b("j/down", KeyCode::Down, Action::Down, "older deployment"),
    b(
        "j/down",
        KeyCode::Char('j'),
        Action::Down,
        "older deployment",
    ),
    b("g", KeyCode::Char('g'), Action::Top, "newest"),
    b("G", KeyCode::Char('G'), Action::Bottom, "oldest"),
    b(
        "enter",
        KeyCode::Enter,
        Action::Open,
        "drill down into this deployment",
    ),
    b(
        "e",
        KeyCode::Char('e'),
        Action::NextEnv,
        "next environment (then all)",
    ),
    b(
        "d",
        KeyCode::Char('d'),
        Action::NextDeployment,
        "next deployment (then all)",
    ),
    b(
        "<",
        KeyCode::Char('<'),
        Action::Shorter,
        "a shorter range of weeks",
    ),
    b(
        ">",
        KeyCode::Char('>'),
        Action::Longer,
        "a longer range of weeks",
    ),
    b(
        "[",
        KeyCode::Char('['),
        Action::Earlier,
        "the range a week earlier",
    ),
    b(
        "]",
        KeyCode::Char(']'),
        Action::Later,
        "the range a week later (up to now)",
    ),
    b(
        "x",
        KeyCode::Char('x'),
        Action::Export,
        "export what is shown to a Markdown file here (:export FILE for another)",
    ),
    b(
        "esc/H",
        KeyCode::Esc,
        Action::Back,
        "back to the deployments",
    ),
    b(
        "esc/H",
        KeyCode::Char('H'),
        Action::Back,
        "back to the deployments",
    ),
    b(":", KeyCode::Char(':'), Action::Command, "command line"),
    b("?", KeyCode::Char('?'), Action::Help, "this help"),
    REDRAW,
    b("q", KeyCode::Char('q'), Action::Quit, "quit"),
];

/// The drill-down's keys.
pub const DRILL: &[Binding] = &[
    b("k/up", KeyCode::Up, Action::Up, "scroll up"),
    b("k/up", KeyCode::Char('k'), Action::Up, "scroll up"),
    b("j/down", KeyCode::Down, Action::Down, "scroll down"),
    b("j/down", KeyCode::Char('j'), Action::Down, "scroll down"),
    b("g", KeyCode::Char('g'), Action::Top, "first event"),
    b("G", KeyCode::Char('G'), Action::Bottom, "last event"),
    b("esc", KeyCode::Esc, Action::Back, "back"),
    b(":", KeyCode::Char(':'), Action::Command, "command line"),
    b("?", KeyCode::Char('?'), Action::Help, "this help"),
    REDRAW,
    b("q", KeyCode::Char('q'), Action::Quit, "quit"),
];

const CONFIRM: &[Binding] = &[
    b("y", KeyCode::Char('y'), Action::Yes, "yes"),
    b("enter", KeyCode::Enter, Action::Yes, "yes"),
    b("n", KeyCode::Char('n'), Action::No, "no"),
    b("esc", KeyCode::Esc, Action::No, "no"),
];

/// The quit dialog's keys (shown in the dialog itself).
pub const QUIT: &[Binding] = &[
    b(
        "p",
        KeyCode::Char('p'),
        Action::QuitPause,
        "pause them and quit (any console resumes them with r)",
    ),
    b(
        "u",
        KeyCode::Char('u'),
        Action::QuitRollback,
        "roll them back, then quit",
    ),
    b("esc", KeyCode::Esc, Action::No, "stay"),
    b("n", KeyCode::Char('n'), Action::No, "stay"),
];

fn table(view: View) -> &'static [Binding] {
    match view {
        View::Main => MAIN,
        View::History => HISTORY,
        View::Drill => DRILL,
    }
}

/// The action for a key in a mode and view (`None`: the key does nothing there).
pub fn action(mode: Mode, view: View, key: KeyEvent, read_only: bool) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    let table = match mode {
        Mode::Normal => table(view),
        Mode::Confirm => CONFIRM,
        Mode::Quit => QUIT,
        Mode::Help => {
            return matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q')
            )
            .then_some(Action::Back)
        }
        // Text input: only esc and enter are actions.
        Mode::Filter | Mode::Command => {
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

/// Help lines for a view, generated from its table (duplicates by key label dropped).
pub fn help(view: View, read_only: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for bnd in table(view) {
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

/// The quit dialog's choices, from its table.
pub fn quit_choices(read_only: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for bnd in QUIT {
        if (read_only && bnd.action.mutates()) || out.iter().any(|(_, h)| h == bnd.help) {
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
    fn every_key_in_every_view_maps_and_read_only_drops_mutations() {
        for (view, bnd) in MAIN
            .iter()
            .map(|b| (View::Main, b))
            .chain(HISTORY.iter().map(|b| (View::History, b)))
            .chain(DRILL.iter().map(|b| (View::Drill, b)))
        {
            let ev = KeyEvent::new(
                bnd.code,
                if bnd.ctrl {
                    KeyModifiers::CONTROL
                } else {
                    KeyModifiers::NONE
                },
            );
            assert_eq!(
                action(Mode::Normal, view, ev, false),
                Some(bnd.action),
                "{}",
                bnd.keys
            );
            let ro = action(Mode::Normal, view, ev, true);
            if bnd.action.mutates() {
                assert_eq!(ro, None, "{} is refused read-only", bnd.keys);
            } else {
                assert_eq!(ro, Some(bnd.action));
            }
        }
        assert_eq!(
            action(Mode::Normal, View::Main, key(KeyCode::Char('x')), false),
            None
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [
            Mode::Normal,
            Mode::Help,
            Mode::Confirm,
            Mode::Filter,
            Mode::Command,
            Mode::Quit,
        ] {
            for view in [View::Main, View::History, View::Drill] {
                assert_eq!(action(mode, view, ctrl_c, true), Some(Action::Quit));
            }
        }
        // Mutations exist only where a deployment is selected.
        assert_eq!(
            action(Mode::Normal, View::History, key(KeyCode::Char('U')), false),
            None
        );
    }

    #[test]
    fn modes_have_their_own_keys() {
        assert_eq!(
            action(Mode::Confirm, View::Main, key(KeyCode::Char('y')), false),
            Some(Action::Yes)
        );
        assert_eq!(
            action(Mode::Confirm, View::Main, key(KeyCode::Esc), false),
            Some(Action::No)
        );
        assert_eq!(
            action(Mode::Confirm, View::Main, key(KeyCode::Char('p')), false),
            None
        );
        assert_eq!(
            action(Mode::Help, View::Main, key(KeyCode::Esc), false),
            Some(Action::Back)
        );
        assert_eq!(
            action(Mode::Help, View::Main, key(KeyCode::Char('p')), false),
            None
        );
        assert_eq!(
            action(Mode::Filter, View::Main, key(KeyCode::Char('p')), false),
            None,
            "text, not a command"
        );
        assert_eq!(
            action(Mode::Filter, View::Main, key(KeyCode::Enter), false),
            Some(Action::Open)
        );
        assert_eq!(
            action(Mode::Command, View::Drill, key(KeyCode::Char('q')), false),
            None,
            "text, not a command"
        );
        assert_eq!(
            action(Mode::Quit, View::Main, key(KeyCode::Char('p')), false),
            Some(Action::QuitPause)
        );
        assert_eq!(
            action(Mode::Quit, View::Main, key(KeyCode::Char('u')), true),
            None,
            "read-only cannot roll back"
        );
    }

    #[test]
    fn help_is_generated_and_hides_mutations_read_only() {
        let full = help(View::Main, false);
        assert!(full.iter().any(|(k, _)| k == "U"));
        assert!(full.iter().any(|(k, _)| k == "enter"));
        assert!(help(View::History, false).iter().any(|(k, _)| k == "esc/H"));
        let ro = help(View::Main, true);
        assert!(!ro.iter().any(|(k, _)| k == "U" || k == "p" || k == "a"));
        assert!(ro.iter().any(|(k, _)| k == "q"));
    }
}
