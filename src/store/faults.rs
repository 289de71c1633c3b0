//! Store failures that pass: which SQLite errors are worth trying again (the database is busy or
//! locked by another connection, the disk is full, the file is read-only, an I/O error), and the
//! bounded backoff of one blocking call on SQLITE_BUSY.
//!
//! Owns: the classification and the blocking retry loop's timing. Must not touch: what is
//! written, or how long a caller that queues its writes (the engine's journal) keeps trying.

use std::time::Duration;

use rusqlite::ErrorCode;

/// How long SQLite itself waits for a lock held by another connection, per statement.
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// How long one blocking store call keeps trying while the database is busy, in all: no call
/// holds a worker thread (or this handle's connection) much longer.
pub const PATIENCE: Duration = Duration::from_secs(3);

/// The first pause between two tries of a busy call; it doubles up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(25);
pub const MAX_PAUSE: Duration = Duration::from_millis(400);

/// A failure that may pass by itself (or once someone acts): a write can be tried again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Another connection holds the database (SQLITE_BUSY, SQLITE_LOCKED).
    Busy,
    /// The disk (or the database's page limit) is full (SQLITE_FULL).
    Full,
    /// The database cannot be written by this process (SQLITE_READONLY).
    ReadOnly,
    /// The file system failed a read or a write (SQLITE_IOERR, SQLITE_CANTOPEN).
    Io,
}

impl Fault {
    /// The passing fault behind a SQLite error, if it is one.
    pub fn of(e: &rusqlite::Error) -> Option<Fault> {
        match e.sqlite_error_code()? {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => Some(Fault::Busy),
            ErrorCode::DiskFull => Some(Fault::Full),
            ErrorCode::ReadOnly => Some(Fault::ReadOnly),
            ErrorCode::SystemIoFailure | ErrorCode::CannotOpen => Some(Fault::Io),
            _ => None,
        }
    }

    /// What the operator can do about it, for a message.
    pub fn hint(self) -> &'static str {
        match self {
            Fault::Busy => "another process holds the database",
            Fault::Full => "the disk is full: free space",
            Fault::ReadOnly => {
                "this process cannot write it: check the permissions of the file and its directory"
            }
            Fault::Io => "the file system failed",
        }
    }
}

/// The pause after `pause`: doubled, at most [`MAX_PAUSE`].
pub fn next_pause(pause: Duration) -> Duration {
    (pause * 2).min(MAX_PAUSE)
}

/// Try `f` until it succeeds, fails with anything but [`Fault::Busy`], or [`PATIENCE`] is spent
/// (then its last error). Blocking: sleeps the calling thread between tries.
pub fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let start = std::time::Instant::now();
    let mut pause = FIRST_PAUSE;
    loop {
        match f() {
            Err(e) if Fault::of(&e) == Some(Fault::Busy) && start.elapsed() + pause < PATIENCE => {
                std::thread::sleep(pause);
                pause = next_pause(pause);
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_classified_and_backoff_is_capped() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert_eq!(Fault::of(&busy), Some(Fault::Busy));
        assert_eq!(Fault::of(&full), Some(Fault::Full));
        assert_eq!(Fault::of(&constraint), None);
        assert_eq!(Fault::of(&rusqlite::Error::QueryReturnedNoRows), None);
        let mut p = FIRST_PAUSE;
        for _ in 0..20 {
            p = next_pause(p);
        }
        assert_eq!(p, MAX_PAUSE);
    }

    #[test]
    fn a_busy_call_is_tried_again_and_gives_up_within_patience() {
        let mut tries = 0;
        let r = retry_busy(|| {
            tries += 1;
            if tries < 3 {
                Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    None,
                ))
            } else {
                Ok(tries)
            }
        });
        assert_eq!(r.unwrap(), 3);
        let t0 = std::time::Instant::now();
        let mut tries = 0;
        let r: rusqlite::Result<()> = retry_busy(|| {
            tries += 1;
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                None,
            ))
        });
        assert!(r.is_err());
        assert!(tries > 3, "{tries}");
        assert!(t0.elapsed() < PATIENCE + MAX_PAUSE, "{:?}", t0.elapsed());
        // Anything else is not tried again.
        let mut tries = 0;
        let r: rusqlite::Result<()> = retry_busy(|| {
            tries += 1;
            Err(rusqlite::Error::QueryReturnedNoRows)
        });
        assert!(r.is_err());
        assert_eq!(tries, 1);
    }
}
