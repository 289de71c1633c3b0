//! Promotion between environments: may the revision verified in one environment go to another,
//! and what does the spec look like there.
//!
//! Owns: the promotion rules (the source succeeded; the target is next in the pipeline, unless
//! an admin overrides with a reason; the target's windows are open) and applying the target
//! environment's overrides. Must not touch: running the deployment (the engine does that).

use chrono::{DateTime, Utc};

use super::config::Workspace;
use super::window::Closed;
use crate::spec::{Diagnostic, ValidSpec};
use crate::store::Outcome;

/// Why a promotion may not go ahead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Blocked {
    /// A promotion rule: where it comes from, where it goes, in what order.
    #[error("{0}")]
    Rule(String),
    /// The target environment is frozen or outside its windows.
    #[error(transparent)]
    Closed(#[from] Closed),
}

/// Where a promotion comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub from_env: String,
    pub source_run: i64,
    /// Given when an admin promotes out of pipeline order.
    pub override_reason: Option<String>,
}

/// What a person asks: promote `deployment` from one environment to another.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ask {
    pub deployment: String,
    pub from: String,
    pub to: String,
    pub override_reason: Option<String>,
}

/// The facts a promotion is judged on.
pub struct Request<'a> {
    pub deployment: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// The source environment's latest run of the deployment: its id and outcome.
    pub source: Option<(i64, Option<Outcome>)>,
    pub override_reason: Option<&'a str>,
    /// Whether the person holds the admin role in the target environment.
    pub admin: bool,
    pub now: DateTime<Utc>,
}

/// Whether the promotion may go ahead; every refusal explains itself.
pub fn check(ws: &Workspace, r: &Request) -> Result<i64, Blocked> {
    let source_run = rules(ws, r).map_err(Blocked::Rule)?;
    if let Some(e) = ws.env(r.to) {
        super::window::open(e, r.now)?;
    }
    Ok(source_run)
}

/// The pipeline's rules; the source run when they allow the promotion.
fn rules(ws: &Workspace, r: &Request) -> Result<i64, String> {
    let names: Vec<&str> = ws.environments.iter().map(|e| e.name.as_str()).collect();
    if r.from == r.to {
        return Err(format!("--from and --to are both {}", r.to));
    }
    if !names.is_empty() {
        for env in [r.from, r.to] {
            if !names.contains(&env) {
                return Err(format!(
                    "no environment `{env}` in {} (pipeline: {})",
                    ws.source.as_deref().unwrap_or("the configuration"),
                    names.join(" -> ")
                ));
            }
        }
    }
    let source_run = match r.source {
        None => {
            return Err(format!(
                "{} has never been deployed to {}: nothing verified there to promote",
                r.deployment, r.from
            ))
        }
        Some((run, Some(Outcome::Succeeded))) => run,
        Some((run, Some(outcome))) => {
            return Err(format!(
                "{} in {} did not succeed (its latest run #{run} {outcome}): only a verified revision is promoted",
                r.deployment, r.from
            ))
        }
        Some((run, None)) => {
            return Err(format!(
                "{} in {} is still running (run #{run}): promote once it has succeeded",
                r.deployment, r.from
            ))
        }
    };
    if !names.is_empty() {
        let next = ws.next_env(r.from).map(|e| e.name.as_str());
        if next != Some(r.to) {
            let order = format!("pipeline: {}", names.join(" -> "));
            let expected = match next {
                Some(n) => format!("the next environment after {} is {n}", r.from),
                None => format!("{} is the last environment", r.from),
            };
            match (r.override_reason, r.admin) {
                (Some(reason), true) if !reason.trim().is_empty() => {}
                (Some(_), false) => {
                    return Err(format!(
                        "{} is not next after {} ({expected}; {order}); overriding that needs the admin role in {}",
                        r.to, r.from, r.to
                    ))
                }
                _ => {
                    return Err(format!(
                        "{} is not next after {} ({expected}; {order}); an admin can override with --override-reason TEXT",
                        r.to, r.from
                    ))
                }
            }
        }
    }
    Ok(source_run)
}

/// The spec as it runs in the target environment: the same revision (version, commands,
/// configuration) with the environment's overrides, checked again: overrides that break a rule
/// (a blue-green spec given `strategy: canary`) refuse the promotion with the rule's message.
pub fn retarget(spec: &ValidSpec, ws: &Workspace, to: &str) -> Result<ValidSpec, Vec<Diagnostic>> {
    spec.amend(|s| {
        s.environment = to.to_string();
        if let Some(e) = ws.env(to) {
            let o = &e.overrides;
            if let Some(st) = o.strategy {
                s.strategy = st;
            }
            for c in &mut s.components {
                if let Some(r) = o.replicas {
                    c.replicas = r;
                }
                if let Some(l) = o.listen.get(&c.id) {
                    c.listen = Some(l.clone());
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::config::parse;

    fn ws() -> Workspace {
        parse(
            "environments:
  - name: dev
  - name: staging
  - name: production
    freezes:
      - {from: '2026-12-24T00:00:00Z', to: '2026-12-27T00:00:00Z', reason: holidays}
    overrides: {replicas: 4, listen: {web: '127.0.0.1:28080'}}
",
        )
        .unwrap()
    }

    fn req<'a>(from: &'a str, to: &'a str, src: Option<(i64, Option<Outcome>)>) -> Request<'a> {
        Request {
            deployment: "shop",
            from,
            to,
            source: src,
            override_reason: None,
            admin: false,
            now: DateTime::parse_from_rfc3339("2026-11-26T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn every_refusal_explains_itself() {
        let ws = ws();
        assert_eq!(
            check(
                &ws,
                &req("staging", "production", Some((4, Some(Outcome::Succeeded))))
            ),
            Ok(4)
        );
        let e = check(
            &ws,
            &req(
                "staging",
                "production",
                Some((4, Some(Outcome::RolledBack))),
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("did not succeed (its latest run #4 rolled_back)"),
            "{e}"
        );
        let e = check(&ws, &req("staging", "production", None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("never been deployed to staging"), "{e}");
        let e = check(&ws, &req("staging", "production", Some((5, None))))
            .unwrap_err()
            .to_string();
        assert!(e.contains("still running"), "{e}");
        let e = check(
            &ws,
            &req("dev", "production", Some((1, Some(Outcome::Succeeded)))),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains(
                "the next environment after dev is staging; pipeline: dev -> staging -> production"
            ),
            "{e}"
        );
        assert!(e.contains("--override-reason"), "{e}");
        let mut r = req("dev", "production", Some((1, Some(Outcome::Succeeded))));
        r.override_reason = Some("hotfix for INC-42");
        assert!(check(&ws, &r)
            .unwrap_err()
            .to_string()
            .contains("needs the admin role"));
        r.admin = true;
        assert_eq!(check(&ws, &r), Ok(1));
        let e = check(
            &ws,
            &req("staging", "qa", Some((1, Some(Outcome::Succeeded)))),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("no environment `qa`"), "{e}");
        let mut r = req("staging", "production", Some((4, Some(Outcome::Succeeded))));
        r.now = DateTime::parse_from_rfc3339("2026-12-25T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            check(&ws, &r).unwrap_err().to_string(),
            "production is frozen until 2026-12-27 00:00 UTC: holidays"
        );
    }

    #[test]
    fn the_target_gets_its_overrides() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/specs/demo/local-v2.yaml"
        ))
        .unwrap();
        let spec = crate::spec::load_str(&text).unwrap();
        let s = retarget(&spec, &ws(), "production").unwrap();
        assert_eq!(s.environment, "production");
        assert_eq!(s.version, spec.version);
        assert_eq!(s.components[0].replicas.get(), 4);
        assert_eq!(s.components[0].listen.as_deref(), Some("127.0.0.1:28080"));
        assert_eq!(
            s.components[0].run, spec.components[0].run,
            "the same command"
        );
    }

    #[test]
    fn overrides_that_break_a_rule_refuse_with_the_rules_message() {
        let ws = parse(
            "environments:
  - name: staging
  - name: production
    overrides: {strategy: canary}
",
        )
        .unwrap();
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/specs/blue-green.yaml"
        ))
        .unwrap();
        let spec = crate::spec::load_str(&text).unwrap();
        let diags = retarget(&spec, &ws, "production").unwrap_err();
        let text: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            text,
            ["metadata.blueGreenConfig: configures blue-green, but strategy is canary; remove it or change strategy"]
        );
    }
}
