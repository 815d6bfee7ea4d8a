//! The command line (`hookwatch status|events|bulk|destinations|check-config|
//! completions`) as real processes against a real `hookwatch --daemon`: what
//! they print reflects the daemon's state, what they do shows through the API,
//! and their exit codes say how it went (0 ok, 1 the daemon refused, 2 bad
//! input, 3 no daemon).

mod harness;

use harness::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What one run of the binary left behind.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}):\n{}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// A `hookwatch` command with nothing from this machine's environment:
/// no `HOOKWATCH_*` variables, and an empty directory as both the working
/// directory and `XDG_CONFIG_HOME`, so no config file is found by accident.
fn command(args: &[&str]) -> Command {
    let empty = std::env::temp_dir().join("hookwatch-cli-test-empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookwatch"));
    command
        .args(args)
        .env_remove("HOOKWATCH_URL")
        .env_remove("HOOKWATCH_TOKEN")
        .env("XDG_CONFIG_HOME", &empty)
        .current_dir(&empty);
    command
}

/// Runs `hookwatch ARGS` to its end (off the async workers: the receivers
/// the daemon delivers to run on them).
async fn hookwatch(args: &[&str]) -> Run {
    let mut command = command(args);
    let output = tokio::task::spawn_blocking(move || command.stdin(Stdio::null()).output())
        .await
        .unwrap()
        .expect("run hookwatch");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `hookwatch ARGS --url DAEMON`.
async fn against(daemon: &Daemon, args: &[&str]) -> Run {
    let mut all = args.to_vec();
    all.extend(["--url", &daemon.base_url]);
    hookwatch(&all).await
}

/// An id no event has (a well-formed ULID).
const UNKNOWN_ID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_destinations_show_and_change_the_daemons_state() {
    let ok = Receiver::start().await;
    let flaky = Receiver::start_with(Reply::status(500)).await;
    let gone = Receiver::start_with(Reply::status(404)).await;
    let daemon = Daemon::start(
        TestConfig::new()
            .destination(Dest::new("ok", &ok.url()))
            .destination(Dest::new("flaky", &flaky.url()).retry_fixed("1h", 5))
            .destination(
                Dest::new("gone", &gone.url()).retry(Retry::new().on_client_error("disable")),
            ),
    )
    .await;
    let delivered = daemon.ingest("ok", r#"{"n":1}"#).await;
    let retrying = daemon
        .ingest("flaky", r#"{"n":2,"password":"hunter2"}"#)
        .await;
    daemon.wait_event_state(&delivered, "delivered").await;
    daemon.wait_event_state(&retrying, "retrying").await;

    // events list: a table, and the API's page as JSON, filtered.
    let table = against(&daemon, &["events", "list"]).await.expect(0);
    for expected in [
        &delivered,
        &retrying,
        "delivered",
        "retrying",
        "last answer 500",
    ] {
        assert!(table.stdout.contains(expected), "{}", table.stdout);
    }
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    let page = against(&daemon, &["events", "list", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(page["events"].as_array().unwrap().len(), 2, "{page}");
    let only = against(
        &daemon,
        &["events", "list", "--state", "retrying", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(only["events"][0]["id"], retrying.as_str(), "{only}");
    assert_eq!(only["events"].as_array().unwrap().len(), 1, "{only}");
    let only = against(
        &daemon,
        &["events", "list", "--destination", "ok", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(only["events"][0]["id"], delivered.as_str(), "{only}");
    let none = against(&daemon, &["events", "list", "--topic", "nothing.*"])
        .await
        .expect(0);
    assert_eq!(none.stdout, "no events match\n");

    // events show: the detail, payload credentials masked for people.
    let shown = against(&daemon, &["events", "show", &retrying])
        .await
        .expect(0);
    for expected in ["retrying", "flaky", "500", "********"] {
        assert!(shown.stdout.contains(expected), "{}", shown.stdout);
    }
    assert!(!shown.stdout.contains("hunter2"), "{}", shown.stdout);
    let detail = against(&daemon, &["events", "show", &retrying, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(detail, daemon.event(&retrying).await);

    // events retry: a new attempt, seen through the API.
    flaky.set_default(Reply::status(200));
    let retried = against(&daemon, &["events", "retry", &retrying])
        .await
        .expect(0);
    assert_eq!(retried.stdout, format!("{retrying}: delivered\n"));
    let after = daemon.event(&retrying).await;
    assert_eq!(after["state"], "delivered");
    assert_eq!(after["attempts"].as_array().unwrap().len(), 2, "{after}");

    // mute over several ids: each is reported, the unknown one fails (exit 1).
    flaky.set_default(Reply::status(500));
    let to_mute = daemon.ingest("flaky", r#"{"n":3}"#).await;
    daemon.wait_event_state(&to_mute, "retrying").await;
    let muted = against(&daemon, &["events", "mute", &to_mute, UNKNOWN_ID, "--json"])
        .await
        .expect(1);
    let results = muted.json();
    assert_eq!(results[0]["id"], to_mute.as_str(), "{results}");
    assert_eq!(results[0]["state"], "cancelled", "{results}");
    assert_eq!(results[1]["code"], "unknown_event", "{results}");
    assert_eq!(
        results[1]["error"],
        format!("no event with id \"{UNKNOWN_ID}\""),
        "{results}"
    );
    assert_eq!(daemon.event(&to_mute).await["state"], "cancelled");
    let refused = against(&daemon, &["events", "mute", &to_mute, UNKNOWN_ID])
        .await
        .expect(1);
    assert!(
        refused
            .stderr
            .contains(&format!("no event with id \"{UNKNOWN_ID}\"")),
        "{}",
        refused.stderr
    );
    // Muting a muted event is accepted (nothing to do); the unknown id is not.
    assert!(
        refused.stderr.contains("1 of 2 failed"),
        "{}",
        refused.stderr
    );

    // requeue: the automatic cycle starts again.
    let requeued = against(&daemon, &["events", "requeue", &to_mute])
        .await
        .expect(0);
    assert!(
        requeued.stdout.starts_with(&format!("{to_mute}: requeued")),
        "{}",
        requeued.stdout
    );
    assert_ne!(daemon.event(&to_mute).await["state"], "cancelled");

    // One unknown id: the daemon's message, exit 1.
    for action in ["show", "retry", "mute", "requeue"] {
        let run = against(&daemon, &["events", action, UNKNOWN_ID])
            .await
            .expect(1);
        assert_eq!(
            run.stderr,
            format!("hookwatch: no event with id \"{UNKNOWN_ID}\"\n"),
            "events {action}"
        );
    }
    // Bad input: exit 2 before any request.
    let run = against(&daemon, &["events", "show", "not-an-id"])
        .await
        .expect(2);
    assert!(run.stderr.contains("is not an event id"), "{}", run.stderr);
    let run = against(&daemon, &["events", "list", "--state", "lost"])
        .await
        .expect(2);
    assert!(
        run.stderr.contains("unknown state \"lost\""),
        "{}",
        run.stderr
    );
    against(&daemon, &["events", "list", "--limit", "5000"])
        .await
        .expect(2);

    // destinations list and show.
    let table = against(&daemon, &["destinations", "list"]).await.expect(0);
    for expected in ["ok", "flaky", "gone", "healthy", &ok.url()] {
        assert!(table.stdout.contains(expected), "{}", table.stdout);
    }
    let list = against(&daemon, &["destinations", "list", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(list, daemon.get_json("/v1/destinations").await);
    let shown = against(&daemon, &["destinations", "show", "ok"])
        .await
        .expect(0);
    assert!(shown.stdout.contains(&ok.url()), "{}", shown.stdout);
    assert!(shown.stdout.contains("retry.schedule"), "{}", shown.stdout);
    let view = against(&daemon, &["destinations", "show", "ok", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(view["id"], "ok");

    // pause and resume, seen through the API.
    let paused = against(&daemon, &["destinations", "pause", "ok"])
        .await
        .expect(0);
    assert_eq!(paused.stdout, "ok: paused (now paused)\n");
    assert_eq!(daemon.destination("ok").await["paused"], true);
    let resumed = against(&daemon, &["destinations", "resume", "ok", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(resumed["paused"], false);
    assert_eq!(daemon.destination("ok").await["health"], "healthy");

    // enable: a destination disabled by a 404 delivers again.
    let held = daemon.ingest("gone", r#"{"n":4}"#).await;
    wait_for("gone to be disabled", || async {
        let view = daemon.destination("gone").await;
        if view["health"] == "disabled" {
            Ok(())
        } else {
            Err(view.to_string())
        }
    })
    .await;
    let table = against(&daemon, &["destinations", "list"]).await.expect(0);
    assert!(table.stdout.contains("disabled"), "{}", table.stdout);
    gone.set_default(Reply::status(200));
    let enabled = against(&daemon, &["destinations", "enable", "gone"])
        .await
        .expect(0);
    assert!(
        enabled.stdout.starts_with("gone: enabled"),
        "{}",
        enabled.stdout
    );
    assert_eq!(daemon.destination("gone").await["enabled"], true);
    let _ = held;

    let run = against(&daemon, &["destinations", "pause", "nope"])
        .await
        .expect(1);
    assert_eq!(run.stderr, "hookwatch: unknown destination \"nope\"\n");

    // status: health, counts and rates, as a summary and as JSON.
    let status = against(&daemon, &["status"]).await.expect(0);
    for expected in [
        "destinations  3",
        "ingested/s",
        "delivered/s",
        "\nnotices ",
        &daemon.base_url,
    ] {
        assert!(status.stdout.contains(expected), "{}", status.stdout);
    }
    let status = against(&daemon, &["status", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(status["url"], daemon.base_url.as_str());
    assert!(
        status["totals"]["ingested"].as_u64().unwrap() >= 4,
        "{status}"
    );
    assert_eq!(status["counts"]["ok"]["delivered"], 1, "{status}");
    let healthy = status["health"]["healthy"].as_u64().unwrap();
    let disabled = status["health"]["disabled"].as_u64().unwrap();
    assert_eq!(
        healthy + disabled + status["health"]["in retry"].as_u64().unwrap(),
        3
    );
    assert!(
        status["rates"]["ingested_per_second"].is_number(),
        "{status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_created_listed_by_label_replaced_and_deleted() {
    let ok = Receiver::start().await;
    let failing = Receiver::start_with(Reply::status(500)).await;
    let slow = Receiver::start_with(Reply::status(200).after(Duration::from_secs(2))).await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("from-file", &ok.url()))).await;
    let dir = tempfile::tempdir().unwrap();

    // create with flags: what it prints, and the destination through the API.
    let created = against(
        &daemon,
        &[
            "destinations",
            "create",
            "acme-1",
            &ok.url(),
            "--label",
            "tenant=acme",
            "--label",
            "tier=gold",
            "--topic",
            "order.*",
            "--topic",
            "invoice.paid",
            "--secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "--concurrency",
            "3",
            "--timeout",
            "7s",
        ],
    )
    .await
    .expect(0);
    assert_eq!(created.stdout, "acme-1: created (now healthy)\n");
    let view = daemon.destination("acme-1").await;
    assert_eq!(view["source"], "api", "{view}");
    assert_eq!(view["labels"]["tenant"], "acme", "{view}");
    assert_eq!(view["labels"]["tier"], "gold", "{view}");
    assert_eq!(
        view["topics"],
        serde_json::json!(["order.*", "invoice.paid"])
    );
    assert_eq!(view["max_concurrency"], 3, "{view}");
    assert_eq!(view["secrets"].as_array().unwrap().len(), 1, "{view}");

    // create --from-file (one [[destinations]] table), answered as JSON.
    let file = dir.path().join("acme-2.toml");
    std::fs::write(
        &file,
        format!(
            "[[destinations]]\nid = \"acme-2\"\nurl = \"{}\"\nlabels = {{ tenant = \"acme\" }}\n[destinations.retry]\nmax_retries = 2\n",
            ok.url()
        ),
    )
    .unwrap();
    let view = against(
        &daemon,
        &[
            "destinations",
            "create",
            "--from-file",
            file.to_str().unwrap(),
            "--json",
        ],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(view, daemon.destination("acme-2").await);
    assert_eq!(view["source"], "api");
    assert_eq!(view["retry"]["max_retries"], 2, "{view}");
    // A bare table in the same shape, for another tenant.
    let bare = dir.path().join("globex.toml");
    std::fs::write(
        &bare,
        format!(
            "id = \"globex-1\"\nurl = \"{}\"\nlabels = {{ tenant = \"globex\" }}\n",
            ok.url()
        ),
    )
    .unwrap();
    against(
        &daemon,
        &[
            "destinations",
            "create",
            "--from-file",
            bare.to_str().unwrap(),
        ],
    )
    .await
    .expect(0);

    // The daemon refuses: exit 1 with its message (naming the field).
    let duplicate = against(&daemon, &["destinations", "create", "acme-1", &ok.url()])
        .await
        .expect(1);
    assert_eq!(
        duplicate.stderr,
        "hookwatch: a destination \"acme-1\" exists\n"
    );
    let bad_url = against(
        &daemon,
        &["destinations", "create", "bad", "ftp://example.com/hook"],
    )
    .await
    .expect(1);
    assert!(
        bad_url.stderr.starts_with("hookwatch: url: "),
        "{}",
        bad_url.stderr
    );
    let bad_id = against(&daemon, &["destinations", "create", "a b", &ok.url()])
        .await
        .expect(1);
    assert!(
        bad_id.stderr.starts_with("hookwatch: id: "),
        "{}",
        bad_id.stderr
    );
    assert_eq!(
        daemon
            .send(daemon.request(reqwest::Method::GET, "/v1/destinations/bad"))
            .await
            .0,
        404,
        "a refused create leaves nothing"
    );
    // Bad input: exit 2 before any request.
    for args in [
        &[
            "destinations",
            "create",
            "x",
            &ok.url(),
            "--label",
            "no-value",
        ][..],
        &["destinations", "create", "x"],
        &[
            "destinations",
            "create",
            "--from-file",
            "/nonexistent/dest.toml",
        ],
        &[
            "destinations",
            "create",
            "x",
            &ok.url(),
            "--from-file",
            file.to_str().unwrap(),
        ],
        &["destinations", "list", "--label", "tenant"],
    ] {
        let run = against(&daemon, args).await.expect(2);
        assert!(!run.stderr.is_empty(), "{args:?}");
    }
    let two = dir.path().join("two.toml");
    std::fs::write(
        &two,
        "[[destinations]]\nid = \"a\"\n[[destinations]]\nid = \"b\"\n",
    )
    .unwrap();
    let run = against(
        &daemon,
        &[
            "destinations",
            "create",
            "--from-file",
            two.to_str().unwrap(),
        ],
    )
    .await
    .expect(2);
    assert!(
        run.stderr.contains("give one destination per file"),
        "{}",
        run.stderr
    );

    // list: source and labels; --label selects as the API does.
    let table = against(&daemon, &["destinations", "list"]).await.expect(0);
    let header = table.stdout.lines().next().unwrap();
    assert!(header.starts_with("ID "), "{header}");
    assert!(
        header.contains("SOURCE") && header.contains("LABELS"),
        "{header}"
    );
    let acme_row = table
        .stdout
        .lines()
        .find(|line| line.starts_with("acme-1 "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(acme_row.contains(" api "), "{acme_row}");
    assert!(acme_row.contains("tenant=acme,tier=gold"), "{acme_row}");
    let file_row = table
        .stdout
        .lines()
        .find(|line| line.starts_with("from-file "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(file_row.contains(" file "), "{file_row}");
    let acme = against(
        &daemon,
        &["destinations", "list", "--label", "tenant=acme", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(
        acme,
        daemon.get_json("/v1/destinations?label=tenant:acme").await
    );
    let ids: Vec<&str> = acme["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-1", "acme-2"], "{acme}");
    let gold = against(
        &daemon,
        &["destinations", "list", "--label", "tenant=acme,tier=gold"],
    )
    .await
    .expect(0);
    assert!(gold.stdout.contains("acme-1"), "{}", gold.stdout);
    assert!(!gold.stdout.contains("acme-2"), "{}", gold.stdout);
    let nobody = against(
        &daemon,
        &["destinations", "list", "--label", "tenant=initech"],
    )
    .await
    .expect(0);
    assert_eq!(nobody.stdout, "no destinations match\n");
    let shown = against(&daemon, &["destinations", "show", "acme-1"])
        .await
        .expect(0);
    for expected in ["source", "api", "labels", "tenant=acme,tier=gold"] {
        assert!(shown.stdout.contains(expected), "{}", shown.stdout);
    }

    // replace from a file: the new definition is what applies.
    let replacement = dir.path().join("acme-2-new.toml");
    std::fs::write(
        &replacement,
        format!(
            "url = \"{}\"\nlabels = {{ tenant = \"acme\", tier = \"silver\" }}\n",
            ok.url()
        ),
    )
    .unwrap();
    let replaced = against(
        &daemon,
        &[
            "destinations",
            "replace",
            "acme-2",
            "--from-file",
            replacement.to_str().unwrap(),
        ],
    )
    .await
    .expect(0);
    assert_eq!(replaced.stdout, "acme-2: replaced (now healthy)\n");
    assert_eq!(
        daemon.destination("acme-2").await["labels"]["tier"],
        "silver"
    );

    // delete with owed events: they are cancelled and stay readable.
    against(
        &daemon,
        &[
            "destinations",
            "create",
            "owing",
            &failing.url(),
            "--label",
            "tenant=acme",
        ],
    )
    .await
    .expect(0);
    let first = daemon.ingest("owing", r#"{"n":1}"#).await;
    let second = daemon.ingest("owing", r#"{"n":2}"#).await;
    daemon.wait_event_state(&first, "retrying").await;
    daemon.wait_event_state(&second, "retrying").await;
    let deleted = against(&daemon, &["destinations", "delete", "owing"])
        .await
        .expect(0);
    assert_eq!(deleted.stdout, "owing: deleted (2 owed events cancelled)\n");
    for id in [&first, &second] {
        let event = daemon.event(id).await;
        assert_eq!(event["state"], "cancelled", "{event}");
        assert_eq!(event["reason"], "destination_deleted", "{event}");
        assert!(!event["attempts"].as_array().unwrap().is_empty(), "{event}");
    }
    let (status, _) = daemon
        .send(daemon.request(reqwest::Method::GET, "/v1/destinations/owing"))
        .await;
    assert_eq!(status, 404);

    // delete --drain: no new events; gone once its attempt in flight is done.
    against(&daemon, &["destinations", "create", "drainer", &slow.url()])
        .await
        .expect(0);
    let in_flight = daemon.ingest("drainer", r#"{"n":3}"#).await;
    slow.wait_for_hits(1).await;
    let draining = against(
        &daemon,
        &["destinations", "delete", "drainer", "--drain", "--json"],
    )
    .await
    .expect(0)
    .json();
    assert_eq!(
        draining,
        serde_json::json!({ "id": "drainer", "cancelled": 0, "draining": true })
    );
    let (status, _) = daemon.post_event("drainer", r#"{"n":4}"#).await;
    assert!(
        status >= 400,
        "a draining destination takes no events ({status})"
    );
    daemon.wait_event_state(&in_flight, "delivered").await;
    wait_for("the drained destination to be deleted", || async {
        let (status, body) = daemon
            .send(daemon.request(reqwest::Method::GET, "/v1/destinations/drainer"))
            .await;
        if status == 404 {
            Ok(())
        } else {
            Err(body.to_string())
        }
    })
    .await;

    // The config file's destinations are the file's; unknown ids are unknown.
    let refused = against(&daemon, &["destinations", "delete", "from-file"])
        .await
        .expect(1);
    assert!(refused.stderr.contains("config file"), "{}", refused.stderr);
    let unknown = against(&daemon, &["destinations", "delete", "nope", "--json"])
        .await
        .expect(1);
    assert_eq!(unknown.stderr, "hookwatch: unknown destination \"nope\"\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_retry_waits_reports_and_can_be_cancelled_with_ctrl_c() {
    let receiver = Receiver::start_with(Reply::status(500)).await;
    let daemon = Daemon::start(
        TestConfig::new()
            .destination(Dest::new("bulk", &receiver.url()).retry_fixed("1h", 5))
            .destination(
                Dest::new("slow", &receiver.url())
                    .concurrency(1)
                    .retry_fixed("1h", 5),
            ),
    )
    .await;
    let mut fast = Vec::new();
    for n in 0..4 {
        fast.push(daemon.ingest("bulk", &format!(r#"{{"n":{n}}}"#)).await);
    }
    let mut slow = Vec::new();
    for n in 0..6 {
        slow.push(daemon.ingest("slow", &format!(r#"{{"n":{n}}}"#)).await);
    }
    for id in fast.iter().chain(&slow) {
        daemon.wait_event_state(id, "retrying").await;
    }

    // --wait follows the job to its end and reports the counts.
    receiver.set_default(Reply::status(200));
    let run = against(
        &daemon,
        &["bulk", "retry", "--destination", "bulk", "--wait"],
    )
    .await
    .expect(0);
    assert!(run.stdout.contains("retrying 4 events"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("completed: 4 of 4 retried, 4 delivered, 0 failed"),
        "{}",
        run.stdout
    );
    for id in &fast {
        assert_eq!(daemon.event(id).await["state"], "delivered");
    }
    let job = run
        .stdout
        .split_whitespace()
        .nth(2)
        .expect("started job ID ...")
        .to_string();
    let progress = against(&daemon, &["bulk", "status", &job, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(progress, daemon.get_json(&format!("/v1/bulk/{job}")).await);
    assert_eq!(progress["state"], "completed");
    assert_eq!(progress["succeeded"], 4);
    let text = against(&daemon, &["bulk", "status", &job]).await.expect(0);
    assert_eq!(
        text.stdout,
        format!("job {job} completed: 4 of 4 retried, 4 delivered, 0 failed\n")
    );
    let shown = against(&daemon, &["bulk", "show", &job]).await.expect(0);
    assert_eq!(shown.stdout, text.stdout, "show is status");

    // The jobs, as `GET /v1/bulk` lists them, and as a table.
    let listed = against(&daemon, &["bulk", "list", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(listed, daemon.get_json("/v1/bulk").await);
    assert_eq!(listed["jobs"][0]["id"], job.as_str(), "{listed}");
    let table = against(&daemon, &["bulk", "list"]).await.expect(0).stdout;
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "STARTED",
            "STATE",
            "DONE",
            "DELIVERED",
            "FAILED",
            "SKIPPED",
            "FINISHED",
            "SELECTION"
        ],
        "{table}"
    );
    let row = lines.next().unwrap_or_default();
    assert!(row.starts_with(&job), "{table}");
    for cell in ["completed", "4/4", "destination=bulk"] {
        assert!(row.contains(cell), "{cell} in {table}");
    }

    // A selection of nothing starts no job, and says so (exit 0).
    let nothing = against(&daemon, &["bulk", "retry", "--topic", "none.*", "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(nothing, serde_json::json!({ "started": false, "count": 0 }));
    let run = against(&daemon, &["bulk", "retry", "--topic", "none.*"])
        .await
        .expect(0);
    assert_eq!(run.stdout, "nothing matches: no job started\n");

    // Bad input and unknown jobs.
    let run = against(&daemon, &["bulk", "retry"]).await.expect(2);
    assert!(
        run.stderr.contains("give at least one of"),
        "{}",
        run.stderr
    );
    let run = against(&daemon, &["bulk", "status", "nope"])
        .await
        .expect(1);
    assert_eq!(run.stderr, "hookwatch: no bulk job with id \"nope\"\n");
    against(&daemon, &["bulk", "cancel", "nope"])
        .await
        .expect(1);
    let run = against(&daemon, &["bulk", "retry", "--destination", "nope"])
        .await
        .expect(1);
    assert!(
        run.stderr.contains("unknown destination \"nope\""),
        "{}",
        run.stderr
    );

    // Ctrl-C while waiting asks; "y" cancels the job.
    receiver.set_default(Reply::status(200).after(Duration::from_secs(1)));
    let mut command = command(&[
        "bulk",
        "retry",
        "--destination",
        "slow",
        "--wait",
        "--url",
        &daemon.base_url,
    ]);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hookwatch bulk retry --wait");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (first_line, stdout) = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).map(|_| (line, stdout))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(first_line.contains("retrying 6 events"), "{first_line}");
    let job = first_line.split_whitespace().nth(2).unwrap().to_string();
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let (status, rest, stderr) = tokio::task::spawn_blocking(move || {
        let mut rest = String::new();
        let mut stdout = stdout;
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        (child.wait().unwrap(), rest, stderr)
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}: {rest} {stderr}");
    assert!(
        stderr.contains(&format!("cancel the job {job}? [y/N]")),
        "{stderr}"
    );
    assert!(rest.contains(&format!("job {job} cancelled")), "{rest}");
    let progress = daemon.get_json(&format!("/v1/bulk/{job}")).await;
    assert_eq!(progress["state"], "cancelled", "{progress}");
    assert!(progress["done"].as_u64().unwrap() < 6, "{progress}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_and_token_come_from_flags_or_the_config_and_no_daemon_is_exit_3() {
    let port = free_port();
    let daemon = Daemon::start(
        TestConfig::new()
            .listen(&format!("127.0.0.1:{port}"))
            .token("cli-test-token"),
    )
    .await;
    let config = daemon.config_path.to_str().unwrap();
    // Address and token from the config file.
    let run = hookwatch(&["destinations", "list", "--config", config])
        .await
        .expect(0);
    assert_eq!(run.stdout, "no destinations are configured\n");
    // The daemon refuses a missing token: its answer, exit 1.
    let run = against(&daemon, &["destinations", "list"]).await.expect(1);
    assert!(
        run.stderr.contains("missing bearer token"),
        "{}",
        run.stderr
    );
    against(
        &daemon,
        &["destinations", "list", "--token", "cli-test-token"],
    )
    .await
    .expect(0);
    let mut from_env = command(&["destinations", "list", "--json"]);
    from_env
        .env("HOOKWATCH_URL", &daemon.base_url)
        .env("HOOKWATCH_TOKEN", "cli-test-token");
    let output = tokio::task::spawn_blocking(move || from_env.output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    // No daemon: exit 3, naming the address tried.
    let nobody = format!("http://127.0.0.1:{}", free_port());
    for args in [
        &["status"][..],
        &["events", "list"],
        &["events", "retry", UNKNOWN_ID],
        &["destinations", "list"],
        &["bulk", "status", "j"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--url", &nobody]);
        let run = hookwatch(&all).await.expect(3);
        assert_eq!(
            run.stderr,
            format!("hookwatch: cannot reach hookwatch at {nobody}: connection refused\n"),
            "{args:?}"
        );
    }
    // Attaching the TUI to nobody says the same sentence (exit 2: nothing was
    // attached), not reqwest's chain and not the endpoint it first called.
    let run = hookwatch(&["--url", &nobody]).await.expect(2);
    assert_eq!(
        run.stderr,
        format!("hookwatch: cannot reach hookwatch at {nobody}: connection refused\n")
    );
    // A URL that is not one is bad input.
    let run = hookwatch(&["status", "--url", "localhost"]).await.expect(2);
    assert!(run.stderr.contains("not a base URL"), "{}", run.stderr);
}

#[tokio::test]
async fn check_config_prints_the_effective_config_masked_or_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        r#"
[server]
token = "very-secret-token"

[store]
max_size = 2147483648

[[destinations]]
id = "orders"
url = "https://example.com/hooks"
headers = { Authorization = "Bearer abc123", X-Env = "prod" }
"#,
    )
    .unwrap();
    let good = good.to_str().unwrap();
    let run = hookwatch(&["check-config", "--config", good])
        .await
        .expect(0);
    assert!(
        run.stdout.starts_with(&format!("# {good}: valid")),
        "{}",
        run.stdout
    );
    for shown in [
        "id = \"orders\"",
        "X-Env = \"prod\"",
        "max_retries",
        "********",
    ] {
        assert!(run.stdout.contains(shown), "{}", run.stdout);
    }
    for secret in ["very-secret-token", "abc123"] {
        assert!(!run.stdout.contains(secret), "{}", run.stdout);
    }
    let json = hookwatch(&["check-config", "--config", good, "--json"])
        .await
        .expect(0)
        .json();
    assert_eq!(json["server"]["token"], "********");
    assert_eq!(json["store"]["max_size"], "2GiB", "{json}");
    assert_eq!(
        json["destinations"][0]["headers"]["Authorization"],
        "********"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[destinations]]\nid = \"a\"\nurl = \"https://x\"\ntimeout = \"soon\"\n",
    )
    .unwrap();
    let run = hookwatch(&["check-config", "--config", bad.to_str().unwrap()])
        .await
        .expect(2);
    assert!(
        run.stderr.contains("destinations[a].timeout"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let missing = hookwatch(&["check-config", "--config", "/nonexistent/hookwatch.toml"])
        .await
        .expect(2);
    assert!(
        missing.stderr.contains("cannot read config file"),
        "{}",
        missing.stderr
    );
    assert!(Path::new(good).exists());
}

#[tokio::test]
async fn completions_cover_the_subcommands_in_every_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let run = hookwatch(&["completions", shell]).await.expect(0);
        for word in ["destinations", "check-config", "events", "bulk", "requeue"] {
            assert!(run.stdout.contains(word), "{shell} completions lack {word}");
        }
    }
    hookwatch(&["completions", "tcsh"]).await.expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivered_event_is_refused_mute_and_requeue_and_is_resent_on_request() {
    let receiver = Receiver::start().await;
    let daemon =
        Daemon::start(TestConfig::new().destination(Dest::new("ok", &receiver.url()))).await;
    let id = daemon.ingest("ok", r#"{"n":1}"#).await;
    daemon.wait_event_state(&id, "delivered").await;
    let before = daemon.event(&id).await;

    let muted = against(&daemon, &["events", "mute", &id]).await.expect(1);
    assert_eq!(
        muted.stderr,
        format!(
            "hookwatch: event {id} is delivered: only pending or retrying events can be muted\n"
        )
    );
    let requeued = against(&daemon, &["events", "requeue", &id])
        .await
        .expect(1);
    assert_eq!(
        requeued.stderr,
        format!("hookwatch: event {id} was delivered; requeue with resend=true to send it again\n")
    );
    assert_eq!(
        daemon.event(&id).await,
        before,
        "the refusals changed nothing"
    );
    assert_eq!(receiver.hits_for(&id).len(), 1);

    let resent = against(&daemon, &["events", "requeue", "--resend", &id])
        .await
        .expect(0);
    assert_eq!(resent.stdout, format!("{id}: resent (now pending)\n"));
    wait_until_async("the resend's attempt", || async {
        let event = daemon.event(&id).await;
        event["state"] == "delivered" && event["attempt_count"] == 2
    })
    .await;
    assert_eq!(receiver.hits_for(&id).len(), 2);
    assert_eq!(daemon.event(&id).await["attempts"][1]["trigger"], "resend");
}
