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
