//! `cutover promote ID --from ENV --to ENV [--override-reason T]`: deploy the revision verified in
//! one environment to the next, with that environment's overrides, strategy and gates; and
//! `--history` for the promotions into an environment.
//!
//! Owns: gathering the facts for the promotion rules and explaining refusals. Must not touch:
//! the rules themselves (`governance::promotion`) or running the deployment (`apply::launch`).

use std::path::Path;

use anyhow::Result;

use super::{open_store, FAILED, OK};
use cutover::governance::promotion::Ask;

pub fn promote(
    dir: &Path,
    id: &str,
    from: &str,
    to: &str,
    override_reason: Option<&str>,
    json: bool,
    auto_approve: bool,
) -> Result<u8> {
    let store = open_store(dir)?;
    // The source run says which platform to run on; the engine checks every promotion rule.
    let Some(src) = store.latest_in(id, from)? else {
        eprintln!("promotion refused: {id} has never been deployed to {from}: nothing verified there to promote");
        return Ok(FAILED);
    };
    let spec: cutover::spec::ValidSpec = match serde_json::from_str(&src.spec_json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("run #{} has an unreadable recorded spec: {e}", src.run_id);
            return Ok(FAILED);
        }
    };
    if !json {
        out!(
            "promoting {id} {} from {from} (run #{}) to {to}{}: the engine checks the rules first",
            spec.version,
            src.run_id,
            override_reason
                .map(|r| format!(", out of order: {r}"))
                .unwrap_or_default()
        );
    }
    super::apply::launch(
        dir,
        spec,
        super::apply::Headless {
            json,
            dry_run: src.dry_run,
            auto_approve,
            supersede: false,
        },
        Vec::new(),
        Some(Ask {
            deployment: id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            override_reason: override_reason.map(str::to_string),
        }),
    )
}

/// The promotions of a deployment into an environment, newest first.
pub fn history(dir: &Path, id: &str, to: &str, json: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let mut n = 0;
    for r in store.runs(Some(to), 1000)? {
        if r.deployment != id {
            continue;
        }
        let Some(p) = store.promotion(r.run_id)? else {
            continue;
        };
        n += 1;
        if json {
            out!(
                "{}",
                serde_json::json!({"run": r.run_id, "version": r.version, "from": p.from_env,
                    "to": p.to_env, "source_run": p.source_run, "by": p.actor, "at": p.ts,
                    "override_reason": p.override_reason,
                    "outcome": r.outcome.map_or(r.status, |o| o.status())})
            );
        } else {
            out!(
                "run #{} {} {}: from {} run #{} by {} at {}: {}{}",
                r.run_id,
                r.deployment,
                r.version,
                p.from_env,
                p.source_run,
                p.actor,
                p.ts,
                r.outcome.map_or(r.status, |o| o.status()),
                p.override_reason
                    .map(|o| format!(" (override: {o})"))
                    .unwrap_or_default()
            );
        }
    }
    if n == 0 && !json {
        out!("no promotions of {id} into {to}");
    }
    Ok(OK)
}
