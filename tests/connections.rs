//! A flood of connections is bounded by `server.max_connections`: clients past
//! the limit wait their turn, nobody is dropped and nothing crashes.

mod harness;

use harness::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_concurrent_connections_are_served_within_the_bound() {
    let receiver = Receiver::start().await;
    let mut daemon = Daemon::start(
        TestConfig::new()
            .max_connections(50)
            .destination(Dest::new("a", &receiver.url())),
    )
    .await;
    let addr = daemon.addr;

    // 1,000 clients at once (the kernel queues up to 1,024 waiting to be
    // accepted), each holding its connection open a moment before sending, so
    // far more than 50 are open together.
    let served = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for n in 0..1000 {
        let served = served.clone();
        clients.push(tokio::spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let body = format!("{{\"n\":{n}}}");
            let request = format!(
                "POST /v1/destinations/a/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).await.expect("send");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.expect("read");
            assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
            served.fetch_add(1, Ordering::Relaxed);
        }));
    }
    let all = async {
        for client in clients {
            client.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every client is served in time");
    assert_eq!(served.load(Ordering::Relaxed), 1000);
    assert!(daemon.is_running(), "the daemon is still running");
    wait_until_within(Duration::from_secs(30), "all 1,000 delivered", || {
        receiver.distinct_count() == 1000
    })
    .await;
    daemon.sigterm();
    assert!(daemon.wait_exit(Duration::from_secs(15)).await.success());
}
