//! The one harness every integration test uses: deadline-based waiting
//! (`wait`), a scripted webhook receiver (`receiver`), a typed config builder
//! rendered to TOML in one place (`config`), the real binary as a subprocess
//! (`daemon`) and the real engine in-process on virtual time (`engine`).
//!
//! Every test binary uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod config;
pub mod daemon;
pub mod engine;
pub mod receiver;
pub mod wait;

pub use config::{Alerts, Dest, Retry, TestConfig};
pub use daemon::*;
pub use engine::{epoch, Harness};
pub use receiver::{Hit, Receiver, Reply};
pub use wait::*;
