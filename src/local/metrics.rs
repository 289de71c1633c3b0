//! Per-revision request metrics over a sliding window: counts, errors and a latency histogram.
//!
//! Owns: recording each proxied request and answering `request_rate`, `error_rate` and
//! `response_time` quantiles over the last N seconds. Must not touch: routing or sockets.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::latency::{LatencyHistogram, Precision};
use crate::provider::Metrics;

/// Seconds of history kept.
pub const HISTORY_SECS: u64 = 120;

struct Slot {
    second: u64,
    requests: u64,
    server_errors: u64,
    transport_errors: u64,
    hist: LatencyHistogram,
}

/// How a proxied request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered with this status.
    Status(u16),
    /// Connect error, timeout or broken upstream.
    Transport,
}

/// Upper bounds (seconds) of the latency buckets counted since the start (Prometheus' defaults,
/// from 1 ms): what an exporter writes as a histogram.
pub const LATENCY_BOUNDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Counts since the start, for an exporter: responses by status class, transport errors, and
/// latencies per bucket (not cumulative; the last bucket is above every bound) with their sum.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cumulative {
    /// 1xx, 2xx, 3xx, 4xx, 5xx.
    pub classes: [u64; 5],
    pub transport: u64,
    pub buckets: Vec<u64>,
    pub latency_sum_us: u64,
}

/// Everything a record touches, behind one lock.
#[derive(Default)]
struct Inner {
    slots: VecDeque<Slot>,
    /// Since the start: requests, 5xx, transport errors.
    totals: (u64, u64, u64),
    since_start: Cumulative,
}

/// A sliding window of per-second slots, each with its own latency histogram
/// ([`Precision::Coarse`]: quantiles at most 6.25% over the true value, never under).
/// Recording takes one uncontended lock and is O(1); a slot's histogram is reused when the
/// slot falls out of the window, so steady traffic allocates nothing.
pub struct Window {
    origin: Instant,
    /// An empty histogram that new slots copy their precision from.
    empty: LatencyHistogram,
    inner: Mutex<Inner>,
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl Window {
    pub fn new() -> Window {
        Window {
            origin: Instant::now(),
            empty: LatencyHistogram::new(Precision::Coarse),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_secs()
    }

    pub fn record(&self, outcome: Outcome, latency: Duration) {
        self.record_at(Instant::now(), outcome, latency);
    }

    pub fn record_at(&self, at: Instant, outcome: Outcome, latency: Duration) {
        let sec = self.second(at);
        let (server_error, transport) = match outcome {
            Outcome::Status(s) => (s >= 500, false),
            Outcome::Transport => (false, true),
        };
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        if inner.slots.back().is_none_or(|s| s.second < sec) {
            let mut hist = None;
            while inner
                .slots
                .front()
                .is_some_and(|s| s.second + HISTORY_SECS < sec)
            {
                hist = inner.slots.pop_front().map(|s| s.hist);
            }
            let hist = match hist {
                Some(mut h) => {
                    h.clear();
                    h
                }
                None => self.empty.empty_like(),
            };
            inner.slots.push_back(Slot {
                second: sec,
                requests: 0,
                server_errors: 0,
                transport_errors: 0,
                hist,
            });
        }
        // A late record (older second) lands in the newest slot: close enough.
        if let Some(slot) = inner.slots.back_mut() {
            slot.requests += 1;
            slot.server_errors += u64::from(server_error);
            slot.transport_errors += u64::from(transport);
            slot.hist.record(latency);
        }
        inner.totals.0 += 1;
        inner.totals.1 += u64::from(server_error);
        inner.totals.2 += u64::from(transport);
        let c = &mut inner.since_start;
        match outcome {
            Outcome::Status(s) => {
                if let Some(n) = c.classes.get_mut(usize::from(s / 100).wrapping_sub(1)) {
                    *n += 1;
                }
            }
            Outcome::Transport => c.transport += 1,
        }
        if c.buckets.is_empty() {
            c.buckets = vec![0; LATENCY_BOUNDS.len() + 1];
        }
        let secs = latency.as_secs_f64();
        let b = LATENCY_BOUNDS
            .iter()
            .position(|le| secs <= *le)
            .unwrap_or(LATENCY_BOUNDS.len());
        if let Some(n) = c.buckets.get_mut(b) {
            *n += 1;
        }
        c.latency_sum_us = c
            .latency_sum_us
            .saturating_add(latency.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Counts since the start (see [`Cumulative`]).
    pub fn cumulative(&self) -> Cumulative {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since_start
            .clone()
    }

    /// Totals since the start: requests, 5xx, transport errors.
    pub fn totals(&self) -> (u64, u64, u64) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).totals
    }

    /// Metrics over the last `window` (whole seconds, at least 1), ending now.
    pub fn metrics(&self, window: Duration) -> Metrics {
        self.metrics_at(Instant::now(), window)
    }

    pub fn metrics_at(&self, now: Instant, window: Duration) -> Metrics {
        let secs = window.as_secs().clamp(1, HISTORY_SECS);
        let now_sec = self.second(now);
        // The last `secs` whole seconds plus the current, partial one.
        let from = now_sec.saturating_sub(secs);
        let mut requests = 0u64;
        let mut errors = 0u64;
        let mut transport = 0u64;
        // Copy the slots' histograms out (a memcpy each) and merge them after the lock is
        // released, so a query holds up recording for as short a time as possible.
        let mut hists = Vec::new();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for s in inner
            .slots
            .iter()
            .filter(|s| s.second >= from && s.second <= now_sec)
        {
            requests += s.requests;
            errors += s.server_errors;
            transport += s.transport_errors;
            hists.push(s.hist.clone());
        }
        drop(inner);
        let mut hist = self.empty.empty_like();
        for h in &hists {
            hist.merge(h);
        }
        let since_origin = now.saturating_duration_since(self.origin).as_secs_f64();
        let span = (since_origin - from as f64).max(1.0);
        let mut m = Metrics::new();
        m.insert("requests".into(), requests as f64);
        m.insert("request_rate".into(), requests as f64 / span);
        if requests > 0 {
            m.insert(
                "error_rate".into(),
                (errors + transport) as f64 / requests as f64,
            );
            m.insert("server_errors".into(), errors as f64);
            m.insert("transport_errors".into(), transport as f64);
            m.insert(
                "success_rate".into(),
                1.0 - (errors + transport) as f64 / requests as f64,
            );
            // Milliseconds to 0.01, never under the true value (see `Window`).
            let ms = |q: f64| {
                let us = hist.quantile_us(q).unwrap_or(0) as f64;
                (us / 10.0).ceil() / 100.0
            };
            for (name, q) in [
                ("response_time_p50", 0.50),
                ("response_time_p90", 0.90),
                ("response_time_p99", 0.99),
            ] {
                m.insert(name.into(), ms(q));
            }
            m.insert("response_time".into(), ms(0.99));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_quantiles() {
        let w = Window::new();
        let t0 = w.origin;
        for i in 0..100u64 {
            let at = t0 + Duration::from_millis(i * 10);
            let outcome = if i % 10 == 0 {
                Outcome::Status(500)
            } else {
                Outcome::Status(200)
            };
            w.record_at(
                at,
                outcome,
                Duration::from_millis(if i == 99 { 900 } else { 10 }),
            );
        }
        let m = w.metrics_at(t0 + Duration::from_millis(999), Duration::from_secs(1));
        assert_eq!(m["requests"], 100.0);
        assert!((m["error_rate"] - 0.1).abs() < 1e-9);
        assert!(
            m["response_time_p50"] >= 10.0 && m["response_time_p50"] < 11.0,
            "{m:?}"
        );
        assert!(m["response_time_p99"] >= 10.0, "{m:?}");
        assert_eq!(w.totals(), (100, 10, 0));
    }

    #[test]
    fn the_window_slides() {
        let w = Window::new();
        let t0 = w.origin;
        w.record_at(t0, Outcome::Transport, Duration::from_millis(1));
        let later = t0 + Duration::from_secs(10);
        w.record_at(later, Outcome::Status(200), Duration::from_millis(1));
        let m = w.metrics_at(later, Duration::from_secs(2));
        assert_eq!(m["requests"], 1.0);
        // Just after a second boundary the previous whole second still counts.
        w.record_at(
            later + Duration::from_millis(990),
            Outcome::Status(200),
            Duration::from_millis(1),
        );
        let m = w.metrics_at(later + Duration::from_millis(1010), Duration::from_secs(1));
        assert_eq!(m["requests"], 2.0, "{m:?}");
        assert_eq!(m["error_rate"], 0.0);
        let m = w.metrics_at(later + Duration::from_millis(1010), Duration::from_secs(30));
        assert_eq!(m["requests"], 3.0);
        assert!((m["error_rate"] - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn quantiles_are_never_under_and_old_slots_are_reused() {
        let w = Window::new();
        let t0 = w.origin;
        // 0.1 ms .. 100 ms, evenly, over the first two seconds.
        for i in 1..=1000u64 {
            w.record_at(
                t0 + Duration::from_millis(2 * i),
                Outcome::Status(200),
                Duration::from_micros(i * 100),
            );
        }
        let m = w.metrics_at(t0 + Duration::from_millis(2500), Duration::from_secs(5));
        for (name, want) in [
            ("response_time_p50", 50.0),
            ("response_time_p90", 90.0),
            ("response_time_p99", 99.0),
        ] {
            assert!(
                m[name] >= want && m[name] <= want * (1.0 + 1.0 / 16.0),
                "{name}: {m:?}"
            );
        }
        assert_eq!(m["response_time"], m["response_time_p99"]);
        // Far later: the old seconds fall out and their histograms serve the new ones.
        let later = t0 + Duration::from_secs(300);
        for s in 0..130u64 {
            w.record_at(
                later + Duration::from_secs(s),
                Outcome::Status(200),
                Duration::from_millis(1),
            );
        }
        let now = later + Duration::from_secs(129);
        let m = w.metrics_at(now, Duration::from_secs(HISTORY_SECS));
        assert_eq!(m["requests"], HISTORY_SECS as f64 + 1.0, "{m:?}");
        assert!(
            m["response_time"] >= 1.0 && m["response_time"] <= 1.07,
            "{m:?}"
        );
        let inner = w.inner.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(inner.slots.len() as u64, HISTORY_SECS + 1);
        assert_eq!(inner.totals, (1130, 0, 0));
    }

    #[test]
    fn no_requests_means_no_error_rate() {
        let w = Window::new();
        let m = w.metrics(Duration::from_secs(5));
        assert!(!m.contains_key("error_rate"), "no data is not a pass");
        assert_eq!(m["request_rate"], 0.0);
    }
}
