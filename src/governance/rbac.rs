//! Who may do what: roles (viewer, operator, approver, admin) granted per environment to OS users
//! and groups, and the permission each action needs. Checked in the engine, so a command sent
//! straight to it is refused the same way as one from the console.
//!
//! Owns: the role and permission model and refusal messages. Must not touch: gates' quorum
//! (that is `gate`), the store or the engine.

use super::config::Workspace;

/// A role in an environment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

/// Something a person asks of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    View,
    /// Start a deployment or a promotion into the environment.
    Deploy,
    Pause,
    Resume,
    /// Skip the remaining analysis of a running deployment.
    Promote,
    Rollback,
    /// Decide a gate (beyond the role, a gate has its own approver rule).
    Approve,
    /// Bypass a rule (promote out of order), with a reason.
    Override,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::View => "view",
            Permission::Deploy => "deploy",
            Permission::Pause => "pause",
            Permission::Resume => "resume",
            Permission::Promote => "promote",
            Permission::Rollback => "rollback",
            Permission::Approve => "approve",
            Permission::Override => "override",
        }
    }

    /// The roles that grant it.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Permission::View => &[Role::Viewer, Role::Operator, Role::Approver, Role::Admin],
            Permission::Deploy
            | Permission::Pause
            | Permission::Resume
            | Permission::Promote
            | Permission::Rollback => &[Role::Operator, Role::Admin],
            Permission::Approve => &[Role::Approver, Role::Admin],
            Permission::Override => &[Role::Admin],
        }
    }
}

/// The roles `user` (in `groups`) holds in `env`. With no configuration, or an environment that
/// grants no roles, everybody is admin (a lone operator on a laptop is never stuck).
pub fn roles_of(ws: &Workspace, env: &str, user: &str, groups: &[String]) -> Vec<Role> {
    let Some(roles) = ws.env(env).and_then(|e| e.roles.as_ref()) else {
        return vec![Role::Admin];
    };
    let mut out = Vec::new();
    for (role, who) in [
        (Role::Viewer, &roles.viewer),
        (Role::Operator, &roles.operator),
        (Role::Approver, &roles.approver),
        (Role::Admin, &roles.admin),
    ] {
        if who.includes(user, groups) {
            out.push(role);
        }
    }
    out
}

/// A person lacks the role an action needs: who, what, where, the roles that would do, and the
/// roles they hold there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{}", self.describe())]
pub struct Forbidden {
    pub user: String,
    pub permission: Permission,
    pub environment: String,
    pub needed: Vec<Role>,
    pub held: Vec<Role>,
}

impl Forbidden {
    fn describe(&self) -> String {
        let need: Vec<&str> = self.needed.iter().map(|r| r.name()).collect();
        let held = if self.held.is_empty() {
            "no role".to_string()
        } else {
            format!(
                "only {}",
                self.held
                    .iter()
                    .map(|r| r.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let user = &self.user;
        format!(
            "{user} may not {} in {}: that needs the {} role there ({user} has {held})",
            self.permission.name(),
            self.environment,
            need.join(" or ")
        )
    }
}

/// Whether `user` may do `perm` in `env`; the refusal says which role was needed.
pub fn check(
    ws: &Workspace,
    env: &str,
    user: &str,
    groups: &[String],
    perm: Permission,
) -> Result<(), Forbidden> {
    let has = roles_of(ws, env, user, groups);
    if perm.roles().iter().any(|r| has.contains(r)) {
        return Ok(());
    }
    Err(Forbidden {
        user: user.to_string(),
        permission: perm,
        environment: env.to_string(),
        needed: perm.roles().to_vec(),
        held: has,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::config::parse;

    #[test]
    fn roles_grant_permissions_and_refusals_name_the_role() {
        let ws = parse(
            "environments:
  - name: staging
  - name: production
    roles:
      viewer: {groups: [everyone]}
      operator: {groups: [deployers]}
      approver: {users: [bob]}
      admin: {users: [alice]}
",
        )
        .unwrap();
        let g = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check(&ws, "staging", "mallory", &[], Permission::Deploy).is_ok());
        assert!(check(&ws, "production", "alice", &[], Permission::Override).is_ok());
        assert!(check(
            &ws,
            "production",
            "dave",
            &g(&["deployers"]),
            Permission::Pause
        )
        .is_ok());
        let e = check(
            &ws,
            "production",
            "dave",
            &g(&["deployers"]),
            Permission::Approve,
        )
        .unwrap_err();
        assert_eq!(e.needed, [Role::Approver, Role::Admin]);
        assert_eq!(e.held, [Role::Operator]);
        assert_eq!(
            e.to_string(),
            "dave may not approve in production: that needs the approver or admin role there (dave has only operator)"
        );
        let e = check(
            &ws,
            "production",
            "eve",
            &g(&["everyone"]),
            Permission::Rollback,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs the operator or admin role"), "{e}");
        let e = check(&ws, "production", "zed", &[], Permission::View)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zed has no role"), "{e}");
        assert!(check(
            &Workspace::default(),
            "anything",
            "x",
            &[],
            Permission::Override
        )
        .is_ok());
    }
}
