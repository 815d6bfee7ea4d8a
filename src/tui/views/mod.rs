//! The panes of the main screen, one module each, each with
//! `draw(&App, frame, area)`: they read the app and never change it.

pub mod attempts;
pub mod destination;
pub mod destinations;
pub mod events;
pub mod footer;
pub mod guide;
pub mod header;
pub mod too_small;
