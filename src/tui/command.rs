//! The console's `:` command line: parsing what was typed into the same effects keys make.
//!
//! Owns: the command words and their arguments. Must not touch: the terminal, the store or the
//! engine (like keys, commands return effects).

use super::keymap::{Action, Mode, View};
use super::model::{Effect, Model};

/// The `:` commands, for `:help` and completion of errors.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "apply SPEC",
        "start a deployment from a spec file in this console",
    ),
    ("pause | resume", "the selected deployment"),
    ("approve [COMMENT]", "approve the gate it waits at"),
    ("reject REASON", "reject the gate (it rolls back)"),
    ("promote", "skip the remaining analysis (asks first)"),
    ("rollback [VERSION]", "roll back (asks first)"),
    ("history | main", "switch view"),
    (
        "export [FILE]",
        "write the history view's measures (.md, .csv or .json)",
    ),
    ("filter TEXT", "show matching deployments only"),
    ("theme NAME", "default, dark, light, mono, or a .yaml path"),
    ("help", "the keys"),
    ("q | quit", "quit"),
];

impl Model {
    /// A `:` command.
    pub fn command_line(&mut self, text: &str) -> Vec<Effect> {
        let (verb, rest) = match text.split_once(char::is_whitespace) {
            Some((v, r)) => (v, r.trim()),
            None => (text, ""),
        };
        let mutating = matches!(
            verb,
            "apply" | "pause" | "resume" | "approve" | "reject" | "promote" | "rollback"
        );
        if mutating && self.read_only {
            self.message = Some(format!(":{verb} is not available in read-only mode"));
            return vec![Effect::Redraw];
        }
        let need = |what: &str| format!(":{verb} needs {what}");
        match verb {
            "" => vec![Effect::Redraw],
            "q" | "quit" => self.quit(),
            "help" | "?" => {
                self.mode = Mode::Help;
                vec![Effect::Redraw]
            }
            "history" | "h" => {
                self.view = View::History;
                vec![Effect::LoadHistory, Effect::Redraw]
            }
            "export" if self.view != View::History => {
                self.view = View::History;
                self.message = Some(format!(
                    "this is what :export writes; type :export {rest} again to write it"
                ));
                vec![Effect::LoadHistory, Effect::Redraw]
            }
            "export" if self.history.is_empty() => {
                self.message = Some("nothing to export: no runs are recorded".into());
                vec![Effect::Redraw]
            }
            "export" => self.export((!rest.is_empty()).then_some(rest)),
            "main" | "deployments" => {
                self.view = View::Main;
                vec![Effect::Redraw]
            }
            "filter" => {
                self.filter = rest.to_string();
                self.selected = 0;
                vec![Effect::Redraw]
            }
            "theme" if rest.is_empty() => {
                self.message = Some(need("a theme name or path"));
                vec![Effect::Redraw]
            }
            "theme" => vec![Effect::Theme(rest.to_string()), Effect::Redraw],
            "apply" if rest.is_empty() => {
                self.message = Some(need("a spec file"));
                vec![Effect::Redraw]
            }
            "apply" => rest
                .split_whitespace()
                .map(|p| Effect::Apply {
                    path: p.to_string(),
                })
                .chain([Effect::Redraw])
                .collect(),
            "pause" => self.command(Action::Pause, None),
            "resume" => self.command(Action::Resume, None),
            "promote" => self.command(Action::Promote, None),
            "approve" => self.command(
                Action::Approve,
                (!rest.is_empty()).then(|| rest.to_string()),
            ),
            "reject" if rest.is_empty() => {
                self.message = Some(need("a reason: :reject REASON"));
                vec![Effect::Redraw]
            }
            "reject" => self.command(Action::No, Some(rest.to_string())),
            "rollback" => self.command(
                Action::Rollback,
                (!rest.is_empty()).then(|| rest.to_string()),
            ),
            other => {
                let known: Vec<&str> = COMMANDS
                    .iter()
                    .map(|(c, _)| c.split(' ').next().unwrap_or(c))
                    .collect();
                self.message = Some(format!(
                    "unknown command :{other} (commands: {})",
                    known.join(", ")
                ));
                vec![Effect::Redraw]
            }
        }
    }
}
