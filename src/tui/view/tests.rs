//! Snapshot tests of every view at 80x24 and 120x40, in the default and mono themes and in ASCII
//! mode; and the promise that an unchanged model draws no new cell.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::*;
use crate::engine::event::{ComponentTraffic, InstanceHealth, Snapshot, Status, Weight};
use crate::engine::signals::{OnFail, Verdict};
use crate::engine::{Counts, Judgement};
use crate::provider::InstanceStatus;
use crate::tui::data::{parse_ts, Drill, HistRow, Live, Row, Series};
use crate::tui::keymap::View;
use crate::tui::model::Model;
use crate::tui::symbols::{ASCII, UNICODE};
use crate::tui::theme::{self, Depth};

fn snapshot() -> Snapshot {
    let mut v = Verdict::new(
        "error_rate",
        "metric",
        Judgement::Pass,
        "< 0.05",
        "error_rate = 0.004 (must be < 0.05); baseline 0.003",
        OnFail::Rollback,
    )
    .with_value(Some(0.004));
    v.counts = Some(Counts {
        failures: 0,
        failure_limit: 0,
        no_data_in_row: 0,
        no_data_limit: 3,
        errors_in_row: 0,
        error_limit: 4,
    });
    let inst = |id: &str, rev: &str, version: &str, ready: bool| InstanceHealth {
        component: "web".into(),
        revision: rev.into(),
        version: version.into(),
        status: InstanceStatus {
            id: id.into(),
            ready,
            unhealthy: false,
            restarts: 0,
            detail: None,
            probe: "http".into(),
            last_latency_ms: Some(1.4),
            consecutive_failures: 0,
        },
    };
    Snapshot {
        deployment: "shop".into(),
        run: 7,
        version: "1.1.0".into(),
        strategy: "canary".into(),
        environment: "prod".into(),
        status: Status::WaitingApproval,
        step: 5,
        steps: 9,
        step_description: "gate canary-50".into(),
        gate: Some("canary-50".into()),
        traffic: vec![ComponentTraffic {
            component: "web".into(),
            weights: vec![
                Weight {
                    revision: "web@1.0.0.r1".into(),
                    version: "1.0.0".into(),
                    weight: 50,
                },
                Weight {
                    revision: "web@1.1.0.r2".into(),
                    version: "1.1.0".into(),
                    weight: 50,
                },
            ],
            measured_rps: [
                ("web@1.0.0.r1".to_string(), 24.5),
                ("web@1.1.0.r2".to_string(), 25.5),
            ]
            .into_iter()
            .collect(),
        }],
        instances: vec![
            inst("web@1.0.0.r1-0", "web@1.0.0.r1", "1.0.0", true),
            inst("web@1.1.0.r2-0", "web@1.1.0.r2", "1.1.0", true),
        ],
        last_verdicts: vec![v],
        reason: None,
        outcome: None,
    }
}

fn model() -> Model {
    let live = Live {
        events: vec![
            "12:00:01 [5/9] web: shift 50% of traffic to 1.1.0".into(),
            "12:00:31 web: analysis ok: error_rate 0.004".into(),
            "12:01:01 web: gate canary-50 waits: cutover approve shop --gate canary-50".into(),
        ],
        series: vec![
            Series {
                name: "error_rate".into(),
                canary: vec![0.002, 0.004, 0.003, 0.004],
                baseline: vec![0.003, 0.003, 0.002, 0.003],
                threshold: Some(0.05),
                judgement: Judgement::Pass,
                message: "error_rate = 0.004 (must be < 0.05)".into(),
                expected: "< 0.05".into(),
            },
            Series {
                name: "latency_p99".into(),
                canary: vec![210.0, 250.0, f64::NAN, 480.0],
                baseline: vec![200.0, 205.0, 198.0, 201.0],
                threshold: Some(400.0),
                judgement: Judgement::Fail,
                message: "latency_p99 = 480 (must be < 400)".into(),
                expected: "< 400".into(),
            },
        ],
        step_since: parse_ts("2026-11-26T12:00:01Z"),
        next_decision: parse_ts("2026-11-26T12:01:31Z"),
        gate_since: parse_ts("2026-11-26T12:01:01Z"),
    };
    let plan = [
        "pre-deployment checks",
        "start 1.1.0 with 1 instance(s)",
        "shift 10% of traffic to 1.1.0",
        "analyse for 30s",
        "shift 50% of traffic to 1.1.0",
        "gate canary-50: wait for approval",
        "shift 100% of traffic to 1.1.0",
        "post-deployment checks",
        "retire 1.0.0",
    ]
    .map(String::from)
    .to_vec();
    let mut m = Model::new("alice", false);
    m.set_rows(vec![
        Row {
            deployment: "shop".into(),
            run: 7,
            version: "1.1.0".into(),
            environment: "prod".into(),
            strategy: "canary".into(),
            status: "waiting_approval".into(),
            live: true,
            finished: false,
            reason: None,
            initiator: "bob".into(),
            snapshot: Some(snapshot()),
            plan,
            detail: Some(live),
        },
        Row {
            deployment: "payments".into(),
            run: 3,
            version: "2.0.0".into(),
            environment: "staging".into(),
            strategy: "rolling".into(),
            status: "rolled_back".into(),
            live: true,
            finished: true,
            reason: Some("rolled back to 1.9.0: metric error_rate failed".into()),
            initiator: "carol".into(),
            snapshot: None,
            plan: Vec::new(),
            detail: None,
        },
        Row {
            deployment: "search".into(),
            run: 5,
            version: "0.9.1".into(),
            environment: "prod".into(),
            strategy: "blue-green".into(),
            status: "paused".into(),
            live: false,
            finished: false,
            reason: Some("paused by alice: interrupted".into()),
            initiator: "alice".into(),
            snapshot: None,
            plan: Vec::new(),
            detail: None,
        },
    ]);
    m.now = parse_ts("2026-11-26T12:01:21Z");
    let h = |run, dep: &str, outcome: &str, day: &str, dur| HistRow {
        run,
        deployment: dep.into(),
        version: format!("1.{run}.0"),
        environment: "prod".into(),
        strategy: "canary".into(),
        outcome: outcome.into(),
        finished: outcome != "waiting_approval",
        started: parse_ts(&format!("2026-11-{day}T09:30:00Z")),
        duration_s: Some(dur),
        initiator: "alice".into(),
        reason: None,
    };
    m.set_history(vec![
        h(7, "shop", "waiting_approval", "26", 0),
        h(6, "shop", "succeeded", "26", 312),
        h(5, "search", "rolled_back", "25", 95),
        h(4, "shop", "succeeded", "25", 640),
        h(3, "payments", "failed", "24", 40),
        h(2, "shop", "succeeded", "23", 301),
        h(1, "shop", "succeeded", "22", 280),
    ]);
    m
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Every view and overlay, by name.
fn views() -> Vec<(&'static str, Model)> {
    let mut out = Vec::new();
    for (i, name) in ["progress", "traffic", "health", "analysis", "approvals"]
        .iter()
        .enumerate()
    {
        let mut m = model();
        m.pane = i;
        out.push((*name, m));
    }
    let mut m = model();
    m.view = View::History;
    m.hist_selected = 2;
    out.push(("history", m));
    let mut m = model();
    m.set_drill(Some(Drill {
        run: 7,
        title: "shop 1.1.0 run #7 (canary, prod, waiting_approval by bob)".into(),
        timeline: model().rows[0].detail.clone().unwrap_or_default().events,
        verdicts: vec![
            "12:00:31 pass   error_rate       error_rate = 0.004 (< 0.05)".into(),
            "12:01:01 FAIL   latency_p99      latency_p99 = 480 (< 400) -> pause".into(),
        ],
        scroll: 0,
    }));
    out.push(("drill", m));
    let mut m = model();
    m.key(key(KeyCode::Char('?')));
    out.push(("help", m));
    let mut m = model();
    m.key(key(KeyCode::Char('U')));
    out.push(("confirm_rollback", m));
    let mut m = model();
    m.owned = vec![7];
    m.key(key(KeyCode::Char('q')));
    out.push(("quit_dialog", m));
    let mut m = model();
    m.key(key(KeyCode::Char(':')));
    for c in "apply specs/demo/local-v2.yaml".chars() {
        m.key(key(KeyCode::Char(c)));
    }
    out.push(("command_line", m));
    out
}

fn looks() -> Vec<(&'static str, Look)> {
    let default = theme::builtin("default").unwrap_or_else(|| panic!("default theme"));
    let mono = theme::builtin("mono").unwrap_or_else(|| panic!("mono theme"));
    vec![
        ("default", Look::new(&default, Depth::Ansi16, UNICODE)),
        ("mono", Look::new(&mono, Depth::NoColor, UNICODE)),
        ("ascii", Look::new(&default, Depth::Ansi16, ASCII)),
    ]
}

fn render(m: &Model, look: &Look, w: u16, h: u16) -> Buffer {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, m, look)).unwrap();
    t.backend().buffer().clone()
}

/// The screen as text, then its styles as runs per line (so colour and reverse changes show).
fn text(buf: &Buffer, styles: bool) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in 0..area.height {
        let mut x = 0;
        while x < area.width {
            let sym = buf[(x, y)].symbol();
            out.push_str(sym);
            x += 1;
        }
        out.push('\n');
    }
    if styles {
        out.push_str("--- styles (line: from-to fg/bg/modifiers)\n");
        for y in 0..area.height {
            let mut runs = Vec::new();
            let mut x = 0;
            while x < area.width {
                let c = &buf[(x, y)];
                let st = (c.fg, c.bg, c.modifier);
                let start = x;
                while x < area.width && {
                    let d = &buf[(x, y)];
                    (d.fg, d.bg, d.modifier) == st
                } {
                    x += 1;
                }
                if st
                    != (
                        ratatui::style::Color::Reset,
                        ratatui::style::Color::Reset,
                        ratatui::style::Modifier::empty(),
                    )
                {
                    runs.push(format!(
                        "{start}-{} {:?}/{:?}/{:?}",
                        x - 1,
                        st.0,
                        st.1,
                        st.2
                    ));
                }
            }
            if !runs.is_empty() {
                out.push_str(&format!("{y}: {}\n", runs.join("  ")));
            }
        }
    }
    out
}

#[test]
fn every_view_at_both_sizes_in_every_look() {
    for (look_name, look) in looks() {
        for (view, m) in views() {
            for (w, h) in [(80u16, 24u16), (120, 40)] {
                let buf = render(&m, &look, w, h);
                let name = format!("{view}_{w}x{h}_{look_name}");
                insta::assert_snapshot!(name, text(&buf, look_name != "ascii"));
            }
        }
    }
}

#[test]
fn mono_and_ascii_keep_the_selection_visible_and_ascii_draws_ascii() {
    let looks = looks();
    let m = model();
    let mono = render(&m, &looks[1].1, 80, 24);
    // The selected deployment's row is reversed or bold, without any colour.
    let row = (1..24)
        .find(|y| {
            (0..30).any(|x| mono[(x, *y)].symbol() == "s")
                && mono[(2, *y)]
                    .modifier
                    .contains(ratatui::style::Modifier::REVERSED)
        })
        .is_some();
    assert!(row, "selection visible in mono");
    for cell in mono.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
    for (_, m) in views() {
        let ascii = render(&m, &looks[2].1, 120, 40);
        for cell in ascii.content() {
            assert!(cell.symbol().is_ascii(), "non-ASCII {:?}", cell.symbol());
        }
    }
}

#[test]
fn rendering_an_unchanged_model_twice_changes_no_cell() {
    for (_, look) in looks() {
        for (_, m) in views() {
            let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
            t.draw(|f| draw(f, &m, &look)).unwrap();
            let first = t.backend().buffer().clone();
            t.draw(|f| draw(f, &m, &look)).unwrap();
            assert!(first.diff(t.backend().buffer()).is_empty());
        }
    }
}
