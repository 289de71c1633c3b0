//! The `cutover` command line: parses arguments and hands off to `cli::*`.
//! Errors become messages and exit codes here (0 ok, 1 deployment failed, 2 bad input, 3 interrupted).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cutover",
    version,
    about = "Deployment orchestration from the terminal: blue-green, canary, rolling, recreate"
)]
pub struct Cli {
    /// State directory (SQLite store, logs); default: the XDG data dir
    #[arg(long, global = true, env = "CUTOVER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Workspace configuration file; default ./cutover.yaml, else the XDG config dir
    #[arg(long, global = true, env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kubernetes: the kubeconfig context (default: the current one), as kubectl's --context
    #[arg(long, global = true, env = "CUTOVER_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// Kubernetes: the namespace, over the spec's infrastructure.namespace and the context's
    #[arg(long, global = true, env = "CUTOVER_KUBE_NAMESPACE")]
    pub namespace: Option<String>,
    /// Log lines as text (default) or JSON (as CUTOVER_LOG_FORMAT); logs go to STATE/logs/
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<cli::logs::LogFormat>,
    #[command(subcommand)]
    pub command: Cmd,
}

/// How `cutover report` writes.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    #[value(alias = "markdown")]
    Md,
    Csv,
    Json,
}

/// What `apply --dry-run` runs against.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    // The simulated provider on a virtual clock (`--dry-run`).
    Client,
    // The Kubernetes API server, as server-side dry runs of each step's objects.
    Server,
}

/// How the console looks and how often it may draw.
#[derive(clap::Args, Debug, Clone)]
pub struct Looks {
    /// Theme: default (ANSI 16), dark (truecolor), light, mono, or a path to a .yaml theme
    #[arg(long, env = "CUTOVER_THEME")]
    pub theme: Option<String>,
    /// Colours: auto (NO_COLOR, COLORTERM, TERM), never, 16, 256 or truecolor
    #[arg(long, default_value = "auto")]
    pub color: String,
    /// ASCII borders, bars and icons (automatic when the locale is not UTF-8)
    #[arg(long)]
    pub ascii: bool,
    /// At most this many frames a second (it draws only when something changed)
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub fps: u32,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// The console on the bundled demo: local services under load, a canary that stops at an
    /// approval gate and a bad version that rolls back by itself
    Demo {
        #[command(flatten)]
        looks: Looks,
    },
    /// The live console over every deployment in the state store (keys: ? for help)
    Console {
        /// Specs to start in this console (it runs them; quitting asks to pause or roll them back)
        specs: Vec<PathBuf>,
        /// Hide and refuse every key that changes a deployment
        #[arg(long)]
        read_only: bool,
        #[command(flatten)]
        looks: Looks,
    },
    /// Check specs; print every problem as FILE:LINE:COL: message or FILE: field.path: message
    Validate {
        /// Specs (or workspace configurations) to check; the file `--config` names is checked too
        specs: Vec<PathBuf>,
    },
    /// Show the ordered steps a spec will take, with the rollback at each step and the expected duration
    Plan {
        spec: PathBuf,
        #[arg(long)]
        json: bool,
        /// Also print, per step, the Kubernetes objects applied (YAML; with --json, as JSON)
        #[arg(long)]
        manifests: bool,
    },
    /// Run a deployment
    Apply {
        spec: PathBuf,
        /// Print events, no console: what apply always does (the console runs a spec: `cutover console SPEC`)
        #[arg(long)]
        headless: bool,
        /// One JSON object per line
        #[arg(long)]
        json: bool,
        /// Run the plan on the simulated provider on a virtual clock (=server: send each step's Kubernetes objects as server-side dry runs)
        #[arg(long, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "client", value_name = "MODE", hide_possible_values = true)]
        dry_run: Option<DryRun>,
        /// Approve every gate
        #[arg(long)]
        auto_approve: bool,
        /// When another run drives a component of this one (in its environment, on its
        /// provider), roll that run back first, then start
        #[arg(long)]
        supersede: bool,
        /// Simulated provider faults: [VERSION:]unhealthy|start-error|METRIC=VALUE[@AFTER] (repeatable)
        #[arg(long = "sim-fault", value_name = "FAULT")]
        sim_faults: Vec<String>,
    },
    /// Live state of deployments, or of one
    Status {
        id: Option<String>,
        #[arg(long)]
        json: bool,
        /// Read the deployment from the cluster's objects alone (Kubernetes; any machine with
        /// the kube context: --context, --namespace)
        #[arg(long, requires = "id")]
        cluster: bool,
    },
    /// Past deployments, newest first
    History {
        #[arg(long)]
        env: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Roll back now, to the last good revision or a named version
    Rollback {
        id: String,
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        json: bool,
        /// Roll back on the cluster from its objects alone, with no run in this state dir
        /// (Kubernetes; any machine with the kube context: --context, --namespace)
        #[arg(long)]
        cluster: bool,
    },
    /// Approve the gate a deployment waits at
    Approve {
        id: String,
        #[arg(long)]
        gate: Option<String>,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject the gate a deployment waits at (it rolls back)
    Reject {
        id: String,
        #[arg(long, required = true)]
        reason: String,
    },
    /// Take the revision verified in one environment to the next, with that environment's
    /// overrides, strategy and gates
    Promote {
        /// The deployment (its spec id)
        id: String,
        /// Where the verified revision runs (not needed with --history)
        #[arg(long, required_unless_present = "history")]
        from: Option<String>,
        #[arg(long)]
        to: String,
        /// Promote out of pipeline order (needs the admin role in the target), saying why
        #[arg(long)]
        override_reason: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        auto_approve: bool,
        /// Show the promotions into an environment (--to) instead of promoting
        #[arg(long)]
        history: bool,
    },
    /// One deployment's analytics: time per step, at gates and paused, verdicts per signal,
    /// decisions, approvals, and its history's rates
    Analytics {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delivery metrics over history per deployment and environment: success and change fail
    /// rates, durations, frequency, recovery time, 28-day trend
    Report {
        #[arg(long)]
        env: Option<String>,
        /// Only runs started in the last N days
        #[arg(long, default_value_t = 90)]
        days: i64,
        /// The same as --format json
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// text (a table, the default on a terminal), md, csv or json (one summary per line)
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
        /// Write the report to FILE instead of standard output (default format there: md)
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Replace the routine analysis lines (every verdict a pass) of runs that finished long ago
    /// by their counts; every other line, the audit trail and the reports stay as they are
    Prune {
        /// Runs that finished more than this long ago (such as 90d); default: retention.pruneAfter
        /// in cutover.yaml
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// Count what would be pruned, change nothing
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Prometheus metrics (cutover_*) of every deployment in the store, at http://ADDR/metrics
    Exporter {
        /// Where to serve them, such as 127.0.0.1:9464 (port 0 picks a free one and prints it)
        #[arg(long, value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },
    /// The audit trail: every operator action and engine decision, hash-chained
    Audit {
        #[arg(long)]
        json: bool,
        /// Check the hash chain; exit 1 naming the first record altered or removed
        #[arg(long)]
        verify: bool,
        /// Only the newest N records
        #[arg(long)]
        limit: Option<usize>,
        /// Alone: verify the chain and print its head as SEQ:HASH, to keep outside the state dir.
        /// With a value: verify the chain and that record SEQ still carries HASH (exit 1 if the
        /// chain was rewritten or cut; 2 for a malformed anchor)
        #[arg(long, value_name = "SEQ:HASH", num_args = 0..=1)]
        head: Option<Option<cutover::store::audit::Anchor>>,
    },
    /// Gates waiting for a decision
    Approvals {
        #[arg(long)]
        json: bool,
    },
    /// The local host that owns local workloads: status (default) or stop
    Host {
        #[command(subcommand)]
        action: Option<HostAction>,
    },
    /// The sample HTTP (and gRPC health) service used by the demo and tests
    DemoService {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        grpc_port: Option<u16>,
        #[arg(long)]
        version: String,
        /// Probability (0..1) that `/` answers 500
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        #[arg(long, default_value_t = 0)]
        jitter_ms: u64,
        /// `/health` answers 503 and gRPC health NOT_SERVING
        #[arg(long)]
        fail_health: bool,
        /// Exit with status 1 after this many seconds
        #[arg(long)]
        crash_after_s: Option<u64>,
        /// Address to listen on (0.0.0.0 in a container, so probes and Services reach it)
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::Ipv4Addr,
    },
    /// Open-loop HTTP load with bounded concurrency
    Load {
        #[arg(long)]
        target: String,
        #[arg(long)]
        rps: u32,
        /// e.g. 30s, 2m (a bare number is milliseconds)
        #[arg(long)]
        duration: String,
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
        /// Per-request timeout, e.g. 5s
        #[arg(long, default_value = "5s")]
        timeout: String,
        #[arg(long)]
        json: bool,
    },
    /// Run the spec's post-deployment, health, performance and security checks against the live
    /// deployment: per-check results with evidence and an overall score 0-100
    Verify {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Pause a running deployment
    Pause { id: String },
    /// Resume a paused deployment; one whose process has gone is taken over and driven to its
    /// end here, headless, with its recorded intent
    Resume {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum HostAction {
    /// What the host runs: components, revisions, instances, probes, traffic
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Stop the host and every workload it owns
    Stop,
    /// Run the host's worker in the foreground (its supervisor starts it)
    #[command(hide = true)]
    Serve,
    /// Run the host in the foreground: a supervisor that keeps its listen sockets open and
    /// restarts its worker (started in the background on demand; run it from systemd)
    #[command(hide = true)]
    Supervise,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Not eprintln!: it panics when stderr has gone (a closed terminal).
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "cutover: {e:#}");
            ExitCode::from(cli::exit_code_of(&e))
        }
    }
}
