//! Whether a Deployment has rolled out, as `kubectl rollout status` decides it
//! (`kubernetes/kubectl: pkg/polymorphichelpers/rollout_status.go`).
//!
//! Owns: reading a Deployment's status into [`RolloutStatus`]. Must not touch: the API server
//! (callers hand it the Deployment their watch or GET returned) and the decision what to do about
//! a failed rollout (the engine's).

use k8s_openapi::api::apps::v1::Deployment;

/// Where a Deployment's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Every replica runs the current template and is available.
    Complete,
    /// Still going, with kubectl's words for what it waits on.
    Progressing(String),
    /// The Deployment controller gave up (`ProgressDeadlineExceeded`), with its message.
    Failed(String),
}

/// The reason the Deployment controller writes on `Progressing` when `progressDeadlineSeconds`
/// passed without progress.
const TIMED_OUT: &str = "ProgressDeadlineExceeded";

/// `kubectl rollout status` for one Deployment, without waiting.
pub fn status(d: &Deployment) -> RolloutStatus {
    let name = d.metadata.name.as_deref().unwrap_or("");
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(st) = d.status.as_ref() else {
        return RolloutStatus::Progressing(
            "Waiting for deployment spec update to be observed...".into(),
        );
    };
    if generation > st.observed_generation.unwrap_or(0) {
        return RolloutStatus::Progressing(
            "Waiting for deployment spec update to be observed...".into(),
        );
    }
    let timed_out = st
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some(TIMED_OUT));
    if let Some(c) = timed_out {
        let detail = c.message.as_deref().unwrap_or("").trim();
        let mut msg = format!("deployment \"{name}\" exceeded its progress deadline");
        if !detail.is_empty() {
            msg.push_str(": ");
            msg.push_str(detail);
        }
        return RolloutStatus::Failed(msg);
    }
    let updated = st.updated_replicas.unwrap_or(0);
    let replicas = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if let Some(wanted) = d.spec.as_ref().and_then(|s| s.replicas) {
        if updated < wanted {
            return RolloutStatus::Progressing(format!(
                "Waiting for deployment \"{name}\" rollout to finish: {updated} out of {wanted} new replicas have been updated..."
            ));
        }
    }
    if replicas > updated {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...",
            replicas - updated
        ));
    }
    if available < updated {
        return RolloutStatus::Progressing(format!(
            "Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available..."
        ));
    }
    RolloutStatus::Complete
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, replicas: i32, status: serde_json::Value) -> Deployment {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api-1a2b3c4d5e", "namespace": "shop", "generation": generation},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "api"}},
                "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": []}},
            },
            "status": status,
        });
        match serde_json::from_value(d) {
            Ok(d) => d,
            Err(e) => panic!("fixture: {e}"),
        }
    }

    fn progressing(msg: &str) -> RolloutStatus {
        RolloutStatus::Progressing(msg.to_string())
    }

    #[test]
    fn complete_when_all_updated_and_available() {
        let d = deployment(
            3,
            3,
            json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3, "readyReplicas": 3}),
        );
        assert_eq!(status(&d), RolloutStatus::Complete);
        // Scaled to zero is complete too.
        assert_eq!(
            status(&deployment(2, 0, json!({"observedGeneration": 2}))),
            RolloutStatus::Complete
        );
    }

    #[test]
    fn waits_for_the_spec_to_be_observed() {
        let d = deployment(
            4,
            3,
            json!({"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            status(&d),
            progressing("Waiting for deployment spec update to be observed...")
        );
        let mut no_status = d.clone();
        no_status.status = None;
        assert_eq!(
            status(&no_status),
            progressing("Waiting for deployment spec update to be observed...")
        );
    }

    #[test]
    fn waits_for_updated_replicas() {
        let d = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 1, "availableReplicas": 3}),
        );
        assert_eq!(
            status(&d),
            progressing("Waiting for deployment \"api-1a2b3c4d5e\" rollout to finish: 1 out of 3 new replicas have been updated...")
        );
    }

    #[test]
    fn waits_for_old_replicas_to_terminate() {
        let d = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 5, "updatedReplicas": 3, "availableReplicas": 3}),
        );
        assert_eq!(
            status(&d),
            progressing("Waiting for deployment \"api-1a2b3c4d5e\" rollout to finish: 2 old replicas are pending termination...")
        );
    }

    #[test]
    fn waits_for_available_replicas() {
        let d = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 1}),
        );
        assert_eq!(
            status(&d),
            progressing("Waiting for deployment \"api-1a2b3c4d5e\" rollout to finish: 1 of 3 updated replicas are available...")
        );
    }

    #[test]
    fn progress_deadline_exceeded_fails_with_its_message() {
        let d = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 0,
            "conditions": [
              {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
              {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
               "message": "ReplicaSet \"api-1a2b3c4d5e-7f9\" has timed out progressing."}
            ]}),
        );
        assert_eq!(
            status(&d),
            RolloutStatus::Failed(
                "deployment \"api-1a2b3c4d5e\" exceeded its progress deadline: ReplicaSet \"api-1a2b3c4d5e-7f9\" has timed out progressing.".into()
            )
        );
        // A Progressing condition still progressing is not a failure.
        let ok = deployment(
            2,
            3,
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
        );
        assert_eq!(status(&ok), RolloutStatus::Complete);
    }
}
