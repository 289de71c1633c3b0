//! The engines a console hosts in-process, one per provider, made on first use: starting specs
//! (`cutover console SPEC...`, `:apply SPEC`) and taking over interrupted runs (`r`).
//!
//! Owns: provider choice for a spec, the local host connection, and the runs' join handles.
//! Must not touch: the terminal or the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cutover::engine::{Engine, RunOptions};
use cutover::platform;
use cutover::spec::{ProviderKind, Spec, ValidSpec};
use cutover::store::Store;

pub struct Engines {
    dir: PathBuf,
    store: Store,
    user: String,
    /// One engine per provider; on Kubernetes one per spec (a provider there works in the
    /// spec's namespace with its traffic mode).
    map: BTreeMap<(ProviderKind, Option<String>), Engine>,
    /// Poked whenever an engine emits an event, so the console refreshes at once.
    poke: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    joins: Vec<tokio::task::JoinHandle<cutover::engine::Outcome>>,
}

impl Engines {
    pub fn new(
        dir: &Path,
        store: &Store,
        user: &str,
        poke: tokio::sync::mpsc::UnboundedSender<Option<String>>,
    ) -> Engines {
        Engines {
            dir: dir.to_path_buf(),
            store: store.clone(),
            user: user.to_string(),
            map: BTreeMap::new(),
            poke,
            joins: Vec::new(),
        }
    }

    /// Use an engine made elsewhere (the demo's).
    pub fn insert(&mut self, provider: ProviderKind, engine: Engine) {
        self.watch(&engine);
        self.map.insert((provider, None), engine);
    }

    fn watch(&self, engine: &Engine) {
        let mut events = engine.subscribe();
        let poke = self.poke.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                // The journal's notices are shown on the message line: the store cannot show
                // them while it does not take writes.
                let note = match events.recv().await {
                    Ok(ev) => matches!(
                        ev.kind,
                        cutover::engine::EventKind::JournalDelayed { .. }
                            | cutover::engine::EventKind::JournalCaughtUp { .. }
                            | cutover::engine::EventKind::JournalLost { .. }
                    )
                    .then(|| cutover::describe::human_line(&ev, 0))
                    .flatten()
                    .map(|l| format!("{} (run #{}): {}", ev.deployment, ev.run, l.trim())),
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => break,
                };
                if poke.send(note).is_err() {
                    break;
                }
            }
        });
    }

    /// The engine for a provider (on Kubernetes, for `spec`), made (and the local host
    /// started, or the cluster connected) on first use.
    pub async fn get(&mut self, provider: ProviderKind, spec: &Spec) -> Result<Engine, String> {
        let key = (
            provider,
            (provider == ProviderKind::Kubernetes).then(|| spec.id.clone()),
        );
        if let Some(e) = self.map.get(&key) {
            return Ok(e.clone());
        }
        let req = platform::Request::new(&self.dir)
            .map_err(|e| e.to_string())?
            .for_spec(spec);
        let built = platform::build(provider, &req)
            .await
            .map_err(|e| e.to_string())?;
        let engine = crate::cli::engine(&self.store, built.provider, false, true);
        self.watch(&engine);
        self.map.insert(key, engine.clone());
        Ok(engine)
    }

    /// Start a deployment of a spec in this console.
    pub async fn start(&mut self, spec: ValidSpec) -> Result<String, String> {
        let provider = spec.infrastructure.provider;
        let engine = self.get(provider, &spec).await?;
        let (id, version) = (spec.id.clone(), spec.version.clone());
        let h = engine
            .start(
                spec,
                RunOptions {
                    dry_run: provider == ProviderKind::Simulated,
                    auto_approve: false,
                    initiator: self.user.clone(),
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(run = h.run_id, "started {id} {version}");
        let msg = format!("started {id} {version} (run #{})", h.run_id);
        self.joins.push(h.join);
        Ok(msg)
    }

    /// Start a spec file; the message says what happened, in words.
    pub async fn apply(&mut self, path: &str) -> String {
        let p = PathBuf::from(path);
        let spec = match tokio::task::spawn_blocking(move || cutover::spec::load_file(&p)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let text = e.to_string();
                tracing::warn!("{text}");
                let first = text.lines().next().unwrap_or("").to_string();
                let more = text.lines().count().saturating_sub(1);
                return if more > 0 {
                    format!("{first} (+{more} more problem(s); `cutover validate {path}`)")
                } else {
                    first
                };
            }
            Err(e) => return format!("{path}: {e}"),
        };
        match self.start(spec).await {
            Ok(m) => m,
            Err(e) => format!("{path}: {e}"),
        }
    }

    /// Take over an interrupted run and resume it here.
    pub async fn adopt(&mut self, run: i64) -> Result<String, String> {
        let store = self.store.clone();
        let row = store
            .call(move |s| s.run(run))
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("run {run} is not in the store"))?;
        let spec: Spec = serde_json::from_str(&row.spec_json)
            .map_err(|e| format!("run {run}: its recorded spec is unusable: {e}"))?;
        let engine = self.get(row.provider, &spec).await?;
        let h = engine
            .adopt(run, &self.user)
            .await
            .map_err(|e| e.to_string())?;
        self.joins.push(h.join);
        Ok(format!(
            "took over {} run #{run}; it goes on from step {}",
            row.deployment,
            row.step + 1
        ))
    }

    /// The engine that owns a run in this process, if any.
    pub fn owner(&self, run: i64) -> Option<Engine> {
        self.map
            .values()
            .find(|e| e.owned_runs().contains(&run))
            .cloned()
    }

    /// Shut every engine down (see `Engine::shutdown`): runs still going are paused, webhook
    /// deliveries in flight get up to `grace`. What could not be done is logged.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        for ((provider, _), e) in &self.map {
            let r = e.shutdown(grace).await;
            if !r.not_paused.is_empty() || !r.undelivered.is_empty() {
                tracing::warn!(
                    "engine for {provider}: runs not paused {:?}; webhook notices dropped {:?}",
                    r.not_paused,
                    r.undelivered
                );
            }
            if r.journal != Default::default() {
                tracing::error!(
                    "engine for {provider}: not recorded in the state store: {} journal line(s) ({}); runs left unfinished there: {:?}",
                    r.journal.lines,
                    r.journal.error.as_deref().unwrap_or("?"),
                    r.journal.unfinished
                );
            }
        }
    }

    /// Unfinished runs this console owns.
    pub fn owned(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.map.values().flat_map(|e| e.owned_runs()).collect();
        v.sort_unstable();
        v
    }
}
