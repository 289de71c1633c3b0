//! Network clients shared by metric sources, validation checks, webhooks and probes: the one
//! HTTP client of the process, and a gRPC health check.
//!
//! Owns: building the shared HTTP client (reqwest over rustls with ring; pooled connections,
//! http and https, no redirects followed, a timeout on every request) and its trust roots,
//! one GET that returns status and body, and the wording of network errors. Must not touch: what
//! a status, body or health answer means.
//!
//! Trust roots for https: the system's (`/etc/ssl/certs` and friends; `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` replace them, as for OpenSSL and curl), plus the PEM certificates in the file
//! named by [`CA_FILE_ENV`], if set. They are read once, when the client is first used.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;

/// Names a PEM file of extra CA certificates trusted for https, on top of the system's.
pub const CA_FILE_ENV: &str = "CUTOVER_CA_FILE";
/// The timeout of a request that sets none of its own (webhooks).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response body [`http_get`] keeps.
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Idle connections kept per host for reuse.
const IDLE_PER_HOST: usize = 4;

/// Why a request gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("no HTTP client: {0}")]
    Client(String),
    #[error("bad url {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("GET {url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("GET {url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("GET {url}: the body is larger than {limit} bytes")]
    TooLarge { url: String, limit: usize },
}

static CLIENT: OnceLock<Result<reqwest::Client, NetError>> = OnceLock::new();

/// The process's HTTP client, built on first use. Building reads trust roots from disk; from
/// async code prefer [`shared`], which does that on the blocking pool.
pub fn client() -> Result<reqwest::Client, NetError> {
    CLIENT.get_or_init(build).clone()
}

/// [`client`], without blocking a runtime thread the first time.
pub async fn shared() -> Result<reqwest::Client, NetError> {
    if let Some(c) = CLIENT.get() {
        return c.clone();
    }
    tokio::task::spawn_blocking(client)
        .await
        .map_err(|e| NetError::Client(e.to_string()))?
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(DEFAULT_TIMEOUT)
        .connect_timeout(DEFAULT_TIMEOUT)
        .pool_max_idle_per_host(IDLE_PER_HOST)
        .pool_idle_timeout(Duration::from_secs(60))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
}

fn build() -> Result<reqwest::Client, NetError> {
    // reqwest is built without a default crypto provider: ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let extra = match std::env::var_os(CA_FILE_ENV) {
        Some(path) if !path.is_empty() => {
            let pem = std::fs::read(&path).map_err(|e| {
                NetError::Client(format!("{CA_FILE_ENV}={}: {e}", path.to_string_lossy()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                NetError::Client(format!("{CA_FILE_ENV}={}: {e}", path.to_string_lossy()))
            })?;
            if certs.is_empty() {
                return Err(NetError::Client(format!(
                    "{CA_FILE_ENV}={}: no PEM certificate in it",
                    path.to_string_lossy()
                )));
            }
            certs
        }
        _ => Vec::new(),
    };
    match builder().tls_certs_merge(extra.clone()).build() {
        Ok(c) => Ok(c),
        Err(e) => {
            // No system roots (a bare container): plain http still works, and https to servers
            // signed by the extra CAs, if any.
            tracing::warn!(
                "https: the system's trust roots are unusable ({}); trusting only {CA_FILE_ENV}",
                chain(&e)
            );
            builder()
                .tls_certs_only(extra)
                .build()
                .map_err(|e| NetError::Client(chain(&e)))
        }
    }
}

/// An error with its causes, `outer: inner: root`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// GET `url` (http or https) with the shared client: status and body (at most [`MAX_BODY`]),
/// within `timeout` for the whole exchange. Redirects are answers, not followed.
pub async fn http_get(url: &str, timeout: Duration) -> Result<(u16, Bytes), NetError> {
    let client = shared().await?;
    let failed = |e: reqwest::Error| {
        let e = e.without_url();
        if e.is_timeout() {
            NetError::Timeout {
                url: url.to_string(),
                timeout,
            }
        } else if e.is_builder() {
            NetError::BadUrl {
                url: url.to_string(),
                reason: chain(&e),
            }
        } else {
            NetError::Failed {
                url: url.to_string(),
                reason: chain(&e),
            }
        }
    };
    let mut resp = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(failed)?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(NetError::TooLarge {
                url: url.to_string(),
                limit: MAX_BODY,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, Bytes::from(body)))
}

/// grpc.health.v1 Check against `addr` (`host:port`); only SERVING is `Ok`.
pub async fn grpc_health(addr: &str, service: &str, timeout: Duration) -> Result<(), String> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("grpc address {addr}: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("grpc connect {addr}: {e}"))?;
    let resp = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await
        .map_err(|s| format!("grpc Check: {} {}", s.code(), s.message()))?;
    let status = resp.into_inner().status;
    if status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        let name = ServingStatus::try_from(status)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| status.to_string());
        Err(format!("grpc health: {name}"))
    }
}
