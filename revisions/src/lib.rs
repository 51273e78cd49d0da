//! The revisions this version can run, one folder each:
//!
//! ```text
//! src/<name>/mod.rs   the revision (its id), its typed task enum, its executor
//! src/<name>/plan.rs  its planner (upgrade / downgrade / rerun phases and tasks)
//! src/<name>/*.sql    its SQL, named after the revision
//! ```
//!
//! and one line per revision in [`registry`] (which also declares the
//! folder's module). The task enum of a revision is
//! tagged by `kind` (`#[serde(tag = "kind")]`): the planner builds
//! [`shared::plan::PlannedTask`]s from it and the executor reads it back with
//! [`shared::exec::ClaimedTask::typed`], so each kind string is written once.
//!
//! This crate depends on `shared` only; the orchestrator (which plans) and
//! the workers (which execute) both depend on it, and not on each other.

pub mod noop;
mod ranges;
pub mod registry;
mod revision;

pub use registry::{embeddings, enrichment, extensions, graph, schema, seed};
pub use revision::{Executor, Planner, Revision};
