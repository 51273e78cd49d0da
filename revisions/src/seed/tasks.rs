//! The seed revision's tasks ([`SeedTask`], shared by the planner in
//! `plan.rs` and the executor in `mod.rs`) and the names both sides derive
//! from them.

use shared::csv_chunks::Chunk;
use serde::{Deserialize, Serialize};

/// The seeded tables in load order, phase by phase (foreign keys point from a
/// later phase to an earlier one).
pub const PHASES: [&[&str]; 3] = [
    &["users", "products", "features"],
    &[
        "product_features",
        "product_reviews",
        "product_images",
        "variants",
    ],
    &["variant_attributes"],
];

/// Every seeded table, in load order.
pub fn tables() -> impl DoubleEndedIterator<Item = &'static str> {
    PHASES.iter().flat_map(|phase| phase.iter().copied())
}

/// The tables that reference seeded tables without being seeded: emptying
/// the seeded tables must name them too.
pub const DEPENDENTS: [&str; 1] = ["personalized_product_sections"];

/// How a data directory written for the older version of the original
/// spells one table: its file name and the header columns that differ.
#[derive(Debug, Clone, Copy)]
pub struct OlderSpelling {
    pub table: &'static str,
    pub file: &'static str,
    /// `(older header name, current column)`.
    pub renamed: &'static [(&'static str, &'static str)],
    /// Older columns that are no table column (dropped without a word of
    /// their own: the planner's one mapping line names them).
    pub dropped: &'static [&'static str],
}

/// The four tables the older naming spells differently (data/README.md).
/// `product_features.csv` keeps its name; only its extra column tells.
pub const OLDER_SPELLINGS: [OlderSpelling; 4] = [
    OlderSpelling {
        table: "products",
        file: "product.csv",
        renamed: &[],
        dropped: &[],
    },
    OlderSpelling {
        table: "product_reviews",
        file: "review.csv",
        renamed: &[("review_text", "review")],
        dropped: &[],
    },
    OlderSpelling {
        table: "product_images",
        file: "product_image.csv",
        renamed: &[],
        dropped: &[],
    },
    OlderSpelling {
        table: "product_features",
        file: "product_features.csv",
        renamed: &[],
        dropped: &["feature_name"],
    },
];

/// The current file name of a seeded table.
pub fn file_name(table: &str) -> String {
    format!("{table}.csv")
}

/// A data file's name as it is on disk (older or current naming), for messages.
pub fn display_name(file: &std::path::Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn older_spelling(table: &str) -> Option<&'static OlderSpelling> {
    OLDER_SPELLINGS.iter().find(|o| o.table == table)
}

/// How the header of one file differs from its table, as the planner found
/// it: empty for a file in the current naming.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRenames {
    /// `(header name, table column)`.
    #[serde(default)]
    pub renamed: Vec<(String, String)>,
    /// Header names that are known older columns, ignored silently.
    #[serde(default)]
    pub dropped: Vec<String>,
}

impl HeaderRenames {
    /// The table column a header name stands for (`None`: dropped).
    pub fn column<'a>(&'a self, header: &'a str) -> Option<&'a str> {
        if self.dropped.iter().any(|d| d == header) {
            return None;
        }
        Some(
            self.renamed
                .iter()
                .find(|(older, _)| older == header)
                .map_or(header, |(_, current)| current.as_str()),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.renamed.is_empty() && self.dropped.is_empty()
    }
}

/// One seeded table's file, as the planner resolved it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub table: String,
    /// An absolute path, which every worker machine must see as the
    /// orchestrator does, or an `s3://` / `http(s)://` URL.
    pub file: String,
    #[serde(default)]
    pub header: HeaderRenames,
    /// Size, ETag (remote files) and header length when planned: what a
    /// worker needs to read the header of a remote file as it was planned.
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub header_end: Option<u64>,
}

/// Every table emptied when the seed is undone, qualified, dependents first
/// then the reverse of load order (the one list both the downgrade and the
/// undo of a failed fresh run use).
pub fn tables_to_empty() -> Vec<String> {
    DEPENDENTS
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
    /// An absolute path, which every worker machine must see as the
    /// orchestrator does, or an `s3://` / `http(s)://` URL.
    pub file: String,
    #[serde(default)]
    pub header: HeaderRenames,
    pub chunk: Chunk,
    /// Size of the file when the run was planned: a worker that sees
    /// another size is not reading the file the ranges were cut from.
    pub file_bytes: u64,
    /// Content hash of the file's header when the run was planned (its
    /// range's own is `chunk.digest`): a worker that reads other bytes
    /// fails the task instead of loading them. `None`: planned before.
    #[serde(default)]
    pub header_digest: Option<u64>,
    /// A remote file's ETag when it was planned: every read is conditional on it.
    #[serde(default)]
    pub etag: Option<String>,
    /// Byte offset of the first data record: a worker reading a remote file
    /// fetches `[0, header_end)` and its own range, nothing else.
    #[serde(default)]
    pub header_end: Option<u64>,
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
    /// In load order.
    pub files: Vec<SeedFile>,
    pub memory_table: String,
    pub memory_state: MemoryTableState,
    /// `rerun seed --prune` (merge mode): also delete the rows, among those
    /// the seed loaded, that are gone from the files.
    #[serde(default)]
    pub prune: bool,
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

/// Which ids of each seeded table the seed loaded (`table_name`,
/// `ids int4multirange`): what `--prune` may delete, so that rows the shop
/// inserted itself are never touched. Written by each finalize, in the same
/// transaction as the rows.
pub const LOADED_IDS: &str = "pipeline.loaded_seed_ids";

/// `LIKE` pattern matching every staging table of a revision run (in
/// `pg_tables.tablename`, schema `pipeline`).
pub fn staging_pattern(revision_run_id: i64) -> String {
    format!("seed\\_{revision_run_id}\\_%")
}
