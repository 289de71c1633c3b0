//! The engine's journal writer: one ordered queue per engine into the state store, so that a run
//! never waits on the disk. A run hands its lines (journal events, audit records, its state, its
//! end, answers to commands) to the queue and goes on; one task writes them in order, many at a
//! time, and while the store refuses (another process holds it, the disk is full, the file is
//! read-only, an I/O error) it keeps them and tries again with capped backoff, telling the
//! operator (`journal_delayed`, then `journal_caught_up` once written, which is journaled too; a
//! line the store rejects for good is `journal_lost`).
//!
//! While the store is healthy a line is written before its event is broadcast (bounded by
//! [`EMIT_WAIT`]), so whoever hears an event and reads the store finds it there; while it is not,
//! events are broadcast at once.
//!
//! Owns: the queue, its writer task, the lag it reports. Must not touch: what a line says (the
//! run) or the SQL (`store::journal`). The writer publishes its own notices and never queues
//! into itself except the one `journal_caught_up` line per run after a delay.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::event::{Event, EventKind};
use super::{Engine, Inner};
use crate::store::{faults, Fault, Store, Write};

/// How long an event waits for its line to be written before it is broadcast, while the store is
/// healthy. Past it (or while the store is failing) it is broadcast without waiting.
pub const EMIT_WAIT: Duration = Duration::from_millis(500);

/// How long the store may be busy before the operator is told (a short wait is normal when
/// processes share it); a full disk, a read-only file or an I/O error is told at once.
pub const BUSY_NOTICE: Duration = Duration::from_secs(1);

/// While the delay lasts, it is told again this often (with the lines waiting then).
pub const NOTICE_REPEAT: Duration = Duration::from_secs(10);

/// The longest pause between two tries of a batch.
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// At most this many queued jobs go in one transaction.
const MAX_BATCH: usize = 1000;

/// What the writer has not written yet, and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalLag {
    /// Journal lines (events) queued and not yet written.
    pub lines: usize,
    /// The store's error, while writes fail.
    pub error: Option<String>,
    /// Runs whose end is still to be written (they stay unfinished in the store until it is).
    pub unfinished: Vec<i64>,
}

/// The queue's handle in the engine; the writer is started on first use (inside the runtime).
pub(super) struct Journal {
    tx: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    lag: Arc<Mutex<Lag>>,
    /// True while writes fail: a line waiting for its write stops waiting at once.
    failing: Arc<watch::Sender<bool>>,
}

impl Default for Journal {
    fn default() -> Journal {
        Journal {
            tx: Mutex::new(None),
            lag: Arc::default(),
            failing: Arc::new(watch::channel(false).0),
        }
    }
}

#[derive(Default)]
struct Lag {
    /// Per run: its deployment and the lines queued for it.
    runs: BTreeMap<i64, (String, usize)>,
    /// Runs whose `Finish` is queued.
    finishes: BTreeMap<i64, usize>,
    /// Runs whose end the store rejected for good, and why.
    lost_finishes: BTreeMap<i64, String>,
    failing: Option<Failing>,
}

struct Failing {
    since: Instant,
    /// The same, on the wall clock (RFC 3339).
    since_ts: String,
    error: String,
    fault: Fault,
    told: Option<Instant>,
}

enum Job {
    Write {
        deployment: String,
        writes: Vec<Write>,
        done: Option<oneshot::Sender<()>>,
    },
    Flush(oneshot::Sender<()>),
}

fn lines_of(writes: &[Write]) -> usize {
    writes
        .iter()
        .filter(|w| matches!(w, Write::Event { .. }))
        .count()
}

impl Lag {
    fn add(&mut self, deployment: &str, writes: &[Write], sign: isize) {
        for w in writes {
            let Some(run) = w.run() else { continue };
            if matches!(w, Write::Finish { .. }) {
                let n = self.finishes.entry(run).or_default();
                *n = n.saturating_add_signed(sign);
                if *n == 0 {
                    self.finishes.remove(&run);
                }
            }
            if matches!(w, Write::Event { .. }) {
                let e = self
                    .runs
                    .entry(run)
                    .or_insert_with(|| (deployment.to_string(), 0));
                e.1 = e.1.saturating_add_signed(sign);
                if e.1 == 0 {
                    self.runs.remove(&run);
                }
            }
        }
    }
}

impl Journal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Lag> {
        self.lag.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Engine {
    /// Queue writes (in order, after everything queued before); the receiver fires once they
    /// are in the store. Never waits.
    pub(crate) fn journal(&self, deployment: &str, writes: Vec<Write>) -> oneshot::Receiver<()> {
        let (done, rx) = oneshot::channel();
        let j = &self.inner.journal;
        j.lock().add(deployment, &writes, 1);
        let job = Job::Write {
            deployment: deployment.to_string(),
            writes,
            done: Some(done),
        };
        if let Err(mpsc::error::SendError(Job::Write { writes, .. })) = self.journal_tx().send(job)
        {
            // Only when the runtime is going away: say so, never silently.
            j.lock().add(deployment, &writes, -1);
            tracing::error!(
                "{} journal write(s) of {deployment} dropped: the journal writer has stopped",
                writes.len()
            );
        }
        rx
    }

    /// Wait (up to [`EMIT_WAIT`]) for queued writes, but only while the store is healthy: the
    /// first failed try ends the wait.
    pub(crate) async fn journal_settle(&self, written: oneshot::Receiver<()>) {
        let mut failing = self.inner.journal.failing.subscribe();
        if *failing.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = written => {}
            _ = failing.wait_for(|f| *f) => {}
            _ = tokio::time::sleep(EMIT_WAIT) => {}
        }
    }

    /// Wait up to `bound` until everything queued so far is written; true when it is.
    pub async fn flush_journal(&self, bound: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        if self.journal_tx().send(Job::Flush(tx)).is_err() {
            return self.journal_lag().lines == 0;
        }
        matches!(tokio::time::timeout(bound, rx).await, Ok(Ok(())))
    }

    /// What is queued and not yet written, and the store's error while writes fail.
    pub fn journal_lag(&self) -> JournalLag {
        let lag = self.inner.journal.lock();
        JournalLag {
            lines: lag.runs.values().map(|(_, n)| n).sum(),
            error: lag.failing.as_ref().map(|f| f.error.clone()),
            unfinished: lag.finishes.keys().copied().collect(),
        }
    }

    /// A sentence for a run's last line when its end is not in the store: rejected for good,
    /// or (when the queue was not `flushed`) lines still waiting; `None` when all is written.
    pub(crate) fn journal_note(&self, run: i64, flushed: bool) -> Option<String> {
        if let Some(e) = self.inner.journal.lock().lost_finishes.remove(&run) {
            return Some(format!(
                "the run's end is NOT recorded in the state store: {e}"
            ));
        }
        if flushed {
            return None;
        }
        let lag = self.journal_lag();
        if lag.lines == 0 && lag.unfinished.is_empty() {
            return None;
        }
        Some(format!(
            "{} journal line(s) not yet written to the state store{}; they are written in order as soon as it takes them, while this process runs",
            lag.lines,
            lag.error.map(|e| format!(" ({e})")).unwrap_or_default()
        ))
    }

    fn journal_tx(&self) -> mpsc::UnboundedSender<Job> {
        let mut slot = self
            .inner
            .journal
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = slot.as_ref().filter(|t| !t.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = Writer {
            store: self.inner.store.clone(),
            engine: Arc::downgrade(&self.inner),
            lag: self.inner.journal.lag.clone(),
            failing: self.inner.journal.failing.clone(),
        };
        // Owned by the engine: it ends when the engine (the queue's only sender) is dropped.
        tokio::spawn(writer.run(rx));
        *slot = Some(tx.clone());
        tx
    }
}

struct Writer {
    store: Store,
    engine: Weak<Inner>,
    lag: Arc<Mutex<Lag>>,
    failing: Arc<watch::Sender<bool>>,
}

/// A job taken from the queue and not yet done.
struct Taken {
    deployment: String,
    writes: Vec<Write>,
    done: Vec<oneshot::Sender<()>>,
}

impl Writer {
    fn lag(&self) -> std::sync::MutexGuard<'_, Lag> {
        self.lag.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn run(self, mut rx: mpsc::UnboundedReceiver<Job>) {
        let mut batch: Vec<Taken> = Vec::new();
        let mut pause = faults::FIRST_PAUSE;
        // A note beside the store says this process is behind (for `status` elsewhere).
        let mut noted = false;
        loop {
            if batch.is_empty() {
                if noted && self.lag().failing.is_none() {
                    noted = !self.note(None).await;
                }
                match rx.recv().await {
                    Some(job) => take(&mut batch, job),
                    None => {
                        if noted {
                            self.note(None).await;
                        }
                        return;
                    }
                }
            }
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => take(&mut batch, job),
                    Err(_) => break,
                }
            }
            let writes: Arc<Vec<Write>> =
                Arc::new(batch.iter().flat_map(|t| t.writes.clone()).collect());
            let w = writes.clone();
            match self.store.call(move |s| s.write_all(&w)).await {
                Ok(()) => {
                    pause = faults::FIRST_PAUSE;
                    let follow = self.written(std::mem::take(&mut batch));
                    batch.extend(follow);
                }
                Err(e) => match e.fault() {
                    Some(fault) => {
                        if let Some(n) = self.failed(fault, e.to_string()) {
                            noted |= self.note(Some(n)).await;
                        }
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_BACKOFF);
                    }
                    None => {
                        let rest = self.one_by_one(std::mem::take(&mut batch)).await;
                        batch = rest;
                    }
                },
            }
        }
    }

    /// Write (or with `None` remove) this process's lag note beside the store; true when done.
    async fn note(&self, note: Option<crate::store::LagNote>) -> bool {
        self.store
            .call(move |s| {
                s.set_lag_note(note.as_ref());
                Ok(())
            })
            .await
            .is_ok()
    }

    /// A batch is in the store: count it off, answer its waiters, and after a delay tell
    /// everyone, and queue the `journal_caught_up` lines (returned, to go first in the next
    /// batch; the batch's waiters are answered once they are written too).
    fn written(&self, batch: Vec<Taken>) -> Vec<Taken> {
        self.written_then(batch, Vec::new())
    }

    /// As [`Writer::written`], with `first` (notices about the batch) to go before the rest.
    fn written_then(&self, batch: Vec<Taken>, mut first: Vec<Taken>) -> Vec<Taken> {
        let mut waiters = Vec::new();
        first.extend(self.count_off(batch, &mut waiters));
        let mut follow = first;
        match follow.last_mut() {
            Some(first) => first.done.extend(waiters),
            None => {
                for d in waiters {
                    let _ = d.send(());
                }
            }
        }
        follow
    }

    fn count_off(&self, batch: Vec<Taken>, waiters: &mut Vec<oneshot::Sender<()>>) -> Vec<Taken> {
        let mut per_run: BTreeMap<i64, (String, usize)> = BTreeMap::new();
        let failing = {
            let mut lag = self.lag();
            for t in &batch {
                lag.add(&t.deployment, &t.writes, -1);
            }
            lag.failing.take()
        };
        self.failing
            .send_if_modified(|f| std::mem::replace(f, false));
        for t in batch {
            for w in &t.writes {
                if let (Some(run), Write::Event { .. }) = (w.run(), w) {
                    per_run
                        .entry(run)
                        .or_insert_with(|| (t.deployment.clone(), 0))
                        .1 += 1;
                }
            }
            waiters.extend(t.done);
        }
        let Some(f) = failing.filter(|f| f.told.is_some()) else {
            return Vec::new();
        };
        let waited_ms = f.since.elapsed().as_millis() as u64;
        let Some(engine) = self.engine.upgrade().map(|inner| Engine { inner }) else {
            return Vec::new();
        };
        let mut follow = Vec::new();
        for (run, (deployment, lines)) in per_run {
            let ev = Event {
                ts: engine
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                deployment: deployment.clone(),
                run,
                kind: EventKind::JournalCaughtUp {
                    lines,
                    waited_ms,
                    error: f.error.clone(),
                },
            };
            let writes = vec![Write::Event {
                run,
                ts: ev.ts.clone(),
                kind: ev.kind.name().to_string(),
                json: serde_json::to_string(&ev).unwrap_or_default(),
            }];
            self.lag().add(&deployment, &writes, 1);
            follow.push(Taken {
                deployment,
                writes,
                done: Vec::new(),
            });
            engine.publish(ev);
        }
        follow
    }

    /// A try failed with a fault that may pass: remember it, and tell the operator when due
    /// (then the note for other processes is returned, to be written beside the store).
    fn failed(&self, fault: Fault, error: String) -> Option<crate::store::LagNote> {
        let now = Instant::now();
        self.failing
            .send_if_modified(|f| !std::mem::replace(f, true));
        let (tell, since_ts): (Vec<(i64, String, usize)>, String) = {
            let mut lag = self.lag();
            let f = lag.failing.get_or_insert(Failing {
                since: now,
                since_ts: crate::store::now_ts(),
                error: error.clone(),
                fault,
                told: None,
            });
            f.error = error.clone();
            f.fault = fault;
            let due = match f.told {
                None => f.fault != Fault::Busy || now - f.since >= BUSY_NOTICE,
                Some(t) => now - t >= NOTICE_REPEAT,
            };
            if !due {
                return None;
            }
            f.told = Some(now);
            let since_ts = f.since_ts.clone();
            (
                lag.runs
                    .iter()
                    .map(|(run, (dep, n))| (*run, dep.clone(), *n))
                    .collect(),
                since_ts,
            )
        };
        tracing::warn!("journal delayed: {error}");
        let note = crate::store::LagNote {
            pid: std::process::id() as i64,
            since: since_ts,
            error: error.clone(),
            runs: tell.clone(),
        };
        let Some(engine) = self.engine.upgrade().map(|inner| Engine { inner }) else {
            return Some(note);
        };
        for (run, deployment, lines) in tell {
            engine.publish(Event {
                ts: engine
                    .now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                deployment,
                run,
                kind: EventKind::JournalDelayed {
                    lines,
                    error: error.clone(),
                },
            });
        }
        Some(note)
    }

    /// The batch has a write the store rejects for good (not a passing fault): write the jobs
    /// one at a time, in order, and a job that is rejected one write at a time, dropping (and
    /// telling) each write that is rejected. Stops at a passing fault, returning what is left
    /// for the retry loop.
    async fn one_by_one(&self, batch: Vec<Taken>) -> Vec<Taken> {
        let mut rest = batch.into_iter();
        while let Some(mut t) = rest.next() {
            // The `journal_lost` lines of this job, to go right after it.
            let mut lost = Vec::new();
            let mut i = 0;
            let mut whole = true;
            while i < t.writes.len() {
                let part: Vec<Write> = if whole {
                    t.writes.clone()
                } else {
                    vec![t.writes[i].clone()]
                };
                let n = part.len();
                match self.store.call(move |s| s.write_all(&part)).await {
                    Ok(()) => {}
                    Err(e) if e.fault().is_some() => {
                        // What is written of this job is counted off; the rest waits.
                        let done: Vec<Write> = t.writes.drain(..i).collect();
                        self.lag().add(&t.deployment, &done, -1);
                        lost.push(t);
                        lost.extend(rest);
                        return lost;
                    }
                    Err(_) if whole && n > 1 => {
                        whole = false;
                        continue;
                    }
                    Err(e) => lost.extend(self.lost(&t.deployment, &t.writes[i], e.to_string())),
                }
                i += n;
            }
            // What follows (notices, then the jobs not tried yet) goes in the next batch, in
            // order; this job's waiters are answered once its notices are written.
            let mut follow = self.written_then(vec![t], lost);
            if !follow.is_empty() {
                follow.extend(rest);
                return follow;
            }
        }
        Vec::new()
    }

    /// The store rejected a write for good: it is not recorded. Tell (a run's end also as a
    /// failure, as the run would have); the `journal_lost` line to journal in its place is
    /// returned (none for a journal notice itself, so this never feeds on itself).
    fn lost(&self, deployment: &str, w: &Write, error: String) -> Option<Taken> {
        let one = std::slice::from_ref(w);
        // (Counted off with its job, by `written`.)
        if let Write::Finish { run, .. } = w {
            self.lag().lost_finishes.insert(*run, error.clone());
        }
        tracing::error!("a journal write of {deployment} was rejected by the state store: {error}");
        let (Some(run), Some(engine)) =
            (w.run(), self.engine.upgrade().map(|inner| Engine { inner }))
        else {
            return None;
        };
        let ts = engine
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut kinds = vec![EventKind::JournalLost {
            lines: lines_of(one),
            error: error.clone(),
        }];
        if matches!(w, Write::Finish { .. }) {
            kinds.push(EventKind::Failure {
                reason: format!("cannot record the outcome in the state store: {error}"),
            });
        }
        let mut line = None;
        for kind in kinds {
            let ev = Event {
                ts: ts.clone(),
                deployment: deployment.to_string(),
                run,
                kind,
            };
            let notice = matches!(w, Write::Event { kind, .. } if kind.starts_with("journal_"));
            if line.is_none() && !notice {
                let writes = vec![Write::Event {
                    run,
                    ts: ev.ts.clone(),
                    kind: ev.kind.name().to_string(),
                    json: serde_json::to_string(&ev).unwrap_or_default(),
                }];
                self.lag().add(deployment, &writes, 1);
                line = Some(Taken {
                    deployment: deployment.to_string(),
                    writes,
                    done: Vec::new(),
                });
            }
            engine.publish(ev);
        }
        line
    }
}

fn take(batch: &mut Vec<Taken>, job: Job) {
    match job {
        Job::Write {
            deployment,
            writes,
            done,
        } => batch.push(Taken {
            deployment,
            writes,
            done: done.into_iter().collect(),
        }),
        // Answered once everything before it is written.
        Job::Flush(tx) => match batch.last_mut() {
            Some(t) => t.done.push(tx),
            None => {
                let _ = tx.send(());
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use crate::store::{NewRun, RunKind};

    /// A platform these tests never drive (they only queue writes).
    struct Nowhere;

    #[async_trait::async_trait]
    impl crate::provider::Provider for Nowhere {
        fn kind(&self) -> crate::spec::ProviderKind {
            crate::spec::ProviderKind::Simulated
        }
        async fn apply_revision(
            &self,
            _: &crate::provider::RevisionSpec,
            _: u32,
        ) -> Result<(), ProviderError> {
            Err(nowhere())
        }
        async fn set_weights(
            &self,
            _: &str,
            _: &[(crate::provider::RevisionKey, u32)],
        ) -> Result<crate::provider::Split, ProviderError> {
            Err(nowhere())
        }
        async fn revision_status(
            &self,
            _: &str,
            _: &crate::provider::RevisionKey,
        ) -> Result<crate::provider::RevisionStatus, ProviderError> {
            Err(nowhere())
        }
        async fn metrics(
            &self,
            _: &str,
            _: &crate::provider::RevisionKey,
            _: Duration,
        ) -> Result<crate::provider::Metrics, ProviderError> {
            Err(nowhere())
        }
        async fn remove_revision(
            &self,
            _: &str,
            _: &crate::provider::RevisionKey,
        ) -> Result<(), ProviderError> {
            Err(nowhere())
        }
    }

    use crate::provider::ProviderError;

    fn nowhere() -> ProviderError {
        ProviderError::Unavailable("nowhere".into(), "a test platform".into())
    }

    fn engine(store: &Store) -> Engine {
        Engine::new(EngineConfig {
            store: store.clone(),
            provider: Arc::new(Nowhere),
            signals: Arc::new(crate::engine::Builtin::default()),
            virtual_clock: false,
            poll_store: false,
            governance: Default::default(),
            wall_clock_gates: false,
        })
    }

    fn new_run(store: &Store) -> i64 {
        store
            .create_run(&NewRun {
                deployment: "app".into(),
                kind: RunKind::Deploy,
                name: "app".into(),
                version: "1".into(),
                strategy: crate::spec::Strategy::Canary,
                environment: "dev".into(),
                provider: crate::spec::ProviderKind::Simulated,
                dry_run: true,
                spec_json: "{}".into(),
                plan_json: "{}".into(),
                initiator: "me".into(),
            })
            .unwrap()
    }

    fn line(run: i64, kind: &str) -> Write {
        Write::Event {
            run,
            ts: crate::store::now_ts(),
            kind: kind.into(),
            json: "{}".into(),
        }
    }

    fn kinds(store: &Store, run: i64) -> Vec<String> {
        store
            .events(run, 0)
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lines_wait_in_order_while_the_store_is_held_and_the_operator_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let run = new_run(&store);
        let e = engine(&store);
        let mut rx = e.subscribe();
        let path = store.path().to_path_buf();
        let (held_tx, held) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let c = rusqlite::Connection::open(path).unwrap();
            c.execute_batch("BEGIN EXCLUSIVE").unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(1800));
            c.execute_batch("COMMIT").unwrap();
        });
        held.recv().unwrap();
        let t0 = std::time::Instant::now();
        for k in ["a", "b", "c"] {
            drop(e.journal("app", vec![line(run, k)]));
        }
        // Queuing never waits.
        assert!(
            t0.elapsed() < Duration::from_millis(100),
            "{:?}",
            t0.elapsed()
        );
        let told = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                if let Ok(ev) = rx.recv().await {
                    if let EventKind::JournalDelayed { lines, error } = ev.kind {
                        return (lines, error);
                    }
                }
            }
        })
        .await
        .expect("journal_delayed within 3 s");
        assert_eq!(told.0, 3);
        assert!(told.1.contains("locked"), "{}", told.1);
        assert!(
            t0.elapsed() >= BUSY_NOTICE,
            "a short busy spell is not told"
        );
        assert_eq!(e.journal_lag().lines, 3);
        assert!(kinds(&store, run).is_empty());
        holder.join().unwrap();
        assert!(e.flush_journal(Duration::from_secs(5)).await);
        assert_eq!(kinds(&store, run), ["a", "b", "c", "journal_caught_up"]);
        assert_eq!(e.journal_lag(), JournalLag::default());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_line_the_store_rejects_for_good_is_told_and_the_others_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let run = new_run(&store);
        let e = engine(&store);
        let mut rx = e.subscribe();
        drop(e.journal("app", vec![line(run, "a")]));
        // The store rejects line `x`, every time.
        store
            .with_conn(|c| {
                c.execute_batch(
                    "CREATE TRIGGER no_x BEFORE INSERT ON events WHEN NEW.kind = 'x'
                     BEGIN SELECT RAISE(ABORT, 'injected: rejected'); END;",
                )
            })
            .unwrap();
        drop(e.journal("app", vec![line(run, "b"), line(run, "x"), line(run, "c")]));
        drop(e.journal("app", vec![line(run, "d")]));
        assert!(e.flush_journal(Duration::from_secs(5)).await);
        assert_eq!(kinds(&store, run), ["a", "b", "c", "journal_lost", "d"]);
        let mut lost = false;
        while let Ok(ev) = rx.try_recv() {
            lost |= matches!(ev.kind, EventKind::JournalLost { lines: 1, .. });
        }
        assert!(lost, "the operator hears of the lost line");
        assert_eq!(e.journal_lag(), JournalLag::default());
    }
}
