//! The workspace configuration, `cutover.yaml`: ordered environments with, per environment, who
//! may do what (roles granted to OS users and groups), approval gates (approvers, quorum,
//! self-approval, timeout and an escalation ladder), deployment windows and freezes, and the
//! overrides a promotion applies; plus named webhooks.
//!
//! Owns: reading and checking the file (the same `FILE:LINE:COL` / `FILE: field: message`
//! diagnostics as specs) and finding it (`--config`, `CUTOVER_CONFIG`, `./cutover.yaml`, the XDG
//! config dir). Must not touch: deciding anything (that is `rbac` and `gate`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::spec::decode::{join, Decoder, Diagnostic, FromNode, Millis};
use crate::spec::yaml::{self, Node};

/// OS users and groups.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Who {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl Who {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty()
    }

    /// Whether `user` (member of `groups`) is named here.
    pub fn includes(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || self.groups.iter().any(|g| groups.contains(g))
    }

    /// In words: `users alice, bob; groups sre`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(", ")));
        }
        if parts.is_empty() {
            "nobody".into()
        } else {
            parts.join("; ")
        }
    }

    pub fn merge(&mut self, other: &Who) {
        for u in &other.users {
            if !self.users.contains(u) {
                self.users.push(u.clone());
            }
        }
        for g in &other.groups {
            if !self.groups.contains(g) {
                self.groups.push(g.clone());
            }
        }
    }
}

impl FromNode for Who {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["users", "groups"]);
        Who {
            users: o.def(d, "users"),
            groups: o.def(d, "groups"),
        }
    }
}

/// Who holds each role in an environment.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Roles {
    pub viewer: Who,
    pub operator: Who,
    pub approver: Who,
    pub admin: Who,
}

impl FromNode for Roles {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["viewer", "operator", "approver", "admin"]);
        Roles {
            viewer: o.def(d, "viewer"),
            operator: o.def(d, "operator"),
            approver: o.def(d, "approver"),
            admin: o.def(d, "admin"),
        }
    }
}

/// One rung of an escalation ladder.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Escalation {
    /// Time since the gate opened.
    pub after: Millis,
    /// Webhook names to notify.
    pub notify: Vec<String>,
    /// People who may approve from now on.
    pub add_approvers: Who,
    /// Decide the gate.
    pub action: Option<EscalationAction>,
}

/// The body a webhook gets: cutover's generic JSON, or Slack's `{"text": ...}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Generic,
    Slack,
}

impl FromNode for WebhookFormat {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let word = String::decode(n, path, d);
        match word.as_str() {
            "generic" => WebhookFormat::Generic,
            "slack" => WebhookFormat::Slack,
            _ => {
                if !d.has_error(path) {
                    d.field(
                        path,
                        format!("unknown format `{word}`; expected generic or slack"),
                    );
                }
                WebhookFormat::Generic
            }
        }
    }
}

/// How an escalation step decides a gate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    #[default]
    Reject,
    Approve,
    Rollback,
}

impl EscalationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationAction::Reject => "reject",
            EscalationAction::Approve => "approve",
            EscalationAction::Rollback => "rollback",
        }
    }
}

impl FromNode for EscalationAction {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let word = String::decode(n, path, d);
        match word.as_str() {
            "reject" => EscalationAction::Reject,
            "approve" => EscalationAction::Approve,
            "rollback" => EscalationAction::Rollback,
            _ => {
                if !d.has_error(path) {
                    d.field(
                        path,
                        format!("unknown action `{word}`; expected reject, approve or rollback"),
                    );
                }
                EscalationAction::Reject
            }
        }
    }
}

impl FromNode for Escalation {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["after", "notify", "addApprovers", "action"]);
        Escalation {
            after: o.req(d, "after"),
            notify: o.def(d, "notify"),
            add_approvers: o.def(d, "addApprovers"),
            action: o.opt(d, "action"),
        }
    }
}

/// An environment's approval gate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// A gate before the first change, besides the strategy's own gates.
    pub before_start: bool,
    /// Who may approve; `None`: holders of the approver or admin role.
    pub approvers: Option<Who>,
    /// Distinct people needed.
    pub required: u32,
    pub allow_self_approval: bool,
    pub timeout: Option<Millis>,
    pub escalation: Vec<Escalation>,
}

impl Default for Approval {
    fn default() -> Approval {
        Approval {
            before_start: false,
            approvers: None,
            required: 1,
            allow_self_approval: false,
            timeout: None,
            escalation: Vec::new(),
        }
    }
}

impl FromNode for Approval {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "beforeStart",
                "approvers",
                "required",
                "allowSelfApproval",
                "timeout",
                "escalation",
            ],
        );
        let required: i64 = o.or(d, "required", 1);
        if required < 1 {
            d.field(&o.path("required"), "must be at least 1 (distinct people)");
        }
        Approval {
            before_start: o.or(d, "beforeStart", false),
            approvers: o.opt(d, "approvers"),
            required: required.clamp(1, 1000) as u32,
            allow_self_approval: o.or(d, "allowSelfApproval", false),
            timeout: o.opt(d, "timeout"),
            escalation: o.def(d, "escalation"),
        }
    }
}

/// When deployments may start: on these days (mon..sun), between these times (UTC, HH:MM).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Window {
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
}

impl FromNode for Window {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["days", "from", "to"]);
        Window {
            days: o.def(d, "days"),
            from: o.or(d, "from", "00:00".to_string()),
            to: o.or(d, "to", "24:00".to_string()),
        }
    }
}

/// No deployments between these instants (RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Freeze {
    pub from: String,
    pub to: String,
    pub reason: String,
}

impl FromNode for Freeze {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["from", "to", "reason"]);
        Freeze {
            from: o.req(d, "from"),
            to: o.req(d, "to"),
            reason: o.def(d, "reason"),
        }
    }
}

/// What a promotion into this environment changes in the spec.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    pub strategy: Option<crate::spec::Strategy>,
    pub replicas: Option<crate::spec::Replicas>,
    /// Per component id: where its router listens here.
    pub listen: BTreeMap<String, String>,
}

impl FromNode for Overrides {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["strategy", "replicas", "listen"]);
        Overrides {
            strategy: o.opt(d, "strategy"),
            replicas: o.opt(d, "replicas"),
            listen: o.def(d, "listen"),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Environment {
    pub name: String,
    /// `None`: nobody is restricted here (every OS user is admin).
    pub roles: Option<Roles>,
    pub approval: Option<Approval>,
    pub windows: Vec<Window>,
    pub freezes: Vec<Freeze>,
    pub overrides: Overrides,
}

impl FromNode for Environment {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &[
                "name",
                "roles",
                "approval",
                "windows",
                "freezes",
                "overrides",
            ],
        );
        Environment {
            name: o.req(d, "name"),
            roles: o.opt(d, "roles"),
            approval: o.opt(d, "approval"),
            windows: o.def(d, "windows"),
            freezes: o.def(d, "freezes"),
            overrides: o.def(d, "overrides"),
        }
    }
}

/// A webhook: a generic JSON body or a Slack-compatible one.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    /// `generic` or `slack`.
    pub format: WebhookFormat,
    /// Which notifications it gets (empty: all): gate_requested, gate_escalated, gate_decided,
    /// deployment_finished.
    pub events: Vec<String>,
}

pub const WEBHOOK_EVENTS: &[&str] = &[
    "gate_requested",
    "gate_escalated",
    "gate_decided",
    "deployment_finished",
];

impl FromNode for Webhook {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["name", "url", "format", "events"]);
        Webhook {
            name: o.req(d, "name"),
            url: o.req(d, "url"),
            format: o.def(d, "format"),
            events: o.def(d, "events"),
        }
    }
}

/// The whole workspace configuration.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Workspace {
    /// In promotion order.
    pub environments: Vec<Environment>,
    pub webhooks: Vec<Webhook>,
    /// Where the local host serves Prometheus metrics, if anywhere (`exporter.listen`).
    pub exporter: Option<ExporterConfig>,
    /// How long finished runs keep their routine analysis lines (`retention.pruneAfter`).
    pub retention: Option<RetentionConfig>,
    /// Where it came from (`None`: no file; the permissive defaults).
    pub source: Option<String>,
}

impl FromNode for Workspace {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(
            n,
            path,
            &["environments", "webhooks", "exporter", "retention"],
        );
        Workspace {
            environments: o.def(d, "environments"),
            webhooks: o.def(d, "webhooks"),
            exporter: o.opt(d, "exporter"),
            retention: o.opt(d, "retention"),
            source: None,
        }
    }
}

/// `exporter:` in cutover.yaml: the long-lived local host serves `/metrics` on `listen`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExporterConfig {
    pub listen: std::net::SocketAddr,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9464)),
        }
    }
}

impl FromNode for ExporterConfig {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["listen"]);
        let text: String = o.req(d, "listen");
        let at = format!("{path}.listen");
        let listen = match text.parse() {
            Ok(a) => a,
            Err(_) => {
                if !d.has_error(&at) {
                    d.field(
                        &at,
                        format!("`{text}` is not an address with a port, such as 127.0.0.1:9464"),
                    );
                }
                ExporterConfig::default().listen
            }
        };
        ExporterConfig { listen }
    }
}

/// `retention:` in cutover.yaml: `cutover prune` (run it from cron or a systemd timer) replaces
/// the routine analysis lines of runs that finished more than `pruneAfter` ago by their counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct RetentionConfig {
    pub prune_after: crate::spec::Millis,
}

impl FromNode for RetentionConfig {
    fn decode(n: &Node, path: &str, d: &mut Decoder) -> Self {
        let o = d.obj(n, path, &["pruneAfter"]);
        RetentionConfig {
            prune_after: o.req(d, "pruneAfter"),
        }
    }
}

const DAYS: &[&str] = &["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes since midnight from `HH:MM` (24:00 allowed as the end of a day).
pub fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

/// Unknown webhook names that get a did-you-mean (each one measures every webhook name).
const MAX_NOTIFY_HINTS: usize = 16;
/// Webhook names listed in a message about an unknown one.
const LISTED_HOOKS: usize = 8;

/// The end of a message about an unknown webhook: what is defined (the first few names).
fn defined_hooks(hooks: &[&str]) -> String {
    match hooks.len() {
        0 => "; no webhooks are defined".into(),
        n if n <= LISTED_HOOKS => format!("; defined: {}", hooks.join(", ")),
        n => format!(
            "; defined: {} and {} more",
            hooks[..LISTED_HOOKS].join(", "),
            n - LISTED_HOOKS
        ),
    }
}

fn check(ws: &Workspace, d: &mut Decoder) {
    let mut seen = std::collections::BTreeSet::new();
    let hooks: Vec<&str> = ws.webhooks.iter().map(|w| w.name.as_str()).collect();
    let known: std::collections::HashSet<&str> = hooks.iter().copied().collect();
    // Hostile input (thousands of webhooks and of unknown names) must stay linear: only the first
    // few unknown names get a suggestion, and a message lists a few of the defined names.
    let mut hints_left = MAX_NOTIFY_HINTS;
    for (i, e) in ws.environments.iter().enumerate() {
        let p = format!("environments[{i}]");
        if e.name.trim().is_empty() {
            d.field(&join(&p, "name"), "must not be empty");
        } else if !seen.insert(e.name.clone()) {
            d.field(
                &join(&p, "name"),
                format!("environment `{}` is listed twice", e.name),
            );
        }
        if let Some(a) = &e.approval {
            let ap = join(&p, "approval");
            if a.approvers.as_ref().is_some_and(Who::is_empty) {
                d.field(
                    &join(&ap, "approvers"),
                    "names nobody: give users or groups, or leave it out (approver and admin roles approve)",
                );
            }
            if let Some(users) = a.approvers.as_ref().map(|w| &w.users) {
                if a.approvers.as_ref().is_some_and(|w| w.groups.is_empty())
                    && (users.len() as u32) < a.required
                {
                    d.field(
                        &join(&ap, "required"),
                        format!(
                            "{} distinct approvals are required but approvers names only {} user(s)",
                            a.required,
                            users.len()
                        ),
                    );
                }
            }
            let mut last = 0;
            for (j, s) in a.escalation.iter().enumerate() {
                let sp = format!("{ap}.escalation[{j}]");
                if s.after.0 <= last && j > 0 {
                    d.field(
                        &join(&sp, "after"),
                        "escalation steps must come later and later",
                    );
                }
                last = s.after.0;
                if s.action.is_some()
                    && !d.has_error(&join(&sp, "action"))
                    && j + 1 != a.escalation.len()
                {
                    d.field(
                        &join(&sp, "action"),
                        "an action decides the gate, so it must be the last step",
                    );
                }
                for (k, n) in s.notify.iter().enumerate() {
                    if !known.contains(n.as_str()) {
                        let suggestion = if hints_left > 0 {
                            hints_left -= 1;
                            crate::spec::decode::did_you_mean(n, &hooks)
                        } else {
                            None
                        };
                        let hint = suggestion
                            .map(|h| format!("; did you mean `{h}`?"))
                            .unwrap_or_else(|| defined_hooks(&hooks));
                        d.field(
                            &format!("{sp}.notify[{k}]"),
                            format!("no webhook named `{n}`{hint}"),
                        );
                    }
                }
                if s.notify.is_empty() && s.add_approvers.is_empty() && s.action.is_none() {
                    d.field(&sp, "does nothing: give notify, addApprovers or action");
                }
            }
            let late = a
                .timeout
                .and_then(|t| a.escalation.iter().find(|s| s.after > t).map(|s| (t, s)));
            if let Some((t, s)) = late {
                d.field(
                    &join(&ap, "escalation"),
                    format!(
                        "a step after {} comes after the gate's timeout ({})",
                        crate::spec::human(s.after.0),
                        crate::spec::human(t.0)
                    ),
                );
            }
        }
        for (j, w) in e.windows.iter().enumerate() {
            let wp = format!("{p}.windows[{j}]");
            for (k, day) in w.days.iter().enumerate() {
                if !DAYS.contains(&day.to_lowercase().as_str()) {
                    d.field(
                        &format!("{wp}.days[{k}]"),
                        format!("unknown day `{day}`; expected {}", DAYS.join(", ")),
                    );
                }
            }
            for (key, v) in [("from", &w.from), ("to", &w.to)] {
                if minutes(v).is_none() {
                    d.field(
                        &join(&wp, key),
                        format!("`{v}` is not a time of day HH:MM (UTC)"),
                    );
                }
            }
            if let (Some(a), Some(b)) = (minutes(&w.from), minutes(&w.to)) {
                if a >= b {
                    d.field(&wp, "from must be before to (a window within one UTC day)");
                }
            }
        }
        for (j, f) in e.freezes.iter().enumerate() {
            let fp = format!("{p}.freezes[{j}]");
            let a = chrono::DateTime::parse_from_rfc3339(&f.from);
            let b = chrono::DateTime::parse_from_rfc3339(&f.to);
            if a.is_err() {
                d.field(
                    &join(&fp, "from"),
                    "not an RFC 3339 time (2026-12-24T00:00:00Z)",
                );
            }
            if b.is_err() {
                d.field(
                    &join(&fp, "to"),
                    "not an RFC 3339 time (2026-12-27T00:00:00Z)",
                );
            }
            if let (Ok(a), Ok(b)) = (a, b) {
                if a >= b {
                    d.field(&fp, "from must be before to");
                }
            }
        }
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, w) in ws.webhooks.iter().enumerate() {
        let p = format!("webhooks[{i}]");
        if !names.insert(w.name.clone()) {
            d.field(
                &join(&p, "name"),
                format!("webhook `{}` is listed twice", w.name),
            );
        }
        if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
            d.field(&join(&p, "url"), "must be an http:// or https:// URL");
        }
        for (k, ev) in w.events.iter().enumerate() {
            if !WEBHOOK_EVENTS.contains(&ev.as_str()) {
                d.field(
                    &format!("{p}.events[{k}]"),
                    format!(
                        "unknown event `{ev}`; expected {}",
                        WEBHOOK_EVENTS.join(", ")
                    ),
                );
            }
        }
    }
}

/// A configuration file that could not be read or is invalid: the same shape as a spec's.
pub type ConfigError = crate::spec::LoadError;

/// Parse and check configuration text.
pub fn parse(text: &str) -> Result<Workspace, Vec<Diagnostic>> {
    let node = yaml::check_bytes(text.as_bytes())
        .and_then(yaml::parse)
        .map_err(|e| vec![crate::spec::syntax_diag(e)])?;
    let mut d = Decoder::default();
    let ws = Workspace::decode(&node, "", &mut d);
    check(&ws, &mut d);
    if d.diags.is_empty() {
        Ok(ws)
    } else {
        Err(d.diags)
    }
}

/// Load a configuration file.
pub fn load_file(path: &Path) -> Result<Workspace, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut ws = parse(&text).map_err(|diags| ConfigError::Invalid {
        path: shown.clone(),
        diags,
    })?;
    ws.source = Some(shown);
    Ok(ws)
}

/// Where the configuration is: `--config`/`CUTOVER_CONFIG` (must exist), else `./cutover.yaml`,
/// else `$XDG_CONFIG_HOME/cutover/cutover.yaml` (or `~/.config/...`), else none.
pub fn locate(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    let local = PathBuf::from("cutover.yaml");
    if local.is_file() {
        return Some(local);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|x| !x.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    let xdg = base.join("cutover").join("cutover.yaml");
    xdg.is_file().then_some(xdg)
}

/// The workspace: the located file, or the permissive defaults when there is none.
pub fn load(given: Option<&Path>) -> Result<Workspace, ConfigError> {
    match locate(given) {
        Some(p) => load_file(&p),
        None => Ok(Workspace::default()),
    }
}

impl Workspace {
    pub fn env(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    /// The environment after `name` in promotion order.
    pub fn next_env(&self, name: &str) -> Option<&Environment> {
        let i = self.environments.iter().position(|e| e.name == name)?;
        self.environments.get(i + 1)
    }

    pub fn webhook(&self, name: &str) -> Option<&Webhook> {
        self.webhooks.iter().find(|w| w.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: &str = "
environments:
  - name: staging
  - name: production
    roles:                       # viewer, operator, approver, admin: each {users: [...], groups: [...]}
      operator: {groups: [deployers]}
      admin: {users: [alice]}
    approval:
      beforeStart: false         # a gate before the first change, besides the strategy's own gates
      approvers: {users: [alice, bob], groups: [sre]}
      required: 2                # distinct people
      allowSelfApproval: false
      timeout: 2h
      escalation:
        - {after: 30m, notify: [oncall-webhook], addApprovers: {users: [carol]}}
        - {after: 2h, action: reject}   # reject | approve | rollback
webhooks:
  - {name: oncall-webhook, url: 'http://127.0.0.1:9/hook', format: slack}
";

    #[test]
    fn the_issues_example_loads() {
        let ws = parse(ISSUE).unwrap();
        assert_eq!(ws.environments.len(), 2);
        let p = ws.env("production").unwrap();
        let a = p.approval.as_ref().unwrap();
        assert_eq!(a.required, 2);
        assert!(!a.allow_self_approval);
        assert_eq!(a.timeout, Some(Millis(2 * 3600 * 1000)));
        assert_eq!(a.escalation[0].after, Millis(30 * 60 * 1000));
        assert_eq!(a.escalation[0].add_approvers.users, vec!["carol"]);
        assert_eq!(a.escalation[1].action, Some(EscalationAction::Reject));
        assert_eq!(p.roles.as_ref().unwrap().admin.users, vec!["alice"]);
        assert!(ws.env("staging").unwrap().roles.is_none());
        assert_eq!(ws.next_env("staging").unwrap().name, "production");
        assert!(ws.next_env("production").is_none());
    }

    #[test]
    fn mistakes_are_reported_like_spec_errors() {
        let bad = "
environments:
  - name: prod
    aproval: {required: 2}
  - name: prod
    approval:
      required: 0
      escalation:
        - {after: 2h, action: explode}
        - {after: 1h, notify: [pager]}
    windows:
      - {days: [mon, funday], from: '17:00', to: '09:00'}
webhooks:
  - {name: pagr, url: 'ftp://x', format: teams}
";
        let diags = parse(bad).unwrap_err();
        let text: Vec<String> = diags.iter().map(|d| d.render("cutover.yaml")).collect();
        let all = text.join("\n");
        for want in [
            "cutover.yaml:4:5: environments[0].aproval: unknown key `aproval`; did you mean `approval`?",
            "environments[1].name: environment `prod` is listed twice",
            "environments[1].approval.required: must be at least 1",
            "unknown action `explode`",
            "escalation[1].after: escalation steps must come later and later",
            "no webhook named `pager`; did you mean `pagr`?",
            "environments[1].windows[0].days[1]: unknown day `funday`",
            "from must be before to",
            "webhooks[0].url: must be an http:// or https:// URL",
            "unknown format `teams`",
        ] {
            assert!(all.contains(want), "missing `{want}` in:\n{all}");
        }
    }

    #[test]
    fn many_unknown_webhook_names_are_checked_in_linear_time() {
        // Found in the fuzzing review (issue 11): each unknown name was measured against every
        // webhook and its message listed them all, so 20,000 of each took minutes and gigabytes.
        // The checks are run directly so the YAML reader's debug-build cost is not timed.
        let ws = Workspace {
            environments: vec![Environment {
                name: "prod".into(),
                approval: Some(Approval {
                    escalation: vec![Escalation {
                        after: Millis(60_000),
                        notify: (0..20_000).map(|i| format!("x{i}")).collect(),
                        ..Escalation::default()
                    }],
                    ..Approval::default()
                }),
                ..Environment::default()
            }],
            webhooks: (0..20_000)
                .map(|i| Webhook {
                    name: format!("h{i}"),
                    url: "http://127.0.0.1:1/".into(),
                    ..Webhook::default()
                })
                .collect(),
            ..Workspace::default()
        };
        let mut d = Decoder::default();
        let started = crate::spec::thread_cpu_time();
        check(&ws, &mut d);
        let took = crate::spec::thread_cpu_time() - started;
        assert!(took < std::time::Duration::from_secs(5), "{took:?}");
        assert_eq!(d.diags.len(), 20_000);
        assert_eq!(
            d.diags[0].to_string(),
            "environments[0].approval.escalation[0].notify[0]: no webhook named `x0`; \
             did you mean `h0`?"
        );
        assert_eq!(
            d.diags[19_999].to_string(),
            "environments[0].approval.escalation[0].notify[19999]: no webhook named `x19999`; \
             defined: h0, h1, h2, h3, h4, h5, h6, h7 and 19992 more"
        );
        // A short list is given whole.
        assert_eq!(defined_hooks(&["a", "b"]), "; defined: a, b");
        assert_eq!(defined_hooks(&[]), "; no webhooks are defined");
    }

    /// Property tests: any text is a configuration or diagnostics (with a place for what YAML
    /// cannot read); generated configurations are read as written and survive JSON.
    mod props {
        use proptest::prelude::*;

        use super::*;

        fn env() -> impl Strategy<Value = (String, String)> {
            let users = prop::collection::vec("[a-z]{1,8}", 1..4);
            (
                "[a-z][a-z0-9-]{0,10}",
                users,
                any::<prop::sample::Index>(),
                1u32..600,
                prop::sample::select(vec!["mon", "tue", "sat"]),
                (0u32..12, 12u32..24),
            )
                .prop_map(|(name, users, required, mins, day, (from, to))| {
                    // No more approvals required than users named (that is an error).
                    let required = required.index(users.len()) + 1;
                    let text = format!(
                        "  - name: {name}\n    approval:\n      approvers: {{users: [{}]}}\n      \
                         required: {required}\n      timeout: {mins}m\n    windows:\n      \
                         - {{days: [{day}], from: '{from:02}:00', to: '{to:02}:30'}}\n",
                        users.join(", ")
                    );
                    (name, text)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(128))]

            #[test]
            fn any_text_is_a_configuration_or_diagnostics(text in "\\PC{0,200}") {
                if let Err(diags) = parse(&text) {
                    prop_assert!(!diags.is_empty());
                    if let Err(e) = yaml::check_bytes(text.as_bytes()).and_then(yaml::parse) {
                        prop_assert!(e.pos.is_some() || e.message.contains("empty"), "{:?}", e);
                    }
                    for d in &diags {
                        let shown = d.render("cutover.yaml");
                        prop_assert!(shown.starts_with("cutover.yaml:"), "{}", shown);
                    }
                }
            }

            #[test]
            fn generated_configurations_read_as_written(envs in prop::collection::vec(env(), 1..4)) {
                let mut names: Vec<&str> = envs.iter().map(|(n, _)| n.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                prop_assume!(names.len() == envs.len());
                let text = format!(
                    "environments:\n{}",
                    envs.iter().map(|(_, t)| t.as_str()).collect::<String>()
                );
                let ws = parse(&text).map_err(|d| TestCaseError::fail(format!("{d:?}\n{text}")))?;
                prop_assert_eq!(ws.environments.len(), envs.len());
                for ((name, _), e) in envs.iter().zip(&ws.environments) {
                    prop_assert_eq!(&e.name, name);
                }
                let json = serde_json::to_string(&ws).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let back: Workspace = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(back, ws);
            }
        }
    }

    #[test]
    fn no_file_means_permissive_defaults() {
        let ws = Workspace::default();
        assert!(ws.env("production").is_none());
        assert!(ws.source.is_none());
    }
}
