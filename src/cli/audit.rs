//! `cutover audit [--json] [--verify] [--limit N]`: the audit trail, and checking its hash chain.
//!
//! Owns: printing records and the verification verdict. Must not touch: the records themselves.

use std::path::Path;

use anyhow::Result;

use super::{open_store, FAILED, OK};
use cutover::store::audit::verify;

pub fn audit(dir: &Path, json: bool, check: bool, limit: Option<usize>) -> Result<u8> {
    let store = open_store(dir)?;
    let records = store.audit()?;
    if check {
        let head = store.audit_head()?;
        return Ok(
            match verify(&records, head.as_ref().map(|(s, h)| (*s, h.as_str()))) {
                Ok(n) => {
                    let last = records.last().map(|r| r.hash.as_str()).unwrap_or("-");
                    if json {
                        out!(
                            "{}",
                            serde_json::json!({"verified": true, "records": n, "head": last})
                        );
                    } else {
                        out!("audit trail verified: {n} record(s), chain head {last}");
                    }
                    OK
                }
                Err(broken) => {
                    if json {
                        out!(
                            "{}",
                            serde_json::json!({"verified": false, "problem": broken.to_string()})
                        );
                    } else {
                        out!("audit trail BROKEN: {broken}");
                    }
                    FAILED
                }
            },
        );
    }
    let start = limit.map_or(0, |n| records.len().saturating_sub(n));
    if records.is_empty() && !json {
        out!("the audit trail is empty");
    }
    for r in &records[start..] {
        if json {
            out!("{}", serde_json::to_string(r).unwrap_or_default());
            continue;
        }
        let e = &r.entry;
        let run = e.run.map(|n| format!("#{n}")).unwrap_or_default();
        out!(
            "{:>5} {} {:<12} {:<16} {}{run} ({}) {}",
            r.seq,
            r.ts,
            e.actor,
            e.action,
            e.deployment,
            e.environment,
            e.detail
        );
    }
    Ok(OK)
}
