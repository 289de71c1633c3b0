//! `cutover apply SPEC --dry-run=server`: every object the plan's steps would apply, sent to the
//! cluster as a server-side dry run (`dryRun=All`): the API server validates, defaults and
//! authorises each one (schema, admission, RBAC) and stores nothing.
//!
//! Owns: walking `plan --manifests`'s objects step by step and reporting what the server said
//! of each. Must not touch: the store (nothing is recorded), runs.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use cutover::engine;
use cutover::platform;
use cutover_kube::cluster::{Cluster, Kind};

use super::{load_spec, FAILED, OK};

/// What the server said of one object.
struct Answer {
    step: usize,
    object: String,
    outcome: Result<&'static str, String>,
}

pub fn run(dir: &Path, path: &Path, json: bool) -> Result<u8> {
    let spec = match load_spec(path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let shown = path.display().to_string();
    if let Some(code) = super::manifests::kube_only(
        &spec,
        &shown,
        "error: --dry-run=server sends the objects to a Kubernetes API server (--dry-run simulates any spec)",
    ) {
        return Ok(code);
    }
    let previous = match cutover::store::Store::open(dir) {
        Ok(store) => engine::previous_revisions(&store, &spec, false).unwrap_or_default(),
        Err(_) => Default::default(),
    };
    let plan = engine::plan_for(&spec, &previous);
    let steps = super::manifests::for_plan(&spec, &plan, &previous, false);
    let settings = platform::Request::new(dir)?.kube;
    let rt = super::apply::runtime(false)?;
    let answers = rt.block_on(async {
        let cluster =
            match Cluster::connect(&settings, spec.infrastructure.namespace.as_deref()).await {
                Ok(c) => c.dry_run(),
                Err(e) => return Err(e),
            };
        // What the first rollout would start from, where the store knows no revision.
        let provider = cutover::provider::kubernetes::KubeProvider::new(cluster.clone(), &spec);
        let mut baselines = Vec::new();
        for c in spec
            .components
            .iter()
            .filter(|c| !previous.contains_key(&c.id))
        {
            use cutover::provider::Provider;
            match provider.running(&c.id).await {
                Ok(Some(r)) => baselines.push(Ok(format!(
                    "{}: baseline {}, {} replica(s) of {}",
                    c.id, r.what, r.replicas, r.version
                ))),
                Ok(None) => {}
                Err(e) => baselines.push(Err(format!("{}: {e}", c.id))),
            }
        }
        let mut made: BTreeSet<String> = BTreeSet::new();
        let mut answers = Vec::new();
        for s in &steps {
            for obj in &s.apply {
                let kind = obj["kind"].as_str().unwrap_or("?").to_string();
                let name = obj["metadata"]["name"].as_str().unwrap_or("?").to_string();
                let object = format!("{kind}/{name}");
                let outcome = if kind == "Scale" {
                    if made.contains(&format!("Deployment/{name}")) {
                        Ok("made by an earlier step (not on the server in a dry run)")
                    } else {
                        let n = obj["spec"]["replicas"].as_u64().unwrap_or(0) as u32;
                        cluster
                            .scale(&name, n)
                            .await
                            .map(|_| "accepted")
                            .map_err(|e| e.to_string())
                    }
                } else {
                    cluster
                        .apply(obj)
                        .await
                        .map(|_| "accepted")
                        .map_err(|e| e.to_string())
                };
                if outcome.is_ok() {
                    made.insert(object.clone());
                }
                answers.push(Answer {
                    step: s.step,
                    object,
                    outcome,
                });
            }
            for d in &s.delete {
                let outcome = match d.split_once('/') {
                    _ if made.contains(d) => {
                        Ok("made by an earlier step (not on the server in a dry run)")
                    }
                    Some(("Deployment", name)) => cluster
                        .delete(Kind::Deployment, name)
                        .await
                        .map(|_| "deletion accepted")
                        .map_err(|e| e.to_string()),
                    Some(("Service", name)) => cluster
                        .delete(Kind::Service, name)
                        .await
                        .map(|_| "deletion accepted")
                        .map_err(|e| e.to_string()),
                    _ => Ok("not checked"),
                };
                answers.push(Answer {
                    step: s.step,
                    object: format!("delete {d}"),
                    outcome,
                });
            }
        }
        Ok((answers, baselines))
    });
    let (answers, baselines) = match answers {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}: {e}", spec.id);
            return Ok(FAILED);
        }
    };
    let refused = answers.iter().filter(|a| a.outcome.is_err()).count()
        + baselines.iter().filter(|b| b.is_err()).count();
    for b in &baselines {
        if json {
            let v = match b {
                Ok(m) => serde_json::json!({"baseline": m, "accepted": true}),
                Err(e) => serde_json::json!({"baseline": e, "accepted": false}),
            };
            println!("{v}");
        } else {
            match b {
                Ok(m) => println!("{m}"),
                Err(e) => println!("REFUSED: {e}"),
            }
        }
    }
    for a in &answers {
        if json {
            let v = serde_json::json!({
                "step": a.step,
                "object": a.object,
                "accepted": a.outcome.is_ok(),
                "message": match &a.outcome { Ok(m) => *m, Err(e) => e.as_str() },
            });
            println!("{v}");
        } else {
            match &a.outcome {
                Ok(m) => println!("step {:>2}: {}: {m}", a.step, a.object),
                Err(e) => println!("step {:>2}: {}: REFUSED: {e}", a.step, a.object),
            }
        }
    }
    if !json {
        println!(
            "{}: {} object(s) sent as a server-side dry run, {} refused; nothing was changed",
            spec.id,
            answers.len(),
            refused
        );
    }
    Ok(if refused == 0 { OK } else { FAILED })
}
