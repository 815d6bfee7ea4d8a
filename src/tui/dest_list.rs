//! The destinations pane's view model: which destinations are shown (the `/`
//! filter of pane 1), in which order (`s`), and the column widths their values
//! need. Worked out once per data change (a read, a filter, a sort), never per
//! frame, so a pane of 10,000 destinations draws only its visible rows.

use crate::engine::DestinationView;
use crate::model::{Health, LabelSelector, StateCounts};
use crate::tui::text::compact;

/// The orders `s` cycles through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DestSort {
    #[default]
    Id,
    /// The most troubled first: disabled, in retry, paused, healthy.
    Health,
    /// The most owed events (pending + retrying) first.
    Backlog,
    /// The highest share of failed among finished events first.
    FailureRate,
}

impl DestSort {
    pub fn next(self) -> DestSort {
        match self {
            DestSort::Id => DestSort::Health,
            DestSort::Health => DestSort::Backlog,
            DestSort::Backlog => DestSort::FailureRate,
            DestSort::FailureRate => DestSort::Id,
        }
    }

    /// How the pane title names it.
    pub fn as_str(self) -> &'static str {
        match self {
            DestSort::Id => "id",
            DestSort::Health => "health",
            DestSort::Backlog => "backlog",
            DestSort::FailureRate => "failure rate",
        }
    }
}

fn health_rank(health: Health) -> u8 {
    match health {
        Health::Disabled => 0,
        Health::InRetry => 1,
        Health::Paused => 2,
        Health::Degraded => 3,
        Health::Healthy => 4,
    }
}

/// Events a destination still owes: pending and retrying.
pub fn backlog(counts: &StateCounts) -> u64 {
    counts.pending + counts.retrying
}

/// Failed per million finished (delivered or failed) events: an integer, so
/// sorting needs no float comparison.
fn failure_ppm(counts: &StateCounts) -> u64 {
    let finished = counts.delivered + counts.failed;
    (counts.failed * 1_000_000)
        .checked_div(finished)
        .unwrap_or(0)
}

/// The destinations filter: every term must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DestFilter {
    pub health: Option<Health>,
    pub label: Option<LabelSelector>,
    /// Lowercased words, each found in the id or the URL's host.
    pub text: Vec<String>,
}

/// Destinations filter syntax, for the prompt and the help screen.
pub const SYNTAX: &[(&str, &str)] = &[
    (
        "health:disabled",
        "healthy, degraded, in_retry, disabled or paused",
    ),
    ("label:tenant=acme", "labels, several joined by commas"),
    ("text", "id or host contains"),
];

fn parse_health(value: &str) -> Result<Health, String> {
    let wanted = value.replace(['_', '-'], " ");
    Health::ALL
        .into_iter()
        .find(|h| h.as_str() == wanted)
        .ok_or_else(|| {
            format!("health:{value}: expected healthy, degraded, in_retry, disabled or paused")
        })
}

impl DestFilter {
    pub fn parse(text: &str) -> Result<DestFilter, String> {
        let mut filter = DestFilter::default();
        for term in text.split_whitespace() {
            if let Some(value) = term.strip_prefix("health:") {
                filter.health = Some(parse_health(value)?);
            } else if let Some(value) = term.strip_prefix("label:") {
                filter.label = Some(LabelSelector::parse(value)?);
            } else {
                filter.text.push(term.to_lowercase());
            }
        }
        Ok(filter)
    }

    pub fn is_empty(&self) -> bool {
        *self == DestFilter::default()
    }

    pub fn matches(&self, d: &DestinationView, host: &str) -> bool {
        if self.health.is_some_and(|h| h != d.health) {
            return false;
        }
        if self.label.as_ref().is_some_and(|l| !l.matches(&d.labels)) {
            return false;
        }
        self.text
            .iter()
            .all(|word| d.id.to_lowercase().contains(word) || host.to_lowercase().contains(word))
    }
}

/// The `all` row and the header: totals over every destination, filtered
/// out or not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub counts: StateCounts,
    pub concurrency: u64,
    pub max_concurrency: u64,
    /// Destinations by [`Health`], in the order of [`Health::ALL`]: counted
    /// by the enum alone (a disabled destination may still have events in
    /// retry, and is counted once, as disabled).
    pub by_health: [usize; Health::ALL.len()],
}

impl Totals {
    /// How many destinations are of `health`.
    pub fn of(&self, health: Health) -> usize {
        Health::ALL
            .iter()
            .position(|h| *h == health)
            .map_or(0, |i| self.by_health[i])
    }

    fn count(&mut self, health: Health) {
        if let Some(i) = Health::ALL.iter().position(|h| *h == health) {
            self.by_health[i] += 1;
        }
    }

    /// How many destinations were counted.
    pub fn destinations(&self) -> usize {
        self.by_health.iter().sum()
    }
}

/// The `all` row's id cell: with a filter on, it says its totals are still
/// every destination's (and Enter on it still shows every event).
pub fn all_label(filtered: bool) -> &'static str {
    if filtered {
        "all (unfiltered)"
    } else {
        "all"
    }
}

/// The shown destinations and what drawing them needs, from the last data change.
#[derive(Clone, Debug, Default)]
pub struct DestList {
    pub sort: DestSort,
    pub filter: DestFilter,
    /// The filter as typed, for the title and the prompt.
    pub filter_text: String,
    /// Indexes into the destinations, in display order.
    pub shown: Vec<usize>,
    /// Hosts of every destination (same order as the destinations), parsed once.
    pub hosts: Vec<String>,
    /// Indexes into the destinations, by id: what [`DestList::find`] searches,
    /// so drawing a row that names a destination (each event's NEXT column,
    /// a hundred a frame) does not scan 10,000 of them.
    by_id: Vec<usize>,
    pub totals: Totals,
    /// The widest value of each column in characters (the ID column's before
    /// it is capped to a third of the screen).
    pub widths: ColumnWidths,
    /// How many times the list was worked out: once per data change, not per frame.
    pub computed: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ColumnWidths {
    pub id: usize,
    pub health: usize,
    pub concurrency: usize,
    pub counts: usize,
}

/// `current/max`, compact so thousands of destinations' totals stay narrow.
pub fn concurrency_text(current: u64, max: u64) -> String {
    format!("{}/{}", compact(current), compact(max))
}

/// `pending/retrying/failed`, compact.
pub fn counts_text(c: &StateCounts) -> String {
    format!(
        "{}/{}/{}",
        compact(c.pending),
        compact(c.retrying),
        compact(c.failed)
    )
}

/// The HEALTH column: `draining` wins, as the destination is on its way out.
pub fn health_text(d: &DestinationView) -> &'static str {
    if d.draining {
        "draining"
    } else {
        d.health.as_str()
    }
}

pub fn healthy_text(healthy: usize) -> String {
    format!("{} ok", compact(healthy as u64))
}

impl DestList {
    /// The order of the current sort: ties (and the `id` sort) by id.
    pub fn order(&self, a: &DestinationView, b: &DestinationView) -> std::cmp::Ordering {
        let key = match self.sort {
            DestSort::Id => std::cmp::Ordering::Equal,
            DestSort::Health => health_rank(a.health).cmp(&health_rank(b.health)),
            DestSort::Backlog => backlog(&b.counts).cmp(&backlog(&a.counts)),
            DestSort::FailureRate => failure_ppm(&b.counts).cmp(&failure_ppm(&a.counts)),
        };
        key.then_with(|| a.id.cmp(&b.id))
    }

    /// Where `gone` (a destination no longer shown: deleted, or filtered
    /// out) would be in the shown rows: the index of the row that takes its
    /// place, the one after it, or the last when it would be last. `None`
    /// when nothing is shown.
    pub fn nearest(
        &self,
        destinations: &[DestinationView],
        gone: &DestinationView,
    ) -> Option<usize> {
        let last = self.shown.len().checked_sub(1)?;
        let at = self
            .shown
            .partition_point(|&i| self.order(&destinations[i], gone).is_lt());
        Some(at.min(last))
    }

    /// The destination with `id` among `destinations` (those the list was
    /// last computed from).
    pub fn find<'a>(
        &self,
        destinations: &'a [DestinationView],
        id: &str,
    ) -> Option<&'a DestinationView> {
        let at = self
            .by_id
            .binary_search_by(|&i| {
                destinations
                    .get(i)
                    .map_or(std::cmp::Ordering::Greater, |d| d.id.as_str().cmp(id))
            })
            .ok()?;
        destinations.get(self.by_id[at]).filter(|d| d.id == id)
    }

    /// Works out the shown rows again for `destinations` (after a read, or a
    /// change of filter or sort).
    pub fn compute(&mut self, destinations: &[DestinationView]) {
        self.computed += 1;
        let mut by_id: Vec<usize> = (0..destinations.len()).collect();
        // Listings come in id order already, which the sort only checks.
        by_id.sort_unstable_by(|&a, &b| destinations[a].id.cmp(&destinations[b].id));
        self.by_id = by_id;
        self.hosts = destinations
            .iter()
            .map(|d| crate::tui::text::host(&d.url))
            .collect();
        let mut shown: Vec<usize> = (0..destinations.len())
            .filter(|&i| self.filter.matches(&destinations[i], &self.hosts[i]))
            .collect();
        shown.sort_by(|a, b| self.order(&destinations[*a], &destinations[*b]));
        let mut totals = Totals::default();
        let mut widths = ColumnWidths {
            id: all_label(!self.filter.is_empty()).chars().count(),
            ..ColumnWidths::default()
        };
        // The `all` row stands for every destination (its events are all
        // events), filtered out or not; its label says so under a filter.
        for d in destinations {
            totals.counts.add(&d.counts);
            totals.concurrency += u64::from(d.concurrency);
            totals.max_concurrency += u64::from(d.max_concurrency);
            totals.count(d.health);
        }
        for &i in &shown {
            let d = &destinations[i];
            widths.id = widths.id.max(d.id.chars().count());
            widths.health = widths.health.max(health_text(d).len());
            widths.concurrency = widths.concurrency.max(
                concurrency_text(d.concurrency.into(), d.max_concurrency.into())
                    .chars()
                    .count(),
            );
            widths.counts = widths.counts.max(counts_text(&d.counts).chars().count());
        }
        widths.health = widths
            .health
            .max(healthy_text(totals.of(Health::Healthy)).chars().count());
        widths.concurrency = widths.concurrency.max(
            concurrency_text(totals.concurrency, totals.max_concurrency)
                .chars()
                .count(),
        );
        widths.counts = widths
            .counts
            .max(counts_text(&totals.counts).chars().count());
        self.shown = shown;
        self.totals = totals;
        self.widths = widths;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_health_label_and_text_terms() {
        let f = DestFilter::parse("health:in_retry label:tenant=acme,tier:gold Cust").unwrap();
        assert_eq!(f.health, Some(Health::InRetry));
        assert_eq!(
            f.label.unwrap().pairs,
            vec![
                ("tenant".to_string(), "acme".to_string()),
                ("tier".to_string(), "gold".to_string())
            ]
        );
        assert_eq!(f.text, vec!["cust".to_string()]);
        assert!(DestFilter::parse("health:sick").is_err());
        assert!(DestFilter::parse("label:tenant").is_err());
        assert!(DestFilter::parse(" ").unwrap().is_empty());
    }

    #[test]
    fn sort_cycles_through_every_order() {
        let mut sort = DestSort::default();
        let mut seen = vec![sort];
        for _ in 0..3 {
            sort = sort.next();
            seen.push(sort);
        }
        assert_eq!(
            seen,
            vec![
                DestSort::Id,
                DestSort::Health,
                DestSort::Backlog,
                DestSort::FailureRate
            ]
        );
        assert_eq!(sort.next(), DestSort::Id);
    }

    fn view(id: &str) -> DestinationView {
        DestinationView {
            id: id.into(),
            url: format!("https://{id}.example/hooks"),
            topics: Vec::new(),
            timeout: "30s".into(),
            enabled: true,
            paused: false,
            in_retry: false,
            health: Health::Healthy,
            concurrency: 1,
            max_concurrency: 1,
            in_flight: 0,
            headers: Default::default(),
            secrets: Vec::new(),
            retry: Default::default(),
            counts: StateCounts::default(),
            overridden: Vec::new(),
            source: crate::engine::DestinationSource::Api,
            labels: Default::default(),
            draining: false,
        }
    }

    #[test]
    fn finds_every_destination_by_id_whatever_the_filter_and_order() {
        // Not in id order, as a test or a remote might hand them over.
        let destinations: Vec<DestinationView> =
            ["m", "b", "z", "a", "q"].into_iter().map(view).collect();
        let mut list = DestList {
            filter: DestFilter::parse("z").unwrap(),
            ..DestList::default()
        };
        list.compute(&destinations);
        assert_eq!(list.shown.len(), 1);
        for d in &destinations {
            let found = list.find(&destinations, &d.id).expect("listed");
            assert_eq!(found.url, d.url);
        }
        assert!(list.find(&destinations, "c").is_none());
        assert!(list.find(&destinations, "").is_none());
        // Before any compute nothing is known rather than something wrong.
        assert!(DestList::default().find(&destinations, "m").is_none());
    }

    #[test]
    fn failure_rate_counts_finished_events_only() {
        let counts = StateCounts {
            delivered: 3,
            failed: 1,
            pending: 100,
            ..StateCounts::default()
        };
        assert_eq!(failure_ppm(&counts), 250_000);
        assert_eq!(failure_ppm(&StateCounts::default()), 0);
    }
}
