//! The fake API server's HTTP side: hyper 1 on a loopback listener, routing, injected failures,
//! the request log, and JSON or streaming responses.
//!
//! Owns: the accept loop and its connection tasks (aborted with it). Must not touch: verb
//! semantics (see `ops`), watch event building (see `watch`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::kinds::{discovery, route, Route};
use super::ops::{self, Req};
use super::watch::{self, WatchSpec};
use super::world::ApiError;
use super::{lock, RequestLog, Shared};

type Body = BoxBody<Bytes, Infallible>;

/// Largest request body read (the real server's limit is 3 MiB for most objects).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Accepts connections until aborted; aborting drops the JoinSet, which aborts every
/// connection (and so every open watch stream).
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    conns.spawn(async move {
                        let svc = service_fn(move |req| handle(shared.clone(), req));
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
                // Out of file descriptors and the like: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())).boxed());
    *r.status_mut() =
        http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_json())
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let mut stalled = shared.stalled.subscribe();
    let _ = stalled.wait_for(|s| !*s).await;
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query_str = req.uri().query().unwrap_or_default().to_string();
    let header = |n: http::header::HeaderName| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let content_type = header(http::header::CONTENT_TYPE);
    let user_agent = header(http::header::USER_AGENT);
    let query: HashMap<String, String> = form_urlencoded::parse(query_str.as_bytes())
        .into_owned()
        .collect();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => {
            let err = ApiError {
                code: 413,
                reason: "RequestEntityTooLarge",
                message: format!("request body: {e}"),
                details: None,
            };
            return Ok(error_response(&err));
        }
    };
    let mut log = RequestLog {
        method: method.to_string(),
        path: path.clone(),
        query: query_str.clone(),
        is_watch: false,
        verb: String::new(),
        resource: String::new(),
        namespace: None,
        content_type: content_type.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status: 0,
    };
    let target = if query_str.is_empty() {
        path.clone()
    } else {
        format!("{path}?{query_str}")
    };
    let r = route(&path);
    let response = match r {
        Route::Object {
            kind,
            namespace,
            name,
            sub,
        } => {
            let req = Req {
                method,
                kind,
                ns: namespace,
                name,
                sub,
                query,
                content_type,
                user_agent,
                body,
            };
            log.verb = req.verb().to_string();
            log.is_watch = req.is_watch();
            log.resource = match &req.sub {
                Some(s) => format!("{}/{s}", kind.plural()),
                None => kind.plural().to_string(),
            };
            log.namespace = req.ns.clone();
            if let Some(code) = shared.take_fault(log.method.as_str(), &target) {
                let name = req.name.clone().unwrap_or_default();
                let what = (kind, log.resource.as_str());
                error_response(&ApiError::injected(
                    code,
                    &log.verb,
                    Some(what),
                    req.ns.as_deref(),
                    &name,
                ))
            } else if req.is_watch() {
                watch_response(&shared, &req)
            } else {
                let result = ops::handle(&mut lock(&shared.world), &req);
                match result {
                    Ok((code, v)) => json_response(code, &v),
                    Err(e) => error_response(&e),
                }
            }
        }
        Route::Unknown => {
            log.verb = method.as_str().to_ascii_lowercase();
            match shared.take_fault(log.method.as_str(), &target) {
                Some(code) => error_response(&ApiError::injected(code, &log.verb, None, None, "")),
                None => error_response(&ApiError {
                    code: 404,
                    reason: "NotFound",
                    message: "the server could not find the requested resource".into(),
                    details: None,
                }),
            }
        }
        other => {
            log.verb = "get".into();
            log.resource = path.clone();
            match (
                shared.take_fault(log.method.as_str(), &target),
                discovery(&other),
            ) {
                (Some(code), _) => error_response(&ApiError::injected(code, "get", None, None, "")),
                (None, Some(doc)) if method == http::Method::GET => json_response(200, &doc),
                _ => error_response(&ApiError::method_not_allowed()),
            }
        }
    };
    log.status = response.status().as_u16();
    lock(&shared.log).push(log);
    Ok(response)
}

fn watch_response(shared: &Shared, req: &Req) -> Response<Body> {
    let spec = match WatchSpec::from_req(req) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let stream = watch::start(&lock(&shared.world), spec, shared.open_watches.clone());
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}
