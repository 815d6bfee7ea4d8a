//! The TUI's state and its pure key handling: `handle_key` changes the state and
//! returns at most one [`Action`] for the event loop to carry out against the
//! engine; results come back as [`ActionResult`]s. Nothing here awaits or reads
//! the engine, so it is tested with fixture data.

use super::dest_form::DestinationForm;
use super::dest_list::{backlog, DestFilter, DestList};
use super::filter::Filter;
use super::form::{FieldForm, PolicyForm};
use super::history::ListStats;
use super::job_list::JobList;
use super::keymap::{self, Command, Pane};
use super::notice_list::NoticeList;
use crate::config::ConfigSource;
use crate::engine::stats::DestinationStats;
use crate::engine::{
    BulkSelection, Change, DestinationPatch, DestinationSource, DestinationView, EventDetail,
    EventPage, JobProgress, JobState,
};
use crate::model::{
    AttemptRecord, EventFilter, EventId, EventRecord, EventState, Notice, NoticeId, NoticePage,
    NoticeQuery, NoticeSelection,
};
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::collections::BTreeSet;
use std::net::SocketAddr;

/// Events read per page (the visible window and some margin).
pub const PAGE: usize = 100;
/// How long a status message stays in the footer.
const STATUS_SECS: i64 = 5;

/// What the TUI is told about its surroundings.
#[derive(Clone, Debug)]
pub struct TuiInfo {
    pub listen: SocketAddr,
    /// The store as shown: the redb file's path, or the database URL with
    /// its password masked.
    pub store: String,
    pub config_source: ConfigSource,
    pub read_only: bool,
    /// `Some` when the TUI runs against another process's engine over its
    /// HTTP API rather than one of its own.
    pub attached: Option<Attachment>,
}

/// The running hookwatch a TUI is attached to. Holds no token: this is shown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The pid of the process that answers: from the store's note at first,
    /// then as the server's status says; `None` until known.
    pub pid: Option<u32>,
    pub url: String,
}

impl TuiInfo {
    /// The base URL of the API the operator can use: the attached one, else ours.
    pub fn api_url(&self) -> String {
        match &self.attached {
            Some(attachment) => attachment.url.clone(),
            None => format!("http://{}", self.listen),
        }
    }
}

/// Whether the engine behind the TUI answers: only an attached TUI can lose it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    /// When a read last got an answer.
    pub last: Option<DateTime<Utc>>,
    /// The latest read found the engine unreachable.
    pub lost: bool,
}

/// Something to do against the engine, off the key-handling path.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Action {
    Quit,
    /// Re-read the visible window (selection, page or filter changed).
    Refresh,
    RetryNow(Vec<EventId>),
    Mute(Vec<EventId>),
    Requeue(Vec<EventId>),
    /// Requeue, delivered events included (sent again), after the operator
    /// confirmed it.
    Resend(Vec<EventId>),
    /// Count what a bulk retry would cover, for its confirmation.
    CountBulk(BulkSelection),
    StartBulk(BulkSelection),
    CancelBulk(String),
    PatchDestination {
        id: String,
        patch: DestinationPatch,
    },
    /// Create a destination from the new destination form's definition.
    CreateDestination(serde_json::Value),
    DeleteDestination {
        id: String,
        drain: bool,
    },
    /// Put this text on the terminal's clipboard (OSC 52).
    CopyToClipboard(String),
    /// Read a destination's statistics of the last hour and day for its view
    /// (and its notices of the last day, to mark on the charts).
    ReadDestinationStats(String),
    /// Read a page of operational notices for the notices popup.
    ReadNotices(NoticeQuery),
    AckNotice(NoticeId),
    /// Acknowledge these notices (every one, from `A`).
    AckNotices(NoticeSelection),
    /// Read the bulk jobs for the jobs popup.
    ReadJobs,
}

/// What came back from an [`Action`].
#[derive(Clone, Debug)]
pub enum ActionResult {
    Info(String),
    Error(String),
    Counted(u64),
    BulkStarted(JobProgress),
    BulkProgress(JobProgress),
    /// The destination of the new destination form was created.
    Created(String),
    /// The daemon refused the new destination: shown in the form, at the
    /// field it names.
    CreateRefused {
        field: Option<String>,
        message: String,
    },
    /// A destination's statistics for its view: the last hour and the last day.
    DestinationStats {
        hour: Box<DestinationStats>,
        day: Box<DestinationStats>,
    },
    /// A destination's notices of the last day, newest first, for the marks
    /// on its view's charts.
    DestinationNotices {
        destination: String,
        notices: Vec<Notice>,
    },
    /// A page of notices read for `query`.
    Notices {
        query: NoticeQuery,
        page: NoticePage,
    },
    /// A notice as it is once acknowledged.
    NoticeAcked(Box<Notice>),
    /// `A` acknowledged this many notices.
    NoticesAcked(u64),
    /// A read of the notices failed.
    NoticesFailed(String),
    /// The bulk jobs, newest first, for the jobs popup.
    Jobs(Vec<JobProgress>),
    /// A read of the bulk jobs failed.
    JobsFailed(String),
}

#[derive(Clone, Debug)]
pub enum Confirm {
    BulkRetry {
        selection: BulkSelection,
        /// What the selection covers, in words.
        scope: String,
        count: Option<u64>,
    },
    Mute {
        ids: Vec<EventId>,
    },
    /// `u` with delivered events among its targets: requeueing them sends
    /// them to the receiver again, so it is asked first (default no).
    Resend {
        /// Every event `u` applies to.
        ids: Vec<EventId>,
        /// Those of `ids` that were delivered.
        delivered: Vec<EventId>,
    },
    DeleteDestination {
        id: String,
        /// Pending and retrying events: what deleting cancels.
        owed: u64,
        source: DestinationSource,
        /// Already draining: deleting now cancels what is left.
        draining: bool,
    },
}

/// What the `/` prompt filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterTarget {
    Events,
    Destinations,
}

#[derive(Clone, Debug)]
pub enum Mode {
    Normal,
    Filter {
        input: String,
        error: Option<String>,
        target: FilterTarget,
    },
    Help {
        scroll: u16,
    },
    Detail {
        /// The first wrapped line shown.
        scroll: u16,
        /// Long lines wrap (else they are cut at the edge).
        wrap: bool,
    },
    /// One destination's history (Enter on it in pane 1): charts of the last
    /// hour and day.
    Destination(DestinationScreen),
    Confirm(Confirm),
    Form(PolicyForm),
    NewDestination(DestinationForm),
    /// The bulk retry gauge.
    Bulk,
    /// The operational notices (`!`).
    Notices(NoticeList),
    /// The bulk jobs (`J`).
    Jobs(JobList),
}

/// The destination view's data, read when it opens and every few seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct DestinationScreen {
    pub id: String,
    pub hour: Option<DestinationStats>,
    pub day: Option<DestinationStats>,
    /// Its notices of the last day, newest first, marked on the charts.
    pub notices: Vec<Notice>,
}

/// What the footer's status line says: a pending prompt wins over any
/// message until it is answered.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusLine<'a> {
    /// A question waits for its answer: what to press.
    Prompt(String),
    Message(&'a Status),
    /// What happened while nobody watched (on start, until the first key).
    Greeting(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub text: String,
    pub error: bool,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub ingested: f64,
    pub delivered: f64,
}

pub struct App {
    pub info: TuiInfo,
    /// The time rendered against; set by the loop (fixed in tests).
    pub now: DateTime<Utc>,
    /// The terminal size, for paging.
    pub size: (u16, u16),
    pub focus: Pane,
    pub mode: Mode,
    pub destinations: Vec<DestinationView>,
    /// Which destinations pane 1 shows, in which order.
    pub dest_list: DestList,
    /// 0 is the `all` row; n is `destinations[dest_list.shown[n - 1]]`.
    pub dest_index: usize,
    /// The first row pane 1 shows (it scrolls to keep the selection in view).
    pub dest_offset: usize,
    /// The loaded page, newest first, before client-side filtering.
    pub events: Vec<EventRecord>,
    pub events_next: Option<EventId>,
    /// The `after` cursor of every page from the top; the last is the current page.
    pub page_stack: Vec<Option<EventId>>,
    /// Index into the shown (filtered) events.
    pub event_index: usize,
    pub selected_event: Option<EventId>,
    select_last_on_load: bool,
    /// The rows shown are the previous list's until the new page arrives
    /// (see [`App::reset_events`]).
    events_stale: bool,
    pub detail: Option<EventDetail>,
    /// Index into the attempts, newest first.
    pub attempt_index: usize,
    pub filter_text: String,
    pub filter: Filter,
    pub marks: BTreeSet<EventId>,
    pub frozen: bool,
    pub rates: Rates,
    /// The destinations' statistics of the last hour, for pane 1's
    /// sparklines and success rates.
    pub stats: ListStats,
    pub bulk: Option<JobProgress>,
    pub status: Option<Status>,
    pub contact: Contact,
    /// Operational notices not acknowledged yet (the header's `!` count).
    pub unacked_notices: u64,
    /// Where the store stands against `store.max_size` (the header warns
    /// while it is full); `None` without a budget.
    pub store_budget: Option<crate::store::BudgetUse>,
    /// Until the first key: the status line tells an operator who has just
    /// opened the TUI of the notices waiting for them.
    pub greeting: bool,
    /// An event selected from a notice (Enter in `!`), kept selected while
    /// it is not on the loaded page of events: its detail is read by id.
    off_page_event: Option<EventId>,
    pub quit: bool,
}

fn ctrl(key: &KeyEvent, c: char) -> bool {
    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char(c)
}

impl App {
    pub fn new(info: TuiInfo, now: DateTime<Utc>) -> App {
        App {
            info,
            now,
            size: (80, 24),
            focus: Pane::Events,
            mode: Mode::Normal,
            destinations: Vec::new(),
            dest_list: DestList::default(),
            dest_index: 0,
            dest_offset: 0,
            events: Vec::new(),
            events_next: None,
            page_stack: vec![None],
            event_index: 0,
            selected_event: None,
            select_last_on_load: false,
            events_stale: false,
            detail: None,
            attempt_index: 0,
            filter_text: String::new(),
            filter: Filter::default(),
            marks: BTreeSet::new(),
            frozen: false,
            rates: Rates::default(),
            stats: ListStats::default(),
            bulk: None,
            status: None,
            contact: Contact::default(),
            unacked_notices: 0,
            store_budget: None,
            greeting: false,
            off_page_event: None,
            quit: false,
        }
    }

    // ----- what the loop reads -------------------------------------------------

    /// The selected destination's id; `None` for the `all` row.
    pub fn selected_destination(&self) -> Option<&DestinationView> {
        self.dest_index
            .checked_sub(1)
            .and_then(|i| self.dest_list.shown.get(i))
            .and_then(|&i| self.destinations.get(i))
    }

    /// The destinations pane 1 shows, in order.
    pub fn shown_destinations(&self) -> impl Iterator<Item = &DestinationView> {
        self.dest_list
            .shown
            .iter()
            .filter_map(|&i| self.destinations.get(i))
    }

    pub fn selected_destination_id(&self) -> Option<&str> {
        self.selected_destination().map(|d| d.id.as_str())
    }

    /// The engine-side filter and the cursor of the page to show.
    pub fn events_query(&self) -> (EventFilter, Option<EventId>) {
        (
            self.filter.event_filter(self.selected_destination_id()),
            self.page_stack.last().copied().flatten(),
        )
    }

    pub fn shown_events(&self) -> Vec<&EventRecord> {
        self.events
            .iter()
            .filter(|e| self.filter.matches(e))
            .collect()
    }

    pub fn selected_record(&self) -> Option<&EventRecord> {
        let id = self.selected_event?;
        self.events.iter().find(|e| e.id == id)
    }

    /// The detail of the selected event, when it is loaded.
    pub fn selected_detail(&self) -> Option<&EventDetail> {
        self.detail
            .as_ref()
            .filter(|d| Some(d.event.id) == self.selected_event)
    }

    /// The selected event's attempts, newest first (the order `attempt_index`
    /// counts in); empty while its detail is not loaded.
    pub fn selected_attempts(&self) -> Vec<&AttemptRecord> {
        self.selected_detail()
            .map(|detail| detail.attempts.iter().rev().collect())
            .unwrap_or_default()
    }

    pub fn page_number(&self) -> usize {
        self.page_stack.len()
    }

    /// The bulk job while it runs and `x` can cancel it.
    pub fn bulk_running(&self) -> Option<&JobProgress> {
        self.bulk.as_ref().filter(|p| p.state == JobState::Running)
    }

    /// The bulk job whose progress is still read every tick: until it has
    /// finished, a cancelled one too (the attempts running when it was
    /// cancelled finish and count).
    pub fn bulk_following(&self) -> Option<&JobProgress> {
        self.bulk.as_ref().filter(|p| !p.finished)
    }

    pub fn visible_status(&self) -> Option<&Status> {
        self.status
            .as_ref()
            .filter(|s| (self.now - s.at).num_seconds() < STATUS_SECS)
    }

    /// The footer's status line: the pending prompt's keys while a question
    /// waits (a result arriving meanwhile must not hide it), else the latest
    /// message while it is fresh.
    pub fn status_line(&self) -> Option<StatusLine<'_>> {
        if let Mode::Confirm(confirm) = &self.mode {
            return Some(StatusLine::Prompt(match confirm {
                Confirm::DeleteDestination { .. } => {
                    "waiting for your answer above (n/Esc backs out)".to_string()
                }
                Confirm::BulkRetry { count: None, .. } => {
                    "counting… then y/Enter confirms, n/Esc backs out".to_string()
                }
                Confirm::Resend { delivered, .. } => resend_question(delivered),
                _ => "confirm? y/Enter yes · n/Esc no".to_string(),
            }));
        }
        if let Mode::Notices(list) = &self.mode {
            if list.confirm_all {
                return Some(StatusLine::Prompt(format!(
                    "acknowledge every notice ({} unacknowledged)? [y/N]",
                    self.unacked_notices
                )));
            }
        }
        if let Some(status) = self.visible_status() {
            return Some(StatusLine::Message(status));
        }
        (self.greeting && self.unacked_notices > 0).then(|| {
            StatusLine::Greeting(format!(
                "{} since you last looked — press ! to see them",
                plural(self.unacked_notices as usize, "unacknowledged notice")
            ))
        })
    }

    /// The destinations whose statistics pane 1 needs: every one while there
    /// are few, else the rows in view (a platform's 10,000 are not read every
    /// few seconds).
    pub fn stats_targets(&self) -> Vec<String> {
        const READ_ALL_UP_TO: usize = 64;
        if self.destinations.len() <= READ_ALL_UP_TO {
            return self.destinations.iter().map(|d| d.id.clone()).collect();
        }
        let rows = self.dest_page_size();
        let offset = self.dest_offset_for(rows);
        (offset..offset + rows)
            .filter_map(|row| row.checked_sub(1))
            .filter_map(|i| self.dest_list.shown.get(i))
            .filter_map(|&i| self.destinations.get(i))
            .map(|d| d.id.clone())
            .collect()
    }

    /// The destination the open destination view shows.
    pub fn destination_screen_id(&self) -> Option<&str> {
        match &self.mode {
            Mode::Destination(screen) => Some(&screen.id),
            _ => None,
        }
    }

    /// Rows the events pane shows at the current size.
    pub fn page_size(&self) -> usize {
        let area = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        let rows = super::layout::events_rows(area, self.dest_list.shown.len());
        rows.max(1)
    }

    /// Rows pane 1 shows at the current size, the `all` row included.
    pub fn dest_page_size(&self) -> usize {
        let area = ratatui::layout::Rect::new(0, 0, self.size.0, self.size.1);
        super::layout::destination_rows(area, self.dest_list.shown.len()).max(1)
    }

    // ----- what the loop feeds in ----------------------------------------------

    /// Takes a read of the destinations. The selected destination stays
    /// selected by its id wherever it now sorts; when it is gone (deleted),
    /// the row nearest to where it was is selected instead, and this returns
    /// true: the events pane, which shows the selected destination's events,
    /// was reset and must be read again.
    pub fn set_destinations(&mut self, destinations: Vec<DestinationView>) -> bool {
        // Taken before the list changes: `dest_index` points into the old rows.
        let selected = self.selected_destination().cloned();
        let known: BTreeSet<&str> = self.destinations.iter().map(|d| d.id.as_str()).collect();
        let created: Vec<String> = destinations
            .iter()
            .filter(|d| !known.contains(d.id.as_str()))
            .map(|d| d.id.clone())
            .collect();
        self.stats.note_created(created.iter().map(String::as_str));
        self.destinations = destinations;
        self.recompute_destinations(selected)
    }

    /// Works the shown destinations out again (data, filter or sort changed)
    /// and selects `selected` again by its id, or the nearest row when it is
    /// no longer shown. True when the selection moved to another destination;
    /// the events pane is reset for it then.
    fn recompute_destinations(&mut self, selected: Option<DestinationView>) -> bool {
        self.dest_list.compute(&self.destinations);
        let mut moved = false;
        if let Some(selected) = selected {
            let position = self
                .dest_list
                .shown
                .iter()
                .position(|&i| self.destinations[i].id == selected.id);
            self.dest_index = match position {
                Some(p) => p + 1,
                None => {
                    moved = true;
                    // Nothing shown: the `all` row.
                    self.dest_list
                        .nearest(&self.destinations, &selected)
                        .map_or(0, |p| p + 1)
                }
            };
        }
        self.dest_index = self.dest_index.min(self.dest_list.shown.len());
        self.scroll_destinations();
        if moved {
            self.reset_events();
        }
        moved
    }

    /// The events pane starts over (its destination changed): first page,
    /// nothing selected until the read.
    /// Starts over on a new events list. The rows shown until its page
    /// arrives belong to the previous one, so they are marked stale: a key
    /// pressed meanwhile (`g`, say) moves the cursor but selects none of them,
    /// or the new page would keep that old event selected by its id.
    fn reset_events(&mut self) {
        self.off_page_event = None;
        self.events_stale = true;
        self.page_stack = vec![None];
        self.event_index = 0;
        self.selected_event = None;
        self.detail = None;
    }

    /// Keeps the selected row of pane 1 in view, moving as little as it can.
    fn scroll_destinations(&mut self) {
        let rows = self.dest_page_size();
        let len = self.dest_list.shown.len() + 1;
        if self.dest_index < self.dest_offset {
            self.dest_offset = self.dest_index;
        } else if self.dest_index >= self.dest_offset + rows {
            self.dest_offset = self.dest_index + 1 - rows;
        }
        self.dest_offset = self.dest_offset.min(len.saturating_sub(rows));
    }

    /// The first row pane 1 shows for `rows` visible rows: the stored offset,
    /// moved only if the selection would be out of view or the pane not full
    /// (after a resize).
    pub fn dest_offset_for(&self, rows: usize) -> usize {
        let rows = rows.max(1);
        let len = self.dest_list.shown.len() + 1;
        let mut offset = self.dest_offset.min(len.saturating_sub(rows));
        if self.dest_index < offset {
            offset = self.dest_index;
        } else if self.dest_index >= offset + rows {
            offset = self.dest_index + 1 - rows;
        }
        offset
    }

    /// Takes a read of the events page. The selected event stays selected by
    /// its id wherever it now is (new events above it move it down, not the
    /// selection onto them); when it is no longer shown, the row that took its
    /// place (the next older event) is selected.
    pub fn set_events(&mut self, page: EventPage) {
        self.events_stale = false;
        self.events = page.events;
        self.events_next = page.next.and_then(|s| s.parse().ok());
        let shown: Vec<EventId> = self.shown_events().iter().map(|e| e.id).collect();
        let last = shown.len().saturating_sub(1);
        if self.select_last_on_load {
            self.select_last_on_load = false;
            self.event_index = last;
        } else if self
            .selected_event
            .is_some_and(|id| self.off_page_event == Some(id) && !shown.contains(&id))
        {
            // Jumped to from a notice, and not on this page: it stays
            // selected (its detail is read by id), no row is.
            self.event_index = 0;
            return;
        } else if let Some(selected) = self.selected_event {
            // Pages are newest first: ids descend.
            self.event_index = shown
                .iter()
                .position(|id| *id == selected)
                .unwrap_or_else(|| shown.partition_point(|id| *id > selected))
                .min(last);
        } else {
            self.event_index = self.event_index.min(last);
        }
        self.select_event(shown.get(self.event_index).copied());
    }

    pub fn set_detail(&mut self, detail: Option<EventDetail>) {
        self.detail = detail;
        let n = self.detail.as_ref().map_or(0, |d| d.attempts.len());
        self.attempt_index = self.attempt_index.min(n.saturating_sub(1));
    }

    /// A bulk job's progress as read. Once the job has finished its counts
    /// are final: a read answered earlier but arriving later is not taken.
    /// The footer says how the job ended when it does.
    pub fn set_bulk_progress(&mut self, progress: JobProgress) {
        if let Some(current) = &self.bulk {
            if current.id == progress.id && current.finished {
                return;
            }
        }
        if progress.finished {
            self.info_status(format!("bulk retry {}", job_summary(&progress)));
        }
        self.bulk = Some(progress);
    }

    /// Pane 1's statistics as read (see [`App::stats_targets`]).
    pub fn set_list_stats(&mut self, read: Vec<DestinationStats>) {
        self.stats.update(read, self.now);
    }

    /// An engine notification. True when the visible window may have changed:
    /// every change may (history comes from the engine's statistics, read
    /// every few seconds, not from counting notifications).
    pub fn on_change(&mut self, change: &Change) -> bool {
        if let Change::Notices { unacked } = change {
            self.set_unacked_notices(*unacked);
            if let Mode::Notices(list) = &mut self.mode {
                list.stale = true;
            }
        }
        true
    }

    /// The number of unacknowledged notices as the engine counts it.
    pub fn set_unacked_notices(&mut self, unacked: u64) {
        self.unacked_notices = unacked;
    }

    /// Said on start: the notices waiting since the operator last looked
    /// (the status line says so until the first key).
    pub fn greet(&mut self, unacked: u64) {
        self.set_unacked_notices(unacked);
        self.greeting = true;
    }

    /// The read the open notices list needs after a notice changed, if any
    /// (one at a time: it waits for a read under way).
    pub fn take_notices_reread(&mut self) -> Option<Action> {
        let Mode::Notices(list) = &mut self.mode else {
            return None;
        };
        if !list.stale || list.reading {
            return None;
        }
        list.stale = false;
        list.reading = true;
        Some(Action::ReadNotices(list.reread()))
    }

    pub fn apply_result(&mut self, result: ActionResult) -> bool {
        match result {
            ActionResult::Info(text) => {
                self.info_status(text);
                true
            }
            ActionResult::Error(text) => {
                self.error_status(text);
                true
            }
            ActionResult::Counted(n) => {
                if let Mode::Confirm(Confirm::BulkRetry { count, .. }) = &mut self.mode {
                    *count = Some(n);
                }
                false
            }
            ActionResult::BulkStarted(progress) => {
                self.info_status(format!("bulk retry started: {} events", progress.total));
                self.bulk = Some(progress);
                false
            }
            ActionResult::BulkProgress(progress) => {
                self.set_bulk_progress(progress);
                false
            }
            ActionResult::Created(id) => {
                if matches!(self.mode, Mode::NewDestination(_)) {
                    self.mode = Mode::Normal;
                }
                self.info_status(format!("created {id}"));
                true
            }
            ActionResult::DestinationStats { hour, day } => {
                if let Mode::Destination(screen) = &mut self.mode {
                    if screen.id == hour.destination {
                        screen.hour = Some(*hour);
                        screen.day = Some(*day);
                    }
                }
                false
            }
            ActionResult::DestinationNotices {
                destination,
                notices,
            } => {
                if let Mode::Destination(screen) = &mut self.mode {
                    if screen.id == destination {
                        screen.notices = notices;
                    }
                }
                false
            }
            ActionResult::Notices { query, page } => {
                if let Mode::Notices(list) = &mut self.mode {
                    let unacked = page.unacked;
                    if list.take_page(query, page) {
                        self.unacked_notices = unacked;
                    }
                }
                false
            }
            ActionResult::NoticeAcked(notice) => {
                if let Mode::Notices(list) = &mut self.mode {
                    list.replace(*notice);
                    list.stale = true;
                }
                self.info_status("acknowledged");
                false
            }
            ActionResult::NoticesAcked(n) => {
                if let Mode::Notices(list) = &mut self.mode {
                    list.stale = true;
                }
                self.info_status(format!("acknowledged {}", plural(n as usize, "notice")));
                false
            }
            ActionResult::Jobs(jobs) => {
                if let Mode::Jobs(list) = &mut self.mode {
                    list.set(jobs);
                }
                false
            }
            ActionResult::JobsFailed(text) => {
                if let Mode::Jobs(list) = &mut self.mode {
                    list.error = Some(text);
                }
                false
            }
            ActionResult::NoticesFailed(text) => {
                if let Mode::Notices(list) = &mut self.mode {
                    list.reading = false;
                }
                self.error_status(text);
                false
            }
            ActionResult::CreateRefused { field, message } => {
                if let Mode::NewDestination(form) = &mut self.mode {
                    form.refused(field.as_deref(), message);
                } else {
                    self.error_status(format!("create: {message}"));
                }
                false
            }
        }
    }

    pub fn info_status(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: false,
            at: self.now,
        });
    }

    /// A read got an answer from the engine.
    pub fn contact_made(&mut self) {
        self.contact = Contact {
            last: Some(self.now),
            lost: false,
        };
    }

    /// A read found the engine unreachable; the loop keeps trying.
    pub fn contact_lost(&mut self) {
        self.contact.lost = true;
    }

    pub fn error_status(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            error: true,
            at: self.now,
        });
    }

    // ----- keys ------------------------------------------------------------------

    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if ctrl(&key, 'c') {
            self.quit = true;
            return Some(Action::Quit);
        }
        self.greeting = false;
        match &self.mode {
            Mode::Normal => self.normal_key(key),
            Mode::Filter { .. } => self.filter_key(key),
            Mode::Help { .. } => self.scroll_key(key),
            Mode::Detail { .. } => self.detail_key(key),
            Mode::Destination(_) => self.destination_screen_key(key),
            Mode::Confirm(_) => self.confirm_key(key),
            Mode::Form(_) => self.form_key(key),
            Mode::NewDestination(_) => self.destination_form_key(key),
            Mode::Bulk => self.bulk_key(key),
            Mode::Notices(_) => self.notices_key(key),
            Mode::Jobs(_) => self.jobs_key(key),
        }
    }

    fn normal_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Some(binding) = keymap::lookup(&key, self.focus, self.info.read_only) else {
            if self.info.read_only && keymap::is_removed_by_read_only(&key, self.focus) {
                self.error_status("read-only: actions that change state are off");
            }
            return None;
        };
        self.command(binding.command)
    }

    pub fn command(&mut self, command: Command) -> Option<Action> {
        match command {
            Command::Quit => {
                self.quit = true;
                Some(Action::Quit)
            }
            Command::Help => {
                self.mode = Mode::Help { scroll: 0 };
                None
            }
            Command::NextPane => {
                self.focus = self.focus.next();
                None
            }
            Command::PrevPane => {
                self.focus = self.focus.prev();
                None
            }
            Command::FocusDestinations => {
                self.focus = Pane::Destinations;
                None
            }
            Command::FocusEvents => {
                self.focus = Pane::Events;
                None
            }
            Command::FocusAttempts => {
                self.focus = Pane::Attempts;
                None
            }
            Command::Down
            | Command::Up
            | Command::PageDown
            | Command::PageUp
            | Command::HalfDown
            | Command::HalfUp
            | Command::Top
            | Command::Bottom => self.navigate(command),
            Command::Open => match self.focus {
                Pane::Destinations => match self.selected_destination() {
                    Some(dest) => {
                        let id = dest.id.clone();
                        self.mode = Mode::Destination(DestinationScreen {
                            id: id.clone(),
                            hour: None,
                            day: None,
                            notices: Vec::new(),
                        });
                        Some(Action::ReadDestinationStats(id))
                    }
                    // The `all` row: its events.
                    None => {
                        self.focus = Pane::Events;
                        None
                    }
                },
                Pane::Events | Pane::Attempts => {
                    if self.selected_event.is_some() {
                        self.mode = Mode::Detail {
                            scroll: 0,
                            wrap: true,
                        };
                        Some(Action::Refresh)
                    } else {
                        None
                    }
                }
            },
            Command::Filter => {
                self.mode = if self.focus == Pane::Destinations {
                    Mode::Filter {
                        input: self.dest_list.filter_text.clone(),
                        error: None,
                        target: FilterTarget::Destinations,
                    }
                } else {
                    Mode::Filter {
                        input: self.filter_text.clone(),
                        error: None,
                        target: FilterTarget::Events,
                    }
                };
                None
            }
            Command::Mark => {
                let id = self.selected_event?;
                if !self.marks.remove(&id) {
                    self.marks.insert(id);
                }
                self.navigate(Command::Down)
            }
            Command::MarkAll => {
                let ids: Vec<EventId> = self.shown_events().iter().map(|e| e.id).collect();
                self.marks.extend(ids);
                None
            }
            Command::ClearMarks => {
                if self.focus == Pane::Destinations && !self.dest_list.filter_text.is_empty() {
                    self.apply_destination_filter(String::new(), DestFilter::default())
                } else if !self.marks.is_empty() {
                    self.marks.clear();
                    None
                } else if !self.filter_text.is_empty() {
                    self.apply_filter(String::new(), Filter::default())
                } else {
                    None
                }
            }
            Command::Retry => {
                let ids = self.take_targets()?;
                self.info_status(format!("retrying {} now…", plural(ids.len(), "event")));
                Some(Action::RetryNow(ids))
            }
            Command::Mute => {
                let ids = self.targets();
                if ids.len() > 1 {
                    self.mode = Mode::Confirm(Confirm::Mute { ids });
                    return None;
                }
                let ids = self.take_targets()?;
                Some(Action::Mute(ids))
            }
            Command::Requeue => {
                let ids = self.targets();
                let delivered: Vec<EventId> = ids
                    .iter()
                    .copied()
                    .filter(|id| {
                        self.events
                            .iter()
                            .any(|e| e.id == *id && e.state == EventState::Delivered)
                    })
                    .collect();
                if !delivered.is_empty() {
                    self.mode = Mode::Confirm(Confirm::Resend { ids, delivered });
                    return None;
                }
                let ids = self.take_targets()?;
                Some(Action::Requeue(ids))
            }
            Command::BulkRetry => self.start_bulk_confirm(),
            Command::CancelBulk => match self.bulk_running() {
                Some(job) => Some(Action::CancelBulk(job.id.clone())),
                None => {
                    self.error_status("no bulk retry is running");
                    None
                }
            },
            Command::EditPolicy => {
                let Some(dest) = self.selected_destination() else {
                    self.error_status("select a destination first (1, then j/k)");
                    return None;
                };
                self.mode = Mode::Form(PolicyForm::new(&dest.id, &dest.retry));
                None
            }
            Command::TogglePause => {
                let Some(dest) = self.selected_destination() else {
                    self.error_status("select a destination first (1, then j/k)");
                    return None;
                };
                let (id, paused) = (dest.id.clone(), !dest.paused);
                self.info_status(format!(
                    "{} {id}…",
                    if paused { "pausing" } else { "resuming" }
                ));
                Some(Action::PatchDestination {
                    id,
                    patch: DestinationPatch {
                        paused: Some(paused),
                        ..DestinationPatch::default()
                    },
                })
            }
            Command::Enable => {
                let Some(dest) = self.selected_destination() else {
                    self.error_status("select a destination first (1, then j/k)");
                    return None;
                };
                if dest.enabled {
                    let text = format!("{} is already enabled", dest.id);
                    self.info_status(text);
                    return None;
                }
                let id = dest.id.clone();
                self.info_status(format!("enabling {id}…"));
                Some(Action::PatchDestination {
                    id,
                    patch: DestinationPatch {
                        enabled: Some(true),
                        ..DestinationPatch::default()
                    },
                })
            }
            Command::NewDestination => {
                self.mode = Mode::NewDestination(DestinationForm::new());
                None
            }
            Command::DeleteDestination => {
                let Some(dest) = self.selected_destination() else {
                    self.error_status("select a destination first (j/k)");
                    return None;
                };
                self.mode = Mode::Confirm(Confirm::DeleteDestination {
                    id: dest.id.clone(),
                    owed: backlog(&dest.counts),
                    source: dest.source,
                    draining: dest.draining,
                });
                None
            }
            Command::CycleSort => {
                let selected = self.selected_destination().cloned();
                self.dest_list.sort = self.dest_list.sort.next();
                // A sort shows the same destinations: the selection is kept.
                self.recompute_destinations(selected);
                self.info_status(format!(
                    "destinations sorted by {}",
                    self.dest_list.sort.as_str()
                ));
                None
            }
            Command::Notices => {
                let list = NoticeList::new(false);
                let query = list.first_page();
                self.mode = Mode::Notices(list);
                Some(Action::ReadNotices(query))
            }
            Command::Jobs => {
                self.mode = Mode::Jobs(JobList::default());
                Some(Action::ReadJobs)
            }
            // Keys of the event detail and of the notices, looked up there only.
            Command::CopyPayload
            | Command::ToggleWrap
            | Command::Close
            | Command::ToggleUnacked
            | Command::AckNotice
            | Command::AckAllNotices => None,
            Command::Freeze => {
                self.frozen = !self.frozen;
                if self.frozen {
                    self.info_status("frozen: live updates paused (Z resumes)");
                    None
                } else {
                    self.info_status("live updates resumed");
                    Some(Action::Refresh)
                }
            }
        }
    }

    /// The marked events, else the selected one.
    fn targets(&self) -> Vec<EventId> {
        if self.marks.is_empty() {
            self.selected_event.into_iter().collect()
        } else {
            self.marks.iter().copied().collect()
        }
    }

    /// Like [`targets`], and clears the marks it used.
    fn take_targets(&mut self) -> Option<Vec<EventId>> {
        let ids = self.targets();
        if ids.is_empty() {
            self.error_status("no event selected");
            return None;
        }
        self.marks.clear();
        Some(ids)
    }

    fn start_bulk_confirm(&mut self) -> Option<Action> {
        let dest = self.selected_destination_id();
        let mut scope = match dest {
            Some(id) => format!("destination {id}"),
            None => "all destinations".to_string(),
        };
        if !self.filter_text.is_empty() {
            scope.push_str(&format!(", filter \"{}\"", self.filter_text));
        }
        if self.filter.has_client_terms() {
            // status: and free text only exist client-side: retry the rows shown.
            let ids: Vec<EventId> = self.shown_events().iter().map(|e| e.id).collect();
            scope.push_str(" (the loaded rows)");
            self.mode = Mode::Confirm(Confirm::BulkRetry {
                count: Some(ids.len() as u64),
                selection: BulkSelection {
                    ids: Some(ids),
                    ..BulkSelection::default()
                },
                scope,
            });
            return None;
        }
        let selection = BulkSelection::from_filter(&self.filter.event_filter(dest));
        self.mode = Mode::Confirm(Confirm::BulkRetry {
            selection: selection.clone(),
            scope,
            count: None,
        });
        Some(Action::CountBulk(selection))
    }

    fn navigate(&mut self, command: Command) -> Option<Action> {
        let page = self.page_size() as isize;
        match self.focus {
            Pane::Destinations => {
                let len = self.dest_list.shown.len() + 1;
                let page = self.dest_page_size() as isize;
                let target = step(self.dest_index, len, command, page);
                if target != self.dest_index {
                    self.dest_index = target;
                    self.scroll_destinations();
                    self.reset_events();
                    return Some(Action::Refresh);
                }
                None
            }
            Pane::Events => self.navigate_events(command, page),
            Pane::Attempts => {
                let len = self.selected_detail().map_or(0, |d| d.attempts.len());
                if len > 0 {
                    self.attempt_index = step(self.attempt_index, len, command, page);
                }
                None
            }
        }
    }

    fn navigate_events(&mut self, command: Command, page: isize) -> Option<Action> {
        self.off_page_event = None;
        let len = self.shown_events().len();
        let last = len.saturating_sub(1);
        let at_end = len == 0 || self.event_index >= last;
        match command {
            Command::Down | Command::PageDown | Command::HalfDown if at_end => {
                return self.next_page();
            }
            Command::Up | Command::PageUp | Command::HalfUp
                if self.event_index == 0 && self.page_stack.len() > 1 =>
            {
                self.page_stack.pop();
                self.select_last_on_load = true;
                self.selected_event = None;
                return Some(Action::Refresh);
            }
            Command::Top if self.page_stack.len() > 1 => {
                self.page_stack = vec![None];
                self.event_index = 0;
                self.selected_event = None;
                return Some(Action::Refresh);
            }
            _ => {}
        }
        if len == 0 {
            return None;
        }
        let target = step(self.event_index, len, command, page);
        self.event_index = target;
        if self.events_stale {
            return None;
        }
        let id = self.shown_events().get(target).map(|e| e.id);
        if self.select_event(id) {
            Some(Action::Refresh)
        } else {
            None
        }
    }

    fn next_page(&mut self) -> Option<Action> {
        let next = self.events_next?;
        self.page_stack.push(Some(next));
        self.event_index = 0;
        self.selected_event = None;
        Some(Action::Refresh)
    }

    /// True when the selection changed (the detail must be loaded).
    fn select_event(&mut self, id: Option<EventId>) -> bool {
        if self.selected_event == id {
            return false;
        }
        self.selected_event = id;
        self.attempt_index = 0;
        true
    }

    fn apply_filter(&mut self, text: String, filter: Filter) -> Option<Action> {
        self.filter_text = text;
        self.filter = filter;
        self.page_stack = vec![None];
        self.event_index = 0;
        self.selected_event = None;
        Some(Action::Refresh)
    }

    /// Filters pane 1; the selected destination stays selected if it is
    /// shown, else the nearest row shown is, and the events pane follows it.
    fn apply_destination_filter(&mut self, text: String, filter: DestFilter) -> Option<Action> {
        let selected = self.selected_destination().cloned();
        self.dest_list.filter_text = text;
        self.dest_list.filter = filter;
        self.recompute_destinations(selected)
            .then_some(Action::Refresh)
    }

    fn filter_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Mode::Filter {
            input,
            error,
            target,
        } = &mut self.mode
        else {
            return None;
        };
        let target = *target;
        let check = |input: &str| match target {
            FilterTarget::Events => Filter::parse(input).err(),
            FilterTarget::Destinations => DestFilter::parse(input).err(),
        };
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                None
            }
            KeyCode::Enter => {
                let text = input.trim().to_string();
                match target {
                    FilterTarget::Events => match Filter::parse(input) {
                        Ok(filter) => {
                            self.mode = Mode::Normal;
                            self.apply_filter(text, filter)
                        }
                        Err(message) => {
                            *error = Some(message);
                            None
                        }
                    },
                    FilterTarget::Destinations => match DestFilter::parse(input) {
                        Ok(filter) => {
                            self.mode = Mode::Normal;
                            self.apply_destination_filter(text, filter)
                        }
                        Err(message) => {
                            *error = Some(message);
                            None
                        }
                    },
                }
            }
            KeyCode::Backspace => {
                input.pop();
                *error = check(input);
                None
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                input.clear();
                *error = None;
                None
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                input.push(c);
                *error = check(input);
                None
            }
            _ => None,
        }
    }

    /// The event detail: scrolls by wrapped lines, never past its end; `y`
    /// copies the payload, `w` toggles wrapping.
    fn detail_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Mode::Detail { scroll, wrap } = self.mode else {
            return None;
        };
        let command = keymap::lookup_in(&key, keymap::Scope::Detail)?;
        match command {
            Command::Close => {
                self.mode = Mode::Normal;
                return None;
            }
            Command::CopyPayload => {
                let Some(detail) = self.selected_detail() else {
                    self.error_status("the detail is still loading");
                    return None;
                };
                let text = match (&detail.payload, &detail.payload_base64) {
                    (Some(text), _) => text.clone(),
                    (None, Some(b64)) => b64.clone(),
                    (None, None) => String::new(),
                };
                self.info_status(format!(
                    "payload copied ({} bytes) where the terminal allows OSC 52",
                    text.len()
                ));
                return Some(Action::CopyToClipboard(text));
            }
            Command::ToggleWrap => {
                self.mode = Mode::Detail {
                    scroll: 0,
                    wrap: !wrap,
                };
                return None;
            }
            _ => {}
        }
        let max = super::popups::detail::max_scroll(self, wrap);
        let page = super::popups::detail::inner_height(self.size).max(1);
        let scroll = match command {
            Command::HalfDown => scroll.saturating_add(page / 2),
            Command::HalfUp => scroll.saturating_sub(page / 2),
            Command::Down => scroll.saturating_add(1),
            Command::Up => scroll.saturating_sub(1),
            Command::PageDown => scroll.saturating_add(page),
            Command::PageUp => scroll.saturating_sub(page),
            Command::Top => 0,
            Command::Bottom => max,
            _ => scroll,
        };
        self.mode = Mode::Detail {
            scroll: scroll.min(max),
            wrap,
        };
        None
    }

    fn destination_screen_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Enter => {
                self.mode = Mode::Normal;
                None
            }
            _ => None,
        }
    }

    /// The notices popup: moves (paging past the last loaded notice reads
    /// the next page), toggles unacknowledged only, acknowledges (all of
    /// them after y), and Enter goes to the notice's destination or event.
    fn notices_key(&mut self, key: KeyEvent) -> Option<Action> {
        let read_only = self.info.read_only;
        let rows = super::popups::notices::rows(self.size).max(1) as isize;
        let Mode::Notices(list) = &mut self.mode else {
            return None;
        };
        if list.confirm_all {
            // [y/N]: only y acknowledges; Enter is the default, no.
            list.confirm_all = false;
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.info_status("acknowledging every notice…");
                    Some(Action::AckNotices(NoticeSelection::all()))
                }
                _ => {
                    self.info_status("nothing acknowledged");
                    None
                }
            };
        }
        let binding = keymap::binding_in(&key, keymap::Scope::Notices)?;
        if binding.mutates && read_only {
            self.error_status("read-only: acknowledging notices is off");
            return None;
        }
        match binding.command {
            Command::Close => {
                self.mode = Mode::Normal;
                None
            }
            Command::ToggleUnacked => {
                *list = NoticeList::new(!list.unacked_only);
                Some(Action::ReadNotices(list.first_page()))
            }
            Command::AckNotice => {
                let notice = list.selected()?;
                if notice.is_acked() {
                    self.info_status("already acknowledged");
                    return None;
                }
                Some(Action::AckNotice(notice.id))
            }
            Command::AckAllNotices => {
                if self.unacked_notices == 0 && list.unacked_loaded() == 0 {
                    self.info_status("no unacknowledged notices");
                    return None;
                }
                list.confirm_all = true;
                None
            }
            Command::Open => {
                let notice = list.selected()?.clone();
                self.jump_to_notice(&notice)
            }
            command @ (Command::Down
            | Command::Up
            | Command::PageDown
            | Command::PageUp
            | Command::Top
            | Command::Bottom) => {
                let len = list.notices.len();
                let at_end = len == 0 || list.index + 1 >= len;
                if at_end && matches!(command, Command::Down | Command::PageDown) {
                    let query = list.next_page()?;
                    list.reading = true;
                    return Some(Action::ReadNotices(query));
                }
                list.index = step(list.index, len, command, rows);
                None
            }
            _ => None,
        }
    }

    /// Enter on a notice: its destination selected in pane 1, or, when it
    /// names an event, that event's detail (read by id, so one that is not
    /// on the first page of events opens too).
    fn jump_to_notice(&mut self, notice: &Notice) -> Option<Action> {
        let Some(dest) = notice.destination.clone() else {
            self.error_status("this notice is about hookwatch itself, not a destination");
            return None;
        };
        if !self.destinations.iter().any(|d| d.id == dest) {
            self.error_status(format!("destination {dest} no longer exists"));
            return None;
        }
        let position = |app: &App| {
            app.dest_list
                .shown
                .iter()
                .position(|&i| app.destinations[i].id == dest)
        };
        if position(self).is_none() {
            // Hidden by pane 1's filter: the filter goes, so it can be selected.
            self.apply_destination_filter(String::new(), DestFilter::default());
        }
        let row = position(self)?;
        self.mode = Mode::Normal;
        self.dest_index = row + 1;
        self.scroll_destinations();
        self.reset_events();
        match notice.event {
            Some(event) => {
                self.focus = Pane::Events;
                self.selected_event = Some(event);
                self.off_page_event = Some(event);
                self.mode = Mode::Detail {
                    scroll: 0,
                    wrap: true,
                };
            }
            None => self.focus = Pane::Destinations,
        }
        Some(Action::Refresh)
    }

    fn scroll_key(&mut self, key: KeyEvent) -> Option<Action> {
        let page = self.size.1.saturating_sub(6).max(1);
        let closes = matches!(key.code, KeyCode::Esc | KeyCode::Char('q' | '?'));
        let Mode::Help { scroll } = &mut self.mode else {
            return None;
        };
        if closes {
            self.mode = Mode::Normal;
            return None;
        }
        let is_ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        *scroll = match key.code {
            KeyCode::Char('d') if is_ctrl => scroll.saturating_add(page / 2),
            KeyCode::Char('u') if is_ctrl => scroll.saturating_sub(page / 2),
            KeyCode::Char('j') | KeyCode::Down => scroll.saturating_add(1),
            KeyCode::Char('k') | KeyCode::Up => scroll.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => scroll.saturating_add(page),
            KeyCode::PageUp => scroll.saturating_sub(page),
            KeyCode::Char('g') | KeyCode::Home => 0,
            KeyCode::Char('G') | KeyCode::End => u16::MAX / 2,
            _ => *scroll,
        };
        None
    }

    fn confirm_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Mode::Confirm(confirm) = &self.mode else {
            return None;
        };
        if let Confirm::DeleteDestination { id, source, .. } = confirm {
            return self.delete_confirm_key(key, id.clone(), *source);
        }
        if let Confirm::Resend { ids, .. } = confirm {
            // [y/N]: only y sends the events again; Enter is the default, no.
            return match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    let ids = ids.clone();
                    self.mode = Mode::Normal;
                    self.marks.clear();
                    Some(Action::Resend(ids))
                }
                KeyCode::Char('n')
                | KeyCode::Char('N')
                | KeyCode::Esc
                | KeyCode::Char('q')
                | KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    self.info_status("not resent");
                    None
                }
                _ => None,
            };
        }
        match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => match confirm.clone() {
                Confirm::BulkRetry {
                    selection, count, ..
                } => match count {
                    None => {
                        self.info_status("still counting…");
                        None
                    }
                    Some(0) => {
                        self.mode = Mode::Normal;
                        self.info_status("nothing to retry");
                        None
                    }
                    Some(_) => {
                        self.mode = Mode::Bulk;
                        self.bulk = None;
                        self.marks.clear();
                        Some(Action::StartBulk(selection))
                    }
                },
                Confirm::Mute { ids } => {
                    self.mode = Mode::Normal;
                    self.marks.clear();
                    Some(Action::Mute(ids))
                }
                // Answered above.
                Confirm::DeleteDestination { .. } | Confirm::Resend { .. } => None,
            },
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                None
            }
            _ => None,
        }
    }

    /// `y` deletes (cancelling what it owes), `d` drains; a destination of the
    /// config file is removed by editing the file, so only backing out is offered.
    fn delete_confirm_key(
        &mut self,
        key: KeyEvent,
        id: String,
        source: DestinationSource,
    ) -> Option<Action> {
        let drain = match key.code {
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                return None;
            }
            _ if source == DestinationSource::File => return None,
            KeyCode::Char('y') | KeyCode::Char('Y') => false,
            KeyCode::Char('d') => true,
            _ => return None,
        };
        self.mode = Mode::Normal;
        self.info_status(format!(
            "{} {id}…",
            if drain { "draining" } else { "deleting" }
        ));
        Some(Action::DeleteDestination { id, drain })
    }

    fn destination_form_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Mode::NewDestination(form) = &mut self.mode else {
            return None;
        };
        if form.edit(key) {
            return None;
        }
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                None
            }
            KeyCode::Enter => {
                if form.saving {
                    return None;
                }
                // The daemon's last refusal does not block sending again;
                // what the form itself finds wrong does.
                form.validate();
                if let Some(error) = &form.error {
                    if let Some(field) = error.field {
                        form.focus = field;
                    }
                    return None;
                }
                match form.definition() {
                    Ok(definition) => {
                        form.saving = true;
                        Some(Action::CreateDestination(definition))
                    }
                    Err(error) => {
                        if let Some(field) = error.field {
                            form.focus = field;
                        }
                        form.error = Some(error);
                        None
                    }
                }
            }
            _ => None,
        }
    }

    /// The read the open jobs popup needs every tick (its counts move), if
    /// it is open.
    pub fn jobs_reread(&self) -> Option<Action> {
        matches!(self.mode, Mode::Jobs(_)).then_some(Action::ReadJobs)
    }

    /// The bulk jobs popup: moves, cancels the selected job if it runs,
    /// closes.
    fn jobs_key(&mut self, key: KeyEvent) -> Option<Action> {
        let read_only = self.info.read_only;
        let Mode::Jobs(list) = &mut self.mode else {
            return None;
        };
        let binding = keymap::binding_in(&key, keymap::Scope::Jobs)?;
        if binding.mutates && read_only {
            self.error_status("read-only: cancelling a bulk job is off");
            return None;
        }
        match binding.command {
            Command::Close => {
                self.mode = Mode::Normal;
                None
            }
            Command::Down => {
                list.step(1);
                None
            }
            Command::Up => {
                list.step(-1);
                None
            }
            Command::Top => {
                list.selected = 0;
                None
            }
            Command::Bottom => {
                list.step(isize::MAX);
                None
            }
            Command::CancelBulk => {
                let job = list.selected_job()?;
                if job.state != JobState::Running {
                    let words =
                        format!("job {} is {}: nothing to cancel", job.id, job.state_word());
                    self.info_status(words);
                    return None;
                }
                Some(Action::CancelBulk(job.id.clone()))
            }
            _ => None,
        }
    }

    fn bulk_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Char('x') => self
                .bulk_running()
                .map(|job| Action::CancelBulk(job.id.clone())),
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => {
                self.mode = Mode::Normal;
                None
            }
            _ => None,
        }
    }

    fn form_key(&mut self, key: KeyEvent) -> Option<Action> {
        let Mode::Form(form) = &mut self.mode else {
            return None;
        };
        if form.edit(key) {
            return None;
        }
        match key.code {
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                None
            }
            KeyCode::Enter => {
                if !form.changed() {
                    self.mode = Mode::Normal;
                    self.info_status("no changes");
                    return None;
                }
                match form.patch_spec() {
                    Ok(spec) => {
                        let id = form.destination.clone();
                        self.mode = Mode::Normal;
                        self.info_status(format!("saving the retry policy of {id}…"));
                        Some(Action::PatchDestination {
                            id,
                            patch: DestinationPatch {
                                retry: Some(Some(spec)),
                                ..DestinationPatch::default()
                            },
                        })
                    }
                    Err((index, _)) => {
                        form.focus = index;
                        None
                    }
                }
            }
            _ => None,
        }
    }
}

/// Moves `index` in a list of `len` by what `command` says.
fn step(index: usize, len: usize, command: Command, page: isize) -> usize {
    let last = len.saturating_sub(1) as isize;
    let delta = match command {
        Command::Down => 1,
        Command::Up => -1,
        Command::PageDown => page,
        Command::PageUp => -page,
        Command::HalfDown => (page / 2).max(1),
        Command::HalfUp => -(page / 2).max(1),
        Command::Top => return 0,
        Command::Bottom => return last as usize,
        _ => 0,
    };
    (index as isize + delta).clamp(0, last) as usize
}

/// How far a bulk job got, as the gauge and the footer say it: `running: 3 of
/// 32 done, …`, `cancelling: …` while the attempts running when it was
/// cancelled finish, then `cancelled after 28 of 32 events: …` (the daemon's
/// log says the same) or `completed: …`.
pub fn job_summary(job: &JobProgress) -> String {
    let mut results = format!("{} delivered, {} failed", job.succeeded, job.failed);
    if job.skipped > 0 {
        results.push_str(&format!(", {} skipped", job.skipped));
    }
    match (job.state, job.finished) {
        (JobState::Cancelled, true) => format!(
            "cancelled after {} of {} events: {results}",
            job.done, job.total
        ),
        (state, _) => {
            let state = match state {
                JobState::Running => "running",
                JobState::Cancelled => "cancelling",
                JobState::Completed => "completed",
            };
            format!("{state}: {} of {} done, {results}", job.done, job.total)
        }
    }
}

pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The question `u` asks before sending delivered events again.
pub fn resend_question(delivered: &[EventId]) -> String {
    match delivered {
        [one] => format!("resend delivered event {one}? [y/N]"),
        many => format!("resend {}? [y/N]", plural(many.len(), "delivered event")),
    }
}
