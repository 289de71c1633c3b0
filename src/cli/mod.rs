//! Command implementations for the `cutover` binary: argument handling, printing, exit codes.
//!
//! Owns: turning library results into terminal output. Must not touch: engine decisions.

/// Print a line to stdout; a closed pipe (`| head`) never stops a deployment, so errors are ignored.
macro_rules! out {
    () => {
        $crate::cli::emit(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::cli::emit(format_args!($($t)*))
    };
}

mod analytics;
mod apply;
mod audit;
mod console;
mod control;
mod demo;
mod exporter;
mod host;
mod inspect;
pub mod logs;
mod manifests;
mod on_cluster;
mod print;
mod promote;
mod server_dry_run;
mod tools;
mod verify;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::{Cli, Cmd, HostAction};
use cutover::spec::{self, LoadError, ValidSpec};
use cutover::store::Store;

pub fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Exit codes of the contract.
pub const OK: u8 = 0;
pub const FAILED: u8 = 1;
pub const INVALID: u8 = 2;
pub const INTERRUPTED: u8 = 3;

/// The exit code for an error that reached the top: a failure of the store, the engine, a
/// file or a process is 1 (the command failed); anything else is bad input or usage (2).
pub fn exit_code_of(e: &anyhow::Error) -> u8 {
    for c in e.chain() {
        if let Some(e) = c.downcast_ref::<cutover::engine::EngineError>() {
            return e.exit_code();
        }
        if let Some(e) = c.downcast_ref::<cutover::platform::PlatformError>() {
            return e.exit_code();
        }
    }
    let failed = e.chain().any(|c| {
        c.is::<cutover::store::StoreError>()
            || c.is::<rusqlite::Error>()
            || c.is::<std::io::Error>()
    });
    if failed {
        FAILED
    } else {
        INVALID
    }
}

/// The workspace's governance for this process's engines (set once, from `--config`).
static GOVERNANCE: std::sync::OnceLock<cutover::governance::Governance> =
    std::sync::OnceLock::new();

/// Commands whose engines or checks need the workspace configuration: an invalid one stops them.
fn needs_config(c: &Cmd) -> bool {
    matches!(
        c,
        Cmd::Apply { .. }
            | Cmd::Console { .. }
            | Cmd::Rollback { .. }
            | Cmd::Approve { .. }
            | Cmd::Reject { .. }
            | Cmd::Pause { .. }
            | Cmd::Resume { .. }
            | Cmd::Promote { .. }
    )
}

pub fn run(cli: Cli) -> Result<u8> {
    let state_dir = state_dir(cli.state_dir.as_deref());
    if let Some(f) = cli.log_format {
        // Through the environment, so that a host this process starts logs the same way.
        std::env::set_var(
            "CUTOVER_LOG_FORMAT",
            match f {
                logs::LogFormat::Json => "json",
                logs::LogFormat::Text => "text",
            },
        );
    }
    // Runs driven without a console log to a file of their own, as the console does.
    let _log = matches!(
        cli.command,
        Cmd::Apply { .. } | Cmd::Resume { .. } | Cmd::Promote { .. }
    )
    .then(|| logs::to_file(&state_dir, "apply", logs::LogFormat::from_env()))
    .flatten();
    if let Some(c) = &cli.config {
        // Through the environment too, so that a host this process starts reads the same file
        // (its `exporter.listen`).
        let c = std::fs::canonicalize(c).unwrap_or_else(|_| c.clone());
        std::env::set_var("CUTOVER_CONFIG", c);
    }
    cutover::platform::set_kube_settings(cutover::provider::kubernetes::Settings {
        context: cli.context.clone(),
        namespace: cli.namespace.clone(),
    });
    match cutover::governance::config::load(cli.config.as_deref()) {
        Ok(ws) => {
            let _ = GOVERNANCE.set(cutover::governance::Governance::new(ws));
        }
        Err(e) if needs_config(&cli.command) => {
            eprintln!("{e}");
            return Ok(INVALID);
        }
        Err(_) => {}
    }
    match cli.command {
        Cmd::Demo { looks } => demo::demo(options(Vec::new(), false, looks)),
        Cmd::Console {
            specs,
            read_only,
            looks,
        } => console::console(&state_dir, options(specs, read_only, looks)),
        Cmd::Validate { specs } if specs.is_empty() && cli.config.is_none() => {
            eprintln!("error: validate needs at least one SPEC (or --config FILE)\n\nUsage: cutover validate <SPECS>...");
            Ok(INVALID)
        }
        Cmd::Validate { specs } => Ok(validate(&specs, cli.config.as_deref())),
        Cmd::Plan {
            spec,
            json,
            manifests,
        } => inspect::plan(&state_dir, &spec, json, manifests),
        Cmd::Apply {
            spec,
            headless: _,
            json,
            dry_run: Some(crate::DryRun::Server),
            auto_approve,
            supersede,
            sim_faults,
        } => {
            if !sim_faults.is_empty() || supersede || auto_approve {
                eprintln!("error: --dry-run=server takes none of --sim-fault, --supersede, --auto-approve");
                return Ok(INVALID);
            }
            server_dry_run::run(&state_dir, &spec, json)
        }
        Cmd::Apply {
            spec,
            headless: _,
            json,
            dry_run,
            auto_approve,
            supersede,
            sim_faults,
        } => apply::apply(
            &state_dir,
            &spec,
            apply::Headless {
                json,
                dry_run: dry_run.is_some(),
                auto_approve,
                supersede,
            },
            &sim_faults,
        ),
        Cmd::Status {
            id: Some(id),
            json,
            cluster: true,
        } => on_cluster::status(&state_dir, &id, json),
        Cmd::Status { id, json, .. } => inspect::status(&state_dir, id.as_deref(), json),
        Cmd::History { env, json, limit } => {
            inspect::history(&state_dir, env.as_deref(), json, limit)
        }
        Cmd::Rollback {
            id,
            to,
            json,
            cluster: true,
        } => on_cluster::rollback(&state_dir, &id, to.as_deref(), json),
        Cmd::Rollback { id, to, json, .. } => control::rollback(&state_dir, &id, to, json),
        Cmd::Approve { id, gate, comment } => control::send(
            &state_dir,
            &id,
            cutover::engine::Command::Approve { gate, comment },
        ),
        Cmd::Reject { id, reason } => {
            control::send(&state_dir, &id, cutover::engine::Command::Reject { reason })
        }
        Cmd::Approvals { json } => inspect::approvals(&state_dir, json),
        Cmd::Promote {
            id,
            from,
            to,
            override_reason,
            json,
            auto_approve,
            history,
        } => {
            if history {
                promote::history(&state_dir, &id, &to, json)
            } else {
                promote::promote(
                    &state_dir,
                    &id,
                    from.as_deref().unwrap_or_default(),
                    &to,
                    override_reason.as_deref(),
                    json,
                    auto_approve,
                )
            }
        }
        Cmd::Analytics { id, json } => analytics::analytics(&state_dir, &id, json),
        Cmd::Report {
            env,
            days,
            json,
            format,
            output,
        } => {
            let format = match (json, format, &output) {
                (true, _, _) => crate::ReportFormat::Json,
                (false, Some(f), _) => f,
                (false, None, Some(_)) => crate::ReportFormat::Md,
                (false, None, None) => crate::ReportFormat::Text,
            };
            analytics::report(&state_dir, env.as_deref(), days, format, output.as_deref())
        }
        Cmd::Audit {
            json,
            verify,
            limit,
            head,
        } => audit::audit(&state_dir, json, verify, limit, head),
        Cmd::Exporter { listen } => exporter::run(&state_dir, listen),
        Cmd::Prune {
            older_than,
            dry_run,
            json,
        } => analytics::prune(
            &state_dir,
            older_than.as_deref(),
            GOVERNANCE
                .get()
                .and_then(|g| g.workspace.retention.as_ref())
                .map(|r| r.prune_after.0),
            dry_run,
            json,
        ),
        Cmd::Host { action } => match action {
            None => host::status(&state_dir, false),
            Some(HostAction::Status { json }) => host::status(&state_dir, json),
            Some(HostAction::Stop) => host::stop(&state_dir),
            Some(HostAction::Serve) => host::serve(
                &state_dir,
                GOVERNANCE
                    .get()
                    .and_then(|g| g.workspace.exporter.as_ref())
                    .map(|e| e.listen),
            ),
            Some(HostAction::Supervise) => host::supervise(&state_dir),
        },
        Cmd::DemoService {
            port,
            grpc_port,
            version,
            error_rate,
            latency_ms,
            jitter_ms,
            fail_health,
            crash_after_s,
            bind,
        } => tools::demo_service(cutover::demo_service::DemoOptions {
            port,
            grpc_port,
            version,
            error_rate,
            latency_ms,
            jitter_ms,
            fail_health,
            crash_after_s,
            bind,
        }),
        Cmd::Load {
            target,
            rps,
            duration,
            concurrency,
            timeout,
            json,
        } => {
            let parse = |what: &str, s: &str| {
                spec::parse_duration(s).map_err(|e| anyhow::anyhow!("--{what}: {e}"))
            };
            let opts = cutover::load::LoadOptions {
                target,
                rps,
                duration: std::time::Duration::from_millis(parse("duration", &duration)?),
                concurrency,
                timeout: std::time::Duration::from_millis(parse("timeout", &timeout)?),
            };
            tools::load(opts, json)
        }
        Cmd::Verify { id, json } => verify::verify(&state_dir, &id, json),
        Cmd::Pause { id } => control::send(&state_dir, &id, cutover::engine::Command::Pause),
        Cmd::Resume { id, json } => control::resume(&state_dir, &id, json),
    }
}

fn options(specs: Vec<PathBuf>, read_only: bool, l: crate::Looks) -> console::Options {
    console::Options {
        specs,
        read_only,
        theme: l.theme,
        color: l.color,
        ascii: l.ascii,
        fps: l.fps,
    }
}

/// `--state-dir`, else `$XDG_DATA_HOME/cutover`, else `~/.local/share/cutover`.
pub fn state_dir(given: Option<&Path>) -> PathBuf {
    if let Some(p) = given {
        return p.to_path_buf();
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("cutover");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".local/share/cutover")
}

/// An engine for a command-line run.
pub fn engine(
    store: &cutover::store::Store,
    provider: std::sync::Arc<dyn cutover::provider::Provider>,
    virtual_clock: bool,
    poll_store: bool,
) -> cutover::engine::Engine {
    cutover::engine::Engine::new(cutover::engine::EngineConfig {
        store: store.clone(),
        provider,
        signals: std::sync::Arc::new(cutover::engine::Builtin::default()),
        virtual_clock,
        poll_store,
        governance: GOVERNANCE.get().cloned().unwrap_or_default(),
        // A dry run's gates wait for people in real time.
        wall_clock_gates: virtual_clock,
    })
}

pub fn open_store(dir: &Path) -> Result<Store> {
    Store::open(dir).with_context(|| format!("opening the state store in {}", dir.display()))
}

/// Load a spec; on problems print them all and return the exit code to use.
pub fn load_spec(path: &Path) -> std::result::Result<ValidSpec, u8> {
    match spec::load_file(path) {
        Ok(s) => Ok(s),
        Err(e) => {
            eprintln!("{e}");
            if let LoadError::Invalid { diags, .. } = &e {
                eprintln!("{}: {} problem(s)", path.display(), diags.len());
            }
            Err(INVALID)
        }
    }
}

/// A workspace configuration rather than a spec: named cutover.yaml, or with top-level
/// `environments:` and no `id:`.
fn is_config(p: &Path) -> bool {
    if p.file_name().is_some_and(|n| n == "cutover.yaml") {
        return true;
    }
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text.lines().any(|l| l.starts_with("environments:"))
        && !text.lines().any(|l| l.starts_with("id:"))
}

/// Check specs, and the workspace configuration `--config` names (it is read as one whatever
/// its name).
fn validate(paths: &[PathBuf], config: Option<&Path>) -> u8 {
    let mut code = OK;
    let given = config.into_iter().map(|c| (c, true));
    for (p, forced) in given.chain(paths.iter().map(|p| (p.as_path(), false))) {
        if forced || is_config(p) {
            match cutover::governance::config::load_file(p) {
                Ok(ws) => out!(
                    "{}: ok (workspace configuration: {} environment(s){}, {} webhook(s))",
                    p.display(),
                    ws.environments.len(),
                    if ws.environments.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ": {}",
                            ws.environments
                                .iter()
                                .map(|e| e.name.as_str())
                                .collect::<Vec<_>>()
                                .join(" -> ")
                        )
                    },
                    ws.webhooks.len()
                ),
                Err(e) => {
                    out!("{e}");
                    code = INVALID;
                }
            }
            continue;
        }
        match spec::load_file(p) {
            Ok(s) => {
                out!(
                    "{}: ok ({} {}, {} component(s))",
                    p.display(),
                    s.strategy,
                    s.version,
                    s.components.len()
                );
                for f in spec::kubernetes::findings(&s) {
                    out!("{}", f.render(&p.display().to_string()));
                }
            }
            Err(e) => {
                out!("{e}");
                code = INVALID;
            }
        }
    }
    code
}
