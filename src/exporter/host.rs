//! The local host's series, from its status (asked over its socket at each scrape, or handed in
//! by the host itself): per component and revision the router's weight, responses by status
//! class, transport errors and latency as a histogram (enough for a Prometheus to judge a canary
//! from cutover's own numbers), and the instances by state, their restarts, probe results and
//! probe latency. Nothing is written when no host runs but `cutover_host_up 0`.
//!
//! Owns: turning a `HostStatus` into series. Must not touch: the host (it only reads its status).

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::local::metrics::LATENCY_BOUNDS;
use crate::local::proto::{HostStatus, RevisionView};

type Labels = Vec<(&'static str, String)>;
type Rows = Vec<(Labels, f64)>;

/// The last status the host gave, encoded at each scrape.
#[derive(Debug, Default, Clone)]
pub struct HostSeries(pub Arc<Mutex<Option<HostStatus>>>);

impl HostSeries {
    pub fn set(&self, status: Option<HostStatus>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = status;
    }
}

fn labels(component: &str, r: &RevisionView) -> Labels {
    vec![
        ("component", component.to_string()),
        ("revision", r.key.0.clone()),
        ("version", r.version.clone()),
    ]
}

/// One series family: its descriptor, then a value per label set.
fn family<T>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[(Labels, T)],
    mut put: impl FnMut(&mut prometheus_client::encoding::MetricEncoder, &T) -> std::fmt::Result,
) -> std::fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    let mut desc = encoder.encode_descriptor(name, help, None, kind)?;
    for (l, v) in rows {
        let mut m = desc.encode_family(l)?;
        put(&mut m, v)?;
    }
    Ok(())
}

impl Collector for HostSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let status = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let up = ConstGauge::new(i64::from(status.is_some()));
        up.encode(encoder.encode_descriptor(
            "cutover_host_up",
            "1 when the local host answered this scrape",
            None,
            up.metric_type(),
        )?)?;
        let Some(status) = status else {
            return Ok(());
        };
        let revs: Vec<(&str, &RevisionView)> = status
            .components
            .iter()
            .flat_map(|c| c.revisions.iter().map(move |r| (c.component.as_str(), r)))
            .collect();
        let each = |f: &dyn Fn(&str, &RevisionView) -> Rows| {
            revs.iter().flat_map(|(c, r)| f(c, r)).collect::<Vec<_>>()
        };
        let gauge = |m: &mut prometheus_client::encoding::MetricEncoder, v: &f64| m.encode_gauge(v);
        let counter = |m: &mut prometheus_client::encoding::MetricEncoder, v: &f64| {
            m.encode_counter::<NoLabelSet, _, u64>(&(*v as u64), None)
        };

        let weights = each(&|c, r| vec![(labels(c, r), f64::from(r.weight))]);
        family(
            &mut encoder,
            "cutover_router_weight",
            "Percent of a component's requests the router sends to a revision",
            MetricType::Gauge,
            &weights,
            gauge,
        )?;
        let requests = each(&|c, r| {
            (1..=5)
                .map(|k| {
                    let mut l = labels(c, r);
                    l.push(("code", format!("{k}xx")));
                    (l, r.since_start.classes[k - 1] as f64)
                })
                .collect()
        });
        family(
            &mut encoder,
            "cutover_router_requests",
            "Responses the router relayed from a revision, by status class",
            MetricType::Counter,
            &requests,
            counter,
        )?;
        let transport = each(&|c, r| vec![(labels(c, r), r.since_start.transport as f64)]);
        family(
            &mut encoder,
            "cutover_router_transport_errors",
            "Requests to a revision that got no response (connect error, timeout, broken upstream)",
            MetricType::Counter,
            &transport,
            counter,
        )?;
        let latency: Vec<(Labels, &RevisionView)> =
            revs.iter().map(|(c, r)| (labels(c, r), *r)).collect();
        family(
            &mut encoder,
            "cutover_router_request_duration_seconds",
            "Time from the router's request to a revision's response, as the client waited for it",
            MetricType::Histogram,
            &latency,
            |m, r| {
                let s = &r.since_start;
                let mut buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
                    .iter()
                    .copied()
                    .chain(std::iter::once(f64::INFINITY))
                    .zip(s.buckets.iter().copied().chain(std::iter::repeat(0)))
                    .collect();
                buckets.truncate(LATENCY_BOUNDS.len() + 1);
                let count = buckets.iter().map(|(_, n)| n).sum();
                m.encode_histogram::<NoLabelSet>(
                    s.latency_sum_us as f64 / 1e6,
                    count,
                    &buckets,
                    None,
                )
            },
        )?;
        let instances = each(&|c, r| {
            let (mut ready, mut unready, mut stopped) = (0.0, 0.0, 0.0);
            for i in &r.instances {
                match (i.running, i.ready) {
                    (true, true) => ready += 1.0,
                    (true, false) => unready += 1.0,
                    _ => stopped += 1.0,
                }
            }
            [("ready", ready), ("unready", unready), ("stopped", stopped)]
                .into_iter()
                .map(|(state, n)| {
                    let mut l = labels(c, r);
                    l.push(("state", state.to_string()));
                    (l, n)
                })
                .collect()
        });
        family(
            &mut encoder,
            "cutover_host_instances",
            "A revision's instances by state: ready, unready (running, not passing its probe), stopped",
            MetricType::Gauge,
            &instances,
            gauge,
        )?;
        let restarts = each(&|c, r| {
            let n: u32 = r.instances.iter().map(|i| i.restarts).sum();
            vec![(labels(c, r), f64::from(n))]
        });
        family(
            &mut encoder,
            "cutover_host_restarts",
            "Restarts of a revision's current instances after they exited (a gauge: an instance replaced takes its count with it)",
            MetricType::Gauge,
            &restarts,
            gauge,
        )?;
        let probes = each(&|c, r| {
            let checks: u64 = r.instances.iter().map(|i| i.probe.checks).sum();
            let failures: u64 = r.instances.iter().map(|i| i.probe.failures).sum();
            [
                ("success", checks.saturating_sub(failures)),
                ("failure", failures),
            ]
            .into_iter()
            .map(|(result, n)| {
                let mut l = labels(c, r);
                l.push(("result", result.to_string()));
                (l, n as f64)
            })
            .collect()
        });
        family(
            &mut encoder,
            "cutover_host_probes",
            "Health probes of a revision's current instances, by result (a gauge: an instance replaced takes its count with it)",
            MetricType::Gauge,
            &probes,
            gauge,
        )?;
        let probe_latency = each(&|c, r| {
            r.instances
                .iter()
                .filter_map(|i| i.probe.last_latency_ms)
                .reduce(f64::max)
                .map(|ms| vec![(labels(c, r), ms / 1000.0)])
                .unwrap_or_default()
        });
        family(
            &mut encoder,
            "cutover_host_probe_latency_seconds",
            "The slowest of a revision's instances' last health probe",
            MetricType::Gauge,
            &probe_latency,
            gauge,
        )?;
        Ok(())
    }
}
