//! `cutover plan SPEC --manifests`: per plan step, the objects the Kubernetes provider applies at
//! that step, so a reviewer reads them before anything changes.
//!
//! Owns: walking a plan's steps and naming, per step, what is applied (built by
//! `cutover_kube::manifest` from `provider::kubernetes::workload`) and what is retired.
//! Must not touch: the cluster, the store or any run.
//!
//! Names hash the revision key the store assigns at apply (`component@version.rN`), which a plan
//! cannot know: the new revision is shown as `component@version.planned`, and a previous one
//! never recorded as `component@previous`. The run is shown as `ID#N`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use cutover::plan::{Action, Plan};
use cutover::provider::kubernetes::workload::{gateway, stamp, traffic, workload};
use cutover::spec::{Component, Strategy, ValidSpec};
use cutover::store::RevisionRow;
use cutover_kube::manifest::{self as m, Backend};
use cutover_kube::ratio;
use cutover_kube::workload::{Traffic, Workload};

/// What one step applies and retires.
#[derive(Debug, Clone, Serialize)]
pub struct StepObjects {
    /// 1-based, as `plan` prints it.
    pub step: usize,
    pub component: String,
    pub description: String,
    /// What the step does to traffic or why it applies nothing.
    pub note: Option<String>,
    pub apply: Vec<Value>,
    /// `Deployment/name` of revisions retired: scaled to 0 (if not already), annotated
    /// `cutover.dev/retired` and kept for a rollback (the 2 newest per component).
    pub retire: Vec<String>,
}

/// One component's revisions as the steps move them.
struct Comp<'a> {
    comp: &'a Component,
    new_key: String,
    old: Option<(String, String)>,
    new_replicas: u32,
    old_replicas: u32,
    started: bool,
}

/// Whether the Kubernetes provider's objects can be shown or sent for `spec` (read from
/// `shown`): none unless its provider is kubernetes, and none for a spec the provider refuses.
/// `Some(exit code)`, with the reasons printed after `what`, when they cannot.
pub fn kube_only(spec: &ValidSpec, shown: &str, what: &str) -> Option<u8> {
    if spec.infrastructure.provider != cutover::spec::ProviderKind::Kubernetes {
        eprintln!(
            "{what}; {shown} has provider {} (set infrastructure.provider: kubernetes)",
            spec.infrastructure.provider
        );
        return Some(super::INVALID);
    }
    let refused = cutover::spec::kubernetes::refusals(spec);
    if refused.is_empty() {
        return None;
    }
    for d in &refused {
        eprintln!("{}", d.render(shown));
    }
    eprintln!(
        "{shown}: the Kubernetes provider refuses this spec ({} problem(s)), so it applies nothing",
        refused.len()
    );
    Some(super::INVALID)
}

/// The revision key shown for the new revision of `component` (see the module doc).
pub fn planned_key(component: &str, version: &str) -> String {
    format!("{component}@{version}.planned")
}

/// The objects of every step of `plan`. `previous` is what the store says serves now;
/// `assume_previous` shows a previous revision even when none is recorded (the strategy's plan).
pub fn for_plan(
    spec: &ValidSpec,
    plan: &Plan,
    previous: &BTreeMap<String, RevisionRow>,
    assume_previous: bool,
) -> Vec<StepObjects> {
    let mode = traffic(spec);
    let gw = gateway(spec);
    let ns = spec.infrastructure.namespace.clone();
    let run = format!("{}#N", spec.id);
    let mut comps: BTreeMap<&str, Comp> = BTreeMap::new();
    for c in &spec.components {
        let old = match previous.get(&c.id) {
            Some(r) => Some((r.rev_key.clone(), r.version.clone(), r.replicas.get())),
            None if assume_previous => Some((
                format!("{}@previous", c.id),
                "previous".to_string(),
                c.replicas.get(),
            )),
            None => None,
        };
        comps.insert(
            c.id.as_str(),
            Comp {
                comp: c,
                new_key: planned_key(&c.id, &spec.version),
                old_replicas: old.as_ref().map(|o| o.2).unwrap_or(0),
                old: old.map(|(k, v, _)| (k, v)),
                new_replicas: 0,
                started: false,
            },
        );
    }
    let mut out = Vec::new();
    for s in &plan.steps {
        let mut so = StepObjects {
            step: s.index + 1,
            component: s.component.clone(),
            description: s.description.clone(),
            note: None,
            apply: Vec::new(),
            retire: Vec::new(),
        };
        let Some(c) = comps.get_mut(s.component.as_str()) else {
            out.push(so);
            continue;
        };
        let st = stamp(
            &run,
            u32::try_from(s.index).ok(),
            c.old.as_ref().map(|o| o.0.as_str()),
        );
        let new_w = workload(spec, c.comp, &c.new_key, &spec.version, st.clone());
        let old_w: Option<Workload> = c
            .old
            .as_ref()
            .map(|(k, v)| workload(spec, c.comp, k, v, st.clone()));
        let name =
            |w: &Workload| cutover_kube::labels::revision_name(&w.component, &w.revision_key);
        let stamped = |mut v: Value| {
            m::stamp(&mut v, &st);
            v
        };
        let full = new_w.replicas;
        let port = new_w.ports.first().map(|p| p.number).unwrap_or(8080);
        match &s.action {
            Action::PreChecks
            | Action::PostChecks
            | Action::Analyse { .. }
            | Action::Gate { .. } => {
                so.note = Some("nothing applied at this step".into());
            }
            Action::StartRevision { replicas } => {
                so.apply.push(m::deployment(&new_w, *replicas));
                c.new_replicas = *replicas;
                if !c.started {
                    c.started = true;
                    match mode {
                        Traffic::ReplicaRatio => so.apply.push(stamped(m::stable_service(
                            &c.comp.id,
                            &spec.id,
                            &new_w.ports,
                        ))),
                        Traffic::GatewayApi => {
                            so.apply.push(stamped(m::revision_service(&new_w)));
                            if let Some(o) = &old_w {
                                so.apply.push(stamped(m::revision_service(o)));
                            }
                        }
                        Traffic::ActivePreview => so.apply.push(stamped(m::preview_service(
                            &c.comp.id,
                            &spec.id,
                            &new_w.ports,
                            &c.new_key,
                        ))),
                    }
                }
                if mode == Traffic::ReplicaRatio
                    && c.old.is_some()
                    && spec.strategy == Strategy::Canary
                {
                    so.note = Some(format!(
                        "the stable Service selects both revisions: {} new / {} old ready pods serve {:.1}% on the new one",
                        c.new_replicas,
                        c.old_replicas,
                        ratio::achieved(c.new_replicas, c.old_replicas)
                    ));
                }
            }
            Action::ScaleNew { replicas } => {
                so.apply.push(m::deployment(&new_w, *replicas));
                c.new_replicas = *replicas;
            }
            Action::ScaleOld { replicas } => {
                if let Some(o) = &old_w {
                    so.apply
                        .push(m::scale(&o.component, &o.revision_key, *replicas));
                }
                c.old_replicas = *replicas;
            }
            Action::StopOld => {
                if let Some(o) = &old_w {
                    so.apply.push(m::scale(&o.component, &o.revision_key, 0));
                }
                c.old_replicas = 0;
                so.note = Some("the old revision scales to zero before the new one starts".into());
            }
            Action::ShiftTraffic { percent } => {
                let p = *percent;
                match (mode, &gw) {
                    (Traffic::GatewayApi, Some(g)) => {
                        let mut backends = Vec::new();
                        if let Some(o) = &old_w {
                            backends.push(Backend {
                                service: name(o),
                                port,
                                weight: 100 - p,
                            });
                        }
                        backends.push(Backend {
                            service: name(&new_w),
                            port,
                            weight: p,
                        });
                        so.apply
                            .push(stamped(m::http_route(&c.comp.id, &spec.id, g, &backends)));
                        so.note = Some(format!(
                            "HTTPRoute weights set exactly: {p}% on the new revision"
                        ));
                    }
                    (Traffic::ActivePreview, _) if p == 100 => {
                        so.apply.push(stamped(m::active_service(
                            &c.comp.id,
                            &spec.id,
                            &new_w.ports,
                            &c.new_key,
                        )));
                        so.note = Some("the active Service's selector moves to the new revision once it is fully available".into());
                    }
                    (Traffic::ActivePreview, _) => {
                        so.note = Some(format!(
                            "refused: {p}% needs infrastructure.trafficRouting.gatewayAPI"
                        ));
                    }
                    _ if spec.strategy == Strategy::Canary && c.old.is_some() => {
                        let (new, old) = ratio::counts(full, p, true);
                        so.apply.push(m::deployment(&new_w, new));
                        if let Some(o) = &old_w {
                            so.apply.push(m::scale(&o.component, &o.revision_key, old));
                        }
                        c.new_replicas = new;
                        c.old_replicas = old;
                        so.note = Some(format!(
                            "weight asked {p}%, achieved {:.1}% ({new} new / {old} old ready pods behind the stable Service)",
                            ratio::achieved(new, old)
                        ));
                    }
                    _ => {
                        so.note = Some(format!(
                            "nothing applied: the stable Service sends traffic to ready pods ({} new / {} old: {:.1}% on the new revision)",
                            c.new_replicas,
                            c.old_replicas,
                            ratio::achieved(c.new_replicas, c.old_replicas)
                        ));
                    }
                }
            }
            Action::RetireOld => {
                if let Some(o) = &old_w {
                    if let (Traffic::GatewayApi, Some(g)) = (mode, &gw) {
                        let only_new = [Backend {
                            service: name(&new_w),
                            port,
                            weight: 100,
                        }];
                        so.apply
                            .push(stamped(m::http_route(&c.comp.id, &spec.id, g, &only_new)));
                    }
                    if c.old_replicas > 0 {
                        so.apply.push(m::scale(&o.component, &o.revision_key, 0));
                    }
                    so.retire.push(format!("Deployment/{}", name(o)));
                }
                c.old_replicas = 0;
            }
        }
        if let Some(ns) = &ns {
            so.apply = so
                .apply
                .into_iter()
                .map(|v| m::with_namespace(v, ns))
                .collect();
        }
        out.push(so);
    }
    out
}

/// The steps as YAML under `# step N: [component] description` headers.
pub fn render(steps: &[StepObjects]) -> String {
    let mut out = String::new();
    for s in steps {
        out.push_str(&format!(
            "# step {}: [{}] {}\n",
            s.step, s.component, s.description
        ));
        if let Some(n) = &s.note {
            out.push_str(&format!("# {n}\n"));
        }
        out.push_str(&m::to_yaml(&s.apply));
        for d in &s.retire {
            out.push_str(&format!(
                "# retires {d}: kept at 0 replicas, annotated cutover.dev/retired, for a rollback\n"
            ));
        }
    }
    out
}
