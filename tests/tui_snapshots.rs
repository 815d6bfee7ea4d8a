//! Snapshots of every pane and popup at 80×24 and 160×48, rendered from fixture
//! state at a fixed time on ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hookwatch::engine::{BulkSelection, JobProgress, JobState};
use hookwatch::model::EventState;
use hookwatch::tui::app::{App, Confirm, Mode};
use hookwatch::tui::fixture;
use hookwatch::tui::form::PolicyForm;
use hookwatch::tui::job_list::JobList;
use hookwatch::tui::keymap::Pane;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn draw(app: &mut App, width: u16, height: u16) -> String {
    app.size = (width, height);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| hookwatch::tui::render(app, frame))
        .unwrap();
    terminal.backend().to_string()
}

/// Snapshots `app` at both sizes as `{name}_80x24` and `{name}_160x48`.
fn snap(name: &str, mut make: impl FnMut() -> App) {
    for (w, h) in SIZES {
        let mut app = make();
        let screen = draw(&mut app, w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen);
    }
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn main_screen_with_each_pane_focused() {
    for (pane, name) in [
        (Pane::Destinations, "destinations_pane"),
        (Pane::Events, "events_pane"),
        (Pane::Attempts, "attempts_pane"),
    ] {
        snap(name, || {
            let mut app = fixture::app();
            app.focus = pane;
            app
        });
    }
}

#[test]
fn one_destination_selected_with_marks_and_frozen() {
    snap("destination_selected", || {
        let mut app = fixture::app();
        app.dest_index = 2; // billing
        let billing: Vec<_> = fixture::events()
            .into_iter()
            .filter(|e| e.destination == "billing")
            .collect();
        app.marks.insert(billing[1].id);
        app.marks.insert(billing[2].id);
        app.set_events(hookwatch::engine::EventPage {
            events: billing,
            next: Some("01HX0000000000000000000000".into()),
        });
        app.frozen = true;
        app
    });
}

#[test]
fn read_only_footer_and_help() {
    snap("read_only", || {
        let mut app = fixture::app();
        app.info.read_only = true;
        app
    });
    snap("help_read_only", || {
        let mut app = fixture::app();
        app.info.read_only = true;
        app.mode = Mode::Help { scroll: 0 };
        app
    });
}

#[test]
fn detail_popup() {
    snap("detail", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Enter));
        app
    });
    snap("detail_scrolled", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Enter));
        app.mode = Mode::Detail {
            scroll: 12,
            wrap: true,
        };
        app
    });
}

#[test]
fn confirm_popups() {
    snap("confirm_bulk_counting", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Char('R')));
        app
    });
    snap("confirm_bulk", || {
        let mut app = fixture::app();
        app.filter_text = "state:failed".into();
        app.mode = Mode::Confirm(Confirm::BulkRetry {
            selection: BulkSelection::default(),
            scope: "all destinations, filter \"state:failed\"".into(),
            count: Some(1234),
        });
        app
    });
    snap("confirm_mute", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Char('a')));
        app.handle_key(key(KeyCode::Char('c')));
        app
    });
}

#[test]
fn policy_form() {
    snap("policy_form", || {
        let mut app = fixture::app();
        let shop = &app.destinations[0];
        app.mode = Mode::Form(PolicyForm::new(&shop.id, &shop.retry));
        app
    });
    snap("policy_form_error", || {
        let mut app = fixture::app();
        app.dest_index = 4; // shop, sorted by id after analytics, billing, crm
        app.handle_key(key(KeyCode::Char('e')));
        for _ in 0..3 {
            app.handle_key(key(KeyCode::Tab));
        }
        app.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        app.handle_key(key(KeyCode::Char('0')));
        app
    });
}

#[test]
fn filter_prompt() {
    snap("filter_prompt", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Char('/')));
        for c in "state:retrying topic:order.*".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        app
    });
    snap("filter_prompt_error", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Char('/')));
        for c in "state:sent".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        app
    });
    snap("filter_applied", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Char('/')));
        for c in "status:5xx".chars() {
            app.handle_key(key(KeyCode::Char(c)));
        }
        app.handle_key(key(KeyCode::Enter));
        app.set_events(hookwatch::engine::EventPage {
            events: fixture::events(),
            next: None,
        });
        app
    });
}

#[test]
fn bulk_progress() {
    for (name, state, done, finished) in [
        ("bulk_running", JobState::Running, 420, false),
        // Cancelled, while the attempts running when it was cancelled finish.
        ("bulk_cancelling", JobState::Cancelled, 600, false),
        ("bulk_cancelled", JobState::Cancelled, 628, true),
    ] {
        snap(name, || {
            let mut app = fixture::app();
            app.mode = Mode::Bulk;
            app.bulk = Some(JobProgress {
                id: "01HXJOB0000000000000000000".into(),
                total: 1000,
                done,
                succeeded: done - 20,
                failed: 20,
                state,
                finished,
                ..Default::default()
            });
            app
        });
    }
}

#[test]
fn bulk_jobs_popup() {
    snap("bulk_jobs", || {
        let mut app = fixture::app();
        let now = app.now;
        let minutes = |m: i64| now - chrono::Duration::minutes(m);
        let mut list = JobList::default();
        list.set(vec![
            JobProgress {
                id: "01HXJOB0000000000000000003".into(),
                total: 1000,
                done: 420,
                succeeded: 400,
                failed: 20,
                state: JobState::Running,
                started_at: minutes(2),
                selection: BulkSelection {
                    destination: Some("orders".into()),
                    state: Some(EventState::Failed),
                    ..Default::default()
                },
                ..Default::default()
            },
            JobProgress {
                id: "01HXJOB0000000000000000002".into(),
                total: 32,
                done: 28,
                succeeded: 20,
                failed: 5,
                skipped: 3,
                state: JobState::Cancelled,
                finished: true,
                started_at: minutes(50),
                finished_at: Some(minutes(48)),
                selection: BulkSelection {
                    topic: Some("invoice.*".into()),
                    ..Default::default()
                },
            },
            JobProgress {
                id: "01HXJOB0000000000000000001".into(),
                total: 3,
                done: 3,
                succeeded: 3,
                state: JobState::Completed,
                finished: true,
                started_at: minutes(180),
                finished_at: Some(minutes(179)),
                selection: BulkSelection {
                    ids: Some(fixture::events().iter().take(3).map(|e| e.id).collect()),
                    ..Default::default()
                },
                ..Default::default()
            },
        ]);
        list.step(1);
        app.mode = Mode::Jobs(list);
        app
    });
}

#[test]
fn help_screen() {
    snap("help", || {
        let mut app = fixture::app();
        app.handle_key(key(KeyCode::Char('?')));
        app
    });
}

#[test]
fn too_small_and_first_run() {
    let mut app = fixture::app();
    insta::assert_snapshot!("too_small", draw(&mut app, 60, 15));
    snap("first_run", fixture::first_run);
}

#[test]
fn status_message_in_footer() {
    let mut app = fixture::app();
    app.error_status("billing: retry.max_retries: must be between 1 and 50, got 0");
    insta::assert_snapshot!("status_error_80x24", draw(&mut app, 80, 24));
}

#[test]
fn attached_header_in_contact_and_reconnecting() {
    let attachment = hookwatch::tui::Attachment {
        pid: Some(4242),
        url: "http://127.0.0.1:8686".into(),
    };
    snap("attached", || {
        let mut app = fixture::app();
        app.info.attached = Some(attachment.clone());
        app.contact_made();
        app
    });
    snap("attached_reconnecting", || {
        let mut app = fixture::app();
        app.info.attached = Some(attachment.clone());
        app.contact.last = Some(app.now - chrono::TimeDelta::seconds(7));
        app.contact_lost();
        app
    });
    snap("attached_by_url", || {
        let mut app = fixture::app();
        app.info.attached = Some(hookwatch::tui::Attachment {
            pid: None,
            url: "http://hookwatch.internal:8686".into(),
        });
        app
    });
}

// ----- destinations as data ------------------------------------------------------

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        app.handle_key(key(KeyCode::Char(c)));
    }
}

fn platform(make: fn() -> Vec<hookwatch::engine::DestinationView>) -> App {
    let mut app = fixture::app_with(make());
    app.focus = Pane::Destinations;
    app
}

#[test]
fn many_destinations_and_long_ids() {
    // 5,000 destinations: whole ids, the `all` row's totals inside their
    // columns, and G at the last one.
    snap("many_destinations_bottom", || {
        let mut app = platform(|| fixture::many_destinations(5_000));
        app.size = (80, 24);
        keys(&mut app, "G");
        app
    });
    snap("many_destinations_top", || {
        platform(|| fixture::many_destinations(5_000))
    });
    // Ids longer than a third of the screen: cut in the middle, with an ellipsis.
    snap("long_ids", || {
        let mut app = platform(fixture::long_id_destinations);
        // They sort last (tenant-… after customer-…).
        keys(&mut app, "G");
        app
    });
}

#[test]
fn destinations_filtered_and_sorted() {
    snap("destinations_filter_prompt", || {
        let mut app = platform(|| fixture::many_destinations(300));
        keys(&mut app, "/label:tenant=acme health:");
        app
    });
    snap("destinations_filtered_sorted", || {
        let mut app = platform(|| fixture::many_destinations(300));
        keys(&mut app, "/label:tenant=acme");
        app.handle_key(key(KeyCode::Enter));
        keys(&mut app, "ss");
        app
    });
}

#[test]
fn new_destination_form() {
    snap("new_destination_form", || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        keys(&mut app, "n");
        app
    });
    // Focus on the last field: the ones cut off above are said.
    snap("new_destination_form_scrolled", || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        keys(&mut app, "n");
        app.handle_key(key(KeyCode::BackTab));
        app
    });
    snap("new_destination_form_refused", || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        keys(&mut app, "ncustomer-00042");
        app.handle_key(key(KeyCode::Tab));
        keys(&mut app, "http://169.254.169.254/latest");
        app.handle_key(key(KeyCode::Tab));
        keys(&mut app, "order.*, invoice.*");
        for _ in 0..5 {
            app.handle_key(key(KeyCode::Tab));
        }
        keys(&mut app, "tenant=acme");
        app.handle_key(key(KeyCode::Enter));
        app.apply_result(hookwatch::tui::app::ActionResult::CreateRefused {
            field: Some("url".into()),
            message: "url: \"http://169.254.169.254/latest\" resolves to a link-local address (169.254.169.254), refused for destinations created through the API".into(),
        });
        app
    });
}

#[test]
fn delete_confirmation() {
    snap("delete_confirm", || {
        let mut app = platform(|| fixture::many_destinations(20));
        keys(&mut app, "jjD");
        app
    });
    snap("delete_confirm_file", || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        keys(&mut app, "jjD");
        app
    });
}

// ----- the screen tells the truth, reaches everything, shows history --------------

/// The events of the fixture plus one `shop` event due now while every one of
/// shop's slots is taken; analytics paused, crm disabled.
fn app_with_queue() -> App {
    let mut app = fixture::app();
    let mut destinations = fixture::destinations();
    let shop = destinations.iter_mut().find(|d| d.id == "shop").unwrap();
    shop.in_flight = shop.concurrency as usize;
    app.set_destinations(destinations);
    let mut events = fixture::events();
    let mut queued = events[1].clone();
    queued.id = fixture::event_id(1, 99);
    queued.state = hookwatch::model::EventState::Pending;
    queued.attempt_count = 0;
    queued.last_status = None;
    queued.next_attempt_at = Some(fixture::now() - chrono::Duration::seconds(1));
    queued.next_trigger = Some(hookwatch::model::Trigger::Initial);
    events.insert(0, queued);
    app.set_events(hookwatch::engine::EventPage { events, next: None });
    // The selection stays on its event when one arrives above it: back to
    // the top, the queued one.
    app.handle_key(key(KeyCode::Char('g')));
    app
}

/// The detail of the event at `index` of the app's page, with `ahead` when due.
fn open_detail(app: &mut App, index: usize, ahead: Option<u64>, attempts: bool) {
    for _ in 0..index {
        app.handle_key(key(KeyCode::Down));
    }
    let record = app.selected_record().unwrap().clone();
    let mut detail = fixture::detail(&record);
    detail.ahead = ahead;
    if !attempts {
        detail.attempts.clear();
    }
    app.set_detail(Some(detail));
    app.handle_key(key(KeyCode::Enter));
}

#[test]
fn held_queued_and_finished_events() {
    // NEXT: queued (shop saturated), held (paused) for analytics, held
    // (disabled) for crm, blank for finished events.
    snap("events_held_queued_finished", app_with_queue);
    snap("detail_queued", || {
        let mut app = app_with_queue();
        open_detail(&mut app, 0, Some(3), false);
        app
    });
    snap("detail_held", || {
        let mut app = app_with_queue();
        // The crm event, pending behind its disabled destination.
        open_detail(&mut app, 4, None, false);
        app
    });
    snap("detail_finished", || {
        let mut app = app_with_queue();
        // A delivered shop event: no next, no trigger.
        open_detail(&mut app, 2, None, true);
        app
    });
}

#[test]
fn an_event_without_a_topic_says_so_in_the_detail() {
    let mut app = app_with_queue();
    app.handle_key(key(KeyCode::Down));
    let mut record = app.selected_record().unwrap().clone();
    record.topic.clear();
    let mut detail = fixture::detail(&record);
    detail.event = record;
    app.set_detail(Some(detail));
    app.handle_key(key(KeyCode::Enter));
    let screen = draw(&mut app, 120, 40);
    assert!(screen.contains("topic (none)  state"), "{screen}");
}

#[test]
fn degraded_health() {
    snap("degraded", || {
        let mut app = fixture::app();
        let mut destinations = fixture::destinations();
        let billing = destinations.iter_mut().find(|d| d.id == "billing").unwrap();
        billing.health = hookwatch::model::Health::Degraded;
        billing.in_retry = false;
        app.set_destinations(destinations);
        app.focus = Pane::Destinations;
        app
    });
}

#[test]
fn the_detail_reaches_the_end_of_any_text() {
    snap("detail_long_response_end", || {
        let mut app = fixture::app();
        let events = fixture::events();
        let mut detail = fixture::detail(&events[0]);
        detail.attempts.last_mut().unwrap().response_excerpt =
            format!("upstream said: {}", "0123456789".repeat(30));
        app.set_detail(Some(detail));
        app.handle_key(key(KeyCode::Enter));
        app.handle_key(key(KeyCode::Char('G')));
        app
    });
    snap("detail_pending_end", || {
        let mut app = app_with_queue();
        open_detail(&mut app, 0, Some(0), false);
        app.handle_key(key(KeyCode::Char('G')));
        app
    });
    snap("detail_large_payload_end", || {
        let mut app = fixture::app();
        let events = fixture::events();
        let mut detail = fixture::detail(&events[0]);
        detail.payload = Some(format!("{{\"blob\":\"{}\"}}", "ab".repeat(512 * 1024)));
        detail.event.payload_bytes = detail.payload.as_ref().unwrap().len() as u64;
        app.set_detail(Some(detail));
        app.handle_key(key(KeyCode::Enter));
        app.handle_key(key(KeyCode::Char('G')));
        app
    });
}

#[test]
fn policy_form_with_a_long_error_keeps_its_keys() {
    snap("policy_form_long_error", || {
        let mut app = fixture::app();
        app.dest_index = 4; // shop
        app.handle_key(key(KeyCode::Char('e')));
        let Mode::Form(form) = &mut app.mode else {
            panic!("{:?}", app.mode)
        };
        form.error = Some((
            8,
            "\"418\" is not a status: give codes (429), ranges (500-599) or comparisons (>=500), \
             separated by commas, each between 100 and 599, for example 408, 429, >=500"
                .into(),
        ));
        app
    });
}

#[test]
fn destination_view_with_charts() {
    use hookwatch::engine::stats::StatsWindow;
    snap("destination_view", || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        app.dest_index = 2; // billing
        app.handle_key(key(KeyCode::Enter));
        app.apply_result(hookwatch::tui::ActionResult::DestinationStats {
            hour: Box::new(fixture::stats("billing", StatsWindow::Hour)),
            day: Box::new(fixture::stats("billing", StatsWindow::Day)),
        });
        app
    });
    snap("destination_view_loading", || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        app.dest_index = 4; // shop
        app.handle_key(key(KeyCode::Enter));
        app
    });
}

#[test]
fn the_header_counts_destinations_by_health() {
    // What the trial found: one destination in retry, one disabled by a 404
    // (which still has events in retry: the API says `in_retry: true`) and
    // one healthy read `dests: 2 in retry, 1 disabled`.
    let make = || {
        let mut app = fixture::app();
        let mut destinations = fixture::destinations();
        destinations.retain(|d| d.id != "analytics");
        let crm = destinations.iter_mut().find(|d| d.id == "crm").unwrap();
        crm.in_retry = true;
        app.set_destinations(destinations);
        app
    };
    snap("header_by_health", make);
    for (w, h) in SIZES {
        let screen = draw(&mut make(), w, h);
        assert!(
            screen.contains("dests: 1 in retry, 1 disabled "),
            "{screen}"
        );
    }
    // Degraded, then paused, are said too where they fit (at 80 columns the
    // line keeps room for where it listens).
    let mut app = fixture::app();
    let mut destinations = fixture::destinations();
    let shop = destinations.iter_mut().find(|d| d.id == "shop").unwrap();
    shop.health = hookwatch::model::Health::Degraded;
    app.set_destinations(destinations);
    let screen = draw(&mut app, 80, 24);
    assert!(
        screen.contains(" dests: 1 in retry, 1 disabled  listen"),
        "{screen}"
    );
    let screen = draw(&mut app, 160, 48);
    assert!(
        screen.contains("dests: 1 in retry, 1 disabled, 1 degraded, 1 paused"),
        "{screen}"
    );
}

#[test]
fn under_a_filter_the_all_row_says_it_is_every_destinations() {
    // `health:disabled` shows crm alone; the `all` row still sums all four
    // (and Enter on it still shows every event), and says so.
    let make = || {
        let mut app = fixture::app();
        keys(&mut app, "1/health:disabled");
        app.handle_key(key(KeyCode::Enter));
        app
    };
    snap("destinations_health_filter", make);
    for (w, h) in SIZES {
        let screen = draw(&mut make(), w, h);
        assert!(screen.contains("1 of 4 · health:disabled"), "{screen}");
        assert!(screen.contains("all (unfiltered)"), "{screen}");
    }
}

// ----- operational notices ---------------------------------------------------------

/// The main screen with the fixture's notices read: 3 unacknowledged.
fn app_with_notices() -> App {
    let mut app = fixture::app();
    app.set_unacked_notices(3);
    app
}

/// `!` pressed and the first page of `unacked_only` read.
fn notices_popup(read_only: bool, unacked_only: bool) -> App {
    let mut app = app_with_notices();
    app.info.read_only = read_only;
    let Some(hookwatch::tui::Action::ReadNotices(mut query)) =
        app.handle_key(key(KeyCode::Char('!')))
    else {
        panic!("! reads the notices");
    };
    if unacked_only {
        let Some(hookwatch::tui::Action::ReadNotices(q)) = app.handle_key(key(KeyCode::Char('u')))
        else {
            panic!("u reads again");
        };
        query = q;
    }
    app.apply_result(hookwatch::tui::ActionResult::Notices {
        query,
        page: fixture::notice_page(query),
    });
    app
}

#[test]
fn the_header_counts_unacknowledged_notices_and_the_start_says_so() {
    snap("header_with_notices", app_with_notices);
    for (w, h) in SIZES {
        let screen = draw(&mut app_with_notices(), w, h);
        assert!(screen.contains("! 3 notices"), "{screen}");
        // None: nothing is said.
        let screen = draw(&mut fixture::app(), w, h);
        assert!(!screen.contains("notice"), "{screen}");
    }
    snap("notices_greeting", || {
        let mut app = fixture::app();
        app.greet(3);
        app
    });
    for (w, h) in SIZES {
        let mut app = fixture::app();
        app.greet(3);
        let screen = draw(&mut app, w, h);
        assert!(
            screen.contains("3 unacknowledged notices since you last looked"),
            "{screen}"
        );
    }
}

#[test]
fn the_notices_popup() {
    snap("notices", || notices_popup(false, false));
    snap("notices_unacked_only", || notices_popup(false, true));
    snap("notices_read_only", || notices_popup(true, false));
    snap("notices_scrolled_to_a_long_destination", || {
        let mut app = notices_popup(false, false);
        // Down to the destination with a long id, then past a screenful.
        for _ in 0..6 {
            app.handle_key(key(KeyCode::Char('j')));
        }
        app
    });
    snap("notices_far_down", || {
        let mut app = notices_popup(false, false);
        app.handle_key(key(KeyCode::Char('G')));
        app
    });
    snap("notices_confirm_all", || {
        let mut app = notices_popup(false, false);
        app.handle_key(key(KeyCode::Char('A')));
        app
    });
    snap("notices_reading", || {
        let mut app = app_with_notices();
        app.handle_key(key(KeyCode::Char('!')));
        app
    });
    for (w, h) in SIZES {
        let screen = draw(&mut notices_popup(false, false), w, h);
        assert!(screen.contains("Notices"), "{screen}");
        assert!(screen.contains("disabled"), "{screen}");
        assert!(screen.contains("not acknowledged"), "{screen}");
        assert!(screen.contains("2024-05-01 11:35:00 UTC"), "{screen}");
        let screen = draw(&mut notices_popup(true, false), w, h);
        assert!(screen.contains("read-only: a/A off"), "{screen}");
        let screen = draw(&mut notices_popup(false, true), w, h);
        assert!(screen.contains("unacknowledged only"), "{screen}");
        assert!(!screen.contains('✓'), "an acknowledged row: {screen}");
    }
}

#[test]
fn destination_view_with_notice_marks() {
    use hookwatch::engine::stats::StatsWindow;
    let make = || {
        let mut app = fixture::app();
        app.focus = Pane::Destinations;
        app.dest_index = 2; // billing
        app.handle_key(key(KeyCode::Enter));
        app.apply_result(hookwatch::tui::ActionResult::DestinationStats {
            hour: Box::new(fixture::stats("billing", StatsWindow::Hour)),
            day: Box::new(fixture::stats("billing", StatsWindow::Day)),
        });
        app.apply_result(hookwatch::tui::ActionResult::DestinationNotices {
            destination: "billing".into(),
            notices: fixture::destination_notices("billing"),
        });
        app
    };
    snap("destination_view_notice_marks", make);
    for (w, h) in SIZES {
        let screen = draw(&mut make(), w, h);
        assert!(screen.contains("▲ 11:35 in retry too long"), "{screen}");
        // The 429 that lowered concurrency is not a mark.
        assert!(!screen.contains("concurrency"), "{screen}");
    }
    let screen = draw(&mut make(), 160, 48);
    assert!(screen.contains("▲ 09:05 recovered"), "{screen}");
}

// ----- the disk budget -------------------------------------------------------------

/// The store at its budget with owed events only: the header says so, with
/// what is used of what, at every size; a store with room says nothing.
#[test]
fn the_header_says_when_the_store_is_full() {
    let full = || {
        let mut app = fixture::app();
        app.store_budget = Some(hookwatch::store::BudgetUse {
            used_bytes: 2_149_072,
            ceiling_bytes: 2_232_320,
            budget_bytes: 4 << 20,
            file_bytes: 2_232_320,
            full: true,
        });
        app
    };
    for (w, h) in SIZES {
        let screen = draw(&mut full(), w, h);
        assert!(screen.contains("STORE FULL 2 MiB/2.1 MiB"), "{screen}");
        let mut room = full();
        room.store_budget = room
            .store_budget
            .map(|u| hookwatch::store::BudgetUse { full: false, ..u });
        let screen = draw(&mut room, w, h);
        assert!(!screen.contains("STORE FULL"), "{screen}");
    }
}
