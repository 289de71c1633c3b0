//! Operator control of a run: gates, pause and resume, and the commands that arrive while it
//! waits (approve, reject, promote, roll back), each answered and journaled.
//!
//! Owns: waiting in a way that commands can interrupt, and applying commands to the run's state.
//! Must not touch: strategy steps or traffic (commands that need those return a `Stop`).

use std::time::Duration;

use tokio::time::Instant;

use super::event::*;
use super::refusal::{Answer, Refusal};
use super::run::{Run, Stop};
use super::state::Transition;
use super::{Command, Envelope};
use crate::governance::rbac::Permission;

impl Run {
    /// The waiting gate passed (approved by people, by `--auto-approve` or by escalation).
    pub(crate) async fn approve_gate(
        &mut self,
        by: &str,
        comment: Option<String>,
    ) -> Result<(), Stop> {
        if let Some(gate) = self.state.gate().map(str::to_string) {
            self.transition(Transition::CloseGate);
            self.emit(EventKind::GateApproved {
                gate,
                by: by.to_string(),
                comment,
            })
            .await;
        }
        Ok(())
    }

    /// Hold between steps; a run already paused stays as it is.
    pub(crate) async fn pause(&mut self, by: &str, reason: &str) {
        if self
            .state
            .apply(Transition::Pause(reason.to_string()))
            .is_ok()
        {
            self.emit(EventKind::Paused {
                by: by.to_string(),
                reason: reason.to_string(),
            })
            .await;
        }
    }

    /// While paused, only commands move the run.
    pub(crate) async fn hold_if_paused(&mut self) -> Result<(), Stop> {
        while self.state.paused() {
            match self.rx.recv().await {
                Some(env) => self.handle(env).await?,
                None => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }

    /// Sleep, handling any commands that arrive meanwhile.
    pub(crate) async fn sleep_handling(&mut self, d: Duration) -> Result<(), Stop> {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return Ok(()),
                env = self.rx.recv() => match env {
                    Some(env) => self.handle(env).await?,
                    None => {
                        tokio::time::sleep_until(until).await;
                        return Ok(());
                    }
                },
            }
        }
    }

    /// Apply one command and answer it (to the caller and, for commands from another process,
    /// in the store before the run moves on); an error return stops the run's current step.
    pub(crate) async fn handle(&mut self, env: Envelope) -> Result<(), Stop> {
        let Envelope {
            command,
            actor,
            reply,
            store_id,
            owner,
        } = env;
        let (result, flow) = self.apply_command(command, actor, owner).await;
        if let Some(id) = store_id {
            // In order after the lines the command caused: whoever reads the answer finds them.
            let answer = crate::store::Write::Answer {
                id,
                result: super::refusal::encode_answer(&result),
            };
            let written = self.engine.journal(&self.spec.id, vec![answer]);
            self.engine.journal_settle(written).await;
        }
        if let Some(r) = reply {
            let _ = r.send(result);
        }
        flow
    }

    /// Carry out one command: its answer, and whether the run's current step must stop.
    async fn apply_command(
        &mut self,
        command: Command,
        actor: String,
        owner: bool,
    ) -> (Answer, Result<(), Stop>) {
        match self.command_flow(&command, &actor, owner).await {
            Ok((answer, flow)) => (Ok(answer), flow),
            Err(refusal) => {
                self.refuse(command.name(), &actor, &refusal.to_string())
                    .await;
                (Err(refusal), Ok(()))
            }
        }
    }

    /// A command's effect on the run, or why it is refused. Roles are checked here, in the
    /// engine, whoever sent it; gates have their own approver rules (checked when deciding them).
    async fn command_flow(
        &mut self,
        command: &Command,
        actor: &str,
        owner: bool,
    ) -> Result<(String, Result<(), Stop>), Refusal> {
        if actor.trim().is_empty() {
            return Err(Refusal::NoActor);
        }
        let perm = match command {
            Command::Pause | Command::Hold { .. } => Some(Permission::Pause),
            Command::Resume => Some(Permission::Resume),
            Command::Promote => Some(Permission::Promote),
            Command::Rollback { .. } => Some(Permission::Rollback),
            Command::Approve { .. } | Command::Reject { .. } => None,
        };
        if let (false, Some(p)) = (owner, perm) {
            let env = self.spec.environment.clone();
            self.engine.inner.governance.check(&env, actor, p)?;
        }
        let by = actor.to_string();
        match command.clone() {
            Command::Hold { .. } if !owner => Err(Refusal::NotNow(
                "only the engine that drives a run holds it".into(),
            )),
            Command::Pause | Command::Hold { .. } => {
                let reason = match command {
                    Command::Hold { reason } => reason.clone(),
                    _ => "paused by operator".to_string(),
                };
                self.state
                    .apply(Transition::Pause(reason.clone()))
                    .map_err(Refusal::NotNow)?;
                self.emit(EventKind::Paused { by, reason }).await;
                Ok(("paused".into(), Ok(())))
            }
            Command::Resume => {
                if !self.state.paused() {
                    return Err(Refusal::NotNow("not paused".into()));
                }
                // Where the platform holds targets too, a run resumes only with its lease (a
                // run held because it lost it stays held while another driver has it).
                if let Some(l) = self.engine.inner.provider.lease() {
                    let targets = self.engine.targets(&self.spec, self.opts.dry_run);
                    let holder = self.engine.lease_holder(&self.spec.id);
                    l.acquire(&targets, &holder)
                        .await
                        .map_err(|e| Refusal::Leased(e.to_string()))?;
                }
                self.state
                    .apply(Transition::Resume)
                    .map_err(Refusal::NotNow)?;
                self.emit(EventKind::Resumed { by }).await;
                Ok(("resumed".into(), Ok(())))
            }
            Command::Approve { gate, comment } => {
                let msg = self.decide_approve(actor, gate, comment).await?;
                Ok((msg, Ok(())))
            }
            Command::Reject { reason } => {
                let g = self.decide_reject(actor, &reason)?;
                self.transition(Transition::CloseGate);
                self.emit(EventKind::GateRejected {
                    gate: g.clone(),
                    by: by.clone(),
                    reason: reason.clone(),
                })
                .await;
                let why = format!("gate {g} rejected by {actor}: {reason}");
                let stop = if g == super::BEFORE_START {
                    Stop::Abort(Cause::Rejected, why)
                } else {
                    Stop::Fail(Cause::Rejected, why)
                };
                Ok((format!("rejected gate {g}"), Err(stop)))
            }
            Command::Promote => {
                if let Some(msg) = self.promote_refusal(actor) {
                    return Err(Refusal::Gate(msg));
                }
                self.state
                    .apply(Transition::Promote)
                    .map_err(Refusal::NotNow)?;
                self.emit(EventKind::Promoted { by }).await;
                Ok((
                    "promoting: skipping the remaining analysis and gates".into(),
                    Ok(()),
                ))
            }
            Command::Rollback { to } => {
                if let Some(v) = &to {
                    self.check_target(v).await?;
                }
                if self.comps.iter().all(|c| !c.touched) {
                    return Ok((
                        "nothing has changed yet: the deployment ends".into(),
                        Err(Stop::Abort(
                            Cause::Manual,
                            format!(
                                "rollback requested by {actor} before any change: nothing to undo"
                            ),
                        )),
                    ));
                }
                Ok((
                    "rolling back".into(),
                    Err(Stop::Rollback {
                        to,
                        by,
                        cause: Cause::Manual,
                    }),
                ))
            }
        }
    }

    pub(crate) async fn refuse(&mut self, command: &str, by: &str, reason: &str) {
        self.emit(EventKind::CommandRefused {
            command: command.to_string(),
            by: by.to_string(),
            reason: reason.to_string(),
        })
        .await;
    }
}
