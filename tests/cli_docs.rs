//! The committed man pages (`assets/hookwatch.1`, `assets/man/`) are what the
//! clap definitions render today. Regenerate them with
//! `HOOKWATCH_BLESS=1 cargo test --test cli_docs`.

use std::path::Path;

#[test]
fn the_committed_man_pages_match_the_definitions() {
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let pages = hookwatch::cli::docs::man_pages().expect("render the man pages");
    assert!(
        pages.iter().any(|page| page.path == "hookwatch.1"),
        "the command's own page is rendered"
    );
    let bless = std::env::var_os("HOOKWATCH_BLESS").is_some();
    let mut stale = Vec::new();
    for page in &pages {
        let path = assets.join(&page.path);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &page.roff).unwrap();
            continue;
        }
        match std::fs::read(&path) {
            Ok(committed) if committed == page.roff => {}
            Ok(_) => stale.push(format!("{} differs", page.path)),
            Err(e) => stale.push(format!("{} cannot be read: {e}", page.path)),
        }
    }
    // A page for a subcommand that no longer exists is stale too.
    let expected: Vec<String> = pages.iter().map(|page| page.path.clone()).collect();
    for entry in std::fs::read_dir(assets.join("man")).into_iter().flatten() {
        let name = format!("man/{}", entry.unwrap().file_name().to_string_lossy());
        if !expected.contains(&name) {
            if bless {
                std::fs::remove_file(assets.join(&name)).unwrap();
            } else {
                stale.push(format!("{name} has no subcommand any more"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the man pages are out of date ({}); regenerate them with \
         HOOKWATCH_BLESS=1 cargo test --test cli_docs",
        stale.join("; ")
    );
}

#[test]
fn the_man_page_lists_every_subcommand_and_the_exit_codes() {
    let pages = hookwatch::cli::docs::man_pages().unwrap();
    let top = pages
        .iter()
        .find(|page| page.path == "hookwatch.1")
        .unwrap();
    let text = String::from_utf8_lossy(&top.roff);
    for sub in [
        "status",
        "events",
        "bulk",
        "destinations",
        "check\\-config",
        "completions",
    ] {
        assert!(text.contains(sub), "hookwatch.1 does not mention {sub}");
    }
    assert!(
        text.contains("no daemon could be reached"),
        "hookwatch.1 does not list the exit codes"
    );
    assert!(pages
        .iter()
        .any(|page| page.path == "man/hookwatch-events-retry.1"));
}
