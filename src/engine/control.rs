//! Operator control of a run: gates, pause and resume, and the commands that arrive while it
//! waits (approve, reject, promote, roll back), each answered and journaled.
//!
//! Owns: waiting in a way that commands can interrupt, and applying commands to the run's state.
//! Must not touch: strategy steps or traffic (commands that need those return a `Stop`).

use std::time::Duration;

use tokio::time::Instant;

use super::event::*;
use super::run::{Run, Stop};
use super::{Command, Envelope};
use crate::governance::rbac::Permission;

impl Run {
    pub(crate) async fn approve_gate(
        &mut self,
        by: &str,
        comment: Option<String>,
    ) -> Result<(), Stop> {
        if let Some(gate) = self.gate.take() {
            self.status = if self.paused {
                Status::Paused
            } else {
                Status::Progressing
            };
            self.emit(EventKind::GateApproved {
                gate,
                by: by.to_string(),
                comment,
            })
            .await;
        }
        Ok(())
    }

    pub(crate) async fn pause(&mut self, by: &str, reason: &str) {
        if !self.paused {
            self.paused = true;
            self.status = Status::Paused;
            self.reason = Some(reason.to_string());
            self.emit(EventKind::Paused {
                by: by.to_string(),
                reason: reason.to_string(),
            })
            .await;
        }
    }

    /// While paused, only commands move the run.
    pub(crate) async fn hold_if_paused(&mut self) -> Result<(), Stop> {
        while self.paused {
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
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let flow = self.apply_command(command, actor, owner, Some(tx)).await;
        let result = rx
            .try_recv()
            .unwrap_or_else(|_| Err("the command was not answered".into()));
        if let Some(id) = store_id {
            let text = super::remote::encode_answer(&result);
            let written = self
                .engine
                .inner
                .store
                .call(move |s| s.complete_command(id, &text))
                .await;
            if let Err(e) = written {
                tracing::error!(run = self.run_id, "cannot answer command {id}: {e}");
            }
        }
        if let Some(r) = reply {
            let _ = r.send(result);
        }
        flow
    }

    async fn apply_command(
        &mut self,
        command: Command,
        actor: String,
        owner: bool,
        reply: Option<tokio::sync::oneshot::Sender<Result<String, String>>>,
    ) -> Result<(), Stop> {
        let answer = |reply: Option<tokio::sync::oneshot::Sender<Result<String, String>>>,
                      r: Result<String, String>| {
            if let Some(tx) = reply {
                let _ = tx.send(r);
            }
        };
        // Roles are checked here, in the engine, whoever sent the command. Gates have their
        // own approver rules (checked when deciding them).
        let perm = match &command {
            Command::Pause => Some(Permission::Pause),
            Command::Resume => Some(Permission::Resume),
            Command::Promote => Some(Permission::Promote),
            Command::Rollback { .. } => Some(Permission::Rollback),
            Command::Approve { .. } | Command::Reject { .. } => None,
        };
        if let (false, Some(p)) = (owner, perm) {
            let env = self.spec.environment.clone();
            if let Err(msg) = self.engine.inner.governance.check(&env, &actor, p) {
                self.refuse(command.name(), &actor, &msg).await;
                answer(reply, Err(msg));
                return Ok(());
            }
        }
        match command {
            Command::Pause => {
                if self.paused {
                    answer(reply, Err("already paused".into()));
                } else {
                    self.pause(&actor, "paused by operator").await;
                    answer(reply, Ok("paused".into()));
                }
            }
            Command::Resume => {
                if !self.paused {
                    answer(reply, Err("not paused".into()));
                } else {
                    self.paused = false;
                    self.reason = None;
                    self.status = if self.gate.is_some() {
                        Status::WaitingApproval
                    } else {
                        Status::Progressing
                    };
                    self.emit(EventKind::Resumed { by: actor }).await;
                    answer(reply, Ok("resumed".into()));
                }
            }
            Command::Approve { gate, comment } => {
                match self.decide_approve(&actor, gate, comment).await {
                    Ok(msg) => answer(reply, Ok(msg)),
                    Err(msg) => {
                        self.refuse("approve", &actor, &msg).await;
                        answer(reply, Err(msg));
                    }
                }
            }
            Command::Reject { reason } => match self.decide_reject(&actor, &reason) {
                Err(msg) => {
                    self.refuse("reject", &actor, &msg).await;
                    answer(reply, Err(msg));
                }
                Ok(g) => {
                    self.gate = None;
                    self.emit(EventKind::GateRejected {
                        gate: g.clone(),
                        by: actor.clone(),
                        reason: reason.clone(),
                    })
                    .await;
                    answer(reply, Ok(format!("rejected gate {g}")));
                    let why = format!("gate {g} rejected by {actor}: {reason}");
                    return Err(if g == super::BEFORE_START {
                        Stop::Abort(why)
                    } else {
                        Stop::Fail(why)
                    });
                }
            },
            Command::Promote => {
                if let Some(msg) = self.promote_refusal(&actor) {
                    self.refuse("promote", &actor, &msg).await;
                    answer(reply, Err(msg));
                    return Ok(());
                }
                self.promoting = true;
                self.paused = false;
                self.gate = None;
                self.status = Status::Progressing;
                self.emit(EventKind::Promoted { by: actor }).await;
                answer(
                    reply,
                    Ok("promoting: skipping the remaining analysis and gates".into()),
                );
            }
            Command::Rollback { to } => {
                if let Some(v) = &to {
                    if let Err(msg) = self.check_target(v).await {
                        self.refuse("rollback", &actor, &msg).await;
                        answer(reply, Err(msg));
                        return Ok(());
                    }
                }
                if self.comps.iter().all(|c| !c.touched) {
                    answer(
                        reply,
                        Ok("nothing has changed yet: the deployment ends".into()),
                    );
                    return Err(Stop::Abort(format!(
                        "rollback requested by {actor} before any change: nothing to undo"
                    )));
                }
                answer(reply, Ok("rolling back".into()));
                return Err(Stop::Rollback { to, by: actor });
            }
        }
        Ok(())
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
