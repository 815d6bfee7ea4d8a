//! Shell completions and man pages, generated from the same [`Cli`]
//! definitions the binary parses, so they cannot drift from it.
//!
//! The man pages are committed under `assets/` (`hookwatch.1` for the
//! command, `man/hookwatch-*.1` for each subcommand); `tests/cli_docs.rs`
//! fails when they differ from what [`man_pages`] renders, and rewrites them
//! with `HOOKWATCH_BLESS=1`.

use super::Cli;
use clap::CommandFactory;
use std::io::Write;

/// Writes the completion script for `shell`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) -> std::io::Result<()> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "hookwatch", &mut script);
    out.write_all(&script)?;
    out.flush()
}

/// One rendered man page.
pub struct ManPage {
    /// Where it belongs, relative to `assets/`: `hookwatch.1`, or
    /// `man/hookwatch-events-list.1` for a subcommand.
    pub path: String,
    pub roff: Vec<u8>,
}

/// Every man page: the command's, then one per subcommand at every depth.
pub fn man_pages() -> std::io::Result<Vec<ManPage>> {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    render(&command, true, &mut pages)?;
    Ok(pages)
}

fn render(command: &clap::Command, top: bool, pages: &mut Vec<ManPage>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(command.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)?;
    let path = if top {
        man.get_filename()
    } else {
        format!("man/{}", man.get_filename())
    };
    pages.push(ManPage { path, roff });
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        render(sub, false, pages)?;
    }
    Ok(())
}
