//! Request level: the exact requests `Cluster` sends, and how it reads the answers, against a
//! mocked API server (`tower-test`, the "ApiServerVerifier" pattern of kube-rs's own tests).

use std::time::Duration;

use cutover_kube::cluster::{Cluster, Kind};
use cutover_kube::KubeError;
use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn mocked() -> (Cluster, Handle) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(svc, "shop");
    (Cluster::from_client(client, "shop", "https://mock"), handle)
}

/// One expected request: its method and path-and-query; answered with `code` and `body`.
/// Returns the request body as JSON (null when empty).
async fn expect(h: &mut Handle, method: Method, uri: &str, code: u16, body: Value) -> Value {
    let (req, send) = tokio::time::timeout(Duration::from_secs(2), h.next_request())
        .await
        .expect("a request within 2 s")
        .expect("the client still sends");
    assert_eq!(req.method(), method, "method of {}", req.uri());
    assert_eq!(req.uri().to_string(), uri);
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let bytes = req.into_body().collect_bytes().await.expect("body");
    let sent: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("a JSON body")
    };
    if method == Method::PATCH {
        assert!(content_type.is_some(), "a patch names its content type");
    }
    send.send_response(
        Response::builder()
            .status(StatusCode::from_u16(code).expect("status"))
            .body(Body::from(serde_json::to_vec(&body).expect("json")))
            .expect("response"),
    );
    sent
}

fn status(code: u16, reason: &str, message: &str, details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "details": details, "code": code})
}

fn deployment(name: &str, replicas: u32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"cutover.dev/component": "api"}},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"cutover.dev/component": "api"}},
                 "template": {"metadata": {"labels": {"cutover.dev/component": "api"}},
                              "spec": {"containers": [{"name": "api", "image": "shop/api:2"}]}}}
    })
}

#[tokio::test]
async fn apply_is_a_forced_server_side_apply_by_cutover() {
    let (cluster, mut h) = mocked();
    let obj = deployment("api-0123456789", 3);
    let sent_obj = obj.clone();
    let server = tokio::spawn(async move {
        let body = expect(
            &mut h,
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/api-0123456789?&force=true&fieldManager=cutover",
            200,
            sent_obj.clone(),
        )
        .await;
        assert_eq!(body, sent_obj, "the body is the object, whole");
    });
    let out = cluster.apply(&obj).await.expect("applied");
    assert_eq!(out["spec"]["replicas"], 3);
    server.await.expect("every expected request came");
}

#[tokio::test]
async fn a_dry_run_says_so_to_the_server() {
    let (cluster, mut h) = mocked();
    let cluster = cluster.dry_run();
    let obj = deployment("api-0123456789", 1);
    let answer = obj.clone();
    let server = tokio::spawn(async move {
        expect(
            &mut h,
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/api-0123456789?&dryRun=All&force=true&fieldManager=cutover",
            200,
            answer,
        )
        .await;
        expect(
            &mut h,
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/api-0123456789/scale?&dryRun=All&fieldManager=cutover",
            200,
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "api-0123456789"}, "spec": {"replicas": 2}}),
        )
        .await;
    });
    cluster.apply(&obj).await.expect("dry run");
    cluster.scale("api-0123456789", 2).await.expect("dry run");
    server.await.expect("every expected request came");
}

#[tokio::test]
async fn scale_patches_the_scale_subresource() {
    let (cluster, mut h) = mocked();
    let server = tokio::spawn(async move {
        let body = expect(
            &mut h,
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/api-0123456789/scale?&fieldManager=cutover",
            200,
            json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "api-0123456789"}, "spec": {"replicas": 4}}),
        )
        .await;
        assert_eq!(body, json!({"spec": {"replicas": 4}}));
    });
    cluster.scale("api-0123456789", 4).await.expect("scaled");
    server.await.expect("every expected request came");
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_written_again_and_then_reported() {
    let (cluster, mut h) = mocked();
    let obj = deployment("api-0123456789", 2);
    let answer = obj.clone();
    let uri =
        "/apis/apps/v1/namespaces/shop/deployments/api-0123456789?&force=true&fieldManager=cutover";
    let conflict = status(
        409,
        "Conflict",
        "the object has been modified",
        json!({"name": "api-0123456789", "kind": "deployments"}),
    );
    let c2 = conflict.clone();
    let server = tokio::spawn(async move {
        expect(&mut h, Method::PATCH, uri, 409, c2.clone()).await;
        expect(&mut h, Method::PATCH, uri, 409, c2).await;
        expect(&mut h, Method::PATCH, uri, 200, answer).await;
        h
    });
    cluster
        .apply(&obj)
        .await
        .expect("the third try goes through");
    let mut h = server.await.expect("three tries");

    // Five conflicts in a row: reported, naming the object and the tries.
    let server = tokio::spawn(async move {
        for _ in 0..5 {
            expect(&mut h, Method::PATCH, uri, 409, conflict.clone()).await;
        }
    });
    let err = cluster.apply(&obj).await.expect_err("gives up");
    server.await.expect("five tries");
    match &err {
        KubeError::Conflict { name, attempts, .. } => {
            assert_eq!(name, "api-0123456789");
            assert_eq!(*attempts, 5);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(err.to_string().contains("409"), "{err}");
}

#[tokio::test]
async fn forbidden_names_the_verb_resource_and_namespace() {
    let (cluster, mut h) = mocked();
    let server = tokio::spawn(async move {
        expect(
            &mut h,
            Method::PATCH,
            "/api/v1/namespaces/shop/services/api?&force=true&fieldManager=cutover",
            403,
            status(403, "Forbidden", "services \"api\" is forbidden: User \"ci\" cannot patch resource \"services\" in API group \"\" in the namespace \"shop\"", json!({"name": "api", "kind": "services"})),
        )
        .await;
    });
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"}, "spec": {"selector": {"a": "b"}}});
    let err = cluster.apply(&svc).await.expect_err("forbidden");
    server.await.expect("one request");
    assert_eq!(
        err.to_string().split(" (403").next().unwrap_or_default(),
        "cutover needs patch on services in namespace shop"
    );
}

#[tokio::test]
async fn a_missing_namespace_says_how_to_make_it() {
    let (cluster, mut h) = mocked();
    let server = tokio::spawn(async move {
        expect(
            &mut h,
            Method::PATCH,
            "/apis/apps/v1/namespaces/shop/deployments/api-0123456789?&force=true&fieldManager=cutover",
            404,
            status(404, "NotFound", "namespaces \"shop\" not found", json!({"name": "shop", "kind": "namespaces"})),
        )
        .await;
    });
    let err = cluster
        .apply(&deployment("api-0123456789", 1))
        .await
        .expect_err("no namespace");
    server.await.expect("one request");
    assert_eq!(err, KubeError::NoNamespace("shop".into()));
    assert!(
        err.to_string().contains("kubectl create namespace shop"),
        "{err}"
    );
}

#[tokio::test]
async fn deletes_of_what_is_gone_succeed_and_reads_say_absent() {
    let (cluster, mut h) = mocked();
    let server = tokio::spawn(async move {
        let nf = status(
            404,
            "NotFound",
            "deployments.apps \"old\" not found",
            json!({"name": "old", "kind": "deployments"}),
        );
        let body = expect(
            &mut h,
            Method::DELETE,
            "/apis/apps/v1/namespaces/shop/deployments/old?",
            404,
            nf.clone(),
        )
        .await;
        assert_eq!(body["propagationPolicy"], "Background");
        expect(
            &mut h,
            Method::GET,
            "/apis/apps/v1/namespaces/shop/deployments/old",
            404,
            nf,
        )
        .await;
        expect(
            &mut h,
            Method::GET,
            "/apis/apps/v1/namespaces/shop/deployments?&labelSelector=cutover.dev%2Fcomponent%3Dapi",
            200,
            json!({"apiVersion": "apps/v1", "kind": "DeploymentList", "metadata": {"resourceVersion": "7"},
                   "items": [deployment("api-0123456789", 2)]}),
        )
        .await;
    });
    cluster
        .delete(Kind::Deployment, "old")
        .await
        .expect("gone is fine");
    assert_eq!(
        cluster.get(Kind::Deployment, "old").await.expect("read"),
        None
    );
    let list = cluster
        .list(Kind::Deployment, "cutover.dev/component=api")
        .await
        .expect("listed");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["metadata"]["name"], "api-0123456789");
    server.await.expect("three requests");
}

#[tokio::test]
async fn an_unreachable_cluster_is_reported_within_the_connect_timeout() {
    // A port nothing listens on: refused at once, reported as unreachable with the address.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url: http::Uri = format!("http://{addr}").parse().expect("uri");
    let client = kube::Client::try_from(kube::Config::new(url)).expect("client");
    let cluster = Cluster::from_client(client, "shop", &format!("http://{addr}"));
    let started = std::time::Instant::now();
    let err = cluster.check().await.expect_err("unreachable");
    assert!(started.elapsed() < Duration::from_secs(11));
    match &err {
        KubeError::Unreachable { server, .. } => assert!(server.contains(&addr.to_string())),
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_cluster_is_reported_within_ten_seconds() {
    // Accepts the connection (the mock) and never answers.
    let (cluster, mut h) = mocked();
    let _hold = tokio::spawn(async move {
        let pending = h.next_request().await;
        std::future::pending::<()>().await;
        drop(pending);
    });
    let err = cluster.check().await.expect_err("no answer");
    assert!(
        matches!(&err, KubeError::Unreachable { cause, .. } if cause.contains("10s")),
        "{err:?}"
    );
}
