//! The host's own files in the state dir (`host.log`, `host.pid`, `host.sock`, `logs/`) and
//! their modes.
//!
//! Nothing the host writes is readable by every user: files get the state dir's sharing mode
//! (`0600`, or `0660` in a group-shared dir, see `store::modes`) and directories `0700` or
//! `0770`; existing ones (from a release that left them `0644`/`0755`) are tightened when
//! opened. Owns: creating, tightening and removing those files. Must not touch: their contents'
//! meaning.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::store::modes;

/// Whether the state dir is shared with its group.
fn shared(state_dir: &Path) -> bool {
    modes::check_dir(state_dir).unwrap_or(false)
}

/// The mode of a file the host creates in `state_dir`.
pub fn mode_for(state_dir: &Path) -> u32 {
    file_mode(state_dir)
}

fn file_mode(state_dir: &Path) -> u32 {
    modes::file_mode(shared(state_dir))
}

fn dir_mode(state_dir: &Path) -> u32 {
    if shared(state_dir) {
        0o770
    } else {
        0o700
    }
}

/// Give `path` mode `want` (keeping setgid on directories): no world bits even if it had
/// them, and the group's bits of a shared dir even if the umask took them.
fn tighten(path: &Path, want: u32) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o777 != want {
        std::fs::set_permissions(
            path,
            std::fs::Permissions::from_mode((mode & 0o2000) | want),
        )?;
    }
    Ok(())
}

/// Set a file the host created (its socket) to the state dir's file mode.
pub fn restrict(path: &Path, state_dir: &Path) -> io::Result<()> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(file_mode(state_dir)))
}

/// Open a log file for appending, created without world access, tightened if it had it.
pub fn open_log(path: &Path, state_dir: &Path) -> io::Result<File> {
    let want = file_mode(state_dir);
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(want)
        .open(path)?;
    if let Err(e) = tighten(path, want) {
        tracing::warn!("cannot restrict {}: {e}", path.display());
    }
    Ok(f)
}

/// Create `dir` (and missing parents below the state dir) without world access; tighten it if
/// it exists with world access.
pub fn create_dir(dir: &Path, state_dir: &Path) -> io::Result<()> {
    let want = dir_mode(state_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(want)
        .create(dir)?;
    // Tighten each level from the state dir down (the state dir itself is the store's).
    let mut level = dir;
    while level != state_dir && level.starts_with(state_dir) {
        if let Err(e) = tighten(level, want) {
            tracing::warn!("cannot restrict {}: {e}", level.display());
        }
        match level.parent() {
            Some(p) => level = p,
            None => break,
        }
    }
    Ok(())
}

/// Write this process's pid to `path` without world access.
pub fn write_pid_file(path: &Path, state_dir: &Path) -> io::Result<()> {
    let want = file_mode(state_dir);
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(want)
        .open(path)?;
    tighten(path, want)?;
    io::Write::write_all(&mut f, std::process::id().to_string().as_bytes())
}

/// Remove a pid file only if it names `pid` (a newer host may have written its own).
pub fn remove_pid_file(path: &Path, pid: u32) {
    let names_pid = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        == Some(pid);
    if names_pid {
        let _ = std::fs::remove_file(path);
    }
}

/// The identity (device, inode) of the file at `path`.
pub fn identity(path: &Path) -> io::Result<(u64, u64)> {
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.dev(), m.ino()))
}

/// Remove `path` only if it is still the file with identity `ident` (another host may have
/// bound a socket there since).
pub fn remove_if_same(path: &Path, ident: (u64, u64)) -> bool {
    if identity(path).ok() == Some(ident) {
        return std::fs::remove_file(path).is_ok();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn logs_pid_file_and_log_dirs_have_no_world_bits_even_when_they_had() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path();
        // A state dir left 0755 by an older release, with world-readable files in it.
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let log = state.join("host.log");
        std::fs::write(&log, "old\n").unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        let logs = state.join("logs");
        std::fs::create_dir(&logs).unwrap();
        std::fs::set_permissions(&logs, std::fs::Permissions::from_mode(0o755)).unwrap();
        open_log(&log, state).unwrap();
        assert_eq!(mode(&log), 0o600);
        create_dir(&logs.join("web"), state).unwrap();
        assert_eq!(mode(&logs), 0o700);
        assert_eq!(mode(&logs.join("web")), 0o700);
        let inst = logs.join("web").join("web@1-0.log");
        open_log(&inst, state).unwrap();
        assert_eq!(mode(&inst), 0o600);
        let pid = state.join("host.pid");
        std::fs::write(&pid, "1").unwrap();
        std::fs::set_permissions(&pid, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_pid_file(&pid, state).unwrap();
        assert_eq!(mode(&pid), 0o600);
        assert_eq!(
            std::fs::read_to_string(&pid).unwrap(),
            std::process::id().to_string()
        );

        // A team dir: the group keeps access (a second operator approves from another
        // terminal), nobody else has any.
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o2770)).unwrap();
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o664)).unwrap();
        open_log(&log, state).unwrap();
        assert_eq!(mode(&log), 0o660);
        let team = logs.join("api");
        create_dir(&team, state).unwrap();
        assert_eq!(mode(&team) & 0o777, 0o770);
        std::fs::set_permissions(state, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn a_pid_file_or_socket_is_removed_only_when_it_is_still_ours() {
        let d = tempfile::tempdir().unwrap();
        let pid = d.path().join("host.pid");
        std::fs::write(&pid, "4242").unwrap();
        remove_pid_file(&pid, 4243);
        assert!(pid.exists(), "another host's pid file stays");
        remove_pid_file(&pid, 4242);
        assert!(!pid.exists());

        let sock = d.path().join("host.sock");
        let first = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let ident = identity(&sock).unwrap();
        // Another host replaced the socket file.
        std::fs::remove_file(&sock).unwrap();
        let second = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(!remove_if_same(&sock, ident), "not ours any more");
        assert!(sock.exists());
        let ident2 = identity(&sock).unwrap();
        assert!(remove_if_same(&sock, ident2));
        assert!(!sock.exists());
        drop((first, second));
    }
}
