//! What a hookwatch process leaves on disk beside its store and in the temp
//! folder: the `.pid` note goes with a clean exit and a stale one never blocks
//! a start; a `--demo` removes its temporary folder however it is stopped.

mod harness;

use harness::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn note_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".pid");
    PathBuf::from(name)
}

fn note_pid(store: &Path) -> Option<i32> {
    hookwatch::store::read_holder_note(store)
        .and_then(|note| note.pid)
        .map(|pid| pid as i32)
}

#[tokio::test]
async fn the_pid_note_goes_with_every_clean_stop() {
    let receiver = Receiver::start().await;
    let config = TestConfig::new().destination(Dest::new("a", &receiver.url()));
    let mut daemon = Daemon::start(config).await;
    let store = daemon.store_path.clone();
    for (signal, name) in [
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        assert_eq!(
            note_pid(&store),
            Some(daemon.pid()),
            "a running daemon leaves its pid beside the store"
        );
        daemon.signal(signal);
        let status = daemon.wait_exit(Duration::from_secs(20)).await;
        assert!(status.success(), "{name} is a clean stop: {status}");
        assert!(
            !note_path(&store).exists(),
            "after {name} the note is gone:\n{}",
            daemon.log_text()
        );
        daemon.restart().await;
    }
}

#[tokio::test]
async fn a_stale_pid_note_never_blocks_a_start_and_is_replaced() {
    let receiver = Receiver::start().await;
    let config = TestConfig::new().destination(Dest::new("a", &receiver.url()));
    let mut daemon = Daemon::start(config).await;
    let store = daemon.store_path.clone();
    let killed = daemon.pid();
    // kill -9 leaves the note behind, naming a process that is gone, with the
    // URL its API listened on.
    daemon.sigkill().await;
    let stale = hookwatch::store::read_holder_note(&store).expect("kill -9 leaves the note");
    assert_eq!(stale.pid, Some(killed as u32));
    assert!(stale.url.is_some(), "{stale:?}");

    daemon.restart().await;
    assert_eq!(note_pid(&store), Some(daemon.pid()), "the note is replaced");
    let (status, _) = daemon
        .send(daemon.request(reqwest::Method::GET, "/v1/status"))
        .await;
    assert_eq!(status, 200);

    // A note of an older build (the bare pid of a process that is gone) too.
    daemon.sigkill().await;
    std::fs::write(note_path(&store), format!("{killed}\n")).unwrap();
    daemon.restart().await;
    assert_eq!(note_pid(&store), Some(daemon.pid()));
}

/// `hookwatch --demo --daemon` with its temp folder under `tmp`; returns the
/// process once it listens.
fn start_demo(tmp: &Path) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookwatch"))
        .args(["--demo", "--daemon"])
        .env("TMPDIR", tmp)
        .env("RUST_LOG", "info")
        .env_remove("HOOKWATCH_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookwatch --demo");
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    (child, received)
}

fn demo_dirs(tmp: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("hookwatch-demo-"))
        })
        .collect()
}

#[tokio::test]
async fn a_demo_stopped_by_sighup_or_sigterm_removes_its_temporary_folder() {
    for (signal, name) in [(libc::SIGHUP, "SIGHUP"), (libc::SIGTERM, "SIGTERM")] {
        let tmp = tempfile::tempdir().unwrap();
        let (mut child, lines) = start_demo(tmp.path());
        let mut log = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !log.iter().any(|l: &String| parse_listening(l).is_some()) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => log.push(line),
                Err(_) => panic!("the demo did not listen within 30 s:\n{}", log.join("\n")),
            }
        }
        let dirs = demo_dirs(tmp.path());
        assert_eq!(dirs.len(), 1, "the demo made one folder: {dirs:?}");
        assert!(dirs[0].join("demo.redb").exists());

        // SAFETY: kill(2) on the child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        log.extend(lines.try_iter());
        assert!(status.success(), "{name}: {status}\n{}", log.join("\n"));
        assert_eq!(
            demo_dirs(tmp.path()),
            Vec::<PathBuf>::new(),
            "after {name} the demo's folder is gone"
        );
    }
}
