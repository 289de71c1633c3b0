//! The audit trail: every operator action and engine decision as a record that carries the hash
//! of the record before it, so that altering or removing a record breaks the chain.
//!
//! Owns: the record's shape, its canonical hashing (SHA-256 over the previous hash and the
//! record's fields as JSON, in a fixed order), verifying a chain, and the `audit` and
//! `audit_head` tables' queries. Appending reads the previous hash and writes the record in one
//! immediate transaction, so that processes sharing the store extend one chain; that is why the
//! chain's format lives with its storage. Must not touch: deciding what to record (the engine
//! and the CLI do).
//!
//! Anchoring: the chain and its head row live in the same database, so whoever can write the
//! file can rebuild the whole chain, recomputing every hash, and plain verification passes. The
//! defence lives outside the database: an [`Anchor`] (`SEQ:HASH`, the head printed by `cutover
//! audit --head`) that the operator keeps elsewhere (a ticket, a log shipped off the host, a
//! file the state dir's group cannot write). [`check_anchor`] then requires record SEQ to still
//! carry HASH; since each hash covers every record before it, a chain rewritten at or before
//! SEQ, or cut short of it, fails. Records after the newest anchor are as safe as the database.

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{now_ts, Result, Store};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What is recorded, before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub actor: String,
    /// e.g. `deploy.start`, `gate.approve`, `gate.reject`, `pause`, `rollback.start`, `refused`.
    pub action: String,
    pub deployment: String,
    pub run: Option<i64>,
    pub environment: String,
    pub detail: serde_json::Value,
}

/// A chained record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub seq: i64,
    pub ts: String,
    #[serde(flatten)]
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    ts: &'a str,
    actor: &'a str,
    action: &'a str,
    deployment: &'a str,
    run: Option<i64>,
    environment: &'a str,
    detail: &'a serde_json::Value,
}

/// The hash of a record with `seq` and `ts` following `prev`.
pub fn hash(prev: &str, seq: i64, ts: &str, e: &Entry) -> String {
    let c = Canonical {
        seq,
        ts,
        actor: &e.actor,
        action: &e.action,
        deployment: &e.deployment,
        run: e.run,
        environment: &e.environment,
        detail: &e.detail,
    };
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_string(&c).unwrap_or_default().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a chain does not verify: the first bad record.
#[derive(Debug, Clone, PartialEq)]
pub enum Broken {
    /// Its content no longer matches its hash.
    Altered { seq: i64 },
    /// Records before it are missing (removed), or it was re-chained.
    Removed { after: i64, at: i64 },
    /// The newest records were removed (the chain is shorter than its recorded head).
    Truncated { last: i64, head: i64 },
    /// The record at an anchor's position no longer carries the anchored hash: the chain was
    /// rebuilt at or before it (with every hash recomputed).
    Rewritten { seq: i64 },
    /// No record carries an anchored hash.
    NotFound { hash: String },
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Broken::Altered { seq } => write!(f, "record {seq} was altered: its content does not match its hash"),
            Broken::Removed { after, at } => write!(
                f,
                "a record was removed between {after} and {at}: record {at} does not follow the hash of {after}"
            ),
            Broken::Truncated { last, head } => write!(
                f,
                "records after {last} were removed: the chain's head says {head} records"
            ),
            Broken::Rewritten { seq } => write!(
                f,
                "record {seq} does not carry the anchored hash: the chain was rewritten at or before record {seq}"
            ),
            Broken::NotFound { hash } => write!(
                f,
                "no record carries the anchored hash {hash}: the chain was rewritten (or the anchor is another state dir's)"
            ),
        }
    }
}

/// A head kept outside the database: record `seq` of the chain had hash `hash`. Written and
/// read as `SEQ:HASH`; a bare `HASH` names the record by its hash alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: Option<i64>,
    /// 64 lowercase hex digits (SHA-256).
    pub hash: String,
}

impl Anchor {
    /// The head of an intact chain (the genesis hash at 0 for an empty one).
    pub fn head_of(records: &[Record]) -> Anchor {
        records.last().map_or_else(
            || Anchor {
                seq: Some(0),
                hash: GENESIS.into(),
            },
            |r| Anchor {
                seq: Some(r.seq),
                hash: r.hash.clone(),
            },
        )
    }
}

impl std::fmt::Display for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{seq}:{}", self.hash),
            None => f.write_str(&self.hash),
        }
    }
}

impl std::str::FromStr for Anchor {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Anchor, String> {
        let (seq, hash) = match s.trim().split_once(':') {
            Some((seq, hash)) => {
                let seq = seq
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("`{seq}` is not a record number (SEQ:HASH)"))?;
                (Some(seq), hash)
            }
            None => (None, s.trim()),
        };
        if hash.len() != GENESIS.len() || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "`{hash}` is not a SHA-256 hash (64 hex digits, as `cutover audit --head` prints)"
            ));
        }
        Ok(Anchor {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Check that a chain (already verified) still holds the anchored record unchanged: the record
/// at the anchor's position carries its hash (or, for a bare hash, some record does).
pub fn check_anchor(records: &[Record], anchor: &Anchor) -> std::result::Result<(), Broken> {
    let last = records.last().map_or(0, |r| r.seq);
    match anchor.seq {
        Some(0) if anchor.hash == GENESIS => Ok(()),
        Some(seq) => match records.iter().find(|r| r.seq == seq) {
            Some(r) if r.hash == anchor.hash => Ok(()),
            Some(_) => Err(Broken::Rewritten { seq }),
            None if seq > last => Err(Broken::Truncated { last, head: seq }),
            None => Err(Broken::Rewritten { seq }),
        },
        None if records.iter().any(|r| r.hash == anchor.hash) => Ok(()),
        None => Err(Broken::NotFound {
            hash: anchor.hash.clone(),
        }),
    }
}

/// Check a chain (oldest first) and its recorded head (the last seq and hash written).
pub fn verify(records: &[Record], head: Option<(i64, &str)>) -> std::result::Result<usize, Broken> {
    let mut prev = GENESIS.to_string();
    let mut prev_seq = 0;
    for r in records {
        if r.prev_hash != prev || r.seq != prev_seq + 1 {
            // Whether its own hash holds tells an edit of this record from a gap before it.
            if hash(&r.prev_hash, r.seq, &r.ts, &r.entry) != r.hash {
                return Err(Broken::Altered { seq: r.seq });
            }
            if r.seq != prev_seq + 1 {
                return Err(Broken::Removed {
                    after: prev_seq,
                    at: r.seq,
                });
            }
            // The previous record was altered and re-hashed.
            return Err(Broken::Altered { seq: prev_seq });
        }
        if hash(&prev, r.seq, &r.ts, &r.entry) != r.hash {
            return Err(Broken::Altered { seq: r.seq });
        }
        prev = r.hash.clone();
        prev_seq = r.seq;
    }
    if let Some((seq, h)) = head {
        if seq > prev_seq || (seq == prev_seq && h != prev) {
            return Err(Broken::Truncated {
                last: prev_seq,
                head: seq,
            });
        }
    }
    Ok(records.len())
}

/// Chain entries from scratch (tests and tools).
pub fn chain(entries: &[Entry], ts: &str) -> Vec<Record> {
    let mut prev = GENESIS.to_string();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let seq = i as i64 + 1;
        let h = hash(&prev, seq, ts, e);
        out.push(Record {
            seq,
            ts: ts.to_string(),
            entry: e.clone(),
            prev_hash: prev.clone(),
            hash: h.clone(),
        });
        prev = h;
    }
    out
}

impl Store {
    /// Append one record to the chain.
    pub fn append_audit(&self, e: &Entry) -> Result<Record> {
        self.with(|c| {
            let tx = rusqlite::Transaction::new_unchecked(c, TransactionBehavior::Immediate)?;
            let r = insert_audit(&tx, e)?;
            tx.commit()?;
            Ok(r)
        })
    }

    /// The whole chain, oldest first.
    pub fn audit(&self) -> Result<Vec<Record>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT seq, ts, actor, action, deployment, run_id, environment, detail_json, prev_hash, hash
                 FROM audit ORDER BY seq",
            )?;
            let rows = st.query_map([], |r| {
                let detail: String = r.get(7)?;
                Ok(Record {
                    seq: r.get(0)?,
                    ts: r.get(1)?,
                    entry: Entry {
                        actor: r.get(2)?,
                        action: r.get(3)?,
                        deployment: r.get(4)?,
                        run: r.get(5)?,
                        environment: r.get(6)?,
                        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
                    },
                    prev_hash: r.get(8)?,
                    hash: r.get(9)?,
                })
            })?;
            rows.collect()
        })
    }

    /// The last record's seq and hash as written (to detect removal of the newest records).
    pub fn audit_head(&self) -> Result<Option<(i64, String)>> {
        self.with(|c| {
            c.query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
    }
}

/// Append `e` to the chain inside the caller's transaction (which must be immediate, so that
/// no other writer takes the same sequence number).
pub(crate) fn insert_audit(tx: &rusqlite::Connection, e: &Entry) -> rusqlite::Result<Record> {
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (prev_seq, prev) = last.unwrap_or((0, GENESIS.to_string()));
    let seq = prev_seq + 1;
    let ts = now_ts();
    let h = hash(&prev, seq, &ts, e);
    tx.execute(
        "INSERT INTO audit (seq, ts, actor, action, deployment, run_id, environment, detail_json, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            seq,
            ts,
            e.actor,
            e.action,
            e.deployment,
            e.run,
            e.environment,
            e.detail.to_string(),
            prev,
            h
        ],
    )?;
    tx.execute(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT(id) DO UPDATE SET seq = ?1, hash = ?2",
        params![seq, h],
    )?;
    Ok(Record {
        seq,
        ts,
        entry: e.clone(),
        prev_hash: prev,
        hash: h,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        (0..5)
            .map(|i| Entry {
                actor: format!("user{i}"),
                action: "gate.approve".into(),
                deployment: "shop".into(),
                run: Some(i),
                environment: "production".into(),
                detail: serde_json::json!({"gate": "canary-50", "n": i}),
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_is_named() {
        let recs = chain(&entries(), "2026-11-26T10:00:00Z");
        let head = recs.last().map(|r| (r.seq, r.hash.clone())).unwrap();
        assert_eq!(verify(&recs, Some((head.0, &head.1))), Ok(5));
        assert_eq!(
            hash(GENESIS, 1, "t", &entries()[0]),
            hash(GENESIS, 1, "t", &entries()[0]),
            "deterministic"
        );
        let mut altered = recs.clone();
        altered[2].entry.actor = "mallory".into();
        assert_eq!(verify(&altered, None), Err(Broken::Altered { seq: 3 }));
        let mut removed = recs.clone();
        removed.remove(1);
        assert_eq!(
            verify(&removed, None),
            Err(Broken::Removed { after: 1, at: 3 })
        );
        let mut rehashed = recs.clone();
        rehashed[1].entry.detail = serde_json::json!({"forged": true});
        rehashed[1].hash = hash(
            &rehashed[1].prev_hash,
            2,
            &rehashed[1].ts,
            &rehashed[1].entry,
        );
        assert_eq!(verify(&rehashed, None), Err(Broken::Altered { seq: 2 }));
        let truncated = &recs[..4];
        assert_eq!(
            check_anchor(truncated, &Anchor::head_of(&recs)),
            Err(Broken::Truncated { last: 4, head: 5 })
        );
        assert_eq!(
            verify(truncated, Some((head.0, &head.1))),
            Err(Broken::Truncated { last: 4, head: 5 })
        );
    }

    #[test]
    fn an_anchor_kept_outside_catches_a_chain_rebuilt_with_every_hash_recomputed() {
        let recs = chain(&entries(), "2026-11-26T10:00:00Z");
        let kept = Anchor::head_of(&recs[..3]);
        assert_eq!(kept.to_string().parse::<Anchor>(), Ok(kept.clone()));
        assert_eq!(
            check_anchor(&recs, &kept),
            Ok(()),
            "later records may follow"
        );
        let bare: Anchor = kept.hash.to_uppercase().parse().unwrap();
        assert_eq!((bare.seq, check_anchor(&recs, &bare)), (None, Ok(())));
        // A writer edits record 2 and re-chains everything: it verifies, the anchor does not.
        let mut es = entries();
        es[1].actor = "mallory".into();
        let forged = chain(&es, "2026-11-26T10:00:00Z");
        assert_eq!(verify(&forged, None), Ok(5));
        assert_eq!(
            check_anchor(&forged, &kept),
            Err(Broken::Rewritten { seq: 3 })
        );
        assert_eq!(
            check_anchor(&forged, &bare),
            Err(Broken::NotFound {
                hash: kept.hash.clone()
            })
        );
        // An edit after the anchored record is beyond what the anchor covers.
        let mut later = entries();
        later[4].actor = "mallory".into();
        assert_eq!(
            check_anchor(&chain(&later, "2026-11-26T10:00:00Z"), &kept),
            Ok(())
        );
        let empty = Anchor::head_of(&[]);
        assert_eq!(empty.to_string(), format!("0:{GENESIS}"));
        assert_eq!(check_anchor(&[], &empty), Ok(()));
        for bad in [
            "",
            "abc",
            "x:abc",
            &format!("-1:{}", kept.hash),
            &"g".repeat(64),
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad}");
        }
    }
}
