//! Validations: running the spec's pre-deployment, post-deployment, health, performance and
//! security checks against a live deployment, each with its evidence, and scoring them.
//!
//! Owns: [`CheckResult`], [`Report`] (success and overall score 0-100, as the seed's
//! `validateDeployment`), and dispatching each item to its check. Must not touch: deployment
//! decisions (the engine decides what a failed check means) or the store.

pub mod checks;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::provider::{Provider, RevisionKey};
use crate::spec::{CheckItem, Spec};

/// pass, fail or error — a check that could not run is never a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    Error,
    /// Not applicable here (e.g. network checks in a dry run); not counted in the score.
    Skipped,
}

/// One check's result with what was seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// preDeployment, postDeployment, healthChecks, performance, security
    pub category: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub component: Option<String>,
    pub status: CheckStatus,
    pub evidence: String,
    pub duration_ms: u64,
}

/// All results and the overall verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub deployment: String,
    pub success: bool,
    /// Share of checks that passed, 0-100 (100 when there is nothing to check).
    pub overall_score: u32,
    pub checks: Vec<CheckResult>,
}

impl Report {
    pub fn new(deployment: &str, checks: Vec<CheckResult>) -> Report {
        let counted = checks
            .iter()
            .filter(|c| c.status != CheckStatus::Skipped)
            .count();
        let passed = checks
            .iter()
            .filter(|c| c.status == CheckStatus::Pass)
            .count();
        let score = if counted == 0 {
            100
        } else {
            ((passed as f64 * 100.0) / counted as f64).round() as u32
        };
        Report {
            deployment: deployment.to_string(),
            success: passed == counted,
            overall_score: score,
            checks,
        }
    }
}

/// What the checks run against.
#[derive(Clone)]
pub struct Target {
    pub spec: Spec,
    pub provider: Option<Arc<dyn Provider>>,
    /// The serving revision of each component.
    pub revisions: BTreeMap<String, RevisionKey>,
    /// Components already serving in the environment before this run (for pre-deployment).
    pub serving: Vec<String>,
    /// The cutover executable (for `{self}` in commands).
    pub exe: std::path::PathBuf,
}

/// Run one category's items.
pub async fn run_category(
    category: &str,
    items: &[CheckItem],
    target: &Target,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for item in items {
        let comps: Vec<Option<String>> = match (&item.component, item.kind.as_str()) {
            (Some(c), _) => vec![Some(c.clone())],
            // Checks about every component.
            (
                None,
                "dependencies" | "listen-free" | "command-present" | "metric" | "requires-auth"
                | "tls",
            ) if item.url.is_none() && item.address.is_none() => target
                .spec
                .components
                .iter()
                .map(|c| Some(c.id.clone()))
                .collect(),
            (None, _) => vec![None],
        };
        for comp in comps {
            let t0 = std::time::Instant::now();
            let (status, evidence) = checks::run(item, comp.as_deref(), target).await;
            out.push(CheckResult {
                category: category.to_string(),
                name: item.label(),
                kind: item.kind.clone(),
                component: comp,
                status,
                evidence,
                duration_ms: t0.elapsed().as_millis() as u64,
            });
        }
    }
    out
}

/// Everything `cutover verify` runs: post-deployment, health, performance and security checks.
pub async fn verify(target: &Target) -> Report {
    let v = &target.spec.validation;
    let mut all = Vec::new();
    all.extend(run_category("postDeployment", &v.post_deployment, target).await);
    all.extend(run_category("healthChecks", &v.health_checks, target).await);
    all.extend(run_category("performance", &v.performance, target).await);
    all.extend(run_category("security", &v.security, target).await);
    Report::new(&target.spec.id, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: CheckStatus) -> CheckResult {
        CheckResult {
            category: "c".into(),
            name: "n".into(),
            kind: "k".into(),
            component: None,
            status,
            evidence: String::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn score_counts_only_passes() {
        let rep = Report::new(
            "d",
            vec![
                r(CheckStatus::Pass),
                r(CheckStatus::Fail),
                r(CheckStatus::Error),
                r(CheckStatus::Pass),
            ],
        );
        assert_eq!(rep.overall_score, 50);
        assert!(!rep.success);
        let rep = Report::new("d", vec![]);
        assert_eq!(rep.overall_score, 100);
        assert!(rep.success);
    }
}
