//! The one key table. Key handling looks commands up here, and both the footer
//! hints and the help screen are generated from it, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Which pane has the focus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pane {
    Destinations,
    Events,
    Attempts,
}

impl Pane {
    pub const ALL: [Pane; 3] = [Pane::Destinations, Pane::Events, Pane::Attempts];

    pub fn next(self) -> Pane {
        match self {
            Pane::Destinations => Pane::Events,
            Pane::Events => Pane::Attempts,
            Pane::Attempts => Pane::Destinations,
        }
    }

    pub fn prev(self) -> Pane {
        match self {
            Pane::Destinations => Pane::Attempts,
            Pane::Events => Pane::Destinations,
            Pane::Attempts => Pane::Events,
        }
    }
}

/// What a key does, before the app decides what that means in its current state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    NextPane,
    PrevPane,
    FocusDestinations,
    FocusEvents,
    FocusAttempts,
    Down,
    Up,
    PageDown,
    PageUp,
    HalfDown,
    HalfUp,
    Top,
    Bottom,
    Open,
    Filter,
    Mark,
    MarkAll,
    ClearMarks,
    Retry,
    BulkRetry,
    CancelBulk,
    Mute,
    Requeue,
    EditPolicy,
    TogglePause,
    Enable,
    Freeze,
    NewDestination,
    DeleteDestination,
    CycleSort,
    /// In the event detail: put the payload on the clipboard.
    CopyPayload,
    /// In the event detail: wrap long lines, or cut them at the edge.
    ToggleWrap,
    /// Close the popup or view.
    Close,
    /// Open the operational notices (`!`).
    Notices,
    /// In the notices: show only the unacknowledged ones, or all.
    ToggleUnacked,
    /// In the notices: acknowledge the selected one.
    AckNotice,
    /// In the notices: acknowledge every one, after a confirmation.
    AckAllNotices,
    /// Open the bulk jobs (`J`).
    Jobs,
}

/// Where a binding applies, and how it is grouped in the help screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Everywhere; a few of these are always in the footer.
    Global,
    /// Moving in the focused pane (or scrolling a popup).
    Navigation,
    /// The events and attempts panes: they act on the selected or marked events.
    Events,
    /// Acts on the selected destination; active everywhere, hinted in its pane.
    Destination,
    /// Only with the destinations pane focused: its list, and creating or
    /// deleting destinations (too consequential to reach from another pane).
    DestinationsPane,
    /// In the event detail popup (Enter on an event), not on the main screen.
    Detail,
    /// In the notices popup (`!`), not on the main screen.
    Notices,
    /// In the bulk jobs popup (`J`), not on the main screen.
    Jobs,
}

impl Scope {
    pub fn title(self) -> &'static str {
        match self {
            Scope::Global => "General",
            Scope::Navigation => "Moving",
            Scope::Events => "Events (panes 2 and 3)",
            Scope::Destination => "Destinations (selected destination)",
            Scope::DestinationsPane => "Destinations pane (1)",
            Scope::Detail => "Event detail (Enter on an event)",
            Scope::Notices => "Notices (! on the main screen)",
            Scope::Jobs => "Bulk jobs (J on the main screen)",
        }
    }

    pub fn active_in(self, pane: Pane) -> bool {
        match self {
            Scope::Events => matches!(pane, Pane::Events | Pane::Attempts),
            Scope::DestinationsPane => pane == Pane::Destinations,
            Scope::Detail | Scope::Notices | Scope::Jobs => false,
            _ => true,
        }
    }
}

/// A key: code plus the Ctrl/Alt modifiers (Shift is part of the character).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn k(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Key {
    pub fn matches(&self, event: &KeyEvent) -> bool {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl != self.ctrl {
            return false;
        }
        match (self.code, event.code) {
            // Terminals report A as Char('A') with or without SHIFT.
            (KeyCode::Char(a), KeyCode::Char(b)) => a == b,
            (a, b) => a == b,
        }
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    /// How the keys are written in the footer and the help screen.
    pub label: &'static str,
    pub command: Command,
    /// For the help screen.
    pub description: &'static str,
    /// For the footer; empty means "not in the footer".
    pub hint: &'static str,
    pub scope: Scope,
    /// Changes state: removed under `--read-only`.
    pub mutates: bool,
}

const fn b(
    keys: &'static [Key],
    label: &'static str,
    command: Command,
    description: &'static str,
    hint: &'static str,
    scope: Scope,
    mutates: bool,
) -> Binding {
    Binding {
        keys,
        label,
        command,
        description,
        hint,
        scope,
        mutates,
    }
}

use Command as C;
use Scope as S;

#[rustfmt::skip]
pub const KEYMAP: &[Binding] = &[
    b(&[k('q'), ctrl('c')], "q C-c", C::Quit, "quit", "quit", S::Global, false),
    b(&[k('?')], "?", C::Help, "this help", "help", S::Global, false),
    b(&[code(KeyCode::Tab)], "Tab", C::NextPane, "next pane", "pane", S::Global, false),
    b(&[code(KeyCode::BackTab)], "S-Tab", C::PrevPane, "previous pane", "", S::Global, false),
    b(&[k('1')], "1", C::FocusDestinations, "destinations pane", "", S::Global, false),
    b(&[k('2')], "2", C::FocusEvents, "events pane", "", S::Global, false),
    b(&[k('3')], "3", C::FocusAttempts, "attempts pane", "", S::Global, false),
    b(&[k('/')], "/", C::Filter, "filter the events, or the destinations in pane 1", "filter", S::Global, false),
    b(&[k('!')], "!", C::Notices, "operational notices: what happened, acknowledged or not", "", S::Global, false),
    b(&[k('Z')], "Z", C::Freeze, "freeze / resume live updates", "", S::Global, false),
    b(&[code(KeyCode::Esc)], "Esc", C::ClearMarks, "clear marks, then the filter (in pane 1, its filter)", "", S::Global, false),
    b(&[k('j'), code(KeyCode::Down)], "j ↓", C::Down, "down", "", S::Navigation, false),
    b(&[k('k'), code(KeyCode::Up)], "k ↑", C::Up, "up", "", S::Navigation, false),
    b(&[code(KeyCode::PageDown)], "PgDn", C::PageDown, "page down", "", S::Navigation, false),
    b(&[code(KeyCode::PageUp)], "PgUp", C::PageUp, "page up", "", S::Navigation, false),
    b(&[ctrl('d')], "C-d", C::HalfDown, "half a page down", "", S::Navigation, false),
    b(&[ctrl('u')], "C-u", C::HalfUp, "half a page up", "", S::Navigation, false),
    b(&[k('g'), code(KeyCode::Home)], "g Home", C::Top, "top (newest events)", "", S::Navigation, false),
    b(&[k('G'), code(KeyCode::End)], "G End", C::Bottom, "bottom (of the loaded page of events)", "", S::Navigation, false),
    b(&[code(KeyCode::Enter)], "Enter", C::Open, "details (request, payload, response)", "details", S::Events, false),
    b(&[k(' ')], "Space", C::Mark, "mark / unmark the event and move down", "mark", S::Events, false),
    b(&[k('a')], "a", C::MarkAll, "mark every event shown", "", S::Events, false),
    b(&[k('r')], "r", C::Retry, "retry now (selected, or the marked events)", "retry", S::Events, true),
    b(&[k('c')], "c", C::Mute, "cancel (mute) selected or marked", "mute", S::Events, true),
    b(&[k('u')], "u", C::Requeue, "requeue selected or marked (delivered ones: resend, after y)", "requeue", S::Events, true),
    b(&[k('R')], "R", C::BulkRetry, "bulk retry everything the filter shows", "bulk", S::Global, true),
    b(&[k('x')], "x", C::CancelBulk, "cancel the running bulk retry", "", S::Global, true),
    b(&[k('J')], "J", C::Jobs, "bulk jobs: running and the last 100 finished", "", S::Global, false),
    b(&[code(KeyCode::Enter)], "Enter", C::Open, "the destination's history: charts of the last hour and 24 h (on all: the events)", "history", S::Destination, false),
    b(&[k('e')], "e", C::EditPolicy, "edit the retry policy", "edit policy", S::Destination, true),
    b(&[k('p')], "p", C::TogglePause, "pause / resume", "pause", S::Destination, true),
    b(&[k('d')], "d", C::Enable, "enable a disabled destination", "enable", S::Destination, true),
    b(&[k('n')], "n", C::NewDestination, "new destination (a form of every key)", "new", S::DestinationsPane, true),
    b(&[k('D')], "D", C::DeleteDestination, "delete the destination (or drain it), after a confirmation", "delete", S::DestinationsPane, true),
    b(&[k('s')], "s", C::CycleSort, "sort by id, health, backlog, failure rate", "sort", S::DestinationsPane, false),
    b(&[k('j'), code(KeyCode::Down)], "j ↓", C::Down, "scroll down a line (long lines wrapped)", "", S::Detail, false),
    b(&[k('k'), code(KeyCode::Up)], "k ↑", C::Up, "scroll up a line", "", S::Detail, false),
    b(&[code(KeyCode::PageDown), k(' ')], "PgDn Space", C::PageDown, "scroll down a page", "", S::Detail, false),
    b(&[code(KeyCode::PageUp)], "PgUp", C::PageUp, "scroll up a page", "", S::Detail, false),
    b(&[ctrl('d')], "C-d", C::HalfDown, "scroll down half a page", "", S::Detail, false),
    b(&[ctrl('u')], "C-u", C::HalfUp, "scroll up half a page", "", S::Detail, false),
    b(&[k('g'), code(KeyCode::Home)], "g Home", C::Top, "top", "", S::Detail, false),
    b(&[k('G'), code(KeyCode::End)], "G End", C::Bottom, "bottom: the end of the response", "", S::Detail, false),
    b(&[k('y')], "y", C::CopyPayload, "copy the payload to the clipboard (OSC 52, where the terminal allows)", "", S::Detail, false),
    b(&[k('w')], "w", C::ToggleWrap, "wrap long lines / cut them at the edge", "", S::Detail, false),
    b(&[code(KeyCode::Esc), k('q'), code(KeyCode::Enter)], "Esc q Enter", C::Close, "close", "", S::Detail, false),
    b(&[k('j'), code(KeyCode::Down)], "j ↓", C::Down, "next (older) notice; past the last loaded, the next page", "", S::Notices, false),
    b(&[k('k'), code(KeyCode::Up)], "k ↑", C::Up, "previous (newer) notice", "", S::Notices, false),
    b(&[code(KeyCode::PageDown)], "PgDn", C::PageDown, "a page down", "", S::Notices, false),
    b(&[code(KeyCode::PageUp)], "PgUp", C::PageUp, "a page up", "", S::Notices, false),
    b(&[k('g'), code(KeyCode::Home)], "g Home", C::Top, "the newest", "", S::Notices, false),
    b(&[k('G'), code(KeyCode::End)], "G End", C::Bottom, "the oldest loaded", "", S::Notices, false),
    b(&[k('u')], "u", C::ToggleUnacked, "unacknowledged only / all", "", S::Notices, false),
    b(&[k('a')], "a", C::AckNotice, "acknowledge the selected notice", "", S::Notices, true),
    b(&[k('A')], "A", C::AckAllNotices, "acknowledge every notice, after y", "", S::Notices, true),
    b(&[code(KeyCode::Enter)], "Enter", C::Open, "go to its destination, or to its event's detail", "", S::Notices, false),
    b(&[code(KeyCode::Esc), k('q'), k('!')], "Esc q !", C::Close, "close", "", S::Notices, false),
    b(&[k('j'), code(KeyCode::Down)], "j ↓", C::Down, "next (older) job", "", S::Jobs, false),
    b(&[k('k'), code(KeyCode::Up)], "k ↑", C::Up, "previous (newer) job", "", S::Jobs, false),
    b(&[k('g'), code(KeyCode::Home)], "g Home", C::Top, "the newest", "", S::Jobs, false),
    b(&[k('G'), code(KeyCode::End)], "G End", C::Bottom, "the oldest", "", S::Jobs, false),
    b(&[k('x')], "x", C::CancelBulk, "cancel the selected job, if it runs", "", S::Jobs, true),
    b(&[code(KeyCode::Esc), k('q'), k('J')], "Esc q J", C::Close, "close", "", S::Jobs, false),
];

/// The command a key means in a popup whose keys are the table's `scope`.
pub fn lookup_in(event: &KeyEvent, scope: Scope) -> Option<Command> {
    binding_in(event, scope).map(|binding| binding.command)
}

/// The binding a key has in a popup whose keys are the table's `scope`
/// (whether it mutates is the caller's to honour under `--read-only`).
pub fn binding_in(event: &KeyEvent, scope: Scope) -> Option<&'static Binding> {
    KEYMAP
        .iter()
        .find(|binding| binding.scope == scope && binding.keys.iter().any(|key| key.matches(event)))
}

/// The command a key means in `pane`, honouring `--read-only`.
pub fn lookup(event: &KeyEvent, pane: Pane, read_only: bool) -> Option<&'static Binding> {
    KEYMAP.iter().find(|binding| {
        (!read_only || !binding.mutates)
            && binding.scope.active_in(pane)
            && binding.keys.iter().any(|key| key.matches(event))
    })
}

/// True when the key is bound to a state-changing action that `--read-only` removed.
pub fn is_removed_by_read_only(event: &KeyEvent, pane: Pane) -> bool {
    lookup(event, pane, false).is_some_and(|b| b.mutates)
}

/// The bindings the footer hints at for the focused pane, most specific first.
pub fn footer_bindings(pane: Pane, read_only: bool) -> Vec<&'static Binding> {
    let specific: &[Scope] = match pane {
        Pane::Destinations => &[Scope::Destination, Scope::DestinationsPane],
        Pane::Events | Pane::Attempts => &[Scope::Events],
    };
    let mut list: Vec<&'static Binding> = KEYMAP
        .iter()
        .filter(|b| specific.contains(&b.scope) && !b.hint.is_empty())
        .collect();
    // The global hints, most useful first.
    for command in [
        Command::Filter,
        Command::BulkRetry,
        Command::NextPane,
        Command::Quit,
        Command::Help,
    ] {
        list.extend(
            KEYMAP
                .iter()
                .filter(|b| b.command == command && b.scope == Scope::Global && !b.hint.is_empty()),
        );
    }
    list.retain(|b| !read_only || !b.mutates);
    list
}

/// The bindings the help screen lists, grouped by scope, in table order.
pub fn help_sections(read_only: bool) -> Vec<(Scope, Vec<&'static Binding>)> {
    [
        Scope::Global,
        Scope::Navigation,
        Scope::Events,
        Scope::Destination,
        Scope::DestinationsPane,
        Scope::Detail,
        Scope::Notices,
        Scope::Jobs,
    ]
    .into_iter()
    .map(|scope| {
        (
            scope,
            KEYMAP
                .iter()
                .filter(|b| b.scope == scope && (!read_only || !b.mutates))
                .collect(),
        )
    })
    .collect()
}

/// The first key of a binding, for short labels: `r`, `Tab`.
pub fn first_label(binding: &Binding) -> &'static str {
    binding.label.split(' ').next().unwrap_or(binding.label)
}

/// The README's key table: every binding, generated from [`KEYMAP`] so the
/// two cannot drift (a test compares them; `HOOKWATCH_BLESS_README=1`
/// rewrites the README's copy).
pub fn markdown_table() -> String {
    let mut out = String::from("| keys | where | action |\n|---|---|---|\n");
    for binding in KEYMAP {
        let keys: Vec<String> = binding
            .label
            .split(' ')
            .map(|key| format!("`{key}`"))
            .collect();
        let mut action = binding.description.replace('|', "\\|");
        if binding.mutates {
            action.push_str(" (off under `--read-only`)");
        }
        out.push_str(&format!(
            "| {} | {} | {action} |\n",
            keys.join(" "),
            binding.scope.title()
        ));
    }
    out
}
