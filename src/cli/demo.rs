//! `cutover demo`: the console on the bundled demo, in a private temporary state dir.
//!
//! Owns: the demo's script. It writes 60 days of generated history (`demo_past`), starts a
//! private local host, four services of the demo service as real processes behind cutover's
//! router with load from inside this process, then round after round: a healthy canary of `shop`
//! that stops at an approval gate (`demo-bot` approves it after a minute if nobody has), a bad
//! `payments` version that rolls back by itself and its fix, a blue-green switch of `search` and
//! a rolling update of `checkout`. Quitting stops every process it started and removes the state
//! dir. Must not touch: engine internals.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::console::{self, Engines, Options, Setup};
use cutover::engine::{Engine, RunOptions};
use cutover::spec::{self, ProviderKind, ValidSpec};

const SPECS: [(&str, &str); 6] = [
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
    (
        "search-3.0.0",
        include_str!("../../specs/demo/console/search-3.0.0.yaml"),
    ),
    (
        "checkout-5.0.0",
        include_str!("../../specs/demo/console/checkout-5.0.0.yaml"),
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

/// Where the demo serves its Prometheus metrics, unless the port is taken (then a free one, named
/// in the demo's log).
pub const METRICS_ADDR: &str = "127.0.0.1:9464";

/// The exporter over the demo's store and host, until `stop`.
async fn exporter(
    store: &cutover::store::Store,
    dir: &std::path::Path,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    use cutover::exporter::{bind, serve, Exporter};
    let preferred: std::net::SocketAddr = METRICS_ADDR.parse().ok()?;
    let listener = match bind(preferred).await {
        Ok(l) => l,
        Err(_) => bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .ok()?,
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("demo: Prometheus metrics at http://{addr}/metrics");
    }
    let exporter = Exporter::new(
        store.clone(),
        Some(cutover::local::client::HostClient::new(dir)),
    );
    Some(tokio::spawn(serve(
        std::sync::Arc::new(exporter),
        listener,
        stop,
    )))
}

pub fn demo(opts: Options) -> Result<u8> {
    let look = console::look(&opts)?;
    let dir = std::env::temp_dir().join(format!("cutover-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _cleanup = TempDir(dir.clone());
    let specs = specs()?;
    let store = super::open_store(&dir)?;
    let _guard = console::init_logging(&dir);
    // A past for the history and analytics views, seeded by the day so each day's demo differs.
    let now = chrono::Utc::now();
    let past = cutover::demo_past::seed(&store, now, 60, now.timestamp() as u64 / 86_400)
        .map_err(|e| anyhow::anyhow!("writing the demo's history: {e}"))?;
    tracing::info!("demo: {past} past runs over 60 days");
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
            let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
            let metrics = exporter(&store, &dir, metrics_stopped).await;
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
            let _ = stop_metrics.send(true);
            if let Some(m) = metrics {
                let _ = m.await;
            }
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
    start_run(engine, spec, user).await.map(|(_, j)| j)
}

/// [`start`], with the run's id.
async fn start_run(
    engine: &Engine,
    spec: ValidSpec,
    user: &str,
) -> Option<(i64, tokio::task::JoinHandle<cutover::engine::Outcome>)> {
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
        Ok(h) => Some((h.run_id, h.join)),
        Err(e) => {
            tracing::error!("demo: cannot start {what}: {e}");
            None
        }
    }
}

/// First versions of every service, then load on each; then, round after round until the demo
/// ends: a healthy canary of `shop` that waits at its gate (approved by `demo-bot` if nobody has
/// after a while), a bad `payments` that rolls back by itself and its fix, a blue-green switch of
/// `search` and a rolling update of `checkout`, each with a higher version than the last.
async fn script(engine: Engine, specs: Vec<ValidSpec>, user: String) {
    let by_name = |name: &str| {
        specs
            .iter()
            .find(|s| s.id == name && s.version.ends_with(".0.0"))
            .cloned()
    };
    let [Some(shop), Some(payments), Some(search), Some(checkout)] =
        ["shop", "payments", "search", "checkout"].map(by_name)
    else {
        tracing::error!("demo: a bundled spec is missing");
        return;
    };
    let canary = specs
        .iter()
        .find(|s| s.id == "shop" && s.version == "1.1.0")
        .cloned();
    let bad = specs
        .iter()
        .find(|s| s.id == "payments" && s.version == "2.1.0")
        .cloned();
    let (Some(canary), Some(bad)) = (canary, bad) else {
        tracing::error!("demo: a bundled spec is missing");
        return;
    };
    let mut firsts = Vec::new();
    let mut load = Vec::new();
    for s in [&shop, &payments, &search, &checkout] {
        if let Some(l) = s.components.first().and_then(|c| c.listen.clone()) {
            let opts = cutover::load::LoadOptions::new(
                format!("http://{l}/"),
                40,
                Duration::from_secs(24 * 3600),
            );
            load.push(opts);
        }
        firsts.extend(start(&engine, s.clone(), &user).await);
    }
    for j in firsts {
        let _ = j.await;
    }
    // The load runs until the demo ends (this task is aborted then, and its load with it).
    let _load: Vec<_> = load
        .into_iter()
        .map(|opts| {
            tokio::spawn(async move {
                if let Err(e) = cutover::load::run(opts).await {
                    tracing::warn!("demo load: {e}");
                }
            })
        })
        .map(AbortOnDrop)
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for round in 1u32.. {
        // The canary at its gate, and beside it the bad version that rolls back by itself.
        let gate = start_run(&engine, bump(&canary, round - 1, 0), &user).await;
        let bad_run = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            if let Some(j) = start(&engine, bump(&bad, round - 1, 0), &user).await {
                let _ = j.await;
            }
        };
        match gate {
            Some(j) => {
                tokio::join!(bad_run, approve_later(&engine, j, Duration::from_secs(60)));
            }
            None => bad_run.await,
        }
        // The fix of the bad version, a blue-green switch and a rolling update.
        for (spec, patch) in [(&payments, 1), (&search, 0), (&checkout, 0)] {
            if let Some(j) = start(&engine, bump(spec, round, patch), &user).await {
                let _ = j.await;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A spec with its version raised for a round (`1.1.0` in round 2 is `1.2.0`, plus a patch).
fn bump(spec: &ValidSpec, round: u32, patch: u32) -> ValidSpec {
    let mut parts = spec
        .version
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(1), parts.next().unwrap_or(0));
    let version = format!("{major}.{}.{patch}", minor + round);
    spec.clone()
        .amend(|s| {
            s.version = version.clone();
            for c in &mut s.components {
                c.version = version.clone();
            }
        })
        .unwrap_or_else(|_| spec.clone())
}

/// Until run `run` ends: a gate of it that has waited `after` is approved by `demo-bot`, by
/// name (the operator may approve it first). Other runs (an operator's own `:apply`) are left
/// alone.
async fn approve_later(
    engine: &Engine,
    (run, mut join): (i64, tokio::task::JoinHandle<cutover::engine::Outcome>),
    after: Duration,
) {
    // The gate waited at, and since when.
    let mut seen: Option<(String, std::time::Instant)> = None;
    loop {
        tokio::select! {
            _ = &mut join => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let gate = engine
            .snapshots()
            .borrow()
            .get(&run)
            .and_then(|s| s.gate.clone());
        let Some(gate) = gate else {
            seen = None;
            continue;
        };
        let since = match &seen {
            Some((g, t)) if *g == gate => *t,
            _ => {
                seen = Some((gate, std::time::Instant::now()));
                continue;
            }
        };
        if since.elapsed() < after {
            continue;
        }
        let c = cutover::engine::Command::Approve {
            gate: Some(gate.clone()),
            comment: Some("nobody approved within a minute".into()),
        };
        if let Err(e) = engine.command(run, c, "demo-bot").await {
            tracing::warn!("demo: approving {gate} of run {run}: {e}");
        }
        seen = None;
    }
}
