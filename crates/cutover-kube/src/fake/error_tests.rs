//! The fake API server's failures through a real `kube::Client`: injected errors, unknown
//! namespaces, bad requests answered with `Status` bodies, a stalled server, kubeconfig loading.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::tests::{api_code, deployment, WAIT};
use super::FakeApiServer;

#[tokio::test]
async fn injected_failures_answer_with_the_code_then_stop() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Deployment> = Api::namespaced(fake.client("shop"), "shop");
    fake.create_namespace("shop");
    fake.fail_next("PATCH", "/deployments/web", 403, 1);
    let pp = PatchParams::apply("cutover").force();
    let e = api
        .patch("web", &pp, &Patch::Apply(deployment("web", "img", 1)))
        .await
        .unwrap_err();
    let (code, reason, msg) = api_code(&e).unwrap();
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    assert!(
        msg.contains(
            "cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
        ),
        "{msg}"
    );
    api.patch("web", &pp, &Patch::Apply(deployment("web", "img", 1)))
        .await
        .unwrap();
    fake.fail_next("*", "/deployments", 500, 2);
    for _ in 0..2 {
        let e = api.get("web").await.unwrap_err();
        assert_eq!(api_code(&e).map(|c| c.0), Some(500));
    }
    api.get("web").await.unwrap();
    fake.fail_next("GET", "/scale", 403, 1);
    let e = api.get_scale("web").await.unwrap_err();
    let msg = api_code(&e).unwrap().2;
    assert!(
        msg.starts_with("deployments.apps \"web\" is forbidden: User"),
        "{msg}"
    );
    assert!(
        msg.contains("cannot get resource \"deployments/scale\""),
        "{msg}"
    );
    fake.fail_next("GET", "watch=true", 401, 1);
    let e = api.watch(&Default::default(), "0").await.err().unwrap();
    assert_eq!(api_code(&e).map(|c| c.1), Some("Unauthorized".to_string()));
}

#[tokio::test]
async fn an_unknown_namespace_is_404_and_bad_requests_get_status_errors() {
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client("nope");
    let api: Api<Deployment> = Api::namespaced(client.clone(), "nope");
    let e = api
        .patch(
            "web",
            &PatchParams::apply("cutover").force(),
            &Patch::Apply(deployment("web", "img", 1)),
        )
        .await
        .unwrap_err();
    let (code, reason, msg) = api_code(&e).unwrap();
    assert_eq!(
        (code, reason.as_str(), msg.as_str()),
        (404, "NotFound", "namespaces \"nope\" not found")
    );
    let e = api.get("web").await.unwrap_err();
    assert_eq!(
        api_code(&e).map(|c| c.2),
        Some("deployments.apps \"web\" not found".to_string())
    );
    let e = Api::<Namespace>::all(client.clone())
        .get("nope")
        .await
        .unwrap_err();
    assert_eq!(api_code(&e).map(|c| c.0), Some(404));
    let e = api
        .list(&ListParams::default().labels("a in b"))
        .await
        .unwrap_err();
    assert_eq!(api_code(&e).map(|c| c.0), Some(400));

    let raw = |method: &str, path: &str, ct: &str, body: &str| {
        http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", ct)
            .body(body.as_bytes().to_vec())
            .unwrap()
    };
    const APPLY: &str = "application/apply-patch+yaml";
    let cases = [
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                "{not json",
            ),
            400,
        ),
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                "[]",
            ),
            400,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x",
                "application/apply-patch+yaml",
                "{}",
            ),
            422,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x",
                "application/json-patch+json",
                "[]",
            ),
            415,
        ),
        (
            raw("GET", "/apis/batch/v1/namespaces/default/jobs", "", ""),
            404,
        ),
        (
            raw("GET", "/api/v1/namespaces/default/pods/p/log", "", ""),
            404,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x?fieldManager=m",
                APPLY,
                r#"{"metadata":{"name":"x"}}"#,
            ),
            400,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x?fieldManager=m",
                APPLY,
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"y"}}"#,
            ),
            400,
        ),
        (
            raw(
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/x",
                "application/merge-patch+json",
                "{}",
            ),
            404,
        ),
        (
            raw(
                "PUT",
                "/apis/apps/v1/namespaces/default/deployments/x",
                "application/json",
                r#"{"metadata":{"name":"x"}}"#,
            ),
            404,
        ),
        (
            raw(
                "DELETE",
                "/api/v1/namespaces/default/pods/x",
                "application/json",
                "",
            ),
            404,
        ),
        (
            raw(
                "GET",
                "/api/v1/namespaces/default/pods?watch=true&resourceVersion=abc",
                "",
                "",
            ),
            400,
        ),
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                r#"{"kind":"Pod","metadata":{"name":"x"}}"#,
            ),
            400,
        ),
        (
            raw(
                "POST",
                "/apis/apps/v1/namespaces/default/deployments",
                "application/json",
                r#"{"metadata":{"name":"x"},"spec":{}}"#,
            ),
            422,
        ),
    ];
    for (req, want) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let e = client.request_text(req).await.unwrap_err();
        let (code, _, _) = api_code(&e).unwrap_or_else(|| panic!("{what}: {e:?}"));
        assert_eq!(code, want, "{what}");
    }
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn a_written_kubeconfig_loads_and_connects() {
    let fake = FakeApiServer::start().await.unwrap();
    fake.create_namespace("shop");
    let path = std::env::temp_dir().join(format!(
        "cutover-fake-kubeconfig-{}-{}",
        std::process::id(),
        fake.addr.port()
    ));
    fake.write_kubeconfig(&path, "fake-ctx", "shop").unwrap();
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let opts = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(kc, &opts)
        .await
        .unwrap();
    assert_eq!(config.default_namespace, "shop");
    let client = kube::Client::try_from(config).unwrap();
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(names, ["default", "kube-system", "shop"]);
}

#[tokio::test]
async fn a_stalled_server_leaves_requests_unanswered_until_released() {
    let fake = FakeApiServer::start().await.unwrap();
    let api: Api<Namespace> = Api::all(fake.client("default"));
    fake.set_stalled(true);
    let hung = tokio::time::timeout(Duration::from_millis(300), api.get("default")).await;
    assert!(hung.is_err(), "no answer while stalled");
    let waiting = tokio::spawn({
        let api = api.clone();
        async move { api.get("default").await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fake.set_stalled(false);
    let ns = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ns.metadata.name.as_deref(), Some("default"));
}
