//! One load task: a range of records of one file, `COPY`ed into its table
//! (fresh mode) or its staging table (merge mode) inside the task's
//! completing transaction, so the rows and the task's `done` commit together
//! and a redelivered task never loads twice.
//!
//! A blocking thread parses and encodes ([`super::encode`]); this side sends
//! its buffers through a small channel (back-pressure keeps memory flat).
//! Bad input comes back as a [`Permanent`] error naming file, line, column
//! and what was expected; constraint errors from the server (an unknown
//! foreign key, a duplicate id) are traced back to their lines by reading
//! the range again.

use super::encode::{self, FieldError, Mapping, ERROR_CAP};
use super::source::{self, LocalView, RemoteFile};
use super::tables;
use super::tasks::{self as seed, LoadPayload, Mode};
use anyhow::Context as _;
use shared::csv_chunks::{self, Chunk};
use shared::exec::{Completed, Permanent, TaskContext};
use sqlx::postgres::PgDatabaseError;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::HashSet;
use std::path::Path;

pub async fn execute(ctx: TaskContext<'_>, payload: LoadPayload) -> anyhow::Result<Completed> {
    let table = tables::find(&payload.table)
        .ok_or_else(|| Permanent::new(format!("unknown seed table {:?}", payload.table)))?;
    let planned = RemoteFile {
        bytes: payload.file_bytes,
        etag: payload.etag.clone(),
    };
    // The header and this task's range: all a worker reads of a remote file
    // (a task planned without `header_end` reads everything before its range).
    let chunk = payload.chunk;
    let header_end = payload.header_end.unwrap_or(chunk.start);
    let view = source::open(&payload.file, &planned, &[0..header_end, chunk.start..chunk.end]).await?;
    let path = view.path.clone();
    let header = read_header(&path).await?;
    verify_identity(&view, &payload, header.data_start).await?;
    let mapping = Mapping::new(
        table,
        &seed::display_name(&path),
        &header.columns,
        &payload.header,
    )
    .map_err(Permanent::new)?;
    if payload.chunk.start == header.data_start && !mapping.ignored.is_empty() {
        tracing::info!(
            "{}: ignoring column(s) {} (public.{} has no such column)",
            mapping.file,
            mapping.ignored.join(", "),
            table.name
        );
    }
    let (target, line_column) = match payload.mode {
        Mode::Fresh => (format!("public.{}", table.name), ""),
        Mode::Merge => (
            seed::staging_table(ctx.task.revision_run_id, table.name),
            ", _line",
        ),
    };
    let statement = format!(
        "COPY {target} ({}{line_column}) FROM STDIN",
        mapping.column_list()
    );

    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(2);
    let encoder = {
        let (path, chunk, mapping) = (path.clone(), payload.chunk, mapping.clone());
        let merge = payload.mode == Mode::Merge;
        tokio::task::spawn_blocking(move || {
            encode::encode(&path, &chunk, &mapping, merge, |buf| {
                sender.blocking_send(buf).is_ok()
            })
        })
    };

    let mut tx = ctx.conn.begin().await?;
    let mut copy = tx
        .copy_in_raw(&statement)
        .await
        .with_context(|| format!("starting {statement}"))?;
    let mut send_error = None;
    while let Some(buf) = receiver.recv().await {
        if let Err(e) = copy.send(buf).await {
            send_error = Some(e);
            break;
        }
    }
    drop(receiver);
    let encoded = encoder.await.context("the CSV encoder thread panicked")??;
    if let Some(e) = send_error {
        return Err(
            anyhow::Error::new(e).context(format!("sending {} to the database", mapping.file))
        );
    }
    if !encoded.errors.is_empty() {
        copy.abort("bad input").await.ok();
        return Err(Permanent::new(describe_errors(
            &mapping.file,
            &encoded.errors,
            encoded.truncated,
        ))
        .into());
    }
    let rows = match copy.finish().await {
        Ok(rows) => rows,
        Err(e) => return Err(explain_db_error(e, ctx.pool, &mapping, &path, &payload).await),
    };
    if !encoded.memories.is_empty() {
        write_memories(
            &mut tx,
            &payload,
            ctx.task.revision_run_id,
            &encoded.memories,
        )
        .await?;
    }
    ctx.task.complete(tx, rows as i64).await
}

/// Fails the task, before anything is loaded, when the bytes of the file's
/// header or of the task's range are not those the planner hashed: the
/// file was edited since (even keeping its size and modification time).
async fn verify_identity(view: &LocalView, payload: &LoadPayload, data_start: u64) -> anyhow::Result<()> {
    let (owned, chunk) = (view.path.clone(), payload.chunk);
    let (header, range) = tokio::task::spawn_blocking(move || {
        anyhow::Ok((
            csv_chunks::digest(&owned, 0, data_start)?,
            csv_chunks::digest(&owned, chunk.start, chunk.end)?,
        ))
    })
    .await
    .context("the file hasher panicked")??;
    let changed = if payload.header_digest.is_some_and(|d| d != header) {
        Some("its header".to_string())
    } else if chunk.digest.is_some_and(|d| d != range) {
        Some(format!(
            "the range of records from line {} (bytes {}–{})",
            chunk.first_line, chunk.start, chunk.end
        ))
    } else {
        None
    };
    match changed {
        None => Ok(()),
        Some(what) => Err(Permanent::new(format!(
            "{} changed since the seed was planned: {what} holds other content at the same file size; \
             nothing of it was loaded; run the command again to plan afresh from the file as it is now",
            view.shown
        ))
        .into()),
    }
}

/// The header of a file opened by [`source::open`]; bad input there is a
/// permanent error.
pub async fn read_header(path: &Path) -> anyhow::Result<csv_chunks::Header> {
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || csv_chunks::read_header(&owned))
        .await
        .context("the header reader panicked")?
        .map_err(|e| Permanent::new(format!("{e:#}")).into())
}

fn describe_errors(file: &str, errors: &[FieldError], truncated: bool) -> String {
    let mut message = format!("{file} has {} bad record(s)", errors.len());
    if truncated {
        message = format!("{file} has more than {ERROR_CAP} bad records; the first {ERROR_CAP}");
    }
    message.push(':');
    for error in errors {
        message.push_str(&format!("\n    {file} {error}"));
    }
    message
}

/// Memories of the users of this range: one per preference, with a
/// deterministic id (so a re-run or a redelivered task writes the same
/// rows). Fresh mode writes them to the memory table in this transaction;
/// merge mode to staging, applied by the finalize task.
async fn write_memories(
    conn: &mut PgConnection,
    payload: &LoadPayload,
    revision_run_id: i64,
    memories: &[(i32, Vec<String>)],
) -> anyhow::Result<()> {
    let mut ids = Vec::new();
    let mut users = Vec::new();
    let mut texts = Vec::new();
    for (user, preferences) in memories {
        for (index, text) in preferences.iter().enumerate() {
            ids.push(super::memories::memory_id(*user, index));
            users.push(user.to_string());
            texts.push(text.clone());
        }
    }
    // Fresh mode writes the memory table itself; merge mode only stages, and
    // the finalize task applies staging. The rows bound are the same.
    let sql = match payload.mode {
        Mode::Fresh => super::memories::memory_upsert_sql(
            &payload.memory_table,
            "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS s(id, user_id, data)",
        ),
        Mode::Merge => format!(
            "INSERT INTO {} (id, user_id, data) SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])",
            seed::staging_memories(revision_run_id)
        ),
    };
    sqlx::query(&sql)
        .bind(&ids)
        .bind(&users)
        .bind(&texts)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The parts of a server error that point at data.
pub struct DbProblem {
    pub code: String,
    pub message: String,
    pub constraint: Option<String>,
    /// `(columns, values)` from a detail like `Key (product_id)=(9) ...`.
    pub key: Option<(Vec<String>, Vec<String>)>,
    /// The table a foreign key points to, from the detail.
    pub parent: Option<String>,
    /// Line of the COPY stream (= record of the range) the server names.
    pub copy_line: Option<u64>,
}

pub fn db_problem(e: &sqlx::Error) -> Option<DbProblem> {
    let pg = e
        .as_database_error()?
        .try_downcast_ref::<PgDatabaseError>()?;
    let detail = pg.detail().unwrap_or_default();
    let key = detail.strip_prefix("Key (").and_then(|rest| {
        let (columns, rest) = rest.split_once(")=(")?;
        let end = rest.rfind(") ")?;
        let values = &rest[..end];
        let columns: Vec<String> = columns.split(", ").map(str::to_string).collect();
        let values: Vec<String> = if columns.len() == 1 {
            vec![values.to_string()]
        } else {
            values.split(", ").map(str::to_string).collect()
        };
        Some((columns, values))
    });
    let parent = detail
        .split_once("is not present in table \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(t, _)| t.to_string());
    let copy_line = pg
        .r#where()
        .and_then(|w| w.split_once(", line "))
        .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok());
    Some(DbProblem {
        code: pg.code().to_string(),
        message: pg.message().to_string(),
        constraint: pg.constraint().map(str::to_string),
        key,
        parent,
        copy_line,
    })
}

/// Turns a server error of the COPY into one that names file, lines and
/// column; errors that are not about the data pass through (and are
/// retried).
async fn explain_db_error(
    e: sqlx::Error,
    pool: &PgPool,
    mapping: &Mapping,
    path: &Path,
    payload: &LoadPayload,
) -> anyhow::Error {
    let Some(problem) = db_problem(&e) else {
        return anyhow::Error::new(e).context(format!("loading {}", mapping.file));
    };
    if problem.code == "23503" {
        // The server names the first dangling reference only; find them all
        // (up to the cap) against the parents, loaded by earlier phases.
        match dangling_references(pool, mapping, path, payload.chunk).await {
            Ok(errors) if !errors.is_empty() => {
                return Permanent::new(describe_errors(
                    &mapping.file,
                    &errors,
                    errors.len() >= ERROR_CAP,
                ))
                .into();
            }
            Ok(_) => {}
            Err(lookup) => tracing::warn!(
                "could not list every dangling reference of {}: {lookup:#}",
                mapping.file
            ),
        }
    }
    // Class 22 (data exception) and 23 (integrity constraint violation).
    if !(problem.code.starts_with("22") || problem.code.starts_with("23")) {
        return anyhow::Error::new(e).context(format!("loading {}", mapping.file));
    }
    let file = &mapping.file;
    let lines = match &problem.key {
        Some((columns, values)) => {
            let indexes: Option<Vec<usize>> =
                columns.iter().map(|c| mapping.header_index(c)).collect();
            match indexes {
                Some(indexes) => {
                    let (path, chunk, values) = (path.to_path_buf(), payload.chunk, values.clone());
                    tokio::task::spawn_blocking(move || {
                        encode::find_lines(&path, &chunk, ERROR_CAP, |record| {
                            indexes.iter().zip(&values).all(|(&i, v)| {
                                record.get(i).is_some_and(|field| same_value(field, v))
                            })
                        })
                    })
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default()
                }
                None => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    let lines = if lines.is_empty() {
        match problem.copy_line {
            Some(n) => {
                let (path, chunk) = (path.to_path_buf(), payload.chunk);
                tokio::task::spawn_blocking(move || encode::line_of_record(&path, &chunk, n))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
                    .into_iter()
                    .collect()
            }
            None => Vec::new(),
        }
    } else {
        lines
    };
    Permanent::new(describe_problem(file, &problem, &lines)).into()
}

/// Records of a range whose foreign keys point to no row of their parent
/// table, in line order, at most [`ERROR_CAP`].
async fn dangling_references(
    pool: &PgPool,
    mapping: &Mapping,
    path: &Path,
    chunk: Chunk,
) -> anyhow::Result<Vec<FieldError>> {
    let mut errors = Vec::new();
    for &(index, column) in &mapping.copied {
        let Some(parent) = column.references else {
            continue;
        };
        let owned = path.to_path_buf();
        let values: Vec<i32> = tokio::task::spawn_blocking(move || {
            let mut seen = HashSet::new();
            encode::visit_column(&owned, &chunk, index, |_, field| {
                if let Some(v) = int_of(field) {
                    seen.insert(v);
                }
                true
            })
            .map(|()| seen.into_iter().collect())
        })
        .await??;
        // `parent` comes from the table layouts, not from data.
        let missing: Vec<i32> = sqlx::query_scalar(&format!(
            "SELECT v FROM unnest($1::int[]) AS v WHERE NOT EXISTS (SELECT 1 FROM public.{parent} p WHERE p.id = v)"
        ))
        .bind(&values)
        .fetch_all(pool)
        .await?;
        if missing.is_empty() {
            continue;
        }
        let missing: HashSet<i32> = missing.into_iter().collect();
        let owned = path.to_path_buf();
        let found: Vec<(u64, i32)> = tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            encode::visit_column(&owned, &chunk, index, |line, field| {
                if let Some(v) = int_of(field).filter(|v| missing.contains(v)) {
                    found.push((line, v));
                }
                found.len() < ERROR_CAP
            })
            .map(|()| found)
        })
        .await??;
        for (line, value) in found {
            errors.push(FieldError {
                line,
                column: Some(mapping.header[index].clone()),
                message: format!(
                    "{value} points nowhere: public.{parent} has no row with id {value}"
                ),
            });
        }
    }
    errors.sort_by_key(|e| e.line);
    errors.truncate(ERROR_CAP);
    Ok(errors)
}

fn int_of(field: &[u8]) -> Option<i32> {
    std::str::from_utf8(field).ok()?.trim().parse().ok()
}

/// Field text equals a key value from an error detail (numbers compared as numbers).
pub fn same_value(field: &[u8], value: &str) -> bool {
    let Ok(text) = std::str::from_utf8(field) else {
        return false;
    };
    let text = text.trim();
    match (text.parse::<i64>(), value.parse::<i64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => text == value,
    }
}

pub fn describe_problem(file: &str, problem: &DbProblem, lines: &[u64]) -> String {
    let place = match lines {
        [] => format!("{file} (line not found)"),
        [one] => format!("{file} line {one}"),
        many => format!(
            "{file} lines {}",
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let (columns, values) = problem
        .key
        .as_ref()
        .map(|(c, v)| (c.join(", "), v.join(", ")))
        .unwrap_or_default();
    match problem.code.as_str() {
        "23503" => format!(
            "{place}, column {columns}: {values} points nowhere: public.{} has no row with id {values} \
             (foreign key {}); load that row too or fix the reference",
            problem.parent.as_deref().unwrap_or("?"),
            problem.constraint.as_deref().unwrap_or("?")
        ),
        "23505" if columns == "id" => format!(
            "{place}, column id: duplicate id {values}: each id must appear once, and not already be in the table"
        ),
        "23505" => format!(
            "{place}, column(s) {columns}: ({values}) appears more than once, but must be unique (constraint {})",
            problem.constraint.as_deref().unwrap_or("?")
        ),
        _ => format!("{place}: {}", problem.message),
    }
}
