//! Spec validation through the library API: one test per rule and one per bad-input class.
//!
//! Each test starts from a seed example (embedded with `include_str!`), breaks exactly one thing
//! and asserts the exact diagnostic: its field path and message for rule violations, its line and
//! column for syntax, type and unknown-key errors.

use std::time::{Duration, Instant};

use cutover::spec::{
    load_bytes, load_file, load_str, Diagnostic, IntOrPercent, LoadError, Millis, Secs, ValidSpec,
};

const BASIC: &str = include_str!("../specs/basic.yaml");
const CANARY: &str = include_str!("../specs/canary.yaml");
const BLUE_GREEN: &str = include_str!("../specs/blue-green.yaml");
const ROLLING: &str = include_str!("../specs/rolling.yaml");

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// Replace `from` (which must occur exactly once) with `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    let n = text.matches(from).count();
    assert_eq!(
        n, 1,
        "`{from}` occurs {n} times in the base spec; the edit would be ambiguous"
    );
    text.replacen(from, to, 1)
}

/// Remove a top-level key and every indented line under it.
fn drop_top_level(text: &str, key: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    let mut found = false;
    for line in text.lines() {
        if line.starts_with(&format!("{key}:")) {
            skipping = true;
            found = true;
            continue;
        }
        if skipping && (line.starts_with(' ') || line.trim().is_empty()) {
            continue;
        }
        skipping = false;
        out.push_str(line);
        out.push('\n');
    }
    assert!(found, "no top-level `{key}` in the base spec");
    out
}

/// Replace the `components:` block of a spec with `block` (the list items, indented by 2).
fn with_components(text: &str, block: &str) -> String {
    let rest = drop_top_level(text, "components");
    let at = rest
        .find("\ninfrastructure:")
        .expect("infrastructure follows components")
        + 1;
    format!("{}components:\n{block}{}", &rest[..at], &rest[at..])
}

/// 1-based line and column of the unique occurrence of `needle`.
fn pos_of(text: &str, needle: &str) -> (usize, usize) {
    assert_eq!(text.matches(needle).count(), 1, "`{needle}` is not unique");
    let i = text.find(needle).unwrap();
    let before = &text[..i];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, col)
}

fn errors(text: &str) -> Vec<Diagnostic> {
    match load_str(text) {
        Ok(_) => panic!("expected the spec to be invalid, but it loaded:\n{text}"),
        Err(d) => {
            assert!(!d.is_empty(), "Err with no diagnostics");
            d
        }
    }
}

fn ok(text: &str) -> ValidSpec {
    match load_str(text) {
        Ok(s) => s,
        Err(d) => panic!("expected a valid spec, got:\n{}", render(&d)),
    }
}

fn render(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|x| x.render("spec.yaml"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn has_field(d: &[Diagnostic], path: &str, msg: &str) -> bool {
    d.iter().any(|x| matches!(x, Diagnostic::Field { path: p, message } if p == path && message.contains(msg)))
}

/// Some diagnostic is the rule violation `path: ...msg...`.
fn assert_field(d: &[Diagnostic], path: &str, msg: &str) {
    assert!(
        has_field(d, path, msg),
        "expected `{path}: ...{msg}...` among:\n{}",
        render(d)
    );
}

/// The only diagnostic is exactly the rule violation `path: message`.
fn assert_only_field(text: &str, path: &str, message: &str) {
    let d = errors(text);
    assert_eq!(
        d,
        vec![Diagnostic::Field {
            path: path.into(),
            message: message.into()
        }],
        "got:\n{}",
        render(&d)
    );
}

/// Some diagnostic is positioned at `line:col` with a message containing `msg`.
fn assert_at(d: &[Diagnostic], line: usize, col: usize, msg: &str) {
    let found = d.iter().any(|x| {
        matches!(x, Diagnostic::At { pos, message }
            if pos.line == line && pos.col == col && message.contains(msg))
    });
    assert!(
        found,
        "expected `{line}:{col}: ...{msg}...` among:\n{}",
        render(d)
    );
}

/// The only diagnostic is exactly `line:col: message`.
fn assert_only_at(text: &str, line: usize, col: usize, message: &str) {
    let d = errors(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(&d));
    assert_at(&d, line, col, message);
    let Diagnostic::At { message: m, .. } = &d[0] else {
        unreachable!()
    };
    assert_eq!(m, message);
}

fn file_message(d: &[Diagnostic]) -> &str {
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(d));
    match &d[0] {
        Diagnostic::File { message } => message,
        Diagnostic::At { message, .. } => message,
        Diagnostic::Field { message, .. } => message,
    }
}

/// Run `f`, asserting it returns an error quickly.
fn quick_err<T: std::fmt::Debug>(
    what: &str,
    f: impl FnOnce() -> Result<T, Vec<Diagnostic>>,
) -> Vec<Diagnostic> {
    let start = Instant::now();
    let r = f();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
    match r {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(d) => {
            assert!(!d.is_empty(), "{what}: Err with no diagnostics");
            d
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the seed examples
// ---------------------------------------------------------------------------------------------

#[test]
fn every_spec_in_specs_dir_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("specs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        n += 1;
        if let Err(e) = load_file(&path) {
            panic!("{} does not load:\n{e}", path.display());
        }
    }
    assert!(
        n >= 5,
        "expected the five seed examples in specs/, found {n}"
    );
}

#[test]
fn base_specs_load_with_their_values() {
    let s = ok(BASIC);
    assert_eq!(s.id, "my-app-v1.2.0");
    assert_eq!(s.strategy.as_str(), "blue-green");
    assert_eq!(s.components.len(), 1);
    assert_eq!(s.components[0].replicas.get(), 3);
    assert_eq!(s.rollback.timeout, Millis(300_000));
    let hc = s.components[0].health_check.as_ref().unwrap();
    assert_eq!(
        hc.initial_delay_seconds,
        Secs(30_000),
        "healthCheck fields are seconds"
    );
    let c = ok(CANARY).canary();
    let pcts: Vec<i64> = c.stages.iter().map(|s| s.percentage).collect();
    assert_eq!(pcts, [10, 50, 100]);
    assert!(!c.stages[1].auto_promote);
    assert_eq!(c.stages[0].duration, Millis(600_000));
}

// ---------------------------------------------------------------------------------------------
// required fields
// ---------------------------------------------------------------------------------------------

#[test]
fn required_id() {
    assert_only_field(
        &edit(BASIC, "\nid: 'my-app-v1.2.0'\n", "\n"),
        "id",
        "required field is missing",
    );
}

#[test]
fn required_name() {
    assert_only_field(
        &edit(BASIC, "\nname: 'my-app'\n", "\n"),
        "name",
        "required field is missing",
    );
}

#[test]
fn required_version() {
    assert_only_field(
        &edit(BASIC, "\nversion: '1.2.0'\n", "\n"),
        "version",
        "required field is missing",
    );
}

#[test]
fn required_strategy() {
    assert_only_field(
        &edit(BASIC, "\nstrategy: 'blue-green'\n", "\n"),
        "strategy",
        "required field is missing",
    );
}

#[test]
fn required_environment() {
    assert_only_field(
        &edit(BASIC, "\nenvironment: 'production'\n", "\n"),
        "environment",
        "required field is missing",
    );
}

#[test]
fn required_components() {
    assert_only_field(
        &drop_top_level(BASIC, "components"),
        "components",
        "required field is missing",
    );
}

#[test]
fn components_must_not_be_empty() {
    let text = with_components(BASIC, "  []\n");
    assert_only_field(&text, "components", "at least one component is required");
}

#[test]
fn required_infrastructure_provider() {
    assert_only_field(
        &edit(BASIC, "  provider: 'kubernetes'\n", ""),
        "infrastructure.provider",
        "required field is missing",
    );
}

#[test]
fn required_component_id() {
    assert_only_field(
        &edit(
            BASIC,
            "  - id: 'api'\n    name: 'api'\n",
            "  - name: 'api'\n",
        ),
        "components[0].id",
        "required field is missing",
    );
}

#[test]
fn required_health_check_type() {
    assert_only_field(
        &edit(BASIC, "      type: 'http'\n", ""),
        "components[0].healthCheck.type",
        "required field is missing",
    );
}

#[test]

fn unquoted_version_keeps_its_text() {
    // A version is a label: `1.10` and `1.1` are different releases. The YAML scalar's text must
    // be kept (or the value refused with a hint to quote it), never silently renumbered.
    for v in ["1.10", "2.0", "1.20"] {
        match load_str(&edit(
            BASIC,
            "\nversion: '1.2.0'\n",
            &format!("\nversion: {v}\n"),
        )) {
            Ok(s) => assert_eq!(s.version, v),
            Err(d) => assert!(render(&d).contains("version"), "{}", render(&d)),
        }
    }
}

#[test]
fn empty_string_fields_are_refused() {
    assert_only_field(
        &edit(BASIC, "name: 'my-app'", "name: ''"),
        "name",
        "must not be empty",
    );
}

#[test]
fn id_characters_are_restricted() {
    assert_only_field(
        &edit(BASIC, "id: 'my-app-v1.2.0'", "id: 'my app/1.2'"),
        "id",
        "may hold only letters, digits, '.', '-' and '_'",
    );
}

// ---------------------------------------------------------------------------------------------
// strategy, provider, metadata
// ---------------------------------------------------------------------------------------------

#[test]
fn strategy_unknown_with_did_you_mean() {
    assert_only_field(
        &edit(BASIC, "strategy: 'blue-green'", "strategy: 'canery'"),
        "strategy",
        "`canery` is not one of blue-green, canary, rolling, recreate; did you mean `canary`?",
    );
}

#[test]
fn strategy_unknown_without_suggestion() {
    assert_only_field(
        &edit(BASIC, "strategy: 'blue-green'", "strategy: 'big-bang'"),
        "strategy",
        "`big-bang` is not one of blue-green, canary, rolling, recreate",
    );
}

#[test]
fn every_strategy_is_accepted() {
    for s in ["blue-green", "canary", "rolling", "recreate"] {
        let spec = ok(&edit(
            BASIC,
            "strategy: 'blue-green'",
            &format!("strategy: '{s}'"),
        ));
        assert_eq!(spec.strategy.as_str(), s);
    }
}

#[test]
fn provider_unknown() {
    assert_only_field(
        &edit(BASIC, "provider: 'kubernetes'", "provider: 'kubernets'"),
        "infrastructure.provider",
        "`kubernets` is not one of local, kubernetes, simulated; did you mean `kubernetes`?",
    );
    assert_only_field(
        &edit(BASIC, "provider: 'kubernetes'", "provider: 'aws'"),
        "infrastructure.provider",
        "`aws` is not one of local, kubernetes, simulated",
    );
}

#[test]
fn metadata_for_another_strategy() {
    assert_only_field(
        &edit(CANARY, "strategy: 'canary'", "strategy: 'rolling'"),
        "metadata.canaryConfig",
        "configures canary, but strategy is rolling; remove it or change strategy",
    );
    assert_only_field(
        &edit(ROLLING, "strategy: 'rolling'", "strategy: 'blue-green'"),
        "metadata.rollingConfig",
        "configures rolling, but strategy is blue-green; remove it or change strategy",
    );
    assert_only_field(
        &edit(BLUE_GREEN, "strategy: 'blue-green'", "strategy: 'recreate'"),
        "metadata.blueGreenConfig",
        "configures blue-green, but strategy is recreate; remove it or change strategy",
    );
}

// ---------------------------------------------------------------------------------------------
// components
// ---------------------------------------------------------------------------------------------

fn two_components(api_deps: &str, db_deps: &str, db_id: &str) -> String {
    with_components(
        BASIC,
        &format!(
            "  - id: 'api'\n    replicas: 2\n    dependencies: {api_deps}\n  - id: '{db_id}'\n    dependencies: {db_deps}\n"
        ),
    )
}

#[test]
fn components_with_dependencies_load_in_dependency_order() {
    let s = ok(&two_components("['db']", "[]", "db"));
    let order: Vec<&str> = s
        .ordered_components()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(order, ["db", "api"]);
    assert_eq!(s.components[1].name, "db", "name defaults to the id");
    assert_eq!(s.components[1].replicas.get(), 1, "replicas default to 1");
}

#[test]
fn duplicate_component_ids() {
    assert_only_field(
        &two_components("[]", "[]", "api"),
        "components[1].id",
        "duplicate component id `api`",
    );
}

#[test]
fn unknown_dependency() {
    assert_only_field(
        &two_components("['dbb']", "[]", "db"),
        "components[0].dependencies[0]",
        "unknown component `dbb`; did you mean `db`?",
    );
    assert_only_field(
        &two_components("['db', 'cache']", "[]", "db"),
        "components[0].dependencies[1]",
        "unknown component `cache`",
    );
}

#[test]
fn dependency_cycle() {
    assert_only_field(
        &two_components("['db']", "['api']", "db"),
        "components",
        "dependency cycle: api -> db -> api",
    );
}

#[test]
fn self_dependency() {
    assert_only_field(
        &two_components("['api']", "[]", "db"),
        "components[0].dependencies[0]",
        "a component cannot depend on itself",
    );
}

#[test]
fn replicas_range() {
    for bad in ["0", "10001", "-1"] {
        assert_only_field(
            &edit(BASIC, "replicas: 3", &format!("replicas: {bad}")),
            "components[0].replicas",
            "must be between 1 and 10000",
        );
    }
    for good in [1, 10_000] {
        let s = ok(&edit(BASIC, "replicas: 3", &format!("replicas: {good}")));
        assert_eq!(i64::from(s.components[0].replicas), good);
    }
}

#[test]
fn replicas_type_error_is_positioned() {
    let text = edit(BASIC, "replicas: 3", "replicas: 'three'");
    let (line, col) = pos_of(&text, "'three'");
    assert_eq!((line, col), (13, 15));
    let d = errors(&text);
    assert_at(
        &d,
        line,
        col,
        "components[0].replicas: expected a whole number, found a string",
    );
    // (The decoder also reports the defaulted 0 as out of range; nothing else is wrong.)
    assert!(d.len() <= 2, "{}", render(&d));
}

// ---------------------------------------------------------------------------------------------
// health checks
// ---------------------------------------------------------------------------------------------

const HC_HTTP: &str = "      type: 'http'\n      endpoint: '/health'\n      port: 8080\n";

fn health(fields: &str) -> String {
    edit(BASIC, HC_HTTP, fields)
}

#[test]
fn http_health_check_needs_endpoint() {
    assert_only_field(
        &health("      type: 'http'\n      port: 8080\n"),
        "components[0].healthCheck.endpoint",
        "required for an http health check",
    );
}

#[test]
fn http_health_check_endpoint_is_a_path() {
    assert_only_field(
        &health("      type: 'http'\n      endpoint: 'health'\n      port: 8080\n"),
        "components[0].healthCheck.endpoint",
        "must start with '/'",
    );
}

#[test]
fn http_health_check_needs_port() {
    assert_only_field(
        &health("      type: 'http'\n      endpoint: '/health'\n"),
        "components[0].healthCheck.port",
        "required for an http health check",
    );
}

#[test]
fn tcp_health_check_needs_port() {
    assert_only_field(
        &health("      type: 'tcp'\n"),
        "components[0].healthCheck.port",
        "required for a tcp health check",
    );
    ok(&health("      type: 'tcp'\n      port: 5432\n"));
}

#[test]
fn exec_health_check_needs_command() {
    assert_only_field(
        &health("      type: 'exec'\n"),
        "components[0].healthCheck.command",
        "required for an exec health check",
    );
    let s = ok(&health(
        "      type: 'exec'\n      command: ['pg_isready', '-q']\n",
    ));
    assert_eq!(
        s.components[0].health_check.as_ref().unwrap().command,
        ["pg_isready", "-q"]
    );
}

#[test]
fn grpc_health_check_needs_port() {
    assert_only_field(
        &health("      type: 'grpc'\n"),
        "components[0].healthCheck.port",
        "required for a grpc health check",
    );
    ok(&health("      type: 'grpc'\n      port: 9090\n"));
}

#[test]
fn health_check_type_unknown() {
    assert_only_field(
        &health("      type: 'https'\n      endpoint: '/health'\n      port: 8080\n"),
        "components[0].healthCheck.type",
        "`https` is not one of http, tcp, exec, grpc; did you mean `http`?",
    );
}

#[test]
fn health_check_port_range() {
    assert_only_field(
        &edit(BASIC, "port: 8080", "port: 70000"),
        "components[0].healthCheck.port",
        "must be between 1 and 65535",
    );
}

#[test]
fn failure_threshold_at_least_one() {
    assert_only_field(
        &edit(BASIC, "failureThreshold: 3", "failureThreshold: 0"),
        "components[0].healthCheck.failureThreshold",
        "must be >= 1",
    );
}

#[test]
fn success_threshold_at_least_one() {
    assert_only_field(
        &edit(BASIC, "successThreshold: 1", "successThreshold: 0"),
        "components[0].healthCheck.successThreshold",
        "must be >= 1",
    );
}

#[test]
fn health_check_defaults() {
    let s = ok(&health("      type: 'tcp'\n      port: 5432\n"));
    let text = edit(BASIC, "\n      periodSeconds: 10\n      timeoutSeconds: 5\n      failureThreshold: 3\n      successThreshold: 1\n", "\n");
    let hc = ok(&text).components[0].health_check.clone().unwrap();
    assert_eq!(hc.period_seconds, Secs(10_000));
    assert_eq!(hc.timeout_seconds, Secs(1_000));
    assert_eq!(hc.failure_threshold, 3);
    assert_eq!(hc.success_threshold, 1);
    assert_eq!(
        s.components[0].health_check.as_ref().unwrap().kind.as_str(),
        "tcp"
    );
}

// ---------------------------------------------------------------------------------------------
// durations
// ---------------------------------------------------------------------------------------------

#[test]
fn negative_analysis_interval() {
    let d = errors(&edit(
        CANARY,
        "analysisInterval: 60000",
        "analysisInterval: -5",
    ));
    assert_field(&d, "metadata.canaryConfig.analysisInterval", "must be >= 0");
    assert!(
        d.iter().all(|x| matches!(x, Diagnostic::Field { path, .. } if path == "metadata.canaryConfig.analysisInterval")),
        "only analysisInterval is wrong:\n{}",
        render(&d)
    );
}

#[test]
fn negative_warmup_duration() {
    assert_only_field(
        &edit(BLUE_GREEN, "warmupDuration: 60000", "warmupDuration: -1"),
        "metadata.blueGreenConfig.warmupDuration",
        "must be >= 0",
    );
}

#[test]
fn negative_rollback_timeout_and_health_seconds() {
    assert_only_field(
        &edit(BASIC, "timeout: 300000", "timeout: -1"),
        "rollback.timeout",
        "must be >= 0",
    );
    assert_only_field(
        &edit(BASIC, "initialDelaySeconds: 30", "initialDelaySeconds: -1"),
        "components[0].healthCheck.initialDelaySeconds",
        "must be >= 0",
    );
}

#[test]
fn bad_duration_string_is_positioned() {
    let text = edit(
        BLUE_GREEN,
        "warmupDuration: 60000",
        "warmupDuration: '5 minutes'",
    );
    let (line, col) = pos_of(&text, "'5 minutes'");
    assert_only_at(
        &text,
        line,
        col,
        "metadata.blueGreenConfig.warmupDuration: `5 minutes` is not a duration; write a number of milliseconds or e.g. \"30s\", \"5m\", \"1h30m\"",
    );
    let text = edit(
        CANARY,
        "analysisInterval: 60000",
        "analysisInterval: '5 minutes'",
    );
    let (line, col) = pos_of(&text, "'5 minutes'");
    let d = errors(&text);
    assert_at(
        &d,
        line,
        col,
        "metadata.canaryConfig.analysisInterval: `5 minutes` is not a duration",
    );
}

#[test]
fn duration_strings_and_numbers() {
    let s = ok(&edit(
        CANARY,
        "analysisInterval: 60000",
        "analysisInterval: '30s'",
    ));
    assert_eq!(s.canary().analysis_interval, Millis(30_000));
    let s = ok(&edit(
        CANARY,
        "analysisInterval: 60000",
        "analysisInterval: '1h30m'",
    ));
    assert_eq!(s.canary().analysis_interval, Millis(5_400_000));
    let s = ok(&edit(BASIC, "periodSeconds: 10", "periodSeconds: '2m'"));
    assert_eq!(
        s.components[0]
            .health_check
            .as_ref()
            .unwrap()
            .period_seconds,
        Secs(120_000)
    );
}

// ---------------------------------------------------------------------------------------------
// canary stages
// ---------------------------------------------------------------------------------------------

const STAGE_10: &str = "{ name: 'canary-10', percentage: 10,";
const STAGE_50: &str = "{ name: 'canary-50', percentage: 50,";
const STAGE_100: &str = "{ name: 'canary-100', percentage: 100,";

fn stage(from: &str, pct: i64) -> String {
    let name = from.split('\'').nth(1).unwrap();
    edit(
        CANARY,
        from,
        &format!("{{ name: '{name}', percentage: {pct},"),
    )
}

#[test]
fn canary_stage_percentage_zero() {
    assert_only_field(
        &stage(STAGE_10, 0),
        "metadata.canaryConfig.stages[0].percentage",
        "must be between 1 and 100",
    );
}

#[test]
fn canary_stage_percentage_over_100() {
    let d = errors(&stage(STAGE_100, 101));
    assert_field(
        &d,
        "metadata.canaryConfig.stages[2].percentage",
        "must be between 1 and 100",
    );
}

#[test]
fn canary_stage_percentages_must_increase() {
    let d = errors(&stage(STAGE_50, 5));
    assert_eq!(
        render(&d),
        "spec.yaml: metadata.canaryConfig.stages[1].percentage: must be greater than the previous stage (10)"
    );
    assert_eq!(
        d[0].to_string(),
        "metadata.canaryConfig.stages[1].percentage: must be greater than the previous stage (10)"
    );
    // equal is not increasing either
    assert_only_field(
        &stage(STAGE_50, 10),
        "metadata.canaryConfig.stages[1].percentage",
        "must be greater than the previous stage (10)",
    );
}

#[test]
fn canary_last_stage_must_be_100() {
    assert_only_field(
        &stage(STAGE_100, 90),
        "metadata.canaryConfig.stages[2].percentage",
        "the last stage must be 100",
    );
}

#[test]
fn canary_needs_a_stage() {
    let text = edit(
        CANARY,
        "    stages:\n      - { name: 'canary-10', percentage: 10, duration: 600000, autoPromote: true }\n      - { name: 'canary-50', percentage: 50, duration: 600000, autoPromote: false }\n      - { name: 'canary-100', percentage: 100, duration: 0, autoPromote: true }\n",
        "    stages: []\n",
    );
    assert_only_field(
        &text,
        "metadata.canaryConfig.stages",
        "at least one stage is required",
    );
}

#[test]
fn canary_stage_names_unique() {
    let text = edit(CANARY, "name: 'canary-50'", "name: 'canary-10'");
    assert_only_field(
        &text,
        "metadata.canaryConfig.stages[1].name",
        "duplicate stage name `canary-10` (also stages[0])",
    );
}

// ---------------------------------------------------------------------------------------------
// blue-green steps
// ---------------------------------------------------------------------------------------------

fn bg_step(from: i64, to: i64) -> String {
    edit(
        BLUE_GREEN,
        &format!("{{ percentage: {from},"),
        &format!("{{ percentage: {to},"),
    )
}

const BG_STEPS: &str = "metadata.blueGreenConfig.switchTraffic.steps";

#[test]
fn blue_green_step_percentage_zero() {
    assert_only_field(
        &bg_step(25, 0),
        &format!("{BG_STEPS}[0].percentage"),
        "must be between 1 and 100",
    );
}

#[test]
fn blue_green_step_percentage_over_100() {
    let d = errors(&bg_step(100, 101));
    assert_field(
        &d,
        &format!("{BG_STEPS}[2].percentage"),
        "must be between 1 and 100",
    );
}

#[test]
fn blue_green_steps_must_increase() {
    assert_only_field(
        &bg_step(50, 20),
        &format!("{BG_STEPS}[1].percentage"),
        "must be greater than the previous step (25)",
    );
}

#[test]
fn blue_green_last_step_must_be_100() {
    assert_only_field(
        &bg_step(100, 90),
        &format!("{BG_STEPS}[2].percentage"),
        "the last step must be 100",
    );
}

#[test]
fn blue_green_switch_type_unknown() {
    assert_only_field(
        &edit(BLUE_GREEN, "type: 'gradual'", "type: 'instant'"),
        "metadata.blueGreenConfig.switchTraffic.type",
        "`instant` is not one of gradual, immediate",
    );
}

// ---------------------------------------------------------------------------------------------
// rolling
// ---------------------------------------------------------------------------------------------

fn rolling(batch: &str, unavailable: &str, surge: &str) -> String {
    edit(
        ROLLING,
        "    batchSize: 1\n    maxUnavailable: 1\n    maxSurge: 1\n",
        &format!(
            "    batchSize: {batch}\n    maxUnavailable: {unavailable}\n    maxSurge: {surge}\n"
        ),
    )
}

const ROLL: &str = "metadata.rollingConfig";

#[test]
fn rolling_batch_size_at_least_one() {
    assert_only_field(
        &rolling("0", "1", "1"),
        &format!("{ROLL}.batchSize"),
        "must be >= 1",
    );
}

#[test]
fn rolling_surge_and_unavailable_not_both_zero() {
    let msg = "maxSurge and maxUnavailable cannot both be zero (the rollout could never progress)";
    for (u, s) in [("0", "0"), ("'0%'", "'0%'"), ("0", "'0%'")] {
        assert_only_field(&rolling("1", u, s), &format!("{ROLL}.maxSurge"), msg);
    }
}

#[test]
fn rolling_negative_counts() {
    assert_only_field(
        &rolling("1", "1", "-1"),
        &format!("{ROLL}.maxSurge"),
        "must be >= 0",
    );
    assert_only_field(
        &rolling("1", "-2", "1"),
        &format!("{ROLL}.maxUnavailable"),
        "must be >= 0",
    );
}

#[test]
fn rolling_percentage_over_100() {
    assert_only_field(
        &rolling("1", "'150%'", "1"),
        &format!("{ROLL}.maxUnavailable"),
        "percentage must be between 0% and 100%",
    );
}

#[test]
fn rolling_bad_string_is_positioned() {
    let text = rolling("1", "1", "'lots'");
    let (line, col) = pos_of(&text, "'lots'");
    assert_only_at(
        &text,
        line,
        col,
        "metadata.rollingConfig.maxSurge: expected a count or a percentage like \"25%\", found `lots`",
    );
}

#[test]
fn rolling_percentages_accepted() {
    let s = ok(&rolling("2", "'25%'", "'50%'"));
    let r = s.rolling();
    assert_eq!(r.batch_size, 2);
    assert_eq!(r.max_unavailable, IntOrPercent::Percent(25));
    assert_eq!(r.max_surge, IntOrPercent::Percent(50));
}

// ---------------------------------------------------------------------------------------------
// metrics, progression rules, conditions, triggers
// ---------------------------------------------------------------------------------------------

#[test]
fn metric_operator_unknown() {
    assert_only_field(
        &edit(
            CANARY,
            "operator: 'lt', unit: 'percentage'",
            "operator: 'less', unit: 'percentage'",
        ),
        "metadata.canaryConfig.metrics[0].operator",
        "`less` is not one of lt, lte, gt, gte, eq",
    );
    assert_only_field(
        &edit(
            CANARY,
            "operator: 'lt', unit: 'ms'",
            "operator: 'gtt', unit: 'ms'",
        ),
        "metadata.canaryConfig.metrics[1].operator",
        "`gtt` is not one of lt, lte, gt, gte, eq; did you mean `gt`?",
    );
}

#[test]
fn progression_rule_action_unknown() {
    assert_only_field(
        &edit(
            CANARY,
            "condition: 'error_rate < 0.05', action: 'promote'",
            "condition: 'error_rate < 0.05', action: 'promte'",
        ),
        "metadata.canaryConfig.progressionRules[0].action",
        "`promte` is not one of promote, rollback, pause; did you mean `promote`?",
    );
    assert_only_field(
        &edit(
            CANARY,
            "condition: 'response_time < 200', action: 'promote'",
            "condition: 'response_time < 200', action: 'explode'",
        ),
        "metadata.canaryConfig.progressionRules[1].action",
        "`explode` is not one of promote, rollback, pause",
    );
}

#[test]
fn progression_rule_condition_must_parse() {
    let d = errors(&edit(
        CANARY,
        "condition: 'error_rate < 0.05'",
        "condition: 'error_rate <'",
    ));
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_field(
        &d,
        "metadata.canaryConfig.progressionRules[0].condition",
        "`error_rate <` does not parse: at column",
    );
}

#[test]
fn rollback_trigger_condition_must_parse() {
    let d = errors(&edit(
        BASIC,
        "condition: 'failure_rate > 0.1'",
        "condition: 'failure_rate >> 0.1'",
    ));
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_field(
        &d,
        "rollback.triggers[0].condition",
        "`failure_rate >> 0.1` does not parse",
    );
    let d = errors(&edit(
        BASIC,
        "condition: 'failure_rate > 0.1'",
        "condition: 'failure_rate > 10%'",
    ));
    assert_field(&d, "rollback.triggers[0].condition", "unit suffix");
}

#[test]
fn conditions_use_the_expression_language() {
    let cond = "(error_rate < 0.05 and not response_time >= 200) or failure_rate == 0";
    ok(&edit(
        CANARY,
        "condition: 'error_rate < 0.05'",
        &format!("condition: '{cond}'"),
    ));
    ok(&edit(
        BASIC,
        "condition: 'failure_rate > 0.1'",
        &format!("condition: '{cond}'"),
    ));
}

#[test]
fn trigger_type_unknown() {
    assert_only_field(
        &edit(BASIC, "type: 'health-check'", "type: 'healthcheck'"),
        "rollback.triggers[0].type",
        "`healthcheck` is not one of health-check, metric, error-rate, timeout, custom; did you mean `health-check`?",
    );
    assert_only_field(
        &edit(BASIC, "type: 'health-check'", "type: 'bogus'"),
        "rollback.triggers[0].type",
        "`bogus` is not one of health-check, metric, error-rate, timeout, custom",
    );
}

#[test]
fn triggers_need_what_they_measure() {
    assert_only_field(
        &edit(
            BASIC,
            "- { type: 'health-check', condition: 'failure_rate > 0.1' }",
            "- { type: 'metric' }",
        ),
        "rollback.triggers[0].condition",
        "required for a metric trigger",
    );
    assert_only_field(
        &edit(
            BASIC,
            "- { type: 'health-check', condition: 'failure_rate > 0.1' }",
            "- { type: 'timeout' }",
        ),
        "rollback.triggers[0].duration",
        "a timeout trigger needs a duration",
    );
}

#[test]
fn blue_green_rollback_trigger_checked() {
    assert_only_field(
        &edit(BLUE_GREEN, "rollbackTriggers: []", "rollbackTriggers: [{ type: 'custom', condition: 'x <' }]"),
        "metadata.blueGreenConfig.rollbackTriggers[0].condition",
        "`x <` does not parse: at column 4: unterminated expression: expected a number or identifier after `<`",
    );
}

#[test]
fn automatic_rollback_needs_enabled() {
    assert_only_field(
        &edit(
            BASIC,
            "enabled: true\n  automatic: true",
            "enabled: false\n  automatic: true",
        ),
        "rollback.automatic",
        "automatic rollback needs rollback.enabled: true",
    );
}

// ---------------------------------------------------------------------------------------------
// unknown keys
// ---------------------------------------------------------------------------------------------

#[test]
fn unknown_component_key_replica() {
    let text = edit(BASIC, "    replicas: 3\n", "    replica: 3\n");
    assert_eq!(pos_of(&text, "replica: 3"), (13, 5));
    assert_only_at(
        &text,
        13,
        5,
        "components[0].replica: unknown key `replica`; did you mean `replicas`?",
    );
}

#[test]
fn unknown_component_key_healthcheck() {
    let text = edit(BASIC, "    healthCheck:\n", "    healthcheck:\n");
    assert_eq!(pos_of(&text, "healthcheck:"), (17, 5));
    assert_only_at(
        &text,
        17,
        5,
        "components[0].healthcheck: unknown key `healthcheck`; did you mean `healthCheck`?",
    );
}

#[test]
fn unknown_top_level_key() {
    let text = format!("{BASIC}versoin: '1.2.0'\n");
    let (line, col) = pos_of(&text, "versoin");
    assert_eq!(col, 1);
    assert_only_at(
        &text,
        line,
        col,
        "versoin: unknown key `versoin`; did you mean `version`?",
    );
    let text = edit(
        BASIC,
        "\nenvironment: 'production'\n",
        "\nenvironment: 'production'\nfrobnicate: 1\n",
    );
    assert_only_at(
        &text,
        9,
        1,
        "frobnicate: unknown key `frobnicate`; expected one of: id, name, version, strategy, environment, components, infrastructure, validation, rollback, analytics, metadata",
    );
}

#[test]
fn unknown_key_in_flow_mapping() {
    let text = edit(BASIC, "scrapeInterval: '30s'", "scrapeIntervl: '30s'");
    let (line, col) = pos_of(&text, "scrapeIntervl");
    assert_only_at(
        &text,
        line,
        col,
        "infrastructure.monitoring.metrics.scrapeIntervl: unknown key `scrapeIntervl`; did you mean `scrapeInterval`?",
    );
}

#[test]
fn unknown_key_in_strategy_config() {
    let text = edit(
        ROLLING,
        "    maxSurge: 1\n",
        "    maxSurge: 1\n    maxsurge: 2\n",
    );
    let (line, col) = pos_of(&text, "maxsurge");
    assert_only_at(
        &text,
        line,
        col,
        "metadata.rollingConfig.maxsurge: unknown key `maxsurge`; did you mean `maxSurge`?",
    );
}

// ---------------------------------------------------------------------------------------------
// every problem in one run
// ---------------------------------------------------------------------------------------------

#[test]
fn all_problems_reported_in_one_run() {
    let text = edit(BASIC, "strategy: 'blue-green'", "strategy: 'canery'");
    let text = edit(&text, "    replicas: 3\n", "    replicas: 0\n");
    let text = edit(&text, "    healthCheck:\n", "    healthcheck:\n");
    let text = edit(&text, "provider: 'kubernetes'", "provider: 'kubernets'");
    let d = errors(&text);
    assert!(d.len() >= 4, "{}", render(&d));
    assert_field(&d, "strategy", "did you mean `canary`?");
    assert_field(&d, "components[0].replicas", "must be between 1 and 10000");
    assert_field(&d, "infrastructure.provider", "did you mean `kubernetes`?");
    assert_at(&d, 17, 5, "did you mean `healthCheck`?");
}

// ---------------------------------------------------------------------------------------------
// defaults
// ---------------------------------------------------------------------------------------------

#[test]
fn canary_defaults_without_metadata() {
    let s = ok(&edit(BASIC, "strategy: 'blue-green'", "strategy: 'canary'"));
    assert!(s.metadata.canary_config.is_none());
    let c = s.canary();
    let stages: Vec<(&str, i64, Millis, bool)> = c
        .stages
        .iter()
        .map(|s| (s.name.as_str(), s.percentage, s.duration, s.auto_promote))
        .collect();
    assert_eq!(
        stages,
        [
            ("canary-10", 10, Millis(300_000), true),
            ("canary-50", 50, Millis(300_000), true),
            ("canary-100", 100, Millis(0), true)
        ]
    );
    assert_eq!(c.analysis_interval, Millis(60_000));
    assert!(c.metrics.is_empty());
}

#[test]
fn canary_config_without_stages_gets_default_stages() {
    let text = format!(
        "{}metadata:\n  canaryConfig:\n    analysisInterval: '30s'\n",
        edit(BASIC, "strategy: 'blue-green'", "strategy: 'canary'")
    );
    let c = ok(&text).canary();
    let pcts: Vec<i64> = c.stages.iter().map(|s| s.percentage).collect();
    assert_eq!(pcts, [10, 50, 100]);
    assert_eq!(c.analysis_interval, Millis(30_000));
}

#[test]
fn rolling_and_blue_green_defaults_without_metadata() {
    let r = ok(&edit(
        BASIC,
        "strategy: 'blue-green'",
        "strategy: 'rolling'",
    ))
    .rolling();
    assert_eq!(r.batch_size, 1);
    assert_eq!(r.max_surge, IntOrPercent::Count(1));
    assert_eq!(r.max_unavailable, IntOrPercent::Count(0));
    assert_eq!(r.progress_deadline, Millis(600_000));
    assert_eq!(r.pause_between_batches, Millis(0));
    let b = ok(BASIC).blue_green();
    assert_eq!(b.switch_traffic.kind.as_str(), "immediate");
    assert!(b.switch_traffic.steps.is_empty());
    assert_eq!(b.switch_traffic.verify_duration, Millis(60_000));
    assert_eq!(b.warmup_duration, Millis(0));
}

#[test]
fn optional_blocks_default() {
    let mut text = BASIC.to_string();
    for key in ["validation", "rollback", "analytics"] {
        text = drop_top_level(&text, key);
    }
    let s = ok(&text);
    assert!(s.rollback.enabled && s.rollback.automatic);
    assert_eq!(s.rollback.timeout, Millis(300_000));
    assert_eq!(s.rollback.strategy.kind.as_str(), "immediate");
    assert!(s.validation.post_deployment.is_empty());
}

// ---------------------------------------------------------------------------------------------
// bad input classes
// ---------------------------------------------------------------------------------------------

#[test]
fn empty_file() {
    let d = quick_err("empty", || load_str(""));
    assert!(
        matches!(&d[..], [Diagnostic::File { message }] if message.contains("empty")),
        "{}",
        render(&d)
    );
}

#[test]
fn whitespace_and_comment_only_file() {
    for text in [
        "   \n\n  \n",
        "# just a comment\n  # another\n\n",
        "\n\t\n  \t \n",
    ] {
        let d = quick_err("blank", || load_str(text));
        assert!(
            file_message(&d).contains("empty"),
            "{text:?}: {}",
            render(&d)
        );
    }
    // An explicit document with no content is a null root: not a mapping.
    let d = quick_err("empty document", || load_str("\n---\n# nothing\n"));
    assert!(
        file_message(&d).contains("a spec is a mapping of fields"),
        "{}",
        render(&d)
    );
}

#[test]
fn non_mapping_root_list() {
    let d = quick_err("list", || load_str("- id: a\n- id: b\n"));
    assert_eq!(d.len(), 1);
    assert_at(
        &d,
        1,
        1,
        "a spec is a mapping of fields (id, name, version, ...), found a list",
    );
}

#[test]
fn non_mapping_root_scalar() {
    let d = quick_err("scalar", || load_str("hello world\n"));
    assert_at(&d, 1, 1, "found a string");
    let d = quick_err("int", || load_str("42"));
    assert_at(&d, 1, 1, "found an integer");
}

#[test]
fn tab_indentation() {
    let d = quick_err("tab", || load_str("id: a\nmetadata:\n\tcanaryConfig: {}\n"));
    assert_eq!(d.len(), 1);
    assert_at(&d, 3, 1, "tab character in indentation");
    let text = edit(BASIC, "    replicas: 3\n", "  \treplicas: 3\n");
    let d = quick_err("tab in basic", || load_str(&text));
    assert_at(
        &d,
        13,
        3,
        "tab character in indentation; YAML indents with spaces only",
    );
}

#[test]

fn tab_on_blank_line_is_not_indentation() {
    // YAML forbids tabs in indentation, not in blank lines or before comments; editors often
    // leave a stray tab on an empty line.
    ok(&edit(
        BASIC,
        "\ninfrastructure:\n",
        "\n\t\ninfrastructure:\n",
    ));
    ok(&edit(
        BASIC,
        "\ninfrastructure:\n",
        "\n  \t# a comment after a tab\ninfrastructure:\n",
    ));
}

#[test]
fn binary_nul_bytes() {
    let d = quick_err("nul", || load_str("id: a\nname: b\u{0}\u{0}c\n"));
    assert_eq!(d.len(), 1);
    assert_at(&d, 2, 8, "binary data (NUL byte)");
}

#[test]
fn invalid_utf8() {
    let d = quick_err("utf8", || load_bytes(b"id: a\nname: \xff\xfe\n"));
    assert_eq!(d.len(), 1);
    assert_at(&d, 2, 7, "invalid UTF-8");
}

/// xorshift64*: deterministic pseudo-random bytes.
fn random_bytes(seed: u64, n: usize, alphabet: Option<&[u8]>) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
            match alphabet {
                Some(a) => a[(r >> 33) as usize % a.len()],
                None => (r >> 56) as u8,
            }
        })
        .collect()
}

#[test]
fn random_bytes_are_refused() {
    for seed in 1..=20u64 {
        let bytes = random_bytes(seed, 64 * 1024, None);
        quick_err(&format!("random seed {seed}"), || load_bytes(&bytes));
    }
}

#[test]
fn random_yaml_punctuation_never_panics() {
    let alphabet = b"[]{}:,-?&*!|>'\"#%@` \n\n  ab1.~";
    for seed in 1..=200u64 {
        let bytes = random_bytes(seed, 2048, Some(alphabet));
        let start = Instant::now();
        let r = load_bytes(&bytes);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "seed {seed} took {:?}",
            start.elapsed()
        );
        assert!(r.is_err(), "seed {seed}: random text loaded as a spec");
    }
    // Mutations of a real spec: truncations at every 97th byte.
    for cut in (0..BASIC.len()).step_by(97) {
        let _ = load_str(&BASIC[..cut]);
    }
}

#[test]
fn alias_bomb() {
    let bomb = r#"a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"#;
    let d = quick_err("billion laughs", || load_str(bomb));
    assert_eq!(d.len(), 1);
    assert!(file_message(&d).contains("alias bomb"), "{}", render(&d));
    // Aliases inside a real spec, modestly used, are fine.
    let text = edit(
        BASIC,
        "  region: ['us-west-2']",
        "  region: &r ['us-west-2']\n  namespace: *r",
    );
    let d = errors(&text);
    assert_at(
        &d,
        pos_of(&text, "*r").0,
        pos_of(&text, "*r").1,
        "infrastructure.namespace: expected a string, found a list",
    );
}

#[test]
fn absurdly_deep_nesting() {
    for (what, text) in [
        ("[ x 100k", "[".repeat(100_000)),
        ("{ x 100k", "{".repeat(100_000)),
        (
            "[ ] balanced",
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        ),
        (
            "- x 1000",
            (0..1_000)
                .map(|i| format!("{}- \n", " ".repeat(i)))
                .collect::<String>(),
        ),
        (
            "a: x 2000",
            (0..2_000)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect::<String>(),
        ),
    ] {
        let d = quick_err(what, || load_str(&text));
        assert_eq!(d.len(), 1, "{what}: {}", render(&d));
        assert!(
            file_message(&d).contains("nesting deeper than 64 levels"),
            "{what}: {}",
            render(&d)
        );
    }
}

#[test]
fn five_megabyte_file_is_refused() {
    let mut text = BASIC.to_string();
    text.push_str(
        &"# padding padding padding padding padding padding padding padding\n"
            .repeat(5 * 1024 * 1024 / 66 + 1),
    );
    assert!(text.len() > 5 * 1024 * 1024);
    let d = quick_err("5 MB", || load_str(&text));
    assert!(
        matches!(&d[..], [Diagnostic::File { message }] if message.contains("specs larger than 4194304 bytes are refused")),
        "{}",
        render(&d)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    std::fs::write(&path, &text).unwrap();
    let start = Instant::now();
    match load_file(&path) {
        Err(e @ LoadError::Invalid { .. }) => {
            let shown = e.to_string();
            assert!(
                shown.starts_with(&format!("{}: file is ", path.display())),
                "{shown}"
            );
            assert!(shown.contains("refused"), "{shown}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn multiple_documents() {
    let text = format!("{BASIC}---\n{BASIC}");
    let (line, _) = pos_of(&text, "---");
    let d = quick_err("two docs", || load_str(&text));
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_at(
        &d,
        line,
        1,
        "more than one YAML document; a spec file holds exactly one",
    );
}

#[test]
fn duplicate_keys() {
    let text = format!("{BASIC}id: 'other'\n");
    let line = text.lines().count();
    let d = quick_err("dup", || load_str(&text));
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert_at(&d, line, 1, "duplicate key `id`");
    // Nested, in a flow mapping.
    let text = edit(BASIC, "cpu: '500m'", "cpu: '500m'\n      cpu: '1'");
    let d = quick_err("nested dup", || load_str(&text));
    assert_at(&d, 16, 7, "duplicate key `cpu`");
}

#[test]
fn syntax_error_is_positioned() {
    let text = edit(BASIC, "  region: ['us-west-2']", "  region: ['us-west-2'");
    let d = quick_err("unclosed", || load_str(&text));
    assert_eq!(d.len(), 1, "{}", render(&d));
    assert!(matches!(d[0], Diagnostic::At { .. }), "{}", render(&d));
    let rendered = d[0].render("x.yaml");
    assert!(rendered.starts_with("x.yaml:"), "{rendered}");
}

#[test]
fn directory_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    match load_file(dir.path()) {
        Err(e @ LoadError::Invalid { .. }) => {
            assert!(e.to_string().contains("is a directory"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match load_file(&dir.path().join("nope.yaml")) {
        Err(e @ LoadError::Io { .. }) => assert!(e.to_string().contains("cannot read"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn check_urls_may_be_https_but_nothing_else() {
    // The checks speak https through the shared client, so validation accepts it.
    let with = |url: &str| {
        edit(
            BASIC,
            "  postDeployment: []",
            &format!("  postDeployment:\n    - {{type: http, url: '{url}'}}"),
        )
    };
    let spec = ok(&with("https://example.test/health"));
    assert_eq!(
        spec.validation.post_deployment[0].url.as_deref(),
        Some("https://example.test/health")
    );
    assert_only_field(
        &with("ftp://example.test/health"),
        "validation.postDeployment[0].url",
        "`ftp://example.test/health` is not an http:// or https:// URL",
    );
}
