//! Naming a PostgreSQL store (`store.url`, `HOOKWATCH_STORE_URL`) on the real
//! binary: a store that cannot be opened stops the start with exit code 2 and
//! a message naming the database's host with its password masked, and
//! `check-config` shows which store the config selects, masked too. None of
//! these runs needs a PostgreSQL server: the database named is unreachable
//! (a closed loopback port), as after a typo or an outage.

mod harness;

use harness::{run_to_exit, TestConfig};

/// A database nothing listens for (port 1 on loopback refuses at once).
const UNREACHABLE: &str = "postgres://hook:hunter2@127.0.0.1:1/hookwatch";

/// Exit code for bad input (config, store): the operator must fix something.
const EXIT_BAD_INPUT: i32 = 2;

fn assert_refused_start(run: &harness::Finished, what: &str) {
    assert_eq!(
        run.code,
        Some(EXIT_BAD_INPUT),
        "{what}: exit code; stderr:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("127.0.0.1"),
        "{what}: the message names the host:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"),
        "{what}: the password is masked:\n{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{what}: no panic:\n{}",
        run.stderr
    );
    // The start stopped at the store: no redb file was made on the side, and
    // no holder note says an API listens.
    let left: Vec<_> = walk(run.dir.path())
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.ends_with(".redb") || name.ends_with(".pid")
        })
        .collect();
    assert!(left.is_empty(), "{what}: left behind {left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn an_unreachable_store_url_in_the_file_stops_the_start_with_exit_2_naming_the_host() {
    let config = TestConfig::new().store_url(UNREACHABLE);
    let run = run_to_exit(&config, &["--daemon"]).await;
    assert_refused_start(&run, "store.url");
}

#[tokio::test]
async fn an_unreachable_store_url_in_the_environment_stops_the_start_the_same_way() {
    let config = TestConfig::new().store_url_from_env(UNREACHABLE);
    let run = run_to_exit(&config, &["--daemon"]).await;
    assert_refused_start(&run, "HOOKWATCH_STORE_URL");
}

#[tokio::test]
async fn a_store_url_that_is_not_postgres_is_a_config_error_naming_store_url() {
    let config = TestConfig::new().store_url("mysql://root:hunter2@127.0.0.1:3306/hw");
    let run = run_to_exit(&config, &["--daemon"]).await;
    assert_eq!(run.code, Some(EXIT_BAD_INPUT), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("store.url"), "{}", run.stderr);
    assert!(run.stderr.contains("postgres://"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
}

#[tokio::test]
async fn check_config_shows_the_selected_store_masked() {
    let config = TestConfig::new().store_url_from_env(UNREACHABLE);
    let run = run_to_exit(&config, &["check-config"]).await;
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(!run.stdout.contains("hunter2"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("url = \"postgres://hook:********@127.0.0.1:1/hookwatch\""),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("HOOKWATCH_STORE_URL"), "{}", run.stdout);
    assert!(!run.stdout.contains("path = "), "{}", run.stdout);
    let json = run_to_exit(&config, &["check-config", "--json"]).await;
    assert_eq!(json.code, Some(0), "stderr:\n{}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        value["store"]["url"],
        "postgres://hook:********@127.0.0.1:1/hookwatch"
    );
}
