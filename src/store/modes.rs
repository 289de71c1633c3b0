//! File modes of the state dir, for one operator or a team.
//!
//! One operator: the dir is `0700` and the database files `0600` (the default when cutover
//! creates the dir). A team: make the dir group-owned, group-writable and setgid (`chgrp ops
//! DIR; chmod 2770 DIR`); cutover then keeps the database files `0660` so every member's
//! processes can read the state and write commands and approvals, and the local host's socket
//! `0660`. A dir that every user may write is refused.
//!
//! Owns: checking the dir at start and setting the modes of files cutover creates.
//! Must not touch: file contents.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::{Result, StoreError};

/// Whether the state dir is shared by its group; an error if it is open to everyone.
pub fn check_dir(dir: &Path) -> Result<bool> {
    let meta = std::fs::metadata(dir).map_err(|source| StoreError::Dir {
        path: dir.display().to_string(),
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        return Err(StoreError::Data(format!(
            "{} is writable by every user (mode {mode:04o}): anyone could forge commands and approvals. Use 0700 for one operator, or 2770 with a group for a team",
            dir.display()
        )));
    }
    Ok(mode & 0o020 != 0)
}

/// The mode files in the dir should have.
pub fn file_mode(shared: bool) -> u32 {
    if shared {
        0o660
    } else {
        0o600
    }
}

/// Give the database files the dir's sharing mode, where this user owns them (others' files
/// are theirs to fix; a warning says so).
pub fn fix_files(dir: &Path, shared: bool) {
    let uid = crate::identity::real_uid();
    for name in ["cutover.db", "cutover.db-wal", "cutover.db-shm"] {
        let p = dir.join(name);
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        let want = file_mode(shared);
        if meta.mode() & 0o777 == want {
            continue;
        }
        if meta.uid() == uid {
            if let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(want)) {
                tracing::warn!("cannot set mode {want:o} on {}: {e}", p.display());
            }
        } else if shared && meta.mode() & 0o060 != 0o060 {
            tracing::warn!(
                "{} is not group read-write (mode {:o}); its owner should run chmod 660 on it",
                p.display(),
                meta.mode() & 0o777
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_shared_and_open_dirs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!check_dir(p).unwrap());
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o2770)).unwrap();
        assert!(check_dir(p).unwrap());
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_dir(p).unwrap_err().to_string();
        assert!(e.contains("writable by every user"), "{e}");
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn the_store_keeps_its_files_at_the_dirs_mode() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("team");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2770)).unwrap();
        let s = crate::store::Store::open(&dir).unwrap();
        drop(s);
        let m = std::fs::metadata(dir.join("cutover.db")).unwrap().mode() & 0o777;
        assert_eq!(m, 0o660);
    }
}
