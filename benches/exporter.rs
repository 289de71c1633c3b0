//! The cost of one Prometheus scrape of a busy host (criterion): 100 revisions on the local host
//! (10 components of 10 revisions, 2 instances each, with request counts and latency buckets),
//! and a store of 50 deployments with 1,000 finished runs and their journals (the counters have
//! read the journal once; a scrape reads only what is new). Also the bytes allocated by one
//! scrape, and what stays allocated after 1,000 of them (a counting allocator).
//!
//! Run: `cargo bench --bench exporter`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion};

use cutover::exporter::Exporter;
use cutover::local::metrics::{Cumulative, LATENCY_BOUNDS};
use cutover::local::probe::ProbeStatus;
use cutover::local::proto::{ComponentView, HostStatus, InstanceView, RevisionView};
use cutover::provider::RevisionKey;
use cutover::store::Store;

struct Counting;
static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(l.size(), Ordering::Relaxed);
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn host() -> HostStatus {
    let components = (0..10)
        .map(|c| ComponentView {
            component: format!("svc{c}"),
            listen: format!("127.0.0.1:{}", 18000 + c),
            revisions: (0..10)
                .map(|r| RevisionView {
                    key: RevisionKey(format!("svc{c}@1.{r}.0.r{r}")),
                    version: format!("1.{r}.0"),
                    weight: if r == 9 { 100 } else { 0 },
                    requests: 10_000,
                    since_start: Cumulative {
                        classes: [0, 9_900, 0, 50, 50],
                        transport: 3,
                        buckets: (0..=LATENCY_BOUNDS.len() as u64).map(|b| 100 * b).collect(),
                        latency_sum_us: 12_345_678,
                    },
                    instances: (0..2)
                        .map(|i| InstanceView {
                            id: format!("svc{c}@1.{r}.0.r{r}#{i}"),
                            running: true,
                            ready: true,
                            probe: ProbeStatus {
                                checks: 1000,
                                failures: 2,
                                last_latency_ms: Some(0.4),
                                ..ProbeStatus::default()
                            },
                            ..InstanceView::default()
                        })
                        .collect(),
                    ..RevisionView::default()
                })
                .collect(),
        })
        .collect();
    HostStatus {
        components,
        ..HostStatus::default()
    }
}

fn bench(c: &mut Criterion) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(store) = Store::open(dir.path()) else {
        return;
    };
    let now = chrono::Utc::now();
    // 60 days of the demo's generated history: about a thousand runs with real journals.
    if let Err(e) = cutover::demo_past::seed(&store, now, 60, 7) {
        eprintln!("cannot seed the store: {e}");
        return;
    }
    let exporter = Exporter::new(store, None);
    let status = host();
    // The first scrape reads the whole journal.
    let t0 = std::time::Instant::now();
    let first = exporter
        .scrape(Some(status.clone()))
        .map(|t| t.len())
        .unwrap_or(0);
    eprintln!(
        "first scrape (the whole journal): {:?}, {first} bytes of text",
        t0.elapsed()
    );
    c.bench_function("scrape_100_revisions", |b| {
        b.iter(|| exporter.scrape(Some(status.clone())))
    });
    // With the host's answer as it comes over its socket: a JSON line to decode.
    let line = serde_json::to_string(&status).unwrap_or_default();
    eprintln!(
        "the host's status for 100 revisions: {} bytes of JSON",
        line.len()
    );
    c.bench_function("scrape_100_revisions_decoding_the_status", |b| {
        b.iter(|| {
            let s: Option<HostStatus> = serde_json::from_str(&line).ok();
            exporter.scrape(s)
        })
    });
    let before = ALLOCATED.load(Ordering::Relaxed);
    let text = exporter.scrape(Some(status.clone())).unwrap_or_default();
    let allocated = ALLOCATED.load(Ordering::Relaxed) - before;
    let live0 = LIVE.load(Ordering::Relaxed);
    for _ in 0..1000 {
        let _ = exporter.scrape(Some(status.clone()));
    }
    let grew = LIVE.load(Ordering::Relaxed) - live0;
    eprintln!(
        "one scrape: {} bytes of text, {} KB allocated and freed; after 1000 more scrapes {} bytes more stay allocated",
        text.len(),
        allocated / 1024,
        grew
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
