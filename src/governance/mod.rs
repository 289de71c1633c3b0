//! Governance: the workspace configuration (`cutover.yaml`), roles and permissions, approval
//! gates with quorum and escalation, promotion rules, windows, and webhook delivery. (The
//! hash-chained audit trail's format and storage are the store's: `store::audit`.)
//!
//! Owns: the rules about people. The engine asks it before acting on a command; the CLI and the
//! console show what it says. Must not touch: strategies, providers, terminals.

pub mod config;
pub mod gate;
pub mod notify;
pub mod promotion;
pub mod rbac;
pub mod window;

use std::sync::Arc;

pub use config::Workspace;

/// Resolves a user's OS groups (tests substitute their own).
pub type GroupResolver = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// The governance an engine enforces.
#[derive(Clone)]
pub struct Governance {
    pub workspace: Arc<Workspace>,
    pub groups: GroupResolver,
}

impl Default for Governance {
    /// No configuration: everybody is admin everywhere; groups from the OS.
    fn default() -> Governance {
        Governance {
            workspace: Arc::new(Workspace::default()),
            groups: Arc::new(crate::identity::groups_of),
        }
    }
}

impl Governance {
    pub fn new(workspace: Workspace) -> Governance {
        Governance {
            workspace: Arc::new(workspace),
            ..Governance::default()
        }
    }

    /// Whether `user` may do `perm` in `env`.
    pub fn check(
        &self,
        env: &str,
        user: &str,
        perm: rbac::Permission,
    ) -> Result<(), rbac::Forbidden> {
        let groups = (self.groups)(user);
        rbac::check(&self.workspace, env, user, &groups, perm)
    }
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}
