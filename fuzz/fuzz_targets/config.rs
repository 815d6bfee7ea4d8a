//! `Config::parse` on arbitrary UTF-8 TOML: errors are fine, panics are not, and
//! every error names the file it came from.
#![no_main]

use hookwatch::config::{Config, ConfigSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(err) = Config::parse(text, ConfigSource::File("fuzz.toml".into()), None) {
        let shown = err.to_string();
        assert!(shown.contains("fuzz.toml"), "error does not name the file: {shown}");
    }
});
