//! Client frames, JSON and MessagePack: decoding answers or refuses, never panics, and the data
//! of a decoded request goes through every route's parsing.
#![no_main]

use chatgate::api::frame::{Format, Incoming, decode};
use chatgate::api::parse_every_request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for format in [Format::Json, Format::MsgPack] {
        if let Ok(Incoming::Request { data, .. }) = decode(bytes, format) {
            parse_every_request(&data);
        }
    }
});
