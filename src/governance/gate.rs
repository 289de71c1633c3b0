//! One approval gate's state: who may decide it, the distinct people who approved, the quorum,
//! self-approval, and the escalation ladder over time.
//!
//! Owns: the rules of a gate as pure functions over its state (tested without an engine).
//! Must not touch: the engine's run, the store, notifications.

use serde::{Deserialize, Serialize};

use super::config::{Escalation, Who, Workspace};
use super::rbac::{self, Permission};

/// The rule a gate follows, from the environment's `approval` (or the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub gate: String,
    pub environment: String,
    pub required: u32,
    /// `None`: holders of the approver or admin role.
    pub approvers: Option<Who>,
    pub allow_self_approval: bool,
    pub initiator: String,
    pub timeout_ms: Option<u64>,
    pub escalation: Vec<Escalation>,
    /// No approver list and no roles in the environment: anyone may decide.
    #[serde(default)]
    pub anyone: bool,
}

impl Rule {
    /// The rule for a gate in `env`. Without an `approval` block: one approval, and the
    /// initiator may give it.
    pub fn for_env(ws: &Workspace, env: &str, gate: &str, initiator: &str) -> Rule {
        let no_roles = ws.env(env).is_none_or(|e| e.roles.is_none());
        let mut rule = match ws.env(env).and_then(|e| e.approval.as_ref()) {
            Some(a) => Rule {
                gate: gate.to_string(),
                environment: env.to_string(),
                required: a.required.max(1),
                approvers: a.approvers.clone(),
                allow_self_approval: a.allow_self_approval,
                initiator: initiator.to_string(),
                timeout_ms: a.timeout.map(|t| t.0),
                escalation: a.escalation.clone(),
                anyone: false,
            },
            None => Rule {
                gate: gate.to_string(),
                environment: env.to_string(),
                required: 1,
                approvers: None,
                allow_self_approval: true,
                initiator: initiator.to_string(),
                timeout_ms: None,
                escalation: Vec::new(),
                anyone: false,
            },
        };
        rule.anyone = rule.approvers.is_none() && no_roles;
        rule
    }
}

/// One approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    pub by: String,
    pub comment: Option<String>,
    /// Milliseconds after the gate opened.
    pub at_ms: u64,
}

/// What the ladder says to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Due {
    /// Run escalation step `index` (notify, widen, maybe decide).
    Step(usize),
    /// The timeout passed with no step deciding: reject.
    TimedOut,
}

/// A gate in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub rule: Rule,
    pub votes: Vec<Vote>,
    /// Approvers added by escalation steps so far.
    pub added: Who,
    /// Escalation steps already taken.
    pub steps_done: usize,
}

/// What a console or CLI shows about a waiting gate.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateView {
    pub gate: String,
    pub required: u32,
    pub approved_by: Vec<String>,
    /// Who may still approve, in words.
    pub may_approve: String,
    /// Milliseconds since the gate opened, when this view was taken.
    pub waited_ms: u64,
    /// When the gate opened (RFC 3339), so that others can count from it.
    #[serde(default)]
    pub opened_at: Option<String>,
    /// The next escalation step in words, and when it is due (ms after the gate opened).
    pub next_escalation: Option<(String, u64)>,
    /// When the gate times out (ms after it opened).
    pub timeout_ms: Option<u64>,
}

impl GateView {
    /// When something `after_ms` past the gate's opening happens (a step, the timeout).
    pub fn due_at(&self, after_ms: u64) -> Option<chrono::DateTime<chrono::Utc>> {
        let opened = self.opened_at.as_deref().and_then(crate::store::parse_ts)?;
        Some(opened + chrono::Duration::milliseconds(after_ms as i64))
    }
}

impl Gate {
    pub fn new(rule: Rule) -> Gate {
        Gate {
            rule,
            votes: Vec::new(),
            added: Who::default(),
            steps_done: 0,
        }
    }

    /// Whether `user` may approve or reject this gate; the refusal explains why not.
    pub fn may_decide(&self, ws: &Workspace, user: &str, groups: &[String]) -> Result<(), String> {
        let r = &self.rule;
        if !r.allow_self_approval && user == r.initiator {
            return Err(format!(
                "{user} started this deployment and may not decide its gate {} (allowSelfApproval: false)",
                r.gate
            ));
        }
        if self.added.includes(user, groups) {
            return Ok(());
        }
        match &r.approvers {
            Some(who) if who.includes(user, groups) => Ok(()),
            Some(who) => {
                let mut all = who.clone();
                all.merge(&self.added);
                Err(format!(
                    "{user} is not an approver of gate {} in {}: approvers are {}",
                    r.gate,
                    r.environment,
                    all.describe()
                ))
            }
            None => rbac::check(ws, &r.environment, user, groups, Permission::Approve)
                .map_err(|e| e.to_string()),
        }
    }

    /// Record an approval; true when the quorum of distinct people is reached.
    pub fn approve(
        &mut self,
        user: &str,
        comment: Option<String>,
        at_ms: u64,
    ) -> Result<bool, String> {
        if self.votes.iter().any(|v| v.by == user) {
            return Err(format!(
                "{user} has already approved gate {}; {} of {} distinct approvals, {} more needed",
                self.rule.gate,
                self.votes.len(),
                self.rule.required,
                self.needed()
            ));
        }
        self.votes.push(Vote {
            by: user.to_string(),
            comment,
            at_ms,
        });
        Ok(self.needed() == 0)
    }

    /// Approvals still needed.
    pub fn needed(&self) -> u32 {
        self.rule.required.saturating_sub(self.votes.len() as u32)
    }

    /// The escalation step or timeout due at `elapsed_ms`, if any.
    pub fn due(&self, elapsed_ms: u64) -> Option<Due> {
        if let Some(s) = self.rule.escalation.get(self.steps_done) {
            if elapsed_ms >= s.after.0 {
                return Some(Due::Step(self.steps_done));
            }
        }
        match self.rule.timeout_ms {
            Some(t) if elapsed_ms >= t && self.steps_done >= self.rule.escalation.len() => {
                Some(Due::TimedOut)
            }
            _ => None,
        }
    }

    /// Milliseconds from `elapsed_ms` until the next step or timeout.
    pub fn next_deadline(&self, elapsed_ms: u64) -> Option<u64> {
        let step = self.rule.escalation.get(self.steps_done).map(|s| s.after.0);
        let timeout = self.rule.timeout_ms;
        [step, timeout]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_sub(elapsed_ms))
    }

    /// Take escalation step `i`: widen the approvers; returns the step.
    pub fn take_step(&mut self, i: usize) -> Option<Escalation> {
        let s = self.rule.escalation.get(i)?.clone();
        self.added.merge(&s.add_approvers);
        self.steps_done = i + 1;
        Some(s)
    }

    /// The gate as people see it.
    pub fn view(&self, elapsed_ms: u64) -> GateView {
        let r = &self.rule;
        let mut who = match &r.approvers {
            Some(w) => w.describe(),
            None if r.anyone => "anyone on this host (no roles in cutover.yaml)".to_string(),
            None => "holders of the approver or admin role".to_string(),
        };
        if !self.added.is_empty() {
            who = format!("{who}; added by escalation: {}", self.added.describe());
        }
        let approved: Vec<String> = self.votes.iter().map(|v| v.by.clone()).collect();
        let mut not = approved.clone();
        if !r.allow_self_approval {
            not.push(format!("{} (started it)", r.initiator));
        }
        if !not.is_empty() {
            who = format!("{who}, except {}", not.join(", "));
        }
        GateView {
            gate: r.gate.clone(),
            required: r.required,
            approved_by: approved,
            may_approve: who,
            waited_ms: elapsed_ms,
            opened_at: None,
            next_escalation: r
                .escalation
                .get(self.steps_done)
                .map(|s| (describe_step(s), s.after.0)),
            timeout_ms: r.timeout_ms,
        }
    }
}

/// An escalation step in words.
pub fn describe_step(s: &Escalation) -> String {
    let mut parts = Vec::new();
    if !s.notify.is_empty() {
        parts.push(format!("notify {}", s.notify.join(", ")));
    }
    if !s.add_approvers.is_empty() {
        parts.push(format!("add approvers {}", s.add_approvers.describe()));
    }
    if let Some(a) = s.action {
        parts.push(a.as_str().to_string());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::config::parse;

    fn ws() -> Workspace {
        parse(
            "environments:
  - name: production
    roles:
      approver: {groups: [sre]}
      admin: {users: [alice]}
    approval:
      approvers: {users: [alice, bob], groups: [sre]}
      required: 2
      timeout: 2h
      escalation:
        - {after: 30m, addApprovers: {users: [carol]}}
        - {after: 2h, action: reject}
",
        )
        .unwrap()
    }

    #[test]
    fn quorum_of_distinct_people_without_the_initiator() {
        let ws = ws();
        let mut g = Gate::new(Rule::for_env(&ws, "production", "canary-50", "alice"));
        let e = g.may_decide(&ws, "alice", &[]).unwrap_err();
        assert!(e.contains("alice started this deployment"), "{e}");
        let e = g.may_decide(&ws, "carol", &[]).unwrap_err();
        assert!(
            e.contains("approvers are users alice, bob; groups sre"),
            "{e}"
        );
        assert!(g.may_decide(&ws, "dave", &["sre".into()]).is_ok());
        assert_eq!(g.approve("bob", None, 10), Ok(false));
        assert!(g
            .approve("bob", None, 20)
            .unwrap_err()
            .contains("already approved"));
        assert_eq!(g.needed(), 1);
        let v = g.view(60_000);
        assert_eq!(v.approved_by, vec!["bob"]);
        assert!(
            v.may_approve.contains("except bob, alice (started it)"),
            "{}",
            v.may_approve
        );
        assert_eq!(g.approve("dave", Some("ok".into()), 30), Ok(true));
    }

    #[test]
    fn the_ladder_widens_then_decides() {
        let ws = ws();
        let mut g = Gate::new(Rule::for_env(&ws, "production", "g", "zed"));
        assert_eq!(g.due(29 * 60_000), None);
        assert_eq!(g.next_deadline(29 * 60_000), Some(60_000));
        assert_eq!(g.due(30 * 60_000), Some(Due::Step(0)));
        g.take_step(0);
        assert!(g.may_decide(&ws, "carol", &[]).is_ok(), "carol was added");
        assert_eq!(g.due(31 * 60_000), None);
        assert_eq!(g.due(120 * 60_000), Some(Due::Step(1)));
        let s = g.take_step(1).unwrap();
        assert_eq!(s.action.map(|a| a.as_str()), Some("reject"));
        assert_eq!(g.due(121 * 60_000), Some(Due::TimedOut));
    }

    #[test]
    fn defaults_let_a_lone_operator_approve_their_own_deployment() {
        let ws = Workspace::default();
        let mut g = Gate::new(Rule::for_env(&ws, "prod", "g", "me"));
        assert!(g.may_decide(&ws, "me", &[]).is_ok());
        assert_eq!(g.approve("me", None, 0), Ok(true));
        assert_eq!(g.due(u64::MAX), None);
    }
}
