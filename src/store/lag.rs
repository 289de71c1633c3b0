//! A note beside the database that a process's journal is behind: `journal-lag.PID.json` in the
//! state dir, written when that process's journal writer tells its operator that the store does
//! not take its lines, and removed when they are written. The store itself cannot say so while
//! it takes no writes; `cutover status` in another terminal reads the notes of live processes.
//! (On a full disk or a read-only dir the note may not be writable either: then only the
//! process's own output tells.)
//!
//! Owns: the note's file, format and mode. Must not touch: the database.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{modes, pid_alive, Store};

/// What one process has not written yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagNote {
    pub pid: i64,
    /// When the writes began to fail (RFC 3339).
    pub since: String,
    pub error: String,
    /// Per run: its deployment and the lines waiting.
    pub runs: Vec<(i64, String, usize)>,
}

impl LagNote {
    /// The lines waiting for `run`, if this note names it.
    pub fn lines_of(&self, run: i64) -> Option<usize> {
        self.runs.iter().find(|r| r.0 == run).map(|r| r.2)
    }
}

impl Store {
    fn dir(&self) -> Option<&std::path::Path> {
        self.path.parent()
    }

    fn lag_file(&self, pid: i64) -> Option<PathBuf> {
        Some(self.dir()?.join(format!("journal-lag.{pid}.json")))
    }

    /// Write this process's note (`Some`) or remove it (`None`); best effort (logged).
    pub fn set_lag_note(&self, note: Option<&LagNote>) {
        let Some(path) = self.lag_file(std::process::id() as i64) else {
            return;
        };
        let result = match note {
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
            Some(n) => write_note(&path, n, self.dir().is_some_and(is_shared)),
        };
        if let Err(e) = result {
            tracing::warn!("journal lag note {}: {e}", path.display());
        }
    }

    /// The notes of processes still alive.
    pub fn lag_notes(&self) -> Vec<LagNote> {
        let Some(Ok(entries)) = self.dir().map(std::fs::read_dir) else {
            return Vec::new();
        };
        let mut notes: Vec<LagNote> = entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("journal-lag.") && name.ends_with(".json")
            })
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<LagNote>(&b).ok())
            .filter(|n| pid_alive(n.pid))
            .collect();
        notes.sort_by_key(|n| n.pid);
        notes
    }
}

fn is_shared(dir: &std::path::Path) -> bool {
    modes::check_dir(dir).unwrap_or(false)
}

fn write_note(path: &std::path::Path, n: &LagNote, shared: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(modes::file_mode(shared))
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec(n).map_err(std::io::Error::other)?)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_written_read_back_while_its_process_lives_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert!(s.lag_notes().is_empty());
        let note = LagNote {
            pid: std::process::id() as i64,
            since: crate::store::now_ts(),
            error: "database is locked".into(),
            runs: vec![(3, "app".into(), 12)],
        };
        s.set_lag_note(Some(&note));
        assert_eq!(s.lag_notes(), vec![note.clone()]);
        assert_eq!(s.lag_notes()[0].lines_of(3), Some(12));
        // A dead process's note is not read.
        let dead = LagNote {
            pid: i64::from(i32::MAX),
            ..note
        };
        std::fs::write(
            dir.path().join(format!("journal-lag.{}.json", i32::MAX)),
            serde_json::to_vec(&dead).unwrap(),
        )
        .unwrap();
        assert_eq!(s.lag_notes().len(), 1);
        s.set_lag_note(None);
        assert!(s.lag_notes().is_empty());
        s.set_lag_note(None);
    }
}
