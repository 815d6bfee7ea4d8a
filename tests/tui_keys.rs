//! The TUI's state machine: every key, from fixture state, without an engine.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hookwatch::engine::stats::StatsWindow;
use hookwatch::engine::{EventPage, JobProgress, JobState};
use hookwatch::model::EventState;
use hookwatch::tui::app::{Action, ActionResult, App, Confirm, Mode};
use hookwatch::tui::fixture;
use hookwatch::tui::form::PolicyForm;
use hookwatch::tui::keymap::{self, Command, Pane, KEYMAP};

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn press(app: &mut App, keys: &[KeyEvent]) -> Vec<Action> {
    keys.iter().filter_map(|k| app.handle_key(*k)).collect()
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        assert!(app.handle_key(ch(c)).is_none());
    }
}

fn app() -> App {
    let mut app = fixture::app();
    app.size = (80, 24);
    app
}

fn selected_index(app: &App) -> usize {
    let id = app.selected_event.unwrap();
    fixture::events().iter().position(|e| e.id == id).unwrap()
}

#[test]
fn panes_switch_with_tab_shift_tab_and_numbers() {
    let mut app = app();
    assert_eq!(app.focus, Pane::Events);
    press(&mut app, &[key(KeyCode::Tab)]);
    assert_eq!(app.focus, Pane::Attempts);
    press(&mut app, &[key(KeyCode::Tab)]);
    assert_eq!(app.focus, Pane::Destinations);
    press(
        &mut app,
        &[KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)],
    );
    assert_eq!(app.focus, Pane::Attempts);
    press(&mut app, &[ch('1')]);
    assert_eq!(app.focus, Pane::Destinations);
    press(&mut app, &[ch('2')]);
    assert_eq!(app.focus, Pane::Events);
    press(&mut app, &[ch('3')]);
    assert_eq!(app.focus, Pane::Attempts);
}

#[test]
fn vim_keys_and_arrows_move_the_event_selection() {
    let mut app = app();
    assert_eq!(selected_index(&app), 0);
    assert!(matches!(app.handle_key(ch('j')), Some(Action::Refresh)));
    assert_eq!(selected_index(&app), 1);
    press(&mut app, &[key(KeyCode::Down)]);
    assert_eq!(selected_index(&app), 2);
    press(&mut app, &[ch('k'), key(KeyCode::Up)]);
    assert_eq!(selected_index(&app), 0);
    let page = app.page_size();
    assert!(page >= 2, "80x24 shows a few rows, got {page}");
    press(&mut app, &[key(KeyCode::PageDown)]);
    assert_eq!(selected_index(&app), page);
    press(&mut app, &[key(KeyCode::PageUp)]);
    assert_eq!(selected_index(&app), 0);
    press(&mut app, &[ctrl('d')]);
    assert_eq!(selected_index(&app), (page / 2).max(1));
    press(&mut app, &[ctrl('u')]);
    assert_eq!(selected_index(&app), 0);
    press(&mut app, &[ch('G')]);
    assert_eq!(selected_index(&app), fixture::events().len() - 1);
    press(&mut app, &[ch('g')]);
    assert_eq!(selected_index(&app), 0);
    // Up at the top of the first page stays there.
    assert!(app.handle_key(ch('k')).is_none());
    assert_eq!(selected_index(&app), 0);
}

#[test]
fn paging_past_the_end_loads_the_next_page_by_cursor() {
    let mut app = app();
    let events = fixture::events();
    let (first, second) = events.split_at(6);
    let cursor = first.last().unwrap().id;
    app.set_events(EventPage {
        events: first.to_vec(),
        next: Some(cursor.to_string()),
    });
    press(&mut app, &[ch('G')]);
    assert!(matches!(app.handle_key(ch('j')), Some(Action::Refresh)));
    assert_eq!(app.page_stack, vec![None, Some(cursor)]);
    assert_eq!(app.events_query().1, Some(cursor));
    app.set_events(EventPage {
        events: second.to_vec(),
        next: None,
    });
    assert_eq!(app.selected_event, Some(second[0].id));
    // At the end of the last page, j does nothing more.
    press(&mut app, &[ch('G')]);
    assert!(app.handle_key(ch('j')).is_none());
    // Back up across the page boundary lands on the previous page's last row.
    press(&mut app, &[ch('g')]);
    assert!(matches!(app.handle_key(ch('g')), Some(Action::Refresh)));
    assert_eq!(app.page_stack, vec![None]);
    app.set_events(EventPage {
        events: first.to_vec(),
        next: Some(cursor.to_string()),
    });
    press(&mut app, &[ch('G'), ch('j')]);
    app.set_events(EventPage {
        events: second.to_vec(),
        next: None,
    });
    assert!(matches!(app.handle_key(ch('k')), Some(Action::Refresh)));
    assert_eq!(app.page_stack, vec![None]);
    app.set_events(EventPage {
        events: first.to_vec(),
        next: Some(cursor.to_string()),
    });
    assert_eq!(app.selected_event, Some(first[5].id));
}

#[test]
fn moving_in_destinations_scopes_the_events() {
    let mut app = app();
    press(&mut app, &[ch('1')]);
    assert_eq!(app.selected_destination_id(), None);
    // Sorted by id: analytics, billing, crm, shop.
    assert!(matches!(app.handle_key(ch('j')), Some(Action::Refresh)));
    assert_eq!(app.selected_destination_id(), Some("analytics"));
    assert_eq!(
        app.events_query().0.destination.as_deref(),
        Some("analytics")
    );
    press(&mut app, &[ch('G')]);
    assert_eq!(app.selected_destination_id(), Some("shop"));
    press(&mut app, &[ch('g')]);
    assert_eq!(app.selected_destination_id(), None);
    // Enter on the `all` row goes to the events.
    press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(app.focus, Pane::Events);
}

/// Keys typed faster than the events page loads: `1 k 2 g` must end on the
/// top row of the new list, not on the row of the old list `g` would have
/// picked (which the new page then kept selected by its id).
#[test]
fn g_pressed_before_the_new_destinations_page_arrives_selects_its_top_row() {
    let mut app = app();
    let events = fixture::events();
    // One destination's page: the older half of the events.
    press(&mut app, &[ch('1'), ch('j'), ch('2')]);
    app.set_events(EventPage {
        events: events[3..].to_vec(),
        next: None,
    });
    press(&mut app, &[ch('j')]);
    assert_eq!(app.selected_event, Some(events[4].id));
    // Back to `all`; its page has not arrived when `g` is pressed.
    press(&mut app, &[ch('1'), ch('k'), ch('2'), ch('g')]);
    app.set_events(EventPage {
        events: events.clone(),
        next: None,
    });
    assert_eq!(app.selected_event, Some(events[0].id));
}

#[test]
fn enter_on_a_destination_opens_its_view_and_reads_its_statistics() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('j'), ch('j')]);
    assert_eq!(app.selected_destination_id(), Some("billing"));
    let actions = press(&mut app, &[key(KeyCode::Enter)]);
    assert!(
        matches!(&actions[..], [Action::ReadDestinationStats(id)] if id == "billing"),
        "{actions:?}"
    );
    assert_eq!(app.destination_screen_id(), Some("billing"));
    // Statistics of another destination (a stale answer) are not taken.
    app.apply_result(ActionResult::DestinationStats {
        hour: Box::new(fixture::stats("shop", StatsWindow::Hour)),
        day: Box::new(fixture::stats("shop", StatsWindow::Day)),
    });
    let Mode::Destination(screen) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert!(screen.hour.is_none());
    app.apply_result(ActionResult::DestinationStats {
        hour: Box::new(fixture::stats("billing", StatsWindow::Hour)),
        day: Box::new(fixture::stats("billing", StatsWindow::Day)),
    });
    let Mode::Destination(screen) = &app.mode else {
        panic!("{:?}", app.mode)
    };
    assert_eq!(screen.day.as_ref().unwrap().destination, "billing");
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(app.focus, Pane::Destinations);
}

#[test]
fn enter_opens_a_scrollable_detail_and_esc_closes_it() {
    let mut app = app();
    press(&mut app, &[key(KeyCode::Enter)]);
    assert!(matches!(app.mode, Mode::Detail { scroll: 0, .. }));
    press(&mut app, &[ch('j'), ch('j'), key(KeyCode::PageDown)]);
    let Mode::Detail { scroll, .. } = app.mode else {
        panic!()
    };
    assert!(scroll > 2);
    press(&mut app, &[ch('g')]);
    assert!(matches!(app.mode, Mode::Detail { scroll: 0, .. }));
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
    // From the attempts pane too; j there moves the attempt.
    press(&mut app, &[ch('3'), ch('j')]);
    assert_eq!(app.attempt_index, 1);
    press(&mut app, &[key(KeyCode::Enter)]);
    assert!(matches!(app.mode, Mode::Detail { .. }));
    press(&mut app, &[ch('q')]);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(!app.quit, "q in a popup closes the popup");
}

#[test]
fn filter_prompt_applies_engine_and_client_terms() {
    let mut app = app();
    press(&mut app, &[ch('/')]);
    assert!(matches!(app.mode, Mode::Filter { .. }));
    type_text(&mut app, "state:sent");
    let Mode::Filter { error, .. } = &app.mode else {
        panic!()
    };
    assert!(error.as_ref().unwrap().contains("sent"));
    // Enter on a bad filter keeps the prompt open.
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert!(matches!(app.mode, Mode::Filter { .. }));
    press(&mut app, &[ctrl('u')]);
    type_text(&mut app, "state:retrying topic:order.* status:5xx");
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Refresh)
    ));
    assert!(matches!(app.mode, Mode::Normal));
    let (filter, after) = app.events_query();
    assert_eq!(filter.state, Some(EventState::Retrying));
    assert_eq!(filter.topic.as_deref(), Some("order.*"));
    assert_eq!(after, None);
    // status:5xx filters the loaded window client-side.
    let shown: Vec<_> = app.shown_events().iter().map(|e| e.last_status).collect();
    assert!(shown
        .iter()
        .all(|s| s.is_some_and(|s| (500..600).contains(&s))));
    assert!(!shown.is_empty());
    // Esc in the prompt backs out without changing the filter.
    press(&mut app, &[ch('/'), ch('x'), key(KeyCode::Esc)]);
    assert_eq!(app.filter_text, "state:retrying topic:order.* status:5xx");
}

#[test]
fn marks_and_esc_clears_marks_then_filter() {
    let mut app = app();
    let events = fixture::events();
    press(&mut app, &[ch(' ')]);
    assert!(app.marks.contains(&events[0].id));
    assert_eq!(selected_index(&app), 1, "space moves down");
    press(&mut app, &[ch(' ')]);
    assert_eq!(app.marks.len(), 2);
    press(&mut app, &[ch('k'), ch(' ')]);
    assert_eq!(app.marks.len(), 1, "space again unmarks");
    press(&mut app, &[ch('a')]);
    assert_eq!(app.marks.len(), events.len());
    app.filter_text = "state:failed".into();
    app.filter = hookwatch::tui::filter::Filter::parse("state:failed").unwrap();
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(app.marks.is_empty());
    assert_eq!(app.filter_text, "state:failed");
    assert!(matches!(
        app.handle_key(key(KeyCode::Esc)),
        Some(Action::Refresh)
    ));
    assert!(app.filter_text.is_empty());
    assert!(app.filter.is_empty());
}

#[test]
fn r_retries_selected_or_marked_now() {
    let mut app = app();
    let events = fixture::events();
    let Some(Action::RetryNow(ids)) = app.handle_key(ch('r')) else {
        panic!("r retries")
    };
    assert_eq!(ids, vec![events[0].id]);
    press(&mut app, &[ch(' '), ch(' ')]);
    let Some(Action::RetryNow(ids)) = app.handle_key(ch('r')) else {
        panic!("r retries the marked")
    };
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&events[0].id) && ids.contains(&events[1].id));
    assert!(app.marks.is_empty(), "marks are used up");
}

#[test]
fn c_mutes_one_at_once_and_several_after_confirmation() {
    let mut app = app();
    let events = fixture::events();
    let Some(Action::Mute(ids)) = app.handle_key(ch('c')) else {
        panic!("c mutes")
    };
    assert_eq!(ids, vec![events[0].id]);
    press(&mut app, &[ch(' '), ch(' ')]);
    assert!(app.handle_key(ch('c')).is_none());
    assert!(matches!(app.mode, Mode::Confirm(Confirm::Mute { ref ids }) if ids.len() == 2));
    // n backs out, marks kept.
    press(&mut app, &[ch('n')]);
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(app.marks.len(), 2);
    press(&mut app, &[ch('c'), key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, &[ch('c')]);
    let Some(Action::Mute(ids)) = app.handle_key(ch('y')) else {
        panic!("y confirms")
    };
    assert_eq!(ids.len(), 2);
    assert!(app.marks.is_empty());
    press(&mut app, &[ch(' '), ch(' '), ch('c')]);
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Mute(_))
    ));
}

#[test]
fn u_requeues() {
    let mut app = app();
    let Some(Action::Requeue(ids)) = app.handle_key(ch('u')) else {
        panic!("u requeues")
    };
    assert_eq!(ids, vec![fixture::events()[0].id]);
}

#[test]
fn u_on_a_delivered_event_resends_only_after_y() {
    use hookwatch::tui::app::StatusLine;
    let mut app = app();
    let events = fixture::events();
    let delivered = events[1].id;
    assert_eq!(events[1].state, hookwatch::model::EventState::Delivered);
    let question = format!("resend delivered event {delivered}? [y/N]");

    // j selects the delivered event; u asks instead of requeueing.
    press(&mut app, &[ch('j')]);
    assert_eq!(app.selected_event, Some(delivered));
    assert!(press(&mut app, &[ch('u')]).is_empty());
    assert!(matches!(
        app.mode,
        Mode::Confirm(Confirm::Resend { ref delivered, .. }) if delivered.len() == 1
    ));
    assert_eq!(
        app.status_line(),
        Some(StatusLine::Prompt(question.clone()))
    );
    // A result arriving meanwhile does not hide the question.
    app.apply_result(ActionResult::Info("requeued 1 event".into()));
    assert_eq!(
        app.status_line(),
        Some(StatusLine::Prompt(question.clone()))
    );
    // Other keys are not an answer.
    assert!(press(&mut app, &[ch('j'), ch('u')]).is_empty());
    assert!(matches!(app.mode, Mode::Confirm(Confirm::Resend { .. })));

    // [y/N]: Enter is no, and so are n and Esc.
    for no in [key(KeyCode::Enter), ch('n'), key(KeyCode::Esc)] {
        if !matches!(app.mode, Mode::Confirm(_)) {
            assert!(press(&mut app, &[ch('u')]).is_empty());
        }
        assert!(press(&mut app, &[no]).is_empty(), "{no:?} sent something");
        assert!(matches!(app.mode, Mode::Normal));
    }
    // y resends.
    press(&mut app, &[ch('u')]);
    let Some(Action::Resend(ids)) = app.handle_key(ch('y')) else {
        panic!("y resends")
    };
    assert_eq!(ids, vec![delivered]);
    assert!(matches!(app.mode, Mode::Normal));

    // Marked events with a delivered one among them: one question for all.
    press(&mut app, &[ch('k'), ch(' '), ch(' ')]);
    assert!(press(&mut app, &[ch('u')]).is_empty());
    let Mode::Confirm(Confirm::Resend {
        ids,
        delivered: asked,
    }) = &app.mode
    else {
        panic!("{:?}", app.mode)
    };
    assert_eq!((ids.len(), asked.clone()), (2, vec![delivered]));
    let Some(Action::Resend(ids)) = app.handle_key(ch('Y')) else {
        panic!("Y resends")
    };
    assert_eq!(ids.len(), 2);
    assert!(app.marks.is_empty());
}

#[test]
fn a_refused_action_shows_the_refusal_on_the_status_line() {
    use hookwatch::tui::app::StatusLine;
    let mut app = app();
    let refusal = "event 01J00000000000000000000000 is delivered: only pending or retrying events can be muted";
    app.apply_result(ActionResult::Error(refusal.into()));
    let Some(StatusLine::Message(status)) = app.status_line() else {
        panic!("{:?}", app.status_line())
    };
    assert!(status.error);
    assert_eq!(status.text, refusal);
}

#[test]
fn bulk_retry_confirms_with_the_count_shows_progress_and_cancels() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('j'), ch('j')]); // billing
    app.filter = hookwatch::tui::filter::Filter::parse("state:failed").unwrap();
    app.filter_text = "state:failed".into();
    let Some(Action::CountBulk(selection)) = app.handle_key(ch('R')) else {
        panic!("R counts first")
    };
    assert_eq!(selection.destination.as_deref(), Some("billing"));
    assert_eq!(selection.state, Some(EventState::Failed));
    assert!(selection.ids.is_none());
    // Not confirmable before the count is known.
    assert!(app.handle_key(ch('y')).is_none());
    assert!(matches!(
        app.mode,
        Mode::Confirm(Confirm::BulkRetry { count: None, .. })
    ));
    app.apply_result(ActionResult::Counted(4));
    let Mode::Confirm(Confirm::BulkRetry { count, scope, .. }) = &app.mode else {
        panic!()
    };
    assert_eq!(*count, Some(4));
    assert!(scope.contains("billing") && scope.contains("state:failed"));
    let Some(Action::StartBulk(started)) = app.handle_key(ch('y')) else {
        panic!("y starts the job")
    };
    assert_eq!(started.state, Some(EventState::Failed));
    assert!(matches!(app.mode, Mode::Bulk));
    let mut progress = JobProgress {
        id: "job-1".into(),
        total: 4,
        done: 0,
        succeeded: 0,
        failed: 0,
        state: JobState::Running,
        finished: false,
        ..Default::default()
    };
    app.apply_result(ActionResult::BulkStarted(progress.clone()));
    progress.done = 2;
    app.set_bulk_progress(progress.clone());
    assert_eq!(app.bulk.as_ref().unwrap().done, 2);
    let Some(Action::CancelBulk(id)) = app.handle_key(ch('x')) else {
        panic!("x cancels")
    };
    assert_eq!(id, "job-1");
    // Esc hides the gauge; the job keeps running and x still cancels it.
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(matches!(
        app.handle_key(ch('x')),
        Some(Action::CancelBulk(_))
    ));
    progress.state = JobState::Cancelled;
    app.apply_result(ActionResult::BulkProgress(progress));
    assert!(app.handle_key(ch('x')).is_none());
}

#[test]
fn a_cancelled_bulk_retry_is_followed_until_its_attempts_finish() {
    let mut app = app();
    app.mode = Mode::Bulk;
    let mut progress = JobProgress {
        id: "job-1".into(),
        total: 32,
        done: 20,
        succeeded: 0,
        failed: 20,
        state: JobState::Running,
        finished: false,
        ..Default::default()
    };
    app.apply_result(ActionResult::BulkStarted(progress.clone()));
    assert!(matches!(
        app.handle_key(ch('x')),
        Some(Action::CancelBulk(_))
    ));
    // The cancel's answer: cancelled, with attempts still running.
    progress.state = JobState::Cancelled;
    progress.done = 24;
    progress.failed = 24;
    app.apply_result(ActionResult::BulkProgress(progress.clone()));
    assert!(app.bulk_running().is_none(), "x no longer cancels");
    assert!(app.handle_key(ch('x')).is_none());
    // The tick still reads the job's progress, and the gauge takes it.
    assert_eq!(app.bulk_following().map(|j| j.id.as_str()), Some("job-1"));
    assert_eq!(
        hookwatch::tui::app::job_summary(app.bulk.as_ref().unwrap()),
        "cancelling: 24 of 32 done, 0 delivered, 24 failed"
    );
    progress.done = 27;
    progress.failed = 27;
    app.set_bulk_progress(progress.clone());
    assert_eq!(app.bulk.as_ref().unwrap().done, 27);
    // The attempts running when it was cancelled have finished and count.
    progress.done = 28;
    progress.succeeded = 1;
    progress.finished = true;
    app.set_bulk_progress(progress.clone());
    assert!(app.bulk_following().is_none(), "nothing more to read");
    let summary = "cancelled after 28 of 32 events: 1 delivered, 27 failed";
    assert_eq!(
        hookwatch::tui::app::job_summary(app.bulk.as_ref().unwrap()),
        summary
    );
    assert_eq!(
        app.visible_status().unwrap().text,
        format!("bulk retry {summary}")
    );
    // A read answered before the job finished but arriving after is not taken.
    let mut late = progress.clone();
    late.done = 26;
    late.finished = false;
    app.set_bulk_progress(late);
    assert_eq!(app.bulk.as_ref().unwrap(), &progress);
}

#[test]
fn bulk_retry_backs_out_and_handles_nothing_to_do() {
    let mut app = app();
    assert!(matches!(
        app.handle_key(ch('R')),
        Some(Action::CountBulk(_))
    ));
    press(&mut app, &[ch('n')]);
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, &[ch('R')]);
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, &[ch('R')]);
    app.apply_result(ActionResult::Counted(0));
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn bulk_retry_with_client_side_terms_retries_the_rows_shown() {
    let mut app = app();
    press(&mut app, &[ch('/')]);
    type_text(&mut app, "status:5xx");
    press(&mut app, &[key(KeyCode::Enter)]);
    let shown: Vec<_> = app.shown_events().iter().map(|e| e.id).collect();
    assert!(app.handle_key(ch('R')).is_none(), "no count needed");
    let Some(Action::StartBulk(selection)) = app.handle_key(ch('y')) else {
        panic!("count is known")
    };
    assert_eq!(selection.ids, Some(shown));
}

#[test]
fn policy_form_validates_at_the_field_and_saves_the_changed_keys() {
    let mut app = app();
    // On the `all` row there is no destination to edit.
    assert!(app.handle_key(ch('e')).is_none());
    assert!(matches!(app.mode, Mode::Normal));
    assert!(app.status.as_ref().unwrap().error);
    press(&mut app, &[ch('1'), ch('G'), ch('e')]);
    let Mode::Form(form) = &app.mode else {
        panic!("e opens the form")
    };
    assert_eq!(form.destination, "shop");
    assert!(form.error.is_none());
    let max_retries = PolicyForm::field_index("max_retries").unwrap();
    let delay = PolicyForm::field_index("delay").unwrap();
    // To max_retries, type a bad value.
    while !matches!(&app.mode, Mode::Form(f) if f.focus == max_retries) {
        press(&mut app, &[key(KeyCode::Tab)]);
    }
    press(&mut app, &[ctrl('u')]);
    type_text(&mut app, "0");
    let Mode::Form(form) = &app.mode else {
        panic!()
    };
    assert_eq!(form.error.as_ref().map(|e| e.0), Some(max_retries));
    // Enter does not save an invalid form.
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert!(matches!(app.mode, Mode::Form(_)));
    // Not a number at all.
    type_text(&mut app, "x");
    let Mode::Form(form) = &app.mode else {
        panic!()
    };
    assert_eq!(form.error.as_ref().map(|e| e.0), Some(max_retries));
    // Fixed: the error goes.
    press(
        &mut app,
        &[key(KeyCode::Backspace), key(KeyCode::Backspace)],
    );
    type_text(&mut app, "7");
    let Mode::Form(form) = &app.mode else {
        panic!()
    };
    assert!(form.error.is_none(), "{:?}", form.error);
    // A bad duration is reported at delay, then fixed.
    press(&mut app, &[key(KeyCode::Up)]);
    press(&mut app, &[ctrl('u')]);
    type_text(&mut app, "3x");
    let Mode::Form(form) = &app.mode else {
        panic!()
    };
    assert_eq!(form.error.as_ref().map(|e| e.0), Some(delay));
    press(&mut app, &[key(KeyCode::Backspace)]);
    type_text(&mut app, "m");
    let Mode::Form(form) = &app.mode else {
        panic!()
    };
    assert!(form.error.is_none(), "{:?}", form.error);
    let Some(Action::PatchDestination { id, patch }) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter saves")
    };
    assert_eq!(id, "shop");
    let retry = serde_json::to_value(patch.retry.unwrap()).unwrap();
    assert_eq!(retry, serde_json::json!({"delay": "3m", "max_retries": 7}));
    assert!(patch.paused.is_none() && patch.enabled.is_none());
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn policy_form_esc_cancels_and_unchanged_saves_nothing() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('j'), ch('e'), key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, &[ch('e')]);
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn p_pauses_and_resumes_d_enables() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('G')]); // shop, healthy
    let Some(Action::PatchDestination { id, patch }) = app.handle_key(ch('p')) else {
        panic!()
    };
    assert_eq!((id.as_str(), patch.paused), ("shop", Some(true)));
    press(&mut app, &[ch('g'), ch('j')]); // analytics, paused
    let Some(Action::PatchDestination { patch, .. }) = app.handle_key(ch('p')) else {
        panic!()
    };
    assert_eq!(patch.paused, Some(false));
    // d on an enabled destination does nothing.
    press(&mut app, &[ch('j')]); // billing
    assert!(app.handle_key(ch('d')).is_none());
    press(&mut app, &[ch('j')]); // crm, disabled
    let Some(Action::PatchDestination { id, patch }) = app.handle_key(ch('d')) else {
        panic!()
    };
    assert_eq!((id.as_str(), patch.enabled), ("crm", Some(true)));
    assert!(patch.retry.is_none());
}

#[test]
fn z_freezes_question_mark_helps_q_quits() {
    let mut app = app();
    assert!(app.handle_key(ch('Z')).is_none());
    assert!(app.frozen);
    assert!(matches!(app.handle_key(ch('Z')), Some(Action::Refresh)));
    assert!(!app.frozen);
    press(&mut app, &[ch('?')]);
    assert!(matches!(app.mode, Mode::Help { scroll: 0 }));
    press(&mut app, &[ch('j')]);
    assert!(matches!(app.mode, Mode::Help { scroll: 1 }));
    press(&mut app, &[ch('?')]);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(matches!(app.handle_key(ch('q')), Some(Action::Quit)));
    let mut app2 = fixture::app();
    press(&mut app2, &[ch('/')]);
    assert!(matches!(app2.handle_key(ctrl('c')), Some(Action::Quit)));
}

#[test]
fn read_only_removes_every_state_changing_action() {
    let mut app = fixture::app();
    app.info.read_only = true;
    for c in ['r', 'R', 'c', 'u', 'x'] {
        assert!(app.handle_key(ch(c)).is_none(), "{c}");
        assert!(matches!(app.mode, Mode::Normal), "{c}");
    }
    press(&mut app, &[ch('1'), ch('j')]);
    for c in ['e', 'p', 'd', 'n', 'D'] {
        assert!(app.handle_key(ch(c)).is_none(), "{c}");
        assert!(matches!(app.mode, Mode::Normal), "{c}");
    }
    assert!(app.status.as_ref().unwrap().text.contains("read-only"));
    // Reading still works.
    app.set_events(EventPage {
        events: fixture::events(),
        next: None,
    });
    press(&mut app, &[ch('2'), key(KeyCode::Enter)]);
    assert!(matches!(app.mode, Mode::Detail { .. }));
    for pane in Pane::ALL {
        assert!(keymap::footer_bindings(pane, true)
            .iter()
            .all(|b| !b.mutates));
    }
    assert!(keymap::help_sections(true)
        .iter()
        .flat_map(|(_, b)| b)
        .all(|b| !b.mutates));
}

#[test]
fn the_key_table_is_the_one_source_for_hints_and_help() {
    let help: Vec<Command> = keymap::help_sections(false)
        .into_iter()
        .flat_map(|(_, b)| b.into_iter().map(|b| b.command))
        .collect();
    for binding in KEYMAP {
        assert!(help.contains(&binding.command));
        assert!(!binding.description.is_empty());
    }
    let footer: Vec<Command> = keymap::footer_bindings(Pane::Events, false)
        .iter()
        .map(|b| b.command)
        .collect();
    assert!(footer.contains(&Command::Retry));
    assert!(footer.contains(&Command::Help));
    let footer: Vec<Command> = keymap::footer_bindings(Pane::Destinations, false)
        .iter()
        .map(|b| b.command)
        .collect();
    assert!(footer.contains(&Command::EditPolicy));
    assert!(footer.contains(&Command::NewDestination));
    assert!(footer.contains(&Command::CycleSort));
    assert!(!footer.contains(&Command::Retry));
    // Creating, deleting and sorting are keys of pane 1 only.
    for pane in [Pane::Events, Pane::Attempts] {
        for c in ['n', 'D', 's'] {
            assert!(keymap::lookup(&ch(c), pane, false).is_none(), "{c}");
        }
    }
}

#[test]
fn the_sparklines_read_the_engines_statistics_not_notifications() {
    let mut app = App::new(fixture::info(false), fixture::now());
    app.set_destinations(fixture::destinations());
    let change = hookwatch::engine::Change::Event {
        id: fixture::event_id(0, 1),
        destination: "shop".into(),
        state: EventState::Delivered,
    };
    assert!(app.on_change(&change), "a change asks for a read");
    assert!(app.stats.by_destination.is_empty());
    // Few destinations: every one is read, so the `all` row can sum them.
    let mut targets = app.stats_targets();
    targets.sort();
    assert_eq!(targets, ["analytics", "billing", "crm", "shop"]);
    app.set_list_stats(vec![fixture::stats("shop", StatsWindow::Hour)]);
    assert_eq!(app.stats.by_destination["shop"].minutes.len(), 60);
    // A platform's destinations: only the rows in view are read.
    let platform = platform(10_000);
    let targets = platform.stats_targets();
    assert!(!targets.is_empty() && targets.len() <= platform.dest_page_size());
}

#[test]
fn a_destination_created_meanwhile_leaves_the_all_rows_rate_known() {
    use hookwatch::tui::history::success_rate_text;
    fn all_rate(app: &App) -> String {
        let ids = app.destinations.iter().map(|d| d.id.as_str());
        success_rate_text(app.stats.minutes(None, ids).as_deref(), app.now)
    }
    let mut app = fixture::app();
    let before = all_rate(&app);
    assert!(before.ends_with('%'), "{before}");
    let mut list = fixture::destinations();
    let mut fresh = list[0].clone();
    fresh.id = "fresh".into();
    list.push(fresh);
    app.set_destinations(list);
    // Not read yet, and nothing to read: it was just created.
    assert_eq!(all_rate(&app), before);
    assert!(app.stats.by_destination["fresh"].minutes.is_empty());

    // Before the first read nothing is known, a new destination or not.
    let mut unread = App::new(fixture::info(false), fixture::now());
    unread.set_destinations(fixture::destinations());
    unread.set_destinations(app.destinations.clone());
    assert_eq!(all_rate(&unread), "—");
}

// ----- destinations as data ------------------------------------------------------

fn platform(n: usize) -> App {
    let mut app = fixture::app_with(fixture::many_destinations(n));
    app.size = (80, 24);
    app
}

fn shown_ids(app: &App) -> Vec<String> {
    app.shown_destinations().map(|d| d.id.clone()).collect()
}

#[test]
fn g_shift_g_and_pages_move_in_the_destinations_pane_and_keep_the_row_in_view() {
    let mut app = platform(5_000);
    press(&mut app, &[ch('1')]);
    let rows = app.dest_page_size();
    assert!(rows >= 2, "{rows}");
    assert!(matches!(app.handle_key(ch('G')), Some(Action::Refresh)));
    assert_eq!(app.selected_destination_id(), Some("customer-04999"));
    assert_eq!(app.dest_offset, 5_001 - rows);
    press(&mut app, &[key(KeyCode::PageUp)]);
    assert_eq!(app.dest_index, 5_000 - rows);
    // The selection is still in view, the view moved as little as it could.
    assert!(app.dest_index >= app.dest_offset && app.dest_index < app.dest_offset + rows);
    press(&mut app, &[ch('g')]);
    assert_eq!((app.dest_index, app.dest_offset), (0, 0));
    press(&mut app, &[key(KeyCode::PageDown)]);
    assert_eq!(app.dest_index, rows);
    assert_eq!(app.dest_offset, 1);
    press(&mut app, &[key(KeyCode::End)]);
    assert_eq!(app.dest_index, 5_000);
    press(&mut app, &[key(KeyCode::Home)]);
    assert_eq!(app.dest_index, 0);
}

#[test]
fn s_cycles_the_sort_shows_it_and_keeps_the_selection() {
    let mut app = platform(200);
    press(&mut app, &[ch('1'), ch('j'), ch('j')]);
    assert_eq!(app.selected_destination_id(), Some("customer-00001"));
    let mut orders = Vec::new();
    for expected in ["health", "backlog", "failure rate", "id"] {
        assert!(app.handle_key(ch('s')).is_none());
        assert_eq!(app.dest_list.sort.as_str(), expected);
        assert_eq!(app.selected_destination_id(), Some("customer-00001"));
        orders.push(shown_ids(&app));
    }
    let destinations = fixture::many_destinations(200);
    let find = |id: &str| destinations.iter().find(|d| d.id == id).unwrap();
    // health: the troubled first.
    assert_eq!(
        find(&orders[0][0]).health,
        hookwatch::model::Health::Disabled
    );
    // backlog: owed events, most first.
    let owed: Vec<u64> = orders[1]
        .iter()
        .map(|id| find(id).counts.pending + find(id).counts.retrying)
        .collect();
    assert!(owed.windows(2).all(|w| w[0] >= w[1]), "{owed:?}");
    // failure rate: most failing first.
    let rate = |id: &str| {
        let c = &find(id).counts;
        c.failed as f64 / (c.failed + c.delivered) as f64
    };
    assert!(rate(&orders[2][0]) >= rate(&orders[2][199]));
    assert_ne!(orders[1], orders[3]);
    // id again.
    assert_eq!(orders[3][0], "customer-00000");
    assert!(orders[3].windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn slash_in_the_destinations_pane_filters_by_text_health_and_label() {
    let mut app = platform(300);
    press(&mut app, &[ch('1'), ch('/')]);
    assert!(matches!(app.mode, Mode::Filter { .. }));
    type_text(&mut app, "label:tenant=acme");
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(app.dest_list.shown.len(), 100);
    assert!(app
        .shown_destinations()
        .all(|d| d.labels.get("tenant").map(String::as_str) == Some("acme")));
    // The events filter is untouched.
    assert!(app.filter_text.is_empty());
    // health: and free text (id or host) combine.
    press(&mut app, &[ch('/'), ctrl('u')]);
    type_text(&mut app, "health:disabled 00013");
    press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(shown_ids(&app), vec!["customer-00013".to_string()]);
    press(&mut app, &[ch('/'), ctrl('u')]);
    type_text(&mut app, "hooks.example.com health:paused");
    press(&mut app, &[key(KeyCode::Enter)]);
    assert!(!app.dest_list.shown.is_empty());
    assert!(app
        .shown_destinations()
        .all(|d| d.health == hookwatch::model::Health::Paused));
    // A bad term is an error in the prompt, and Enter keeps it open.
    press(&mut app, &[ch('/'), ctrl('u')]);
    type_text(&mut app, "health:sick");
    let Mode::Filter { error, .. } = &app.mode else {
        panic!()
    };
    assert!(error.as_deref().unwrap().contains("health:sick"));
    press(&mut app, &[key(KeyCode::Enter)]);
    assert!(matches!(app.mode, Mode::Filter { .. }));
    press(&mut app, &[key(KeyCode::Esc)]);
    // Esc in pane 1 clears its filter.
    press(&mut app, &[key(KeyCode::Esc)]);
    assert_eq!(app.dest_list.shown.len(), 300);
}

#[test]
fn a_filter_that_hides_the_selected_destination_selects_the_nearest_row() {
    let mut app = platform(30);
    press(&mut app, &[ch('1'), ch('j'), ch('j'), ch('j')]);
    assert_eq!(app.selected_destination_id(), Some("customer-00002"));
    // A filter that keeps it: still selected, where it now is.
    press(&mut app, &[ch('/')]);
    type_text(&mut app, "0000");
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert_eq!(app.selected_destination_id(), Some("customer-00002"));
    assert_eq!(app.dest_index, 3);
    // One that hides it: the row that takes its place, and the events follow.
    press(&mut app, &[ch('/'), ctrl('u')]);
    type_text(&mut app, "0001");
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Refresh)
    ));
    assert_eq!(app.selected_destination_id(), Some("customer-00010"));
    assert_eq!(
        app.events_query().0.destination.as_deref(),
        Some("customer-00010")
    );
    assert_eq!(app.selected_event, None);
    // Past the last row shown: the last one.
    press(&mut app, &[key(KeyCode::Esc), ch('G')]);
    assert_eq!(app.selected_destination_id(), Some("customer-00029"));
    press(&mut app, &[ch('/')]);
    type_text(&mut app, "0001");
    press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(app.selected_destination_id(), Some("customer-00019"));
    // Nothing shown: the `all` row.
    press(&mut app, &[ch('/'), ctrl('u')]);
    type_text(&mut app, "nosuch");
    press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(app.dest_index, 0);
    assert_eq!(app.events_query().0.destination, None);
}

/// `destinations` as a read returns them: in no particular order.
fn with(
    mut destinations: Vec<hookwatch::engine::DestinationView>,
    id: &str,
) -> Vec<hookwatch::engine::DestinationView> {
    let mut new = destinations[0].clone();
    new.id = id.to_string();
    destinations.insert(0, new);
    destinations
}

#[test]
fn a_destination_created_above_the_selected_one_does_not_take_the_cursor() {
    let mut app = app();
    // Sorted by id: analytics, billing, crm, shop.
    press(&mut app, &[ch('1'), ch('j'), ch('j'), ch('j')]);
    assert_eq!(app.selected_destination_id(), Some("crm"));
    let selected_event = app.selected_event;
    // `beta`, created through the API, sorts above crm.
    assert!(!app.set_destinations(with(fixture::destinations(), "beta")));
    assert_eq!(app.selected_destination_id(), Some("crm"));
    assert_eq!(app.dest_index, 4);
    assert_eq!(app.events_query().0.destination.as_deref(), Some("crm"));
    assert_eq!(
        app.selected_event, selected_event,
        "the events pane is not reset"
    );
    // So what the operator does next acts on crm.
    let Some(Action::PatchDestination { id, .. }) = app.handle_key(ch('p')) else {
        panic!("p pauses")
    };
    assert_eq!(id, "crm");
    press(&mut app, &[ch('D')]);
    let Mode::Confirm(Confirm::DeleteDestination { id, .. }) = &app.mode else {
        panic!("D asks first")
    };
    assert_eq!(id, "crm");
    press(&mut app, &[key(KeyCode::Esc)]);
    // Under another sort too.
    press(&mut app, &[ch('s')]);
    assert_eq!(app.dest_list.sort.as_str(), "health");
    assert!(!app.set_destinations(with(fixture::destinations(), "aardvark")));
    assert_eq!(app.selected_destination_id(), Some("crm"));
}

#[test]
fn a_deleted_destination_leaves_the_selection_on_the_nearest_row() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('j'), ch('j')]);
    assert_eq!(app.selected_destination_id(), Some("billing"));
    let billing: Vec<_> = fixture::events()
        .into_iter()
        .filter(|e| e.destination == "billing")
        .collect();
    app.set_events(EventPage {
        events: billing,
        next: None,
    });
    assert!(app.selected_event.is_some());
    let without = |gone: &[&str]| {
        fixture::destinations()
            .into_iter()
            .filter(|d| !gone.contains(&d.id.as_str()))
            .collect::<Vec<_>>()
    };
    // billing deleted: crm takes its row, and the events pane is read again
    // for it (the window read with billing's events is not shown).
    assert!(app.set_destinations(without(&["billing"])));
    assert_eq!(app.selected_destination_id(), Some("crm"));
    assert_eq!(app.dest_index, 2);
    assert_eq!(app.selected_event, None);
    assert_eq!(app.events_query().0.destination.as_deref(), Some("crm"));
    // The last row deleted: the one above it.
    press(&mut app, &[ch('G')]);
    assert_eq!(app.selected_destination_id(), Some("shop"));
    assert!(app.set_destinations(without(&["billing", "shop"])));
    assert_eq!(app.selected_destination_id(), Some("crm"));
    // Every one deleted: the `all` row.
    assert!(app.set_destinations(Vec::new()));
    assert_eq!(app.dest_index, 0);
}

#[test]
fn the_event_selection_follows_its_event_across_reads() {
    let mut app = app();
    let events = fixture::events();
    assert_eq!(app.selected_event, Some(events[0].id));
    // New events arrive above the selected one: it stays selected, lower down.
    let mut newer = events.clone();
    let mut arrived = events[1].clone();
    arrived.id = fixture::event_id(0, 90);
    newer.insert(0, arrived.clone());
    app.set_events(EventPage {
        events: newer.clone(),
        next: None,
    });
    assert_eq!(app.selected_event, Some(events[0].id));
    assert_eq!(app.event_index, 1);
    // So `r` retries the event the operator picked.
    let Some(Action::RetryNow(ids)) = app.handle_key(ch('r')) else {
        panic!("r retries")
    };
    assert_eq!(ids, vec![events[0].id]);
    // Further down the page too.
    press(&mut app, &[ch('j'), ch('j')]);
    let picked = app.selected_event.unwrap();
    let mut more = newer.clone();
    let mut another = events[1].clone();
    another.id = fixture::event_id(0, 91);
    more.insert(0, another);
    app.set_events(EventPage {
        events: more.clone(),
        next: None,
    });
    assert_eq!(app.selected_event, Some(picked));
    // The selected event gone from the page: the next older one takes its row.
    let index = app.event_index;
    more.remove(index);
    app.set_events(EventPage {
        events: more.clone(),
        next: None,
    });
    assert_eq!(app.selected_event, Some(more[index].id));
}

#[test]
fn the_events_filter_takes_labels_to_the_engine() {
    let mut app = app();
    press(&mut app, &[ch('/')]);
    type_text(&mut app, "label:tenant=acme state:failed");
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Refresh)
    ));
    let (filter, _) = app.events_query();
    assert_eq!(
        filter.label.unwrap().pairs,
        vec![("tenant".to_string(), "acme".to_string())]
    );
    // A bulk retry covers what the filter says, labels included.
    let Some(Action::CountBulk(selection)) = app.handle_key(ch('R')) else {
        panic!("R counts first")
    };
    assert!(selection.label.is_some());
}

fn form(app: &App) -> &hookwatch::tui::dest_form::DestinationForm {
    let Mode::NewDestination(form) = &app.mode else {
        panic!("not in the new destination form: {:?}", app.mode)
    };
    form
}

#[test]
fn n_opens_a_form_that_validates_as_you_type_and_creates_through_the_api() {
    let mut app = app();
    // Only in pane 1.
    assert!(app.handle_key(ch('n')).is_none());
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, &[ch('1'), ch('n')]);
    let id = form(&app).field_index("id").unwrap();
    let url = form(&app).field_index("url").unwrap();
    let labels = form(&app).field_index("labels").unwrap();
    // Fresh: no verdict before anything is typed.
    assert!(form(&app).error.is_none());
    // Enter on the empty form: the id is missing, and Enter goes to it
    // instead of saving.
    press(&mut app, &[key(KeyCode::Tab), key(KeyCode::Tab)]);
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert_eq!(form(&app).error.as_ref().unwrap().field, Some(id));
    assert_eq!(form(&app).focus, id);
    type_text(&mut app, "customer 1");
    assert_eq!(form(&app).error.as_ref().unwrap().field, Some(id));
    press(
        &mut app,
        &[key(KeyCode::Backspace), key(KeyCode::Backspace)],
    );
    type_text(&mut app, "-00001");
    // Now the url is what is missing.
    assert_eq!(form(&app).error.as_ref().unwrap().field, Some(url));
    press(&mut app, &[key(KeyCode::Tab)]);
    type_text(&mut app, "ftp://acme.example.com");
    let error = form(&app).error.clone().unwrap();
    assert_eq!(error.field, Some(url));
    assert!(error.message.starts_with("url"), "{}", error.message);
    press(&mut app, &[ctrl('u')]);
    type_text(&mut app, "https://acme.example.com/hooks");
    assert_eq!(form(&app).error, None);
    // Labels, then a retry key: the form's and the daemon's validation agree.
    while form(&app).focus != labels {
        press(&mut app, &[key(KeyCode::Tab)]);
    }
    type_text(&mut app, "tenant=acme");
    let max_retries = form(&app).field_index("retry.max_retries").unwrap();
    while form(&app).focus != max_retries {
        press(&mut app, &[key(KeyCode::Tab)]);
    }
    type_text(&mut app, "99");
    assert_eq!(form(&app).error.as_ref().unwrap().field, Some(max_retries));
    press(&mut app, &[key(KeyCode::Backspace)]);
    assert_eq!(form(&app).error, None);
    let Some(Action::CreateDestination(definition)) = app.handle_key(key(KeyCode::Enter)) else {
        panic!("Enter creates")
    };
    assert_eq!(
        definition,
        serde_json::json!({
            "id": "customer-00001",
            "url": "https://acme.example.com/hooks",
            "labels": {"tenant": "acme"},
            "retry": {"max_retries": 9},
        })
    );
    // The form stays while the daemon answers; a second Enter sends nothing.
    assert!(form(&app).saving);
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    // The daemon refuses: its words at the field it names, the input kept.
    app.apply_result(ActionResult::CreateRefused {
        field: Some("url".into()),
        message: "url: resolves to a link-local address".into(),
    });
    let refused = form(&app);
    assert!(!refused.saving);
    assert_eq!(refused.focus, url);
    assert_eq!(refused.error.as_ref().unwrap().field, Some(url));
    assert!(refused
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("link-local"));
    assert_eq!(refused.value("id"), "customer-00001");
    // A refusal naming no field (a conflict) is shown at the bottom.
    press(&mut app, &[key(KeyCode::Backspace)]);
    type_text(&mut app, "s");
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::CreateDestination(_))
    ));
    app.apply_result(ActionResult::CreateRefused {
        field: None,
        message: "destination customer-00001 already exists".into(),
    });
    assert_eq!(form(&app).error.as_ref().unwrap().field, None);
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::CreateDestination(_))
    ));
    // Created: the form closes, the window is read again.
    assert!(app.apply_result(ActionResult::Created("customer-00001".into())));
    assert!(matches!(app.mode, Mode::Normal));
    assert!(app.status.as_ref().unwrap().text.contains("customer-00001"));
}

#[test]
fn the_form_toggles_true_false_fields_and_esc_cancels() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('n')]);
    let retry_after = form(&app).field_index("retry.retry_after").unwrap();
    while form(&app).focus != retry_after {
        press(&mut app, &[key(KeyCode::BackTab)]);
    }
    press(&mut app, &[ch(' ')]);
    assert_eq!(form(&app).values[retry_after], "true");
    press(&mut app, &[ch(' ')]);
    assert_eq!(form(&app).values[retry_after], "false");
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn shift_d_confirms_with_the_owed_count_and_offers_drain() {
    let mut app = platform(20);
    // On the `all` row there is nothing to delete.
    press(&mut app, &[ch('1'), ch('D')]);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(app.status.as_ref().unwrap().error);
    press(&mut app, &[ch('j'), ch('j')]); // customer-00001
    let expected = {
        let d = app.selected_destination().unwrap();
        d.counts.pending + d.counts.retrying
    };
    assert!(expected > 0);
    assert!(app.handle_key(ch('D')).is_none());
    let Mode::Confirm(Confirm::DeleteDestination { id, owed, .. }) = &app.mode else {
        panic!("D asks first")
    };
    assert_eq!((id.as_str(), *owed), ("customer-00001", expected));
    // Keys that mean nothing here change nothing.
    assert!(app.handle_key(ch('x')).is_none());
    let Some(Action::DeleteDestination { id, drain }) = app.handle_key(ch('d')) else {
        panic!("d drains")
    };
    assert_eq!((id.as_str(), drain), ("customer-00001", true));
    assert!(matches!(app.mode, Mode::Normal));
    press(&mut app, &[ch('D')]);
    let Some(Action::DeleteDestination { drain, .. }) = app.handle_key(ch('y')) else {
        panic!("y deletes")
    };
    assert!(!drain);
    press(&mut app, &[ch('D'), key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn a_destination_of_the_config_file_is_not_deleted_from_the_tui() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('j'), ch('D')]);
    assert!(matches!(
        app.mode,
        Mode::Confirm(Confirm::DeleteDestination { .. })
    ));
    for c in ['y', 'd'] {
        assert!(app.handle_key(ch(c)).is_none(), "{c}");
        assert!(matches!(app.mode, Mode::Confirm(_)));
    }
    press(&mut app, &[ch('n')]);
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn the_destinations_view_is_worked_out_per_data_change_not_per_frame() {
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    let mut app = platform(10_000);
    press(&mut app, &[ch('1'), ch('s'), ch('/')]);
    type_text(&mut app, "label:tenant=acme");
    press(&mut app, &[key(KeyCode::Enter), ch('G')]);
    let computed = app.dest_list.computed;
    let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
    for _ in 0..5 {
        terminal
            .draw(|frame| hookwatch::tui::render(&app, frame))
            .unwrap();
    }
    assert_eq!(app.dest_list.computed, computed);
    // Moving and drawing does not work it out again either; new data does.
    press(&mut app, &[ch('k'), ch('k')]);
    assert_eq!(app.dest_list.computed, computed);
    app.set_destinations(fixture::many_destinations(10_000));
    assert_eq!(app.dest_list.computed, computed + 1);
    // The selection survived the read.
    assert_eq!(app.selected_destination().unwrap().labels["tenant"], "acme");
}

/// The README's key table is generated from the key table, so it cannot
/// drift: it must equal `keymap::markdown_table()` exactly.
/// `HOOKWATCH_BLESS_README=1` writes the generated table into the README.
#[test]
fn the_readme_key_table_is_the_keymap() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let open = readme
        .find("<!-- keymap:")
        .expect("the README's key table marker");
    let start = open + readme[open..].find("-->\n").expect("marker end") + 4;
    let end = start
        + readme[start..]
            .find("<!-- /keymap -->")
            .expect("the README's key table end marker");
    let generated = keymap::markdown_table();
    if std::env::var_os("HOOKWATCH_BLESS_README").is_some() {
        let written = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, written).expect("write README.md");
        return;
    }
    assert_eq!(
        readme[start..end],
        generated,
        "the README's key table differs from the keymap; \
         HOOKWATCH_BLESS_README=1 cargo test --test tui_keys rewrites it"
    );
}

// ----- truth and reach ------------------------------------------------------------

#[test]
fn a_prompt_wins_the_status_line_until_it_is_answered() {
    use hookwatch::tui::app::StatusLine;
    let mut app = app();
    // r retries the selected event; its answer comes back later.
    assert!(matches!(app.handle_key(ch('r')), Some(Action::RetryNow(_))));
    // Meanwhile the operator marks two events and asks to cancel them.
    press(&mut app, &[ch(' '), ch(' '), ch('c')]);
    assert!(matches!(app.mode, Mode::Confirm(Confirm::Mute { .. })));
    let Some(StatusLine::Prompt(prompt)) = app.status_line() else {
        panic!("{:?}", app.status_line())
    };
    // The retry's answer arrives while the question waits.
    app.apply_result(ActionResult::Info(
        "retried: failed again (schedule unchanged)".into(),
    ));
    assert!(matches!(app.mode, Mode::Confirm(Confirm::Mute { .. })));
    assert_eq!(
        app.status_line(),
        Some(StatusLine::Prompt(prompt)),
        "the answer hid the prompt"
    );
    // Answered: the prompt goes, and the messages show again.
    let actions = press(&mut app, &[ch('n')]);
    assert!(actions.is_empty());
    let Some(StatusLine::Message(status)) = app.status_line() else {
        panic!("{:?}", app.status_line())
    };
    assert_eq!(status.text, "retried: failed again (schedule unchanged)");
}

/// The app with the first event's detail carrying `response` as the latest
/// attempt's body.
fn app_with_response(response: &str) -> App {
    let mut app = app();
    let events = fixture::events();
    let mut detail = fixture::detail(&events[0]);
    detail.attempts.last_mut().unwrap().response_excerpt = response.to_string();
    app.set_detail(Some(detail));
    app
}

fn detail_scroll(app: &App) -> (u16, bool) {
    match app.mode {
        Mode::Detail { scroll, wrap } => (scroll, wrap),
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn the_detail_scrolls_by_wrapped_lines_to_the_end_and_no_further() {
    let long = "x".repeat(300);
    let mut app = app_with_response(&long);
    press(&mut app, &[key(KeyCode::Enter)]);
    let max = hookwatch::tui::popups::detail::max_scroll(&app, true);
    assert!(max > 0);
    press(&mut app, &[ch('G')]);
    assert_eq!(detail_scroll(&app), (max, true));
    // Past the end goes nowhere; one up moves at once (not from far below).
    press(&mut app, &[ch('j'), key(KeyCode::PageDown)]);
    assert_eq!(detail_scroll(&app).0, max);
    press(&mut app, &[ch('k')]);
    assert_eq!(detail_scroll(&app).0, max - 1);
    // A 300-character line is more than three lines at 80 columns: unwrapped,
    // the end comes sooner.
    let unwrapped = hookwatch::tui::popups::detail::max_scroll(&app, false);
    assert!(unwrapped + 3 <= max, "{unwrapped} vs {max}");
    press(&mut app, &[ch('w')]);
    assert_eq!(detail_scroll(&app), (0, false));
    press(&mut app, &[key(KeyCode::End)]);
    assert_eq!(detail_scroll(&app), (unwrapped, false));
    press(&mut app, &[ch('w'), key(KeyCode::Home)]);
    assert_eq!(detail_scroll(&app), (0, true));
}

#[test]
fn y_copies_the_whole_payload_even_when_the_detail_shows_part_of_it() {
    let mut app = app();
    let events = fixture::events();
    let mut detail = fixture::detail(&events[0]);
    let big = format!("{{\"blob\":\"{}\"}}", "a".repeat(1024 * 1024));
    detail.payload = Some(big.clone());
    app.set_detail(Some(detail));
    press(&mut app, &[key(KeyCode::Enter)]);
    let started = std::time::Instant::now();
    let actions = press(&mut app, &[ch('G')]);
    assert!(actions.is_empty());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "a 1 MiB payload must not freeze the keys"
    );
    let actions = press(&mut app, &[ch('y')]);
    assert!(
        matches!(&actions[..], [Action::CopyToClipboard(text)] if *text == big),
        "y copies the payload whole"
    );
    assert!(app.visible_status().unwrap().text.contains("copied"));
    // Still open: y is not a close key.
    detail_scroll(&app);
}

#[test]
fn the_help_says_space_marks_and_moves_down() {
    let app = app();
    let help: Vec<String> = hookwatch::tui::popups::help::lines(&app)
        .iter()
        .map(|l| l.to_string())
        .collect();
    assert!(
        help.iter()
            .any(|l| l.contains("Space") && l.contains("move down")),
        "{help:#?}"
    );
}

// ----- operational notices (`!`) ----------------------------------------------------

use hookwatch::engine::Change;
use hookwatch::model::{NoticeQuery, NoticeSelection};
use hookwatch::tui::app::StatusLine;
use hookwatch::tui::notice_list::NoticeList;

/// `!` pressed and the first page (of `query`'s kind) read from the fixture.
fn notices_open(app: &mut App) -> NoticeQuery {
    let Some(Action::ReadNotices(query)) = app.handle_key(ch('!')) else {
        panic!("! reads the notices");
    };
    app.apply_result(ActionResult::Notices {
        query,
        page: fixture::notice_page(query),
    });
    query
}

fn notice_list(app: &App) -> &NoticeList {
    match &app.mode {
        Mode::Notices(list) => list,
        other => panic!("not the notices: {other:?}"),
    }
}

#[test]
fn bang_opens_the_notices_from_any_pane_newest_first() {
    for pane_key in ['1', '2', '3'] {
        let mut app = app();
        press(&mut app, &[ch(pane_key)]);
        let query = notices_open(&mut app);
        assert_eq!(query.before, None);
        assert!(!query.unacked_only);
        let list = notice_list(&app);
        assert!(list.loaded && !list.reading);
        assert_eq!(list.notices[0], fixture::notices()[0]);
        assert_eq!(app.unacked_notices, 3, "the page's count in all");
        press(&mut app, &[key(KeyCode::Esc)]);
        assert!(matches!(app.mode, Mode::Normal));
    }
    let mut app = app();
    notices_open(&mut app);
    press(&mut app, &[ch('q')]);
    assert!(matches!(app.mode, Mode::Normal), "q closes, not quits");
    assert!(!app.quit);
}

#[test]
fn j_k_move_and_j_past_the_last_loaded_reads_the_next_page() {
    let mut app = app();
    notices_open(&mut app);
    press(&mut app, &[ch('j'), ch('j')]);
    assert_eq!(notice_list(&app).index, 2);
    press(&mut app, &[ch('k')]);
    assert_eq!(notice_list(&app).index, 1);
    press(&mut app, &[ch('G')]);
    let list = notice_list(&app);
    assert_eq!(list.index, list.notices.len() - 1);
    let cursor = list.next_before.expect("more than one page in the fixture");
    let Some(Action::ReadNotices(older)) = app.handle_key(ch('j')) else {
        panic!("j past the last loaded notice reads the next page");
    };
    assert_eq!(older.before, Some(cursor));
    // One read at a time.
    assert!(app.handle_key(ch('j')).is_none());
    let all = fixture::notices();
    let loaded = notice_list(&app).notices.len();
    app.apply_result(ActionResult::Notices {
        query: older,
        page: hookwatch::model::NoticePage {
            notices: all[loaded..].to_vec(),
            next_before: None,
            unacked: 3,
        },
    });
    assert_eq!(notice_list(&app).notices, all);
    press(&mut app, &[ch('j')]);
    assert_eq!(notice_list(&app).index, loaded);
    press(&mut app, &[ch('g')]);
    assert_eq!(notice_list(&app).index, 0);
}

#[test]
fn a_acknowledges_the_selected_notice_and_the_row_says_so() {
    let mut app = app();
    notices_open(&mut app);
    let first = fixture::notices()[0].clone();
    assert!(!first.is_acked());
    let Some(Action::AckNotice(id)) = app.handle_key(ch('a')) else {
        panic!("a acknowledges");
    };
    assert_eq!(id, first.id);
    let mut acked = first.clone();
    acked.acked_at = Some(app.now);
    app.apply_result(ActionResult::NoticeAcked(Box::new(acked)));
    assert!(notice_list(&app).notices[0].is_acked());
    // The engine says a notice changed: the list is read again, once.
    assert!(app.on_change(&Change::Notices { unacked: 2 }));
    assert_eq!(app.unacked_notices, 2);
    let Some(Action::ReadNotices(reread)) = app.take_notices_reread() else {
        panic!("a changed notice rereads the list");
    };
    assert_eq!(reread.before, None);
    assert!(app.take_notices_reread().is_none());
    // An acknowledged one is not acknowledged again.
    assert!(app.handle_key(ch('a')).is_none());
    assert!(app.status.as_ref().unwrap().text.contains("already"));
}

#[test]
fn shift_a_acknowledges_every_notice_only_after_y() {
    let mut app = app();
    notices_open(&mut app);
    assert!(app.handle_key(ch('A')).is_none());
    assert!(notice_list(&app).confirm_all);
    match app.status_line() {
        Some(StatusLine::Prompt(text)) => assert!(text.contains("[y/N]"), "{text}"),
        other => panic!("A asks first: {other:?}"),
    }
    // Enter is the default: no.
    assert!(app.handle_key(key(KeyCode::Enter)).is_none());
    assert!(!notice_list(&app).confirm_all);
    assert!(matches!(app.mode, Mode::Notices(_)));
    press(&mut app, &[ch('A')]);
    let Some(Action::AckNotices(selection)) = app.handle_key(ch('y')) else {
        panic!("y acknowledges every notice");
    };
    assert_eq!(selection, NoticeSelection::all());
    app.apply_result(ActionResult::NoticesAcked(3));
    assert!(app
        .status
        .as_ref()
        .unwrap()
        .text
        .contains("acknowledged 3 notices"));
    assert!(app.take_notices_reread().is_some());
}

#[test]
fn u_lists_only_the_unacknowledged_and_back() {
    let mut app = app();
    notices_open(&mut app);
    let Some(Action::ReadNotices(query)) = app.handle_key(ch('u')) else {
        panic!("u reads again");
    };
    assert!(query.unacked_only);
    // An answer to the read before `u` arriving late is not taken.
    app.apply_result(ActionResult::Notices {
        query: NoticeQuery::default(),
        page: fixture::notice_page(NoticeQuery::default()),
    });
    assert!(!notice_list(&app).loaded);
    app.apply_result(ActionResult::Notices {
        query,
        page: fixture::notice_page(query),
    });
    let list = notice_list(&app);
    assert_eq!(list.notices.len(), 3);
    assert!(list.notices.iter().all(|n| !n.is_acked()));
    let Some(Action::ReadNotices(query)) = app.handle_key(ch('u')) else {
        panic!("u again lists all");
    };
    assert!(!query.unacked_only);
}

#[test]
fn enter_on_a_notice_goes_to_its_destination() {
    let mut app = app();
    notices_open(&mut app);
    // The second notice: billing in retry too long, no event.
    press(&mut app, &[ch('j')]);
    let notice = notice_list(&app).selected().unwrap().clone();
    assert_eq!(notice.destination.as_deref(), Some("billing"));
    assert!(notice.event.is_none());
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Refresh)
    ));
    assert!(matches!(app.mode, Mode::Normal));
    assert_eq!(app.focus, Pane::Destinations);
    assert_eq!(app.selected_destination_id(), Some("billing"));
    assert_eq!(app.events_query().0.destination.as_deref(), Some("billing"));
}

#[test]
fn enter_on_a_notice_hidden_by_the_destinations_filter_clears_it() {
    let mut app = app();
    press(&mut app, &[ch('1'), ch('/')]);
    type_text(&mut app, "health:disabled");
    press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(app.dest_list.shown.len(), 1);
    notices_open(&mut app);
    press(&mut app, &[ch('j')]); // billing
    press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(app.selected_destination_id(), Some("billing"));
    assert!(app.dest_list.filter_text.is_empty());
}

#[test]
fn enter_on_a_notice_naming_an_event_opens_that_events_detail_even_off_the_page() {
    let mut app = app();
    notices_open(&mut app);
    press(&mut app, &[ch('j'), ch('j')]); // crm disabled by a 404 (40 min ago)
    let notice = notice_list(&app).selected().unwrap().clone();
    assert_eq!(notice.destination.as_deref(), Some("crm"));
    let event = notice.event.expect("the fixture's disabling event");
    assert!(matches!(
        app.handle_key(key(KeyCode::Enter)),
        Some(Action::Refresh)
    ));
    assert!(matches!(app.mode, Mode::Detail { .. }));
    assert_eq!(app.selected_destination_id(), Some("crm"));
    assert_eq!(app.selected_event, Some(event));
    // crm's first page arrives without that event: it stays selected, so the
    // detail (read by id) is the notice's event, not a row of the page.
    let others: Vec<_> = fixture::events()
        .into_iter()
        .filter(|e| e.destination == "crm" && e.id != event)
        .collect();
    assert!(!others.is_empty());
    app.set_events(EventPage {
        events: others.clone(),
        next: None,
    });
    assert_eq!(app.selected_event, Some(event));
    let record = fixture::events()
        .into_iter()
        .find(|e| e.id == event)
        .unwrap();
    app.set_detail(Some(fixture::detail(&record)));
    assert_eq!(app.selected_detail().unwrap().event.id, event);
    // Closing the detail and moving selects rows of the page again.
    press(&mut app, &[key(KeyCode::Esc), ch('g')]);
    assert!(others.iter().any(|e| Some(e.id) == app.selected_event));
}

#[test]
fn read_only_refuses_a_and_shift_a_in_the_notices() {
    let mut app = app();
    app.info.read_only = true;
    notices_open(&mut app);
    for c in ['a', 'A'] {
        assert!(app.handle_key(ch(c)).is_none(), "{c}");
        assert!(!notice_list(&app).confirm_all, "{c}");
        assert!(app.status.as_ref().unwrap().text.contains("read-only"));
    }
    // Reading still works.
    press(&mut app, &[ch('j')]);
    assert_eq!(notice_list(&app).index, 1);
    assert!(keymap::help_sections(true)
        .iter()
        .flat_map(|(_, b)| b)
        .all(|b| b.command != Command::AckNotice && b.command != Command::AckAllNotices));
}

#[test]
fn on_start_the_status_line_tells_of_the_notices_until_a_key() {
    let mut app = app();
    app.greet(3);
    match app.status_line() {
        Some(StatusLine::Greeting(text)) => assert_eq!(
            text,
            "3 unacknowledged notices since you last looked — press ! to see them"
        ),
        other => panic!("the greeting: {other:?}"),
    }
    // Acknowledged elsewhere meanwhile: nothing left to tell.
    app.on_change(&Change::Notices { unacked: 0 });
    assert!(app.status_line().is_none());
    app.on_change(&Change::Notices { unacked: 1 });
    assert!(matches!(app.status_line(), Some(StatusLine::Greeting(_))));
    press(&mut app, &[ch('j')]);
    assert!(app.status_line().is_none(), "the first key ends it");
    // Nothing waiting: nothing said.
    let mut app = fixture::app();
    app.greet(0);
    assert!(app.status_line().is_none());
}

fn job(id: &str, state: JobState, finished: bool) -> JobProgress {
    JobProgress {
        id: id.into(),
        total: 10,
        done: if finished { 10 } else { 4 },
        state,
        finished,
        ..Default::default()
    }
}

#[test]
fn j_opens_the_bulk_jobs_moves_cancels_a_running_one_and_closes() {
    let mut app = app();
    let Some(Action::ReadJobs) = app.handle_key(ch('J')) else {
        panic!("J opens the jobs and reads them")
    };
    assert!(matches!(app.mode, Mode::Jobs(_)));
    // Read again every tick while open, and only then.
    assert!(matches!(app.jobs_reread(), Some(Action::ReadJobs)));
    app.apply_result(ActionResult::Jobs(vec![
        job("running", JobState::Running, false),
        job("done", JobState::Completed, true),
    ]));
    let Some(Action::CancelBulk(id)) = app.handle_key(ch('x')) else {
        panic!("x cancels the selected running job")
    };
    assert_eq!(id, "running");
    press(&mut app, &[ch('j')]);
    let Mode::Jobs(list) = &app.mode else {
        panic!("still in the jobs")
    };
    assert_eq!(list.selected_job().unwrap().id, "done");
    assert!(
        app.handle_key(ch('x')).is_none(),
        "a finished job is not cancelled"
    );
    // A new read keeps the selected job selected, wherever it moved.
    app.apply_result(ActionResult::Jobs(vec![
        job("newer", JobState::Running, false),
        job("running", JobState::Running, false),
        job("done", JobState::Completed, true),
    ]));
    let Mode::Jobs(list) = &app.mode else {
        panic!("still in the jobs")
    };
    assert_eq!(list.selected_job().unwrap().id, "done");
    press(&mut app, &[ch('g')]);
    let Mode::Jobs(list) = &app.mode else {
        panic!("still in the jobs")
    };
    assert_eq!(list.selected_job().unwrap().id, "newer");
    press(&mut app, &[ch('J')]);
    assert!(matches!(app.mode, Mode::Normal));
    assert!(app.jobs_reread().is_none());
    // Esc closes too.
    press(&mut app, &[ch('J'), key(KeyCode::Esc)]);
    assert!(matches!(app.mode, Mode::Normal));
}

#[test]
fn read_only_refuses_cancelling_a_job_in_the_bulk_jobs() {
    let mut app = app();
    app.info.read_only = true;
    assert!(matches!(app.handle_key(ch('J')), Some(Action::ReadJobs)));
    app.apply_result(ActionResult::Jobs(vec![job(
        "running",
        JobState::Running,
        false,
    )]));
    assert!(app.handle_key(ch('x')).is_none());
    assert!(matches!(app.mode, Mode::Jobs(_)));
}
