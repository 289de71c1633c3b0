//! The condition language: text -> expression or an error at a byte offset inside the text.
//! A parsed expression evaluates without panicking, and its source parses again the same.
#![no_main]

use cutover::spec::expr::Expr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Expr::parse(text) {
        Ok(e) => {
            let again = Expr::parse(&e.to_string()).expect("a parsed expression's text parses");
            assert_eq!(again.identifiers(), e.identifiers());
            // Every identifier at a few values: eval never panics and both parses agree.
            for v in [0.0, 1.0, -1.0, 0.05, f64::INFINITY] {
                let look = |_: &str| Some(v);
                assert_eq!(e.eval(&look), again.eval(&look));
            }
            let none = |_: &str| None;
            assert_eq!(e.eval(&none).is_err(), !e.identifiers().is_empty());
        }
        Err(err) => {
            assert!(
                err.offset <= text.len(),
                "error offset past the end: {err:?}"
            );
            let _ = err.to_string();
        }
    }
});
