//! Where the binary's logs go and in what format. The console, the demo and headless runs write
//! `STATE/logs/NAME.YYYY-MM-DD.log` (daily, 7 kept), never the terminal; the host writes its
//! standard error (the supervisor's `host.log`). `CUTOVER_LOG` filters (default `info`);
//! `CUTOVER_LOG_FORMAT=json` (or `--log-format json`) writes one JSON object per line, with a
//! run's `deployment`, `run` and `step` in its `span`; the default is text.
//!
//! Owns: the tracing subscriber. Must not touch: what is logged.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::fmt::MakeWriter;

/// The log line format.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// `CUTOVER_LOG_FORMAT` (`json` or `text`), else text.
    pub fn from_env() -> LogFormat {
        match std::env::var("CUTOVER_LOG_FORMAT").ok().as_deref() {
            Some(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

fn install<W>(writer: W, format: LogFormat) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter);
    match format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .is_ok(),
    }
}

/// Logs to `STATE/logs/NAME.DATE.log`; keep the guard until the end (it flushes).
pub fn to_file(dir: &Path, name: &str, format: LogFormat) -> Option<WorkerGuard> {
    std::fs::create_dir_all(dir.join("logs")).ok()?;
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(name)
        .filename_suffix("log")
        .max_log_files(7)
        .build(dir.join("logs"))
        .ok()?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    install(writer, format).then_some(guard)
}

/// Logs to standard error (the host, whose supervisor keeps it in `host.log`).
pub fn to_stderr(format: LogFormat) {
    install(std::io::stderr, format);
}
