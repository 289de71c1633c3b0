//! The health pane's pods table for platforms that run pods (Kubernetes), as `kubectl get pods`
//! and k9s show them: NAME, READY, STATUS, RESTARTS, AGE, grouped by revision, with the
//! explained failure under a pod that has one.
//!
//! Owns: the table's columns and kubectl's short ages. Must not touch: how failures are
//! explained (the provider writes `InstanceStatus::detail`) or instances without a phase.

use ratatui::text::{Line, Span};

use super::Look;
use crate::engine::event::InstanceHealth;
use crate::tui::theme::Slot;

/// Fixed columns after NAME: ` READY STATUS.. RESTARTS AGE`, without STATUS's own width.
const FIXED: usize = 1 + 5 + 1 + 1 + 8 + 1 + 6;
/// Narrowest NAME column before the table gives up fitting the pane (the pane wraps).
const MIN_NAME: usize = 12;

/// The pod's STATUS word and the explanation left for the line under it: the failure's reason
/// where the detail starts with one (`CrashLoopBackOff: container api restarted 5 times`),
/// else the phase and the whole detail (`readiness probe failing: ...`).
pub fn status_of<'a>(phase: &'a str, detail: Option<&'a str>) -> (&'a str, Option<&'a str>) {
    let Some(d) = detail.map(str::trim).filter(|d| !d.is_empty()) else {
        return (phase, None);
    };
    let (word, rest) = match d.split_once(':') {
        Some((w, rest)) => (w, Some(rest.trim())),
        None => (d, None),
    };
    let is_reason = word.starts_with(|c: char| c.is_ascii_uppercase())
        && word.chars().all(|c| c.is_ascii_alphanumeric());
    if is_reason {
        (word, rest.filter(|r| !r.is_empty()))
    } else {
        (phase, Some(d))
    }
}

/// An age as `kubectl get pods` prints it (apimachinery's `HumanDuration`): 45s, 3m12s, 2h5m,
/// 4d, 4d3h, 2y10d.
pub fn age(secs: u64) -> String {
    let (m, h) = (secs / 60, secs / 3600);
    let d = h / 24;
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        match secs % 60 {
            0 => format!("{m}m"),
            s => format!("{m}m{s}s"),
        }
    } else if m < 180 {
        format!("{m}m")
    } else if h < 8 {
        match m % 60 {
            0 => format!("{h}h"),
            rm => format!("{h}h{rm}m"),
        }
    } else if h < 48 {
        format!("{h}h")
    } else if h < 24 * 8 {
        match h % 24 {
            0 => format!("{d}d"),
            rh => format!("{d}d{rh}h"),
        }
    } else if h < 24 * 365 * 2 {
        format!("{d}d")
    } else if h < 24 * 365 * 8 {
        match d % 365 {
            0 => format!("{}y", d / 365),
            rd => format!("{}y{rd}d", d / 365),
        }
    } else {
        format!("{}y", d / 365)
    }
}

/// `name` in at most `w` columns: the end kept (a pod's unique suffix), the start cut.
fn fit(name: &str, w: usize, more: &str) -> String {
    let n = name.chars().count();
    if n <= w {
        return format!("{name:<w$}");
    }
    let keep = w.saturating_sub(more.chars().count());
    let tail: String = name.chars().skip(n - keep).collect();
    format!("{more}{tail}")
}

/// The pods among `instances` (those with a phase) as a table `width` columns wide.
pub fn table(instances: &[InstanceHealth], look: &Look, width: usize) -> Vec<Line<'static>> {
    let pods = || {
        instances.iter().filter_map(|i| {
            let phase = i.status.phase.as_deref()?;
            Some((i, status_of(phase, i.status.detail.as_deref())))
        })
    };
    // Two passes (widths, then rows) rather than a list kept per frame.
    let status_w = pods()
        .map(|(_, (s, _))| s.chars().count())
        .max()
        .unwrap_or(0)
        .max("STATUS".len());
    let longest = pods()
        .map(|(i, _)| i.status.id.chars().count())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let name_w = longest.min(
        width
            .saturating_sub(FIXED + status_w)
            .max(MIN_NAME.min(longest)),
    );
    let mut out = vec![Line::styled(
        format!(
            "{:<name_w$} {:<5} {:<status_w$} {:>8} {:>6}",
            "NAME", "READY", "STATUS", "RESTARTS", "AGE"
        ),
        look.s(Slot::Muted),
    )];
    let mut group: Option<(&str, &str)> = None;
    for (k, i) in instances.iter().enumerate() {
        let Some(phase) = i.status.phase.as_deref() else {
            continue;
        };
        let (status, explained) = status_of(phase, i.status.detail.as_deref());
        let st = &i.status;
        if group != Some((&i.component, &i.revision)) {
            group = Some((&i.component, &i.revision));
            // The revision's pods are listed together: count its ready ones, as kubectl's
            // READY column of a Deployment does.
            let (ready, total) = instances[k..]
                .iter()
                .take_while(|j| j.component == i.component && j.revision == i.revision)
                .filter(|j| j.status.phase.is_some())
                .fold((0, 0), |(r, t), j| (r + usize::from(j.status.ready), t + 1));
            out.push(Line::from(vec![
                Span::styled(
                    format!("{} {}", i.component, i.version),
                    look.s(Slot::Title),
                ),
                Span::styled(format!("  {ready}/{total} ready"), look.s(Slot::Muted)),
            ]));
        }
        let slot = if st.unhealthy {
            Slot::Error
        } else if st.ready {
            Slot::Ok
        } else {
            Slot::Warn
        };
        out.push(Line::from(vec![
            Span::raw(format!(
                "{} {:<5} ",
                fit(&st.id, name_w, look.sym.more),
                if st.ready { "1/1" } else { "0/1" }
            )),
            Span::styled(format!("{status:<status_w$}"), look.s(slot)),
            Span::raw(format!(
                " {:>8} {:>6}",
                st.restarts,
                st.age_s.map(age).unwrap_or_else(|| "-".into())
            )),
        ]));
        if let Some(e) = explained {
            let slot = if st.unhealthy || !st.ready {
                slot
            } else {
                Slot::Muted
            };
            out.push(Line::styled(format!("  {e}"), look.s(slot)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        for (secs, want) in [
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (120, "2m"),
            (192, "3m12s"),
            (599, "9m59s"),
            (600, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (2 * 3600 + 5 * 60, "125m"),
            (7 * 3600 + 5 * 60, "7h5m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (4 * 86400, "4d"),
            (4 * 86400 + 3 * 3600, "4d3h"),
            (8 * 86400 + 3 * 3600, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (740 * 86400, "2y10d"),
            (8 * 365 * 86400, "8y"),
        ] {
            assert_eq!(age(secs), want, "{secs}s");
        }
    }

    #[test]
    fn the_status_column_takes_the_failure_reason_and_leaves_the_explanation() {
        let s = |phase, detail| status_of(phase, detail);
        assert_eq!(s("Running", None), ("Running", None));
        assert_eq!(
            s(
                "Running",
                Some("CrashLoopBackOff: container api restarted 5 times, last exit code 1")
            ),
            (
                "CrashLoopBackOff",
                Some("container api restarted 5 times, last exit code 1")
            )
        );
        assert_eq!(
            s(
                "Pending",
                Some("ImagePullBackOff: cannot pull image shop/api:9.9 (not found)")
            ),
            (
                "ImagePullBackOff",
                Some("cannot pull image shop/api:9.9 (not found)")
            )
        );
        assert_eq!(
            s(
                "Running",
                Some("OOMKilled: container api ran out of memory (raise resources.memory)")
            )
            .0,
            "OOMKilled"
        );
        assert_eq!(
            s("Pending", Some("Unschedulable: 0/3 nodes are available")).0,
            "Unschedulable"
        );
        // A reason alone (an evicted pod with no message).
        assert_eq!(s("Failed", Some("Evicted")), ("Evicted", None));
        // Not a reason word: the phase stays and the whole detail goes under the pod.
        assert_eq!(
            s(
                "Running",
                Some("readiness probe failing: HTTP probe failed with statuscode: 503")
            ),
            (
                "Running",
                Some("readiness probe failing: HTTP probe failed with statuscode: 503")
            )
        );
        assert_eq!(s("Running", Some("  ")), ("Running", None));
    }

    #[test]
    fn long_names_keep_their_end() {
        assert_eq!(fit("api-1", 8, "…"), "api-1   ");
        assert_eq!(
            fit("api-b41e7c0a9f-6c4d9b7f8-x2k8p", 16, "…"),
            "…6c4d9b7f8-x2k8p"
        );
        assert_eq!(fit("api-b41e7c0a9f-6c4d9b7f8-x2k8p", 16, "~").len(), 16);
    }
}
