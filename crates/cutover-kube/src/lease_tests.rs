//! Request-level tests: every request [`Leases`] sends, asserted against a scripted API server
//! (tower-test, kube-rs's "ApiServerVerifier" pattern): method, path and query, body.

use super::*;
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Check = Box<dyn FnOnce(&Value) + Send>;

const BASE: &str = "/apis/coordination.k8s.io/v1/namespaces/shop/leases";

/// One expected request and the answer "the API server" gives it.
struct Step {
    method: Method,
    uri: String,
    check: Option<Check>,
    status: u16,
    reply: Value,
}

fn get(name: &str, status: u16, reply: Value) -> Step {
    Step {
        method: Method::GET,
        uri: format!("{BASE}/{name}"),
        check: None,
        status,
        reply,
    }
}

fn create(check: impl FnOnce(&Value) + Send + 'static, status: u16, reply: Value) -> Step {
    Step {
        method: Method::POST,
        uri: format!("{BASE}?&fieldManager=cutover"),
        check: Some(Box::new(check)),
        status,
        reply,
    }
}

fn put(name: &str, check: impl FnOnce(&Value) + Send + 'static, status: u16, reply: Value) -> Step {
    Step {
        method: Method::PUT,
        uri: format!("{BASE}/{name}?&fieldManager=cutover"),
        check: Some(Box::new(check)),
        status,
        reply,
    }
}

/// Serves `steps` in order, asserting each request; the task fails on a wrong request, and the
/// test's `finish` catches a missing one.
fn serve(mut handle: Handle, steps: Vec<Step>) -> JoinHandle<()> {
    tokio::spawn(async move {
        for (i, step) in steps.into_iter().enumerate() {
            let Some((req, send)) = handle.next_request().await else {
                panic!("request {i} ({} {}) never came", step.method, step.uri);
            };
            assert_eq!(req.method(), step.method, "request {i}: {}", req.uri());
            assert_eq!(req.uri().to_string(), step.uri, "request {i}");
            let bytes = match req.into_body().collect_bytes().await {
                Ok(b) => b,
                Err(e) => panic!("request {i} body: {e}"),
            };
            if let Some(check) = step.check {
                let body: Value = match serde_json::from_slice(&bytes) {
                    Ok(v) => v,
                    Err(e) => panic!("request {i} body is not JSON: {e}"),
                };
                check(&body);
            }
            let bytes = serde_json::to_vec(&step.reply).unwrap_or_default();
            let resp = Response::builder()
                .status(step.status)
                .body(Body::from(bytes));
            match resp {
                Ok(r) => send.send_response(r),
                Err(e) => panic!("response {i}: {e}"),
            }
        }
    })
}

async fn finish(server: JoinHandle<()>) {
    match tokio::time::timeout(Duration::from_secs(1), server).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("the scripted API server failed: {e}"),
        Err(_) => panic!("the scripted API server still waits for requests"),
    }
}

fn setup(steps: Vec<Step>) -> (Leases, JoinHandle<()>) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(svc, "default");
    (
        Leases::new(client, "shop", Duration::from_secs(30)),
        serve(handle, steps),
    )
}

fn me() -> LeaseHolder {
    LeaseHolder {
        identity: "ana pid 4242 on laptop".into(),
        deployment: "shop-api".into(),
        run: Some("shop-api#7".into()),
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "code": code, "reason": reason, "message": message})
}

fn not_found(name: &str) -> Value {
    status(
        404,
        "NotFound",
        &format!("leases.coordination.k8s.io \"{name}\" not found"),
    )
}

fn micro(t: Timestamp) -> String {
    match k8s_openapi::jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S%.6fZ", t) {
        Ok(s) => s,
        Err(e) => panic!("time: {e}"),
    }
}

/// A lease as the API server returns it.
fn lease(name: &str, rv: &str, holder: &str, renewed: Timestamp, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": name, "namespace": "shop", "resourceVersion": rv, "uid": "lease-uid",
            "annotations": {"cutover.dev/deployment": "shop-web", "cutover.dev/run": "shop-web#3"},
            "managedFields": [{"manager": "cutover", "operation": "Update"}],
        },
        "spec": {
            "holderIdentity": holder, "leaseDurationSeconds": 30,
            "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": micro(renewed),
            "leaseTransitions": transitions,
        },
    })
}

fn recent() -> Timestamp {
    Timestamp::now()
}

fn long_ago() -> Timestamp {
    Timestamp::from_second(1_767_225_600).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The body is held by `me()` for 30 s, renewed within the last minute.
fn assert_held_by_me(body: &Value) {
    assert_eq!(body["spec"]["holderIdentity"], "ana pid 4242 on laptop");
    assert_eq!(body["spec"]["leaseDurationSeconds"], 30);
    assert_eq!(
        body["metadata"]["annotations"]["cutover.dev/deployment"],
        "shop-api"
    );
    assert_eq!(
        body["metadata"]["annotations"]["cutover.dev/run"],
        "shop-api#7"
    );
    let renewed = body["spec"]["renewTime"].as_str().unwrap_or("");
    // MicroTime: RFC 3339 with microseconds.
    assert_eq!(
        renewed.len(),
        "2026-12-01T14:00:00.000000Z".len(),
        "{renewed}"
    );
    let t: Timestamp = match renewed.parse() {
        Ok(t) => t,
        Err(e) => panic!("renewTime {renewed}: {e}"),
    };
    assert!((Timestamp::now().as_second() - t.as_second()).abs() < 60);
}

#[test]
fn lease_names_are_dns_labels_per_target() {
    let n = lease_name("api in production on kubernetes");
    assert!(
        n.starts_with("cutover-api-in-production-on-kubernetes-"),
        "{n}"
    );
    assert!(n.len() <= 63);
    assert_ne!(
        lease_name("API in production"),
        lease_name("api in production")
    );
    assert_eq!(
        lease_name("api in production"),
        lease_name("api in production")
    );
    let long = lease_name(&"payment service ".repeat(10));
    assert!(long.len() <= 63, "{long}");
    assert!(long
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    assert!(!long.ends_with('-'));
}

#[tokio::test]
async fn acquire_creates_an_absent_lease() {
    let name = lease_name("api in production");
    let (leases, server) = setup(vec![
        get(&name, 404, not_found(&name)),
        create(
            {
                let name = name.clone();
                move |b| {
                    assert_eq!(b["apiVersion"], "coordination.k8s.io/v1");
                    assert_eq!(b["kind"], "Lease");
                    assert_eq!(b["metadata"]["name"], name.as_str());
                    assert_eq!(b["metadata"]["namespace"], "shop");
                    assert_eq!(
                        b["metadata"]["labels"]["app.kubernetes.io/managed-by"],
                        "cutover"
                    );
                    assert_eq!(b["metadata"].get("resourceVersion"), None);
                    assert_eq!(b["spec"]["leaseTransitions"], 0);
                    assert_eq!(b["spec"]["acquireTime"], b["spec"]["renewTime"]);
                    assert_held_by_me(b);
                }
            },
            201,
            lease(&name, "100", "ana pid 4242 on laptop", recent(), 0),
        ),
    ]);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    assert_eq!(r, Ok(()));
    finish(server).await;
}

#[tokio::test]
async fn acquire_is_refused_while_another_holds_an_unexpired_lease() {
    let name = lease_name("api in production");
    let (leases, server) = setup(vec![get(
        &name,
        200,
        lease(&name, "100", "bo pid 17 on ci-runner", recent(), 2),
    )]);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    let Err(LeaseRefusal::Held {
        name: held,
        holder_identity,
        deployment,
        run,
        expires_in,
    }) = r.clone()
    else {
        panic!("expected a refusal, got {r:?}");
    };
    assert_eq!(held, name);
    assert_eq!(holder_identity, "bo pid 17 on ci-runner");
    assert_eq!(deployment, "shop-web");
    assert_eq!(run.as_deref(), Some("shop-web#3"));
    assert!(expires_in > Duration::from_secs(25) && expires_in <= Duration::from_secs(30));
    let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        msg.contains("held by bo pid 17 on ci-runner, deployment shop-web, run shop-web#3"),
        "{msg}"
    );
    assert!(
        msg.contains("expires in 29s") || msg.contains("expires in 30s"),
        "{msg}"
    );
    finish(server).await;
}

#[tokio::test]
async fn acquire_takes_over_an_expired_lease() {
    let name = lease_name("api in production");
    let (leases, server) = setup(vec![
        get(
            &name,
            200,
            lease(&name, "100", "bo pid 17 on ci-runner", long_ago(), 2),
        ),
        put(
            &name,
            |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "100");
                assert_eq!(b["metadata"]["uid"], "lease-uid");
                assert_eq!(b["metadata"].get("managedFields"), None);
                assert_eq!(b["spec"]["leaseTransitions"], 3);
                assert_ne!(b["spec"]["acquireTime"], "2026-01-01T00:00:00.000000Z");
                assert_held_by_me(b);
            },
            200,
            lease(&name, "101", "ana pid 4242 on laptop", recent(), 3),
        ),
    ]);
    assert_eq!(
        leases.acquire(std::slice::from_ref(&name), &me()).await,
        Ok(())
    );
    finish(server).await;
}

#[tokio::test]
async fn a_conflict_on_replace_reads_again_and_decides_again() {
    let name = lease_name("api in production");
    let conflict = status(
        409,
        "Conflict",
        "Operation cannot be fulfilled on leases.coordination.k8s.io: the object has been modified",
    );
    let (leases, server) = setup(vec![
        get(
            &name,
            200,
            lease(&name, "100", "bo pid 17 on ci-runner", long_ago(), 2),
        ),
        put(
            &name,
            |b| assert_eq!(b["metadata"]["resourceVersion"], "100"),
            409,
            conflict,
        ),
        // Someone else renewed in between: now refused.
        get(
            &name,
            200,
            lease(&name, "102", "bo pid 17 on ci-runner", recent(), 2),
        ),
    ]);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    assert!(
        matches!(r, Err(LeaseRefusal::Held { ref holder_identity, .. }) if holder_identity == "bo pid 17 on ci-runner"),
        "{r:?}"
    );
    finish(server).await;
}

#[tokio::test]
async fn a_create_race_reads_again() {
    let name = lease_name("api in production");
    let exists = status(
        409,
        "AlreadyExists",
        &format!("leases.coordination.k8s.io \"{name}\" already exists"),
    );
    let (leases, server) = setup(vec![
        get(&name, 404, not_found(&name)),
        create(|_| {}, 409, exists),
        get(
            &name,
            200,
            lease(&name, "5", "bo pid 17 on ci-runner", recent(), 0),
        ),
    ]);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    assert!(matches!(r, Err(LeaseRefusal::Held { .. })), "{r:?}");
    finish(server).await;
}

#[tokio::test]
async fn conflicts_are_bounded() {
    let name = lease_name("api in production");
    let mut steps = Vec::new();
    for rv in ["1", "2", "3"] {
        steps.push(get(
            &name,
            200,
            lease(&name, rv, "bo pid 17 on ci-runner", long_ago(), 0),
        ));
        steps.push(put(
            &name,
            |_| {},
            409,
            status(409, "Conflict", "the object has been modified"),
        ));
    }
    let (leases, server) = setup(steps);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    assert!(
        matches!(
            r,
            Err(LeaseRefusal::Kube(KubeError::Conflict { attempts: 3, .. }))
        ),
        "{r:?}"
    );
    finish(server).await;
}

#[tokio::test]
async fn renew_keeps_the_acquire_time_and_transitions() {
    let name = lease_name("api in production");
    let (leases, server) = setup(vec![
        get(
            &name,
            200,
            lease(&name, "100", "ana pid 4242 on laptop", recent(), 4),
        ),
        put(
            &name,
            |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "100");
                assert_eq!(b["spec"]["acquireTime"], "2026-01-01T00:00:00.000000Z");
                assert_eq!(b["spec"]["leaseTransitions"], 4);
                assert_held_by_me(b);
            },
            200,
            lease(&name, "101", "ana pid 4242 on laptop", recent(), 4),
        ),
    ]);
    assert_eq!(
        leases.renew(std::slice::from_ref(&name), &me()).await,
        Ok(())
    );
    finish(server).await;
}

#[tokio::test]
async fn renew_of_a_lease_another_took_is_refused() {
    let name = lease_name("api in production");
    let (leases, server) = setup(vec![get(
        &name,
        200,
        lease(&name, "100", "bo pid 17 on ci-runner", recent(), 5),
    )]);
    let r = leases.renew(std::slice::from_ref(&name), &me()).await;
    assert!(matches!(r, Err(LeaseRefusal::Held { .. })), "{r:?}");
    finish(server).await;
}

#[tokio::test]
async fn release_clears_only_our_own_lease() {
    let ours = lease_name("api in production");
    let theirs = lease_name("web in production");
    let gone = lease_name("db in production");
    let (leases, server) = setup(vec![
        get(
            &ours,
            200,
            lease(&ours, "100", "ana pid 4242 on laptop", recent(), 1),
        ),
        put(
            &ours,
            |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "100");
                assert_eq!(b["spec"].get("holderIdentity"), None);
                assert_eq!(b["spec"]["leaseDurationSeconds"], 1);
                assert_eq!(b["spec"]["leaseTransitions"], 1);
                assert_eq!(b["metadata"]["annotations"].get("cutover.dev/run"), None);
                assert_eq!(
                    b["metadata"]["annotations"].get("cutover.dev/deployment"),
                    None
                );
            },
            200,
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": ours, "resourceVersion": "101"}, "spec": {}}),
        ),
        // Another holder's: read, left alone.
        get(
            &theirs,
            200,
            lease(&theirs, "7", "bo pid 17 on ci-runner", recent(), 1),
        ),
        // Already gone: nothing to do.
        get(&gone, 404, not_found(&gone)),
    ]);
    assert_eq!(
        leases
            .release(&[ours.clone(), theirs.clone(), gone.clone()], &me())
            .await,
        Ok(())
    );
    finish(server).await;
}

#[tokio::test]
async fn a_free_lease_is_taken_without_waiting_for_expiry() {
    let name = lease_name("api in production");
    let mut released = lease(&name, "101", "", recent(), 1);
    released["spec"]["leaseDurationSeconds"] = json!(1);
    if let Some(spec) = released["spec"].as_object_mut() {
        spec.remove("holderIdentity");
    }
    let (leases, server) = setup(vec![
        get(&name, 200, released),
        put(
            &name,
            |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "101");
                assert_eq!(b["spec"]["leaseTransitions"], 2);
                assert_held_by_me(b);
            },
            200,
            lease(&name, "102", "ana pid 4242 on laptop", recent(), 2),
        ),
    ]);
    assert_eq!(
        leases.acquire(std::slice::from_ref(&name), &me()).await,
        Ok(())
    );
    finish(server).await;
}

#[tokio::test]
async fn acquire_is_all_or_none() {
    let first = lease_name("api in production");
    let already = lease_name("worker in production");
    let refused = lease_name("web in production");
    let (leases, server) = setup(vec![
        // Taken by this call.
        get(&first, 404, not_found(&first)),
        create(
            assert_held_by_me,
            201,
            lease(&first, "200", "ana pid 4242 on laptop", recent(), 0),
        ),
        // Ours already: renewed, and kept after the refusal.
        get(
            &already,
            200,
            lease(&already, "300", "ana pid 4242 on laptop", recent(), 0),
        ),
        put(
            &already,
            assert_held_by_me,
            200,
            lease(&already, "301", "ana pid 4242 on laptop", recent(), 0),
        ),
        // Held by another: refused.
        get(
            &refused,
            200,
            lease(&refused, "400", "bo pid 17 on ci-runner", recent(), 0),
        ),
        // Rollback: the lease this call took is released, the renewed one is not.
        get(
            &first,
            200,
            lease(&first, "200", "ana pid 4242 on laptop", recent(), 0),
        ),
        put(
            &first,
            |b| {
                assert_eq!(b["metadata"]["resourceVersion"], "200");
                assert_eq!(b["spec"].get("holderIdentity"), None);
            },
            200,
            lease(&first, "201", "", recent(), 0),
        ),
    ]);
    let r = leases
        .acquire(&[first.clone(), already.clone(), refused.clone()], &me())
        .await;
    assert!(
        matches!(r, Err(LeaseRefusal::Held { ref name, .. }) if *name == refused),
        "{r:?}"
    );
    finish(server).await;
}

#[tokio::test]
async fn forbidden_names_the_verb_and_resource() {
    let name = lease_name("api in production");
    let (leases, server) = setup(vec![
        get(&name, 404, not_found(&name)),
        create(
            |_| {},
            403,
            status(
                403,
                "Forbidden",
                "leases.coordination.k8s.io is forbidden: User \"ana\" cannot create resource \"leases\"",
            ),
        ),
    ]);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    assert_eq!(
        r,
        Err(LeaseRefusal::Kube(KubeError::Forbidden {
            verb: "create".into(),
            resource: "leases".into(),
            namespace: "shop".into()
        }))
    );
    assert!(r
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        .starts_with("cutover needs create on leases in namespace shop"));
    finish(server).await;
}

#[tokio::test]
async fn a_missing_namespace_is_named() {
    let name = lease_name("api in production");
    let mut missing = status(404, "NotFound", "namespaces \"shop\" not found");
    missing["details"] = json!({"name": "shop", "kind": "namespaces"});
    let (leases, server) = setup(vec![
        get(&name, 404, not_found(&name)),
        create(|_| {}, 404, missing),
    ]);
    let r = leases.acquire(std::slice::from_ref(&name), &me()).await;
    assert_eq!(
        r,
        Err(LeaseRefusal::Kube(KubeError::NoNamespace("shop".into())))
    );
    finish(server).await;
}
