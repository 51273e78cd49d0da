//! The orchestrator: plans revisions into tasks, publishes them, waits for
//! the workers, and records what the database now holds. `main.rs` only
//! parses arguments and reports; moving the database is [`migrate::run`],
//! the plans come from the `revisions` crate's registry, and each other
//! command lives in its own module.

pub mod driver;
pub mod inspect;
pub mod local_workers;
pub mod lock;
pub mod migrate;
pub mod offline;
pub mod progress;
pub mod schedule;
pub mod search;

/// The plan types, where the benchmarks look for them.
pub use shared::plan;
