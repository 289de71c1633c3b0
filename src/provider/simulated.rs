//! The simulated provider: instances, weights and metrics in memory, on tokio's clock.
//!
//! Owns: a fake platform for tests and `apply --dry-run`, whose revisions can be told to become
//! unhealthy or report bad metrics ([`Fault`]). Must not touch: real processes, sockets or files.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::*;

/// Something to go wrong in the simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// Only revisions of this version; `None` means every revision started during the run.
    pub version: Option<String>,
    pub kind: FaultKind,
    /// How long after the revision starts the fault begins.
    pub after: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Instances never become ready, or stop being ready.
    Unhealthy,
    /// A metric reports this value.
    Metric(String, f64),
    /// The provider cannot start the revision at all.
    StartError,
}

impl Fault {
    /// Parse `[VERSION:]unhealthy|start-error|METRIC=VALUE[@AFTER]`, e.g. `error_rate=0.3@2m`.
    pub fn parse(s: &str) -> Result<Fault, String> {
        let (body, after) = match s.rsplit_once('@') {
            Some((b, a)) => (b, Duration::from_millis(crate::spec::parse_duration(a)?)),
            None => (s, Duration::ZERO),
        };
        let (version, what) = match body.split_once(':') {
            Some((v, w)) => (Some(v.to_string()), w),
            None => (None, body),
        };
        let kind = match what {
            "unhealthy" => FaultKind::Unhealthy,
            "start-error" => FaultKind::StartError,
            _ => match what.split_once('=') {
                Some((name, value)) if !name.is_empty() => {
                    let v: f64 = value
                        .parse()
                        .map_err(|_| format!("fault `{s}`: `{value}` is not a number"))?;
                    FaultKind::Metric(name.to_string(), v)
                }
                _ => {
                    return Err(format!(
                        "fault `{s}`: expected unhealthy, start-error or METRIC=VALUE, optionally VERSION: before and @DURATION after"
                    ))
                }
            },
        };
        Ok(Fault {
            version,
            kind,
            after,
        })
    }
}

#[derive(Debug)]
struct SimRevision {
    version: String,
    seeded: bool,
    started: Vec<Instant>,
    first_started: Instant,
    ready_after: Duration,
}

#[derive(Debug, Default)]
struct SimComponent {
    revisions: BTreeMap<RevisionKey, SimRevision>,
    weights: BTreeMap<RevisionKey, u32>,
}

/// A platform in memory.
#[derive(Debug, Default)]
pub struct Simulated {
    state: Mutex<BTreeMap<String, SimComponent>>,
    faults: Vec<Fault>,
}

impl Simulated {
    pub fn new(faults: Vec<Fault>) -> Simulated {
        Simulated {
            state: Mutex::new(BTreeMap::new()),
            faults,
        }
    }

    /// Put an already-running revision in place (what the previous deployment left), at full weight.
    pub fn seed(&self, component: &str, key: RevisionKey, version: &str, replicas: u32) {
        let now = Instant::now();
        let mut st = self.lock();
        let c = st.entry(component.to_string()).or_default();
        c.revisions.insert(
            key.clone(),
            SimRevision {
                version: version.to_string(),
                seeded: true,
                started: vec![now; replicas as usize],
                first_started: now,
                ready_after: Duration::ZERO,
            },
        );
        c.weights.insert(key, 100);
    }

    /// Current weights of a component (for tests and snapshots).
    pub fn weights(&self, component: &str) -> BTreeMap<RevisionKey, u32> {
        self.lock()
            .get(component)
            .map(|c| c.weights.clone())
            .unwrap_or_default()
    }

    /// Revisions a component has running, with their instance counts.
    pub fn revisions(&self, component: &str) -> BTreeMap<RevisionKey, usize> {
        self.lock()
            .get(component)
            .map(|c| {
                c.revisions
                    .iter()
                    .map(|(k, r)| (k.clone(), r.started.len()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SimComponent>> {
        // A poisoned lock only means a test thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn active_faults<'a>(
        &'a self,
        rev: &'a SimRevision,
        now: Instant,
    ) -> impl Iterator<Item = &'a FaultKind> + 'a {
        self.faults.iter().filter_map(move |f| {
            let applies = match &f.version {
                Some(v) => v == &rev.version,
                None => !rev.seeded,
            };
            (applies && now.duration_since(rev.first_started) >= f.after).then_some(&f.kind)
        })
    }
}

#[async_trait]
impl Provider for Simulated {
    fn kind(&self) -> crate::spec::ProviderKind {
        crate::spec::ProviderKind::Simulated
    }

    async fn apply_revision(&self, rev: &RevisionSpec, replicas: u32) -> Result<(), ProviderError> {
        let now = Instant::now();
        let start_error = self.faults.iter().any(|f| {
            f.kind == FaultKind::StartError && f.version.as_deref().is_none_or(|v| v == rev.version)
        });
        if start_error {
            return Err(ProviderError::Failed(format!(
                "simulated: cannot start {} (start-error fault)",
                rev.key
            )));
        }
        let ready_after = match &rev.component.health_check {
            Some(hc) => {
                hc.initial_delay_seconds.duration()
                    + hc.period_seconds.duration() * hc.success_threshold.max(1) as u32
            }
            None => Duration::from_secs(1),
        };
        let mut st = self.lock();
        let c = st.entry(rev.component.id.clone()).or_default();
        let r = c.revisions.entry(rev.key.clone()).or_insert(SimRevision {
            version: rev.version.clone(),
            seeded: false,
            started: Vec::new(),
            first_started: now,
            ready_after,
        });
        let want = replicas as usize;
        if r.started.len() < want {
            r.started.resize(want, now);
        } else {
            r.started.truncate(want);
        }
        Ok(())
    }

    async fn set_weights(
        &self,
        component: &str,
        weights: &[(RevisionKey, u32)],
    ) -> Result<crate::provider::Split, ProviderError> {
        let mut st = self.lock();
        let c = st.entry(component.to_string()).or_default();
        for (k, _) in weights {
            if !c.revisions.contains_key(k) {
                return Err(ProviderError::UnknownRevision(k.clone()));
            }
        }
        c.weights = weights.iter().cloned().collect();
        Ok(crate::provider::Split::exact())
    }

    async fn revision_status(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<RevisionStatus, ProviderError> {
        let now = Instant::now();
        let st = self.lock();
        let r = st
            .get(component)
            .and_then(|c| c.revisions.get(rev))
            .ok_or_else(|| ProviderError::UnknownRevision(rev.clone()))?;
        let sick = self
            .active_faults(r, now)
            .any(|k| *k == FaultKind::Unhealthy);
        let instances = r
            .started
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let up = now.duration_since(*t) >= r.ready_after;
                InstanceStatus {
                    id: format!("{rev}-{i}"),
                    ready: up && !sick,
                    unhealthy: sick,
                    restarts: 0,
                    detail: sick.then(|| "simulated: health check failing".to_string()),
                    probe: "simulated".into(),
                    last_latency_ms: Some(1.0),
                    consecutive_failures: if sick { 3 } else { 0 },
                    phase: None,
                    age_s: None,
                }
            })
            .collect();
        Ok(RevisionStatus {
            desired: r.started.len() as u32,
            instances,
        })
    }

    async fn metrics(
        &self,
        component: &str,
        rev: &RevisionKey,
        _window: Duration,
    ) -> Result<Metrics, ProviderError> {
        let now = Instant::now();
        let st = self.lock();
        let c = st
            .get(component)
            .ok_or_else(|| ProviderError::UnknownRevision(rev.clone()))?;
        let r = c
            .revisions
            .get(rev)
            .ok_or_else(|| ProviderError::UnknownRevision(rev.clone()))?;
        let weight = c.weights.get(rev).copied().unwrap_or(0) as f64;
        let mut m = Metrics::new();
        m.insert("request_rate".into(), weight * 2.0);
        m.insert("error_rate".into(), 0.001);
        m.insert("response_time".into(), 45.0);
        m.insert("success_rate".into(), 0.999);
        let mut failure_rate = 0.0;
        for k in self.active_faults(r, now) {
            match k {
                FaultKind::Metric(name, v) => {
                    m.insert(name.clone(), *v);
                    if name == "error_rate" {
                        m.insert("success_rate".into(), 1.0 - v);
                    }
                }
                FaultKind::Unhealthy => failure_rate = 1.0,
                FaultKind::StartError => {}
            }
        }
        m.entry("failure_rate".into()).or_insert(failure_rate);
        Ok(m)
    }

    async fn remove_revision(
        &self,
        component: &str,
        rev: &RevisionKey,
    ) -> Result<(), ProviderError> {
        let mut st = self.lock();
        if let Some(c) = st.get_mut(component) {
            c.revisions.remove(rev);
            c.weights.remove(rev);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse() {
        let f = Fault::parse("2.0.0:error_rate=0.3@2m").unwrap();
        assert_eq!(f.version.as_deref(), Some("2.0.0"));
        assert_eq!(f.kind, FaultKind::Metric("error_rate".into(), 0.3));
        assert_eq!(f.after, Duration::from_secs(120));
        assert_eq!(
            Fault::parse("unhealthy").unwrap().kind,
            FaultKind::Unhealthy
        );
        assert!(Fault::parse("bogus").is_err());
        assert!(Fault::parse("error_rate=x").is_err());
    }
}
