//! `cutover.yaml`: text -> workspace configuration or diagnostics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match cutover::governance::config::parse(text) {
        Ok(ws) => {
            let json = serde_json::to_string(&ws).expect("a configuration serializes");
            let _ = json;
        }
        Err(diags) => {
            assert!(
                !diags.is_empty(),
                "a refused configuration names no problem"
            );
            for d in &diags {
                let _ = d.render("cutover.yaml");
            }
        }
    }
});
