//! Theme files: text -> theme or problems; a theme resolves at every colour depth.
#![no_main]

use cutover::tui::theme::{self, Depth, Slot};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match theme::parse("fuzz.yaml", text) {
        Ok(t) => {
            for depth in [
                Depth::TrueColor,
                Depth::Ansi256,
                Depth::Ansi16,
                Depth::NoColor,
            ] {
                let r = t.resolve(depth);
                for slot in Slot::ALL {
                    let _ = r.style(slot);
                }
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
