//! The one owner of the pipeline's tables (`shared/sql/pipeline.sql`):
//! every statement on `pipeline.runs`, `pipeline.revision_runs`,
//! `pipeline.tasks` and `pipeline.revision_history` is here, and so is the
//! write of `public.alembic_version` that goes with recording a revision.
//! Statuses are enums; their strings exist only in [`TaskStatus::as_str`]
//! and its siblings (and in the `CHECK` constraints of `pipeline.sql`).
//!
//! The orchestrator's driver writes runs, plans and history; the worker
//! runtime claims, completes and fails tasks; `status`/`history` read.

use crate::catalogue::Role;
use crate::db;
use crate::plan::{Direction, Phase};
use crate::task::TaskMessage;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::time::Duration;

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> anyhow::Result<$name> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| anyhow::anyhow!(concat!("unknown ", stringify!($name), " {:?} in the pipeline tables"), s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum! {
    /// States of a task row (`pipeline.tasks.status`).
    TaskStatus {
        /// Planned, not yet published.
        Pending = "pending",
        /// Published to its role's queue.
        Queued = "queued",
        /// Claimed by a worker, which holds the task's advisory lock.
        Running = "running",
        /// Failed an attempt; waiting in a delay queue for the next.
        Retrying = "retrying",
        Done = "done",
        /// Used all its attempts (or failed permanently); its message is in
        /// the dead-letter queue.
        Failed = "failed",
        /// Left unfinished when its revision run failed: a copy of its
        /// message that arrives is acked without effect. Resuming the
        /// revision run plans it again (pending).
        Cancelled = "cancelled",
    }
}

impl TaskStatus {
    /// Done, failed or cancelled: nothing more happens to the task in this
    /// revision run.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            TaskStatus::Done | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

/// The settled statuses as an SQL list (`status NOT IN SETTLED`).
fn settled_sql() -> String {
    let quoted: Vec<String> = TaskStatus::ALL
        .iter()
        .filter(|s| s.is_settled())
        .map(|s| format!("'{}'", s.as_str()))
        .collect();
    format!("({})", quoted.join(", "))
}

status_enum! {
    /// States of a command (`pipeline.runs.status`).
    RunStatus {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Left running by an orchestrator that died.
        Interrupted = "interrupted",
    }
}

status_enum! {
    /// States of one move of one revision (`pipeline.revision_runs.status`).
    RevisionRunStatus {
        Running = "running",
        Done = "done",
        /// Stopped on a failed task; the next command resumes it.
        Failed = "failed",
        /// Rolled back, or overtaken by a later move: never resumed.
        Abandoned = "abandoned",
    }
}

// ---------------------------------------------------------------- runs

/// Records a command; a run left running by an orchestrator that died is
/// marked interrupted first (the caller holds the run lock).
pub async fn start_run(pool: &PgPool, command: &str, requested_by: &str) -> anyhow::Result<i64> {
    sqlx::query("UPDATE pipeline.runs SET status = $2, finished_at = now() WHERE status = $1")
        .bind(RunStatus::Running.as_str())
        .bind(RunStatus::Interrupted.as_str())
        .execute(pool)
        .await?;
    Ok(sqlx::query_scalar(
        "INSERT INTO pipeline.runs (command, requested_by, status) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(command)
    .bind(requested_by)
    .bind(RunStatus::Running.as_str())
    .fetch_one(pool)
    .await?)
}

pub async fn finish_run(
    pool: &PgPool,
    run_id: i64,
    status: RunStatus,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let changed = sqlx::query(
        "UPDATE pipeline.runs SET status = $2, error = $3, finished_at = now() WHERE id = $1 AND status = $4",
    )
    .bind(run_id)
    .bind(status.as_str())
    .bind(error)
    .bind(RunStatus::Running.as_str())
    .execute(pool)
    .await?
    .rows_affected();
    if changed == 0 {
        tracing::warn!(
            "run #{run_id} was no longer running (another orchestrator took the run lock and marked it interrupted); its end is not recorded"
        );
    }
    Ok(())
}

/// A command as `status` and the run lock's waiters show it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub id: i64,
    pub command: String,
    pub status: String,
    pub requested_by: String,
    pub started: String,
    pub finished: Option<String>,
    pub error: Option<String>,
}

type RunTuple = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

const RUN_COLUMNS: &str =
    "id, command, status, requested_by, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
     to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS TZ'), error";

fn run_row(t: RunTuple) -> RunRow {
    RunRow {
        id: t.0,
        command: t.1,
        status: t.2,
        requested_by: t.3,
        started: t.4,
        finished: t.5,
        error: t.6,
    }
}

/// The latest run still marked running.
pub async fn running_run(pool: &PgPool) -> anyhow::Result<Option<RunRow>> {
    let row: Option<RunTuple> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM pipeline.runs WHERE status = $1 ORDER BY id DESC LIMIT 1"
    ))
    .bind(RunStatus::Running.as_str())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(run_row))
}

/// Run `id`, or with `None` the latest run, whatever its state (`None` also
/// when the pipeline has never run here and its tables do not exist).
pub async fn find_run(pool: &PgPool, id: Option<i64>) -> anyhow::Result<Option<RunRow>> {
    if !has_pipeline_tables(pool).await? {
        return Ok(None);
    }
    let row: Option<RunTuple> = sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM pipeline.runs WHERE $1::bigint IS NULL OR id = $1 ORDER BY id DESC LIMIT 1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(run_row))
}

pub async fn has_pipeline_tables(pool: &PgPool) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass('pipeline.runs') IS NOT NULL")
            .fetch_one(pool)
            .await?,
    )
}

// ------------------------------------------------------- revision runs

/// The latest unfinished revision run for this move, if any.
pub async fn resumable_revision_run(
    pool: &PgPool,
    revision: &str,
    direction: Direction,
) -> anyhow::Result<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM pipeline.revision_runs
          WHERE revision = $1 AND direction = $2 AND status IN ($3, $4)
          ORDER BY id DESC LIMIT 1",
    )
    .bind(revision)
    .bind(direction.as_str())
    .bind(RevisionRunStatus::Failed.as_str())
    .bind(RevisionRunStatus::Running.as_str())
    .fetch_optional(pool)
    .await?)
}

/// Takes an unfinished revision run over for `run_id`: failed tasks get
/// their attempts back, done ones stay done. Returns how many are done.
pub async fn resume_revision_run(pool: &PgPool, id: i64, run_id: i64) -> anyhow::Result<i64> {
    let mut tx = pool.begin().await?;
    let done: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pipeline.tasks WHERE revision_run_id = $1 AND status = $2",
    )
    .bind(id)
    .bind(TaskStatus::Done.as_str())
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE pipeline.tasks SET status = $2, attempts = 0, last_error = NULL, finished_at = NULL
          WHERE revision_run_id = $1 AND status IN ($3, $4)",
    )
    .bind(id)
    .bind(TaskStatus::Pending.as_str())
    .bind(TaskStatus::Failed.as_str())
    .bind(TaskStatus::Cancelled.as_str())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE pipeline.revision_runs SET status = $3, run_id = $2, error = NULL WHERE id = $1",
    )
    .bind(id)
    .bind(run_id)
    .bind(RevisionRunStatus::Running.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done)
}

/// Stores a plan: the revision run and all its tasks, pending, in one
/// transaction.
pub async fn store_plan(
    pool: &PgPool,
    run_id: i64,
    revision: &str,
    direction: Direction,
    phases: &[Phase],
    max_attempts: i32,
) -> anyhow::Result<i64> {
    let mut tx = pool.begin().await?;
    let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    let revision_run_id: i64 = sqlx::query_scalar(
        "INSERT INTO pipeline.revision_runs (run_id, revision, direction, phases, status)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(run_id)
    .bind(revision)
    .bind(direction.as_str())
    .bind(serde_json::to_value(&names)?)
    .bind(RevisionRunStatus::Running.as_str())
    .fetch_one(&mut *tx)
    .await?;
    for (phase, planned) in phases.iter().enumerate() {
        for chunk in planned.tasks.chunks(5000) {
            let roles: Vec<&str> = chunk.iter().map(|t| t.role.as_str()).collect();
            let kinds: Vec<&str> = chunk.iter().map(|t| t.kind.as_str()).collect();
            let labels: Vec<&str> = chunk.iter().map(|t| t.label.as_str()).collect();
            let payloads: Vec<serde_json::Value> =
                chunk.iter().map(|t| t.payload.clone()).collect();
            sqlx::query(
                "INSERT INTO pipeline.tasks (revision_run_id, revision, phase, role, kind, label, payload, max_attempts, status)
                 SELECT $1, $2, $3, role, kind, label, payload, $8, $9
                   FROM unnest($4::text[], $5::text[], $6::text[], $7::jsonb[]) AS t(role, kind, label, payload)",
            )
            .bind(revision_run_id)
            .bind(revision)
            .bind(phase as i32)
            .bind(&roles)
            .bind(&kinds)
            .bind(&labels)
            .bind(&payloads)
            .bind(max_attempts)
            .bind(TaskStatus::Pending.as_str())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(revision_run_id)
}

pub async fn phase_names(pool: &PgPool, revision_run_id: i64) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT jsonb_array_elements_text(phases) FROM pipeline.revision_runs WHERE id = $1",
    )
    .bind(revision_run_id)
    .fetch_all(pool)
    .await?)
}

/// The fence on a revision run's state changes: the row is still the
/// caller's run's, still running, and that run is still running.
/// An orchestrator that lost its run lock finds its run marked interrupted
/// by the one that took the lock, and so changes nothing.
/// `run` is the query parameter holding the caller's run id (`$4`).
fn still_ours(run: &str) -> String {
    format!(
        "run_id = {run} AND status = '{}'
     AND EXISTS (SELECT 1 FROM pipeline.runs r WHERE r.id = {run} AND r.status = '{}')",
        RevisionRunStatus::Running.as_str(),
        RunStatus::Running.as_str()
    )
}

/// What a fenced change says when the run is no longer the caller's.
fn fenced(revision_run_id: i64, run_id: i64) -> anyhow::Error {
    anyhow::anyhow!(
        "revision run #{revision_run_id} is no longer run #{run_id}'s (another orchestrator took the run lock and marked this run interrupted): nothing undone or recorded"
    )
}

/// Marks the caller's running revision run failed, and its unsettled tasks
/// cancelled, in one transaction; an error if it is no longer the caller's
/// (see [`still_ours`]). A task still running cannot commit its effect
/// after this (its completion requires `running`), so an undo that follows
/// sees everything the run will ever have done.
pub async fn fail_revision_run(
    pool: &PgPool,
    id: i64,
    run_id: i64,
    error: &str,
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let changed = sqlx::query(&format!(
        "UPDATE pipeline.revision_runs SET status = $3, error = $2, finished_at = now() WHERE id = $1 AND {}",
        still_ours("$4")
    ))
    .bind(id)
    .bind(error)
    .bind(RevisionRunStatus::Failed.as_str())
    .bind(run_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    anyhow::ensure!(changed == 1, fenced(id, run_id));
    sqlx::query(&format!(
        "UPDATE pipeline.tasks SET status = $2, finished_at = clock_timestamp()
          WHERE revision_run_id = $1 AND status NOT IN {}",
        settled_sql()
    ))
    .bind(id)
    .bind(TaskStatus::Cancelled.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the caller's failed revision run abandoned (its partial effects
/// were undone).
pub async fn abandon_revision_run(pool: &PgPool, id: i64, run_id: i64) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE pipeline.revision_runs SET status = $2 WHERE id = $1 AND run_id = $3 AND status = $4",
    )
    .bind(id)
    .bind(RevisionRunStatus::Abandoned.as_str())
    .bind(run_id)
    .bind(RevisionRunStatus::Failed.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

async fn mark_revision_run_done(
    conn: &mut PgConnection,
    id: i64,
    run_id: i64,
) -> anyhow::Result<()> {
    let changed = sqlx::query(&format!(
        "UPDATE pipeline.revision_runs SET status = $2, finished_at = now() WHERE id = $1 AND {}",
        still_ours("$3")
    ))
    .bind(id)
    .bind(RevisionRunStatus::Done.as_str())
    .bind(run_id)
    .execute(conn)
    .await?
    .rows_affected();
    anyhow::ensure!(changed == 1, fenced(id, run_id));
    Ok(())
}

/// A revision run that moves nothing (a re-run, a benchmark) is done.
pub async fn finish_revision_run(pool: &PgPool, id: i64, run_id: i64) -> anyhow::Result<()> {
    mark_revision_run_done(&mut *pool.acquire().await?, id, run_id).await
}

/// Deletes a revision run and its tasks (benchmarks that keep no history).
pub async fn delete_revision_run(pool: &PgPool, id: i64) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM pipeline.revision_runs WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The statements that move `alembic_version` (with the head as `$1`), for
/// [`set_version`] and for `--sql`, which prints them.
pub const CLEAR_VERSION_SQL: &str = "DELETE FROM public.alembic_version";
pub const SET_VERSION_SQL: &str = "INSERT INTO public.alembic_version (version_num) VALUES ($1)";

/// `alembic_version` holds `new_head` (`None`: base, no row).
async fn set_version(
    tx: &mut Transaction<'_, Postgres>,
    new_head: Option<&str>,
) -> anyhow::Result<()> {
    sqlx::query(CLEAR_VERSION_SQL).execute(&mut **tx).await?;
    if let Some(head) = new_head {
        sqlx::query(SET_VERSION_SQL)
            .bind(head)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Records a revision applied or undone, in one transaction: the new head in
/// `alembic_version` (`None`: base), the history, the revision run done, and
/// unfinished runs of `overtaken` revisions abandoned, since what they did is
/// no longer what the database holds.
pub async fn record_revision(
    pool: &PgPool,
    run_id: i64,
    revision_run_id: i64,
    revision: &str,
    direction: Direction,
    new_head: Option<&str>,
    overtaken: &[&str],
) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // First: a run that is no longer the caller's records nothing.
    mark_revision_run_done(&mut tx, revision_run_id, run_id).await?;
    set_version(&mut tx, new_head).await?;
    sqlx::query(
        "INSERT INTO pipeline.revision_history (revision, direction, run_id) VALUES ($1, $2, $3)",
    )
    .bind(revision)
    .bind(direction.as_str())
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE pipeline.revision_runs SET status = $3, finished_at = now()
          WHERE id <> $1 AND revision = ANY($2) AND status IN ($4, $5)",
    )
    .bind(revision_run_id)
    .bind(overtaken)
    .bind(RevisionRunStatus::Abandoned.as_str())
    .bind(RevisionRunStatus::Failed.as_str())
    .bind(RevisionRunStatus::Running.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets `alembic_version` to `new_head` (`None`: base) without running
/// anything, and records it in the history as a stamp, in one transaction.
/// Unfinished revision runs are abandoned: what they did may no longer be
/// what the version says.
pub async fn stamp(pool: &PgPool, run_id: i64, new_head: Option<&str>) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    set_version(&mut tx, new_head).await?;
    sqlx::query(
        "INSERT INTO pipeline.revision_history (revision, direction, run_id) VALUES ($1, 'stamp', $2)",
    )
    .bind(new_head.unwrap_or("base"))
    .bind(run_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE pipeline.revision_runs SET status = $1, finished_at = now() WHERE status IN ($2, $3)",
    )
    .bind(RevisionRunStatus::Abandoned.as_str())
    .bind(RevisionRunStatus::Failed.as_str())
    .bind(RevisionRunStatus::Running.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The last revision run of a revision: id, direction, status, when it started.
pub async fn last_revision_run(
    pool: &PgPool,
    revision: &str,
) -> anyhow::Result<Option<(i64, String, String, String)>> {
    if !has_pipeline_tables(pool).await? {
        return Ok(None);
    }
    Ok(sqlx::query_as(
        "SELECT id, direction, status, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ')
           FROM pipeline.revision_runs WHERE revision = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(revision)
    .fetch_optional(pool)
    .await?)
}

/// When a revision was last applied, as `history` shows it.
pub async fn last_applied_at(pool: &PgPool, revision: &str) -> anyhow::Result<Option<String>> {
    if !has_pipeline_tables(pool).await? {
        return Ok(None);
    }
    Ok(sqlx::query_scalar(
        "SELECT to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ') FROM pipeline.revision_history
          WHERE revision = $1 AND direction = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(revision)
    .bind(Direction::Upgrade.as_str())
    .fetch_optional(pool)
    .await?)
}

/// One revision run of a command, as `status` shows it.
#[derive(Debug, Clone)]
pub struct RevisionRunRow {
    pub id: i64,
    pub revision: String,
    pub direction: String,
    pub status: String,
    pub phases: Vec<String>,
}

pub async fn revision_runs_of(pool: &PgPool, run_id: i64) -> anyhow::Result<Vec<RevisionRunRow>> {
    let rows: Vec<(i64, String, String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT id, revision, direction, status, phases FROM pipeline.revision_runs WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, revision, direction, status, phases)| RevisionRunRow {
            id,
            revision,
            direction,
            status,
            phases: serde_json::from_value(phases).unwrap_or_default(),
        })
        .collect())
}

// --------------------------------------------------------------- tasks

/// `(kind, payload)` of every task of a revision run, in planned order (a
/// planner reads its own plan back through its typed task enum).
pub async fn planned_tasks(
    pool: &PgPool,
    revision_run_id: i64,
) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    Ok(sqlx::query_as(
        "SELECT kind, payload FROM pipeline.tasks WHERE revision_run_id = $1 ORDER BY id",
    )
    .bind(revision_run_id)
    .fetch_all(pool)
    .await?)
}

/// This database's identity (`pipeline.identity`, made by the pipeline
/// schema).
pub async fn database_identity(pool: &PgPool) -> anyhow::Result<uuid::Uuid> {
    sqlx::query_scalar("SELECT id FROM pipeline.identity")
        .fetch_one(pool)
        .await
        .map_err(|e| {
            anyhow::Error::new(e).context("reading this database's identity (pipeline.identity)")
        })
}

/// This database's identity, or `None` while the pipeline tables have not
/// been made here (no orchestrator has run a command on it yet). Reads
/// only: a worker never makes the tables.
pub async fn database_identity_if_made(pool: &PgPool) -> anyhow::Result<Option<uuid::Uuid>> {
    let made: bool = sqlx::query_scalar("SELECT to_regclass('pipeline.identity') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !made {
        return Ok(None);
    }
    Ok(sqlx::query_scalar("SELECT id FROM pipeline.identity")
        .fetch_optional(pool)
        .await?)
}

fn messages(rows: Vec<(i64, String, String, String)>) -> anyhow::Result<Vec<TaskMessage>> {
    rows.into_iter()
        .map(|(task_id, revision, role, kind)| {
            Ok(TaskMessage {
                task_id,
                revision,
                role: role.parse::<Role>().map_err(anyhow::Error::msg)?,
                kind,
                database: None,
            })
        })
        .collect()
}

/// Marks a phase's pending tasks queued and returns the messages of all its
/// unsettled ones. Marked before publishing: a fast worker must never find a
/// task still pending and have its `done` overwritten.
pub async fn queue_phase(
    pool: &PgPool,
    revision_run_id: i64,
    phase: i32,
) -> anyhow::Result<Vec<TaskMessage>> {
    sqlx::query(
        "UPDATE pipeline.tasks SET status = $3, queued_at = clock_timestamp()
          WHERE revision_run_id = $1 AND phase = $2 AND status = $4",
    )
    .bind(revision_run_id)
    .bind(phase)
    .bind(TaskStatus::Queued.as_str())
    .bind(TaskStatus::Pending.as_str())
    .execute(pool)
    .await?;
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(&format!(
        "SELECT id, revision, role, kind FROM pipeline.tasks
          WHERE revision_run_id = $1 AND phase = $2 AND status NOT IN {} ORDER BY id",
        settled_sql()
    ))
    .bind(revision_run_id)
    .bind(phase)
    .fetch_all(pool)
    .await?;
    messages(rows)
}

/// Task counts of one phase, by state.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PhaseCounts {
    pub total: i64,
    pub pending: i64,
    pub queued: i64,
    pub running: i64,
    pub retrying: i64,
    pub done: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub rows_done: i64,
}

impl PhaseCounts {
    pub fn in_flight(&self) -> i64 {
        self.pending + self.queued + self.running + self.retrying
    }

    fn add(&mut self, status: TaskStatus, n: i64, rows: i64) {
        self.total += n;
        self.rows_done += rows;
        let slot = match status {
            TaskStatus::Pending => &mut self.pending,
            TaskStatus::Queued => &mut self.queued,
            TaskStatus::Running => &mut self.running,
            TaskStatus::Retrying => &mut self.retrying,
            TaskStatus::Done => &mut self.done,
            TaskStatus::Failed => &mut self.failed,
            TaskStatus::Cancelled => &mut self.cancelled,
        };
        *slot += n;
    }
}

pub async fn phase_counts(
    pool: &PgPool,
    revision_run_id: i64,
    phase: i32,
) -> anyhow::Result<PhaseCounts> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT status, count(*), coalesce(sum(rows_done), 0)::bigint FROM pipeline.tasks
          WHERE revision_run_id = $1 AND phase = $2 GROUP BY status",
    )
    .bind(revision_run_id)
    .bind(phase)
    .fetch_all(pool)
    .await?;
    let mut counts = PhaseCounts::default();
    for (status, n, rows) in rows {
        counts.add(TaskStatus::parse(&status)?, n, rows);
    }
    Ok(counts)
}

/// Rows done by the tasks of a phase.
pub async fn phase_rows_done(
    pool: &PgPool,
    revision_run_id: i64,
    phase: i32,
) -> anyhow::Result<i64> {
    Ok(phase_counts(pool, revision_run_id, phase).await?.rows_done)
}

/// Time from publish to completion of a revision run's tasks, in
/// milliseconds: `(median, 99th percentile, max)` (`bench runtime`).
pub async fn completion_latency_ms(
    pool: &PgPool,
    revision_run_id: i64,
) -> anyhow::Result<(f64, f64, f64)> {
    Ok(sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms)
           FROM (SELECT (extract(epoch FROM finished_at - queued_at) * 1000)::float8 AS ms
                   FROM pipeline.tasks WHERE revision_run_id = $1) t",
    )
    .bind(revision_run_id)
    .fetch_one(pool)
    .await?)
}

/// Per phase, role and state: how many tasks and rows (`status`).
pub async fn task_summary(
    pool: &PgPool,
    revision_run_id: i64,
) -> anyhow::Result<Vec<(i32, String, String, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT phase, role, status, count(*), coalesce(sum(rows_done), 0)::bigint
           FROM pipeline.tasks WHERE revision_run_id = $1
          GROUP BY phase, role, status ORDER BY phase, role, status",
    )
    .bind(revision_run_id)
    .fetch_all(pool)
    .await?)
}

/// A failed task, as the driver reports it.
#[derive(Debug, Clone)]
pub struct FailedTask {
    pub id: i64,
    pub label: String,
    pub kind: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

pub async fn failed_tasks(
    pool: &PgPool,
    revision_run_id: i64,
    phase: i32,
    limit: i64,
) -> anyhow::Result<Vec<FailedTask>> {
    let rows: Vec<(i64, String, String, i32, Option<String>)> = sqlx::query_as(
        "SELECT id, label, kind, attempts, last_error FROM pipeline.tasks
          WHERE revision_run_id = $1 AND phase = $2 AND status = $3 ORDER BY id LIMIT $4",
    )
    .bind(revision_run_id)
    .bind(phase)
    .bind(TaskStatus::Failed.as_str())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, label, kind, attempts, last_error)| FailedTask {
            id,
            label,
            kind,
            attempts,
            last_error,
        })
        .collect())
}

/// `(task id, revision, label, attempt, error)` of a run's latest errors.
pub async fn last_errors(
    pool: &PgPool,
    run_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<(i64, String, String, i32, String)>> {
    Ok(sqlx::query_as(
        "SELECT t.id, t.revision, t.label, t.attempts, t.last_error FROM pipeline.tasks t
           JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id
          WHERE rr.run_id = $1 AND t.last_error IS NOT NULL ORDER BY t.id DESC LIMIT $2",
    )
    .bind(run_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Tasks of a phase marked running for longer than `after` whose advisory
/// lock nobody holds (their worker is gone) are queued again; returns their
/// messages, to publish.
/// `l` (a row of `pg_locks`) is the granted advisory lock of task `t`.
const LOCK_MATCH: &str = "l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.classid = ((t.id >> 32)::int8)::oid AND l.objid = ((t.id & 4294967295)::int8)::oid";

pub async fn requeue_orphans(
    pool: &PgPool,
    revision_run_id: i64,
    phase: i32,
    after: Duration,
) -> anyhow::Result<Vec<TaskMessage>> {
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        "UPDATE pipeline.tasks t SET status = $4, queued_at = clock_timestamp()
          WHERE t.revision_run_id = $1 AND t.phase = $2 AND t.status = $5
            AND t.started_at < clock_timestamp() - $3 * interval '1 second'
            AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE LOCK_MATCH)
          RETURNING t.id, t.revision, t.role, t.kind"
            .replace("LOCK_MATCH", LOCK_MATCH)
            .as_str(),
    )
    .bind(revision_run_id)
    .bind(phase)
    .bind(after.as_secs_f64())
    .bind(TaskStatus::Queued.as_str())
    .bind(TaskStatus::Running.as_str())
    .fetch_all(pool)
    .await?;
    messages(rows)
}

/// Tasks of a phase that are `running` under a lock whose holder stopped
/// renewing its lease (SIGSTOPped, hung, cut off): the holder's backend is
/// terminated, so that its advisory lock and its transaction go, and the
/// tasks are queued again; their messages are returned for publishing.
pub async fn take_back_stale(
    pool: &PgPool,
    revision_run_id: i64,
    phase: i32,
    lease: Duration,
) -> anyhow::Result<Vec<TaskMessage>> {
    let holders: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT t.id, l.pid FROM pipeline.tasks t JOIN pg_locks l ON LOCK_MATCH
          WHERE t.revision_run_id = $1 AND t.phase = $2 AND t.status = $3
            AND coalesce(t.heartbeat_at, t.started_at) < clock_timestamp() - $4 * interval '1 second'"
            .replace("LOCK_MATCH", LOCK_MATCH)
            .as_str(),
    )
    .bind(revision_run_id)
    .bind(phase)
    .bind(TaskStatus::Running.as_str())
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    let mut taken = Vec::new();
    for (task_id, pid) in holders {
        // Waits (up to 5 s) until the backend is gone and its lock with it.
        sqlx::query("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .execute(pool)
            .await?;
        let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
            "UPDATE pipeline.tasks SET status = $2, queued_at = clock_timestamp(), taken_back = taken_back + 1,
                    last_error = 'taken back: its worker stopped renewing its lease'
              WHERE id = $1 AND status = $3
              RETURNING id, revision, role, kind",
        )
        .bind(task_id)
        .bind(TaskStatus::Queued.as_str())
        .bind(TaskStatus::Running.as_str())
        .fetch_all(pool)
        .await?;
        taken.extend(messages(rows)?);
    }
    Ok(taken)
}

/// The tasks a reconciler looks after.
#[derive(Debug, Clone, Copy)]
pub enum Watched<'a> {
    /// One phase of a revision run (the orchestrator, while it waits on it).
    Phase { revision_run_id: i64, phase: i32 },
    /// The tasks of these roles in every running revision run (a worker).
    Roles(&'a [Role]),
}

impl Watched<'_> {
    /// `(revision run, phase, roles)` as the reconciler's queries bind them
    /// (`None`: any).
    fn binds(&self) -> (Option<i64>, Option<i32>, Vec<&'static str>) {
        match *self {
            Watched::Phase {
                revision_run_id,
                phase,
            } => (
                Some(revision_run_id),
                Some(phase),
                Role::ALL.iter().map(|r| r.as_str()).collect(),
            ),
            Watched::Roles(roles) => (None, None, roles.iter().map(|r| r.as_str()).collect()),
        }
    }
}

/// The watched unsettled tasks of running revision runs (`t`, in `$1`
/// revision run, `$2` phase, `$3` roles), as the reconciler's queries
/// select them.
const WATCHED: &str = "pipeline.tasks t JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id AND rr.status = 'running'
   WHERE ($1::bigint IS NULL OR t.revision_run_id = $1) AND ($2::int IS NULL OR t.phase = $2)
     AND t.role = ANY($3::text[])";

/// Watched tasks whose message may be lost: `retrying` longer than any
/// delay queue holds a message, or `queued` for a role whose work queue has
/// no message ready (`drained_roles`), with nobody holding them, for longer
/// than `after`. Their `queued_at` is renewed in the statement that selects
/// them, and rows another reconciler is renewing are skipped (`SKIP
/// LOCKED`), so that each is republished at most once per `after` however
/// many workers and orchestrators reconcile; their messages are returned. A
/// duplicate of a message that was not lost is harmless: the worker skips a
/// settled task.
pub async fn possibly_lost(
    pool: &PgPool,
    watched: Watched<'_>,
    drained_roles: &[Role],
    after: Duration,
) -> anyhow::Result<Vec<TaskMessage>> {
    let (revision_run_id, phase, roles) = watched.binds();
    let drained: Vec<&str> = drained_roles.iter().map(|r| r.as_str()).collect();
    let rows: Vec<(i64, String, String, String)> = sqlx::query_as(
        &"UPDATE pipeline.tasks u SET status = $5, queued_at = clock_timestamp()
           WHERE u.id IN (
             SELECT t.id FROM WATCHED
                AND ((t.status = $5 AND t.role = ANY($6)) OR t.status = $7)
                AND coalesce(t.queued_at, t.created_at) < clock_timestamp() - $4 * interval '1 second'
                AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE LOCK_MATCH)
                FOR UPDATE OF t SKIP LOCKED)
          RETURNING u.id, u.revision, u.role, u.kind"
            .replace("WATCHED", WATCHED)
            .replace("LOCK_MATCH", LOCK_MATCH),
    )
    .bind(revision_run_id)
    .bind(phase)
    .bind(&roles)
    .bind(after.as_secs_f64())
    .bind(TaskStatus::Queued.as_str())
    .bind(&drained)
    .bind(TaskStatus::Retrying.as_str())
    .fetch_all(pool)
    .await?;
    messages(rows)
}

/// Roles of watched tasks that have waited for a worker (`queued` or
/// `retrying`, nobody holding them) for longer than `after`.
pub async fn waiting_roles(
    pool: &PgPool,
    watched: Watched<'_>,
    after: Duration,
) -> anyhow::Result<Vec<Role>> {
    let (revision_run_id, phase, roles) = watched.binds();
    let waiting: Vec<String> = sqlx::query_scalar(
        &"SELECT DISTINCT t.role FROM WATCHED
             AND t.status IN ($4, $5)
             AND coalesce(t.queued_at, t.created_at) <= clock_timestamp() - $6 * interval '1 second'
             AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE LOCK_MATCH)"
            .replace("WATCHED", WATCHED)
            .replace("LOCK_MATCH", LOCK_MATCH),
    )
    .bind(revision_run_id)
    .bind(phase)
    .bind(&roles)
    .bind(TaskStatus::Queued.as_str())
    .bind(TaskStatus::Retrying.as_str())
    .bind(after.as_secs_f64())
    .fetch_all(pool)
    .await?;
    waiting
        .iter()
        .map(|r| r.parse::<Role>().map_err(anyhow::Error::msg))
        .collect()
}

// ------------------------------------------------- the worker's claims

/// Renews a running task's lease.
pub async fn heartbeat(pool: &PgPool, task_id: i64, worker: &str) -> anyhow::Result<bool> {
    let renewed = sqlx::query(
        "UPDATE pipeline.tasks SET heartbeat_at = clock_timestamp()
          WHERE id = $1 AND status = $3 AND worker = $2",
    )
    .bind(task_id)
    .bind(worker)
    .bind(TaskStatus::Running.as_str())
    .execute(pool)
    .await?;
    Ok(renewed.rows_affected() == 1)
}

/// Fails a task that has used up its attempts, however they ended (a worker
/// killed mid-task leaves no error of its own): the claim of the next
/// attempt comes here instead. Returns true when it failed the task now.
pub async fn fail_exhausted(conn: &mut PgConnection, task_id: i64) -> anyhow::Result<bool> {
    let failed: Option<i64> = sqlx::query_scalar(
        "UPDATE pipeline.tasks
            SET status = $2, finished_at = clock_timestamp(),
                last_error = format('gave up after %s attempt(s), the limit (TASK_MAX_ATTEMPTS): %s',
                                    attempts,
                                    coalesce(last_error, 'no attempt came back with an outcome: its worker died, was killed or lost its lease'))
          WHERE id = $1 AND status NOT IN SETTLED AND attempts >= max_attempts
          RETURNING revision_run_id"
            .replace("SETTLED", &settled_sql())
            .as_str(),
    )
    .bind(task_id)
    .bind(TaskStatus::Failed.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match failed {
        Some(revision_run_id) => {
            notify_task_change(conn, revision_run_id).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The state of a task row (`None`: no such task in this database).
pub async fn task_status(
    conn: &mut PgConnection,
    task_id: i64,
) -> anyhow::Result<Option<TaskStatus>> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM pipeline.tasks WHERE id = $1")
            .bind(task_id)
            .fetch_optional(&mut *conn)
            .await?;
    status.as_deref().map(TaskStatus::parse).transpose()
}

/// Counts a copy of a settled task that arrived anyway (and is acked
/// without effect), for `bench chaos` and anyone asking what faults cost.
pub async fn note_duplicate(conn: &mut PgConnection, task_id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE pipeline.tasks SET duplicates = duplicates + 1 WHERE id = $1")
        .bind(task_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Takes the task's advisory lock on this connection (session level: it
/// lives as long as the connection, so a worker that dies loses it).
pub async fn try_lock_task(conn: &mut PgConnection, task_id: i64) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(task_id)
        .fetch_one(conn)
        .await?)
}

pub async fn unlock_task(conn: &mut PgConnection, task_id: i64) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(task_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// A task row as a claim returns it.
#[derive(Debug, Clone)]
pub struct ClaimedRow {
    pub id: i64,
    pub revision_run_id: i64,
    /// The run (`pipeline.runs`) of the revision run.
    pub run_id: i64,
    pub revision: String,
    pub kind: String,
    pub phase: i32,
    pub payload: serde_json::Value,
    /// This attempt's number (1 for the first).
    pub attempt: i32,
    pub max_attempts: i32,
}

/// Marks an unsettled task running for `worker` and counts the attempt;
/// `None` when it is settled already, or has used up its attempts (see
/// [`fail_exhausted`]).
pub async fn claim_task(
    conn: &mut PgConnection,
    task_id: i64,
    worker: &str,
) -> anyhow::Result<Option<ClaimedRow>> {
    #[allow(clippy::type_complexity)]
    let claimed: Option<(i64, i64, String, String, i32, serde_json::Value, i32, i32)> = sqlx::query_as(
        "UPDATE pipeline.tasks
            SET status = $3, attempts = attempts + 1, worker = $2, started_at = clock_timestamp(),
                heartbeat_at = clock_timestamp()
          WHERE id = $1 AND status NOT IN SETTLED AND attempts < max_attempts
            AND EXISTS (SELECT 1 FROM pipeline.revision_runs r
                         WHERE r.id = pipeline.tasks.revision_run_id AND r.status = 'running')
          RETURNING revision_run_id,
                    (SELECT r.run_id FROM pipeline.revision_runs r WHERE r.id = pipeline.tasks.revision_run_id),
                    revision, kind, phase, payload, attempts, max_attempts"
            .replace("SETTLED", &settled_sql())
            .as_str(),
    )
    .bind(task_id)
    .bind(worker)
    .bind(TaskStatus::Running.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(claimed.map(
        |(revision_run_id, run_id, revision, kind, phase, payload, attempt, max_attempts)| {
            ClaimedRow {
                id: task_id,
                revision_run_id,
                run_id,
                revision,
                kind,
                phase,
                payload,
                attempt,
                max_attempts,
            }
        },
    ))
}

/// Marks a running task done in the transaction that holds its effect;
/// false when this worker no longer holds it.
pub async fn complete_task(
    tx: &mut Transaction<'_, Postgres>,
    task_id: i64,
    rows_done: i64,
) -> anyhow::Result<bool> {
    let updated = sqlx::query(
        "UPDATE pipeline.tasks
            SET status = $3, rows_done = $2, finished_at = clock_timestamp(), last_error = NULL
          WHERE id = $1 AND status = $4",
    )
    .bind(task_id)
    .bind(rows_done)
    .bind(TaskStatus::Done.as_str())
    .bind(TaskStatus::Running.as_str())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Puts a running task back, uncounted, while no other worker has claimed
/// it since (the database failed, not the task).
pub async fn release_claim(pool: &PgPool, task_id: i64, worker: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE pipeline.tasks SET status = $3, attempts = attempts - 1
          WHERE id = $1 AND status = $4 AND worker = $2",
    )
    .bind(task_id)
    .bind(worker)
    .bind(TaskStatus::Queued.as_str())
    .bind(TaskStatus::Running.as_str())
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives a running task back uncounted, to run again after a check-back
/// ([`crate::exec::CheckBack`]): `Retrying`, its attempt not counted, the
/// reason kept as its last note.
pub async fn defer_task(
    conn: &mut PgConnection,
    task_id: i64,
    revision_run_id: i64,
    note: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE pipeline.tasks SET status = $2, attempts = attempts - 1, last_error = $3,
                queued_at = clock_timestamp()
          WHERE id = $1 AND status = $4",
    )
    .bind(task_id)
    .bind(TaskStatus::Retrying.as_str())
    .bind(note)
    .bind(TaskStatus::Running.as_str())
    .execute(&mut *conn)
    .await?;
    notify_task_change(conn, revision_run_id).await
}

/// Records a failed attempt of `worker`'s claim: `Retrying` (another
/// attempt follows) or `Failed` (the last one), with the error, and tells
/// the driver. Nothing changes when another worker has claimed it since.
pub async fn record_failure(
    conn: &mut PgConnection,
    task_id: i64,
    revision_run_id: i64,
    worker: &str,
    status: TaskStatus,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE pipeline.tasks
            SET status = $2, last_error = $3,
                finished_at = CASE WHEN $4 THEN clock_timestamp() ELSE finished_at END,
                queued_at = CASE WHEN $4 THEN queued_at ELSE clock_timestamp() END
          WHERE id = $1 AND status = $5 AND worker = $6",
    )
    .bind(task_id)
    .bind(status.as_str())
    .bind(error)
    .bind(status == TaskStatus::Failed)
    .bind(TaskStatus::Running.as_str())
    .bind(worker)
    .execute(&mut *conn)
    .await?;
    notify_task_change(conn, revision_run_id).await
}

/// Wakes the driver waiting on this revision run.
pub async fn notify_task_change(
    conn: &mut PgConnection,
    revision_run_id: i64,
) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(db::TASK_CHANNEL)
        .bind(revision_run_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_as_written() {
        for status in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(status.as_str()).unwrap(), *status);
        }
        assert!(TaskStatus::parse("exploded").is_err());
        assert!(TaskStatus::Done.is_settled() && TaskStatus::Failed.is_settled());
        assert!(TaskStatus::Cancelled.is_settled());
        assert_eq!(settled_sql(), "('done', 'failed', 'cancelled')");
        assert!(!TaskStatus::Retrying.is_settled());
    }

    #[test]
    fn phase_counts_add_up_by_state() {
        let mut counts = PhaseCounts::default();
        counts.add(TaskStatus::Done, 3, 300);
        counts.add(TaskStatus::Retrying, 1, 0);
        counts.add(TaskStatus::Pending, 2, 0);
        assert_eq!(counts.total, 6);
        assert_eq!(counts.rows_done, 300);
        assert_eq!(counts.in_flight(), 3);
    }
}
