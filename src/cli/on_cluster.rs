//! `cutover status ID --cluster` and `cutover rollback ID --cluster`: a Kubernetes deployment
//! read from, and rolled back on, the cluster's objects alone, from a machine whose state dir
//! never ran it.
//!
//! Owns: connecting with the kube settings, printing, and recording a cluster rollback in this
//! state dir's audit trail. Must not touch: runs (there is none here to drive).

use std::path::Path;

use anyhow::Result;
use cutover::platform;
use cutover::provider::kubernetes::on_cluster::{self, OnClusterError, View};
use cutover_kube::cluster::Cluster;

use super::{FAILED, OK};

/// The runtime and the cluster the kube settings name; `None` (said on stderr) when it cannot
/// be reached.
fn connect(dir: &Path, id: &str) -> Result<Option<(tokio::runtime::Runtime, Cluster)>> {
    let settings = platform::Request::new(dir)?.kube;
    let rt = super::apply::runtime(false)?;
    match rt.block_on(Cluster::connect(&settings, None)) {
        Ok(c) => Ok(Some((rt, c))),
        Err(e) => {
            eprintln!("{id}: {e}");
            Ok(None)
        }
    }
}

pub fn status(dir: &Path, id: &str, json: bool) -> Result<u8> {
    let Some((rt, cluster)) = connect(dir, id)? else {
        return Ok(FAILED);
    };
    let view = match rt.block_on(on_cluster::view(&cluster, id)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{id}: {e}");
            return Ok(FAILED);
        }
    };
    if json {
        println!("{}", serde_json::to_string(&view)?);
    } else {
        print(&view);
    }
    if view.components.is_empty() {
        if !json {
            eprintln!(
                "{id}: no Deployment of it managed by cutover in namespace {} (pass --namespace or --context)",
                view.namespace
            );
        }
        return Ok(super::INVALID);
    }
    Ok(OK)
}

fn print(v: &View) {
    println!(
        "{} on {} (namespace {}), as the cluster's objects say",
        v.deployment, v.server, v.namespace
    );
    for c in &v.components {
        println!(
            "  {} in {}: traffic by {}",
            c.id,
            if c.environment.is_empty() {
                "?"
            } else {
                &c.environment
            },
            c.traffic
        );
        println!(
            "    {:<22} {:<12} {:<17} {:>7} {:>6}  LAST WRITTEN BY",
            "DEPLOYMENT", "VERSION", "STATE", "READY", "WEIGHT"
        );
        for r in &c.revisions {
            let by = match (&r.run, &r.step) {
                (Some(run), Some(step)) => format!("{run} step {step}"),
                (Some(run), None) => run.clone(),
                _ => "-".into(),
            };
            let state = if r.adopted {
                format!("{} (adopted)", r.state)
            } else {
                r.state.to_string()
            };
            println!(
                "    {:<22} {:<12} {:<17} {:>7} {:>5}%  {by}",
                r.deployment_name,
                r.version,
                state,
                format!("{}/{}", r.ready, r.replicas),
                r.weight
            );
        }
    }
}

pub fn rollback(dir: &Path, id: &str, to: Option<&str>, json: bool) -> Result<u8> {
    let Some((rt, cluster)) = connect(dir, id)? else {
        return Ok(FAILED);
    };
    let actor = cutover::identity::current_user();
    let host = cutover::identity::host_name();
    let identity = format!(
        "{actor} pid {} on {host} (cutover rollback --cluster)",
        std::process::id()
    );
    let mut said = Vec::new();
    let mut say = |line: String| {
        if json {
            println!(
                "{}",
                serde_json::json!({"ts": now(), "deployment": id, "kind": "step", "message": line})
            );
        } else {
            println!("{line}");
        }
        said.push(line);
    };
    let result = rt.block_on(on_cluster::roll_back(&cluster, id, to, &identity, &mut say));
    let (code, outcome, reason, environment) = match &result {
        Ok(v) => (
            OK,
            "rolled_back",
            format!(
                "rolled back on the cluster to {}",
                v.components
                    .iter()
                    .filter_map(|c| c
                        .revisions
                        .first()
                        .map(|r| format!("{} {}", c.id, r.version)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            v.components
                .first()
                .map(|c| c.environment.clone())
                .unwrap_or_default(),
        ),
        Err(OnClusterError::Refused(m)) => (FAILED, "refused", m.clone(), String::new()),
        Err(e) => (FAILED, "failed", e.to_string(), String::new()),
    };
    // This state dir's audit trail records what was done to the cluster from here.
    if let Ok(store) = cutover::store::Store::open(dir) {
        let entry = cutover::store::audit::Entry {
            actor,
            action: "rollback.cluster".into(),
            deployment: id.to_string(),
            run: None,
            environment,
            detail: serde_json::json!({
                "to": to, "outcome": outcome, "reason": reason, "steps": said,
                "namespace": cluster.namespace(), "server": cluster.server(),
            }),
        };
        if let Err(e) = store.append_audit(&entry) {
            eprintln!("{id}: could not record the rollback in the audit trail: {e}");
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"ts": now(), "deployment": id, "kind": "finished", "outcome": outcome, "reason": reason})
        );
    } else if code == OK {
        println!("{id}: {reason}");
    } else {
        eprintln!("{id}: {reason}");
    }
    Ok(code)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
