//! Why a pod is not serving, from its status and its recent events, in one line an operator
//! acts on.
//!
//! Owns: [`PodFailure`], [`explain`] and the pod's short status reason (kubectl's STATUS
//! column). Must not touch: the API server (pure functions over objects the watch keeps).

use k8s_openapi::api::core::v1::{ContainerStatus, Event, Pod};
use std::fmt;

/// Why a pod does not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodFailure {
    /// `ImagePullBackOff` / `ErrImagePull` (or an invalid image name): the image cannot be pulled.
    ImagePull { image: String, message: String },
    /// `CrashLoopBackOff`: a container keeps exiting. `message` is its last termination message
    /// (empty when the container wrote none).
    CrashLoop {
        container: String,
        restarts: u32,
        exit_code: Option<i32>,
        message: String,
    },
    /// A container was killed for exceeding its memory limit.
    OomKilled { container: String },
    /// The scheduler found no node, with its message.
    Unschedulable { message: String },
    /// The pod runs but its readiness probe fails (from kubelet's `Unhealthy` events).
    ReadinessFailing { message: String },
    /// Anything else with a reason (`CreateContainerConfigError`, `Evicted`, `FailedMount`, ...).
    Other { reason: String, message: String },
}

impl PodFailure {
    /// A short reason for a status column (`ImagePullBackOff`, `CrashLoopBackOff`, ...).
    pub fn reason(&self) -> &str {
        match self {
            PodFailure::ImagePull { .. } => "ImagePullBackOff",
            PodFailure::CrashLoop { .. } => "CrashLoopBackOff",
            PodFailure::OomKilled { .. } => "OOMKilled",
            PodFailure::Unschedulable { .. } => "Unschedulable",
            PodFailure::ReadinessFailing { .. } => "ReadinessProbeFailing",
            PodFailure::Other { reason, .. } => reason,
        }
    }
}

impl fmt::Display for PodFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodFailure::ImagePull { image, message } => {
                write!(f, "ImagePullBackOff: cannot pull image {image}")?;
                if !message.trim().is_empty() {
                    write!(f, " ({})", one_line(message))?;
                }
                Ok(())
            }
            PodFailure::CrashLoop {
                container,
                restarts,
                exit_code,
                message,
            } => {
                write!(
                    f,
                    "CrashLoopBackOff: container {container} restarted {restarts} time{}",
                    if *restarts == 1 { "" } else { "s" }
                )?;
                if let Some(code) = exit_code {
                    write!(f, ", last exit code {code}")?;
                }
                if !message.trim().is_empty() {
                    write!(f, ": {}", one_line(message))?;
                }
                Ok(())
            }
            PodFailure::OomKilled { container } => write!(
                f,
                "OOMKilled: container {container} ran out of memory (raise resources.memory)"
            ),
            PodFailure::Unschedulable { message } => {
                write!(f, "Unschedulable: {}", one_line(message))
            }
            PodFailure::ReadinessFailing { message } => {
                write!(f, "readiness probe failing: {}", one_line(message))
            }
            PodFailure::Other { reason, message } => {
                if message.trim().is_empty() {
                    write!(f, "{reason}")
                } else {
                    write!(f, "{reason}: {}", one_line(message))
                }
            }
        }
    }
}

/// At most 300 characters of `text` on one line.
fn one_line(text: &str) -> String {
    let mut s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 300 {
        s = s.chars().take(299).collect();
        s.push('…');
    }
    s
}

const IMAGE_PULL: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
];
/// Waiting reasons of a container that is still being set up (not failures).
const STARTING: &[&str] = &["ContainerCreating", "PodInitializing"];
/// Warning events that keep a pod from starting.
const BLOCKING_EVENTS: &[&str] = &[
    "FailedMount",
    "FailedAttachVolume",
    "FailedCreatePodSandBox",
];
const READINESS_PREFIX: &str = "Readiness probe failed:";
const LIVENESS_PREFIX: &str = "Liveness probe failed:";

/// Why `pod` does not serve, from its status and `events` (any events: those about other pods
/// are ignored), or `None` when it is healthy or still starting normally.
///
/// In order: the scheduler's refusal; per container (init containers first), an image that
/// cannot be pulled, a crash loop (OOMKilled when the last exit was), a container that is
/// terminated for good, another waiting reason (`CreateContainerConfigError`, ...); a failed pod
/// (`Evicted`); then, for a pod that is not ready, the latest readiness (or liveness) probe
/// failure or volume/sandbox warning among its events.
pub fn explain(pod: &Pod, events: &[Event]) -> Option<PodFailure> {
    let status = pod.status.as_ref()?;
    let conditions = status.conditions.as_deref().unwrap_or(&[]);
    if let Some(c) = conditions.iter().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    }) {
        return Some(PodFailure::Unschedulable {
            message: c.message.clone().unwrap_or_default(),
        });
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for c in containers {
        if let Some(failure) = container_failure(c) {
            return Some(failure);
        }
    }
    if status.phase.as_deref() == Some("Failed") {
        return Some(PodFailure::Other {
            reason: status.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: status.message.clone().unwrap_or_default(),
        });
    }
    if pod_ready(pod) || pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    latest_event_failure(pod, events)
}

fn container_failure(c: &ContainerStatus) -> Option<PodFailure> {
    if c.ready {
        return None;
    }
    let state = c.state.as_ref();
    let last_terminated = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let restarts = u32::try_from(c.restart_count).unwrap_or(0);
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let reason = w.reason.as_deref().unwrap_or("");
        let message = w.message.clone().unwrap_or_default();
        if IMAGE_PULL.contains(&reason) {
            return Some(PodFailure::ImagePull {
                image: c.image.clone(),
                message,
            });
        }
        if last_terminated.and_then(|t| t.reason.as_deref()) == Some("OOMKilled") {
            return Some(PodFailure::OomKilled {
                container: c.name.clone(),
            });
        }
        if reason == "CrashLoopBackOff" {
            return Some(PodFailure::CrashLoop {
                container: c.name.clone(),
                restarts,
                exit_code: last_terminated.map(|t| t.exit_code),
                message: last_terminated
                    .and_then(|t| t.message.clone())
                    .unwrap_or_default(),
            });
        }
        if reason.is_empty() || STARTING.contains(&reason) {
            return None;
        }
        return Some(PodFailure::Other {
            reason: reason.to_string(),
            message,
        });
    }
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        if t.reason.as_deref() == Some("OOMKilled") {
            return Some(PodFailure::OomKilled {
                container: c.name.clone(),
            });
        }
        if t.exit_code != 0 {
            return Some(PodFailure::Other {
                reason: t.reason.clone().unwrap_or_else(|| "Error".into()),
                message: format!(
                    "container {} exited with code {}{}",
                    c.name,
                    t.exit_code,
                    t.message
                        .as_deref()
                        .filter(|m| !m.trim().is_empty())
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            });
        }
        return None;
    }
    // Running but not ready: restarted after an OOM kill and not back yet.
    if restarts > 0 && last_terminated.and_then(|t| t.reason.as_deref()) == Some("OOMKilled") {
        return Some(PodFailure::OomKilled {
            container: c.name.clone(),
        });
    }
    None
}

/// The pod's `Ready` condition is `True`.
pub(crate) fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The most recent probe or start-up warning about this pod, among `events`.
fn latest_event_failure(pod: &Pod, events: &[Event]) -> Option<PodFailure> {
    let name = pod.metadata.name.as_deref()?;
    let uid = pod.metadata.uid.as_deref();
    let mut about: Vec<&Event> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| match (uid, e.involved_object.uid.as_deref()) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .filter(|e| e.type_.as_deref() != Some("Normal"))
        .collect();
    about.sort_by_key(|e| event_millis(e));
    about.iter().rev().find_map(|e| {
        let reason = e.reason.as_deref().unwrap_or("");
        let message = e.message.as_deref().unwrap_or("").trim();
        if reason == "Unhealthy" {
            if let Some(rest) = message.strip_prefix(READINESS_PREFIX) {
                return Some(PodFailure::ReadinessFailing {
                    message: rest.trim().to_string(),
                });
            }
            if message.starts_with(LIVENESS_PREFIX) {
                return Some(PodFailure::Other {
                    reason: "LivenessProbeFailing".into(),
                    message: message.to_string(),
                });
            }
            return None;
        }
        if BLOCKING_EVENTS.contains(&reason) {
            return Some(PodFailure::Other {
                reason: reason.to_string(),
                message: message.to_string(),
            });
        }
        None
    })
}

/// When an event last happened, in milliseconds since the epoch (0 when it says nothing).
pub(crate) fn event_millis(e: &Event) -> i64 {
    e.series
        .as_ref()
        .and_then(|s| s.last_observed_time.as_ref())
        .map(|t| t.0.as_millisecond())
        .or_else(|| e.last_timestamp.as_ref().map(|t| t.0.as_millisecond()))
        .or_else(|| e.event_time.as_ref().map(|t| t.0.as_millisecond()))
        .or_else(|| e.first_timestamp.as_ref().map(|t| t.0.as_millisecond()))
        .or_else(|| {
            e.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_millisecond())
        })
        .unwrap_or(0)
}

/// kubectl's STATUS column, reduced: why a pod is not simply `Running` (`None` when it is, or when
/// its phase says all).
pub fn status_reason(pod: &Pod) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("Terminating".into());
    }
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for c in containers {
        let Some(state) = c.state.as_ref() else {
            continue;
        };
        if let Some(reason) = state.waiting.as_ref().and_then(|w| w.reason.clone()) {
            return Some(reason);
        }
        if let Some(t) = state.terminated.as_ref() {
            if t.exit_code != 0 || t.reason.as_deref() == Some("OOMKilled") {
                return Some(t.reason.clone().unwrap_or_else(|| "Error".into()));
            }
        }
    }
    if let Some(reason) = status.reason.clone() {
        return Some(reason);
    }
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.reason.clone())
}

#[cfg(test)]
#[path = "explain_tests.rs"]
mod tests;
