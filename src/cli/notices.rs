//! `hookwatch notices [--unacked] [--limit N] [--json]` and
//! `hookwatch notices ack ID…|--all`.

use super::table::{when, Table};
use super::{print, print_json, Daemon, Failure, NoticesArgs, NoticesCommand};
use crate::control::Control;
use crate::engine::notices::notice_json;
use crate::model::{NoticeId, NoticeQuery, NoticeSelection};
use serde_json::json;

pub(super) async fn run(daemon: &Daemon, args: &NoticesArgs) -> Result<(), Failure> {
    match &args.command {
        None => list(daemon, args).await,
        Some(NoticesCommand::Ack { ids, all, output }) => ack(daemon, ids, *all, output.json).await,
    }
}

async fn list(daemon: &Daemon, args: &NoticesArgs) -> Result<(), Failure> {
    let query = NoticeQuery {
        before: None,
        limit: usize::from(args.limit),
        unacked_only: args.unacked,
    };
    let page = daemon
        .control
        .notices(query)
        .await
        .map_err(|e| daemon.failure(e))?;
    if args.output.json {
        let notices: Vec<_> = page.notices.iter().map(notice_json).collect();
        return print_json(&json!({
            "notices": notices,
            "next_before": page.next_before.map(|id| id.to_string()),
            "unacked": page.unacked,
        }));
    }
    let now = daemon.control.now();
    // WHAT is the notice in words (what happened, to which destination, and
    // the numbers: from→to, since when, the job's counts); CAUSE says who or
    // what did it.
    let mut table = Table::new(["ID", "WHEN", "TYPE", "WHAT", "CAUSE", "ACKED"]);
    for notice in &page.notices {
        table.row(vec![
            notice.id.to_string(),
            when(notice.at, now),
            notice.notice_type().to_string(),
            notice.summary(),
            notice.cause.to_string(),
            if notice.is_acked() { "yes" } else { "no" }.to_string(),
        ]);
    }
    let mut text = if table.is_empty() {
        "no notices\n".to_string()
    } else {
        table.render()
    };
    if page.next_before.is_some() {
        text.push_str(&format!(
            "(the newest {}; more match: raise --limit, or --json for the next_before cursor)\n",
            page.notices.len()
        ));
    }
    text.push_str(&format!("{} unacknowledged\n", page.unacked));
    print(&text)
}

async fn ack(daemon: &Daemon, ids: &[NoticeId], all: bool, json: bool) -> Result<(), Failure> {
    if all {
        let acked = daemon
            .control
            .ack_notices(NoticeSelection::all())
            .await
            .map_err(|e| daemon.failure(e))?;
        return if json {
            print_json(&json!({ "acked": acked }))
        } else {
            print(&format!("acknowledged {acked} notices\n"))
        };
    }
    let mut failed = 0;
    let mut acked = Vec::new();
    for id in ids {
        match daemon.control.ack_notice(*id).await {
            Ok(notice) => acked.push(notice),
            Err(error) => {
                let failure = daemon.failure(error);
                if matches!(failure, Failure::Unreachable(_)) {
                    return Err(failure);
                }
                eprintln!("hookwatch: {id}: {failure}");
                failed += 1;
            }
        }
    }
    if json {
        let notices: Vec<_> = acked.iter().map(notice_json).collect();
        print_json(&json!({ "notices": notices }))?;
    } else {
        let text: String = acked
            .iter()
            .map(|n| format!("acknowledged {}: {}\n", n.id, n.summary()))
            .collect();
        print(&text)?;
    }
    if failed > 0 {
        return Err(Failure::Partly {
            failed,
            total: ids.len(),
        });
    }
    Ok(())
}
