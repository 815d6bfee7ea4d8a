//! Copying to the clipboard of the terminal the operator sits at, which may be
//! on another machine (ssh, tmux): the OSC 52 escape asks the terminal itself
//! to set its clipboard. Terminals that do not allow it ignore the escape.

use base64::Engine as _;

/// The OSC 52 escape that sets the clipboard (`c`) to `text`.
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{encoded}\x07")
}

/// Writes the escape for `text` to `terminal` and flushes it.
pub fn copy(terminal: &mut dyn std::io::Write, text: &str) -> std::io::Result<()> {
    terminal.write_all(osc52(text).as_bytes())?;
    terminal.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_sets_the_clipboard_to_the_base64_of_the_text() {
        assert_eq!(osc52("hi"), "\x1b]52;c;aGk=\x07");
        assert_eq!(osc52(""), "\x1b]52;c;\x07");
        let mut out = Vec::new();
        copy(&mut out, "{\"a\":1}").unwrap();
        assert_eq!(out, b"\x1b]52;c;eyJhIjoxfQ==\x07");
    }
}
