//! Revision ef85393336cb (seed): plans the load of a data directory.
//!
//! Phases: `prepare` (the memory table; staging tables in merge mode), then
//! the tables in foreign-key order ([`seed::PHASES`]), each file split
//! into ranges of `SEED_TASK_ROWS` records on record boundaries (one task
//! per range, so several workers share one file), then `finalize`.
//!
//! All or nothing: when every seeded table is empty at planning time the run
//! is *fresh* (COPY straight into the tables) and a failed run is undone by
//! emptying them again (`SeedPlanner::undo_partial`). Otherwise — a re-run,
//! or rows already there — the run *merges*: the loads go to staging tables
//! and `finalize` upserts all of them in one transaction, so a failed run
//! leaves the tables untouched and undoing it only drops staging.

use super::tasks::{
    self as seed, DowngradePayload, FinalizePayload, HeaderRenames, LoadPayload,
    MemoryTableState, Mode, PreparePayload, SeedFile, SeedTask,
};
use crate::revision::Planner;
use anyhow::{bail, Context};
use shared::catalogue::Role;
use shared::csv_chunks;
use shared::plan::{typed_task, Direction, Phase, PlanContext, PlannedTask};
use shared::store;
use sqlx::PgPool;
use std::collections::HashMap;
use super::source::{self, DataDir, RemoteFile};
use std::path::Path;

pub struct SeedPlanner;

/// What planning a load found: the pure input of [`load_plan`].
#[derive(Debug, Clone)]
pub struct LoadInputs {
    pub mode: Mode,
    pub memory_table: String,
    pub memory_dims: u32,
    pub memory_state: MemoryTableState,
    /// `rerun --prune`.
    pub prune: bool,
    /// In load order ([`seed::PHASES`]).
    pub files: Vec<ScannedFile>,
}

/// One seeded table's file, resolved and scanned.
#[derive(Debug, Clone)]
pub struct ScannedFile {
    pub table: String,
    /// An absolute path or a URL ([`source`]).
    pub file: String,
    /// A remote file's ETag when it was scanned.
    pub etag: Option<String>,
    /// How its header differs from the table (older naming).
    pub header: HeaderRenames,
    pub scan: csv_chunks::Scan,
}

/// The phases of a load, from what the scans found: `prepare`, one phase
/// per group of [`seed::PHASES`] with one task per range of records, then
/// `finalize`.
pub fn load_plan(inputs: &LoadInputs) -> Vec<Phase> {
    let mode = inputs.mode;
    let memory_table = inputs.memory_table.clone();
    let mut phases = vec![Phase::new(
        "prepare",
        vec![PlannedTask::new(
            Role::Seed,
            format!("create the memory table public.{memory_table}"),
            &SeedTask::Prepare(PreparePayload {
                mode,
                memory_table: memory_table.clone(),
                memory_dims: inputs.memory_dims,
            }),
        )],
    )];
    for tables in seed::PHASES {
        let mut tasks = Vec::new();
        for &table in tables {
            let Some(scanned) = inputs.files.iter().find(|f| f.table == table) else {
                continue;
            };
            let name = seed::display_name(Path::new(&scanned.file));
            let mut first_record = 1;
            for chunk in scanned.scan.chunks.iter().copied() {
                let last_record = first_record + chunk.records - 1;
                let label = format!("{name} records {first_record}–{last_record}");
                first_record = last_record + 1;
                tasks.push(PlannedTask::new(
                    Role::Seed,
                    label,
                    &SeedTask::Load(LoadPayload {
                        table: table.to_string(),
                        file: scanned.file.clone(),
                        header: scanned.header.clone(),
                        chunk,
                        file_bytes: scanned.scan.bytes,
                        header_digest: Some(scanned.scan.header_digest),
                        etag: scanned.etag.clone(),
                        header_end: Some(scanned.scan.header.data_start),
                        mode,
                        memory_table: memory_table.clone(),
                    }),
                ));
            }
        }
        phases.push(Phase::new(tables.join(", "), tasks));
    }
    phases.push(Phase::new(
        "finalize",
        vec![PlannedTask::new(
            Role::Seed,
            match (mode, inputs.prune) {
                (Mode::Fresh, _) => "move id sequences past the largest ids, analyse",
                (Mode::Merge, false) => "upsert from staging, move id sequences, analyse",
                (Mode::Merge, true) => {
                    "delete the seeded rows gone from the files, upsert from staging, move id sequences, analyse"
                }
            },
            &SeedTask::Finalize(FinalizePayload {
                mode,
                files: inputs
                    .files
                    .iter()
                    .map(|f| SeedFile {
                        table: f.table.clone(),
                        file: f.file.clone(),
                        header: f.header.clone(),
                        bytes: Some(f.scan.bytes),
                        etag: f.etag.clone(),
                        header_end: Some(f.scan.header.data_start),
                    })
                    .collect(),
                memory_table,
                memory_state: inputs.memory_state,
                prune: inputs.prune,
            }),
        )],
    ));
    phases
}

impl SeedPlanner {
    async fn load(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        let memory_table = ctx.config.memory_table.clone();
        let data_dir = DataDir::parse(&ctx.data_dir)?;
        let mode = match ctx.direction {
            Direction::Rerun => Mode::Merge,
            _ if all_empty(ctx.pool).await? => Mode::Fresh,
            _ => {
                shared::say!("seed: the tables already hold rows, so this run merges (upsert by id) instead of loading fresh");
                Mode::Merge
            }
        };
        let memory_state = memory_table_state(ctx.pool, &memory_table).await?;
        let sources = resolve_files(&data_dir).await?;
        let mut files = Vec::new();
        let mut older = Vec::new();
        for table in seed::tables() {
            let (name, remote) = &sources[table];
            let file = data_dir.join(name);
            let scan = match remote {
                None => scan_file(Path::new(&file), ctx.config.seed_task_rows).await?,
                Some(remote) => scan_remote(&file, remote, ctx.config.seed_task_rows).await?,
            };
            let header = header_renames(table, name, &scan.header.columns);
            if let Some(mapped) = describe_mapping(table, name, &header) {
                older.push(mapped);
            }
            files.push(ScannedFile {
                table: table.to_string(),
                file,
                etag: remote.as_ref().and_then(|r| r.etag.clone()),
                header,
                scan,
            });
        }
        if !older.is_empty() {
            shared::say!(
                "seed: {} is (partly) in the older naming of the original; mapped {}",
                data_dir.shown(),
                older.join("; ")
            );
        }
        Ok(load_plan(&LoadInputs {
            mode,
            memory_table,
            memory_dims: ctx.config.memory_dims,
            memory_state,
            prune: ctx.rerun.prune,
            files,
        }))
    }
}

#[async_trait::async_trait]
impl Planner for SeedPlanner {
    fn prunes(&self) -> bool {
        true
    }

    async fn upgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        self.load(ctx).await
    }

    async fn rerun(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        self.load(ctx).await
    }

    async fn downgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Phase::single(
            "empty seeded tables",
            Role::Seed,
            "empty the seeded tables, drop the memory table",
            &SeedTask::Downgrade(DowngradePayload {
                memory_table: ctx.config.memory_table.clone(),
            }),
        ))
    }

    /// Fresh run: empties the seeded tables (they were empty when it was
    /// planned) and puts the memory table back as it was. Merge run: the
    /// tables were never touched. Both: staging is dropped. One transaction.
    async fn undo_partial(
        &self,
        ctx: &PlanContext<'_>,
        revision_run_id: i64,
    ) -> anyhow::Result<bool> {
        // The plan-wide facts are in the run's finalize task.
        let finalize = store::planned_tasks(ctx.pool, revision_run_id)
            .await?
            .into_iter()
            .find_map(|(kind, payload)| match typed_task(&kind, &payload) {
                Ok(SeedTask::Finalize(finalize)) => Some(finalize),
                _ => None,
            });
        let Some(finalize) = finalize else {
            // A downgrade: nothing partial to undo (its one task commits whole).
            return Ok(false);
        };
        let mut tx = ctx.pool.begin().await?;
        // A session of the shop's holding one of these tables must not keep
        // the orchestrator waiting for ever: past the lock timeout the undo
        // fails, and the run is left to be resumed.
        sqlx::query(&format!(
            "SET LOCAL lock_timeout = '{}s'",
            ctx.config.task_lock_timeout_secs
        ))
        .execute(&mut *tx)
        .await?;
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
            sqlx::query(&format!("TRUNCATE {}", seed::tables_to_empty().join(", ")))
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

/// The file of every seeded table: its current name, or its older one
/// ([`seed::OLDER_SPELLINGS`]). Decided for all tables before any is read,
/// so a directory holding both spellings of a table, or missing one, is
/// refused before anything is planned, let alone written.
async fn resolve_files(
    data_dir: &DataDir,
) -> anyhow::Result<HashMap<&'static str, (String, Option<RemoteFile>)>> {
    // Whether a file of that name is there (and, remote, its size and ETag).
    let mut present: HashMap<String, Option<RemoteFile>> = HashMap::new();
    for table in seed::tables() {
        let names = std::iter::once(seed::file_name(table))
            .chain(seed::older_spelling(table).map(|o| o.file.to_string()));
        for name in names {
            let location = data_dir.join(&name);
            let found = match data_dir {
                DataDir::Local(_) => Path::new(&location).exists().then_some(None),
                DataDir::Remote(_) => source::head(&location).await?.map(Some),
            };
            if let Some(remote) = found {
                present.insert(name, remote);
            }
        }
    }
    let mut files = HashMap::new();
    for table in seed::tables() {
        let current = seed::file_name(table);
        let older = seed::older_spelling(table)
            .map(|o| o.file.to_string())
            .filter(|older| *older != current);
        let name = match (present.contains_key(&current), older) {
            (true, Some(older)) if present.contains_key(&older) => bail!(
                "{} holds both {current} and {older}, two spellings of table {table} (the current and the older naming); \
                 remove or rename one of them, nothing was loaded",
                data_dir.shown(),
            ),
            (false, Some(older)) if present.contains_key(&older) => older,
            (true, _) => current,
            (false, _) => bail!(
                "{} is missing: the seed loads one file per table ({}), all of them required{}",
                data_dir.join(&current),
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
        let remote = present[&name].clone();
        files.insert(table, (name, remote));
    }
    Ok(files)
}

/// The older header names a file uses. Column renames apply whatever the
/// file is called: a `product_reviews.csv` that still says `review_text`
/// would otherwise load every review as NULL (an unknown column is only
/// ignored). Dropped columns are only expected under the older file name.
fn header_renames(table: &str, file_name: &str, header: &[String]) -> HeaderRenames {
    let Some(older) = seed::older_spelling(table) else {
        return HeaderRenames::default();
    };
    let older_file = file_name == older.file;
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
            .filter(|d| older_file && has(d))
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

/// Scans a remote file from a local copy (a record boundary can only be
/// found by reading everything before it), removed once scanned. Messages
/// name the file by its URL.
async fn scan_remote(
    location: &str,
    remote: &RemoteFile,
    records_per_chunk: u64,
) -> anyhow::Result<csv_chunks::Scan> {
    let copy = std::env::temp_dir().join(format!(
        "agenticshop-scan-{}-{}",
        uuid::Uuid::new_v4().simple(),
        seed::display_name(Path::new(location))
    ));
    let scanned = async {
        source::download(location, remote, &copy).await?;
        scan_file(&copy, records_per_chunk).await
    }
    .await;
    let _ = std::fs::remove_file(&copy);
    scanned.map_err(|e| anyhow::anyhow!("{}", format!("{e:#}").replace(&copy.display().to_string(), location)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use shared::csv_chunks::{Chunk, Header, Scan};

    fn scan(records_per_chunk: &[u64]) -> Scan {
        let mut start = 10;
        let mut line = 2;
        let chunks = records_per_chunk
            .iter()
            .map(|&records| {
                let chunk = Chunk {
                    start,
                    end: start + records * 10,
                    first_line: line,
                    records,
                    digest: Some(start),
                };
                start = chunk.end;
                line += records;
                chunk
            })
            .collect();
        Scan {
            header: Header {
                columns: vec!["id".into()],
                data_start: 10,
                data_line: 2,
            },
            chunks,
            records: records_per_chunk.iter().sum(),
            bytes: start,
            header_digest: 0,
        }
    }

    fn inputs(mode: Mode) -> LoadInputs {
        LoadInputs {
            mode,
            memory_table: "mem0_memories".into(),
            memory_dims: 384,
            memory_state: MemoryTableState::Missing,
            prune: false,
            files: seed::tables()
                .map(|t| {
                    let records: &[u64] = if t == seed::PHASES[1][1] { &[3, 3, 1] } else { &[2] };
                    ScannedFile {
                        table: t.to_string(),
                        file: format!("/data/{t}.csv"),
                        etag: None,
                        header: HeaderRenames::default(),
                        scan: scan(records),
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn a_load_is_prepare_then_the_tables_in_foreign_key_order_then_finalize() {
        let phases = load_plan(&inputs(Mode::Fresh));
        assert_eq!(phases.len(), seed::PHASES.len() + 2);
        assert_eq!(phases[0].name, "prepare");
        assert_eq!(phases.last().unwrap().name, "finalize");
        for (i, tables) in seed::PHASES.iter().enumerate() {
            assert_eq!(phases[i + 1].name, tables.join(", "));
        }
        let kinds: Vec<&str> = phases.iter().flat_map(|p| p.tasks.iter().map(|t| t.kind.as_str())).collect();
        assert_eq!(kinds.first(), Some(&"prepare"));
        assert_eq!(kinds.last(), Some(&"finalize"));
        assert!(kinds[1..kinds.len() - 1].iter().all(|k| *k == "load"));
    }

    #[test]
    fn a_big_file_becomes_one_task_per_range_labelled_by_record_numbers() {
        let phases = load_plan(&inputs(Mode::Merge));
        let big = seed::PHASES[1][1];
        let labels: Vec<&str> = phases[2]
            .tasks
            .iter()
            .filter(|t| t.payload["table"] == big)
            .map(|t| t.label.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                format!("{big}.csv records 1–3"),
                format!("{big}.csv records 4–6"),
                format!("{big}.csv records 7–7"),
            ]
        );
        let load = &phases[2].tasks.iter().find(|t| t.payload["table"] == big).unwrap().payload;
        assert_eq!(load["mode"], "merge");
        assert_eq!(load["file"], format!("/data/{big}.csv"));
    }

    #[test]
    fn finalize_carries_every_file_in_load_order_and_reads_back_typed() {
        let phases = load_plan(&inputs(Mode::Fresh));
        let task = &phases.last().unwrap().tasks[0];
        let Ok(SeedTask::Finalize(finalize)) = typed_task(&task.kind, &task.payload) else {
            panic!("finalize reads back as SeedTask::Finalize");
        };
        let tables: Vec<&str> = finalize.files.iter().map(|f| f.table.as_str()).collect();
        assert_eq!(tables, seed::tables().collect::<Vec<_>>());
        assert_eq!(finalize.mode, Mode::Fresh);
    }

    #[test]
    fn the_truncate_list_names_the_dependents_first_then_reverse_load_order() {
        let list = seed::tables_to_empty();
        assert_eq!(list.len(), seed::DEPENDENTS.len() + seed::tables().count());
        assert_eq!(list[0], format!("public.{}", seed::DEPENDENTS[0]));
        assert_eq!(list.last().unwrap(), &format!("public.{}", seed::PHASES[0][0]));
    }

    #[test]
    fn an_older_column_name_is_mapped_even_under_the_current_file_name() {
        let header = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mixed = header_renames(
            "product_reviews",
            "product_reviews.csv",
            &header(&["id", "product_id", "review_text", "rating"]),
        );
        assert_eq!(
            mixed.renamed,
            vec![("review_text".to_string(), "review".to_string())]
        );
        let both = header_renames(
            "product_reviews",
            "product_reviews.csv",
            &header(&["id", "review", "review_text"]),
        );
        assert!(both.renamed.is_empty(), "a current column is never replaced");
        let current = header_renames(
            "product_features",
            "product_features.csv",
            &header(&["id", "product_id", "feature_id"]),
        );
        assert!(current.is_empty());
    }
}
