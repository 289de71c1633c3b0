//! The local host's API: JSON lines over a Unix socket in the state dir.
//!
//! Owns: the request and response shapes shared by the host and its clients. Must not touch: I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::probe::ProbeStatus;
use crate::provider::{Metrics, RevisionKey, RevisionSpec, RevisionStatus};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Ping,
    ApplyRevision {
        rev: Box<RevisionSpec>,
        replicas: u32,
    },
    SetWeights {
        component: String,
        weights: Vec<(RevisionKey, u32)>,
    },
    RevisionStatus {
        component: String,
        rev: RevisionKey,
    },
    Metrics {
        component: String,
        rev: RevisionKey,
        window_ms: u64,
    },
    RemoveRevision {
        component: String,
        rev: RevisionKey,
    },
    Status,
    Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Pong {
        pid: u32,
        state_dir: String,
        started_at: String,
    },
    RevisionStatus {
        status: RevisionStatus,
    },
    Metrics {
        metrics: Metrics,
    },
    Status {
        status: HostStatus,
    },
    Error {
        message: String,
    },
}

/// A request line as the host reads it (the trailing newline, if any, is ignored).
pub fn decode_request(line: &str) -> Result<Request, serde_json::Error> {
    serde_json::from_str(line.trim_end())
}

/// A response as the host writes it: one JSON line, ending with a newline.
pub fn encode_response(resp: &Response) -> String {
    let mut out = serde_json::to_string(resp).unwrap_or_else(|e| {
        // The error's text is escaped by serde too, so the fallback is always valid JSON.
        let fallback = Response::Error {
            message: format!("cannot encode response: {e}"),
        };
        serde_json::to_string(&fallback).unwrap_or_else(|_| {
            r#"{"result":"error","message":"cannot encode response"}"#.to_string()
        })
    });
    out.push('\n');
    out
}

/// Everything the host runs, for `cutover host status` and the console.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HostStatus {
    /// The worker: the process that serves (`host.pid`).
    pub pid: u32,
    /// The supervisor that holds its sockets and restarts it, if one runs it.
    #[serde(default)]
    pub supervisor_pid: Option<u32>,
    pub state_dir: String,
    pub started_at: String,
    pub components: Vec<ComponentView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ComponentView {
    pub component: String,
    pub listen: String,
    pub revisions: Vec<RevisionView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RevisionView {
    pub key: RevisionKey,
    pub version: String,
    pub weight: u32,
    pub requests: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    /// Responses by status class and latency buckets since the host started serving it.
    #[serde(default)]
    pub since_start: super::metrics::Cumulative,
    pub instances: Vec<InstanceView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstanceView {
    pub id: String,
    pub pid: Option<u32>,
    pub ports: BTreeMap<String, u16>,
    pub running: bool,
    pub ready: bool,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub inflight: usize,
    pub probe: ProbeStatus,
    pub log: String,
}

/// Property tests: any line gets an answer without a panic, and every request and answer the
/// host and its clients exchange survives the JSON line round trip.
#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;
    use crate::spec::Component;

    fn name() -> impl Strategy<Value = String> {
        // Any text, newlines and quotes included: the encoding must keep a line one line.
        "\\PC{0,12}|[a-z0-9.@-]{1,12}|.*\n.*|\"\\\\\u{2028}"
    }

    fn key() -> impl Strategy<Value = RevisionKey> {
        name().prop_map(RevisionKey)
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            Just(Request::Ping),
            Just(Request::Status),
            Just(Request::Stop),
            (name(), prop::collection::vec((key(), any::<u32>()), 0..4))
                .prop_map(|(component, weights)| Request::SetWeights { component, weights }),
            (name(), key()).prop_map(|(component, rev)| Request::RevisionStatus { component, rev }),
            (name(), key(), any::<u64>()).prop_map(|(component, rev, window_ms)| {
                Request::Metrics {
                    component,
                    rev,
                    window_ms,
                }
            }),
            (name(), key()).prop_map(|(component, rev)| Request::RemoveRevision { component, rev }),
            (key(), name(), name(), any::<u32>()).prop_map(|(key, id, version, replicas)| {
                let component = Component {
                    id: id.clone(),
                    name: id,
                    version: version.clone(),
                    ..Component::default()
                };
                Request::ApplyRevision {
                    rev: Box::new(RevisionSpec {
                        key,
                        deployment: "d".into(),
                        version,
                        environment: "e".into(),
                        component,
                        run: 1,
                        step: 0,
                    }),
                    replicas,
                }
            }),
        ]
    }

    fn response() -> impl Strategy<Value = Response> {
        prop_oneof![
            Just(Response::Ok),
            name().prop_map(|message| Response::Error { message }),
            (any::<u32>(), name(), name()).prop_map(|(pid, state_dir, started_at)| {
                Response::Pong {
                    pid,
                    state_dir,
                    started_at,
                }
            }),
            (
                any::<u32>(),
                prop::collection::vec((name(), name(), any::<u32>()), 0..3)
            )
                .prop_map(|(pid, comps)| Response::Status {
                    status: HostStatus {
                        pid,
                        components: comps
                            .into_iter()
                            .map(|(component, listen, weight)| ComponentView {
                                component: component.clone(),
                                listen,
                                revisions: vec![RevisionView {
                                    key: RevisionKey(component),
                                    weight,
                                    ..RevisionView::default()
                                }],
                            })
                            .collect(),
                        ..HostStatus::default()
                    },
                }),
        ]
    }

    fn json<T: Serialize>(x: &T) -> Value {
        serde_json::to_value(x).unwrap_or(Value::Null)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_line_is_a_request_or_an_error_answer(line in "\\PC{0,120}|\\{\"op\":\"[a-z_]{0,16}\"[^}]{0,40}\\}") {
            let resp = match decode_request(&line) {
                Ok(req) => {
                    // A line that decodes is exactly what its re-encoding decodes to.
                    let again = serde_json::to_string(&req).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(json(&decode_request(&again).map_err(|e| TestCaseError::fail(e.to_string()))?), json(&req));
                    Response::Ok
                }
                Err(e) => Response::Error { message: format!("bad request: {e}") },
            };
            let out = encode_response(&resp);
            prop_assert!(out.ends_with('\n'));
            prop_assert_eq!(out.matches('\n').count(), 1);
            let back: Response = serde_json::from_str(out.trim_end()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(json(&back), json(&resp));
        }

        #[test]
        fn requests_round_trip_as_one_line(req in request(), crlf in any::<bool>()) {
            let mut line = serde_json::to_string(&req).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(!line.contains('\n'));
            line.push_str(if crlf { "\r\n" } else { "\n" });
            let back = decode_request(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line}")))?;
            prop_assert_eq!(json(&back), json(&req));
        }

        #[test]
        fn responses_round_trip_as_one_line(resp in response()) {
            let out = encode_response(&resp);
            prop_assert_eq!(out.matches('\n').count(), 1);
            prop_assert!(out.ends_with('\n'));
            let back: Response = serde_json::from_str(out.trim_end()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(json(&back), json(&resp));
        }
    }
}
