//! `cutover console [--read-only]`: the live console over the state store.
//!
//! Owns: the terminal (raw mode, alternate screen, restored on quit, panic, SIGTERM and SIGHUP),
//! reading keys on a thread, refreshing from the store, drawing only when something changed, and
//! delivering commands through the store to whichever process runs a deployment.
//! Must not touch: engine state (commands go through the store, as from any terminal).

use std::io::Stdout;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyEventKind};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;
use tokio::sync::mpsc;

use super::print::human_line;
use super::{open_store, OK};
use cutover::engine::{remote, Event, Snapshot};
use cutover::store::{pid_alive, Store};
use cutover::tui::model::{Effect, Model, Row};
use cutover::tui::view;

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

/// The latest run of every deployment, with the selected one's recent events.
fn load(store: &Store, selected: Option<&str>) -> Result<Vec<Row>> {
    let mut seen = std::collections::BTreeSet::new();
    let mut rows = Vec::new();
    for r in store.runs(None, 500)? {
        if !seen.insert(r.deployment.clone()) {
            continue;
        }
        let finished = r.is_finished();
        let events = if selected == Some(r.deployment.as_str()) {
            store
                .recent_events(r.run_id, 200)?
                .iter()
                .filter_map(|e| serde_json::from_str::<Event>(&e.json).ok())
                .filter_map(|e| human_line(&e, 0))
                .flat_map(|l| l.lines().map(str::to_string).collect::<Vec<_>>())
                .collect()
        } else {
            Vec::new()
        };
        rows.push(Row {
            live: finished || r.owner_pid.is_some_and(pid_alive),
            finished,
            snapshot: serde_json::from_str::<Snapshot>(&r.snapshot_json).ok(),
            deployment: r.deployment,
            run: r.run_id,
            version: r.version,
            environment: r.environment,
            strategy: r.strategy,
            status: r.status,
            reason: r.reason,
            events,
        });
    }
    Ok(rows)
}

enum Input {
    Key(ratatui::crossterm::event::KeyEvent),
    Resize,
    Answer(String),
}

pub fn console(dir: &Path, read_only: bool) -> Result<u8> {
    let store = open_store(dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
    enable_raw_mode()?;
    let _restore = Restore;
    execute!(std::io::stdout(), EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    rt.block_on(run(&mut terminal, store, read_only))
}

async fn run(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    store: Store,
    read_only: bool,
) -> Result<u8> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Input>();
    let keys = tx.clone();
    std::thread::spawn(move || loop {
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
    });
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut model = Model::new(&cutover::identity::current_user(), read_only);
    let mut drawn: Option<Model> = None;
    let mut refresh = tokio::time::interval(Duration::from_millis(500));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut force = false;
        tokio::select! {
            _ = refresh.tick() => {
                let s = store.clone();
                let sel = model.current().map(|r| r.deployment.clone());
                if let Ok(Ok(rows)) = tokio::task::spawn_blocking(move || load(&s, sel.as_deref())).await {
                    model.set_rows(rows);
                }
            }
            input = rx.recv() => match input {
                None => break,
                Some(Input::Resize) => force = true,
                Some(Input::Answer(a)) => model.message = Some(a),
                Some(Input::Key(k)) => {
                    for effect in model.key(k) {
                        match effect {
                            Effect::Quit => return Ok(OK),
                            Effect::Redraw => {}
                            Effect::Send { run, deployment, command } => {
                                let s = store.clone();
                                let answers = tx.clone();
                                model.message = Some(format!("{} sent to {deployment}...", command.name()));
                                tokio::task::spawn_blocking(move || {
                                    let actor = cutover::identity::current_user();
                                    let text = match remote::send(&s, run, &command, &actor, Duration::from_secs(10)) {
                                        Ok(Ok(m)) => format!("{deployment}: {m}"),
                                        Ok(Err(e)) => format!("{deployment}: {} refused: {e}", command.name()),
                                        Err(e) => format!("{deployment}: {e}"),
                                    };
                                    let _ = answers.send(Input::Answer(text));
                                });
                            }
                        }
                    }
                    if k.code == ratatui::crossterm::event::KeyCode::Char('l')
                        && k.modifiers.contains(ratatui::crossterm::event::KeyModifiers::CONTROL)
                    {
                        terminal.clear()?;
                        force = true;
                    }
                }
            },
            _ = term.recv() => break,
            _ = hup.recv() => break,
        }
        // Draw only when something changed: nothing is written while the screen stays the same.
        if force || drawn.as_ref() != Some(&model) {
            terminal.draw(|f| view::draw(f, &model))?;
            drawn = Some(model.clone());
        }
    }
    Ok(OK)
}
