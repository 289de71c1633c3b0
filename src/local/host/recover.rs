//! A new host worker taking over from the one before it.
//!
//! It reads what the store says ran, finds this host's processes in /proc, adopts every
//! instance still running as what it was started as (its pid recorded or found by its
//! `CUTOVER_INSTANCE` mark, its ports recorded or read from its `PORT_*` variables), starts only
//! the instances that are gone, kills what nobody accounts for, restores the weights, and only
//! then opens the routers (on the listen sockets inherited from the supervisor: connections that
//! arrived meanwhile wait in the backlog and are served now).
//!
//! Owns: matching records to processes, and the order of recovery. Must not touch: the API
//! socket, the store's other tables.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::super::probe::{self, ProbeSpec, ProbeStatus};
use super::super::process::{self, Owned};
use super::super::router::Backend;
use super::super::table::{self, HostInstance, HostRevision};
use super::super::upstream::Idle;
use super::{launch, Host};
use crate::provider::{RevisionKey, RevisionSpec};

/// A process an earlier host left running as an instance: to adopt rather than restart.
#[derive(Debug, Clone, PartialEq)]
pub struct Adoptable {
    pub pid: u32,
    pub ports: BTreeMap<String, u16>,
}

/// One recorded revision: its key, replicas and port names.
pub struct Wanted {
    pub key: String,
    pub replicas: u32,
    pub port_names: Vec<String>,
}

/// Which live processes to adopt as which instance, and which to kill: an instance's process
/// leads its own group and carries its id; the recorded pid wins among look-alikes; ports come
/// from the record when it names this pid, else from the process's environment. Any process of
/// this host that is not an adopted instance or in an adopted instance's group is killed.
pub fn plan(
    wanted: &[Wanted],
    recorded: &[HostInstance],
    found: &[Owned],
) -> (BTreeMap<String, Adoptable>, Vec<Owned>) {
    let recorded: BTreeMap<&str, &HostInstance> = recorded
        .iter()
        .map(|r| (r.instance_id.as_str(), r))
        .collect();
    let mut adopt = BTreeMap::new();
    for w in wanted {
        for replica in 0..w.replicas {
            let id = format!("{}#{replica}", w.key);
            let rec = recorded.get(id.as_str());
            let mut candidates: Vec<&Owned> = found
                .iter()
                .filter(|o| o.leads_its_group() && o.instance.as_deref() == Some(id.as_str()))
                .collect();
            candidates.sort_by_key(|o| (rec.and_then(|r| r.pid) != Some(o.pid), o.pid));
            let Some(o) = candidates.first() else {
                continue;
            };
            let ports: Option<BTreeMap<String, u16>> = match rec {
                Some(r)
                    if r.pid == Some(o.pid)
                        && w.port_names.iter().all(|n| r.ports.contains_key(n)) =>
                {
                    Some(r.ports.clone())
                }
                _ => w
                    .port_names
                    .iter()
                    .map(|n| {
                        o.port_env
                            .get(&launch::port_env(n))
                            .map(|p| (n.clone(), *p))
                    })
                    .collect(),
            };
            if let Some(ports) = ports {
                adopt.insert(id, Adoptable { pid: o.pid, ports });
            }
        }
    }
    let groups: std::collections::BTreeSet<u32> = adopt.values().map(|a| a.pid).collect();
    let stale = found
        .iter()
        .filter(|o| !groups.contains(&o.pgid))
        .cloned()
        .collect();
    (adopt, stale)
}

/// Kill a process left behind (and its group, if it leads one).
fn kill(o: &Owned) {
    if o.leads_its_group() {
        process::signal_group(o.pid, libc::SIGKILL);
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(o.pid as i32, libc::SIGKILL);
    }
}

/// Check an adopted instance once, now: ready at once if it passes.
pub async fn probe_now(spec: &ProbeSpec, backend: &Backend, status: &Mutex<ProbeStatus>) {
    let conn = Arc::new(Idle::default());
    let timeout = spec.timeout.min(Duration::from_secs(1));
    let ok = probe::check_once(&spec.check, timeout, &conn).await.is_ok();
    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
    s.kind = spec.check.kind().to_string();
    if ok {
        s.ready = true;
        s.consecutive_successes = spec.success_threshold;
        backend.ready.store(true, Ordering::Relaxed);
    }
}

impl Host {
    /// Take over what the store says ran: adopt the instances still running, start the others,
    /// kill what nobody accounts for, then open the routers.
    pub async fn recover(&self) {
        self.recovering.store(true, Ordering::Relaxed);
        let (rows, recorded) = match self
            .store
            .call(|s| Ok((table::all(s)?, table::instances(s).unwrap_or_default())))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read what the host ran: {e}");
                (Vec::new(), Vec::new())
            }
        };
        let host_id = self.host_id.clone();
        let found = tokio::task::spawn_blocking(move || process::scan_owned(&host_id))
            .await
            .unwrap_or_default();
        let mut revs: Vec<(HostRevision, RevisionSpec)> = Vec::new();
        for row in rows {
            match serde_json::from_str::<RevisionSpec>(&row.spec_json) {
                Ok(spec) => revs.push((row, spec)),
                Err(_) => tracing::error!("{}: unreadable record; dropped", row.rev_key),
            }
        }
        let wanted: Vec<Wanted> = revs
            .iter()
            .map(|(row, spec)| Wanted {
                key: row.rev_key.clone(),
                replicas: row.replicas,
                port_names: launch::port_names(spec),
            })
            .collect();
        let (mut adopt, stale) = plan(&wanted, &recorded, &found);
        for o in &stale {
            kill(o);
        }
        for a in adopt.values() {
            launch::taken(&a.ports);
        }
        let adopting = adopt.len();
        let mut weights: BTreeMap<String, Vec<(RevisionKey, u32)>> = BTreeMap::new();
        for (row, spec) in &revs {
            match self
                .apply_revision_with(spec, row.replicas, &mut adopt)
                .await
            {
                Ok(()) => weights
                    .entry(row.component.clone())
                    .or_default()
                    .push((RevisionKey(row.rev_key.clone()), row.weight)),
                Err(e) => tracing::error!("cannot bring back {}: {e}", row.rev_key),
            }
        }
        // Meant for a revision that could not come back: nobody accounts for it now.
        for (id, a) in &adopt {
            tracing::warn!("{id}: process {} left unadopted; killed", a.pid);
            process::signal_group(a.pid, libc::SIGKILL);
        }
        for (comp, w) in weights {
            if let Err(e) = self.set_weights(&comp, &w).await {
                tracing::error!("cannot restore weights of {comp}: {e}");
            }
        }
        self.recovering.store(false, Ordering::Relaxed);
        {
            let comps = self.comps.lock().await;
            for c in comps.values() {
                c.router.open();
            }
        }
        // Sockets of components that are gone: the supervisor closes its copies.
        let unclaimed: Vec<String> =
            std::mem::take(&mut *self.inherited.lock().unwrap_or_else(|e| e.into_inner()))
                .into_keys()
                .collect();
        for comp in unclaimed {
            if let Some(sup) = &self.supervisor {
                sup.release(&comp);
            }
        }
        if adopting > 0 || !stale.is_empty() {
            tracing::info!(
                "took over: adopted {} instance(s) still running, killed {} process(es) nobody accounts for",
                adopting - adopt.len(),
                stale.len()
            );
        }
        self.note_change();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(pid: u32, pgid: u32, instance: Option<&str>, port: Option<u16>) -> Owned {
        let mut port_env = BTreeMap::new();
        if let Some(p) = port {
            port_env.insert("PORT_HTTP".to_string(), p);
        }
        Owned {
            pid,
            pgid,
            instance: instance.map(str::to_string),
            port_env,
        }
    }

    fn ports(p: u16) -> BTreeMap<String, u16> {
        let mut m = BTreeMap::new();
        m.insert("http".to_string(), p);
        m
    }

    #[test]
    fn live_instances_are_adopted_and_the_rest_is_killed() {
        let wanted = [Wanted {
            key: "web@1.r1".into(),
            replicas: 3,
            port_names: vec!["http".into()],
        }];
        let recorded = [HostInstance {
            instance_id: "web@1.r1#0".into(),
            rev_key: "web@1.r1".into(),
            replica: 0,
            pid: Some(100),
            ports: ports(8000),
        }];
        let found = [
            // Replica 0 as recorded.
            owned(100, 100, Some("web@1.r1#0"), Some(8000)),
            // A child of replica 0 (its group): kept with it.
            owned(101, 100, Some("web@1.r1#0"), Some(8000)),
            // Replica 1, restarted after the record was written: found by its mark, ports
            // from its environment.
            owned(200, 200, Some("web@1.r1#1"), Some(8001)),
            // Replica 2 is gone. An instance of a revision nobody records: killed.
            owned(300, 300, Some("old@0.r0#0"), Some(8002)),
            // A process that left its instance's group: killed.
            owned(400, 400, None, None),
        ];
        let (adopt, stale) = plan(&wanted, &recorded, &found);
        assert_eq!(
            adopt,
            BTreeMap::from([
                (
                    "web@1.r1#0".to_string(),
                    Adoptable {
                        pid: 100,
                        ports: ports(8000)
                    }
                ),
                (
                    "web@1.r1#1".to_string(),
                    Adoptable {
                        pid: 200,
                        ports: ports(8001)
                    }
                ),
            ])
        );
        let killed: Vec<u32> = stale.iter().map(|o| o.pid).collect();
        assert_eq!(killed, [300, 400]);
    }

    #[test]
    fn the_recorded_pid_wins_and_a_process_without_its_ports_is_not_adopted() {
        let wanted = [Wanted {
            key: "web@1.r1".into(),
            replicas: 2,
            port_names: vec!["http".into()],
        }];
        let recorded = [HostInstance {
            instance_id: "web@1.r1#0".into(),
            rev_key: "web@1.r1".into(),
            replica: 0,
            pid: Some(150),
            ports: ports(8000),
        }];
        let found = [
            // A look-alike that made its own group, and the recorded process.
            owned(120, 120, Some("web@1.r1#0"), Some(8000)),
            owned(150, 150, Some("web@1.r1#0"), Some(8000)),
            // No record and no PORT_HTTP: its ports are unknown, so it is restarted.
            owned(250, 250, Some("web@1.r1#1"), None),
        ];
        let (adopt, stale) = plan(&wanted, &recorded, &found);
        assert_eq!(adopt.len(), 1);
        assert_eq!(adopt["web@1.r1#0"].pid, 150);
        let killed: Vec<u32> = stale.iter().map(|o| o.pid).collect();
        assert_eq!(killed, [120, 250]);
    }
}
