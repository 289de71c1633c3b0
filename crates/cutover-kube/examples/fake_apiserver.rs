//! The fake API server on its own, to try cutover's Kubernetes provider without a cluster:
//!
//! ```text
//! cargo run -p cutover-kube --features fake --example fake_apiserver -- /tmp/fake.kubeconfig shop [api:shop/api:0.9.0:4]
//! KUBECONFIG=/tmp/fake.kubeconfig cargo run --release -- apply specs/kubernetes/canary.yaml
//! ```
//!
//! It writes a kubeconfig whose current context points at it (namespace as given), creates the
//! namespace, and optionally a plain Deployment `NAME` of `IMAGE` with `REPLICAS` pods labelled
//! `app: NAME` behind a Service `NAME` (as a team would have before cutover), then serves until
//! killed. Images whose tag is `crashloop`, `oom`, `pullerror`, `unschedulable` or `notready`
//! fail that way; every other pod becomes ready after half a second.

use std::time::Duration;

use cutover_kube::fake::{FakeApiServer, PodBehaviour};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(kubeconfig), Some(namespace)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fake_apiserver KUBECONFIG NAMESPACE [NAME:IMAGE:REPLICAS]");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let fake = FakeApiServer::start().await?;
        fake.create_namespace(namespace);
        fake.write_kubeconfig(std::path::Path::new(kubeconfig), "fake", namespace)?;
        for (tag, b) in [
            ("crashloop", PodBehaviour::CrashLoopBackOff),
            ("oom", PodBehaviour::OomKilled),
            ("pullerror", PodBehaviour::ImagePullBackOff),
            ("unschedulable", PodBehaviour::Unschedulable),
            ("notready", PodBehaviour::ReadinessFails),
        ] {
            fake.set_behaviour(tag, b);
        }
        if let Some(plain) = args.get(2) {
            let parts: Vec<&str> = plain.splitn(2, ':').collect();
            let (name, rest) = (parts[0], parts.get(1).copied().unwrap_or("app:latest"));
            let (image, replicas) = match rest.rsplit_once(':') {
                Some((i, n)) if n.parse::<u32>().is_ok() => (i, n.parse::<u32>().unwrap_or(1)),
                _ => (rest, 1),
            };
            fake.put_object(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": name, "image": image}]}}}
            }));
            fake.put_object(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
            }));
            println!("a plain Deployment {name} ({replicas} x {image}) and Service {name}");
        }
        println!("fake API server at {}; KUBECONFIG={kubeconfig}", fake.url());
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    })
}
