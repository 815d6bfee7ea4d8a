//! The one harness every integration test uses: deadline-based waiting
//! (`wait`), a scripted webhook receiver (`receiver`), a typed config builder
//! rendered to TOML in one place (`config`), the real binary as a subprocess
//! (`daemon`), the real engine in-process on virtual time (`engine`) and the
//! two stores a behavioural test runs on (`stores`, `both_stores!`).
//!
//! Every test binary uses a different subset of these helpers.
#![allow(dead_code, unused_imports)]

pub mod config;
pub mod daemon;
pub mod engine;
pub mod receiver;
pub mod stores;
pub mod wait;

pub use config::{Alerts, Dest, Retry, TestConfig};
pub use daemon::*;
pub use engine::{epoch, Harness};
pub use receiver::{Hit, Receiver, Reply};
pub(crate) use stores::both_stores;
pub use stores::TestStore;
pub use wait::*;
