//! The router's per-revision metrics window (criterion): the per-request `record` (the hot path)
//! and the `metrics` query over a full two-minute window.
//!
//! Run: `cargo bench --bench router_metrics`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

use cutover::local::metrics::{Outcome, Window};

/// 100 µs .. 50 ms, spread over the buckets.
fn latency(i: u64) -> Duration {
    let x = i
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        >> 40;
    Duration::from_micros(100 + x % 50_000)
}

fn bench(c: &mut Criterion) {
    let w = Window::new();
    let mut i = 0u64;
    c.bench_function("window_record", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            w.record(black_box(Outcome::Status(200)), black_box(latency(i)));
        })
    });

    // 120 populated seconds of 200 requests each.
    let w = Window::new();
    let t0 = Instant::now();
    for s in 0..120u64 {
        for j in 0..200u64 {
            let at = t0 + Duration::from_millis(s * 1000 + j * 5);
            w.record_at(at, Outcome::Status(200), latency(s * 200 + j));
        }
    }
    let now = t0 + Duration::from_millis(120_500);
    c.bench_function("window_metrics_120s", |b| {
        b.iter(|| black_box(w.metrics_at(black_box(now), Duration::from_secs(120))))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
