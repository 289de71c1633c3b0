//! The spec reader, as `cutover validate` runs it: bytes -> checked spec or diagnostics.
//! A checked spec must survive the store's round trip (JSON written, read back and checked again).
#![no_main]

use cutover::spec::{self, ValidSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match spec::load_bytes(data) {
        Ok(valid) => {
            let json = serde_json::to_string(&valid).expect("a checked spec serializes");
            let back: ValidSpec = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("a checked spec does not read back: {e}\n{json}"));
            assert_eq!(back, valid, "the store's round trip changed the spec");
        }
        Err(diags) => {
            assert!(!diags.is_empty(), "a refused spec names no problem");
            for d in &diags {
                let _ = d.render("fuzz.yaml");
            }
        }
    }
});
