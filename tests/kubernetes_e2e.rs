//! End to end on a REAL cluster (kind, k3d, minikube or any other): opt-in, ignored by default,
//! because no API server can run on the machines that build cutover (see README "Kubernetes").
//!
//! ```sh
//! kind create cluster --name cutover            # or k3d / minikube
//! kubectl create namespace cutover-e2e
//! kubectl -n cutover-e2e apply -f deploy/kubernetes/rbac.yaml   # optional: as a restricted user
//! CUTOVER_E2E_KUBECONFIG=$HOME/.kube/config cargo test --test kubernetes_e2e -- --ignored
//! ```
//! Optional: `CUTOVER_E2E_CONTEXT`, `CUTOVER_E2E_NAMESPACE` (default `cutover-e2e`, which must
//! exist), `CUTOVER_E2E_IMAGE_V1` / `_V2` (default `nginx:1.27-alpine` / `nginx:1.28-alpine`,
//! both answer HTTP on port 80). Run with `--ignored` and no kubeconfig, each test FAILS, saying
//! what to set: an opt-in test never passes silently.

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{isolated, run_within, Out};
use serde_json::Value;

struct Real {
    kubeconfig: PathBuf,
    context: Option<String>,
    namespace: String,
    dir: tempfile::TempDir,
}

fn real() -> Real {
    let Some(kubeconfig) = std::env::var_os("CUTOVER_E2E_KUBECONFIG") else {
        panic!(
            "this opt-in test needs a real cluster: set CUTOVER_E2E_KUBECONFIG to a kubeconfig \
             (kind, k3d or minikube) and run `cargo test --test kubernetes_e2e -- --ignored`"
        );
    };
    Real {
        kubeconfig: PathBuf::from(kubeconfig),
        context: std::env::var("CUTOVER_E2E_CONTEXT").ok(),
        namespace: std::env::var("CUTOVER_E2E_NAMESPACE").unwrap_or_else(|_| "cutover-e2e".into()),
        dir: tempfile::tempdir().expect("tempdir"),
    }
}

impl Real {
    fn cutover(&self, args: &[&str]) -> Out {
        let mut cmd = isolated(self.dir.path().join("state"), self.dir.path(), args);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("CUTOVER_KUBE_NAMESPACE", &self.namespace);
        match &self.context {
            Some(c) => cmd.env("CUTOVER_KUBE_CONTEXT", c),
            None => cmd.env_remove("CUTOVER_KUBE_CONTEXT"),
        };
        run_within(cmd, args, Duration::from_secs(600)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("spec");
        p
    }

    fn apply(&self, spec: &Path) -> Out {
        let s = spec.to_string_lossy().to_string();
        self.cutover(&["apply", &s, "--headless", "--json"])
    }
}

fn image(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.into())
}

fn spec(id: &str, version: &str, image: &str) -> String {
    format!(
        "id: {id}
name: {id}
version: '{version}'
strategy: canary
environment: e2e
components:
  - id: {id}
    name: {id}
    version: '{version}'
    replicas: 2
    image: '{image}'
    ports: {{ http: 80 }}
    healthCheck: {{type: http, endpoint: /, port: 80, periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 3}}
infrastructure:
  provider: kubernetes
rollback:
  enabled: true
  automatic: true
  triggers:
    - {{ type: health-check, condition: 'failure_rate > 0.1' }}
  strategy: {{ type: immediate }}
  timeout: 300000
metadata:
  progressDeadline: 240000
  canaryConfig:
    stages:
      - {{ name: half, percentage: 50, duration: 10000, autoPromote: true }}
      - {{ name: all, percentage: 100, duration: 0, autoPromote: true }}
    analysisInterval: 5000
"
    )
}

#[test]
#[ignore = "needs a real cluster: CUTOVER_E2E_KUBECONFIG (see the module doc)"]
fn a_canary_on_a_real_cluster_succeeds_then_a_bad_image_rolls_back() {
    let r = real();
    let v1 = image("CUTOVER_E2E_IMAGE_V1", "nginx:1.27-alpine");
    let v2 = image("CUTOVER_E2E_IMAGE_V2", "nginx:1.28-alpine");
    let out = r.apply(&r.write("v1.yaml", &spec("e2e-web", "1.0.0", &v1)));
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = r.apply(&r.write("v2.yaml", &spec("e2e-web", "2.0.0", &v2)));
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = r.apply(&r.write(
        "v3.yaml",
        &spec("e2e-web", "3.0.0", "registry.invalid/cutover/missing:0"),
    ));
    assert_eq!(out.code(), 1, "{}", out.explain());
    let fin: Value = out.finished();
    assert_eq!(fin["outcome"], "rolled_back", "{fin}");
    assert!(
        fin["reason"]
            .as_str()
            .is_some_and(|r| r.contains("ImagePull") || r.contains("ErrImage")),
        "{fin}"
    );
    // From the cluster's objects alone: 2.0.0 serves, 1.0.0 is kept at 0 replicas; a cluster
    // rollback restores 1.0.0.
    let out = r.cutover(&["status", "e2e-web", "--cluster", "--json"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let view: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    let revs = &view["components"][0]["revisions"];
    assert_eq!(revs[0]["version"], "2.0.0", "{view}");
    assert_eq!(revs[0]["state"], "serving", "{view}");
    assert!(
        revs.as_array().is_some_and(|rs| rs
            .iter()
            .any(|r| r["version"] == "1.0.0" && r["state"] == "retired")),
        "{view}"
    );
    let out = r.cutover(&["rollback", "e2e-web", "--cluster"]);
    assert_eq!(out.code(), 0, "{}", out.explain());
    let out = r.cutover(&["status", "e2e-web", "--cluster", "--json"]);
    let view: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(
        view["components"][0]["revisions"][0]["version"], "1.0.0",
        "{view}"
    );
}
