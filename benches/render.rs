//! Rendering the full console at 200x50 (criterion): a frame where everything changed (the first
//! frame, or after a resize) and a frame where nothing changed (ratatui diffs it to zero cells).
//!
//! Run: `cargo bench --bench render`.

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use cutover::tui::keymap::View;
use cutover::tui::sample;
use cutover::tui::symbols::UNICODE;
use cutover::tui::theme::{self, Depth};
use cutover::tui::view::{self, Look};

fn bench(c: &mut Criterion) {
    let Some(t) = theme::builtin("default") else {
        return;
    };
    let look = Look::new(&t, Depth::Ansi16, UNICODE);
    let mut g = c.benchmark_group("console_200x50");
    for (name, pane, v, kube) in [
        ("progress", 0, View::Main, false),
        ("analysis", 3, View::Main, false),
        ("history", 0, View::History, false),
        ("traffic", 1, View::Main, false),
        ("health", 2, View::Main, false),
        // A Kubernetes canary: the pods table and the asked/achieved traffic split.
        ("health_pods", 2, View::Main, true),
        ("traffic_ratio", 1, View::Main, true),
    ] {
        let mut m = if kube {
            sample::kube_model()
        } else {
            sample::model()
        };
        m.pane = pane;
        m.view = v;
        g.bench_function(format!("{name}_full_redraw"), |b| {
            let Ok(mut term) = Terminal::new(TestBackend::new(200, 50));
            b.iter(|| {
                // A cleared screen makes every cell of the next frame new.
                let _ = term.clear();
                let _ = term.draw(|f| view::draw(f, &m, &look));
            })
        });
        g.bench_function(format!("{name}_unchanged"), |b| {
            let Ok(mut term) = Terminal::new(TestBackend::new(200, 50));
            let _ = term.draw(|f| view::draw(f, &m, &look));
            b.iter(|| {
                let _ = term.draw(|f| view::draw(f, &m, &look));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
