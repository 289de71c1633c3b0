//! Waiting at an approval gate: the gate's rule from the environment (approvers, quorum of
//! distinct people, self-approval), approvals and rejections as they arrive, and the escalation
//! ladder over time (notify, widen the approvers, then approve, reject or roll back).
//!
//! Owns: a run's gate from opening to decision. Must not touch: strategy steps (the run goes on
//! when the gate passes) or notifications' delivery.

use std::time::Duration;

use tokio::time::Instant;

use super::event::*;
use super::refusal::Refusal;
use super::run::{Run, Stop};
use super::state::Transition;
use crate::governance::config::EscalationAction;
use crate::governance::gate::{describe_step, Due, Gate, Rule};
use crate::spec::human;

impl Run {
    pub(crate) async fn gate(&mut self, ci: usize, name: &str) -> Result<(), Stop> {
        let component = self.comps[ci].comp.id.clone();
        // A gate that cannot open must never count as passed.
        self.state
            .apply(Transition::OpenGate(name.to_string()))
            .map_err(|why| Stop::Fail(Cause::Error, format!("gate {name} cannot open: {why}")))?;
        let rule = Rule::for_env(
            &self.engine.inner.governance.workspace,
            &self.spec.environment,
            name,
            &self.opts.initiator,
        );
        let wall = self.engine.inner.wall_clock_gates;
        self.gate_state = Some((Gate::new(rule), super::run::GateClock::start(wall)));
        let hint = format!("cutover approve {} --gate {name}", self.spec.id);
        self.emit(EventKind::GateWaiting {
            gate: name.to_string(),
            component,
            hint,
        })
        .await;
        let result = match self.auto_approval() {
            Ok(true) => self.approve_gate("auto-approve", None).await,
            Ok(false) => self.wait_gate(ci, name).await,
            Err(why) => {
                // --auto-approve never overrides a gate's rule: it waits for people instead.
                let by = self.opts.initiator.clone();
                self.refuse("auto-approve", &by, &why).await;
                self.wait_gate(ci, name).await
            }
        };
        self.gate_state = None;
        result
    }

    async fn wait_gate(&mut self, ci: usize, name: &str) -> Result<(), Stop> {
        let interval = self.interval();
        let mut last_judged = Instant::now();
        loop {
            if self.state.gate().is_none() || self.state.promoting() {
                return Ok(());
            }
            let Some((state, opened)) = self.gate_state.as_ref() else {
                return Ok(());
            };
            let elapsed = opened.elapsed().as_millis() as u64;
            if let Some(due) = state.due(elapsed) {
                self.escalate(due).await?;
                continue;
            }
            let deadline = state.next_deadline(elapsed).map(Duration::from_millis);
            if self.engine.inner.virtual_clock {
                // Only a person (or the ladder) can move this on: no analysis ticks.
                match deadline {
                    Some(d) if self.engine.inner.wall_clock_gates => self.wait_wall(d).await?,
                    Some(d) => self.sleep_handling(d).await?,
                    None => match self.rx.recv().await {
                        Some(env) => self.handle(env).await?,
                        None => std::future::pending::<()>().await,
                    },
                }
                continue;
            }
            let wait = deadline.map_or(interval, |d| d.min(interval));
            self.sleep_handling(wait).await?;
            if self.state.gate().is_some()
                && !self.state.paused()
                && last_judged.elapsed() >= interval
            {
                last_judged = Instant::now();
                let verdicts = self.judge(ci).await;
                self.decide(verdicts, false, name, Some(interval))
                    .await
                    .map_err(|stop| match stop {
                        Stop::Fail(c, r) => {
                            Stop::Fail(c, format!("while waiting at gate {name}: {r}"))
                        }
                        other => other,
                    })?;
            }
        }
    }

    /// Wait up to `d` of real time (at most a second at a time) for a command, without moving
    /// the virtual clock.
    async fn wait_wall(&mut self, d: Duration) -> Result<(), Stop> {
        let nap = d.min(Duration::from_secs(1));
        let sleep = tokio::task::spawn_blocking(move || std::thread::sleep(nap));
        tokio::select! {
            _ = sleep => Ok(()),
            env = self.rx.recv() => match env {
                Some(env) => self.handle(env).await,
                None => std::future::pending().await,
            },
        }
    }

    /// Take the escalation step (or the timeout) that is due.
    async fn escalate(&mut self, due: Due) -> Result<(), Stop> {
        let Some((state, opened)) = self.gate_state.as_mut() else {
            return Ok(());
        };
        let gate = state.rule.gate.clone();
        let waited = human(opened.elapsed().as_millis() as u64);
        let votes = format!("{} of {}", state.votes.len(), state.rule.required);
        // A timeout without a deciding step rejects.
        let (action, reason) = match due {
            Due::Step(i) => {
                let Some(step) = state.take_step(i) else {
                    return Ok(());
                };
                self.emit(EventKind::GateEscalated {
                    gate: gate.clone(),
                    step: i,
                    description: describe_step(&step),
                    notify: step.notify.clone(),
                    action: step.action.map(|a| a.as_str().to_string()),
                })
                .await;
                match step.action {
                    Some(a) => (
                        a,
                        format!(
                            "escalation after {waited} ({votes} approvals): {}",
                            a.as_str()
                        ),
                    ),
                    None => return Ok(()),
                }
            }
            Due::TimedOut => (
                EscalationAction::Reject,
                format!("timed out after {waited} with {votes} approvals"),
            ),
        };
        match action {
            EscalationAction::Approve => self.approve_gate("escalation", Some(reason)).await,
            EscalationAction::Rollback if gate == super::BEFORE_START => {
                self.transition(Transition::CloseGate);
                Err(Stop::Abort(
                    Cause::Timeout,
                    format!(
                        "gate {gate}: {reason}; nothing had changed, so nothing was rolled back"
                    ),
                ))
            }
            EscalationAction::Rollback => {
                self.transition(Transition::CloseGate);
                Err(Stop::Rollback {
                    to: None,
                    by: "escalation".into(),
                    cause: Cause::Timeout,
                })
            }
            EscalationAction::Reject => {
                self.transition(Transition::CloseGate);
                self.emit(EventKind::GateRejected {
                    gate: gate.clone(),
                    by: "escalation".into(),
                    reason: reason.clone(),
                })
                .await;
                let why = format!("gate {gate} rejected: {reason}");
                Err(if gate == super::BEFORE_START {
                    Stop::Abort(Cause::Timeout, why)
                } else {
                    Stop::Fail(Cause::Timeout, why)
                })
            }
        }
    }

    /// Whether `--auto-approve` may pass the waiting gate: only where the initiator alone could
    /// (they may decide it and one approval is enough). `Err` says why not.
    fn auto_approval(&self) -> Result<bool, String> {
        if !self.opts.auto_approve {
            return Ok(false);
        }
        let Some((state, _)) = self.gate_state.as_ref() else {
            return Ok(true);
        };
        let who = &self.opts.initiator;
        let groups = (self.engine.inner.governance.groups)(who);
        state.may_decide(&self.engine.inner.governance.workspace, who, &groups)?;
        if state.rule.required > 1 {
            return Err(format!(
                "gate {} needs {} distinct approvals; --auto-approve counts as one",
                state.rule.gate, state.rule.required
            ));
        }
        Ok(true)
    }

    /// An approval from `actor`: counted toward the quorum if they may decide this gate.
    pub(crate) async fn decide_approve(
        &mut self,
        actor: &str,
        want: Option<String>,
        comment: Option<String>,
    ) -> Result<String, Refusal> {
        let g = self.check_gate(want.as_deref())?;
        let groups = (self.engine.inner.governance.groups)(actor);
        let ws = self.engine.inner.governance.workspace.clone();
        let Some((state, opened)) = self.gate_state.as_mut() else {
            return Err(Refusal::NotNow("no gate is waiting".into()));
        };
        state
            .may_decide(&ws, actor, &groups)
            .map_err(Refusal::Gate)?;
        let at = opened.elapsed().as_millis() as u64;
        let passed = state
            .approve(actor, comment.clone(), at)
            .map_err(Refusal::Gate)?;
        let (approvals, required) = (state.votes.len() as u32, state.rule.required);
        if passed {
            let _ = self.approve_gate(actor, comment).await;
            return Ok(format!("approved gate {g}"));
        }
        self.emit(EventKind::GateVote {
            gate: g.clone(),
            by: actor.to_string(),
            comment,
            approvals,
            required,
        })
        .await;
        Ok(format!(
            "approval recorded for gate {g}: {approvals} of {required}; {} more needed",
            required - approvals
        ))
    }

    /// Whether `actor` may reject the waiting gate (a reason is required); the gate's name.
    pub(crate) fn decide_reject(&mut self, actor: &str, reason: &str) -> Result<String, Refusal> {
        let g = self.check_gate(None)?;
        if reason.trim().is_empty() {
            return Err(Refusal::Gate(
                "a rejection needs a reason (cutover reject ID --reason TEXT)".into(),
            ));
        }
        let groups = (self.engine.inner.governance.groups)(actor);
        let ws = self.engine.inner.governance.workspace.clone();
        if let Some((state, _)) = self.gate_state.as_ref() {
            state
                .may_decide(&ws, actor, &groups)
                .map_err(Refusal::Gate)?;
        }
        Ok(g)
    }

    /// Why `actor` may not promote: promoting skips the gates still ahead (and the one waiting),
    /// so it is refused unless `actor` could pass each of them alone (an approver of it, not
    /// barred from self-approval, and a quorum of one). With no configuration everybody can.
    pub(crate) fn promote_refusal(&self, actor: &str) -> Option<String> {
        let ws = &self.engine.inner.governance.workspace;
        let groups = (self.engine.inner.governance.groups)(actor);
        for step in self.plan.steps.iter().filter(|s| s.index >= self.step) {
            let crate::plan::Action::Gate { name } = &step.action else {
                continue;
            };
            let mut gate = match &self.gate_state {
                Some((g, _)) if self.state.gate() == Some(name.as_str()) => g.clone(),
                _ => Gate::new(Rule::for_env(
                    ws,
                    &self.spec.environment,
                    name,
                    &self.opts.initiator,
                )),
            };
            // As if `actor` approved it now (on a copy): would that pass it?
            let why = match gate
                .may_decide(ws, actor, &groups)
                .and_then(|()| gate.approve(actor, None, 0))
            {
                Err(e) => e,
                Ok(false) => format!(
                    "it needs {} more distinct approvals ({} of {} so far)",
                    gate.needed() + 1,
                    gate.votes.len() - 1,
                    gate.rule.required
                ),
                Ok(true) => continue,
            };
            return Some(format!(
                "promoting would skip gate {name}, which {actor} may not pass alone: {why}"
            ));
        }
        None
    }

    fn check_gate(&self, want: Option<&str>) -> Result<String, Refusal> {
        match (self.state.gate(), want) {
            (None, _) => Err(Refusal::NotNow("no gate is waiting".into())),
            (Some(g), Some(w)) if g != w => Err(Refusal::NotNow(format!(
                "gate `{w}` is not waiting (waiting: `{g}`)"
            ))),
            (Some(g), _) => Ok(g.to_string()),
        }
    }
}
