//! Per-revision request metrics over a sliding window: counts, errors and a latency histogram.
//!
//! Owns: recording each proxied request and answering `request_rate`, `error_rate` and
//! `response_time` quantiles over the last N seconds. Must not touch: routing or sockets.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::provider::Metrics;

/// Seconds of history kept.
pub const HISTORY_SECS: u64 = 120;
/// Histogram buckets: log-spaced from 50µs to ~100s, 8 per doubling.
const BUCKETS: usize = 168;
const BASE_US: f64 = 50.0;
const PER_DOUBLING: f64 = 8.0;

fn bucket_of(latency: Duration) -> usize {
    let us = latency.as_secs_f64() * 1e6;
    if us <= BASE_US {
        return 0;
    }
    let b = ((us / BASE_US).log2() * PER_DOUBLING).ceil() as usize;
    b.min(BUCKETS - 1)
}

/// Upper bound of a bucket, in milliseconds.
fn bucket_upper_ms(b: usize) -> f64 {
    BASE_US * 2f64.powf(b as f64 / PER_DOUBLING) / 1000.0
}

#[derive(Clone)]
struct Slot {
    second: u64,
    requests: u64,
    server_errors: u64,
    transport_errors: u64,
    hist: Vec<u32>,
}

impl Slot {
    fn new(second: u64) -> Slot {
        Slot {
            second,
            requests: 0,
            server_errors: 0,
            transport_errors: 0,
            hist: vec![0; BUCKETS],
        }
    }
}

/// How a proxied request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered with this status.
    Status(u16),
    /// Connect error, timeout or broken upstream.
    Transport,
}

/// A sliding window of per-second slots.
pub struct Window {
    origin: Instant,
    slots: Mutex<VecDeque<Slot>>,
    totals: Mutex<(u64, u64, u64)>,
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
            slots: Mutex::new(VecDeque::new()),
            totals: Mutex::new((0, 0, 0)),
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
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.back().is_none_or(|s| s.second < sec) {
            slots.push_back(Slot::new(sec));
            while slots.front().is_some_and(|s| s.second + HISTORY_SECS < sec) {
                slots.pop_front();
            }
        }
        // A late record (older second) lands in the newest slot: close enough.
        if let Some(slot) = slots.back_mut() {
            slot.requests += 1;
            match outcome {
                Outcome::Status(s) if s >= 500 => slot.server_errors += 1,
                Outcome::Transport => slot.transport_errors += 1,
                _ => {}
            }
            slot.hist[bucket_of(latency)] += 1;
        }
        drop(slots);
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.0 += 1;
        match outcome {
            Outcome::Status(s) if s >= 500 => t.1 += 1,
            Outcome::Transport => t.2 += 1,
            _ => {}
        }
    }

    /// Totals since the start: requests, 5xx, transport errors.
    pub fn totals(&self) -> (u64, u64, u64) {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
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
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let mut requests = 0u64;
        let mut errors = 0u64;
        let mut transport = 0u64;
        let mut hist = vec![0u64; BUCKETS];
        for s in slots
            .iter()
            .filter(|s| s.second >= from && s.second <= now_sec)
        {
            requests += s.requests;
            errors += s.server_errors;
            transport += s.transport_errors;
            for (h, c) in hist.iter_mut().zip(&s.hist) {
                *h += *c as u64;
            }
        }
        drop(slots);
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
            for (name, q) in [
                ("response_time_p50", 0.50),
                ("response_time_p90", 0.90),
                ("response_time_p99", 0.99),
            ] {
                m.insert(name.into(), quantile(&hist, requests, q));
            }
            let p99 = quantile(&hist, requests, 0.99);
            m.insert("response_time".into(), p99);
        }
        m
    }
}

/// The quantile's bucket upper bound (ms); conservative (never under-reports).
fn quantile(hist: &[u64], total: u64, q: f64) -> f64 {
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0u64;
    for (b, c) in hist.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return (bucket_upper_ms(b) * 100.0).round() / 100.0;
        }
    }
    bucket_upper_ms(BUCKETS - 1)
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
    fn no_requests_means_no_error_rate() {
        let w = Window::new();
        let m = w.metrics(Duration::from_secs(5));
        assert!(!m.contains_key("error_rate"), "no data is not a pass");
        assert_eq!(m["request_rate"], 0.0);
    }
}
