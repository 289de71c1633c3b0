//! `cutover apply SPEC --dry-run=server`: every object the plan's steps would apply, sent to the
//! cluster as a server-side dry run (`dryRun=All`): the API server validates, defaults and
//! authorises each one (schema, admission, RBAC) and stores nothing.
//!
//! Owns: finding what a first rollout would start from on the cluster (the provider's
//! `running`, read only), walking `plan --manifests`'s objects step by step from there (retired
//! revisions as dry-run annotation patches) and reporting what the server said of each. Must not
//! touch: the store (nothing is recorded), runs.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Result;
use cutover::engine;
use cutover::platform;
use cutover_kube::cluster::{Cluster, Kind};
use cutover_kube::labels;
use cutover_kube::workload::Traffic;

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
        // The plan runs from the baseline, as the real run would; an adopted Deployment keeps
        // its own name, where the plan's objects name it by a key.
        let mut previous = previous.clone();
        let mut renamed = std::collections::BTreeMap::new();
        let missing: Vec<&cutover::spec::Component> = spec
            .components
            .iter()
            .filter(|c| !previous.contains_key(&c.id))
            .collect();
        for c in missing {
            use cutover::provider::Provider;
            match provider.running(&c.id).await {
                Ok(Some(r)) => {
                    baselines.push(Ok(format!(
                        "{}: baseline {}, {} replica(s) of {}",
                        c.id, r.what, r.replicas, r.version
                    )));
                    let key = match &r.key {
                        Some(k) => k.0.clone(),
                        None => {
                            let key = format!("{}@adopted", c.id);
                            renamed.insert(
                                labels::revision_name(&c.id, &key),
                                labels::dns_label(&c.id, 63),
                            );
                            key
                        }
                    };
                    previous.insert(c.id.clone(), found_row(&spec, c, &r, key));
                }
                Ok(None) => {}
                Err(e) => baselines.push(Err(format!("{}: {e}", c.id))),
            }
        }
        let plan = engine::plan_for(&spec, &previous);
        let steps = super::manifests::for_plan(&spec, &plan, &previous, false);
        let mut made: BTreeSet<String> = BTreeSet::new();
        let mut answers = Vec::new();
        for s in &steps {
            for obj in &s.apply {
                let kind = obj["kind"].as_str().unwrap_or("?").to_string();
                let name = obj["metadata"]["name"].as_str().unwrap_or("?").to_string();
                let name = renamed.get(&name).cloned().unwrap_or(name);
                let object = format!("{kind}/{name}");
                let theirs = match kind.as_str() {
                    "Service" => cluster
                        .get(Kind::Service, &name)
                        .await
                        .ok()
                        .flatten()
                        .filter(|o| !labels::is_managed(o)),
                    _ => None,
                };
                let outcome = if theirs.is_some() {
                    // The team's Service is used as it is where a Deployment is adopted with
                    // replica-ratio traffic (it selects the adopted pods); elsewhere the run
                    // refuses to write over it.
                    if !renamed.is_empty() && cutover::provider::kubernetes::workload::traffic(&spec) == Traffic::ReplicaRatio {
                        Ok("exists and is not cutover's: the team's Service, used as it is (it selects the adopted pods, and cutover's new pods carry its labels)")
                    } else {
                        Err("exists and is not managed by cutover: the run refuses to write over it".to_string())
                    }
                } else if kind == "Scale" {
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
            for d in &s.retire {
                let name = d.strip_prefix("Deployment/").unwrap_or(d);
                let name = renamed.get(name).cloned().unwrap_or_else(|| name.to_string());
                let outcome = if made.contains(&format!("Deployment/{name}")) {
                    Ok("made by an earlier step (not on the server in a dry run)")
                } else {
                    let body = serde_json::json!({ "metadata": { "annotations": {
                        labels::annotations::RETIRED: "dry-run" }}});
                    cluster
                        .merge_patch(Kind::Deployment, &name, &body)
                        .await
                        .map(|_| "retirement accepted (kept at 0 replicas)")
                        .map_err(|e| e.to_string())
                };
                answers.push(Answer {
                    step: s.step,
                    object: format!("retire Deployment/{name}"),
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

/// The store's row for a revision found on the cluster (what the real run would record).
fn found_row(
    spec: &cutover::spec::ValidSpec,
    c: &cutover::spec::Component,
    r: &cutover::provider::Running,
    key: String,
) -> cutover::store::RevisionRow {
    cutover::store::RevisionRow {
        rev_id: 0,
        rev_key: key,
        run_id: 0,
        component: c.id.clone(),
        environment: spec.environment.clone(),
        version: r.version.clone(),
        dry_run: false,
        status: cutover::store::RevisionState::Active,
        replicas: cutover::spec::Replicas::new(i64::from(r.replicas))
            .unwrap_or(cutover::spec::Replicas::ONE),
        created_at: String::new(),
        config_json: String::new(),
    }
}
