//! Human-readable and JSON-lines rendering of engine events for headless runs.
//!
//! Owns: the text of events on a terminal. Must not touch: engine state.

pub use cutover::describe::human_line;
use cutover::engine::event::{Event, EventKind};

/// Print one event as a JSON line or a human line; true when it is the run's last.
pub fn show(ev: &Event, json: bool, steps: usize) -> bool {
    if json {
        out!("{}", json_line(ev));
    } else if let Some(line) = human_line(ev, steps) {
        out!("{line}");
    }
    matches!(ev.kind, EventKind::Finished { .. })
}

/// Print a run's events until it finishes.
pub async fn follow(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    json: bool,
    steps: usize,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(ev) => {
                if show(&ev, json, steps) {
                    break;
                }
            }
            Err(RecvError::Lagged(n)) => eprintln!("(skipped {n} events; see `cutover status`)"),
            Err(RecvError::Closed) => break,
        }
    }
}

pub fn json_line(ev: &Event) -> String {
    serde_json::to_string(ev)
        .unwrap_or_else(|e| format!("{{\"kind\":\"error\",\"reason\":\"{e}\"}}"))
}
