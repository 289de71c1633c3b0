//! Commands between processes: how a command for a run owned by another cutover process is
//! written to the store, and how that process's answer is written and read back.
//!
//! Owns: the sender's side: writing the command and waiting for its answer (encoded by
//! `refusal`). Must not touch: what a command does (the run decides).

use std::time::{Duration, Instant};

use super::refusal::{decode_answer, Answer, Refusal};
use super::Command;
use crate::store::{pid_alive, Store, StoreError};

/// Write a command for the process that owns `run` and wait (up to `timeout`) for its answer.
/// The inner `Err` is the run's refusal or why no answer came.
pub fn send(
    store: &Store,
    run: i64,
    command: &Command,
    actor: &str,
    timeout: Duration,
) -> Result<Answer, StoreError> {
    let args = serde_json::to_string(command).map_err(|e| StoreError::Data(e.to_string()))?;
    let id = store.enqueue_command(run, command.name(), &args, actor)?;
    let start = Instant::now();
    loop {
        if let Some(res) = store.command_result(id)? {
            return Ok(decode_answer(&res));
        }
        let owned = store
            .run(run)?
            .is_some_and(|r| !r.is_finished() && r.owner_pid.is_some_and(pid_alive));
        if !owned {
            // The run answers in the store before it moves on: look once more.
            return Ok(match store.command_result(id)? {
                Some(res) => decode_answer(&res),
                None => Err(Refusal::NoAnswer(
                    "the run finished or its process exited before taking the command".into(),
                )),
            });
        }
        if start.elapsed() >= timeout {
            return Ok(Err(Refusal::NoAnswer(format!(
                "no answer from the process that runs this deployment within {}s",
                timeout.as_secs()
            ))));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
