//! The Kubernetes keys' rules (errors as `FILE: field.path: message` or `FILE:LINE:COL: message`)
//! and the findings `validate` reports for a spec on provider kubernetes.

use super::*;
use crate::spec::{load_str, Diagnostic};

const CANARY: &str = include_str!("../../../specs/canary.yaml");
const BLUE_GREEN: &str = include_str!("../../../specs/blue-green.yaml");
const ROLLING: &str = include_str!("../../../specs/rolling.yaml");
const BASIC: &str = include_str!("../../../specs/basic.yaml");
const RECREATE: &str = include_str!("../../../specs/recreate.yaml");

fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "`{from}` must occur once");
    text.replacen(from, to, 1)
}

/// The seed with `block` added under `infrastructure:`.
fn with_infra(text: &str, block: &str) -> String {
    edit(
        text,
        "infrastructure:\n  provider: 'kubernetes'\n",
        &format!("infrastructure:\n  provider: 'kubernetes'\n{block}"),
    )
}

fn errors(text: &str) -> Vec<String> {
    match load_str(text) {
        Ok(_) => Vec::new(),
        Err(d) => d.iter().map(|d| d.render("spec.yaml")).collect(),
    }
}

fn rendered(text: &str) -> Vec<String> {
    let spec = load_str(text).unwrap_or_else(|d| panic!("{d:?}"));
    findings(&spec)
        .iter()
        .map(|f| f.render("spec.yaml"))
        .collect()
}

const GATEWAY: &str = "  trafficRouting:\n    gatewayAPI: {gateway: public, gatewayNamespace: gateways, sectionName: https, hostnames: [shop.example.com, '*.example.org']}\n";

#[test]
fn traffic_routing_decodes() {
    let spec = load_str(&with_infra(CANARY, GATEWAY)).unwrap();
    assert_eq!(
        spec.gateway_api(),
        Some(&GatewayApi {
            gateway: "public".into(),
            gateway_namespace: Some("gateways".into()),
            section_name: Some("https".into()),
            hostnames: vec!["shop.example.com".into(), "*.example.org".into()],
        })
    );
    assert_eq!(load_str(CANARY).unwrap().gateway_api(), None);
    // The store's JSON round trip keeps it.
    let json = serde_json::to_string(&spec).unwrap();
    assert!(json.contains("\"gatewayAPI\""), "{json}");
    let back: crate::spec::ValidSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
}

#[test]
fn unknown_traffic_routing_keys_get_a_did_you_mean() {
    let text = with_infra(
        CANARY,
        "  trafficRouting:\n    gatewayAPI: {gateway: public, gatewayNamespce: x}\n",
    );
    assert_eq!(
        errors(&text),
        ["spec.yaml:32:35: infrastructure.trafficRouting.gatewayAPI.gatewayNamespce: unknown key `gatewayNamespce`; did you mean `gatewayNamespace`?"]
    );
    let text = with_infra(
        CANARY,
        "  trafficRouting:\n    gatewayApi: {gateway: public}\n",
    );
    assert_eq!(
        errors(&text),
        [
            "spec.yaml:32:5: infrastructure.trafficRouting.gatewayApi: unknown key `gatewayApi`; did you mean `gatewayAPI`?",
            "spec.yaml: infrastructure.trafficRouting: name a traffic router: gatewayAPI",
        ]
    );
    let text = with_infra(CANARY, "  trafikRouting: {}\n");
    assert!(
        errors(&text)[0].ends_with("unknown key `trafikRouting`; did you mean `trafficRouting`?"),
        "{:?}",
        errors(&text)
    );
}

#[test]
fn traffic_routing_rules() {
    let cases = [
        (
            "  trafficRouting:\n    gatewayAPI: {gatewayNamespace: gateways}\n",
            "spec.yaml: infrastructure.trafficRouting.gatewayAPI.gateway: required field is missing",
        ),
        (
            "  trafficRouting:\n    gatewayAPI: {gateway: Public_GW}\n",
            "spec.yaml: infrastructure.trafficRouting.gatewayAPI.gateway: `Public_GW` is not a Gateway name (lowercase a-z, 0-9, '-' and '.')",
        ),
        (
            "  trafficRouting:\n    gatewayAPI: {gateway: gw, gatewayNamespace: a.b}\n",
            "spec.yaml: infrastructure.trafficRouting.gatewayAPI.gatewayNamespace: `a.b` is not a namespace name (lowercase a-z, 0-9 and '-', at most 63)",
        ),
        (
            "  trafficRouting:\n    gatewayAPI: {gateway: gw, hostnames: ['shop example']}\n",
            "spec.yaml: infrastructure.trafficRouting.gatewayAPI.hostnames[0]: `shop example` is not a hostname (lowercase, e.g. shop.example.com or *.example.com)",
        ),
    ];
    for (block, expected) in cases {
        assert_eq!(errors(&with_infra(CANARY, block)), [expected], "{block}");
    }
    let local = edit(
        &with_infra(CANARY, GATEWAY),
        "provider: 'kubernetes'",
        "provider: 'simulated'",
    );
    assert_eq!(
        errors(&local),
        ["spec.yaml: infrastructure.trafficRouting: applies to provider kubernetes only (provider is simulated)"]
    );
}

#[test]
fn ports_rules() {
    let with_ports = |ports: &str| {
        edit(
            CANARY,
            "    replicas: 3\n",
            &format!("    replicas: 3\n    ports: {ports}\n"),
        )
    };
    assert!(errors(&with_ports("{http: 8080, grpc: 9090}")).is_empty());
    assert_eq!(
        errors(&with_ports("{HTTP: 8080}")),
        ["spec.yaml: components[0].ports.HTTP: `HTTP` is not a port name (1-15 of a-z, 0-9 and '-', with a letter; e.g. http, grpc, metrics)"]
    );
    assert_eq!(
        errors(&with_ports("{http: 70000}")),
        ["spec.yaml: components[0].ports.http: must be a port number between 1 and 65535"]
    );
    assert_eq!(
        errors(&with_ports("{a: 8080, b: 8080}")),
        ["spec.yaml: components[0].ports.b: port 8080 is also `a`"]
    );
    let named = edit(&with_ports("{web: 8080}"), "port: 8080", "port: 'http'");
    assert_eq!(
        errors(&named),
        ["spec.yaml: components[0].healthCheck.port: names no port in ports (`http`; ports: web)"]
    );
    let image = edit(
        CANARY,
        "    replicas: 3\n",
        "    replicas: 3\n    image: 'my image'\n",
    );
    assert_eq!(
        errors(&image),
        ["spec.yaml: components[0].image: must be an image reference like registry.example/shop/api:1.2.0"]
    );
}

const IMAGE_WARNING: &str = "spec.yaml: warning: components[0].image: no image; on Kubernetes `api` runs `api:1.2.0` (the component's id and version): set image to your registry's reference";

#[test]
fn the_seed_examples_validate_with_warnings() {
    for seed in [BASIC, ROLLING, RECREATE] {
        assert_eq!(rendered(seed), [IMAGE_WARNING]);
    }
    let canary = rendered(CANARY);
    assert_eq!(canary.len(), 3, "{canary:#?}");
    assert_eq!(canary[0], IMAGE_WARNING);
    assert!(
        canary[1].starts_with("spec.yaml: warning: metadata.canaryConfig.metrics[0].source: `error_rate` would come from the local router's built-in metrics, which a Kubernetes cluster does not have; give it a source: {type: prometheus, address: http://prometheus.monitoring:9090, query: 'sum(rate(http_requests_total{app=\"{{component}}\",version=\"{{version}}\",code=~\"5..\"}[1m])) / sum(rate(http_requests_total{app=\"{{component}}\",version=\"{{version}}\"}[1m]))'} (a query of this shape for error_rate)"),
        "{}",
        canary[1]
    );
    assert!(
        canary[1].ends_with("or {type: exec, command: [...]} printing one number (apply on provider kubernetes refuses this; --dry-run simulates it)"),
        "{}",
        canary[1]
    );
    assert!(canary[2].starts_with(
        "spec.yaml: warning: metadata.canaryConfig.metrics[1].source: `response_time` would come"
    ));
    assert!(
        canary[2].contains("query: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{app=\"{{component}}\",version=\"{{version}}\"}[1m]))) * 1000'"),
        "{}",
        canary[2]
    );
    // The progression rules read error_rate and response_time: defined by the metrics above,
    // so reported there only; the trigger's failure_rate is the provider's own (pods).
    assert_eq!(
        rendered(BLUE_GREEN),
        [
            IMAGE_WARNING.to_string(),
            "spec.yaml: warning: metadata.blueGreenConfig.switchTraffic.type: gradual needs infrastructure.trafficRouting.gatewayAPI on Kubernetes (without it the switch moves the active Service's selector, all at once); add trafficRouting.gatewayAPI or use type: immediate (apply on provider kubernetes refuses this; --dry-run simulates it)".to_string(),
        ]
    );
    // With Gateway API, a gradual switch is fine.
    assert_eq!(rendered(&with_infra(BLUE_GREEN, GATEWAY)), [IMAGE_WARNING]);
}

#[test]
fn findings_have_severities() {
    let spec = load_str(BLUE_GREEN).unwrap();
    let f = findings(&spec);
    assert_eq!(f[0].severity, Severity::Warning);
    assert_eq!(f[1].severity, Severity::Refused);
    assert_eq!(
        f[1].diagnostic,
        Diagnostic::Field {
            path: "metadata.blueGreenConfig.switchTraffic.type".into(),
            message: "gradual needs infrastructure.trafficRouting.gatewayAPI on Kubernetes (without it the switch moves the active Service's selector, all at once); add trafficRouting.gatewayAPI or use type: immediate".into(),
        }
    );
    assert_eq!(refusals(&spec), [f[1].diagnostic.clone()]);
    assert!(refusals(&load_str(BASIC).unwrap()).is_empty());
    // Other providers get none.
    let local = load_str(&edit(
        BLUE_GREEN,
        "provider: 'kubernetes'",
        "provider: 'simulated'",
    ))
    .unwrap();
    assert!(findings(&local).is_empty());
}

#[test]
fn router_metrics_anywhere_are_refused() {
    let with_image = edit(
        CANARY,
        "    replicas: 3\n",
        "    replicas: 3\n    image: 'reg.example/api:1.2.0'\n",
    );
    // Prometheus sources for both metrics: nothing to say.
    let prom = with_image
        .replace(
            "operator: 'lt', unit: 'percentage' }",
            "operator: 'lt', unit: 'percentage', source: {type: prometheus, address: 'http://prom:9090', query: 'x'} }",
        )
        .replace(
            "operator: 'lt', unit: 'ms' }",
            "operator: 'lt', unit: 'ms', source: {type: exec, command: ['./p99.sh']} }",
        );
    assert_eq!(rendered(&prom), Vec::<String>::new());
    // An explicit builtin source is reported at its type.
    let explicit = prom.replace(
        "source: {type: exec, command: ['./p99.sh']}",
        "source: {type: builtin}",
    );
    let r = rendered(&explicit);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert!(r[0].starts_with("spec.yaml: warning: metadata.canaryConfig.metrics[1].source.type: `response_time` would come from the local router"), "{}", r[0]);
    // A rule or trigger reading a router metric no canary metric defines.
    let rule = prom.replace(
        "condition: 'response_time < 200'",
        "condition: 'request_rate > 1 and failure_rate < 0.5'",
    );
    let r = rendered(&rule);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert!(r[0].starts_with("spec.yaml: warning: metadata.canaryConfig.progressionRules[1].condition: reads request_rate from the local router's built-in metrics, which a Kubernetes cluster does not have; define a canary metric of that name with a prometheus or exec source ("), "{}", r[0]);
    let trigger = prom.replace(
        "{ type: 'health-check', condition: 'failure_rate > 0.1' }",
        "{ type: 'error-rate', threshold: 0.1 }",
    );
    assert_ne!(trigger, prom);
    // error_rate is defined by the prometheus metric: the trigger reads that.
    assert_eq!(rendered(&trigger), Vec::<String>::new());
    // Renamed, error_rate is the router's again: for the rule that reads it and the trigger.
    let trigger = trigger.replace("name: 'error_rate', threshold", "name: 'errors', threshold");
    let r = rendered(&trigger);
    assert_eq!(r.len(), 2, "{r:#?}");
    assert!(r[0].starts_with("spec.yaml: warning: metadata.canaryConfig.progressionRules[0].condition: reads error_rate from"), "{}", r[0]);
    assert!(r[1].starts_with("spec.yaml: warning: rollback.triggers[0].type: an error-rate trigger reads the local router's error_rate"), "{}", r[1]);
    let perf = prom.replace(
        "  performance: []",
        "  performance:\n    - { metric: 'response_time_p99', operator: 'lt', threshold: 300 }",
    );
    let r = rendered(&perf);
    assert_eq!(r.len(), 1, "{r:#?}");
    assert!(r[0].starts_with("spec.yaml: warning: validation.performance[0].metric: `response_time_p99` is a local router metric"), "{}", r[0]);
}

#[test]
fn default_images_and_ports() {
    let spec = load_str(CANARY).unwrap();
    let c = &spec.components[0];
    assert_eq!(default_image(c, "9.9.9"), "api:1.2.0");
    let mut c2 = c.clone();
    c2.version = String::new();
    c2.id = "Payment API".into();
    assert_eq!(
        default_image(&c2, "2.0.0+build.7"),
        "payment-api:2.0.0_build.7"
    );
    // The health check's numbered port, named after its type.
    assert_eq!(container_ports(c), [("http".to_string(), 8080)]);
    c2.health_check = None;
    assert_eq!(container_ports(&c2), [("http".to_string(), 8080)]);
    let mut grpc = c.clone();
    if let Some(hc) = grpc.health_check.as_mut() {
        hc.kind = HealthKind::Grpc;
        hc.port = Some(PortRef::Number(9090));
    }
    assert_eq!(container_ports(&grpc), [("grpc".to_string(), 9090)]);
    // The checked port first, then http, then by name.
    grpc.ports = BTreeMap::from([
        ("web".into(), 8000),
        ("grpc".into(), 9090),
        ("http".into(), 8080),
        ("admin".into(), 7000),
    ]);
    assert_eq!(
        container_ports(&grpc),
        [
            ("grpc".to_string(), 9090),
            ("http".to_string(), 8080),
            ("admin".to_string(), 7000),
            ("web".to_string(), 8000)
        ]
    );
    grpc.health_check = None;
    assert_eq!(container_ports(&grpc)[0], ("http".to_string(), 8080));
}
