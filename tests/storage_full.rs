//! Storage failure: when the store cannot grow (a file-size limit stands in for a
//! full disk, with no privileges needed), ingestion answers 503 with a clear
//! error and acknowledges nothing it has not stored; when room returns it
//! recovers by itself, and every acknowledged event is delivered.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn set_file_size_limit(pid: i32, bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    let done = unsafe { libc::prlimit(pid, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(
        done,
        0,
        "prlimit failed: {}",
        std::io::Error::last_os_error()
    );
}

#[tokio::test]
async fn a_full_store_answers_503_then_recovers_by_itself() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.redb");
    let config = dir.path().join("hookwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nmax_body = \"1MiB\"\n[store]\npath = {}\n[[destinations]]\nid = \"a\"\nurl = \"{}\"\n",
            toml_str(&store.display().to_string()),
            receiver.url()
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookwatch"));
    command
        .args(["--daemon", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let pid = child.id() as i32;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = parse_listening(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("daemon did not start");
    let client = http_client();
    let url = format!("http://{addr}/v1/destinations/a/events");
    let body = "x".repeat(64 * 1024);

    // The file may not grow past its size now plus a little.
    let size = std::fs::metadata(&store).unwrap().len();
    set_file_size_limit(pid, size + 256 * 1024);
    let mut acked = Vec::new();
    let mut refused = None;
    for _ in 0..200 {
        let response = client.post(&url).body(body.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        match status {
            202 => acked.push(
                serde_json::from_str::<serde_json::Value>(&text).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ),
            503 => {
                refused = Some(text);
                break;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    let refused = refused.expect("the store never filled up");
    println!(
        "{} events acknowledged before the store filled; then: {refused}",
        acked.len()
    );
    assert!(refused.contains("\"error\""), "{refused}");
    assert!(refused.to_lowercase().contains("store"), "{refused}");

    // While full, it keeps refusing rather than pretending.
    let again = client.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 503);

    // Room returns: ingestion recovers by itself within a few seconds.
    set_file_size_limit(pid, libc::RLIM_INFINITY);
    let mut recovered = None;
    for _ in 0..100 {
        let response = client
            .post(&url)
            .body("{\"after\":true}")
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 202 {
            recovered = Some(response.text().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("ingestion did not recover after room returned");
    acked.push(
        serde_json::from_str::<serde_json::Value>(&recovered).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string(),
    );

    wait_until(
        Duration::from_secs(30),
        "every acknowledged event delivered",
        || {
            let seen = receiver.distinct_ids();
            acked.iter().all(|id| seen.contains(id))
        },
    )
    .await;
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}
