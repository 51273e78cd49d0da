//! The seed revision's tasks ([`SeedTask`], shared by the planner in
//! `plan.rs` and the executor in `mod.rs`) and the names both sides derive
//! from them.

use shared::csv_chunks::Chunk;
use serde::{Deserialize, Serialize};

/// The seeded tables in load order, phase by phase (foreign keys point from a
/// later phase to an earlier one).
pub const PHASES: [&[&str]; 3] = [
    &["users", "product", "features"],
    &["product_features", "review", "product_image", "variants"],
    &["variant_attributes"],
];

/// Every seeded table, in load order.
pub fn tables() -> impl DoubleEndedIterator<Item = &'static str> {
    PHASES.iter().flat_map(|phase| phase.iter().copied())
}

/// Tables the seed is not loading but that reference seeded ones (`ON
/// DELETE CASCADE`): emptying the seeded tables must name them too.
pub const DEPENDENT_TABLES: [&str; 1] = ["personalized_product_section"];

/// Every table emptied when the seed is undone, qualified, dependents first
/// then the reverse of load order (the one list both the downgrade and the
/// undo of a failed fresh run use).
pub fn tables_to_empty() -> Vec<String> {
    DEPENDENT_TABLES
        .iter()
        .copied()
        .chain(tables().rev())
        .map(|t| format!("public.{t}"))
        .collect()
}

/// The seed's tasks, phase by phase: `prepare`, then `load` per range of
/// records, then `finalize`; `downgrade` alone undoes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SeedTask {
    Prepare(PreparePayload),
    Load(LoadPayload),
    Finalize(FinalizePayload),
    Downgrade(DowngradePayload),
}

/// How a run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every seeded table was empty when the run was planned: `COPY` straight
    /// into them; a failed run is undone by emptying them again.
    Fresh,
    /// Some rows were already there (or it is a re-run): `COPY` into staging
    /// tables, then upsert by id from all of them in one transaction, so a
    /// failed run leaves the tables untouched.
    Merge,
}

/// One range of records of one file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadPayload {
    pub table: String,
    /// Absolute path, which every worker machine must see as the orchestrator does.
    pub file: String,
    pub chunk: Chunk,
    /// Size of the file when the run was planned: a worker that sees
    /// another size is not reading the file the ranges were cut from.
    pub file_bytes: u64,
    pub mode: Mode,
    /// Where `users.preferences` go (`public.<memory_table>`).
    pub memory_table: String,
}

/// Phase 0: the memory table (and staging tables in merge mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreparePayload {
    pub mode: Mode,
    pub memory_table: String,
    pub memory_dims: u32,
}

/// The memory table as the planner found it, so that a failed fresh run can
/// leave it as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemoryTableState {
    Missing,
    Empty,
    NotEmpty,
}

/// Last phase: apply staging (merge), move sequences, analyse.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinalizePayload {
    pub mode: Mode,
    /// `(table, absolute file path)` in load order.
    pub files: Vec<(String, String)>,
    pub memory_table: String,
    pub memory_state: MemoryTableState,
}

/// Downgrade: empty the seeded tables, drop the memory table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DowngradePayload {
    pub memory_table: String,
}

/// The staging table of `table` for one revision run (merge mode). The name
/// is built from a number and a table name of [`PHASES`] only.
pub fn staging_table(revision_run_id: i64, table: &str) -> String {
    format!("pipeline.seed_{revision_run_id}_{table}")
}

/// Staging for the memories of a merge run.
pub fn staging_memories(revision_run_id: i64) -> String {
    format!("pipeline.seed_{revision_run_id}_memories")
}

/// `LIKE` pattern matching every staging table of a revision run (in
/// `pg_tables.tablename`, schema `pipeline`).
pub fn staging_pattern(revision_run_id: i64) -> String {
    format!("seed\\_{revision_run_id}\\_%")
}
