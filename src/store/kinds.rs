//! The words the store records about runs and revisions, as enums decoded once when a row is
//! read (an unknown word in a row is a data error, never a default).
//!
//! Owns: [`Status`], [`Outcome`], [`RunKind`] and [`RevisionState`], and reading them from rows.
//! Must not touch: when they change (the engine decides that).

use rusqlite::Row;

use crate::spec::keyword::{keyword, Keyword};

keyword! {
    /// Where a run stands.
    pub enum Status (default Pending) {
        Pending = "pending",
        Progressing = "progressing",
        Paused = "paused",
        WaitingApproval = "waiting_approval",
        RollingBack = "rolling_back",
        Succeeded = "succeeded",
        RolledBack = "rolled_back",
        Failed = "failed",
    }
}

keyword! {
    /// How a run ended.
    pub enum Outcome (default Failed) {
        Succeeded = "succeeded",
        RolledBack = "rolled_back",
        Failed = "failed",
    }
}

impl Outcome {
    /// The CLI exit code for this outcome.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Succeeded => 0,
            Outcome::RolledBack | Outcome::Failed => 1,
        }
    }

    /// The status a run has once it ended this way.
    pub fn status(self) -> Status {
        match self {
            Outcome::Succeeded => Status::Succeeded,
            Outcome::RolledBack => Status::RolledBack,
            Outcome::Failed => Status::Failed,
        }
    }
}

keyword! {
    /// What a run does: deploy a spec, promote a verified run to the next environment, or roll
    /// a finished deployment back.
    pub enum RunKind (default Deploy) {
        Deploy = "deploy",
        Promote = "promote",
        Rollback = "rollback",
    }
}

keyword! {
    /// A revision's place in its component's history.
    pub enum RevisionState (default Deploying) {
        /// Being rolled out by its run.
        Deploying = "deploying",
        /// Serving: the one a next deployment replaces.
        Active = "active",
        /// Replaced by a later revision that succeeded.
        Retired = "retired",
        /// Its run failed: never a rollback target.
        Failed = "failed",
        /// Its run was rolled back: never a rollback target.
        RolledBack = "rolled_back",
    }
}

impl RevisionState {
    /// Failed or rolled back: never a rollback target.
    pub fn is_bad(self) -> bool {
        match self {
            RevisionState::Failed | RevisionState::RolledBack => true,
            RevisionState::Deploying | RevisionState::Active | RevisionState::Retired => false,
        }
    }
}

/// Column `i` of a row as a keyword; an unknown word is a conversion error naming it.
pub(crate) fn word<K: Keyword>(r: &Row, i: usize) -> rusqlite::Result<K> {
    let s = r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })?;
    K::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            K::unknown(s).into(),
        )
    })
}

/// An optional keyword column.
pub(crate) fn opt_word<K: Keyword>(r: &Row, i: usize) -> rusqlite::Result<Option<K>> {
    match r.get_ref(i)? {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => word(r, i).map(Some),
    }
}
