//! Shutting an engine down, before its process exits: stop taking runs and commands, pause the
//! runs still going, stop polling the store for commands, and drain the webhook deliveries in
//! flight and the journal's queue for a bounded time.
//!
//! Owns: the order of shutting down and its report. Must not touch: how a run pauses
//! (`control`) or how webhooks are delivered (`governance::notify`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Command, Engine, EngineError, Refusal, Status};

/// What a shutdown did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shutdown {
    /// Runs this shutdown paused and released in the store, for a later console (or another
    /// process) to take over. Runs paused before are left as their owner left them: released,
    /// or taken over once this process has gone.
    pub paused: Vec<i64>,
    /// Runs that could not be paused, and why; they are not released.
    pub not_paused: Vec<(i64, String)>,
    /// Webhook notices still not delivered after the grace (dropped, and logged).
    pub undelivered: Vec<String>,
    /// What the journal could not write to the store within the grace (lost when the process
    /// exits; a run whose end is among it stays unfinished in the store, to be taken over).
    pub journal: super::journal::JournalLag,
}

impl Engine {
    /// Refuse what a shutting-down engine no longer takes.
    pub(super) fn accepting(&self) -> Result<(), EngineError> {
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(EngineError::Refused(Refusal::ShuttingDown));
        }
        Ok(())
    }

    /// Shut down: from now on starts, adoptions and commands are refused
    /// ([`Refusal::ShuttingDown`]); the store is no longer polled for commands; each run this
    /// engine still drives and that is not paused already is paused as its owner (within `grace`
    /// in all) and released in the store; then the webhook deliveries in flight get up to
    /// `grace` of real time to end, and the journal's queue up to `grace` to be written. So it
    /// returns within about three times `grace`. What was not done is in the report and the log.
    pub async fn shutdown(&self, grace: Duration) -> Shutdown {
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.stop.store(true, Ordering::Relaxed);
        let mut report = Shutdown::default();
        let deadline = tokio::time::Instant::now() + grace;
        let actor = crate::identity::current_user();
        let mut runs = self.owned_runs();
        runs.sort_unstable();
        for run in runs {
            let status = self.inner.snapshots.borrow().get(&run).map(|s| s.status);
            if status == Some(Status::Paused) {
                continue;
            }
            let paused =
                tokio::time::timeout_at(deadline, self.send(run, Command::Pause, &actor, true))
                    .await;
            let why = match paused {
                Ok(Ok(_)) => None,
                // It ended meanwhile: nothing to pause or release.
                Ok(Err(EngineError::NotHere(_))) => continue,
                Ok(Err(e)) => Some(e.to_string()),
                Err(_) => Some(format!("no answer within {grace:?}")),
            };
            if let Some(why) = why {
                tracing::warn!(run, "shutting down: cannot pause: {why}");
                report.not_paused.push((run, why));
                continue;
            }
            let store = self.inner.store.clone();
            if let Err(e) = store.call(move |s| s.release_run(run)).await {
                tracing::warn!(run, "shutting down: cannot release the run: {e}");
            }
            tracing::info!(run, "shutting down: paused and released");
            report.paused.push(run);
        }
        if let Some(hooks) = &self.inner.webhooks {
            report.undelivered = hooks.drain(grace).await;
        }
        if !self.flush_journal(grace).await {
            report.journal = self.journal_lag();
            tracing::error!("shutting down: journal not written: {:?}", report.journal);
        }
        report
    }
}
