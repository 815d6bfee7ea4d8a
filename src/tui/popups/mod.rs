//! The popups drawn over the panes for the app's [`Mode`](super::app::Mode), one
//! module each, each with a `draw` that clears its rectangle and reads only
//! what it is given.

pub mod bulk;
pub mod confirm;
pub mod destination_form;
pub mod detail;
pub mod filter_prompt;
pub mod help;
pub mod jobs;
pub mod notices;
pub mod policy_form;

use crate::tui::layout::centered;
use ratatui::layout::Rect;

/// The rectangle of a list popup (notices, bulk jobs): nearly the whole
/// screen, at most 150 columns wide.
pub(super) fn list_popup_rect(area: Rect) -> Rect {
    centered(
        area,
        area.width.saturating_sub(4).min(150),
        area.height.saturating_sub(2),
    )
}

/// The rows of a list popup at a terminal of `size`, under its borders, the
/// summary line and the rule, above `detail_lines` about the selected one and
/// the keys line (for paging).
pub(super) fn list_popup_rows(size: (u16, u16), detail_lines: u16) -> usize {
    let rect = list_popup_rect(Rect::new(0, 0, size.0, size.1));
    rect.height.saturating_sub(2 + 1 + 1 + detail_lines + 1) as usize
}
