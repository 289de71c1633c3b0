//! The console loop: keys, store refreshes and engine pokes in; effects carried out; frames drawn
//! only when the model changed, at most `--fps` a second, each wrapped in a synchronized update.
//!
//! Owns: the order of things while the console runs and how it quits (pausing or rolling back
//! the runs it owns first, then shutting its engines down). Must not touch: engine state (commands only), drawing details.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use ratatui::crossterm::{execute, queue};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Engines, Term};
use crate::cli::OK;
use cutover::engine::{remote, Command};
use cutover::store::Store;
use cutover::tui::data;
use cutover::tui::keymap::View;
use cutover::tui::model::{Effect, Model};
use cutover::tui::view::{self, Look};

/// Everything the loop starts with.
pub struct Setup {
    pub store: Store,
    pub user: String,
    pub read_only: bool,
    pub look: Look,
    pub fps: u32,
    pub demo: bool,
    pub specs: Vec<std::path::PathBuf>,
    pub engines: Engines,
    pub pokes: mpsc::UnboundedReceiver<Option<String>>,
    pub bytes: Arc<AtomicU64>,
}

enum Input {
    Key(ratatui::crossterm::event::KeyEvent),
    Resize,
    Answer(String),
}

/// What the store says now, for the model.
struct Fresh {
    rows: Vec<data::Row>,
    history: Option<Vec<data::HistRow>>,
    drill: Option<data::Drill>,
}

fn read(store: &Store, selected: Option<String>, history: bool, drill: Option<i64>) -> Fresh {
    let log = |what: &str, e: &dyn std::fmt::Display| tracing::warn!("reading {what}: {e}");
    Fresh {
        rows: data::rows(store, selected.as_deref()).unwrap_or_else(|e| {
            log("deployments", &e);
            Vec::new()
        }),
        history: history.then(|| {
            data::history(store, data::HISTORY_RUNS).unwrap_or_else(|e| {
                log("history", &e);
                Vec::new()
            })
        }),
        drill: drill.and_then(|run| data::drill(store, run).ok().flatten()),
    }
}

fn cpu_ms() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 * 1000.0 + tv.tv_usec as f64 / 1000.0;
    t(ru.ru_utime) + t(ru.ru_stime)
}

pub async fn run(term: &mut Term, mut s: Setup) -> Result<u8> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let keys = tx.clone();
    // Keys on their own thread: crossterm's reads block.
    std::thread::Builder::new()
        .name("cutover-keys".into())
        .spawn(move || loop {
            match event::read() {
                Ok(TermEvent::Key(k)) if k.kind == KeyEventKind::Press => {
                    if keys.send(Input::Key(k)).is_err() {
                        break;
                    }
                }
                Ok(TermEvent::Resize(_, _)) => {
                    if keys.send(Input::Resize).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        })?;
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut sighup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut model = Model::new(&s.user, s.read_only);
    model.demo = s.demo;
    let mut look = s.look.clone();
    for p in std::mem::take(&mut s.specs) {
        let msg = s.engines.apply(&p.display().to_string()).await;
        model.message = Some(msg);
    }
    let frame = Duration::from_secs_f64(1.0 / f64::from(s.fps.clamp(1, 120)));
    let started = Instant::now();
    let cpu0 = cpu_ms();
    let mut frames = 0u64;
    let mut drawn: Option<(Model, Look)> = None;
    let mut last_draw = Instant::now() - frame;
    let mut draw_at: Option<Instant> = None;
    let mut next_refresh = Instant::now();
    let mut force = true;
    let mut quit_when_idle = false;
    let mut poked = true;
    let mut last_key: Option<(Option<String>, bool, Option<i64>)> = None;
    let mut last_version: Option<i64> = None;
    let mut last_full = Instant::now();
    let code = 'console: loop {
        let draw_wait = async {
            match draw_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let mut effects = Vec::new();
        tokio::select! {
            biased;
            input = rx.recv() => match input {
                None => break OK,
                Some(Input::Resize) => force = true,
                Some(Input::Answer(a)) => model.message = Some(a),
                Some(Input::Key(k)) => {
                    if k.code == KeyCode::Char('l') && k.modifiers.contains(KeyModifiers::CONTROL) {
                        term.clear()?;
                        force = true;
                    }
                    // Decide on what runs here now, not at the last refresh (a run may have
                    // finished since): `q` with nothing running quits at once.
                    effects = model.set_owned(s.engines.owned());
                    if effects.is_empty() {
                        effects = model.key(k);
                    }
                }
            },
            Some(note) = s.pokes.recv() => {
                poked = true;
                if let Some(note) = note {
                    model.message = Some(note);
                }
                let soon = Instant::now() + Duration::from_millis(100);
                next_refresh = next_refresh.min(soon);
            }
            _ = tokio::time::sleep_until(next_refresh) => {
                let store = s.store.clone();
                let sel = model.current().map(|r| r.deployment.clone());
                let history = model.view == View::History;
                let drill = (model.view == View::Drill).then(|| model.drill.as_ref().map(|d| d.run)).flatten();
                // Read only when something may have changed: another process committed (the
                // data version moved), our own engines said so, the view asks for other data,
                // or every 5 s (an owner process may have died without writing).
                let key = (sel.clone(), history, drill);
                let force = poked || last_key.as_ref() != Some(&key) || last_full.elapsed() >= Duration::from_secs(5);
                let seen = last_version;
                let got = tokio::task::spawn_blocking(move || {
                    let v = store.data_version().ok();
                    if !force && v.is_some() && v == seen {
                        return (v, None);
                    }
                    (v, Some(read(&store, sel, history, drill)))
                })
                .await;
                if let Ok((v, fresh)) = got {
                    last_version = v;
                    if let Some(fresh) = fresh {
                        poked = false;
                        last_key = Some(key);
                        last_full = Instant::now();
                        model.set_rows(fresh.rows);
                        if let Some(h) = fresh.history {
                            model.set_history(h);
                        }
                        if fresh.drill.is_some() && model.view == View::Drill {
                            model.set_drill(fresh.drill);
                        }
                    }
                }
                effects.extend(model.set_owned(s.engines.owned()));
                model.now = model.wants_clock().then(|| {
                    let now = chrono::Utc::now();
                    now - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now)))
                });
                let now = chrono::Utc::now();
                model.minute = Some(now - chrono::Duration::seconds(i64::from(chrono::Timelike::second(&now))) - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(&now))));
                next_refresh = Instant::now() + Duration::from_millis(500);
                if quit_when_idle && model.owned.is_empty() {
                    break OK;
                }
            }
            _ = draw_wait => {}
            _ = sigterm.recv() => effects = vec![Effect::QuitPausing],
            _ = sighup.recv() => effects = vec![Effect::QuitPausing],
        }
        for effect in effects {
            match effect {
                Effect::Quit => {
                    tracing::info!("quit");
                    break 'console OK;
                }
                Effect::Redraw => {}
                Effect::QuitPausing => {
                    model.quitting = Some("pausing".into());
                    // The terminal may be gone already (SIGHUP): pausing matters more.
                    let _ = draw(term, &model, &look);
                    pause_all(&s.engines, &s.store, &s.user).await;
                    break 'console OK;
                }
                Effect::QuitRollingBack => {
                    for run in s.engines.owned() {
                        if let Some(e) = s.engines.owner(run) {
                            let c = Command::Rollback { to: None };
                            if let Err(err) = e.command_as_owner(run, c, &s.user).await {
                                tracing::warn!(run, "rollback on quit: {err}");
                            }
                        }
                    }
                    quit_when_idle = true;
                    next_refresh = Instant::now();
                }
                Effect::Send {
                    run,
                    deployment,
                    command,
                } => {
                    send(&s, &tx, run, deployment, command);
                }
                Effect::Adopt { run, deployment } => {
                    model.message = Some(match s.engines.adopt(run).await {
                        Ok(m) => m,
                        Err(e) => format!("{deployment}: {e}"),
                    });
                    next_refresh = Instant::now();
                }
                Effect::Apply { path } => {
                    model.message = Some(s.engines.apply(&path).await);
                    next_refresh = Instant::now();
                }
                Effect::LoadDrill { run } => {
                    let store = s.store.clone();
                    let d = tokio::task::spawn_blocking(move || data::drill(&store, run)).await;
                    model.set_drill(d.ok().and_then(|d| d.ok()).flatten());
                }
                Effect::LoadHistory => next_refresh = Instant::now(),
                Effect::Export { path, text } => {
                    let n = text.lines().count();
                    let written = tokio::task::spawn_blocking({
                        let path = path.clone();
                        move || std::fs::write(&path, text)
                    })
                    .await;
                    model.message = Some(match written {
                        Ok(Ok(())) => format!("wrote {n} line(s) to {path}"),
                        Ok(Err(e)) => format!("cannot write {path}: {e}"),
                        Err(e) => format!("cannot write {path}: {e}"),
                    });
                }
                Effect::Theme(name) => match cutover::tui::theme::load(&name) {
                    Ok(t) => {
                        look = Look::new(&t, look.depth, look.sym);
                        model.message = Some(format!("theme {name}"));
                    }
                    Err(e) => model.message = Some(e.to_string()),
                },
            }
        }
        // Draw only when something changed, at most once per frame: bursts coalesce, and nothing
        // is written while the screen stays the same.
        let changed = force
            || drawn
                .as_ref()
                .is_none_or(|(m, l)| *m != model || *l != look);
        if !changed {
            draw_at = None;
            continue;
        }
        let due = last_draw + frame;
        if Instant::now() >= due {
            if let Err(e) = draw(term, &model, &look) {
                // The terminal has gone (a dropped SSH connection): leave nothing half-done.
                tracing::warn!("cannot draw ({e}); pausing this console's runs and quitting");
                pause_all(&s.engines, &s.store, &s.user).await;
                break 'console OK;
            }
            frames += 1;
            last_draw = Instant::now();
            drawn = Some((model.clone(), look.clone()));
            force = false;
            draw_at = None;
        } else {
            draw_at = Some(due);
        }
    };
    // Runs still going are paused, and webhook notices in flight get a bounded time.
    s.engines.shutdown(crate::cli::apply::SHUTDOWN_GRACE).await;
    log_stats(started, cpu0, frames, &s.bytes);
    Ok(code)
}

fn draw(term: &mut Term, model: &Model, look: &Look) -> Result<()> {
    queue!(term.backend_mut(), BeginSynchronizedUpdate)?;
    term.draw(|f| view::draw(f, model, look))?;
    execute!(term.backend_mut(), EndSynchronizedUpdate)?;
    Ok(())
}

fn send(
    s: &Setup,
    tx: &mpsc::UnboundedSender<Input>,
    run: i64,
    deployment: String,
    command: Command,
) {
    let answers = tx.clone();
    let actor = s.user.clone();
    let name = command.name();
    let _ = answers.send(Input::Answer(format!("{name} sent to {deployment}...")));
    if let Some(engine) = s.engines.owner(run) {
        tokio::spawn(async move {
            let text = match engine.command(run, command, &actor).await {
                Ok(m) => format!("{deployment}: {m}"),
                Err(e) => format!("{deployment}: {name} refused: {e}"),
            };
            let _ = answers.send(Input::Answer(text));
        });
        return;
    }
    let store = s.store.clone();
    tokio::task::spawn_blocking(move || {
        let text = match remote::send(&store, run, &command, &actor, Duration::from_secs(10)) {
            Ok(Ok(m)) => format!("{deployment}: {m}"),
            Ok(Err(e)) => format!("{deployment}: {name} refused: {e}"),
            Err(e) => format!("{deployment}: {e}"),
        };
        let _ = answers.send(Input::Answer(text));
    });
}

/// Pause every run this console owns and let go of them: their state stays in the store and
/// any later console resumes them with `r`. A pause lands between steps, so nothing is left
/// half-switched.
async fn pause_all(engines: &Engines, store: &Store, user: &str) {
    for run in engines.owned() {
        if let Some(e) = engines.owner(run) {
            let r = tokio::time::timeout(
                Duration::from_secs(30),
                e.command_as_owner(run, Command::Pause, user),
            )
            .await;
            match r {
                Ok(Ok(_)) => tracing::info!(run, "paused on quit"),
                Ok(Err(err)) => tracing::warn!(run, "pause on quit: {err}"),
                Err(_) => tracing::warn!(run, "pause on quit: no answer in 30s"),
            }
        }
        let st = store.clone();
        let _ = st.call(move |s| s.release_run(run)).await;
    }
}

fn log_stats(started: Instant, cpu0: f64, frames: u64, bytes: &AtomicU64) {
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_ms() - cpu0;
    let b = bytes.load(Ordering::Relaxed);
    tracing::info!(
        "console stats: {secs:.1}s, {frames} frames, {b} bytes ({:.0} B/s), cpu {cpu:.0} ms ({:.2}% of one core)",
        b as f64 / secs.max(0.001),
        cpu / 10.0 / secs.max(0.001)
    );
    if let Some(path) = std::env::var_os("CUTOVER_CONSOLE_STATS") {
        let json = serde_json::json!({
            "seconds": secs, "frames": frames, "bytes": b, "cpu_ms": cpu,
        });
        let _ = std::fs::write(path, json.to_string());
    }
}
