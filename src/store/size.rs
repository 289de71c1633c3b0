//! How big the store is: runs, journal lines and their bytes, and the database's pages, for
//! benchmarks and for choosing what to prune.
//!
//! Owns: those measures. Must not touch: any row.

use super::{Result, Store};

/// The store's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Size {
    pub runs: u64,
    pub events: u64,
    /// The journal lines as stored (compressed or not), summed.
    pub event_bytes: u64,
    /// The pages the journal takes: its table and its index.
    pub journal_bytes: u64,
    /// The database's pages in use (free pages left out).
    pub db_bytes: u64,
}

impl Store {
    /// Count everything (reads the whole journal: for benchmarks and maintenance, not for a
    /// console's refresh).
    pub fn size(&self) -> Result<Size> {
        self.with(|c| {
            let runs: i64 = c.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?;
            let (events, bytes): (i64, i64) = c.query_row(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(CAST(json AS BLOB))), 0) FROM events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let journal: i64 = c.query_row(
                "SELECT COALESCE(SUM(pgsize), 0) FROM dbstat
                 WHERE name IN ('events', 'events_by_run')",
                [],
                |r| r.get(0),
            )?;
            let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            Ok(Size {
                runs: runs as u64,
                events: events as u64,
                event_bytes: bytes as u64,
                journal_bytes: journal as u64,
                db_bytes: ((pages - free).max(0) * page) as u64,
            })
        })
    }
}
