//! The console's state and its update function: keys in, effects out.
//!
//! Owns: which deployments are shown (from the store's runs and snapshots), the selection, the
//! mode, the filter, pending confirmations and the message line. Must not touch: the terminal,
//! the store or the engine (it returns [`Effect`]s that the console loop carries out).

use ratatui::crossterm::event::{KeyCode, KeyEvent};

use super::keymap::{self, Action, Mode};
use crate::engine::{Command, Snapshot};

/// One deployment run as the console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub deployment: String,
    pub run: i64,
    pub version: String,
    pub environment: String,
    pub strategy: String,
    pub status: String,
    /// A process runs it now (or it has finished).
    pub live: bool,
    pub finished: bool,
    pub reason: Option<String>,
    pub snapshot: Option<Snapshot>,
    /// Recent events of the run, as lines, newest last.
    pub events: Vec<String>,
}

/// Something the console loop must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Send {
        run: i64,
        deployment: String,
        command: Command,
    },
    Redraw,
    Quit,
}

/// A question waiting for y/n.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub question: String,
    pub detail: Vec<String>,
    pub effect: Effect,
}

/// The panes of the details view, in tab order.
pub const PANES: [&str; 4] = ["progress", "traffic", "health", "analysis"];

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub rows: Vec<Row>,
    pub selected: usize,
    pub pane: usize,
    pub mode: Mode,
    pub filter: String,
    pub read_only: bool,
    pub user: String,
    pub message: Option<String>,
    pub confirm: Option<Confirm>,
}

impl Model {
    pub fn new(user: &str, read_only: bool) -> Model {
        Model {
            rows: Vec::new(),
            selected: 0,
            pane: 0,
            mode: Mode::Normal,
            filter: String::new(),
            read_only,
            user: user.to_string(),
            message: None,
            confirm: None,
        }
    }

    /// Rows that match the filter.
    pub fn visible(&self) -> Vec<&Row> {
        let f = self.filter.to_lowercase();
        self.rows
            .iter()
            .filter(|r| {
                f.is_empty()
                    || r.deployment.to_lowercase().contains(&f)
                    || r.environment.to_lowercase().contains(&f)
                    || r.status.contains(&f)
            })
            .collect()
    }

    pub fn current(&self) -> Option<&Row> {
        self.visible().get(self.selected).copied()
    }

    /// New data from the store; the selection follows its deployment.
    pub fn set_rows(&mut self, rows: Vec<Row>) {
        let keep = self.current().map(|r| r.deployment.clone());
        self.rows = rows;
        if let Some(d) = keep {
            if let Some(i) = self.visible().iter().position(|r| r.deployment == d) {
                self.selected = i;
            }
        }
        let n = self.visible().len();
        if self.selected >= n {
            self.selected = n.saturating_sub(1);
        }
    }

    /// Handle one key.
    pub fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if self.mode == Mode::Filter {
            if let KeyCode::Char(c) = key.code {
                if !key
                    .modifiers
                    .contains(ratatui::crossterm::event::KeyModifiers::CONTROL)
                {
                    self.filter.push(c);
                    self.selected = 0;
                    return vec![Effect::Redraw];
                }
            }
            if key.code == KeyCode::Backspace {
                self.filter.pop();
                return vec![Effect::Redraw];
            }
        }
        match keymap::action(self.mode, key, self.read_only) {
            Some(a) => self.act(a),
            None => Vec::new(),
        }
    }

    fn act(&mut self, a: Action) -> Vec<Effect> {
        self.message = None;
        let n = self.visible().len();
        match a {
            Action::Quit => return vec![Effect::Quit],
            Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Down => {
                if self.selected + 1 < n {
                    self.selected += 1
                }
            }
            Action::NextPane => self.pane = (self.pane + 1) % PANES.len(),
            Action::PrevPane => self.pane = (self.pane + PANES.len() - 1) % PANES.len(),
            Action::Open => self.mode = Mode::Normal,
            Action::Back => {
                if self.mode == Mode::Filter
                    || (self.mode == Mode::Normal && !self.filter.is_empty())
                {
                    self.filter.clear();
                }
                self.mode = Mode::Normal;
                self.confirm = None;
            }
            Action::Help => self.mode = Mode::Help,
            Action::Filter => self.mode = Mode::Filter,
            Action::Redraw => return vec![Effect::Redraw],
            Action::Yes => {
                self.mode = Mode::Normal;
                if let Some(c) = self.confirm.take() {
                    return vec![c.effect, Effect::Redraw];
                }
            }
            Action::No => {
                self.mode = Mode::Normal;
                self.confirm = None;
                self.message = Some("cancelled".into());
            }
            Action::Pause
            | Action::Resume
            | Action::Approve
            | Action::Promote
            | Action::Rollback => {
                return self.command(a);
            }
        }
        vec![Effect::Redraw]
    }

    fn command(&mut self, a: Action) -> Vec<Effect> {
        let Some(row) = self.current().cloned() else {
            self.message = Some("no deployment selected".into());
            return vec![Effect::Redraw];
        };
        if row.finished {
            self.message = Some(format!("{} has finished ({})", row.deployment, row.status));
            return vec![Effect::Redraw];
        }
        if !row.live {
            self.message = Some(format!(
                "no cutover process runs {}; `cutover rollback {}` still works",
                row.deployment, row.deployment
            ));
            return vec![Effect::Redraw];
        }
        let send = |command: Command| Effect::Send {
            run: row.run,
            deployment: row.deployment.clone(),
            command,
        };
        let gate = row.snapshot.as_ref().and_then(|s| s.gate.clone());
        match a {
            Action::Pause => vec![send(Command::Pause), Effect::Redraw],
            Action::Resume => vec![send(Command::Resume), Effect::Redraw],
            Action::Approve => match gate {
                None => {
                    self.message = Some("no gate is waiting".into());
                    vec![Effect::Redraw]
                }
                Some(g) => vec![
                    send(Command::Approve {
                        gate: Some(g),
                        comment: None,
                    }),
                    Effect::Redraw,
                ],
            },
            Action::Promote => {
                self.confirm = Some(Confirm {
                    question: format!(
                        "Promote {} {} to 100% now, skipping the remaining analysis?",
                        row.deployment, row.version
                    ),
                    detail: Vec::new(),
                    effect: send(Command::Promote),
                });
                self.mode = Mode::Confirm;
                vec![Effect::Redraw]
            }
            _ => {
                let detail = row
                    .snapshot
                    .as_ref()
                    .map(|s| {
                        s.traffic
                            .iter()
                            .map(|t| {
                                let old: Vec<String> = t
                                    .weights
                                    .iter()
                                    .filter(|w| w.version != row.version)
                                    .map(|w| w.version.clone())
                                    .collect();
                                format!(
                                    "{}: all traffic back to {}, then remove {}",
                                    t.component,
                                    if old.is_empty() {
                                        "the previous revision".to_string()
                                    } else {
                                        old.join(", ")
                                    },
                                    row.version
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.confirm = Some(Confirm {
                    question: format!("Roll back {} {}?", row.deployment, row.version),
                    detail,
                    effect: send(Command::Rollback { to: None }),
                });
                self.mode = Mode::Confirm;
                vec![Effect::Redraw]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyModifiers;

    pub(crate) fn row(dep: &str, status: &str, live: bool) -> Row {
        Row {
            deployment: dep.into(),
            run: 1,
            version: "1.1.0".into(),
            environment: "prod".into(),
            strategy: "canary".into(),
            status: status.into(),
            live,
            finished: matches!(status, "succeeded" | "rolled_back" | "failed"),
            reason: None,
            snapshot: None,
            events: Vec::new(),
        }
    }

    fn k(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    #[test]
    fn navigation_filter_and_selection_follow() {
        let mut m = Model::new("me", false);
        m.set_rows(vec![
            row("a", "progressing", true),
            row("b", "paused", true),
            row("c", "succeeded", false),
        ]);
        m.key(k('j'));
        m.key(k('j'));
        m.key(k('j'));
        assert_eq!(m.current().unwrap().deployment, "c");
        m.key(k('k'));
        assert_eq!(m.current().unwrap().deployment, "b");
        m.key(k('/'));
        assert_eq!(m.mode, Mode::Filter);
        m.key(k('c'));
        assert_eq!(m.visible().len(), 1);
        m.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(m.visible().len(), 3);
        // New data keeps the selection on the same deployment.
        m.selected = 0;
        m.set_rows(vec![
            row("z", "pending", true),
            row("a", "progressing", true),
            row("b", "paused", true),
        ]);
        assert_eq!(m.current().unwrap().deployment, "a");
        assert_eq!(m.selected, 1);
    }

    #[test]
    fn commands_need_a_live_unfinished_run_and_confirm_when_drastic() {
        let mut m = Model::new("me", false);
        m.set_rows(vec![
            row("a", "progressing", true),
            row("done", "succeeded", false),
        ]);
        let fx = m.key(k('p'));
        assert!(matches!(
            &fx[0],
            Effect::Send {
                command: Command::Pause,
                ..
            }
        ));
        let fx = m.key(k('a'));
        assert_eq!(fx, vec![Effect::Redraw]);
        assert_eq!(m.message.as_deref(), Some("no gate is waiting"));
        let fx = m.key(k('U'));
        assert_eq!(fx, vec![Effect::Redraw]);
        assert_eq!(m.mode, Mode::Confirm);
        let fx = m.key(k('y'));
        assert!(matches!(
            &fx[0],
            Effect::Send {
                command: Command::Rollback { to: None },
                ..
            }
        ));
        m.key(k('P'));
        let fx = m.key(k('n'));
        assert_eq!(fx, vec![Effect::Redraw]);
        assert_eq!(m.message.as_deref(), Some("cancelled"));
        m.key(k('j'));
        m.key(k('p'));
        assert!(m.message.as_deref().unwrap().contains("has finished"));
    }

    #[test]
    fn read_only_refuses_every_mutation() {
        let mut m = Model::new("me", true);
        m.set_rows(vec![row("a", "progressing", true)]);
        for c in ['p', 'r', 'a', 'P', 'U'] {
            assert!(m.key(k(c)).is_empty(), "{c}");
            assert_eq!(m.mode, Mode::Normal);
        }
        assert_eq!(m.key(k('q')), vec![Effect::Quit]);
    }
}
