//! Route payloads: any JSON object is parsed as every route's request, with the checks each
//! applies after parsing.
#![no_main]

use chatgate::api::parse_every_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(data) = serde_json::from_slice::<serde_json::Value>(bytes) {
        parse_every_request(&data);
    }
});
