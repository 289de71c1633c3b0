//! Property tests of the spec reader (`load_bytes`, the path `cutover validate` takes): no panic
//! on any input, syntax errors at a `LINE:COL` inside the text, every diagnostic rendered as
//! `FILE:LINE:COL: message` or `FILE: message`, and checked specs surviving the store's JSON
//! round trip (written, read back and checked again) unchanged.

use proptest::prelude::*;

use super::yaml;
use super::{load_bytes, load_str, Diagnostic, ValidSpec};

const SEEDS: [&str; 6] = [
    include_str!("../../specs/basic.yaml"),
    include_str!("../../specs/blue-green.yaml"),
    include_str!("../../specs/canary.yaml"),
    include_str!("../../specs/rolling.yaml"),
    include_str!("../../specs/recreate.yaml"),
    include_str!("../../specs/demo/local-v2.yaml"),
];

/// Snippets that break YAML or the spec's types in typical ways.
const SNIPPETS: &[&str] = &[
    ":",
    "- ",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "&a ",
    "*a",
    "*b",
    "\n  ",
    "\n",
    "\t",
    "# ",
    "0x1",
    "-1",
    "1e999",
    "~",
    "null",
    "!!str ",
    "? ",
    "|\n",
    ">-\n",
    "---\n",
    "...",
    ",",
    "%YAML 1.2\n",
    "é",
    "\u{feff}",
    "\r\n",
    "  x: 1\n",
    "replicas: -3\n",
    "strategy: teleport\n",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, &'static str),
    DropLine(usize),
    Dent(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), prop::sample::select(SNIPPETS)).prop_map(|(at, s)| Edit::Insert(at, s)),
        any::<usize>().prop_map(Edit::DropLine),
        (any::<usize>(), 0usize..6).prop_map(|(at, n)| Edit::Dent(at, n)),
    ]
}

/// Apply edits at positions taken modulo the text (snapped to character boundaries).
fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut s = seed.to_string();
    let snap = |s: &str, at: usize| {
        let mut i = at % (s.len() + 1);
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    for e in edits {
        match *e {
            Edit::Delete(at, n) => {
                let a = snap(&s, at);
                let b = snap(&s, a.saturating_add(n).min(s.len()));
                s.replace_range(a..b.max(a), "");
            }
            Edit::Insert(at, text) => {
                let a = snap(&s, at);
                s.insert_str(a, text);
            }
            Edit::DropLine(at) | Edit::Dent(at, _) => {
                let mut lines: Vec<String> = s.lines().map(str::to_string).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = at % lines.len();
                match *e {
                    Edit::Dent(_, n) => {
                        lines[i] = format!("{}{}", " ".repeat(n), lines[i].trim_start())
                    }
                    _ => {
                        lines.remove(i);
                    }
                }
                s = lines.join("\n");
            }
        }
    }
    s
}

/// The contract's shapes: `FILE:LINE:COL: message` with the place inside the text, or
/// `FILE: field.path: message` / `FILE: message`.
fn check_diags(text: &str, diags: &[Diagnostic]) -> Result<(), TestCaseError> {
    prop_assert!(!diags.is_empty(), "refused without a reason");
    let lines = text.lines().count() + 1;
    for d in diags {
        let shown = d.render("spec.yaml");
        match d {
            Diagnostic::At { pos, message } => {
                prop_assert!(
                    pos.line >= 1 && pos.line <= lines + 1 && pos.col >= 1,
                    "{}",
                    shown
                );
                prop_assert_eq!(
                    &shown,
                    &format!("spec.yaml:{}:{}: {message}", pos.line, pos.col)
                );
            }
            Diagnostic::Field { path, .. } => {
                prop_assert!(
                    !path.is_empty() && shown.starts_with("spec.yaml: "),
                    "{}",
                    shown
                )
            }
            Diagnostic::File { .. } => prop_assert!(shown.starts_with("spec.yaml: "), "{}", shown),
        }
        prop_assert!(!shown.contains('\n') || text.contains('\n'), "{}", shown);
    }
    Ok(())
}

/// The store's round trip: JSON written, read back through `ValidSpec`'s checking reader.
fn store_round_trip(spec: &ValidSpec) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: ValidSpec =
        serde_json::from_str(&json).map_err(|e| TestCaseError::fail(format!("{e}\n{json}")))?;
    prop_assert_eq!(&back, spec);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn any_bytes_are_a_spec_or_diagnostics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match load_bytes(&bytes) {
            Ok(spec) => store_round_trip(&spec)?,
            Err(diags) => check_diags(&String::from_utf8_lossy(&bytes), &diags)?,
        }
    }

    #[test]
    fn mutated_specs_are_checked_or_refused_with_places(
        seed in prop::sample::select(SEEDS.as_slice()),
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let text = mutate(seed, &edits);
        match load_str(&text) {
            Ok(spec) => store_round_trip(&spec)?,
            Err(diags) => {
                check_diags(&text, &diags)?;
                // A text YAML cannot read is refused at a place (unless nothing is in it).
                if let Err(e) = yaml::check_bytes(text.as_bytes()).and_then(yaml::parse) {
                    prop_assert!(e.pos.is_some() || e.message.contains("empty"), "{:?}", e);
                    prop_assert_eq!(diags.len(), 1);
                }
            }
        }
    }

    #[test]
    fn thresholds_read_back_from_the_store_are_the_numbers_written(x in any::<f64>()) {
        prop_assume!(x.is_finite());
        // `{:?}` is the shortest text that reads back as `x`.
        let text = SEEDS[2].replacen("threshold: 0.05", &format!("threshold: {x:?}"), 1);
        let spec = load_str(&text).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        store_round_trip(&spec)?;
    }

    #[test]
    fn checked_specs_round_trip_and_check_the_same(
        seed in prop::sample::select(SEEDS.as_slice()),
        version in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}(-[a-z]{1,5})?",
        replicas in 1u32..50,
    ) {
        let text = seed
            .replacen("replicas: 3", &format!("replicas: {replicas}"), 1)
            .replacen("replicas: 2", &format!("replicas: {replicas}"), 1);
        let spec = load_str(&text).map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        store_round_trip(&spec)?;
        // A changed copy is checked again and survives the same way.
        let amended = spec
            .amend(|s| s.version = version.clone())
            .map_err(|d| TestCaseError::fail(format!("{d:?}")))?;
        prop_assert_eq!(&amended.version, &version);
        store_round_trip(&amended)?;
    }
}
