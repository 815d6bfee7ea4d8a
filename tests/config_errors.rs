//! A bad config makes `hookwatch --daemon` exit with code 2 and one error message
//! on stderr that names the file, the key and what is wrong; never a panic.
//!
//! The config text is written by hand here on purpose: malformed and mistyped
//! files are the input under test, which the typed builder cannot produce.

mod harness;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a process with a bad config may take to exit by itself.
const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Runs `hookwatch --daemon --config <path>`; returns its output, killing it and
/// failing if it has not exited within `EXIT_WITHIN`.
fn run_daemon_with(config_path: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .arg("--daemon")
        .arg("--config")
        .arg(config_path)
        .env_remove("HOOKWATCH_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookwatch");
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(EXIT_WITHIN) {
        Ok(output) => output.expect("wait for hookwatch"),
        Err(_) => {
            // SAFETY: kill(2) on the child we spawned; it has not been reaped,
            // because the waiting thread has not returned.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let output = rx.recv().ok().and_then(Result::ok);
            panic!(
                "hookwatch with a bad config did not exit within {EXIT_WITHIN:?}; stderr:\n{}",
                output
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            );
        }
    }
}

/// A config file in a fresh temporary directory, with the store there too.
struct ConfigFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("hookwatch.toml");
        let store = dir.path().join("hookwatch.redb");
        let text = text.replace("STORE_PATH", &store.display().to_string());
        std::fs::write(&path, text).expect("write config");
        ConfigFile { dir, path }
    }
}

/// A valid preamble: loopback listen, store in the temp dir.
const PREAMBLE: &str = "[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = \"STORE_PATH\"\n\n";

/// A valid `orders` destination, to which a test appends one bad line.
const ORDERS: &str = "[[destinations]]\nid = \"orders\"\nurl = \"http://127.0.0.1:9/hook\"\n";

/// Asserts exit code 2 and one stderr message naming the file and every
/// `must_mention` substring; returns the message.
fn assert_config_error(config_path: &Path, must_mention: &[&str]) -> String {
    let output = run_daemon_with(config_path);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(2),
        "a bad config should exit with code 2, got {}; stderr:\n{stderr}",
        output.status
    );
    let lower = stderr.to_lowercase();
    for forbidden in ["panicked", "rust_backtrace", "backtrace"] {
        assert!(
            !lower.contains(forbidden),
            "stderr should not contain {forbidden:?}:\n{stderr}"
        );
    }
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected ONE error message on stderr, got {} lines:\n{stderr}",
        lines.len()
    );
    let path = config_path.display().to_string();
    assert!(
        stderr.contains(&path),
        "the error should name the config file {path:?}:\n{stderr}"
    );
    for needle in must_mention {
        assert!(
            stderr.contains(needle),
            "the error should mention {needle:?}:\n{stderr}"
        );
    }
    stderr
}

/// Writes `text` (with the preamble) and asserts it is refused as described.
fn assert_refused(text: &str, must_mention: &[&str]) -> String {
    let config = ConfigFile::new(&format!("{PREAMBLE}{text}"));
    let message = assert_config_error(&config.path, must_mention);
    assert!(
        !config.dir.path().join("hookwatch.redb").exists(),
        "a refused config should not create the store"
    );
    message
}

#[test]
fn valid_config_is_accepted_so_the_cases_below_test_one_thing_each() {
    // The preamble and the `orders` destination on their own must start; each
    // case below then adds exactly one mistake.
    let config = ConfigFile::new(&format!("{PREAMBLE}{ORDERS}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .arg("--daemon")
        .arg("--config")
        .arg(&config.path)
        .env_remove("HOOKWATCH_TOKEN")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookwatch");
    // Accepted means it got as far as listening, not merely "still alive after a
    // while", which a slow machine would make true of a refused config too.
    let stderr = child.stderr.take().expect("piped stderr");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(harness::DEADLINE) {
            Ok(line) if harness::parse_listening(&line).is_some() => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let status = child.try_wait().unwrap();
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "a valid config should start the daemon listening (exit status {status:?}); stderr:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn missing_explicit_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("does-not-exist.toml");
    assert_config_error(&path, &[]);
}

#[test]
fn unparsable_toml_names_the_line() {
    let config = ConfigFile::new("[server]\nlisten = \"127.0.0.1:0\"\nmax_body = = \"1MiB\"\n");
    assert_config_error(&config.path, &["line 3"]);
}

#[test]
fn unknown_server_key() {
    // The preamble's [server] table cannot be repeated, so this file is whole.
    let config =
        ConfigFile::new("[server]\nlisn = \"127.0.0.1:0\"\n\n[store]\npath = \"STORE_PATH\"\n");
    assert_config_error(&config.path, &["lisn"]);
}

#[test]
fn unknown_destination_key_names_the_destination() {
    assert_refused(
        &format!("{ORDERS}tiemout = \"3s\"\n"),
        &["destinations[orders].tiemout"],
    );
}

#[test]
fn destination_with_bad_url() {
    assert_refused(
        "[[destinations]]\nid = \"orders\"\nurl = \"not a url\"\n",
        &["destinations[orders].url"],
    );
}

#[test]
fn destination_with_non_http_url() {
    assert_refused(
        "[[destinations]]\nid = \"orders\"\nurl = \"ftp://127.0.0.1/hook\"\n",
        &["destinations[orders].url"],
    );
}

#[test]
fn bad_duration() {
    assert_refused(
        &format!("{ORDERS}timeout = \"3x\"\n"),
        &["destinations[orders].timeout", "3x"],
    );
}

#[test]
fn bad_size() {
    // The preamble's [server] table cannot be repeated, so this file is whole.
    let config = ConfigFile::new(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body = \"lots\"\n\n[store]\npath = \"STORE_PATH\"\n",
    );
    assert_config_error(&config.path, &["server.max_body", "lots"]);
}

#[test]
fn duplicate_destination_id() {
    assert_refused(
        &format!("{ORDERS}\n{ORDERS}"),
        &["destinations[orders]", "orders"],
    );
}

#[test]
fn zero_concurrency() {
    assert_refused(
        &format!("{ORDERS}concurrency = 0\n"),
        &["destinations[orders].concurrency"],
    );
}

#[test]
fn zero_max_retries() {
    assert_refused(
        &format!("{ORDERS}[destinations.retry]\nmax_retries = 0\n"),
        &["destinations[orders].retry.max_retries"],
    );
}

#[test]
fn unknown_retry_schedule() {
    assert_refused(
        &format!("{ORDERS}[destinations.retry]\nschedule = \"sometimes\"\n"),
        &["destinations[orders].retry.schedule", "sometimes"],
    );
}

#[test]
fn destination_without_id() {
    assert_refused(
        "[[destinations]]\nurl = \"http://127.0.0.1:9/hook\"\n",
        &["destinations[0].id"],
    );
}

#[test]
fn destination_without_url() {
    assert_refused(
        "[[destinations]]\nid = \"orders\"\n",
        &["destinations[orders].url"],
    );
}

#[test]
fn wrong_type_in_a_destination_names_the_key() {
    let message = assert_refused(
        &format!("{ORDERS}concurrency = \"8\"\n"),
        &[
            "destinations[orders].concurrency",
            "expected an integer",
            "\"8\"",
        ],
    );
    assert!(!message.contains("i64"), "no Rust type names: {message}");
}

#[test]
fn wrong_type_in_a_retry_table_names_the_nested_key() {
    assert_refused(
        &format!("{ORDERS}[destinations.retry]\nmax_retries = \"three\"\n"),
        &[
            "destinations[orders].retry.max_retries",
            "expected an integer",
            "\"three\"",
        ],
    );
}

#[test]
fn wrong_type_in_the_server_table_names_the_key_and_line() {
    // The preamble's [server] table cannot be repeated, so this file is whole.
    let config = ConfigFile::new(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = \"50\"\n\n[store]\npath = \"STORE_PATH\"\n",
    );
    assert_config_error(
        &config.path,
        &["server.max_connections", "expected an integer", "line 3"],
    );
}

#[test]
fn unknown_key_in_a_destination_is_named_once() {
    let message = assert_refused(
        &format!("{ORDERS}bogus = 1\n"),
        &["destinations[orders].bogus"],
    );
    assert!(!message.contains("bogus.bogus"), "{message}");
}

#[test]
fn a_wrong_type_reads_as_key_value_and_line_on_one_line() {
    let config = ConfigFile::new(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_connections = \"many\"\n\n[store]\npath = \"STORE_PATH\"\n",
    );
    let message = assert_config_error(
        &config.path,
        &["server.max_connections: expected an integer, got \"many\" (line 3)"],
    );
    assert!(
        !message.contains("string \""),
        "no serde wording: {message}"
    );
}

#[test]
fn a_wrong_type_in_a_destination_names_its_line() {
    // The preamble is 6 lines; ORDERS adds 3, so the bad line is line 10.
    assert_refused(
        &format!("{ORDERS}concurrency = \"lots\"\n"),
        &["destinations[orders].concurrency: expected an integer, got \"lots\" (line 10)"],
    );
    assert_refused(
        &format!("{ORDERS}[destinations.retry]\nmax_retries = \"three\"\n"),
        &["destinations[orders].retry.max_retries: expected an integer, got \"three\" (line 11)"],
    );
}

/// A daemon started on a config file from `cwd`, stopped (SIGTERM) once its
/// start line is logged; returns everything it logged before that.
fn start_line_of(config_path: &Path, cwd: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .arg("--daemon")
        .arg("--config")
        .arg(config_path)
        .current_dir(cwd)
        .env_remove("HOOKWATCH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookwatch");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let deadline = std::time::Instant::now() + EXIT_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                log.push_str(&line);
                log.push('\n');
                if harness::parse_listening(&line).is_some() {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no start line within {EXIT_WITHIN:?}; log:\n{log}");
            }
        }
    }
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
    log
}

#[test]
fn listen_accepts_a_host_name_and_says_what_it_resolved_to() {
    let port = harness::free_port();
    let config = ConfigFile::new(&format!(
        "[server]\nlisten = \"localhost:{port}\"\n\n[store]\npath = \"STORE_PATH\"\n"
    ));
    let log = start_line_of(&config.path, config.dir.path());
    assert!(
        log.contains(&format!("localhost:{port} resolved to")),
        "the log says what localhost resolved to:\n{log}"
    );
    let listening = log
        .lines()
        .find_map(harness::parse_listening)
        .expect("a listening line");
    assert!(listening.ip().is_loopback(), "{listening}");
    assert_eq!(listening.port(), port);
}

#[test]
fn a_relative_store_path_is_taken_from_the_config_files_directory() {
    let config =
        ConfigFile::new("[server]\nlisten = \"127.0.0.1:0\"\n\n[store]\npath = \"data/hw.redb\"\n");
    std::fs::create_dir(config.dir.path().join("data")).expect("data dir");
    let elsewhere = tempfile::tempdir().expect("another dir");
    let log = start_line_of(&config.path, elsewhere.path());
    let expected = config.dir.path().join("data").join("hw.redb");
    assert!(
        log.contains(&format!("store={}", expected.display())),
        "the log names the absolute store path {expected:?}:\n{log}"
    );
    assert!(expected.is_file(), "the store is beside the config file");
    assert!(
        !elsewhere.path().join("data").exists(),
        "nothing was created in the working directory"
    );
}

#[test]
fn a_port_in_use_is_one_line_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let config = ConfigFile::new(&format!(
        "[server]\nlisten = \"{addr}\"\n\n[store]\npath = \"STORE_PATH\"\n"
    ));
    let output = run_daemon_with(&config.path);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines,
        [format!("hookwatch: cannot listen on {addr}: address already in use").as_str()],
        "{stderr}"
    );
}
