//! The Kubernetes behaviour tests' cluster: the fake API server (`cutover_kube::fake`) with a
//! namespace, a kubeconfig pointing at it, and the `cutover` binary run against it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cutover_kube::fake::FakeApiServer;
use serde_json::Value;

use super::{isolated, run_within, Out};

pub const NS: &str = "shop";

pub struct Cluster {
    pub fake: FakeApiServer,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

impl Cluster {
    pub async fn start() -> Cluster {
        let fake = FakeApiServer::start().await.expect("fake API server");
        fake.create_namespace(NS);
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        fake.write_kubeconfig(&kubeconfig, "fake", "default")
            .expect("kubeconfig");
        Cluster {
            fake,
            dir,
            kubeconfig,
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("spec file");
        p
    }

    /// `cutover ARGS...` with this cluster's kubeconfig, run off the runtime's threads (the fake
    /// API server answers on them). One that overruns is killed and the test fails with what
    /// it printed and the last requests the server saw.
    pub async fn cutover(&self, args: &[&str]) -> Out {
        self.cutover_at(self.state(), args).await
    }

    /// `cutover ARGS...` with another state dir: another machine with the same kube context.
    pub async fn cutover_at(&self, state: PathBuf, args: &[&str]) -> Out {
        let mut cmd = isolated(state, self.dir.path(), args);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env_remove("CUTOVER_KUBE_CONTEXT")
            .env_remove("CUTOVER_KUBE_NAMESPACE");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            run_within(cmd, &a, Duration::from_secs(60))
        })
        .await
        .expect("cutover ran");
        match out {
            Ok(out) => out,
            Err(e) => {
                let tail: Vec<String> = self
                    .fake
                    .requests()
                    .iter()
                    .rev()
                    .take(30)
                    .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
                    .collect();
                let status = run_within(
                    isolated(self.state(), self.dir.path(), &["status", "shop"]),
                    &["status"],
                    Duration::from_secs(20),
                )
                .map(|o| o.all())
                .unwrap_or_default();
                panic!(
                    "{e}\nstatus:\n{status}\nlast requests (newest first):\n{}",
                    tail.join("\n")
                )
            }
        }
    }

    pub async fn apply(&self, spec: &Path) -> Out {
        let s = spec.to_string_lossy().to_string();
        self.cutover(&["apply", &s, "--headless", "--json"]).await
    }

    pub fn deployments(&self) -> Vec<Value> {
        self.fake.objects("Deployment", NS)
    }

    /// The Deployments with pods asked for (a replaced revision is kept at 0 replicas).
    pub fn serving(&self) -> Vec<Value> {
        self.deployments()
            .into_iter()
            .filter(|d| replicas_of(d) > 0)
            .collect()
    }

    /// The names of the revisions kept at 0 replicas, marked retired.
    pub fn retired(&self) -> Vec<String> {
        self.deployments()
            .iter()
            .filter(|d| {
                replicas_of(d) == 0
                    && d["metadata"]["annotations"]["cutover.dev/retired"].is_string()
            })
            .map(name_of)
            .collect()
    }
}

/// The canary's stages (a short analysis at 25% and 50%).
pub const CANARY: &str = "  canaryConfig:
    stages:
      - { name: c25, percentage: 25, duration: 600, autoPromote: true }
      - { name: c50, percentage: 50, duration: 600, autoPromote: true }
      - { name: c100, percentage: 100, duration: 0, autoPromote: true }
    analysisInterval: 300
";

/// An immediate switch, verified for half a second.
pub const BLUE_GREEN: &str = "  blueGreenConfig:
    switchTraffic: { type: immediate, verifyDuration: 500 }
";

pub fn spec(version: &str, strategy: &str, image: &str, extra: &str) -> String {
    let extra = match (extra, strategy) {
        ("", "canary") => CANARY,
        ("", "blue-green") => BLUE_GREEN,
        _ => extra,
    };
    let metadata = if extra.is_empty() {
        "metadata: {}\n".to_string()
    } else {
        format!("metadata:\n{extra}")
    };
    format!(
        "id: shop
name: shop
version: '{version}'
strategy: {strategy}
environment: production
components:
  - id: api
    name: api
    version: '{version}'
    replicas: 4
    image: '{image}'
    healthCheck: {{type: http, endpoint: /health, port: 8080, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2}}
infrastructure:
  provider: kubernetes
  namespace: {NS}
rollback:
  enabled: true
  automatic: true
  triggers:
    - {{ type: health-check, condition: 'failure_rate > 0.1' }}
  strategy: {{ type: immediate }}
  timeout: 60000
{metadata}"
    )
}

pub fn events(out: &Out) -> Vec<Value> {
    out.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

pub fn name_of(v: &Value) -> String {
    v["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn replicas_of(v: &Value) -> u64 {
    v["spec"]["replicas"].as_u64().unwrap_or(0)
}
