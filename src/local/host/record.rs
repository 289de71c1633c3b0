//! Recording what the host runs in the store, without ever waiting on it for long.
//!
//! Owns: the recorder task (the whole state written after each change, retried every second
//! while the store fails), the bounded wait of an answer for its record, and the snapshot of
//! what runs as the store's rows. Must not touch: what runs.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::super::table;
use super::{Comp, Host};

impl Host {
    /// Record what runs, now and after every change, until `stop_all`; a write that fails is
    /// retried every second (the failure is logged once, and its end).
    pub fn start_recorder(self: &Arc<Self>) {
        let host = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match host.record().await {
                    Ok(false) => return,
                    Ok(true) => {
                        if failing {
                            tracing::warn!("what the host runs is recorded again");
                        }
                        failing = false;
                        // A change made while recording left a permit: no change is missed.
                        host.changed.notified().await;
                    }
                    Err(e) => {
                        if !failing {
                            tracing::error!(
                                "cannot record what the host runs (carried out anyway; retrying every second): {e}"
                            );
                        }
                        failing = true;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }

    /// Ask the recorder to write what runs.
    pub(super) fn note_change(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// Wait (at most `within`) until every change made so far is recorded: in the normal case
    /// a request is answered once what it did is in the store, so a worker killed right after
    /// brings it back; a failing or locked store delays the answer by `within` at most.
    pub(super) async fn recorded_within(&self, within: Duration) {
        let want = self.generation.load(Ordering::SeqCst);
        let mut rx = self.recorded.subscribe();
        if tokio::time::timeout(within, rx.wait_for(|g| *g >= want))
            .await
            .is_err()
        {
            tracing::debug!("answering before the store has recorded the change");
        }
    }

    /// Write what runs to the store: `Ok(false)` once stopped.
    pub(super) async fn record(&self) -> Result<bool, String> {
        let stopped = self.recorder.lock().await;
        if *stopped {
            return Ok(false);
        }
        if self.recovering.load(Ordering::Relaxed) {
            return Ok(true);
        }
        let (generation, revs, instances) = {
            let comps = self.comps.lock().await;
            // Read under the lock: a change counted here is in the snapshot (a change is
            // counted after it is made).
            let g = self.generation.load(Ordering::SeqCst);
            let (r, i) = snapshot(&comps);
            (g, r, i)
        };
        self.store
            .call(move |s| table::replace_all(s, &revs, &instances))
            .await
            .map_err(|e| e.to_string())?;
        self.recorded.send_if_modified(|g| {
            let newer = generation > *g;
            if newer {
                *g = generation;
            }
            newer
        });
        Ok(true)
    }
}

/// What runs, as the store records it.
fn snapshot(
    comps: &BTreeMap<String, Comp>,
) -> (Vec<table::HostRevision>, Vec<table::HostInstance>) {
    let mut revs = Vec::new();
    let mut instances = Vec::new();
    for (id, c) in comps {
        let weights = c.router.weights();
        for (key, r) in &c.revs {
            revs.push(table::HostRevision {
                rev_key: key.0.clone(),
                component: id.clone(),
                spec_json: serde_json::to_string(&r.spec).unwrap_or_default(),
                replicas: r.instances.len() as u32,
                weight: weights
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, w)| *w)
                    .unwrap_or(0),
            });
            for i in &r.instances {
                instances.push(table::HostInstance {
                    instance_id: i.id.clone(),
                    rev_key: key.0.clone(),
                    replica: i.replica,
                    pid: i.proc.snapshot().pid,
                    ports: i.ports.clone(),
                });
            }
        }
    }
    (revs, instances)
}
