//! Why the engine says no: every command and start answers with a [`Refusal`] when it does not
//! act, so the CLI's exit code and the console's message come from the kind, not from text.
//!
//! Owns: the refusal kinds and how they cross processes (a command written to the store is
//! answered there as JSON). Must not touch: deciding to refuse (the run and the starter do that).

use serde::{Deserialize, Serialize};

use crate::governance::promotion::Blocked;
use crate::governance::rbac::Forbidden;
use crate::governance::window::Closed;
use crate::store::Outcome;

/// A command or a start the engine did not carry out, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refusal", content = "detail", rename_all = "snake_case")]
pub enum Refusal {
    /// The person lacks the role: which one was needed and which they hold.
    #[error(transparent)]
    Forbidden(Forbidden),
    /// The environment is frozen or outside its deployment windows.
    #[error(transparent)]
    Closed(Closed),
    /// The run has ended.
    #[error("run {run} has already finished ({outcome})")]
    Finished { run: i64, outcome: Outcome },
    /// No such deployment, run, revision or version.
    #[error("{0}")]
    NotFound(String),
    /// The run is not in a state for this command (not paused, already paused, no gate waiting).
    #[error("{0}")]
    NotNow(String),
    /// A gate's rule: not an approver, no self-approval, already approved, a reason is needed.
    #[error("{0}")]
    Gate(String),
    /// A promotion rule: the source did not succeed, the target is not next, ...
    #[error("{0}")]
    Promotion(String),
    /// The spec the command would run breaks a rule (named with its field).
    #[error("{0}")]
    InvalidSpec(String),
    /// A rollback target that may not be returned to (failed, rolled back, gone).
    #[error("{0}")]
    Target(String),
    /// The run cannot be taken over (finished, owned by a live process, a dry run, ...).
    #[error("{0}")]
    Takeover(String),
    /// Another run, not finished, drives one of the run's targets (a component in an
    /// environment on a provider): one driver per target.
    #[error("{target} is driven by run #{run} of {deployment} ({status}, started by {initiator}, {}); {}", busy_owner(*owner), busy_advice(*owner, &format!("{deployment}#{run}")))]
    Busy {
        target: String,
        run: i64,
        deployment: String,
        status: crate::store::Status,
        initiator: String,
        owner: Option<i64>,
    },
    /// What runs on the platform stands in the way (a workload cutover did not create and
    /// cannot adopt in this traffic mode).
    #[error("{0}")]
    Platform(String),
    /// The platform's lease on a target is held by another driver (another machine's run).
    #[error("{0}; wait for its run to end or its lease to expire")]
    Leased(String),
    /// A command that names nobody: every command is someone's, for roles and the audit trail.
    #[error("a command must name the person who sends it")]
    NoActor,
    /// The engine is shutting down and takes no more commands.
    #[error("the engine is shutting down")]
    ShuttingDown,
    /// The process that owns the run did not answer.
    #[error("{0}")]
    NoAnswer(String),
    /// The state store failed.
    #[error("state store: {0}")]
    Store(String),
}

fn busy_owner(owner: Option<i64>) -> String {
    match owner {
        Some(p) => format!("process {p}"),
        None => "no live process drives it".into(),
    }
}

/// What to do about the run `id` (`DEPLOYMENT#RUN`: the deployment's id alone may name a later
/// run of it, in another environment).
fn busy_advice(owner: Option<i64>, id: &str) -> String {
    match owner {
        Some(_) => format!(
            "wait for it to end, roll it back (`cutover rollback {id}`), or start with `apply --supersede` (which rolls it back first)"
        ),
        None => format!(
            "take it over (`cutover resume {id}`, or `r` in `cutover console`), roll it back (`cutover rollback {id}`), or start with `apply --supersede` (which rolls it back first)"
        ),
    }
}

impl Refusal {
    /// The exit code of the command-line contract: 2 for input that names nothing or breaks a
    /// rule, 1 for everything else refused.
    pub fn exit_code(&self) -> u8 {
        match self {
            Refusal::NotFound(_) | Refusal::InvalidSpec(_) => 2,
            Refusal::Forbidden(_)
            | Refusal::Closed(_)
            | Refusal::Finished { .. }
            | Refusal::NotNow(_)
            | Refusal::Gate(_)
            | Refusal::Promotion(_)
            | Refusal::Target(_)
            | Refusal::Takeover(_)
            | Refusal::NoActor
            | Refusal::Busy { .. }
            | Refusal::Leased(_)
            | Refusal::Platform(_)
            | Refusal::ShuttingDown
            | Refusal::NoAnswer(_)
            | Refusal::Store(_) => 1,
        }
    }
}

impl From<Forbidden> for Refusal {
    fn from(f: Forbidden) -> Refusal {
        Refusal::Forbidden(f)
    }
}

impl From<Closed> for Refusal {
    fn from(c: Closed) -> Refusal {
        Refusal::Closed(c)
    }
}

impl From<Blocked> for Refusal {
    fn from(b: Blocked) -> Refusal {
        match b {
            Blocked::Rule(r) => Refusal::Promotion(r),
            Blocked::Closed(c) => Refusal::Closed(c),
        }
    }
}

impl From<crate::store::Holder> for Refusal {
    fn from(h: crate::store::Holder) -> Refusal {
        let alive = h.run.owner_pid.filter(|p| crate::store::pid_alive(*p));
        Refusal::Busy {
            target: h.target,
            run: h.run.run_id,
            deployment: h.run.deployment,
            status: h.run.status,
            initiator: h.run.initiator,
            owner: alive,
        }
    }
}

impl From<crate::store::StoreError> for Refusal {
    fn from(e: crate::store::StoreError) -> Refusal {
        Refusal::Store(e.to_string())
    }
}

/// What a command gets back: what was done, in words, or why not.
pub type Answer = Result<String, Refusal>;

/// The answer as stored in `commands.result` (JSON).
pub fn encode_answer(answer: &Answer) -> String {
    let v = match answer {
        Ok(m) => serde_json::json!({ "ok": m }),
        Err(r) => serde_json::json!({ "refused": r }),
    };
    v.to_string()
}

/// The answer a stored result holds (also the `ok: ...` / `error: ...` text older versions wrote).
pub fn decode_answer(stored: &str) -> Answer {
    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Stored {
        Ok(String),
        Refused(Refusal),
    }
    if let Ok(s) = serde_json::from_str::<Stored>(stored) {
        return match s {
            Stored::Ok(m) => Ok(m),
            Stored::Refused(r) => Err(r),
        };
    }
    match stored.strip_prefix("ok: ") {
        Some(m) => Ok(m.to_string()),
        None => Err(Refusal::NotNow(
            stored.strip_prefix("error: ").unwrap_or(stored).to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::rbac::{Permission, Role};

    #[test]
    fn answers_round_trip_with_their_kind() {
        let forbidden = Refusal::Forbidden(Forbidden {
            user: "eve".into(),
            permission: Permission::Rollback,
            environment: "production".into(),
            needed: vec![Role::Operator, Role::Admin],
            held: vec![Role::Viewer],
        });
        for a in [
            Ok("paused".to_string()),
            Err(Refusal::NotNow("no gate is waiting".into())),
            Err(forbidden.clone()),
            Err(Refusal::Finished {
                run: 3,
                outcome: Outcome::RolledBack,
            }),
            Err(Refusal::ShuttingDown),
        ] {
            assert_eq!(decode_answer(&encode_answer(&a)), a);
        }
        assert_eq!(forbidden.exit_code(), 1);
        assert_eq!(Refusal::NotFound("no run 9".into()).exit_code(), 2);
        assert!(forbidden
            .to_string()
            .contains("needs the operator or admin role"));
        assert_eq!(decode_answer("ok: resumed"), Ok("resumed".into()));
        assert_eq!(
            decode_answer("error: not paused"),
            Err(Refusal::NotNow("not paused".into()))
        );
    }
}
