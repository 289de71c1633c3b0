//! Platforms: the one place that turns a spec's provider kind into a [`Provider`], so the CLI,
//! the console and the demo never match on the kind themselves and a new platform arrives as
//! one more arm here.
//!
//! Owns: choosing and connecting the provider for a kind (starting the local host when asked),
//! and seeding a simulation with what the store says is serving. Must not touch: runs (the
//! engine drives the provider it is given, and never names a concrete one).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::local::client::{ensure_host, HostClient, LocalProvider};
use crate::provider::simulated::{Fault, Simulated};
use crate::provider::{Provider, RevisionKey};
use crate::spec::{ProviderKind, Spec};
use crate::store::{RevisionState, Store, StoreError};

/// What a provider is built for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The state dir (the local host's socket and tables live there).
    pub state_dir: PathBuf,
    /// The cutover executable (started as the local host).
    pub exe: PathBuf,
    /// Start the local host if it is not running (a deployment); otherwise use it only when it
    /// already runs (an inspection such as `verify`).
    pub start_host: bool,
    /// Faults for the simulated provider (`--sim-fault`); refused for any other.
    pub faults: Vec<Fault>,
    /// The spec the provider serves: a Kubernetes provider works in its namespace, with its
    /// traffic mode (the local and simulated providers serve any spec).
    pub spec: Option<Spec>,
    /// Where on Kubernetes (`--context`, `--namespace`).
    pub kube: crate::provider::kubernetes::Settings,
    /// Kubernetes: send every write as a server-side dry run (`apply --dry-run=server`).
    pub server_dry_run: bool,
}

static KUBE: std::sync::OnceLock<crate::provider::kubernetes::Settings> =
    std::sync::OnceLock::new();

/// The process's `--context` and `--namespace`, set once at start; every request gets them.
pub fn set_kube_settings(settings: crate::provider::kubernetes::Settings) {
    let _ = KUBE.set(settings);
}

impl Request {
    /// A request that starts what it needs, with the running executable.
    pub fn new(state_dir: &Path) -> Result<Request, PlatformError> {
        let exe = std::env::current_exe()
            .map_err(|e| PlatformError::Unavailable(format!("cannot find this executable: {e}")))?;
        Ok(Request {
            state_dir: state_dir.to_path_buf(),
            exe,
            start_host: true,
            faults: Vec::new(),
            spec: None,
            kube: KUBE.get().cloned().unwrap_or_default(),
            server_dry_run: false,
        })
    }

    /// The same request, for `spec`.
    pub fn for_spec(mut self, spec: &Spec) -> Request {
        self.spec = Some(spec.clone());
        self
    }
}

/// A connected platform.
pub struct Built {
    pub provider: Arc<dyn Provider>,
    /// The simulated world, when the provider is the simulation (to seed it).
    pub simulation: Option<Arc<Simulated>>,
    /// The local host, when the provider is local (to stop it, as the demo does).
    pub host: Option<HostClient>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Asked for something this kind does not take (faults on a real platform).
    #[error("{0}")]
    Usage(String),
    /// The platform cannot be reached or started here.
    #[error("{0}")]
    Unavailable(String),
    /// Not running, and not to be started for this request.
    #[error("{0}")]
    NotRunning(String),
}

impl PlatformError {
    /// The exit code of the command-line contract: 2 for a request this build cannot take
    /// (usage), 1 for a platform that failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            PlatformError::Usage(_) => 2,
            PlatformError::Unavailable(_) | PlatformError::NotRunning(_) => 1,
        }
    }
}

/// The provider for `kind`.
pub async fn build(kind: ProviderKind, req: &Request) -> Result<Built, PlatformError> {
    if req.server_dry_run && kind != ProviderKind::Kubernetes {
        return Err(PlatformError::Usage(
            "--dry-run=server sends the writes to a Kubernetes API server; this spec's provider is not kubernetes (use --dry-run)".into(),
        ));
    }
    if !req.faults.is_empty() && kind != ProviderKind::Simulated {
        return Err(PlatformError::Usage(
            "--sim-fault only applies to the simulated provider (--dry-run)".into(),
        ));
    }
    match kind {
        ProviderKind::Simulated => {
            let sim = Arc::new(Simulated::new(req.faults.clone()));
            Ok(Built {
                provider: sim.clone(),
                simulation: Some(sim),
                host: None,
            })
        }
        ProviderKind::Local => {
            let client = if req.start_host {
                ensure_host(&req.state_dir, &req.exe)
                    .await
                    .map_err(|e| PlatformError::Unavailable(e.to_string()))?
            } else {
                let client = HostClient::new(&req.state_dir);
                if !client.ping().await {
                    return Err(PlatformError::NotRunning(format!(
                        "no local host runs for {}",
                        req.state_dir.display()
                    )));
                }
                client
            };
            Ok(Built {
                provider: Arc::new(LocalProvider::new(client.clone())),
                simulation: None,
                host: Some(client),
            })
        }
        ProviderKind::Kubernetes => {
            let Some(spec) = &req.spec else {
                return Err(PlatformError::Usage(
                    "the kubernetes provider works for one spec at a time (its namespace and traffic)".into(),
                ));
            };
            // What a cluster cannot run is refused before anything is written (validate
            // reports the same as findings; `--dry-run` simulates it).
            let refused = crate::spec::kubernetes::refusals(spec);
            if !refused.is_empty() {
                let lines: Vec<String> = refused.iter().map(|d| d.to_string()).collect();
                return Err(PlatformError::Usage(format!(
                    "the Kubernetes provider cannot run this spec:\n  {}",
                    lines.join("\n  ")
                )));
            }
            let provider =
                crate::provider::kubernetes::connect(spec, &req.kube, req.server_dry_run)
                    .await
                    .map_err(|e| PlatformError::Unavailable(e.to_string()))?;
            Ok(Built {
                provider: Arc::new(provider),
                simulation: None,
                host: None,
            })
        }
    }
}

/// Put into a simulation what the store says serves for a spec's components in its environment
/// (dry-run revisions), plus the revisions of run `also` that still run (a run being rolled back).
pub fn seed(
    sim: &Simulated,
    store: &Store,
    spec: &Spec,
    also: Option<i64>,
) -> Result<(), StoreError> {
    for c in &spec.components {
        for rev in store.revisions(&c.id, &spec.environment, true)? {
            let serving = rev.status == RevisionState::Active
                || (Some(rev.run_id) == also
                    && match rev.status {
                        RevisionState::Deploying | RevisionState::Failed => true,
                        RevisionState::Active
                        | RevisionState::Retired
                        | RevisionState::RolledBack => false,
                    });
            if serving {
                sim.seed(
                    &c.id,
                    RevisionKey(rev.rev_key.clone()),
                    &rev.version,
                    rev.replicas.get(),
                );
            }
        }
    }
    Ok(())
}
