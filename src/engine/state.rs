//! A run's state as one value changed by one function, so its status, pause, gate and outcome
//! cannot disagree: the status shown is derived from the state, never stored beside it.
//!
//! Owns: [`RunState`] and [`Transition`], and which transitions are allowed from where. Must
//! not touch: what the run does around a transition (events, traffic, the store).

use super::event::{Outcome, Status};

/// What the run is doing, apart from being paused.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Recorded, not started.
    Pending,
    /// Going through its steps.
    Progressing,
    /// Waiting at this gate for people.
    AtGate(String),
    /// Returning traffic to a previous revision.
    RollingBack,
    /// Ended.
    Finished(Outcome),
}

/// A change of a run's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The run starts (or an adopted one goes on).
    Start,
    /// Hold between steps, for this reason.
    Pause(String),
    /// Release a pause.
    Resume,
    /// Wait at a gate.
    OpenGate(String),
    /// The gate was decided (approved, rejected or escalated); the run goes on or stops.
    CloseGate,
    /// An operator skips the remaining analysis and gates.
    Promote,
    /// Traffic goes back (the rollback's own steps follow).
    RollBack,
    /// The run ended, and why.
    Finish(Outcome, String),
}

/// A run's state. Only [`RunState::apply`] changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunState {
    phase: Phase,
    /// Paused (between steps), and why.
    paused: Option<String>,
    /// Promoted by an operator: analysis and gates are skipped from now on.
    promoting: bool,
    /// Why the run ended.
    ended: Option<String>,
}

impl RunState {
    pub fn new() -> RunState {
        RunState {
            phase: Phase::Pending,
            paused: None,
            promoting: false,
            ended: None,
        }
    }

    /// Apply a transition; a refusal says why it does not apply from here (and changes nothing).
    pub fn apply(&mut self, t: Transition) -> Result<(), String> {
        if let Phase::Finished(o) = &self.phase {
            return Err(format!("the run has already finished ({o})"));
        }
        match t {
            Transition::Start => match self.phase {
                Phase::Pending | Phase::Progressing => self.phase = Phase::Progressing,
                _ => return Err("the run has already started".into()),
            },
            Transition::Pause(reason) => {
                if self.paused.is_some() {
                    return Err("already paused".into());
                }
                if self.phase == Phase::RollingBack {
                    return Err("the run is rolling back".into());
                }
                self.paused = Some(reason);
            }
            Transition::Resume => {
                if self.paused.take().is_none() {
                    return Err("not paused".into());
                }
            }
            Transition::OpenGate(g) => match self.phase {
                Phase::Progressing => self.phase = Phase::AtGate(g),
                _ => return Err("a gate opens only while the run progresses".into()),
            },
            Transition::CloseGate => match self.phase {
                Phase::AtGate(_) => self.phase = Phase::Progressing,
                _ => return Err("no gate is waiting".into()),
            },
            Transition::Promote => {
                if self.phase == Phase::RollingBack {
                    return Err("the run is rolling back".into());
                }
                self.promoting = true;
                self.paused = None;
                self.phase = Phase::Progressing;
            }
            Transition::RollBack => {
                self.paused = None;
                self.phase = Phase::RollingBack;
            }
            Transition::Finish(outcome, reason) => {
                self.paused = None;
                self.ended = Some(reason);
                self.phase = Phase::Finished(outcome);
            }
        }
        Ok(())
    }

    /// The status shown, derived from the state.
    pub fn status(&self) -> Status {
        match (&self.phase, &self.paused) {
            (Phase::Finished(o), _) => o.status(),
            (Phase::RollingBack, _) => Status::RollingBack,
            (_, Some(_)) => Status::Paused,
            (Phase::AtGate(_), None) => Status::WaitingApproval,
            (Phase::Progressing, None) => Status::Progressing,
            (Phase::Pending, None) => Status::Pending,
        }
    }

    pub fn paused(&self) -> bool {
        self.paused.is_some()
    }

    pub fn promoting(&self) -> bool {
        self.promoting
    }

    /// The gate waited at.
    pub fn gate(&self) -> Option<&str> {
        match &self.phase {
            Phase::AtGate(g) => Some(g),
            _ => None,
        }
    }

    pub fn outcome(&self) -> Option<Outcome> {
        match self.phase {
            Phase::Finished(o) => Some(o),
            _ => None,
        }
    }

    /// Why the run is paused or how it ended, for people.
    pub fn reason(&self) -> Option<&str> {
        self.ended.as_deref().or(self.paused.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_derived_and_transitions_are_checked() {
        let mut s = RunState::new();
        assert_eq!(s.status(), Status::Pending);
        s.apply(Transition::Start).unwrap();
        s.apply(Transition::OpenGate("canary-50".into())).unwrap();
        assert_eq!(s.status(), Status::WaitingApproval);
        assert_eq!(s.gate(), Some("canary-50"));
        s.apply(Transition::Pause("by alice".into())).unwrap();
        assert_eq!(s.status(), Status::Paused);
        assert_eq!(
            s.apply(Transition::Pause("again".into())),
            Err("already paused".into())
        );
        s.apply(Transition::Resume).unwrap();
        assert_eq!(s.status(), Status::WaitingApproval, "back at the gate");
        assert_eq!(s.apply(Transition::Resume), Err("not paused".into()));
        s.apply(Transition::CloseGate).unwrap();
        assert_eq!((s.status(), s.gate()), (Status::Progressing, None));
        s.apply(Transition::Pause("x".into())).unwrap();
        s.apply(Transition::RollBack).unwrap();
        assert_eq!(s.status(), Status::RollingBack);
        assert!(!s.paused(), "a rollback is never left paused");
        assert!(s.apply(Transition::Pause("y".into())).is_err());
        s.apply(Transition::Finish(Outcome::RolledBack, "done".into()))
            .unwrap();
        assert_eq!(s.status(), Status::RolledBack);
        assert_eq!(s.outcome(), Some(Outcome::RolledBack));
        assert_eq!(s.reason(), Some("done"));
        assert!(s.apply(Transition::Start).is_err());
    }

    #[test]
    fn promote_clears_pause_and_gate() {
        let mut s = RunState::new();
        s.apply(Transition::Start).unwrap();
        s.apply(Transition::OpenGate("g".into())).unwrap();
        s.apply(Transition::Pause("p".into())).unwrap();
        s.apply(Transition::Promote).unwrap();
        assert_eq!((s.status(), s.gate()), (Status::Progressing, None));
        assert!(s.promoting() && !s.paused());
    }
}
