//! `parse_duration` / `parse_size` on arbitrary UTF-8: they must never panic, and
//! a parsed duration's `format_duration` (and `format_duration_exact`) output
//! must parse back.
#![no_main]

use hookwatch::policy::units::{format_duration, format_duration_exact, parse_duration, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_duration(text) {
        Ok(duration) => {
            let short = format_duration(duration);
            let back = parse_duration(&short).unwrap_or_else(|e| {
                panic!("format_duration({duration:?}) = {short:?} of {text:?} does not re-parse: {e}")
            });
            // Rounded down, never up, and stable once rounded.
            assert!(back <= duration, "{text:?}: {short:?} reads back as {back:?} > {duration:?}");
            assert_eq!(format_duration(back), short, "{text:?}: format not stable");

            let exact = format_duration_exact(duration);
            assert_eq!(
                parse_duration(&exact),
                Ok(duration),
                "{text:?}: format_duration_exact gave {exact:?}, which is not lossless"
            );
        }
        Err(message) => assert!(
            message.starts_with(&format!("invalid duration \"{text}\"")),
            "{text:?}: error does not quote the value: {message}"
        ),
    }
    match parse_size(text) {
        Ok(_) => {}
        Err(message) => assert!(
            message.starts_with(&format!("invalid size \"{text}\"")),
            "{text:?}: error does not quote the value: {message}"
        ),
    }
});
