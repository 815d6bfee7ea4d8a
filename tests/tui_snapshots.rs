//! Snapshots of every pane and popup at 80×24 and 160×48, rendered from fixture
//! state at a fixed time on ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use hookwatch::engine::{BulkSelection, JobProgress, JobState};
use hookwatch::tui::app::{App, Confirm, Mode};
use hookwatch::tui::fixture;
use hookwatch::tui::form::PolicyForm;
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
        app.mode = Mode::Detail { scroll: 12 };
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
    for (name, state, done) in [
        ("bulk_running", JobState::Running, 420),
        ("bulk_cancelled", JobState::Cancelled, 600),
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
            });
            app
        });
    }
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
