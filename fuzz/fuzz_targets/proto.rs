//! The host's socket protocol: a request line as the host reads it, and the answer it writes.
//! A request that decodes encodes and decodes again to the same JSON; every answer is one line.
#![no_main]

use cutover::local::proto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let resp = match proto::decode_request(line) {
        Ok(req) => {
            let json = serde_json::to_value(&req).expect("a request encodes");
            let again: proto::Request =
                serde_json::from_value(json.clone()).expect("an encoded request decodes");
            assert_eq!(serde_json::to_value(&again).expect("encodes"), json);
            proto::Response::Ok
        }
        Err(e) => proto::Response::Error {
            message: format!("bad request: {e}"),
        },
    };
    let out = proto::encode_response(&resp);
    assert!(out.ends_with('\n') && out.matches('\n').count() == 1);
    let back: proto::Response = serde_json::from_str(out.trim_end()).expect("an answer decodes");
    let _ = back;
});
