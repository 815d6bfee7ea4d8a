//! `hookwatch send DEST|--topic T [--file F]`: reads events as NDJSON (one a
//! line, the batch endpoint's item shape, or bare payloads with `--payloads`)
//! from a file or stdin and posts them in batches.
//!
//! A file is read twice: once to check every line (a bad line is named, and
//! nothing is sent) and to count them for the progress bar, then to send.
//! Standard input cannot be read twice, so there each batch is checked before
//! it is sent and the message on a bad line says how much was stored before it.

use super::{print, print_json, Daemon, Failure, SendArgs};
use crate::api::batch::read_item_line;
use crate::control::{Control, ControlError};
use crate::engine::{BatchTarget, IngestRequest, MAX_BATCH};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::BufRead;

/// A file with more lines than this gets a progress bar.
const PROGRESS_FROM_LINES: u64 = 10_000;

/// What a send came to.
#[derive(Debug, Default, serde::Serialize)]
struct Sent {
    /// Events stored (one per line to a destination; per subscriber to a topic).
    events: u64,
    /// Lines answered as duplicates of an earlier event (same idempotency key).
    duplicates: u64,
    lines: u64,
    batches: u64,
}

/// One line of input as the event it asks for, or why it is not one.
fn read_line(line: &str, payloads: bool, line_number: u64) -> Result<IngestRequest, Failure> {
    let bad = |message: String| Failure::BadInput(format!("line {line_number}: {message}"));
    if payloads {
        serde_json::from_str::<serde::de::IgnoredAny>(line)
            .map_err(|e| bad(format!("not a JSON payload: {e}")))?;
        return Ok(IngestRequest {
            content_type: Some("application/json".into()),
            payload: bytes::Bytes::copy_from_slice(line.trim().as_bytes()),
            ..IngestRequest::default()
        });
    }
    let item = read_item_line(line).map_err(|e| {
        let at = e.at.strip_prefix('.').map(|field| format!("{field}: ")).unwrap_or_default();
        bad(format!(
            "{at}{} (each line is {{\"payload\": …, \"topic\"?, \"idempotency_key\"?, \"content_type\"?}}; use --payloads for bare payloads)",
            e.message
        ))
    })?;
    item.into_request().map_err(|e| bad(e.to_string()))
}

/// The lines of `args.file`, or of stdin.
fn open_input(args: &SendArgs) -> Result<Box<dyn BufRead>, Failure> {
    match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file = std::fs::File::open(path)
                .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", path.display())))?;
            Ok(Box::new(std::io::BufReader::new(file)))
        }
        _ => Ok(Box::new(std::io::stdin().lock())),
    }
}

/// Checks every line of a file; its number of event lines.
fn check_file(args: &SendArgs) -> Result<u64, Failure> {
    let mut lines = 0;
    for (index, line) in open_input(args)?.lines().enumerate() {
        let line =
            line.map_err(|e| Failure::BadInput(format!("cannot read line {}: {e}", index + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        read_line(&line, args.payloads, index as u64 + 1)?;
        lines += 1;
    }
    Ok(lines)
}

pub(super) async fn run(daemon: &Daemon, args: &SendArgs) -> Result<(), Failure> {
    let target = match (&args.destination, &args.topic) {
        (Some(destination), None) => BatchTarget::Destination(destination.clone()),
        (None, Some(topic)) => BatchTarget::Topic(topic.clone()),
        _ => {
            return Err(Failure::BadInput(
                "name a destination or --topic TOPIC (one of them)".into(),
            ))
        }
    };
    if args.batch == 0 || args.batch > MAX_BATCH {
        return Err(Failure::BadInput(format!(
            "--batch: 1 to {MAX_BATCH} events, got {}",
            args.batch
        )));
    }
    let from_file = args.file.as_ref().is_some_and(|p| p.as_os_str() != "-");
    let bar = if from_file {
        let total = check_file(args)?;
        if total > PROGRESS_FROM_LINES {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "[{elapsed_precise}] {wide_bar} {pos}/{len} lines sent ({per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        } else {
            ProgressBar::hidden()
        }
    } else {
        ProgressBar::hidden()
    };

    let mut sent = Sent::default();
    let mut batch = Batch::default();
    let stored_before = |sent: &Sent| {
        if sent.lines == 0 {
            "nothing was sent".to_string()
        } else {
            format!(
                "the {} lines before it were stored ({} events)",
                sent.lines, sent.events
            )
        }
    };
    for (index, line) in open_input(args)?.lines().enumerate() {
        let line_number = index as u64 + 1;
        let line = line.map_err(|e| {
            Failure::BadInput(format!(
                "cannot read line {line_number}: {e}; {}",
                stored_before(&sent)
            ))
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let request = read_line(&line, args.payloads, line_number).map_err(|e| match e {
            Failure::BadInput(message) => {
                Failure::BadInput(format!("{message}; {}", stored_before(&sent)))
            }
            other => other,
        })?;
        batch.requests.push(request);
        batch.lines.push(line_number);
        if batch.requests.len() == args.batch {
            post(daemon, &target, &mut batch, &mut sent, &bar).await?;
        }
    }
    if !batch.requests.is_empty() {
        post(daemon, &target, &mut batch, &mut sent, &bar).await?;
    }
    bar.finish_and_clear();
    if sent.lines == 0 {
        return Err(Failure::BadInput(
            "no events in the input (it has no non-blank line)".into(),
        ));
    }
    if args.output.json {
        print_json(&sent)
    } else {
        let to = match &target {
            BatchTarget::Destination(destination) => format!("destination {destination}"),
            BatchTarget::Topic(topic) => format!("topic {topic}"),
        };
        let duplicates = if sent.duplicates > 0 {
            format!(", {} duplicates of earlier events", sent.duplicates)
        } else {
            String::new()
        };
        let batches = match sent.batches {
            1 => "1 batch".to_string(),
            n => format!("{n} batches"),
        };
        print(&format!(
            "sent {} lines to {to} in {batches}: {} events stored{duplicates}\n",
            sent.lines, sent.events
        ))
    }
}

/// The events of the next request, and the input lines they came from.
#[derive(Default)]
struct Batch {
    requests: Vec<IngestRequest>,
    lines: Vec<u64>,
}

/// Posts one batch and counts what it stored. A refusal says which lines
/// were not stored, and a refused item is named by its line.
async fn post(
    daemon: &Daemon,
    target: &BatchTarget,
    batch: &mut Batch,
    sent: &mut Sent,
    bar: &ProgressBar,
) -> Result<(), Failure> {
    let count = batch.requests.len() as u64;
    let lines = std::mem::take(&mut batch.lines);
    let answers = daemon
        .control
        .ingest_batch(target.clone(), std::mem::take(&mut batch.requests))
        .await
        .map_err(|e| {
            let (first, last) = (lines.first().copied(), lines.last().copied());
            let span = match (first, last) {
                (Some(first), Some(last)) if first != last => format!("lines {first}–{last} were"),
                (Some(line), _) => format!("line {line} was"),
                _ => "the batch was".to_string(),
            };
            let before = if sent.lines == 0 {
                "nothing was stored".to_string()
            } else {
                format!(
                    "the {} lines before them were stored ({} events)",
                    sent.lines, sent.events
                )
            };
            if let ControlError::BadItem {
                index,
                field,
                message,
            } = &e
            {
                if let Some(line) = lines.get(*index) {
                    return Failure::BadInput(format!(
                        "line {line}: {field}: {message}; {span} not stored, {before}"
                    ));
                }
            }
            eprintln!("hookwatch: {span} not stored; {before}");
            daemon.failure(e)
        })?;
    for item in &answers {
        for event in item {
            match event.duplicate_of {
                Some(_) => sent.duplicates += 1,
                None => sent.events += 1,
            }
        }
    }
    sent.lines += count;
    sent.batches += 1;
    bar.inc(count);
    Ok(())
}
