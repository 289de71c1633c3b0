//! `cutover console [SPEC...]` (and the demo, which is the console on a private state dir): the
//! terminal side of the console.
//!
//! Owns: the terminal (raw mode, alternate screen, synchronized updates; restored on quit, panic,
//! SIGTERM and SIGHUP), the console's looks (theme, colour depth, ASCII), its log file (nothing
//! is printed to the screen but the UI), and measuring what it writes. The loop is in `run`; the
//! engines it hosts are in `engines`. Must not touch: engine state (commands only).

mod engines;
pub mod run;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};

use cutover::tui::caps::{self, ColorChoice};
use cutover::tui::symbols::Symbols;
use cutover::tui::theme;
use cutover::tui::view::Look;
pub use engines::Engines;
pub use run::Setup;

/// How the console was asked to look and behave.
#[derive(Debug, Clone)]
pub struct Options {
    pub specs: Vec<PathBuf>,
    pub read_only: bool,
    pub theme: Option<String>,
    pub color: String,
    pub ascii: bool,
    pub fps: u32,
}

/// The look from flags and environment: theme (`--theme`, `CUTOVER_THEME`), colour depth
/// (`--color`, NO_COLOR, COLORTERM, TERM) and glyphs (`--ascii`, the locale).
pub fn look(opts: &Options) -> Result<Look> {
    let env = |k: &str| caps::from_env(k);
    let choice: ColorChoice = opts
        .color
        .parse()
        .map_err(|e| anyhow::anyhow!("--color: {e}"))?;
    let depth = caps::depth(choice, &env);
    let name = opts
        .theme
        .clone()
        .or_else(|| env("CUTOVER_THEME").filter(|t| !t.is_empty()))
        .unwrap_or_else(|| "default".into());
    let t = theme::load(&name).map_err(|e| anyhow::anyhow!("--theme: {e}"))?;
    Ok(Look::new(
        &t,
        depth,
        Symbols::pick(caps::unicode(opts.ascii, &env)),
    ))
}

/// Logs go to `STATE/logs/console.YYYY-MM-DD.log` (daily, 7 kept), never to the screen.
pub fn init_logging(dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    super::logs::to_file(dir, "console", super::logs::LogFormat::from_env())
}

/// Counts the bytes the console writes to the terminal.
pub struct Counting<W: Write> {
    inner: W,
    pub bytes: Arc<AtomicU64>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub type Term = ratatui::Terminal<ratatui::backend::CrosstermBackend<Counting<std::io::Stdout>>>;

/// Puts the terminal back however the console ends.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// Take the terminal, run `body` with it, give it back (also on panic).
pub fn with_terminal<T>(body: impl FnOnce(&mut Term, Arc<AtomicU64>) -> Result<T>) -> Result<T> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode().context("the console needs a terminal (is stdin a tty?)")?;
    let _restore = Restore;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let bytes = Arc::new(AtomicU64::new(0));
    let writer = Counting {
        inner: std::io::stdout(),
        bytes: bytes.clone(),
    };
    let mut terminal = ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(writer))?;
    terminal.clear()?;
    let result = body(&mut terminal, bytes);
    // ratatui's Terminal shows the cursor when dropped and prints (so panics) if that fails,
    // which it does when the terminal has gone (an SSH drop, a killed tmux): `restore` shows the
    // cursor instead, ignoring errors, and the terminal value is let go without its drop.
    std::mem::forget(terminal);
    result
}

pub fn console(dir: &Path, opts: Options) -> Result<u8> {
    let look = look(&opts)?;
    // Specs are checked before the screen is taken, so their errors print plainly.
    for p in &opts.specs {
        if let Err(code) = super::load_spec(p) {
            return Ok(code);
        }
    }
    if opts.read_only && !opts.specs.is_empty() {
        eprintln!("--read-only cannot start specs");
        return Ok(super::INVALID);
    }
    let store = super::open_store(dir)?;
    let _guard = init_logging(dir);
    tracing::info!("console started in {}", dir.display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let user = cutover::identity::current_user();
    with_terminal(|term, bytes| {
        rt.block_on(async {
            let (poke, pokes) = tokio::sync::mpsc::unbounded_channel();
            let engines = Engines::new(dir, &store, &user, poke);
            let setup = Setup {
                store: store.clone(),
                user: user.clone(),
                read_only: opts.read_only,
                look,
                fps: opts.fps,
                demo: false,
                specs: opts.specs.clone(),
                engines,
                pokes,
                bytes,
            };
            run::run(term, setup).await
        })
    })
}
