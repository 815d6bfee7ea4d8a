//! What the terminal shows after the TUI has quit while the embedded engine
//! still waits for attempts in flight: one line, rewritten in place as they
//! finish, instead of a blank screen for up to the shutdown grace.

use std::io::Write;
use std::time::Duration;

/// The "waiting for N attempts to finish" line on the restored terminal.
pub struct QuitNotice<W: Write> {
    out: W,
    grace: Duration,
    /// Whether a line is on screen (and so needs ending).
    shown: bool,
}

impl QuitNotice<std::io::Stdout> {
    /// A notice on standard output (the terminal the TUI has just given back).
    pub fn on_stdout(grace: Duration) -> Self {
        QuitNotice::new(std::io::stdout(), grace)
    }
}

impl<W: Write> QuitNotice<W> {
    pub fn new(out: W, grace: Duration) -> Self {
        QuitNotice {
            out,
            grace,
            shown: false,
        }
    }

    /// Shows how many attempts are still running; nothing while none is.
    pub fn show(&mut self, running: usize) {
        if running == 0 && !self.shown {
            return;
        }
        // Carriage return and erase-line: the count is rewritten in place.
        let _ = if running == 0 {
            write!(self.out, "\r\x1b[2Kevery attempt finished and recorded")
        } else {
            let attempts = if running == 1 { "attempt" } else { "attempts" };
            write!(
                self.out,
                "\r\x1b[2Kwaiting for {running} {attempts} to finish (up to {} s)…",
                self.grace.as_secs()
            )
        };
        let _ = self.out.flush();
        self.shown = true;
    }

    /// Ends the line, if one was shown, so the shell prompt starts on its own.
    pub fn finish(mut self) {
        if self.shown {
            let _ = writeln!(self.out);
            let _ = self.out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_in_place_and_ends_the_line() {
        let mut out = Vec::new();
        let mut notice = QuitNotice::new(&mut out, Duration::from_secs(10));
        notice.show(2);
        notice.show(1);
        notice.show(0);
        notice.finish();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "\r\x1b[2Kwaiting for 2 attempts to finish (up to 10 s)…\
             \r\x1b[2Kwaiting for 1 attempt to finish (up to 10 s)…\
             \r\x1b[2Kevery attempt finished and recorded\n"
        );
    }

    #[test]
    fn shows_nothing_when_nothing_is_running() {
        let mut out = Vec::new();
        let mut notice = QuitNotice::new(&mut out, Duration::from_secs(10));
        notice.show(0);
        notice.finish();
        assert!(out.is_empty());
    }
}
