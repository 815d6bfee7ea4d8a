//! `hookwatch status`: one screen about a running hookwatch.

use super::destinations::render_list;
use super::table::Fields;
use super::{print, print_json, Daemon, Failure, JsonFlag};
use crate::control::{Control, Totals};
use crate::model::{EventState, Health, StateCounts};
use crate::store::{format_bytes, BudgetUse};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// `/v1/status` has counters that only grow, not rates: the rates are the
/// difference of two reads this far apart.
const RATE_WINDOW: Duration = Duration::from_secs(1);

pub(super) async fn run(daemon: &Daemon, output: JsonFlag) -> Result<(), Failure> {
    let control = &daemon.control;
    let first = control.totals().await.map_err(|e| daemon.failure(e))?;
    let started = Instant::now();
    tokio::time::sleep(RATE_WINDOW).await;
    let second = control.totals().await.map_err(|e| daemon.failure(e))?;
    let seconds = started.elapsed().as_secs_f64();
    // Read after the rates so that the counts are the newest figures shown.
    let destinations = control
        .destinations()
        .await
        .map_err(|e| daemon.failure(e))?;
    let rates = Rates::between(first, second, seconds);

    let mut by_health: BTreeMap<&str, usize> = Health::ALL
        .iter()
        .map(|health| (health.as_str(), 0))
        .collect();
    let mut counts = BTreeMap::new();
    let mut all = StateCounts::default();
    for destination in &destinations {
        *by_health.entry(destination.health.as_str()).or_default() += 1;
        counts.insert(destination.id.clone(), destination.counts);
        all.add(&destination.counts);
    }

    if output.json {
        // `/v1/status` (totals, counts) with what the summary adds.
        return print_json(&json!({
            "url": daemon.url,
            "totals": second,
            "counts": counts,
            "rates": rates,
            "health": by_health,
            "destinations": destinations,
        }));
    }
    let mut fields = Fields::default();
    fields.add("hookwatch", daemon.url.clone());
    let health = Health::ALL
        .iter()
        .map(|health| format!("{} {}", by_health[health.as_str()], health.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    fields.add("destinations", format!("{} ({health})", destinations.len()));
    let states = EventState::ALL
        .iter()
        .map(|state| format!("{} {}", all.get(*state), state.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    fields.add("events", states);
    fields.add(
        "rates",
        format!(
            "{:.1} ingested/s, {:.1} delivered/s",
            rates.ingested_per_second, rates.delivered_per_second
        ),
    );
    fields.add(
        "since start",
        format!(
            "{} ingested, {} delivered",
            second.ingested, second.delivered
        ),
    );
    if let Some(store) = &second.store {
        fields.add("store", store_line(store));
    }
    fields.add(
        "notices",
        if second.unacked_notices == 0 {
            "none unacknowledged".to_string()
        } else {
            format!(
                "{} unacknowledged (hookwatch notices --unacked)",
                second.unacked_notices
            )
        },
    );
    let mut text = fields.render();
    if !destinations.is_empty() {
        text.push('\n');
        text.push_str(&render_list(&destinations));
    }
    print(&text)
}

/// The disk budget in one line: "1.2 MiB used of 1.9 MiB (store.max_size
/// 4 MiB)", and when full, that new events are refused.
fn store_line(store: &BudgetUse) -> String {
    let mut line = format!(
        "{} used of {} the file may grow to (store.max_size {})",
        format_bytes(store.used_bytes),
        format_bytes(store.ceiling_bytes),
        format_bytes(store.budget_bytes)
    );
    if store.full {
        line.push_str(": FULL, new events answered 507 until deliveries free room");
    }
    line
}

#[derive(Debug, serde::Serialize, PartialEq)]
struct Rates {
    ingested_per_second: f64,
    delivered_per_second: f64,
    /// How long the two reads were apart.
    over_seconds: f64,
}

impl Rates {
    /// The rates between two reads `seconds` apart. A counter that went back
    /// (the daemon restarted between the reads) counts as no progress.
    fn between(first: Totals, second: Totals, seconds: f64) -> Rates {
        let per_second = |a: u64, b: u64| {
            if seconds > 0.0 {
                b.saturating_sub(a) as f64 / seconds
            } else {
                0.0
            }
        };
        Rates {
            ingested_per_second: per_second(first.ingested, second.ingested),
            delivered_per_second: per_second(first.delivered, second.delivered),
            over_seconds: seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_line_says_the_budget_and_when_it_is_full() {
        let mut store = BudgetUse {
            used_bytes: 1024 * 1024,
            ceiling_bytes: 2 * 1024 * 1024,
            budget_bytes: 4 * 1024 * 1024,
            file_bytes: 2 * 1024 * 1024,
            full: false,
        };
        assert_eq!(
            store_line(&store),
            "1 MiB used of 2 MiB the file may grow to (store.max_size 4 MiB)"
        );
        store.full = true;
        assert!(store_line(&store)
            .ends_with(": FULL, new events answered 507 until deliveries free room"));
    }

    #[test]
    fn rates_are_the_growth_per_second_and_never_negative() {
        let first = Totals {
            ingested: 100,
            delivered: 90,
            ..Totals::default()
        };
        let second = Totals {
            ingested: 150,
            delivered: 80,
            ..Totals::default()
        };
        let rates = Rates::between(first, second, 2.0);
        assert_eq!(rates.ingested_per_second, 25.0);
        assert_eq!(rates.delivered_per_second, 0.0);
    }
}
