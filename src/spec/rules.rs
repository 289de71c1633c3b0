//! Rules that relate spec fields to each other and to the strategies cutover runs.
//!
//! Owns: every check that a decoded spec must pass before it can be planned, reported as
//! `field.path: message` diagnostics. Must not touch: YAML text or positions (that is `yaml`/`decode`).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::canary::*;
use super::decode::{did_you_mean, Decoder};
use super::expr::Expr;
use super::kinds::*;
use super::model::*;
use super::validation::*;

/// Unknown dependencies that get a did-you-mean (each one measures every component id).
const MAX_DEPENDENCY_HINTS: usize = 16;

/// Check every rule, appending violations to the decoder.
pub fn check(spec: &Spec, d: &mut Decoder) {
    check_identity(spec, d);
    check_components(spec, d);
    check_strategy(spec, d);
    check_rollback(spec, d);
    check_validation(spec, d);
    super::kubernetes::check(spec, d);
}

fn check_validation(spec: &Spec, d: &mut Decoder) {
    let v = &spec.validation;
    let lists: [(&str, &Vec<CheckItem>, &[&str]); 5] = [
        ("preDeployment", &v.pre_deployment, PRE_TYPES),
        ("postDeployment", &v.post_deployment, POST_TYPES),
        ("healthChecks", &v.health_checks, POST_TYPES),
        ("performance", &v.performance, PERFORMANCE_TYPES),
        ("security", &v.security, SECURITY_TYPES),
    ];
    let ids: HashSet<&str> = spec.components.iter().map(|c| c.id.as_str()).collect();
    for (list, items, types) in lists {
        for (i, it) in items.iter().enumerate() {
            let p = format!("validation.{list}[{i}]");
            if it.kind.is_empty() {
                d.field(
                    &format!("{p}.type"),
                    format!("required; one of {}", types.join(", ")),
                );
                continue;
            }
            if !one_of(d, &format!("{p}.type"), &it.kind, types) {
                continue;
            }
            if let Some(c) = &it.component {
                if !ids.contains(&c.as_str()) {
                    d.field(
                        &format!("{p}.component"),
                        format!("unknown component `{c}`"),
                    );
                }
            }
            match it.kind.as_str() {
                "http" | "requires-auth" if it.path.is_none() && it.url.is_none() => d.field(
                    &format!("{p}.path"),
                    "a path (on the component's listen address) or a url is required",
                ),
                "exec" if it.command.is_empty() => {
                    d.field(&format!("{p}.command"), "required for an exec check")
                }
                "metric" => {
                    if it.metric.is_none() {
                        d.field(&format!("{p}.metric"), "required for a performance check");
                    }
                    if it.operator.is_none() {
                        d.field(&format!("{p}.operator"), "required for a performance check");
                    }
                    if it.threshold.is_none() {
                        d.field(
                            &format!("{p}.threshold"),
                            "required for a performance check",
                        );
                    }
                }
                _ => {}
            }
            if let Some(s) = it.expect_status {
                if !(100..=599).contains(&s) {
                    d.field(
                        &format!("{p}.expectStatus"),
                        "must be an HTTP status (100-599)",
                    );
                }
            }
            if let Some(u) = &it.url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    d.field(
                        &format!("{p}.url"),
                        format!("`{u}` is not an http:// or https:// URL"),
                    );
                }
            }
        }
    }
}

fn one_of(d: &mut Decoder, path: &str, value: &str, allowed: &[&str]) -> bool {
    if allowed.contains(&value) {
        return true;
    }
    let hint = match did_you_mean(value, allowed) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    d.field(
        path,
        format!("`{value}` is not one of {}{hint}", allowed.join(", ")),
    );
    false
}

fn check_identity(spec: &Spec, d: &mut Decoder) {
    if !spec.id.is_empty()
        && !spec
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        d.field("id", "may hold only letters, digits, '.', '-' and '_'");
    }
    for (field, value) in [
        ("id", &spec.id),
        ("name", &spec.name),
        ("version", &spec.version),
        ("environment", &spec.environment),
    ] {
        if value.trim().is_empty() && !d.diags.iter().any(|x| x.to_string().starts_with(field)) {
            d.field(field, "must not be empty");
        }
    }
}

fn check_components(spec: &Spec, d: &mut Decoder) {
    if spec.components.is_empty() {
        if !d
            .diags
            .iter()
            .any(|x| x.to_string().starts_with("components"))
        {
            d.field("components", "at least one component is required");
        }
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, c) in spec.components.iter().enumerate() {
        let p = format!("components[{i}]");
        if !c.id.is_empty() && !seen.insert(c.id.as_str()) {
            d.field(
                &format!("{p}.id"),
                format!("duplicate component id `{}`", c.id),
            );
        }
        if let Some(hc) = &c.health_check {
            check_health(hc, c, &format!("{p}.healthCheck"), d);
        }
        check_local(spec, c, &p, d);
    }
    let ids: Vec<&str> = spec.components.iter().map(|c| c.id.as_str()).collect();
    let known: HashSet<&str> = ids.iter().copied().collect();
    // Each suggestion measures every id: only the first few unknown dependencies get one, so
    // thousands of them next to thousands of components stay linear.
    let mut hints_left = MAX_DEPENDENCY_HINTS;
    for (i, c) in spec.components.iter().enumerate() {
        for (j, dep) in c.dependencies.iter().enumerate() {
            let p = format!("components[{i}].dependencies[{j}]");
            if dep == &c.id {
                d.field(&p, "a component cannot depend on itself");
            } else if !known.contains(dep.as_str()) {
                let hint = if hints_left > 0 {
                    hints_left -= 1;
                    did_you_mean(dep, &ids)
                } else {
                    None
                }
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
                d.field(&p, format!("unknown component `{dep}`{hint}"));
            }
        }
    }
    if let Err(cycle) = super::component_order(spec) {
        d.field(
            "components",
            format!("dependency cycle: {}", cycle.join(" -> ")),
        );
    }
}

fn check_health(hc: &HealthCheck, c: &Component, p: &str, d: &mut Decoder) {
    if !d.has_error(&format!("{p}.type")) {
        let needs_port = match hc.kind {
            HealthKind::Http | HealthKind::Tcp | HealthKind::Grpc => true,
            HealthKind::Exec => false,
        };
        if hc.kind == HealthKind::Http && hc.endpoint.as_deref().unwrap_or("").is_empty() {
            d.field(
                &format!("{p}.endpoint"),
                "required for an http health check",
            );
        }
        if let Some(ep) = &hc.endpoint {
            if hc.kind == HealthKind::Http && !ep.starts_with('/') {
                d.field(&format!("{p}.endpoint"), "must start with '/'");
            }
        }
        if needs_port && hc.port.is_none() {
            d.field(
                &format!("{p}.port"),
                format!(
                    "required for {} {} health check",
                    if hc.kind == HealthKind::Http {
                        "an"
                    } else {
                        "a"
                    },
                    hc.kind
                ),
            );
        }
        if hc.kind == HealthKind::Exec && hc.command.is_empty() {
            d.field(&format!("{p}.command"), "required for an exec health check");
        }
    }
    match &hc.port {
        Some(PortRef::Number(n)) if !(1..=65535).contains(n) => {
            d.field(&format!("{p}.port"), "must be between 1 and 65535");
        }
        Some(PortRef::Name(name)) => {
            if let Some(run) = &c.run {
                if !run.ports.contains(name) {
                    d.field(
                        &format!("{p}.port"),
                        format!("names no port in run.ports (`{name}`)"),
                    );
                }
            }
        }
        _ => {}
    }
    for (field, v) in [
        ("failureThreshold", hc.failure_threshold),
        ("successThreshold", hc.success_threshold),
    ] {
        if v < 1 {
            d.field(&format!("{p}.{field}"), "must be >= 1");
        }
    }
    if hc.period_seconds.0 == 0 {
        d.field(&format!("{p}.periodSeconds"), "must be > 0");
    }
    if hc.timeout_seconds.0 == 0 {
        d.field(&format!("{p}.timeoutSeconds"), "must be > 0");
    }
}

fn check_local(spec: &Spec, c: &Component, p: &str, d: &mut Decoder) {
    if let Some(run) = &c.run {
        if run.command.is_empty() || run.command[0].trim().is_empty() {
            d.field(&format!("{p}.run.command"), "must name a program to run");
        }
        let mut names = BTreeSet::new();
        for (i, port) in run.ports.iter().enumerate() {
            if !names.insert(port) {
                d.field(
                    &format!("{p}.run.ports[{i}]"),
                    format!("duplicate port name `{port}`"),
                );
            }
        }
    }
    if let Some(listen) = &c.listen {
        if listen.parse::<std::net::SocketAddr>().is_err() {
            d.field(
                &format!("{p}.listen"),
                format!("`{listen}` is not an address like 127.0.0.1:18080"),
            );
        }
    }
    if spec.infrastructure.provider == ProviderKind::Local
        && !d.has_error("infrastructure.provider")
    {
        if c.run.is_none() {
            d.field(&format!("{p}.run"), "required with provider local");
        }
        if c.listen.is_none() {
            d.field(&format!("{p}.listen"), "required with provider local");
        }
    }
}

fn check_percent_steps(d: &mut Decoder, base: &str, what: &str, pcts: &[i64]) {
    if pcts.is_empty() {
        d.field(base, format!("at least one {what} is required"));
        return;
    }
    let mut prev: Option<i64> = None;
    for (i, p) in pcts.iter().enumerate() {
        let path = format!("{base}[{i}].percentage");
        if !(1..=100).contains(p) {
            d.field(&path, "must be between 1 and 100");
        } else if let Some(prev) = prev.filter(|prev| p <= prev) {
            d.field(
                &path,
                format!("must be greater than the previous {what} ({prev})"),
            );
        }
        prev = Some(*p);
    }
    if let Some(last) = pcts.last() {
        if *last != 100 {
            d.field(
                &format!("{base}[{}].percentage", pcts.len() - 1),
                format!("the last {what} must be 100"),
            );
        }
    }
}

fn check_condition(d: &mut Decoder, path: &str, cond: &str) {
    if let Err(e) = Expr::parse(cond) {
        d.field(path, format!("`{cond}` does not parse: {e}"));
    }
}

fn check_strategy(spec: &Spec, d: &mut Decoder) {
    let m = &spec.metadata;
    let present = [
        (
            "blueGreenConfig",
            Strategy::BlueGreen,
            m.blue_green_config.is_some(),
        ),
        ("canaryConfig", Strategy::Canary, m.canary_config.is_some()),
        (
            "rollingConfig",
            Strategy::Rolling,
            m.rolling_config.is_some(),
        ),
    ];
    for (key, strategy, is_there) in present {
        if is_there && spec.strategy != strategy && !d.has_error("strategy") {
            d.field(
                &format!("metadata.{key}"),
                format!(
                    "configures {strategy}, but strategy is {}; remove it or change strategy",
                    spec.strategy
                ),
            );
        }
    }
    if let Some(bg) = &m.blue_green_config {
        let base = "metadata.blueGreenConfig.switchTraffic";
        if !d.has_error(&format!("{base}.type")) {
            let pcts: Vec<i64> = bg
                .switch_traffic
                .steps
                .iter()
                .map(|s| s.percentage)
                .collect();
            match bg.switch_traffic.kind {
                SwitchKind::Gradual => {
                    check_percent_steps(d, &format!("{base}.steps"), "step", &pcts)
                }
                SwitchKind::Immediate if !pcts.is_empty() && pcts != [100] => d.field(
                    &format!("{base}.steps"),
                    "an immediate switch has no intermediate steps; use type: gradual",
                ),
                SwitchKind::Immediate => {}
            }
        }
        check_triggers(
            d,
            "metadata.blueGreenConfig.rollbackTriggers",
            &bg.rollback_triggers,
        );
    }
    if let Some(c) = &m.canary_config {
        let base = "metadata.canaryConfig";
        let pcts: Vec<i64> = c.stages.iter().map(|s| s.percentage).collect();
        check_percent_steps(d, &format!("{base}.stages"), "stage", &pcts);
        let mut names = BTreeMap::new();
        for (i, s) in c.stages.iter().enumerate() {
            if let Some(j) = names.insert(s.name.as_str(), i) {
                d.field(
                    &format!("{base}.stages[{i}].name"),
                    format!("duplicate stage name `{}` (also stages[{j}])", s.name),
                );
            }
        }
        for (i, metric) in c.metrics.iter().enumerate() {
            let p = format!("{base}.metrics[{i}]");
            if !metric.threshold.is_finite() {
                d.field(&format!("{p}.threshold"), "must be a finite number");
            }
            if let Some(src) = &metric.source {
                check_source(d, &format!("{p}.source"), src);
            }
        }
        for (i, r) in c.progression_rules.iter().enumerate() {
            let p = format!("{base}.progressionRules[{i}]");
            if !r.condition.is_empty() {
                check_condition(d, &format!("{p}.condition"), &r.condition);
            }
        }
        for (field, v) in [
            ("failureLimit", c.failure_limit),
            ("noDataLimit", c.no_data_limit),
            ("errorLimit", c.error_limit),
        ] {
            if v < 0 {
                d.field(&format!("{base}.{field}"), "must be >= 0");
            }
        }
        let st = c.score_thresholds;
        if !(0.0..=100.0).contains(&st.pass) || !(0.0..=100.0).contains(&st.marginal) {
            d.field(
                &format!("{base}.scoreThresholds"),
                "pass and marginal must be between 0 and 100",
            );
        } else if st.marginal > st.pass {
            d.field(
                &format!("{base}.scoreThresholds.marginal"),
                "must not be above pass",
            );
        }
        if c.analysis_interval.0 == 0 {
            d.field(&format!("{base}.analysisInterval"), "must be > 0");
        }
    }
    if m.progress_deadline.is_some_and(|p| p.0 == 0) {
        d.field("metadata.progressDeadline", "must be > 0");
    }
    if let Some(r) = &m.rolling_config {
        let base = "metadata.rollingConfig";
        if r.batch_size < 1 {
            d.field(&format!("{base}.batchSize"), "must be >= 1");
        }
        for (field, v) in [
            ("maxSurge", r.max_surge),
            ("maxUnavailable", r.max_unavailable),
        ] {
            match v {
                IntOrPercent::Count(c) if c < 0 => {
                    d.field(&format!("{base}.{field}"), "must be >= 0")
                }
                IntOrPercent::Percent(p) if !(0..=100).contains(&p) => d.field(
                    &format!("{base}.{field}"),
                    "percentage must be between 0% and 100%",
                ),
                _ => {}
            }
        }
        if r.max_surge.is_zero() && r.max_unavailable.is_zero() {
            d.field(
                &format!("{base}.maxSurge"),
                "maxSurge and maxUnavailable cannot both be zero (the rollout could never progress)",
            );
        }
        if r.progress_deadline.0 == 0 {
            d.field(&format!("{base}.progressDeadline"), "must be > 0");
        }
    }
}

fn check_source(d: &mut Decoder, p: &str, src: &MetricSource) {
    if d.has_error(&format!("{p}.type")) {
        return;
    }
    match src.kind {
        SourceKind::Prometheus => {
            match &src.address {
                None => d.field(&format!("{p}.address"), "required for a prometheus source"),
                Some(a) if !(a.starts_with("http://") || a.starts_with("https://")) => d.field(
                    &format!("{p}.address"),
                    format!("`{a}` is not an http:// or https:// address"),
                ),
                _ => {}
            }
            if src.query.as_deref().is_none_or(|q| q.trim().is_empty()) {
                d.field(&format!("{p}.query"), "required for a prometheus source");
            }
        }
        SourceKind::Exec if src.command.is_empty() => {
            d.field(&format!("{p}.command"), "required for an exec source")
        }
        SourceKind::Exec | SourceKind::Builtin => {}
    }
}

fn check_triggers(d: &mut Decoder, base: &str, triggers: &[Trigger]) {
    for (i, t) in triggers.iter().enumerate() {
        let p = format!("{base}[{i}]");
        match &t.condition {
            Some(c) => check_condition(d, &format!("{p}.condition"), c),
            None if d.has_error(&format!("{p}.type")) => {}
            None => match t.kind {
                TriggerKind::Custom | TriggerKind::Metric => d.field(
                    &format!("{p}.condition"),
                    format!("required for a {} trigger", t.kind),
                ),
                TriggerKind::ErrorRate if t.threshold.is_none() => d.field(
                    &format!("{p}.threshold"),
                    "an error-rate trigger needs a threshold or a condition",
                ),
                TriggerKind::Timeout if t.duration.is_none() => d.field(
                    &format!("{p}.duration"),
                    "a timeout trigger needs a duration",
                ),
                TriggerKind::HealthCheck | TriggerKind::ErrorRate | TriggerKind::Timeout => {}
            },
        }
    }
}

fn check_rollback(spec: &Spec, d: &mut Decoder) {
    let r = &spec.rollback;
    check_triggers(d, "rollback.triggers", &r.triggers);
    if r.strategy.kind == RollbackKind::Gradual && !d.has_error("rollback.strategy.type") {
        let mut prev = 100;
        for (i, s) in r.strategy.steps.iter().enumerate() {
            let p = format!("rollback.strategy.steps[{i}]");
            if !(0..=99).contains(s) {
                d.field(
                    &p,
                    "must be between 0 and 99 (percent left on the new revision)",
                );
            } else if *s >= prev {
                d.field(&p, format!("must be lower than the previous step ({prev})"));
            }
            prev = *s;
        }
    }
    if r.automatic && !r.enabled {
        d.field(
            "rollback.automatic",
            "automatic rollback needs rollback.enabled: true",
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::model::{Component, Spec};
    use super::Decoder;

    /// A spec with components `c0..cN`, each depending on what `dep(i)` names; the rules are
    /// run directly so the YAML reader's debug-build cost is not timed.
    fn spec(n: usize, dep: impl Fn(usize) -> String) -> Spec {
        Spec {
            components: (0..n)
                .map(|i| Component {
                    id: format!("c{i}"),
                    dependencies: vec![dep(i)],
                    ..Component::default()
                })
                .collect(),
            ..Spec::default()
        }
    }

    fn messages(spec: &Spec) -> (Vec<String>, Duration) {
        let mut d = Decoder::default();
        let started = crate::spec::thread_cpu_time();
        super::check(spec, &mut d);
        let took = crate::spec::thread_cpu_time() - started;
        (d.diags.iter().map(|x| x.to_string()).collect(), took)
    }

    #[test]
    fn many_components_with_unknown_dependencies_are_checked_in_linear_time() {
        // Found in the fuzzing review (issue 11): every dependency scanned every component id
        // and measured its edit distance to each, so 30,000 components with one unknown
        // dependency each took minutes (a 1.2 MB spec).
        let (diags, took) = messages(&spec(30_000, |i| format!("d{i}")));
        assert!(took < Duration::from_secs(5), "{took:?}");
        let deps: Vec<&String> = diags
            .iter()
            .filter(|d| d.contains(".dependencies[0]"))
            .collect();
        assert_eq!(deps.len(), 30_000);
        // The first ones still get a suggestion; the rest are named without one.
        assert_eq!(
            deps[0],
            "components[0].dependencies[0]: unknown component `d0`; did you mean `c0`?"
        );
        assert_eq!(
            deps[29_999],
            "components[29999].dependencies[0]: unknown component `d29999`"
        );
    }

    #[test]
    fn a_long_cycle_of_dependencies_is_found_in_linear_time() {
        // component_order looked each dependency up by scanning the components.
        let (diags, took) = messages(&spec(100_000, |i| format!("c{}", (i + 1) % 100_000)));
        assert!(took < Duration::from_secs(5), "{took:?}");
        let cycle: Vec<&String> = diags
            .iter()
            .filter(|d| d.starts_with("components: dependency cycle"))
            .collect();
        assert_eq!(cycle.len(), 1);
        assert!(cycle[0].starts_with("components: dependency cycle: c0 -> c1 -> c2"));
        assert!(cycle[0].ends_with("c99999 -> c0"));
    }
}
