//! hookwatch: a webhook delivery engine with a durable embedded store.
//!
//! Data flows `api` → `engine` (ingest) → `store` (group commit) → the engine's
//! dispatchers → `engine::deliver`, with `policy::decide` judging every attempt.
//! `api`, `tui` and `cli` are front ends over one interface, [`control::Control`]
//! (`api/ | tui/ | cli/ ─▶ Control ─▶ engine`); only `daemon`, `demo` and `main`
//! start the engine itself.

pub mod api;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod mask;
pub mod model;
pub mod policy;
pub mod store;
pub mod tui;
