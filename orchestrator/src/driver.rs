//! The driver: moves the database from one revision to another.
//!
//! For each revision on the path it plans (or resumes) a *revision run*,
//! stores its tasks, and for each phase in order publishes the phase's
//! unfinished tasks (with publisher confirms) and waits until every one is
//! done (LISTEN/NOTIFY, with a polling fallback). When all phases are done
//! it records the revision in `alembic_version` and the history, in one
//! transaction. A failed task stops the run with its error; running the
//! same command again resumes the failed revision run, so done tasks are
//! not redone.
//!
//! While waiting it also sweeps orphans: a task marked running whose
//! advisory lock nobody holds belonged to a worker that died; it is
//! published again. The broker would redeliver it anyway; the sweep covers
//! the case where the redelivered copy was skipped as a duplicate.

use crate::lock::{RunLock, WaitPolicy};
use crate::plan::{Direction, Phase, PlanContext};
use crate::progress::{PhaseCounts, PhaseProgress};
use crate::revisions;
use anyhow::{bail, Context};
use shared::backoff::Backoff;
use shared::catalogue::{self, Revision, Role, Target, REVISIONS};
use shared::db;
use shared::queue::{Publisher, Topology};
use shared::task::TaskMessage;
use shared::Config;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the wait loop looks at the task table when no notification
/// arrives.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// A running task whose lock nobody holds for this long is an orphan.
const ORPHAN_AFTER: Duration = Duration::from_secs(10);
const PUBLISH_BATCH: usize = 2000;

pub struct RunOptions {
    pub command: String,
    pub wait: WaitPolicy,
    pub data_dir: PathBuf,
}

/// A connection to the broker that reconnects when it is lost.
pub struct Broker {
    config: Config,
    connection: Option<lapin::Connection>,
    publisher: Option<Publisher>,
}

impl Broker {
    pub fn new(config: &Config) -> Broker {
        Broker {
            config: config.clone(),
            connection: None,
            publisher: None,
        }
    }

    async fn publisher(&mut self) -> anyhow::Result<&Publisher> {
        let alive = self.publisher.as_ref().is_some_and(|p| p.is_connected());
        if !alive {
            let connection = shared::queue::connect(
                &self.config,
                &format!("orchestrator {}", self.config.queue_prefix),
                Duration::from_secs(120),
            )
            .await?;
            let publisher =
                Publisher::open(&connection, Topology::from_config(&self.config)).await?;
            self.connection = Some(connection);
            self.publisher = Some(publisher);
        }
        Ok(self.publisher.as_ref().expect("just opened"))
    }

    /// Publishes with confirms; on a lost connection, reconnects with
    /// back-off and publishes the batch again (duplicates are harmless:
    /// workers skip tasks that are done or claimed).
    pub async fn publish(&mut self, messages: &[TaskMessage]) -> anyhow::Result<()> {
        let policy = Backoff::new(Duration::from_millis(250), Duration::from_secs(10))
            .with_patience(Duration::from_secs(300));
        let (_, published) = shared::backoff::retry_with(
            policy,
            self,
            |broker| async move {
                let published = match broker.publisher().await {
                    Ok(publisher) => publisher.publish_tasks(messages).await,
                    Err(e) => Err(e),
                };
                if published.is_err() {
                    broker.publisher = None;
                    broker.connection = None;
                }
                (broker, published)
            },
            |e, delay| {
                tracing::warn!("publishing failed ({e:#}); reconnecting to the broker in {delay:?}")
            },
        )
        .await;
        published.map_err(|e| e.context("the broker stayed unreachable for 5 minutes"))
    }

    pub async fn close(self) {
        if let Some(connection) = self.connection {
            let _ = connection.close(200, "orchestrator done".into()).await;
        }
    }
}

pub struct Driver {
    pub config: Config,
    pub pool: PgPool,
    pub broker: Broker,
    lock: RunLock,
    run_id: i64,
    listener: Option<PgListener>,
}

/// Opens the database, creates the pipeline tables, takes the run lock and
/// records the run.
pub async fn start(config: &Config, options: &RunOptions) -> anyhow::Result<Driver> {
    let pool = db::connect(config, 8, Duration::from_secs(60)).await?;
    db::ensure_pipeline_schema(&pool).await?;
    let lock = RunLock::acquire(&pool, config, options.wait_policy()).await?;
    let requested_by = format!(
        "{}@{} pid {}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id()
    );
    // A run left 'running' by an orchestrator that died is over.
    sqlx::query("UPDATE pipeline.runs SET status = 'interrupted', finished_at = now() WHERE status = 'running'")
        .execute(&pool)
        .await?;
    let run_id: i64 = sqlx::query_scalar(
        "INSERT INTO pipeline.runs (command, requested_by) VALUES ($1, $2) RETURNING id",
    )
    .bind(&options.command)
    .bind(requested_by)
    .fetch_one(&pool)
    .await?;
    let listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => match l.listen(db::TASK_CHANNEL).await {
            Ok(()) => Some(l),
            Err(_) => None,
        },
        Err(_) => None,
    };
    Ok(Driver {
        config: config.clone(),
        pool,
        broker: Broker::new(config),
        lock,
        run_id,
        listener,
    })
}

impl RunOptions {
    fn wait_policy(&self) -> WaitPolicy {
        match self.wait {
            WaitPolicy::Wait => WaitPolicy::Wait,
            WaitPolicy::NoWait => WaitPolicy::NoWait,
        }
    }
}

/// Task messages for `(id, revision, role, kind)` rows of the task table.
fn messages(rows: Vec<(i64, String, String, String)>) -> anyhow::Result<Vec<TaskMessage>> {
    rows.into_iter()
        .map(|(task_id, revision, role, kind)| {
            Ok(TaskMessage {
                task_id,
                revision,
                role: role.parse::<Role>().map_err(anyhow::Error::msg)?,
                kind,
            })
        })
        .collect()
}

/// The revision `alembic_version` holds, as an index into the chain.
pub async fn current_index(pool: &PgPool) -> anyhow::Result<Option<usize>> {
    match db::current_revision(pool).await? {
        None => Ok(None),
        Some(id) => match catalogue::position(&id) {
            Some(i) => Ok(Some(i)),
            None => bail!(
                "alembic_version holds {id:?}, which this version does not know; \
                 the database was migrated by something else"
            ),
        },
    }
}

/// Refuses a database that this project's earlier layout built (tables
/// `public.product` / `public.review`, `alembic_version` set): this version's
/// revisions read and write the current tables, so running them there would
/// half-migrate it. Called before anything is written, not even the
/// pipeline's own tables.
pub async fn refuse_earlier_layout(pool: &PgPool) -> anyhow::Result<()> {
    let Some(version) = db::current_revision(pool).await? else {
        return Ok(());
    };
    let (older, current): (Vec<String>, bool) = sqlx::query_as(
        "SELECT ARRAY(SELECT t FROM unnest(ARRAY['public.product', 'public.review', 'public.product_image', 'public.personalized_product_section']) AS t
                       WHERE to_regclass(t) IS NOT NULL),
                to_regclass('public.products') IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    if older.is_empty() || current {
        return Ok(());
    }
    bail!(
        "this database was built with the earlier table layout: it has {} and alembic_version {version}, \
         but no public.products; this version creates and reads the current layout (products, product_reviews, \
         product_images, personalized_product_sections) and will not change this database. Either run \
         `orchestrator downgrade base` with the earlier version of this project first, or point DATABASE_URL \
         at a fresh database; nothing was changed",
        older.join(", ")
    );
}

/// The revisions to run, in order, to get from `current` to `target`.
pub fn path(
    current: Option<usize>,
    target: Target,
    direction: Direction,
) -> anyhow::Result<Vec<&'static Revision>> {
    let applied = current.map_or(0, |i| i + 1);
    let wanted = target.applied_count();
    match direction {
        Direction::Upgrade => {
            if wanted < applied {
                bail!(
                    "the database is already past that revision (at {}); use `downgrade` to go back",
                    REVISIONS[applied - 1].id
                );
            }
            Ok(REVISIONS[applied..wanted].iter().collect())
        }
        Direction::Downgrade => {
            if wanted > applied {
                bail!(
                    "the database is not at or past that revision (at {}); use `upgrade` to go forward",
                    current.map_or("base", |i| REVISIONS[i].id)
                );
            }
            Ok(REVISIONS[wanted..applied].iter().rev().collect())
        }
        Direction::Rerun => bail!("a re-run has no path"),
    }
}

/// Refuses, before anything is done, a path that crosses a revision this
/// version cannot run.
pub fn check_available(path: &[&Revision]) -> anyhow::Result<()> {
    if let Some(missing) = path
        .iter()
        .find(|r| !r.available || revisions::planner(r.id).is_none())
    {
        bail!(
            "revision {} ({}) is not available in this version; nothing was done. \
             Run `orchestrator upgrade {}` to stop before it.",
            missing.id,
            missing.name,
            REVISIONS
                .iter()
                .position(|r| r.id == missing.id)
                .and_then(|i| i.checked_sub(1))
                .map_or("base", |i| REVISIONS[i].id)
        );
    }
    Ok(())
}

impl Driver {
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// Runs a whole command's path. The run's outcome is recorded by
    /// [`Driver::finish`], which every command calls last.
    pub async fn run_path(
        &mut self,
        revisions: &[&Revision],
        direction: Direction,
        data_dir: &Path,
    ) -> anyhow::Result<()> {
        for (i, revision) in revisions.iter().enumerate() {
            eprintln!(
                "== {} {} ({}) [{}/{}]",
                direction.as_str(),
                revision.id,
                revision.name,
                i + 1,
                revisions.len()
            );
            self.run_revision(revision, direction, data_dir).await?;
        }
        Ok(())
    }

    async fn run_revision(
        &mut self,
        revision: &Revision,
        direction: Direction,
        data_dir: &Path,
    ) -> anyhow::Result<()> {
        let planner = revisions::planner(revision.id).expect("checked before the run");
        let (config, pool) = (self.config.clone(), self.pool.clone());
        let ctx = PlanContext {
            config: &config,
            pool: &pool,
            direction,
            data_dir: data_dir.to_path_buf(),
        };
        let revision_run_id = match self.resumable(revision.id, direction).await? {
            Some(id) => {
                let done: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pipeline.tasks WHERE revision_run_id = $1 AND status = 'done'",
                )
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
                eprintln!("resuming revision run #{id}: {done} task(s) already done are kept");
                sqlx::query(
                    "UPDATE pipeline.tasks SET status = 'pending', attempts = 0, last_error = NULL, finished_at = NULL
                      WHERE revision_run_id = $1 AND status = 'failed'",
                )
                .bind(id)
                .execute(&self.pool)
                .await?;
                sqlx::query("UPDATE pipeline.revision_runs SET status = 'running', run_id = $2, error = NULL WHERE id = $1")
                    .bind(id)
                    .bind(self.run_id)
                    .execute(&self.pool)
                    .await?;
                id
            }
            None => {
                let phases = planner.plan(&ctx).await.with_context(|| {
                    format!(
                        "planning {} of revision {} ({})",
                        direction.as_str(),
                        revision.id,
                        revision.name
                    )
                })?;
                self.store_plan(revision.id, direction, &phases).await?
            }
        };
        let phase_names: Vec<String> = sqlx::query_scalar(
            "SELECT jsonb_array_elements_text(phases) FROM pipeline.revision_runs WHERE id = $1",
        )
        .bind(revision_run_id)
        .fetch_all(&self.pool)
        .await?;
        for (phase, name) in phase_names.iter().enumerate() {
            let title = format!(
                "{} {} phase {}/{} {}",
                revision.name,
                direction.as_str(),
                phase + 1,
                phase_names.len(),
                name
            );
            if let Err(e) = self.run_phase(revision_run_id, phase as i32, &title).await {
                let message = format!("{e:#}");
                sqlx::query(
                    "UPDATE pipeline.revision_runs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1",
                )
                .bind(revision_run_id)
                .bind(&message)
                .execute(&self.pool)
                .await
                .ok();
                if planner.undo_partial(&ctx, revision_run_id).await? {
                    sqlx::query(
                        "UPDATE pipeline.revision_runs SET status = 'abandoned' WHERE id = $1",
                    )
                    .bind(revision_run_id)
                    .execute(&self.pool)
                    .await?;
                    return Err(e.context(format!(
                        "revision {} ({}) failed and was rolled back: the database is as it was before it started",
                        revision.id, revision.name
                    )));
                }
                return Err(e.context(format!(
                    "revision {} ({}) failed; fix the cause and run the same command again to resume",
                    revision.id, revision.name
                )));
            }
        }
        self.record(revision, direction, revision_run_id).await
    }

    /// The latest unfinished revision run for this move, if any.
    async fn resumable(&self, revision: &str, direction: Direction) -> anyhow::Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM pipeline.revision_runs
              WHERE revision = $1 AND direction = $2 AND status IN ('failed', 'running')
              ORDER BY id DESC LIMIT 1",
        )
        .bind(revision)
        .bind(direction.as_str())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn store_plan(
        &self,
        revision: &str,
        direction: Direction,
        phases: &[Phase],
    ) -> anyhow::Result<i64> {
        let mut tx = self.pool.begin().await?;
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        let revision_run_id: i64 = sqlx::query_scalar(
            "INSERT INTO pipeline.revision_runs (run_id, revision, direction, phases) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(self.run_id)
        .bind(revision)
        .bind(direction.as_str())
        .bind(serde_json::to_value(&names)?)
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
                    "INSERT INTO pipeline.tasks (revision_run_id, revision, phase, role, kind, label, payload, max_attempts)
                     SELECT $1, $2, $3, role, kind, label, payload, $8
                       FROM unnest($4::text[], $5::text[], $6::text[], $7::jsonb[]) AS t(role, kind, label, payload)",
                )
                .bind(revision_run_id)
                .bind(revision)
                .bind(phase as i32)
                .bind(&roles)
                .bind(&kinds)
                .bind(&labels)
                .bind(&payloads)
                .bind(self.config.task_max_attempts)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(revision_run_id)
    }

    /// Publishes a phase's unfinished tasks and waits for all of them.
    pub async fn run_phase(
        &mut self,
        revision_run_id: i64,
        phase: i32,
        title: &str,
    ) -> anyhow::Result<()> {
        // Mark before publishing: a fast worker must never find a task still
        // 'pending' and have its 'done' overwritten.
        sqlx::query(
            "UPDATE pipeline.tasks SET status = 'queued', queued_at = clock_timestamp()
              WHERE revision_run_id = $1 AND phase = $2 AND status = 'pending'",
        )
        .bind(revision_run_id)
        .bind(phase)
        .execute(&self.pool)
        .await?;
        let unfinished: Vec<(i64, String, String, String)> = sqlx::query_as(
            "SELECT id, revision, role, kind FROM pipeline.tasks
              WHERE revision_run_id = $1 AND phase = $2 AND status NOT IN ('done', 'failed') ORDER BY id",
        )
        .bind(revision_run_id)
        .bind(phase)
        .fetch_all(&self.pool)
        .await?;
        let messages = messages(unfinished)?;
        for batch in messages.chunks(PUBLISH_BATCH) {
            self.broker.publish(batch).await?;
        }
        self.wait_phase(revision_run_id, phase, title).await
    }

    async fn counts(&self, revision_run_id: i64, phase: i32) -> anyhow::Result<PhaseCounts> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT status, count(*), coalesce(sum(rows_done), 0)::bigint FROM pipeline.tasks
              WHERE revision_run_id = $1 AND phase = $2 GROUP BY status",
        )
        .bind(revision_run_id)
        .bind(phase)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = PhaseCounts::default();
        for (status, n, rows) in rows {
            counts.total += n;
            counts.rows_done += rows;
            match status.as_str() {
                "pending" => counts.pending = n,
                "queued" => counts.queued = n,
                "running" => counts.running = n,
                "retrying" => counts.retrying = n,
                "done" => counts.done = n,
                "failed" => counts.failed = n,
                _ => {}
            }
        }
        Ok(counts)
    }

    async fn wait_phase(
        &mut self,
        revision_run_id: i64,
        phase: i32,
        title: &str,
    ) -> anyhow::Result<()> {
        let initial = self.counts(revision_run_id, phase).await?;
        let mut progress = PhaseProgress::start(title.to_string(), initial.total);
        let mut last_sweep = Instant::now();
        loop {
            let counts = match self.counts(revision_run_id, phase).await {
                Ok(c) => c,
                Err(e) if db::is_transient_chain(&e) => {
                    tracing::warn!("database unreachable while waiting ({e:#}); retrying");
                    tokio::time::sleep(POLL_EVERY).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            progress.update(&counts);
            if counts.done == counts.total {
                progress.finish(&counts, true);
                return Ok(());
            }
            if counts.failed > 0 && counts.in_flight() == 0 {
                progress.finish(&counts, false);
                return Err(self.failure(revision_run_id, phase).await);
            }
            if last_sweep.elapsed() >= ORPHAN_AFTER {
                self.lock.check().await?;
                self.sweep_orphans(revision_run_id, phase).await?;
                last_sweep = Instant::now();
            }
            self.wait_for_news().await;
        }
    }

    /// Returns on a notification, or after the polling interval.
    async fn wait_for_news(&mut self) {
        match self.listener.as_mut() {
            Some(listener) => {
                match tokio::time::timeout(POLL_EVERY, listener.try_recv()).await {
                    Ok(Ok(Some(_))) => {
                        // Drain a burst of notifications into one look at the table.
                        while let Ok(Ok(Some(_))) =
                            tokio::time::timeout(Duration::from_millis(20), listener.try_recv())
                                .await
                        {}
                    }
                    Ok(Ok(None)) | Ok(Err(_)) => {
                        // Connection lost: sqlx reconnects on the next call;
                        // meanwhile poll.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(_) => {}
                }
            }
            None => tokio::time::sleep(POLL_EVERY).await,
        }
    }

    async fn failure(&self, revision_run_id: i64, phase: i32) -> anyhow::Error {
        let failed: Vec<(i64, String, String, i32, Option<String>)> = sqlx::query_as(
            "SELECT id, label, kind, attempts, last_error FROM pipeline.tasks
              WHERE revision_run_id = $1 AND phase = $2 AND status = 'failed' ORDER BY id LIMIT 5",
        )
        .bind(revision_run_id)
        .bind(phase)
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        let mut message = String::new();
        for (id, label, kind, attempts, error) in &failed {
            message.push_str(&format!(
                "\n  task {id} ({kind}: {label}) failed after {attempts} attempt(s): {}",
                error.as_deref().unwrap_or("(no error recorded)")
            ));
        }
        anyhow::anyhow!("{} task(s) failed:{message}", failed.len())
    }

    async fn sweep_orphans(&mut self, revision_run_id: i64, phase: i32) -> anyhow::Result<()> {
        let orphans: Vec<(i64, String, String, String)> = sqlx::query_as(
            "UPDATE pipeline.tasks t SET status = 'queued', queued_at = clock_timestamp()
              WHERE t.revision_run_id = $1 AND t.phase = $2 AND t.status = 'running'
                AND t.started_at < clock_timestamp() - $3 * interval '1 second'
                AND NOT EXISTS (
                    SELECT 1 FROM pg_locks l
                     WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
                       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND l.classid = ((t.id >> 32)::int8)::oid AND l.objid = ((t.id & 4294967295)::int8)::oid)
              RETURNING t.id, t.revision, t.role, t.kind",
        )
        .bind(revision_run_id)
        .bind(phase)
        .bind(ORPHAN_AFTER.as_secs_f64())
        .fetch_all(&self.pool)
        .await?;
        if orphans.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            "{} task(s) were claimed by workers that are gone; publishing them again",
            orphans.len()
        );
        let messages = messages(orphans)?;
        self.broker.publish(&messages).await
    }

    /// Records a revision applied (or undone) in `alembic_version`, the
    /// history and the revision run, in one transaction; unfinished runs of
    /// this and later revisions are abandoned, since what they did is no
    /// longer what the database holds.
    async fn record(
        &self,
        revision: &Revision,
        direction: Direction,
        revision_run_id: i64,
    ) -> anyhow::Result<()> {
        let position = catalogue::position(revision.id).expect("revision from the catalogue");
        let new_head = match direction {
            Direction::Upgrade => Some(revision.id),
            Direction::Downgrade => position.checked_sub(1).map(|i| REVISIONS[i].id),
            Direction::Rerun => return self.finish_revision_run(revision_run_id).await,
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM public.alembic_version")
            .execute(&mut *tx)
            .await?;
        if let Some(head) = new_head {
            sqlx::query("INSERT INTO public.alembic_version (version_num) VALUES ($1)")
                .bind(head)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO pipeline.revision_history (revision, direction, run_id) VALUES ($1, $2, $3)")
            .bind(revision.id)
            .bind(direction.as_str())
            .bind(self.run_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE pipeline.revision_runs SET status = 'done', finished_at = now() WHERE id = $1",
        )
        .bind(revision_run_id)
        .execute(&mut *tx)
        .await?;
        let later: Vec<&str> = REVISIONS[position..].iter().map(|r| r.id).collect();
        sqlx::query(
            "UPDATE pipeline.revision_runs SET status = 'abandoned', finished_at = now()
              WHERE id <> $1 AND revision = ANY($2) AND status IN ('failed', 'running')",
        )
        .bind(revision_run_id)
        .bind(&later)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        eprintln!(
            "{} {} ({}): recorded; alembic_version is now {}",
            revision.id,
            revision.name,
            direction.as_str(),
            new_head.unwrap_or("(base)")
        );
        Ok(())
    }

    async fn finish_revision_run(&self, revision_run_id: i64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE pipeline.revision_runs SET status = 'done', finished_at = now() WHERE id = $1",
        )
        .bind(revision_run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the command's outcome in `pipeline.runs` and releases
    /// everything.
    pub async fn finish(mut self, outcome: Result<(), &anyhow::Error>) {
        let (status, error) = match outcome {
            Ok(()) => ("succeeded", None),
            Err(e) => ("failed", Some(format!("{e:#}"))),
        };
        sqlx::query(
            "UPDATE pipeline.runs SET status = $2, error = $3, finished_at = now() WHERE id = $1",
        )
        .bind(self.run_id)
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await
        .ok();
        if let Some(mut listener) = self.listener.take() {
            let _ = listener.unlisten_all().await;
        }
        self.lock.release().await;
        self.broker.close().await;
        self.pool.close().await;
    }

    /// Stores a one-off revision run (not part of the chain) and returns its id.
    pub async fn store_adhoc(&self, revision: &str, phases: &[Phase]) -> anyhow::Result<i64> {
        self.store_plan(revision, Direction::Rerun, phases).await
    }
}
