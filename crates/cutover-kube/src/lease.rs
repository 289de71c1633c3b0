//! One `coordination.k8s.io/v1` Lease per driven target: cutover's side of "one driver per
//! target" on a cluster, with client-go's leader-election semantics.
//!
//! Owns: [`Leases`] (acquire, renew, release), [`lease_name`], [`LeaseHolder`],
//! [`LeaseRefusal`]. Must not touch: any other object, and when to renew (the caller's timer).
//!
//! A Lease's `spec.holderIdentity` names the holder ("user pid N on HOST"),
//! `leaseDurationSeconds` is the TTL, `acquireTime` is when this holder took it, `renewTime` when
//! it last renewed (MicroTime), `leaseTransitions` counts changes of holder. The holder's
//! deployment and run are annotations (`cutover.dev/deployment`, `cutover.dev/run`).
//!
//! - Acquire: GET; absent → POST (409 AlreadyExists → read again and decide); held by another
//!   holder whose `renewTime + leaseDurationSeconds` is still ahead → refused with who holds it;
//!   free, expired or already ours → PUT with the resourceVersion read (409 Conflict: someone
//!   raced, read again and decide; at most [`ATTEMPTS`] rounds). All or none: when one name is
//!   refused, the names this call took are released again.
//! - Renew: the same decision per name (client-go's tryAcquireOrRenew), so a lease that expired
//!   and that nobody took is taken back, and one another holder took is refused.
//! - Release: only leases this holder holds; it clears `holderIdentity` and the annotations and
//!   sets `leaseDurationSeconds` to 1 (client-go's ReleaseOnCancel) with a PUT carrying the
//!   resourceVersion read, rather than deleting: the PUT cannot clobber a holder that took the
//!   lease in between, `leaseTransitions` keeps counting, and cutover's RBAC needs only get,
//!   create and update on leases.
//!
//! Clocks: expiry is judged by this machine's clock against the `renewTime` the holder wrote by
//! its clock (client-go also uses local time, though relative to when it observed a change). Clock
//! skew between machines shortens or lengthens a lease by the skew, so the TTL should be well
//! above the skew one expects (NTP keeps it under a second).

use crate::error::{from_kube, KubeError};
use crate::labels;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::Client;
use std::collections::BTreeMap;
use std::time::Duration;

/// Rounds of read-and-decide per name before a lost race is an error.
pub const ATTEMPTS: u32 = 3;
const RESOURCE: &str = "leases";

/// Who drives a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    /// "user pid N on HOST": the lease is this holder's when `holderIdentity` equals it.
    pub identity: String,
    /// The deployment (spec id) driven.
    pub deployment: String,
    /// The run (`ID#N`), when one drives.
    pub run: Option<String>,
}

/// Why a lease was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeaseRefusal {
    /// Another holder's lease has not expired.
    #[error("{}", held_message(.name, .holder_identity, .deployment, .run.as_deref(), *.expires_in))]
    Held {
        name: String,
        holder_identity: String,
        deployment: String,
        run: Option<String>,
        expires_in: Duration,
    },
    /// The cluster refused or failed the request.
    #[error(transparent)]
    Kube(KubeError),
}

fn held_message(
    name: &str,
    holder: &str,
    deployment: &str,
    run: Option<&str>,
    expires_in: Duration,
) -> String {
    let mut who = holder.to_string();
    if !deployment.is_empty() {
        who.push_str(&format!(", deployment {deployment}"));
    }
    if let Some(run) = run {
        who.push_str(&format!(", run {run}"));
    }
    format!(
        "another cutover drives this target: lease {name} is held by {who}; it expires in {}s unless renewed (wait for that run to end, or for the lease to expire if that driver is gone)",
        expires_in.as_secs()
    )
}

/// The Lease name for a target ("api in production on kubernetes"): `cutover-` and a DNS label
/// of the target, then its short hash (targets that differ only in case or punctuation get
/// different leases); at most 63 characters.
pub fn lease_name(target: &str) -> String {
    format!(
        "cutover-{}-{}",
        labels::dns_label(target, 44),
        labels::short_hash(target)
    )
}

/// The leases of one namespace.
#[derive(Clone)]
pub struct Leases {
    api: Api<Lease>,
    namespace: String,
    ttl_seconds: i32,
}

/// What one name's acquisition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// It was ours already (renewed).
    Renewed,
    /// This call took it (created, or taken from a free or expired lease).
    New,
}

impl Leases {
    /// Leases in `namespace` held for `ttl` (whole seconds, at least 1) after each renewal.
    pub fn new(client: Client, namespace: &str, ttl: Duration) -> Leases {
        let ttl_seconds = i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX);
        Leases {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            ttl_seconds,
        }
    }

    /// Takes every lease in `names` for `holder`, or none: on a refusal the leases this call took
    /// are released again (those already held stay held) and the refusal is returned.
    pub async fn acquire(
        &self,
        names: &[String],
        holder: &LeaseHolder,
    ) -> Result<(), LeaseRefusal> {
        let mut taken: Vec<&String> = Vec::new();
        for name in names {
            match self.take(name, holder).await {
                Ok(Taken::New) => taken.push(name),
                Ok(Taken::Renewed) => {}
                Err(refusal) => {
                    for n in taken {
                        if let Err(e) = self.release_one(n, holder).await {
                            tracing::warn!(lease = %n, error = %e, "could not release a lease after a refusal; it expires by itself");
                        }
                    }
                    return Err(refusal);
                }
            }
        }
        Ok(())
    }

    /// Renews every lease in `names` (taking back one that expired and that nobody took); tries
    /// them all and returns the first refusal: a lease another holder took means this holder
    /// must stop driving.
    pub async fn renew(&self, names: &[String], holder: &LeaseHolder) -> Result<(), LeaseRefusal> {
        let mut first = None;
        for name in names {
            if let Err(refusal) = self.take(name, holder).await {
                first.get_or_insert(refusal);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Releases the leases in `names` that `holder` holds (others' are left alone); tries them
    /// all and returns the first error.
    pub async fn release(&self, names: &[String], holder: &LeaseHolder) -> Result<(), KubeError> {
        let mut first = None;
        for name in names {
            if let Err(e) = self.release_one(name, holder).await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    fn err(&self, e: kube::Error, verb: &str, name: &str) -> KubeError {
        from_kube(e, verb, RESOURCE, &self.namespace, name)
    }

    fn raced(&self, name: &str, message: String) -> KubeError {
        KubeError::Conflict {
            kind: RESOURCE.into(),
            name: name.to_string(),
            attempts: ATTEMPTS,
            message,
        }
    }

    async fn take(&self, name: &str, holder: &LeaseHolder) -> Result<Taken, LeaseRefusal> {
        let pp = post_params();
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let current = self
                .api
                .get_opt(name)
                .await
                .map_err(|e| LeaseRefusal::Kube(self.err(e, "get", name)))?;
            let now = Timestamp::now();
            let Some(current) = current else {
                let lease = self.fresh(name, holder, now);
                match self.api.create(&pp, &lease).await {
                    Ok(_) => return Ok(Taken::New),
                    Err(kube::Error::Api(s)) if s.code == 409 => {
                        last = s.message.clone();
                        continue;
                    }
                    Err(e) => return Err(LeaseRefusal::Kube(self.err(e, "create", name))),
                }
            };
            let spec = current.spec.clone().unwrap_or_default();
            let held_by = spec.holder_identity.clone().filter(|h| !h.is_empty());
            let ours = held_by.as_deref() == Some(holder.identity.as_str());
            if let (Some(other), false) = (held_by.as_ref(), ours) {
                if let Some(expires_in) = remaining(&spec, now) {
                    let notes = current.metadata.annotations.clone().unwrap_or_default();
                    return Err(LeaseRefusal::Held {
                        name: name.to_string(),
                        holder_identity: other.clone(),
                        deployment: notes.get(labels::DEPLOYMENT).cloned().unwrap_or_default(),
                        run: notes.get(labels::annotations::RUN).cloned(),
                        expires_in,
                    });
                }
            }
            let lease = self.held(current, holder, now, ours);
            match self.api.replace(name, &pp, &lease).await {
                Ok(_) => return Ok(if ours { Taken::Renewed } else { Taken::New }),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    last = s.message.clone();
                    continue;
                }
                Err(e) => return Err(LeaseRefusal::Kube(self.err(e, "update", name))),
            }
        }
        Err(LeaseRefusal::Kube(self.raced(name, last)))
    }

    async fn release_one(&self, name: &str, holder: &LeaseHolder) -> Result<(), KubeError> {
        let pp = post_params();
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let Some(mut lease) = self
                .api
                .get_opt(name)
                .await
                .map_err(|e| self.err(e, "get", name))?
            else {
                return Ok(());
            };
            let mut spec = lease.spec.take().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(holder.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            lease.spec = Some(spec);
            if let Some(notes) = lease.metadata.annotations.as_mut() {
                notes.remove(labels::DEPLOYMENT);
                notes.remove(labels::annotations::RUN);
            }
            lease.metadata.managed_fields = None;
            match self.api.replace(name, &pp, &lease).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    last = s.message.clone();
                    continue;
                }
                Err(e) => return Err(self.err(e, "update", name)),
            }
        }
        Err(self.raced(name, last))
    }

    /// A new Lease held by `holder`.
    fn fresh(&self, name: &str, holder: &LeaseHolder, now: Timestamp) -> Lease {
        let mut lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    labels::MANAGED_BY.to_string(),
                    labels::FIELD_MANAGER.to_string(),
                )])),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        self.stamp(&mut lease, holder, now, false);
        lease
    }

    /// `current` (as read, resourceVersion included) held by `holder` from `now`.
    fn held(&self, mut current: Lease, holder: &LeaseHolder, now: Timestamp, ours: bool) -> Lease {
        current.metadata.managed_fields = None;
        if !ours {
            let spec = current.spec.get_or_insert_with(LeaseSpec::default);
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        self.stamp(&mut current, holder, now, ours);
        current
    }

    fn stamp(&self, lease: &mut Lease, holder: &LeaseHolder, now: Timestamp, ours: bool) {
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        spec.holder_identity = Some(holder.identity.clone());
        spec.lease_duration_seconds = Some(self.ttl_seconds);
        if !ours || spec.acquire_time.is_none() {
            spec.acquire_time = Some(MicroTime(now));
        }
        spec.renew_time = Some(MicroTime(now));
        let notes = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
        notes.insert(labels::DEPLOYMENT.to_string(), holder.deployment.clone());
        match &holder.run {
            Some(run) => notes.insert(labels::annotations::RUN.to_string(), run.clone()),
            None => notes.remove(labels::annotations::RUN),
        };
    }
}

fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(labels::FIELD_MANAGER.to_string()),
    }
}

/// How long a held lease still runs by the local clock (`None` once it expired, or when it says
/// neither when it was renewed nor for how long).
fn remaining(spec: &LeaseSpec, now: Timestamp) -> Option<Duration> {
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?;
    let seconds = i64::from(spec.lease_duration_seconds?);
    let left = renewed.0.as_millisecond() + seconds * 1000 - now.as_millisecond();
    u64::try_from(left)
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
