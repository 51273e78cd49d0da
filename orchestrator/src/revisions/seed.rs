//! Revision ef85393336cb (seed): plans the load of a data directory.
//!
//! Phases: `prepare` (the memory table; staging tables in merge mode), then
//! the tables in foreign-key order (`shared::seed::PHASES`), each file split
//! into ranges of `SEED_TASK_ROWS` records on record boundaries (one task
//! per range, so several workers share one file), then `finalize`.
//!
//! All or nothing: when every seeded table is empty at planning time the run
//! is *fresh* (COPY straight into the tables) and a failed run is undone by
//! emptying them again ([`SeedPlanner::undo_partial`]). Otherwise — a re-run,
//! or rows already there — the run *merges*: the loads go to staging tables
//! and `finalize` upserts all of them in one transaction, so a failed run
//! leaves the tables untouched and undoing it only drops staging.

use super::Planner;
use crate::plan::{Direction, Phase, PlanContext, PlannedTask};
use anyhow::{bail, Context};
use shared::catalogue::Role;
use shared::csv_chunks;
use shared::seed::{
    self, DowngradePayload, FinalizePayload, HeaderRenames, LoadPayload, MemoryTableState, Mode,
    PreparePayload, SeedFile,
};
use sqlx::PgPool;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct SeedPlanner;

#[async_trait::async_trait]
impl Planner for SeedPlanner {
    async fn plan(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        let memory_table = ctx.config.memory_table.clone();
        if ctx.direction == Direction::Downgrade {
            let payload = serde_json::to_value(DowngradePayload { memory_table })?;
            return Ok(vec![Phase::new(
                "empty seeded tables",
                vec![PlannedTask::new(
                    Role::Seed,
                    "downgrade",
                    "empty the seeded tables, drop the memory table",
                    payload,
                )],
            )]);
        }
        let data_dir = data_dir(&ctx.data_dir)?;
        let mode = match ctx.direction {
            Direction::Rerun => Mode::Merge,
            _ if all_empty(ctx.pool).await? => Mode::Fresh,
            _ => {
                eprintln!("seed: the tables already hold rows, so this run merges (upsert by id) instead of loading fresh");
                Mode::Merge
            }
        };
        let memory_state = memory_table_state(ctx.pool, &memory_table).await?;

        let sources = resolve_files(&data_dir)?;
        let mut files = Vec::new();
        let mut older = Vec::new();
        let mut phases = vec![Phase::new(
            "prepare",
            vec![PlannedTask::new(
                Role::Seed,
                "prepare",
                format!("create the memory table public.{memory_table}"),
                serde_json::to_value(PreparePayload {
                    mode,
                    memory_table: memory_table.clone(),
                    memory_dims: ctx.config.memory_dims,
                })?,
            )],
        )];
        for tables in seed::PHASES {
            let mut tasks = Vec::new();
            for &table in tables {
                let file = sources[table].clone();
                let scan = scan_file(&file, ctx.config.seed_task_rows).await?;
                let header = header_renames(table, &file, &scan.header.columns);
                let shown = seed::display_name(&file);
                if let Some(mapped) = describe_mapping(table, &shown, &header) {
                    older.push(mapped);
                }
                let mut first_record = 1;
                for chunk in scan.chunks.iter().copied() {
                    let last_record = first_record + chunk.records - 1;
                    let label = format!("{shown} records {first_record}–{last_record}");
                    first_record = last_record + 1;
                    tasks.push(PlannedTask::new(
                        Role::Seed,
                        "load",
                        label,
                        serde_json::to_value(LoadPayload {
                            table: table.to_string(),
                            file: file.display().to_string(),
                            header: header.clone(),
                            chunk,
                            file_bytes: scan.bytes,
                            mode,
                            memory_table: memory_table.clone(),
                        })?,
                    ));
                }
                files.push(SeedFile {
                    table: table.to_string(),
                    file: file.display().to_string(),
                    header,
                });
            }
            phases.push(Phase::new(tables.join(", "), tasks));
        }
        if !older.is_empty() {
            eprintln!(
                "seed: {} is (partly) in the older naming of the original; mapped {}",
                data_dir.display(),
                older.join("; ")
            );
        }
        phases.push(Phase::new(
            "finalize",
            vec![PlannedTask::new(
                Role::Seed,
                "finalize",
                match mode {
                    Mode::Fresh => "move id sequences past the largest ids, analyse".to_string(),
                    Mode::Merge => "upsert from staging, move id sequences, analyse".to_string(),
                },
                serde_json::to_value(FinalizePayload {
                    mode,
                    files,
                    memory_table,
                    memory_state,
                })?,
            )],
        ));
        Ok(phases)
    }

    /// Fresh run: empties the seeded tables (they were empty when it was
    /// planned) and puts the memory table back as it was. Merge run: the
    /// tables were never touched. Both: staging is dropped. One transaction.
    async fn undo_partial(
        &self,
        ctx: &PlanContext<'_>,
        revision_run_id: i64,
    ) -> anyhow::Result<bool> {
        let payload: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT payload FROM pipeline.tasks WHERE revision_run_id = $1 AND kind = 'finalize' LIMIT 1",
        )
        .bind(revision_run_id)
        .fetch_optional(ctx.pool)
        .await?;
        let Some(payload) = payload else {
            // A downgrade: nothing partial to undo (its one task commits whole).
            return Ok(false);
        };
        let finalize: FinalizePayload = serde_json::from_value(payload)?;
        let mut tx = ctx.pool.begin().await?;
        if finalize.mode == Mode::Fresh {
            let memory = format!("public.{}", finalize.memory_table);
            let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                .bind(&memory)
                .fetch_one(&mut *tx)
                .await?;
            if exists {
                let sql = match finalize.memory_state {
                    MemoryTableState::Missing => format!("DROP TABLE {memory}"),
                    MemoryTableState::Empty => format!("TRUNCATE {memory}"),
                    MemoryTableState::NotEmpty => {
                        format!("DELETE FROM {memory} WHERE payload->>'user_id' IN (SELECT id::text FROM public.users)")
                    }
                };
                sqlx::query(&sql).execute(&mut *tx).await?;
            }
            // The dependents reference users and products: they must be
            // named too, and were empty, since those were.
            let tables: Vec<String> = seed::DEPENDENTS
                .into_iter()
                .chain(seed::tables().rev())
                .map(|t| format!("public.{t}"))
                .collect();
            sqlx::query(&format!("TRUNCATE {}", tables.join(", ")))
                .execute(&mut *tx)
                .await
                .context("emptying the tables the failed seed had started to fill")?;
        }
        let staging: Vec<String> = sqlx::query_scalar(
            "SELECT 'pipeline.' || quote_ident(tablename) FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE $1",
        )
        .bind(seed::staging_pattern(revision_run_id))
        .fetch_all(&mut *tx)
        .await?;
        if !staging.is_empty() {
            sqlx::query(&format!("DROP TABLE IF EXISTS {}", staging.join(", ")))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// The data directory as an absolute path (workers resolve it on their own
/// machines, from their own working directories).
fn data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::fs::canonicalize(dir).with_context(|| {
        format!(
            "the data directory {} does not exist or cannot be read; point --data-dir or DATA_DIR at the folder of CSV files",
            dir.display()
        )
    })?;
    if !absolute.is_dir() {
        bail!("the data directory {} is not a folder", absolute.display());
    }
    Ok(absolute)
}

/// The file of every seeded table: its current name, or its older one
/// ([`seed::OLDER_SPELLINGS`]). Decided for all tables before any is read,
/// so a directory holding both spellings of a table, or missing one, is
/// refused before anything is planned, let alone written.
fn resolve_files(data_dir: &Path) -> anyhow::Result<HashMap<&'static str, PathBuf>> {
    let mut files = HashMap::new();
    for table in seed::tables() {
        let current = data_dir.join(seed::file_name(table));
        let older = seed::older_spelling(table)
            .map(|o| data_dir.join(o.file))
            .filter(|older| *older != current);
        let file = match (current.exists(), older) {
            (true, Some(older)) if older.exists() => bail!(
                "{} holds both {} and {}, two spellings of table {table} (the current and the older naming); \
                 remove or rename one of them, nothing was loaded",
                data_dir.display(),
                seed::display_name(&current),
                seed::display_name(&older)
            ),
            (false, Some(older)) if older.exists() => older,
            (true, _) => current,
            (false, _) => bail!(
                "{} is missing: the seed loads one file per table ({}), all of them required{}",
                current.display(),
                seed::tables()
                    .map(seed::file_name)
                    .collect::<Vec<_>>()
                    .join(", "),
                seed::older_spelling(table)
                    .filter(|o| o.file != seed::file_name(table))
                    .map(|o| format!(" (the older naming {} is accepted too)", o.file))
                    .unwrap_or_default()
            ),
        };
        files.insert(table, file);
    }
    Ok(files)
}

/// The older header names a file uses, when it is in the older naming.
fn header_renames(table: &str, file: &Path, header: &[String]) -> HeaderRenames {
    let Some(older) = seed::older_spelling(table) else {
        return HeaderRenames::default();
    };
    if seed::display_name(file) != older.file {
        return HeaderRenames::default();
    }
    let has = |name: &str| header.iter().any(|h| h == name);
    HeaderRenames {
        renamed: older
            .renamed
            .iter()
            .filter(|(older, current)| has(older) && !has(current))
            .map(|(older, current)| (older.to_string(), current.to_string()))
            .collect(),
        dropped: older
            .dropped
            .iter()
            .filter(|d| has(d))
            .map(|d| d.to_string())
            .collect(),
    }
}

/// `review.csv → product_reviews (column review_text → review)`, or `None`
/// for a file in the current naming.
fn describe_mapping(table: &str, shown: &str, header: &HeaderRenames) -> Option<String> {
    let renamed_file = shown != seed::file_name(table);
    if !renamed_file && header.is_empty() {
        return None;
    }
    let mut details: Vec<String> = header
        .renamed
        .iter()
        .map(|(older, current)| format!("column {older} → {current}"))
        .collect();
    details.extend(
        header
            .dropped
            .iter()
            .map(|d| format!("column {d} ignored (no table column)")),
    );
    let mut line = if renamed_file {
        format!("{shown} → {table}")
    } else {
        shown.to_string()
    };
    if !details.is_empty() {
        line.push_str(&format!(" ({})", details.join(", ")));
    }
    Some(line)
}

async fn scan_file(file: &Path, records_per_chunk: u64) -> anyhow::Result<csv_chunks::Scan> {
    let owned = file.to_path_buf();
    tokio::task::spawn_blocking(move || csv_chunks::scan(&owned, records_per_chunk))
        .await
        .context("the CSV scanner panicked")?
}

async fn all_empty(pool: &PgPool) -> anyhow::Result<bool> {
    let probes: Vec<String> = seed::tables()
        .map(|t| format!("EXISTS (SELECT 1 FROM public.{t})"))
        .collect();
    let any: bool = sqlx::query_scalar(&format!("SELECT {}", probes.join(" OR ")))
        .fetch_one(pool)
        .await
        .context(
            "looking whether the seeded tables hold rows (is revision 1b33292593a9 applied?)",
        )?;
    Ok(!any)
}

async fn memory_table_state(pool: &PgPool, memory_table: &str) -> anyhow::Result<MemoryTableState> {
    let name = format!("public.{memory_table}");
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&name)
        .fetch_one(pool)
        .await?;
    if !exists {
        return Ok(MemoryTableState::Missing);
    }
    let any: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {name})"))
        .fetch_one(pool)
        .await?;
    Ok(if any {
        MemoryTableState::NotEmpty
    } else {
        MemoryTableState::Empty
    })
}
