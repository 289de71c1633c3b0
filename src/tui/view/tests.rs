//! Snapshot tests of every view at 80x24 (tabs) and 120x40 (the dashboard), and of the dashboard
//! at 160x48 and 200x50, in the default and mono themes and in ASCII
//! mode; and the promise that an unchanged model draws no new cell.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;

use super::*;
use crate::tui::data::Drill;
use crate::tui::keymap::View;
use crate::tui::model::Model;
use crate::tui::sample::{kube_model, model};
use crate::tui::symbols::{ASCII, UNICODE};
use crate::tui::theme::{self, Depth};

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
        // The run's charts, as the store would give them.
        row: model().rows.first().cloned().map(Box::new),
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
    // The demo, with its hint line.
    let mut m = model();
    m.demo = true;
    out.push(("demo_hint", m));
    // The focused pane zoomed to the whole view.
    for (name, pane) in [("zoom_traffic", 1), ("zoom_analysis", 3)] {
        let mut m = model();
        m.pane = pane;
        m.zoom = true;
        out.push((name, m));
    }
    // A Kubernetes canary: replica-ratio weights (asked and achieved) and a pods table.
    for (name, pane) in [("k8s_traffic", 1), ("k8s_health", 2)] {
        let mut m = kube_model();
        m.pane = pane;
        out.push((name, m));
    }
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
        // The dashboard on larger terminals.
        for (w, h) in [(160u16, 48u16), (200, 50)] {
            let buf = render(&model(), &look, w, h);
            let name = format!("dashboard_{w}x{h}_{look_name}");
            insta::assert_snapshot!(name, text(&buf, look_name != "ascii"));
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
            for (w, h) in [(100, 30), (160, 48)] {
                let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
                t.draw(|f| draw(f, &m, &look)).unwrap();
                let first = t.backend().buffer().clone();
                t.draw(|f| draw(f, &m, &look)).unwrap();
                assert!(first.diff(t.backend().buffer()).is_empty());
            }
        }
    }
}

#[test]
fn pods_and_instances_without_a_phase_each_keep_their_table() {
    let look = &looks()[0].1;
    let mut m = kube_model();
    m.pane = 2;
    // Zoomed, so that the table has the whole width.
    m.zoom = true;
    let Some(snap) = m.rows[0].snapshot.as_mut() else {
        panic!("the Kubernetes sample has a snapshot");
    };
    let mut local = snap.instances[0].clone();
    local.status.id = "api@1.0.0.r4-0".into();
    local.status.phase = None;
    local.status.age_s = None;
    // Among the revision's pods, so that only the filter keeps it out of their count.
    snap.instances.insert(1, local);
    let screen = text(&render(&m, look, 120, 40), false);
    for want in [
        "NAME",
        "RESTARTS",
        "api-b41e7c0a9f-6c4d9b7f8-x2k8p 0/1   CrashLoopBackOff",
        "api 1.0.0  2/3 ready",
        "instance",
        "api@1.0.0.r4-0",
    ] {
        assert!(screen.contains(want), "{want:?} missing:\n{screen}");
    }
    // The local instance is not a pod: it is not counted in the revision's pods.
    assert!(!screen.contains("3/4 ready"), "{screen}");
}

#[test]
fn the_history_compares_with_the_range_before_when_the_history_reaches_it() {
    let look = &looks()[0].1;
    let mut m = model();
    m.view = View::History;
    // Eight weeks of sample history: the four weeks before the last four are there.
    m.hist_weeks = 4;
    let screen = text(&render(&m, look, 160, 48), false);
    for measure in [
        "deployment frequency",
        "change failure rate",
        "time to restore",
        "lead time for changes",
    ] {
        let line = screen
            .lines()
            .find(|l| l.contains(measure))
            .unwrap_or_else(|| panic!("{measure} missing:\n{screen}"));
        assert!(line.contains(" was "), "{measure} has no trend: {line}");
    }
    assert!(!screen.contains("no earlier range"), "{screen}");
    // Eight weeks: nothing before them to compare with, and it says so.
    m.hist_weeks = 8;
    let screen = text(&render(&m, look, 160, 48), false);
    assert!(screen.contains("no earlier range"), "{screen}");
}

/// Issue 15: six-digit run numbers and long names made the history's rows overflow their columns.
/// Every column now starts where its header does, on every row, at both sizes.
#[test]
fn history_columns_line_up_with_six_digit_runs_and_long_names() {
    let mut m = model();
    m.view = View::History;
    let mut rows = m.history.clone();
    assert!(rows.len() >= 3);
    rows[0].run = 123_456;
    rows[1].run = 7;
    rows[2].deployment = "payments-gateway-eu-west-1".into();
    m.set_history(rows);
    let look = &looks()[0].1;
    for (w, h) in [(120, 40), (80, 24)] {
        let screen = text(&render(&m, look, w, h), false);
        let lines: Vec<&str> = screen.lines().collect();
        let head = lines
            .iter()
            .position(|l| l.contains("run") && l.contains("outcome"))
            .unwrap_or_else(|| panic!("no header:\n{screen}"));
        let col = |l: &str, word: &str| l.find(word).map(|b| l[..b].chars().count());
        let outcome_at = col(lines[head], "outcome").unwrap_or(0);
        let run_end = col(lines[head], "run").unwrap_or(0) + 3;
        let mut seen = 0;
        for l in &lines[head + 1..] {
            let Some(at) = ["waiting_approval", "failed", "succeeded", "rolled_back"]
                .iter()
                .find_map(|o| col(l, o))
            else {
                continue;
            };
            seen += 1;
            assert_eq!(at, outcome_at, "outcome column moved ({w}x{h}):\n{screen}");
            // The run number ends where the header's `run` ends (right-aligned).
            let inner: String = l.chars().skip(1).collect();
            let digits_end =
                inner
                    .char_indices()
                    .find(|(_, c)| c.is_ascii_digit())
                    .map(|(i, _)| {
                        inner[i..]
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .count()
                            + inner[..i].chars().count()
                            + 1
                    });
            assert_eq!(digits_end, Some(run_end), "run column ({w}x{h}):\n{screen}");
        }
        assert!(seen >= 3, "{screen}");
        assert!(screen.contains("123456"), "{screen}");
    }
}
