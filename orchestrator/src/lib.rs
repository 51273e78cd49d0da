//! The orchestrator: plans revisions into tasks, publishes them, waits for
//! the workers, and records what the database now holds. `main.rs` only
//! parses arguments; each command lives in its own module.

pub mod driver;
pub mod inspect;
pub mod local_workers;
pub mod lock;
pub mod plan;
pub mod progress;
pub mod revisions;
pub mod search;
