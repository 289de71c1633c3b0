//! `cutover demo`: the console on the bundled demo, in a private temporary state dir.
//!
//! Owns: the demo's script. It starts a private local host, the demo service as real processes
//! behind cutover's router, load from inside this process, a healthy canary of `shop` that stops
//! at an approval gate, and a bad `payments` version that rolls back by itself. Quitting stops
//! every process it started and removes the state dir. Must not touch: engine internals.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::console::{self, Engines, Options, Setup};
use cutover::engine::{Engine, RunOptions};
use cutover::spec::{self, ProviderKind, ValidSpec};

const SPECS: [(&str, &str); 4] = [
    (
        "shop-1.0.0",
        include_str!("../../specs/demo/console/shop-1.0.0.yaml"),
    ),
    (
        "payments-2.0.0",
        include_str!("../../specs/demo/console/payments-2.0.0.yaml"),
    ),
    (
        "shop-1.1.0",
        include_str!("../../specs/demo/console/shop-1.1.0.yaml"),
    ),
    (
        "payments-2.1.0",
        include_str!("../../specs/demo/console/payments-2.1.0.yaml"),
    ),
];

/// Removes the demo's state dir however the demo ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The bundled specs, with each service's `listen` moved to a free port.
fn specs() -> Result<Vec<ValidSpec>> {
    let mut ports = std::collections::BTreeMap::new();
    let mut out = Vec::new();
    for (name, text) in SPECS {
        let s = spec::load_str(text)
            .map_err(|d| anyhow::anyhow!("bundled demo spec {name} is invalid: {d:?}"))?;
        for c in &s.components {
            if !ports.contains_key(&c.id) {
                ports.insert(c.id.clone(), free_port()?);
            }
        }
        let s = s
            .amend(|s| {
                for c in &mut s.components {
                    if let Some(port) = ports.get(&c.id) {
                        c.listen = Some(format!("127.0.0.1:{port}"));
                    }
                }
            })
            .map_err(|d| anyhow::anyhow!("bundled demo spec {name} is invalid: {d:?}"))?;
        out.push(s);
    }
    Ok(out)
}

pub fn demo(opts: Options) -> Result<u8> {
    let look = console::look(&opts)?;
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _cleanup = TempDir(dir.clone());
    let specs = specs()?;
    let store = super::open_store(&dir)?;
    let _guard = console::init_logging(&dir);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let user = cutover::identity::current_user();
    let req = cutover::platform::Request::new(&dir)?;
    let built = rt
        .block_on(cutover::platform::build(ProviderKind::Local, &req))
        .map_err(|e| anyhow::anyhow!("starting the demo's local host: {e}"))?;
    let client = built
        .host
        .ok_or_else(|| anyhow::anyhow!("the local platform gave no host"))?;
    // Declared after the state dir's guard, so it runs first.
    let _stop = StopHost(client.clone());
    let engine = super::engine(&store, built.provider, false, true);
    let result = console::with_terminal(|term, bytes| {
        rt.block_on(async {
            let (poke, pokes) = tokio::sync::mpsc::unbounded_channel();
            let mut engines = Engines::new(&dir, &store, &user, poke);
            engines.insert(ProviderKind::Local, engine.clone());
            let script = tokio::spawn(script(engine.clone(), specs, user.clone()));
            let setup = Setup {
                store: store.clone(),
                user: user.clone(),
                read_only: false,
                look,
                fps: opts.fps,
                demo: true,
                specs: Vec::new(),
                engines,
                pokes,
                bytes,
            };
            let r = console::run::run(term, setup).await;
            script.abort();
            r
        })
    });
    drop(rt);
    result
}

/// Stops the demo's host however the demo ends (also on a panic): the host takes its services
/// and routers with it.
struct StopHost(cutover::local::client::HostClient);

impl Drop for StopHost {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let pid = rt.block_on(async {
            let pid = self.0.status().await.ok().map(|s| s.pid);
            if let Err(e) = self.0.stop().await {
                tracing::warn!("stopping the demo host: {e}");
            }
            pid
        });
        if let Some(pid) = pid {
            wait_gone(pid);
        }
    }
}

/// The host exits after answering stop (taking its processes with it); wait for that, so the
/// state dir can go.
fn wait_gone(pid: u32) {
    for _ in 0..100 {
        if !cutover::store::pid_alive(i64::from(pid)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

async fn start(
    engine: &Engine,
    spec: ValidSpec,
    user: &str,
) -> Option<tokio::task::JoinHandle<cutover::engine::Outcome>> {
    let what = format!("{} {}", spec.id, spec.version);
    match engine
        .start(
            spec,
            RunOptions {
                dry_run: false,
                auto_approve: false,
                initiator: user.to_string(),
            },
        )
        .await
    {
        Ok(h) => Some(h.join),
        Err(e) => {
            tracing::error!("demo: cannot start {what}: {e}");
            None
        }
    }
}

/// First versions, then load, then the healthy canary and, a little later, the bad version.
async fn script(engine: Engine, specs: Vec<ValidSpec>, user: String) {
    let mut specs = specs.into_iter();
    let mut firsts = Vec::new();
    let mut targets = Vec::new();
    for s in specs.by_ref().take(2) {
        if let Some(l) = s.components.first().and_then(|c| c.listen.clone()) {
            targets.push(format!("http://{l}/"));
        }
        firsts.extend(start(&engine, s, &user).await);
    }
    for j in firsts {
        let _ = j.await;
    }
    let mut load = Vec::new();
    for t in targets {
        let opts = cutover::load::LoadOptions::new(t, 40, Duration::from_secs(24 * 3600));
        load.push(tokio::spawn(async move {
            if let Err(e) = cutover::load::run(opts).await {
                tracing::warn!("demo load: {e}");
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Some(shop) = specs.next() {
        let _ = start(&engine, shop, &user).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    if let Some(bad) = specs.next() {
        let _ = start(&engine, bad, &user).await;
    }
    // The load runs until the demo ends (this task is aborted then, and its load with it).
    for l in load {
        let _ = l.await;
    }
}
