//! The console's state and its update function: keys in, effects out.
//!
//! Owns: what is shown (deployments, history, a drill-down), the selection, the mode and view,
//! the filter and command line, pending confirmations and the message line. Must not touch: the
//! terminal, the store or the engine (it returns [`Effect`]s that the console loop carries out).

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use super::command::COMMANDS;
pub use super::data::{Drill, HistRow, Row};
use super::keymap::{self, Action, Mode, View};
use crate::engine::Command;

/// Something the console loop must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Deliver a command to the process that runs a deployment.
    Send {
        run: i64,
        deployment: String,
        command: Command,
    },
    /// Take over an interrupted run and resume it in this console.
    Adopt {
        run: i64,
        deployment: String,
    },
    /// Start a deployment from a spec file in this console.
    Apply {
        path: String,
    },
    /// Read one run's whole journal for the drill-down.
    LoadDrill {
        run: i64,
    },
    /// Read the history.
    LoadHistory,
    /// Switch to another theme.
    Theme(String),
    /// Write `text` to the file at `path` (the history view's export).
    Export {
        path: String,
        text: String,
    },
    /// Pause every run this console owns, then quit.
    QuitPausing,
    /// Roll back every run this console owns, then quit.
    QuitRollingBack,
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

/// The panes of the main view, in tab order.
pub const PANES: [&str; 5] = ["progress", "traffic", "health", "analysis", "approvals"];

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub rows: Vec<Row>,
    pub selected: usize,
    pub pane: usize,
    pub mode: Mode,
    pub view: View,
    pub filter: String,
    /// The command line being typed.
    pub input: String,
    pub read_only: bool,
    pub user: String,
    pub message: Option<String>,
    pub confirm: Option<Confirm>,
    pub history: Vec<HistRow>,
    pub hist_selected: usize,
    pub drill: Option<Drill>,
    /// The view to go back to from the drill-down.
    pub drill_from: View,
    /// Unfinished runs that this console's engine owns (set with [`Model::set_owned`]).
    pub owned: Vec<i64>,
    /// The console quits once its runs are paused or rolled back; this says which.
    pub quitting: Option<String>,
    /// Now, to the second, while something on screen counts down (else `None`: nothing ticks).
    pub now: Option<DateTime<Utc>>,
    /// The demo: quitting stops everything it started, without asking.
    pub demo: bool,
    /// How many lines the events pane is scrolled back from the newest (0: follows the newest).
    pub events_back: usize,
    /// The focused pane fills the main view.
    pub zoom: bool,
    /// The operator has chosen a deployment (until then the selection follows the first one
    /// still going).
    pub picked: bool,
    /// The history view's filters: an environment, a deployment, a range in weeks.
    pub hist_env: Option<String>,
    pub hist_dep: Option<String>,
    pub hist_weeks: i64,
    /// How many weeks before now the range ends.
    pub hist_back: i64,
    /// Now, to the minute: the deployments' ages (coarse, so it redraws once a minute at most).
    pub minute: Option<DateTime<Utc>>,
    /// What is computed from the history, kept until `set_history` (the only way the history
    /// changes) replaces it. Not state: it never makes two models differ.
    pub delivery_memo: super::delivery::Memo,
}

impl Model {
    pub fn new(user: &str, read_only: bool) -> Model {
        Model {
            rows: Vec::new(),
            selected: 0,
            pane: 0,
            mode: Mode::Normal,
            view: View::Main,
            filter: String::new(),
            input: String::new(),
            read_only,
            user: user.to_string(),
            message: None,
            confirm: None,
            history: Vec::new(),
            hist_selected: 0,
            drill: None,
            drill_from: View::Main,
            owned: Vec::new(),
            quitting: None,
            now: None,
            demo: false,
            events_back: 0,
            zoom: false,
            picked: false,
            minute: None,
            hist_env: None,
            hist_dep: None,
            hist_weeks: 8,
            hist_back: 0,
            delivery_memo: Default::default(),
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
                    || r.version.to_lowercase().contains(&f)
                    || r.status.as_str().contains(&f)
            })
            .collect()
    }

    pub fn current(&self) -> Option<&Row> {
        self.visible().get(self.selected).copied()
    }

    /// Deployments waiting at a gate.
    pub fn gates(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| !r.finished && r.snapshot.as_ref().is_some_and(|s| s.gate.is_some()))
            .collect()
    }

    /// Something on screen counts time (a live run's step, decision or gate): tick once a second.
    pub fn wants_clock(&self) -> bool {
        self.view == View::Main
            && (self.current().is_some_and(|r| !r.finished) || !self.gates().is_empty())
    }

    /// New data from the store; the selection follows its deployment.
    pub fn set_rows(&mut self, rows: Vec<Row>) {
        // Until the operator picks one, select the first deployment that is still going (else
        // keep the selection).
        let going = || {
            rows.iter()
                .find(|r| !r.finished)
                .map(|r| r.deployment.clone())
        };
        let keep = if self.picked {
            self.current().map(|r| r.deployment.clone()).or_else(going)
        } else {
            going().or_else(|| self.current().map(|r| r.deployment.clone()))
        };
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

    pub fn set_history(&mut self, history: Vec<HistRow>) {
        self.history = history;
        self.delivery_memo.history_changed();
        let n = self.visible_history().len();
        if self.hist_selected >= n {
            self.hist_selected = n.saturating_sub(1);
        }
    }

    pub fn set_drill(&mut self, drill: Option<Drill>) {
        match drill {
            Some(d) => {
                if self.view != View::Drill {
                    self.drill_from = self.view;
                }
                let scroll = self
                    .drill
                    .as_ref()
                    .filter(|old| old.run == d.run)
                    .map(|old| old.scroll)
                    .unwrap_or(0);
                self.drill = Some(Drill { scroll, ..d });
                self.view = View::Drill;
            }
            None => self.message = Some("that run is not in the store".into()),
        }
    }

    /// Handle one key.
    pub fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if self.quitting.is_some() {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if matches!(self.mode, Mode::Filter | Mode::Command) && !ctrl {
            let text = if self.mode == Mode::Filter {
                &mut self.filter
            } else {
                &mut self.input
            };
            match key.code {
                KeyCode::Char(c) => {
                    text.push(c);
                    if self.mode == Mode::Filter {
                        self.selected = 0;
                    }
                    return vec![Effect::Redraw];
                }
                KeyCode::Backspace => {
                    text.pop();
                    return vec![Effect::Redraw];
                }
                _ => {}
            }
        }
        match keymap::action(self.mode, self.view, key, self.read_only) {
            Some(a) => self.act(a),
            None => Vec::new(),
        }
    }

    fn act(&mut self, a: Action) -> Vec<Effect> {
        self.message = None;
        match a {
            Action::Quit => return self.quit(),
            Action::Up | Action::Down | Action::Top | Action::Bottom => {
                if self.view == View::Main {
                    self.events_back = 0;
                    self.picked = true;
                }
                self.motion(a)
            }
            Action::OlderEvents => {
                let n = self
                    .current()
                    .and_then(|r| r.detail.as_ref())
                    .map_or(0, |d| d.events.len());
                self.events_back = (self.events_back + 5).min(n.saturating_sub(1));
            }
            Action::NewerEvents => self.events_back = self.events_back.saturating_sub(5),
            Action::NextPane => self.pane = (self.pane + 1) % PANES.len(),
            Action::PrevPane => self.pane = (self.pane + PANES.len() - 1) % PANES.len(),
            Action::Zoom => self.zoom = !self.zoom,
            Action::NextEnv => self.next_env(),
            Action::NextDeployment => self.next_deployment(),
            Action::Shorter => self.range(false),
            Action::Longer => self.range(true),
            Action::Earlier => self.shift(true),
            Action::Later => self.shift(false),
            Action::Export => return self.export(None),
            Action::Open => return self.open(),
            Action::Back => self.back(),
            Action::Help => self.mode = Mode::Help,
            Action::Filter => self.mode = Mode::Filter,
            Action::Command => {
                self.input.clear();
                self.mode = Mode::Command;
            }
            Action::History => {
                self.view = View::History;
                return vec![Effect::LoadHistory, Effect::Redraw];
            }
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
            Action::QuitPause => {
                self.mode = Mode::Normal;
                self.quitting = Some("pausing".into());
                return vec![Effect::QuitPausing, Effect::Redraw];
            }
            Action::QuitRollback => {
                self.mode = Mode::Normal;
                self.quitting = Some("rolling back".into());
                return vec![Effect::QuitRollingBack, Effect::Redraw];
            }
            Action::Pause
            | Action::Resume
            | Action::Approve
            | Action::Promote
            | Action::Rollback => {
                return self.command(a, None);
            }
        }
        vec![Effect::Redraw]
    }

    /// The runs this console owns that are still going. A run the store already shows finished
    /// does not count, even while its engine has not let go of it yet.
    pub fn running_owned(&self) -> Vec<i64> {
        self.owned
            .iter()
            .copied()
            .filter(|run| !self.rows.iter().any(|r| r.run == *run && r.finished))
            .collect()
    }

    /// What this console's engines own now. A quit dialog left with nothing to decide (its
    /// last run has finished) quits.
    pub fn set_owned(&mut self, owned: Vec<i64>) -> Vec<Effect> {
        self.owned = owned;
        if self.mode == Mode::Quit && self.quitting.is_none() && self.running_owned().is_empty() {
            self.mode = Mode::Normal;
            return vec![Effect::Quit];
        }
        Vec::new()
    }

    /// `q`: quit at once when nothing runs here, else ask what to do with the runs.
    pub(super) fn quit(&mut self) -> Vec<Effect> {
        if self.running_owned().is_empty() || self.demo {
            return vec![Effect::Quit];
        }
        self.mode = Mode::Quit;
        vec![Effect::Redraw]
    }

    fn motion(&mut self, a: Action) {
        let len = match self.view {
            View::Main => self.visible().len(),
            View::History => self.visible_history().len(),
            View::Drill => self
                .drill
                .as_ref()
                .map(|d| d.timeline.len() + d.verdicts.len())
                .unwrap_or(0),
        };
        let pos = match self.view {
            View::Main => &mut self.selected,
            View::History => &mut self.hist_selected,
            View::Drill => match self.drill.as_mut() {
                Some(d) => &mut d.scroll,
                None => return,
            },
        };
        match a {
            Action::Up => *pos = pos.saturating_sub(1),
            Action::Down => {
                if *pos + 1 < len {
                    *pos += 1
                }
            }
            Action::Top => *pos = 0,
            _ => *pos = len.saturating_sub(1),
        }
    }

    fn open(&mut self) -> Vec<Effect> {
        match self.mode {
            Mode::Filter => {
                self.mode = Mode::Normal;
                vec![Effect::Redraw]
            }
            Mode::Command => {
                self.mode = Mode::Normal;
                let text = std::mem::take(&mut self.input);
                self.command_line(text.trim())
            }
            _ => {
                let run = match self.view {
                    View::Main => self.current().map(|r| r.run),
                    View::History => self
                        .visible_history()
                        .get(self.hist_selected)
                        .map(|h| h.run),
                    View::Drill => None,
                };
                match run {
                    Some(run) => vec![Effect::LoadDrill { run }, Effect::Redraw],
                    None => Vec::new(),
                }
            }
        }
    }

    fn back(&mut self) {
        match self.mode {
            Mode::Filter => self.filter.clear(),
            Mode::Command => self.input.clear(),
            Mode::Normal => match self.view {
                View::Drill => {
                    self.view = self.drill_from;
                    self.drill = None;
                }
                View::History => self.view = View::Main,
                View::Main => self.filter.clear(),
            },
            _ => {}
        }
        self.mode = Mode::Normal;
        self.confirm = None;
    }

    /// A command for the selected deployment. `arg`: approve's comment, reject's reason
    /// (`Action::No` stands for reject), rollback's target version.
    pub(super) fn command(&mut self, a: Action, arg: Option<String>) -> Vec<Effect> {
        let Some(row) = self.current().cloned() else {
            self.message = Some("no deployment selected".into());
            return vec![Effect::Redraw];
        };
        if self.view != View::Main {
            self.view = View::Main;
        }
        if row.finished {
            self.message = Some(format!("{} has finished ({})", row.deployment, row.status));
            return vec![Effect::Redraw];
        }
        if !row.live {
            if a == Action::Resume {
                self.message = Some(format!("taking over {}...", row.deployment));
                return vec![
                    Effect::Adopt {
                        run: row.run,
                        deployment: row.deployment.clone(),
                    },
                    Effect::Redraw,
                ];
            }
            self.message = Some(format!(
                "no cutover process runs {}: r takes it over here; `cutover rollback {}` rolls it back",
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
            Action::Approve | Action::No => match gate {
                None => {
                    self.message = Some("no gate is waiting".into());
                    vec![Effect::Redraw]
                }
                Some(g) if a == Action::Approve => vec![
                    send(Command::Approve {
                        gate: Some(g),
                        comment: arg,
                    }),
                    Effect::Redraw,
                ],
                Some(_) => vec![
                    send(Command::Reject {
                        reason: arg.unwrap_or_default(),
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
                let detail = rollback_plan(&row, arg.as_deref());
                self.confirm = Some(Confirm {
                    question: format!("Roll back {} {}?", row.deployment, row.version),
                    detail,
                    effect: send(Command::Rollback { to: arg }),
                });
                self.mode = Mode::Confirm;
                vec![Effect::Redraw]
            }
        }
    }
}

/// What a rollback of the row would do, in words, per component.
fn rollback_plan(row: &Row, to: Option<&str>) -> Vec<String> {
    let Some(s) = row.snapshot.as_ref() else {
        return vec!["the engine computes the plan and checks it is feasible first".into()];
    };
    s.traffic
        .iter()
        .map(|t| {
            let old: Vec<String> = t
                .weights
                .iter()
                .filter(|w| w.version != row.version)
                .map(|w| w.version.clone())
                .collect();
            let target = match (to, old.is_empty()) {
                (Some(v), _) => v.to_string(),
                (None, true) => "the last good revision".to_string(),
                (None, false) => old.join(", "),
            };
            format!(
                "{}: all traffic back to {target}, then remove {}",
                t.component, row.version
            )
        })
        .collect()
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
            strategy: crate::spec::Strategy::Canary,
            status: <crate::store::Status as crate::spec::Keyword>::parse(status).unwrap(),
            live,
            finished: matches!(status, "succeeded" | "rolled_back" | "failed"),
            reason: None,
            initiator: "me".into(),
            started: None,
            snapshot: None,
            plan: Vec::new(),
            detail: None,
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

    fn typed(m: &mut Model, text: &str) -> Vec<Effect> {
        m.key(k(':'));
        for c in text.chars() {
            m.key(k(c));
        }
        m.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE))
    }

    #[test]
    fn command_line_runs_commands_and_explains_mistakes() {
        let mut m = Model::new("me", false);
        m.set_rows(vec![row("a", "progressing", true)]);
        let fx = typed(&mut m, "apply specs/x.yaml specs/y.yaml");
        assert_eq!(
            fx[..2],
            [
                Effect::Apply {
                    path: "specs/x.yaml".into()
                },
                Effect::Apply {
                    path: "specs/y.yaml".into()
                }
            ]
        );
        assert_eq!(m.mode, Mode::Normal);
        assert_eq!(m.input, "");
        let fx = typed(&mut m, "pause");
        assert!(matches!(
            &fx[0],
            Effect::Send {
                command: Command::Pause,
                ..
            }
        ));
        typed(&mut m, "rollback 1.0.0");
        assert_eq!(m.mode, Mode::Confirm);
        let fx = m.key(k('y'));
        assert!(matches!(
            &fx[0],
            Effect::Send { command: Command::Rollback { to: Some(v) }, .. } if v == "1.0.0"
        ));
        typed(&mut m, "reject");
        assert!(m.message.as_deref().unwrap().contains("needs a reason"));
        typed(&mut m, "frobnicate");
        assert!(m
            .message
            .as_deref()
            .unwrap()
            .contains("unknown command :frobnicate"));
        let fx = typed(&mut m, "history");
        assert_eq!(fx[0], Effect::LoadHistory);
        assert_eq!(m.view, View::History);
        let fx = typed(&mut m, "theme mono");
        assert_eq!(fx[0], Effect::Theme("mono".into()));
        // Esc abandons what was typed.
        m.key(k(':'));
        m.key(k('q'));
        m.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!((m.mode, m.input.as_str()), (Mode::Normal, ""));
        let mut ro = Model::new("me", true);
        ro.set_rows(vec![row("a", "progressing", true)]);
        assert_eq!(typed(&mut ro, "pause"), vec![Effect::Redraw]);
        assert!(ro.message.as_deref().unwrap().contains("read-only"));
    }

    #[test]
    fn quitting_with_owned_runs_asks_and_an_interrupted_run_is_taken_over() {
        let mut m = Model::new("me", false);
        m.set_rows(vec![row("a", "paused", false)]);
        let fx = m.key(k('r'));
        assert_eq!(
            fx[0],
            Effect::Adopt {
                run: 1,
                deployment: "a".into()
            }
        );
        assert_eq!(
            m.key(k('q')),
            vec![Effect::Quit],
            "nothing owned: just quit"
        );
        m.owned = vec![1];
        assert_eq!(m.key(k('q')), vec![Effect::Redraw]);
        assert_eq!(m.mode, Mode::Quit);
        assert_eq!(m.key(k('n')), vec![Effect::Redraw]);
        assert_eq!(m.mode, Mode::Normal);
        m.key(k('q'));
        assert_eq!(m.key(k('p'))[0], Effect::QuitPausing);
        assert_eq!(m.quitting.as_deref(), Some("pausing"));
        assert!(m.key(k('j')).is_empty(), "keys wait while quitting");
        let mut m = Model::new("me", false);
        m.owned = vec![1];
        m.key(k('q'));
        assert_eq!(m.key(k('u'))[0], Effect::QuitRollingBack);
        let mut demo = Model::new("me", false);
        demo.owned = vec![1];
        demo.demo = true;
        assert_eq!(demo.key(k('q')), vec![Effect::Quit]);
    }

    #[test]
    fn q_quits_at_once_when_the_consoles_runs_have_finished() {
        // The store already shows the run finished; the engine's list may not have caught up.
        let mut m = Model::new("me", false);
        m.set_rows(vec![row("a", "succeeded", true)]);
        m.owned = vec![1];
        assert_eq!(m.key(k('q')), vec![Effect::Quit]);
        assert_eq!(m.mode, Mode::Normal);
        // A dialog opened while the run went on quits once nothing runs here any more.
        let mut m = Model::new("me", false);
        m.set_rows(vec![row("a", "progressing", true)]);
        assert!(m.set_owned(vec![1]).is_empty());
        assert_eq!(m.key(k('q')), vec![Effect::Redraw]);
        assert_eq!(m.mode, Mode::Quit);
        assert!(
            m.set_owned(vec![1]).is_empty(),
            "still running: still asking"
        );
        assert_eq!(m.mode, Mode::Quit);
        assert_eq!(m.set_owned(Vec::new()), vec![Effect::Quit]);
        // And the same when the store says it finished before the engine lets go of it.
        let mut m = Model::new("me", false);
        m.set_rows(vec![row("a", "progressing", true)]);
        assert!(m.set_owned(vec![1]).is_empty());
        m.key(k('q'));
        m.set_rows(vec![row("a", "rolled_back", true)]);
        assert_eq!(m.set_owned(vec![1]), vec![Effect::Quit]);
        // Outside the dialog, a change of what runs does nothing by itself.
        let mut m = Model::new("me", false);
        assert!(m.set_owned(vec![1]).is_empty());
        assert!(m.set_owned(Vec::new()).is_empty());
        assert_eq!(m.mode, Mode::Normal);
    }

    #[test]
    fn history_and_drill_down_navigation() {
        let mut m = Model::new("me", false);
        m.set_rows(vec![row("a", "succeeded", true)]);
        assert_eq!(m.key(k('H'))[0], Effect::LoadHistory);
        let h = |run| HistRow {
            run,
            deployment: "a".into(),
            version: "1".into(),
            environment: "prod".into(),
            strategy: crate::spec::Strategy::Canary,
            outcome: crate::store::Status::Succeeded,
            finished: true,
            started: None,
            duration_s: Some(10),
            initiator: "me".into(),
            reason: None,
            kind: crate::store::RunKind::Deploy,
            finished_at: None,
            changed_at: None,
        };
        m.set_history(vec![h(3), h(2), h(1)]);
        m.key(k('G'));
        assert_eq!(m.hist_selected, 2);
        m.key(k('k'));
        let fx = m.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(fx[0], Effect::LoadDrill { run: 2 });
        m.set_drill(Some(Drill {
            run: 2,
            title: "a".into(),
            timeline: vec!["x".into(), "y".into()],
            verdicts: vec!["v".into()],
            scroll: 0,
            row: None,
        }));
        assert_eq!(m.view, View::Drill);
        m.key(k('j'));
        m.key(k('j'));
        m.key(k('j'));
        assert_eq!(m.drill.as_ref().unwrap().scroll, 2);
        m.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(m.view, View::History);
        m.key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(m.view, View::Main);
        let fx = m.key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(fx[0], Effect::LoadDrill { run: 1 });
    }

    #[test]
    fn the_events_pane_scrolls_back_and_follows_again() {
        let mut m = Model::new("me", false);
        let mut r = row("a", "progressing", true);
        r.detail = Some(crate::tui::data::Live {
            events: (0..20).map(|i| format!("event {i}")).collect(),
            ..Default::default()
        });
        m.set_rows(vec![r, row("b", "progressing", true)]);
        m.key(k('['));
        m.key(k('['));
        assert_eq!(m.events_back, 10);
        for _ in 0..10 {
            m.key(k('['));
        }
        assert_eq!(m.events_back, 19, "never past the oldest");
        m.key(k(']'));
        assert_eq!(m.events_back, 14);
        m.key(k('j'));
        assert_eq!(
            m.events_back, 0,
            "another deployment follows its newest events"
        );
    }
}
