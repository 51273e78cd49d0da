//! The contract between the orchestrator and the workers: configuration,
//! the revision catalogue, task messages, and the database and queue helpers
//! both sides use. No role-specific logic lives here.

pub mod backoff;
pub mod catalogue;
pub mod config;
pub mod csv_chunks;
pub mod db;
pub mod logging;
pub mod queue;
pub mod seed;
pub mod task;

pub use catalogue::Role;
pub use config::Config;
