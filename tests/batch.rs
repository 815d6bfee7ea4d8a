//! Batch ingestion against the real binary: `POST …/events/batch` (JSON array
//! or NDJSON) stores every item in one commit or none of them, answers one
//! result per item in order, and `hookwatch send` posts files and stdin in
//! batches.

mod harness;

use harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

async fn post_batch(daemon: &Daemon, path: &str, content_type: &str, body: String) -> (u16, Value) {
    daemon
        .send(
            daemon
                .request(Method::POST, path)
                .header("content-type", content_type)
                .body(body),
        )
        .await
}

async fn event_count(daemon: &Daemon, destination: &str) -> usize {
    let page = daemon
        .get_json(&format!("/v1/events?destination={destination}&limit=1000"))
        .await;
    page["events"].as_array().unwrap().len()
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_batch_is_stored_whole_answered_in_order_and_delivered_exactly
);
async fn a_batch_is_stored_whole_answered_in_order_and_delivered_exactly(store: TestStore) {
    let receiver = Receiver::start().await;
    let config = store
        .config()
        .destination(Dest::new("shop", &receiver.url()));
    let daemon = Daemon::start(config).await;

    // Written by hand: a JSON library would print 2.50 as 2.5.
    let mut items: Vec<String> = (0..300)
        .map(|n| format!(r#"{{"payload": {{"n":{n},"price":2.50}}, "topic": "order.created"}}"#))
        .collect();
    items.push(r#"{"payload": "plain words", "content_type": "text/plain"}"#.into());
    let (status, reply) = post_batch(
        &daemon,
        "/v1/destinations/shop/events/batch",
        "application/json",
        format!("[{}]", items.join(",")),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let answers = reply["events"].as_array().unwrap();
    assert_eq!(answers.len(), 301);
    let ids: Vec<String> = answers
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        ids, sorted,
        "answers come in the items' order (ids sort by creation)"
    );
    assert!(answers.iter().all(|a| a["state"] == "pending"), "{reply}");

    wait_until("every event of the batch delivered", || {
        receiver.distinct_count() == 301
    })
    .await;
    for (n, id) in ids.iter().enumerate().take(300) {
        let hit = &receiver.hits_for(id)[0];
        // Stored as written: the same bytes the item carried, 2.50 included.
        assert_eq!(hit.body_text(), format!(r#"{{"n":{n},"price":2.50}}"#));
        assert_eq!(
            hit.header("content-type").as_deref(),
            Some("application/json")
        );
    }
    let text = &receiver.hits_for(&ids[300])[0];
    assert_eq!(text.body_text(), "plain words");
    assert_eq!(text.header("content-type").as_deref(), Some("text/plain"));
    let event = daemon.get_json(&format!("/v1/events/{}", ids[0])).await;
    assert_eq!(event["topic"], "order.created", "{event}");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_bad_item_fails_the_whole_batch_naming_it_and_stores_nothing
);
async fn a_bad_item_fails_the_whole_batch_naming_it_and_stores_nothing(store: TestStore) {
    let receiver = Receiver::start().await;
    let config = store
        .config()
        .destination(Dest::new("shop", &receiver.url()))
        .max_body("64KiB");
    let daemon = Daemon::start(config).await;
    let path = "/v1/destinations/shop/events/batch";

    let mut items: Vec<Value> = (0..20).map(|n| json!({ "payload": n })).collect();
    items[17] = json!({ "payload": { "a": 1 }, "content_type": "text/plain" });
    let (status, reply) = post_batch(
        &daemon,
        path,
        "application/json",
        Value::Array(items).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("events[17].payload: "),
        "{reply}"
    );

    let ndjson = "{\"payload\": 1}\n{\"payload\": 2, \"idempotency_key\": \"\"}\n";
    let (status, reply) = post_batch(&daemon, path, "application/x-ndjson", ndjson.into()).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(
        reply["error"],
        "events[1].idempotency_key: must be 1 to 255 bytes, got 0 (line 2)"
    );

    let (status, reply) = post_batch(&daemon, path, "application/json", "[]".into()).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("events: a batch holds at least one event"))
    );
    let many = Value::Array(vec![json!({ "payload": 1 }); 1001]).to_string();
    let (status, reply) = post_batch(&daemon, path, "application/json", many).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("at most 1000 events, got 1001"),
        "{reply}"
    );

    let (status, reply) = post_batch(
        &daemon,
        "/v1/destinations/nowhere/events/batch",
        "application/json",
        r#"[{"payload": 1}]"#.into(),
    )
    .await;
    assert_eq!(status, 404, "{reply}");

    assert_eq!(
        event_count(&daemon, "shop").await,
        0,
        "no refused batch stored anything"
    );
    assert_eq!(receiver.count(), 0);

    // max_body is the whole request's limit. Last: the server closes a
    // connection whose body it did not read.
    let big = Value::Array(vec![json!({ "payload": "x".repeat(1000) }); 100]).to_string();
    let (status, reply) = post_batch(&daemon, path, "application/json", big).await;
    assert_eq!(status, 413, "{reply}");
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    an_ndjson_batch_to_a_topic_fans_out_each_item_and_keys_repeat_as_duplicates
);
async fn an_ndjson_batch_to_a_topic_fans_out_each_item_and_keys_repeat_as_duplicates(
    store: TestStore,
) {
    let orders = Receiver::start().await;
    let all = Receiver::start().await;
    let config = store
        .config()
        .destination(Dest::new("orders", &orders.url()).topics(&["order.*"]))
        .destination(Dest::new("all", &all.url()).topics(&["*"]));
    let daemon = Daemon::start(config).await;

    let ndjson = [
        r#"{"payload": {"n": 1}, "idempotency_key": "k1"}"#,
        "",
        r#"{"payload": {"n": 2}, "idempotency_key": "k1"}"#,
        r#"{"payload": {"n": 3}, "topic": "invoice.paid"}"#,
    ]
    .join("\n");
    let (status, reply) = post_batch(
        &daemon,
        "/v1/topics/order.created/events/batch",
        "application/x-ndjson",
        ndjson,
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let items = reply["events"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{reply}");
    let destinations = |item: &Value| -> Vec<String> {
        let mut names: Vec<String> = item["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["destination"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(destinations(&items[0]), ["all", "orders"]);
    // The second item repeats the first one's key within the same batch.
    for (first, repeat) in items[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .zip(items[1]["events"].as_array().unwrap())
    {
        assert_eq!(repeat["duplicate_of"], first["id"], "{reply}");
        assert_eq!(repeat["state"], "skipped", "{reply}");
    }
    // Its own topic wins over the path's: only `all` subscribes to it.
    assert_eq!(destinations(&items[2]), ["all"]);

    // The same key in a later batch is a duplicate too.
    let (status, reply) = post_batch(
        &daemon,
        "/v1/destinations/orders/events/batch",
        "application/json",
        r#"[{"payload": {"n": 4}, "idempotency_key": "k1"}]"#.into(),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert!(reply["events"][0]["duplicate_of"].is_string(), "{reply}");

    wait_until("the stored events delivered", || {
        orders.distinct_count() == 1 && all.distinct_count() == 2
    })
    .await;
}

/// Runs `hookwatch send ARGS --url DAEMON` with `stdin` as its input.
async fn send(daemon: &Daemon, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookwatch"));
    command
        .arg("send")
        .args(args)
        .args(["--url", &daemon.base_url])
        .env_remove("HOOKWATCH_TOKEN")
        .current_dir(daemon.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_string();
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("spawn hookwatch send");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

both_stores!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    hookwatch_send_posts_a_file_or_stdin_in_batches_and_names_a_bad_line
);
async fn hookwatch_send_posts_a_file_or_stdin_in_batches_and_names_a_bad_line(store: TestStore) {
    let receiver = Receiver::start().await;
    let config = store
        .config()
        .destination(Dest::new("shop", &receiver.url()).topics(&["order.*"]));
    let daemon = Daemon::start(config).await;

    let file = daemon.dir().join("events.ndjson");
    let lines: Vec<String> = (0..1200).map(|n| json!({ "n": n }).to_string()).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let (code, stdout, stderr) = send(
        &daemon,
        &["shop", "--payloads", "--file", file.to_str().unwrap()],
        "",
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "sent 1200 lines to destination shop in 3 batches: 1200 events stored\n"
    );

    // A bad line in a file: named, and nothing of the file is sent.
    let bad = daemon.dir().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"payload\": 1}\n{\"payload\": 2}\n{\"payload\": 3, \"topik\": \"x\"}\n",
    )
    .unwrap();
    let (code, _, stderr) = send(&daemon, &["shop", "--file", bad.to_str().unwrap()], "").await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("line 3: "), "{stderr}");
    assert!(stderr.contains("topik"), "{stderr}");

    // Standard input, in the item shape, with --json.
    let input = "{\"payload\": {\"from\": \"stdin\"}, \"idempotency_key\": \"s1\"}\n{\"payload\": 2, \"idempotency_key\": \"s1\"}\n";
    let (code, stdout, stderr) = send(&daemon, &["shop", "--json", "--batch", "1"], input).await;
    assert_eq!(code, 0, "{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        summary,
        json!({ "events": 1, "duplicates": 1, "lines": 2, "batches": 2 })
    );

    // An item whose topic nobody subscribes to fails the batch, named.
    let (status, reply) = post_batch(
        &daemon,
        "/v1/topics/order.paid/events/batch",
        "application/json",
        r#"[{"payload": 1}, {"payload": 2, "topic": "nobody.listens"}]"#.into(),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "bad_item", "{reply}");
    assert_eq!(reply["index"], 1, "{reply}");
    assert_eq!(
        reply["error"],
        "events[1].topic: no destination subscribes to topic \"nobody.listens\""
    );

    // A line the daemon refuses is named by its line, not its index.
    let (code, _, stderr) = send(
        &daemon,
        &["--topic", "order.created", "--batch", "2"],
        "{\"payload\": 1}\n\n{\"payload\": 2}\n{\"payload\": 3, \"topic\": \"nobody.listens\"}\n",
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("line 4: topic: no destination subscribes to topic \"nobody.listens\"; line 4 was not stored, the 2 lines before them were stored"),
        "{stderr}"
    );

    let (code, _, stderr) = send(&daemon, &["--batch", "0", "shop"], "").await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--batch"), "{stderr}");

    wait_until_within(
        Duration::from_secs(60),
        "every sent event delivered",
        || receiver.distinct_count() == 1203, // 1,200 from the file, 1 from stdin, 2 by topic before the refused line
    )
    .await;
    assert_eq!(
        event_count(&daemon, "shop").await,
        1000,
        "a full page: more than 1000 stored"
    );
}
