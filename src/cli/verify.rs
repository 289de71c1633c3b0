//! `cutover verify ID [--json]`: the spec's post-deployment, health, performance and security
//! checks against the live deployment, with evidence and an overall score.
//!
//! Owns: choosing what to check against (the serving revisions, the local host if it runs) and
//! printing the report. Must not touch: the deployment.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use super::{open_store, FAILED, INVALID, OK};
use cutover::platform;
use cutover::provider::{Provider, RevisionKey};
use cutover::spec::{ProviderKind, Spec};
use cutover::verify::{self, CheckStatus, Target};

pub fn verify(dir: &Path, id: &str, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let Some(run) = store.find_run(id)? else {
        eprintln!("no deployment `{id}` in {}", dir.display());
        return Ok(INVALID);
    };
    let spec: Spec = serde_json::from_str(&run.spec_json)?;
    let mut revisions = BTreeMap::new();
    let mut serving = Vec::new();
    for c in &spec.components {
        if let Some(r) = store.active_revision(&c.id, &spec.environment, run.dry_run)? {
            revisions.insert(c.id.clone(), RevisionKey(r.rev_key));
            serving.push(c.id.clone());
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        // Check what serves now: the local host if it runs (never started for a check).
        let provider: Option<Arc<dyn Provider>> = match run.provider {
            ProviderKind::Simulated => None,
            kind => {
                let built = match platform::Request::new(dir) {
                    Ok(req) => {
                        let mut req = req.for_spec(&spec);
                        req.start_host = false;
                        platform::build(kind, &req).await
                    }
                    Err(e) => Err(e),
                };
                match built {
                    Ok(b) => Some(b.provider),
                    Err(e) => {
                        eprintln!("note: {e}; live checks will fail");
                        None
                    }
                }
            }
        };
        let target = Target {
            spec,
            provider,
            revisions,
            serving,
            exe: std::env::current_exe().unwrap_or_default(),
        };
        verify::verify(&target).await
    });
    if json {
        out!("{}", serde_json::to_string(&report)?);
    } else {
        for c in &report.checks {
            let mark = match c.status {
                CheckStatus::Pass => "PASS ",
                CheckStatus::Fail => "FAIL ",
                CheckStatus::Error => "ERROR",
                CheckStatus::Skipped => "SKIP ",
            };
            out!(
                "{mark} {:<15} {}{}: {}",
                c.category,
                c.name,
                c.component
                    .as_ref()
                    .map(|x| format!(" [{x}]"))
                    .unwrap_or_default(),
                c.evidence
            );
        }
        if report.checks.is_empty() {
            out!("the spec's validation block has no post-deployment, health, performance or security checks");
        }
        out!(
            "{}: success {}, overall score {}/100",
            report.deployment,
            report.success,
            report.overall_score
        );
    }
    Ok(if report.success { OK } else { FAILED })
}
