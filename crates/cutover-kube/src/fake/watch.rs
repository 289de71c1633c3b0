//! Watch streams: newline-delimited JSON events of the changes after a resourceVersion that match
//! a request's namespace and selectors, ending at `timeoutSeconds`, as the real server sends them.
//!
//! Owns: turning store changes into `ADDED`/`MODIFIED`/`DELETED`/`BOOKMARK`/`ERROR` lines.
//! Must not touch: the store's contents (it only reads them under the lock, once, at the start).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use hyper::body::Frame;
use serde_json::{json, Value};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

use super::kinds::Kind;
use super::ops::{Req, Selectors};
use super::world::{ApiError, Change, ChangeType, Signal, World};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(2);

/// What one watch request asks for.
pub(crate) struct WatchSpec {
    kind: Kind,
    ns: Option<String>,
    sel: Selectors,
    /// `None`: no resourceVersion, or "0": the current objects first, as ADDED.
    rv: Option<u64>,
    timeout: Duration,
    bookmarks: bool,
    initial_events: bool,
}

impl WatchSpec {
    pub(crate) fn from_req(req: &Req) -> Result<WatchSpec, ApiError> {
        let rv =
            match req.q("resourceVersion") {
                None | Some("") | Some("0") => None,
                Some(s) => Some(s.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {s:?}"))
                })?),
            };
        let timeout = match req.q("timeoutSeconds") {
            // Absent or 0: the server's default (the real one picks 30 to 60 minutes).
            None | Some("0") => 1800,
            Some(s) => s
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds: {s:?}")))?,
        };
        let bookmarks = req.q("allowWatchBookmarks") == Some("true");
        let initial_events = req.q("sendInitialEvents") == Some("true");
        if initial_events && !bookmarks {
            return Err(ApiError::bad_request(
                "sendInitialEvents requires allowWatchBookmarks=true",
            ));
        }
        Ok(WatchSpec {
            kind: req.kind,
            ns: req.ns.clone(),
            sel: Selectors::from_query(req)?,
            rv,
            timeout: Duration::from_secs(timeout.min(24 * 3600)),
            bookmarks,
            initial_events,
        })
    }

    fn in_scope(&self, kind: Kind, ns: &str) -> bool {
        kind == self.kind && self.ns.as_deref().is_none_or(|n| n == ns)
    }

    /// The line a change becomes for this watch, if any.
    fn line_for(&self, c: &Change) -> Option<Bytes> {
        if !self.in_scope(c.kind, &c.namespace) {
            return None;
        }
        let now = self.sel.matches(&c.object);
        let typ = match c.typ {
            ChangeType::Added if now => "ADDED",
            ChangeType::Deleted if now => "DELETED",
            ChangeType::Modified => {
                match (c.prev.as_ref().is_some_and(|p| self.sel.matches(p)), now) {
                    (true, true) => "MODIFIED",
                    (false, true) => "ADDED",
                    (true, false) => "DELETED",
                    (false, false) => return None,
                }
            }
            _ => return None,
        };
        Some(line(typ, &c.object))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": self.kind.name(), "apiVersion": self.kind.api_version(), "metadata": meta}),
        )
    }
}

fn line(typ: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": typ, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

/// The state a watch stream carries between lines.
struct Watch {
    spec: WatchSpec,
    pending: VecDeque<Bytes>,
    rx: broadcast::Receiver<Signal>,
    deadline: Instant,
    next_bookmark: Instant,
    last_rv: u64,
    done: bool,
    open: Arc<AtomicUsize>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts a watch: reads what it must replay under the store's lock, then follows the broadcast.
pub(crate) fn start(
    w: &World,
    spec: WatchSpec,
    open: Arc<AtomicUsize>,
) -> impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + 'static {
    let rx = w.subscribe();
    let mut pending = VecDeque::new();
    let mut done = false;
    match spec.rv {
        Some(rv) if !spec.initial_events => match w.history_after(rv) {
            Some(changes) => pending.extend(changes.iter().filter_map(|c| spec.line_for(c))),
            None => {
                let status = ApiError::gone(format!("too old resource version: {rv} ({})", w.rv()))
                    .to_json();
                pending.push_back(line("ERROR", &status));
                done = true;
            }
        },
        _ => {
            let objects = w.list(spec.kind, spec.ns.as_deref());
            pending.extend(
                objects
                    .into_iter()
                    .filter(|o| spec.sel.matches(o))
                    .map(|o| line("ADDED", o)),
            );
            if spec.initial_events {
                pending.push_back(spec.bookmark(w.rv(), true));
            }
        }
    }
    open.fetch_add(1, Ordering::SeqCst);
    let now = Instant::now();
    let state = Watch {
        deadline: now + spec.timeout,
        next_bookmark: now + BOOKMARK_EVERY,
        last_rv: w.rv(),
        spec,
        pending,
        rx,
        done,
        open,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(l) = st.pending.pop_front() {
                return Some((Ok(Frame::data(l)), st));
            }
            if st.done {
                return None;
            }
            tokio::select! {
                () = tokio::time::sleep_until(st.deadline) => return None,
                () = tokio::time::sleep_until(st.next_bookmark), if st.spec.bookmarks => {
                    st.next_bookmark += BOOKMARK_EVERY;
                    let b = st.spec.bookmark(st.last_rv, false);
                    st.pending.push_back(b);
                }
                msg = st.rx.recv() => match msg {
                    Ok(Signal::Change(c)) => {
                        if c.rv > st.last_rv {
                            st.last_rv = c.rv;
                            if let Some(l) = st.spec.line_for(&c) {
                                st.pending.push_back(l);
                            }
                        }
                    }
                    // The watch ends; the client resumes from the last resourceVersion it saw.
                    Ok(Signal::CloseWatches) | Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                },
            }
        }
    })
}
