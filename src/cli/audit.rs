//! `cutover audit [--json] [--verify] [--limit N] [--head [SEQ:HASH]]`: the audit trail, checking
//! its hash chain, and anchoring its head outside the database.
//!
//! Owns: printing records, the head to keep, and the verification verdict. Must not touch: the
//! records themselves.

use std::path::Path;

use anyhow::Result;

use super::{open_store, FAILED, OK};
use cutover::store::audit::{check_anchor, verify, Anchor};

/// `head`: `Some(None)` prints the head of a verified chain; `Some(Some(a))` verifies the chain
/// against the anchor `a` kept outside the database.
pub fn audit(
    dir: &Path,
    json: bool,
    check: bool,
    limit: Option<usize>,
    head: Option<Option<Anchor>>,
) -> Result<u8> {
    let store = open_store(dir)?;
    let records = store.audit()?;
    if check || head.is_some() {
        let recorded = store.audit_head()?;
        let anchor = head.clone().flatten();
        let verdict =
            verify(&records, recorded.as_ref().map(|(s, h)| (*s, h.as_str()))).and_then(|n| {
                match &anchor {
                    Some(a) => check_anchor(&records, a).map(|()| n),
                    None => Ok(n),
                }
            });
        let kept = Anchor::head_of(&records);
        let last = records.last().map(|r| r.hash.as_str()).unwrap_or("-");
        return Ok(match verdict {
            Ok(_) if head == Some(None) => {
                if json {
                    out!(
                        "{}",
                        serde_json::json!({"verified": true, "seq": kept.seq, "hash": kept.hash, "anchor": kept.to_string()})
                    );
                } else {
                    out!("{kept}");
                }
                OK
            }
            Ok(n) => {
                if json {
                    out!(
                        "{}",
                        serde_json::json!({"verified": true, "records": n, "head": last,
                            "anchor": anchor.map(|a| a.to_string())})
                    );
                } else {
                    let against = anchor
                        .map(|a| format!(", and it holds the anchored record {a}"))
                        .unwrap_or_default();
                    out!("audit trail verified: {n} record(s), chain head {last}{against}");
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
        });
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
