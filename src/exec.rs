//! Short external commands: run an argv to completion under a wall-clock timeout, and find a
//! program the way `execvp` would.
//!
//! Owns: spawning (no shell, stdin closed, the command in its own process group), reading stdout
//! and stderr while the command runs (keeping the last [`KEEP`] bytes of each, so a chatty
//! command never stalls on a full pipe), killing the whole group at the timeout or when the
//! caller gives up, excerpts of output for messages, and PATH lookup. Must not touch: what an exit
//! status or output means; metric sources (`engine::sources`), validation checks
//! (`verify::checks`) and the local host (`local::process`) decide that, and this module imports
//! none of them.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes kept of each output stream (the last ones; earlier output is counted, not kept).
pub const KEEP: usize = 64 * 1024;
/// Characters of output quoted in a message.
pub const EXCERPT: usize = 200;
/// How long output may stay open after the command exited (a background child holding it)
/// before the rest of the command's process group is killed.
const DRAIN: Duration = Duration::from_millis(200);

/// Why a command gave no result.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("empty command")]
    Empty,
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}`: {source}")]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Killed, with everything it started, at the timeout; `printed` quotes the end of its output.
    #[error("`{program}` did not finish within {timeout:?}{printed}")]
    TimedOut {
        program: String,
        timeout: Duration,
        printed: String,
    },
}

/// Why a program cannot be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFound {
    #[error("empty command")]
    Empty,
    #[error("`{0}` does not exist")]
    Missing(String),
    #[error("`{0}` is not an executable file")]
    NotExecutable(String),
    #[error("`{0}` is not on PATH")]
    NotOnPath(String),
}

/// Find a program like execvp would: a path with '/' as is, else on PATH.
pub fn resolve(program: &str) -> Result<PathBuf, NotFound> {
    let check = |p: &Path| -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.is_empty() {
        return Err(NotFound::Empty);
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return if check(&p) {
            Ok(p)
        } else if p.exists() {
            Err(NotFound::NotExecutable(program.to_string()))
        } else {
            Err(NotFound::Missing(program.to_string()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(program);
        if check(&p) {
            return Ok(p);
        }
    }
    Err(NotFound::NotOnPath(program.to_string()))
}

/// One output stream: how many bytes came, and the last [`KEEP`] of them.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    tail: Vec<u8>,
    total: u64,
}

impl Captured {
    fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * KEEP {
            self.tail.drain(..self.tail.len() - KEEP);
        }
    }

    fn kept(&self) -> &[u8] {
        &self.tail[self.tail.len().saturating_sub(KEEP)..]
    }

    /// Bytes the stream carried in all.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Everything the stream carried is kept.
    pub fn complete(&self) -> bool {
        self.total == self.kept().len() as u64
    }

    /// The kept bytes as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.kept())
    }

    /// The end of the output on one line, at most [`EXCERPT`] characters; empty if it was blank.
    pub fn excerpt(&self) -> String {
        let text: String = self
            .text()
            .chars()
            .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
            .collect();
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let joined = lines.join(" | ");
        let n = joined.chars().count();
        if n <= EXCERPT && self.complete() {
            joined
        } else {
            let skip = n.saturating_sub(EXCERPT);
            format!("...{}", joined.chars().skip(skip).collect::<String>())
        }
    }
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// The process group of a spawned command: killed when dropped unless disarmed, so a command
/// abandoned by its caller (a cancelled task) takes what it started with it.
struct Group(Option<u32>);

impl Group {
    fn kill(&self) {
        if let Some(pid) = self
            .0
            .and_then(|p| i32::try_from(p).ok())
            .filter(|p| *p > 1)
        {
            // SAFETY: kill(2) has no memory-safety preconditions; a gone group only yields ESRCH.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A wall-clock timer that holds a blocking-pool thread while it runs: tokio's own timers follow a
/// dry run's paused (virtual) clock, which would expire at once while a real process runs, and
/// the blocking task also keeps that clock from jumping ahead meanwhile. Dropping it cancels it.
struct WallTimer {
    _cancel: std::sync::mpsc::Sender<()>,
    fired: tokio::sync::oneshot::Receiver<()>,
}

impl WallTimer {
    fn start(after: Duration) -> WallTimer {
        let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
        let (fire, fired) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = cancelled.recv_timeout(after) {
                let _ = fire.send(());
            }
        });
        WallTimer {
            _cancel: cancel,
            fired,
        }
    }

    async fn expired(&mut self) {
        if (&mut self.fired).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn drain(pipe: Option<impl AsyncRead + Unpin>, into: &mut Captured) {
    let Some(mut pipe) = pipe else {
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => into.push(&buf[..n]),
        }
    }
}

fn printed(stdout: &Captured, stderr: &Captured) -> String {
    let mut s = String::new();
    for (name, c) in [("stdout", stdout), ("stderr", stderr)] {
        let e = c.excerpt();
        if !e.is_empty() {
            s.push_str(&format!("; {name}: {e}"));
        }
    }
    s
}

/// Run `argv` with `env` added to this process's environment until it exits and its output
/// closes, or `timeout` (wall clock) passes; then the command and everything it started in its
/// process group are killed. Output is read while the command runs.
pub async fn run(
    argv: &[String],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Output, ExecError> {
    let (program, args) = argv.split_first().ok_or(ExecError::Empty)?;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ExecError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut group = Group(child.id());
    let mut deadline = WallTimer::start(timeout);
    let (out_pipe, err_pipe) = (child.stdout.take(), child.stderr.take());
    let (mut stdout, mut stderr) = (Captured::default(), Captured::default());
    let ended = {
        let reading = async {
            tokio::join!(drain(out_pipe, &mut stdout), drain(err_pipe, &mut stderr));
        };
        tokio::pin!(reading);
        tokio::select! {
            // Exited: what it printed is in the pipes; let them drain, but not forever.
            st = child.wait() => {
                let mut grace = WallTimer::start(DRAIN);
                tokio::select! {
                    _ = &mut reading => {}
                    // Something it started still holds its output: end it with the group.
                    _ = grace.expired() => group.kill(),
                    _ = deadline.expired() => group.kill(),
                }
                Some(st)
            }
            // Output closed: now wait for the exit.
            _ = &mut reading => tokio::select! {
                st = child.wait() => Some(st),
                _ = deadline.expired() => None,
            },
            _ = deadline.expired() => None,
        }
    };
    let Some(status) = ended else {
        // Killed with everything it started; dropping the child reaps it in the background.
        group.kill();
        drop(child);
        return Err(ExecError::TimedOut {
            program: program.clone(),
            timeout,
            printed: printed(&stdout, &stderr),
        });
    };
    group.disarm();
    let status = status.map_err(|source| ExecError::Wait {
        program: program.clone(),
        source,
    })?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        assert!(resolve("sh").is_ok());
        assert!(resolve("/bin/sh").is_ok());
        assert!(resolve("/no/such/thing")
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
        assert!(resolve("no-such-program-here")
            .unwrap_err()
            .to_string()
            .contains("PATH"));
    }

    #[test]
    fn captures_keep_the_end_and_count_the_rest() {
        let mut c = Captured::default();
        c.push(b"first line\n");
        assert!(c.complete());
        assert_eq!(c.excerpt(), "first line");
        for _ in 0..3 * KEEP / 8 {
            c.push(b"0123456\n");
        }
        c.push(b"last words\n");
        assert!(!c.complete());
        assert_eq!(c.total(), (11 + 3 * KEEP + 11) as u64);
        assert_eq!(c.text().len(), KEEP);
        let e = c.excerpt();
        assert!(
            e.starts_with("...") && e.ends_with("0123456 | last words"),
            "{e}"
        );
        assert_eq!(e.chars().count(), EXCERPT + 3);
    }

    #[tokio::test]
    async fn exit_status_and_both_streams() {
        let sh = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
        let t = Duration::from_secs(5);
        let out = run(&sh("echo out; echo err >&2; exit 3"), &[], t)
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout.text(), "out\n");
        assert_eq!(out.stderr.excerpt(), "err");
        let env = [("CUTOVER_X".to_string(), "7".to_string())];
        let out = run(&sh("echo $CUTOVER_X"), &env, t).await.unwrap();
        assert_eq!(out.stdout.text(), "7\n");
        assert!(matches!(
            run(&["/no/such/cmd".to_string()], &[], t).await,
            Err(ExecError::Spawn { .. })
        ));
        assert!(matches!(run(&[], &[], t).await, Err(ExecError::Empty)));
    }

    /// A background child that keeps the output open does not hold the result until the
    /// timeout: it goes with the command's group shortly after the command exits.
    #[tokio::test]
    async fn a_background_child_holding_the_output_is_ended() {
        let argv = ["sh", "-c", "sleep 30 & echo 5"].map(String::from);
        let t0 = std::time::Instant::now();
        let out = run(&argv, &[], Duration::from_secs(10)).await.unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.text(), "5\n");
        assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    }

    /// On a paused (virtual) clock, as in a dry run, the timeout still counts real time.
    #[tokio::test(start_paused = true)]
    async fn the_timeout_is_wall_clock() {
        let argv = ["sh", "-c", "sleep 0.3; echo done"].map(String::from);
        let out = run(&argv, &[], Duration::from_secs(5)).await.unwrap();
        assert_eq!(out.stdout.text(), "done\n");
    }
}
