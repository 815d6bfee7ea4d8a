//! Storage failure: when the store cannot grow (a file-size limit stands in for a
//! full disk, with no privileges needed), ingestion answers 503 with a clear
//! error and acknowledges nothing it has not stored; when room returns it
//! recovers by itself, and every acknowledged event is delivered.

mod harness;

use harness::*;
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
    let mut daemon = Daemon::start(
        TestConfig::new()
            .max_body("1MiB")
            .destination(Dest::new("a", &receiver.url())),
    )
    .await;
    let pid = daemon.pid();
    let store = daemon.store_path.clone();
    let addr = daemon.addr;
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

    wait_until_within(
        Duration::from_secs(30),
        "every acknowledged event delivered",
        || receiver.missing(&acked).is_empty(),
    )
    .await;

    // The failure is an operational notice, kept in memory while the store
    // refused writes and stored once it wrote again.
    let notice = wait_for("the store_write_failed notice", || async {
        let page = daemon.get_json("/v1/notices").await;
        page["notices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["type"] == "store_write_failed")
            .cloned()
            .ok_or_else(|| page.to_string())
    })
    .await;
    assert!(notice["commits"].as_u64().unwrap() >= 1, "{notice}");
    assert!(notice["writes"].as_u64().unwrap() >= 1, "{notice}");
    assert_eq!(notice["cause"]["by"], "store", "{notice}");
    assert!(!notice["error"].as_str().unwrap().is_empty(), "{notice}");
    assert!(
        daemon.log_text().contains("the store writes again"),
        "{}",
        daemon.log_text()
    );

    daemon.sigterm();
    let status = daemon.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "{status}");
}
