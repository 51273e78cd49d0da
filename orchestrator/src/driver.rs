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
//! Every statement on the pipeline tables goes through `shared::store`;
//! what a revision plans comes from its entry in `revisions::registry`.
//!
//! While waiting it also sweeps orphans: a task marked running whose
//! advisory lock nobody holds belonged to a worker that died; it is
//! published again. The broker would redeliver it anyway; the sweep covers
//! the case where the redelivered copy was skipped as a duplicate.

use crate::lock::{RunLock, WaitPolicy};
use crate::progress::PhaseProgress;
use anyhow::Context;
use revisions::registry::CHAIN;
use revisions::Revision;
use shared::backoff::Backoff;
use shared::db;
use shared::plan::{Direction, Phase, PlanContext, RerunFlags};
use shared::queue::{Publisher, Topology};
use shared::store::{self, RunStatus};
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
    /// Stamped on every message (`pipeline.identity`).
    database: uuid::Uuid,
    connection: Option<lapin::Connection>,
    publisher: Option<Publisher>,
}

impl Broker {
    pub fn new(config: &Config, database: uuid::Uuid) -> Broker {
        Broker {
            config: config.clone(),
            database,
            connection: None,
            publisher: None,
        }
    }

    async fn publisher(&mut self) -> anyhow::Result<&Publisher> {
        let alive = self.publisher.as_ref().is_some_and(|p| p.is_connected());
        if !alive {
            let topology = Topology::for_database(&self.config, self.database);
            let connection = shared::queue::connect(
                &self.config,
                &format!("orchestrator {}", topology.prefix()),
                Duration::from_secs(120),
            )
            .await?;
            let mut publisher = Publisher::open(
                &connection,
                topology,
                Duration::from_secs(self.config.confirm_timeout_secs),
            )
            .await?;
            publisher.stamp_database(self.database);
            shared::metrics::broker_connected(connection.status().clone());
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
                    shared::metrics::broker_lost();
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

    /// Messages ready in a role's work queue (an error when it is gone or
    /// the broker is away).
    pub async fn ready_messages(&mut self, role: shared::Role) -> anyhow::Result<u32> {
        let counted = self.publisher().await?.ready_messages(role).await;
        if counted.is_err() {
            self.publisher = None;
            self.connection = None;
        }
        counted
    }

    pub async fn close(self) {
        shared::metrics::broker_lost();
        if let Some(connection) = self.connection {
            let _ = connection.close(200, "orchestrator done".into()).await;
        }
    }
}

/// The driver's pool.
const POOL_SIZE: u32 = 8;

/// Connections an orchestrator running a move opens at most: the driver's
/// pool, the run lock's connection and the listener's.
pub const CONNECTIONS: u32 = POOL_SIZE + 2;

pub struct Driver {
    pub config: Config,
    pub pool: PgPool,
    pub broker: Broker,
    lock: RunLock,
    run_id: i64,
    listener: Option<PgListener>,
    /// What re-runs were asked for (`rerun --full`, `--prune`).
    pub rerun: RerunFlags,
    /// The revision and direction whose phases run now: the labels of the
    /// phase metrics.
    running: (String, Direction),
}

/// Opens the database, creates the pipeline tables, takes the run lock and
/// records the run.
pub async fn start(config: &Config, options: &RunOptions) -> anyhow::Result<Driver> {
    let pool = db::connect(config, POOL_SIZE, Duration::from_secs(60)).await?;
    shared::metrics::watch(pool.clone());
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
    let run_id = store::start_run(&pool, &options.command, &requested_by).await?;
    let database = store::database_identity(&pool).await?;
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
        broker: Broker::new(config, database),
        lock,
        run_id,
        listener,
        rerun: RerunFlags::default(),
        running: (String::new(), Direction::Upgrade),
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
            shared::say!(
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
        let (config, pool) = (self.config.clone(), self.pool.clone());
        self.running = (revision.id.to_string(), direction);
        let ctx = PlanContext {
            config: &config,
            pool: &pool,
            direction,
            data_dir: data_dir.to_path_buf(),
            rerun: match direction {
                Direction::Rerun => self.rerun,
                _ => RerunFlags::default(),
            },
        };
        let resumable = store::resumable_revision_run(&self.pool, revision.id, direction).await?;
        let revision_run_id = match resumable {
            Some(id) => {
                let done = store::resume_revision_run(&self.pool, id, self.run_id).await?;
                shared::say!("resuming revision run #{id}: {done} task(s) already done are kept");
                id
            }
            None => {
                let phases = revision.plan(&ctx).await.with_context(|| {
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
        let phase_names = store::phase_names(&self.pool, revision_run_id).await?;
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
                report(revision, &self.pool, revision_run_id).await;
                let message = format!("{e:#}");
                // Fenced: a run that lost its lock undoes nothing.
                if let Err(fenced) =
                    store::fail_revision_run(&self.pool, revision_run_id, self.run_id, &message)
                        .await
                {
                    return Err(e.context(fenced));
                }
                let undo_failure = match revision.planner.undo_partial(&ctx, revision_run_id).await
                {
                    Ok(true) => {
                        store::abandon_revision_run(&self.pool, revision_run_id, self.run_id)
                            .await?;
                        return Err(e.context(format!(
                            "revision {} ({}) failed and was rolled back: the database is as it was before it started",
                            revision.id, revision.name
                        )));
                    }
                    Ok(false) => String::new(),
                    Err(undo) => format!(
                        " (undoing what it had done failed too: {undo:#}; it stays as it was left)"
                    ),
                };
                return Err(e.context(format!(
                    "revision {} ({}) failed{undo_failure}; fix the cause and run the same command again to resume",
                    revision.id, revision.name
                )));
            }
        }
        report(revision, &self.pool, revision_run_id).await;
        self.record(revision, direction, revision_run_id).await
    }

    async fn store_plan(
        &self,
        revision: &str,
        direction: Direction,
        phases: &[Phase],
    ) -> anyhow::Result<i64> {
        store::store_plan(
            &self.pool,
            self.run_id,
            revision,
            direction,
            phases,
            self.config.task_max_attempts,
        )
        .await
    }

    /// Publishes a phase's unfinished tasks and waits for all of them.
    pub async fn run_phase(
        &mut self,
        revision_run_id: i64,
        phase: i32,
        title: &str,
    ) -> anyhow::Result<()> {
        let messages = store::queue_phase(&self.pool, revision_run_id, phase).await?;
        for batch in messages.chunks(PUBLISH_BATCH) {
            self.broker.publish(batch).await?;
        }
        self.wait_phase(revision_run_id, phase, title).await
    }

    async fn wait_phase(
        &mut self,
        revision_run_id: i64,
        phase: i32,
        title: &str,
    ) -> anyhow::Result<()> {
        let initial = store::phase_counts(&self.pool, revision_run_id, phase).await?;
        let labels = shared::metrics::PhaseLabels {
            revision: self.running.0.clone(),
            direction: self.running.1.as_str().to_string(),
            phase: (phase + 1).to_string(),
        };
        let mut progress = PhaseProgress::start(title.to_string(), initial.total, labels);
        let mut last_sweep = Instant::now();
        loop {
            let counts = match store::phase_counts(&self.pool, revision_run_id, phase).await {
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
        let failed = store::failed_tasks(&self.pool, revision_run_id, phase, 5)
            .await
            .unwrap_or_default();
        let mut message = String::new();
        for task in &failed {
            message.push_str(&format!(
                "\n  task {} ({}: {}) failed after {} attempt(s): {}",
                task.id,
                task.kind,
                task.label,
                task.attempts,
                task.last_error.as_deref().unwrap_or("(no error recorded)")
            ));
        }
        anyhow::anyhow!("{} task(s) failed:{message}", failed.len())
    }

    /// The reconciler, run while a phase is waited on: nothing it waits for
    /// may be stuck without anybody to move it.
    /// - tasks `running` under no lock (their worker died) are queued again;
    /// - tasks `running` under a lock whose lease lapsed (the worker is
    ///   stopped, hung or cut off) are taken back: its backend is terminated;
    /// - tasks waiting with no message in sight (their role's queue has none
    ///   ready, or their delay ran out long ago) are published again.
    ///
    /// Every one of them is published again; a duplicate is harmless.
    async fn sweep_orphans(&mut self, revision_run_id: i64, phase: i32) -> anyhow::Result<()> {
        let lease = Duration::from_secs(self.config.task_lease_secs);
        let reconcile_after = Duration::from_secs(self.config.task_reconcile_secs);
        let orphans =
            store::requeue_orphans(&self.pool, revision_run_id, phase, ORPHAN_AFTER).await?;
        let stale = store::take_back_stale(&self.pool, revision_run_id, phase, lease).await?;
        let watched = store::Watched::Phase {
            revision_run_id,
            phase,
        };
        let mut drained = Vec::new();
        for role in store::waiting_roles(&self.pool, watched, Duration::ZERO).await? {
            match self.broker.ready_messages(role).await {
                Ok(0) | Err(_) => drained.push(role),
                Ok(_) => {}
            }
        }
        let lost = store::possibly_lost(&self.pool, watched, &drained, reconcile_after).await?;
        if !orphans.is_empty() {
            tracing::warn!(
                "{} task(s) were claimed by workers that are gone; publishing them again",
                orphans.len()
            );
        }
        if !stale.is_empty() {
            tracing::warn!(
                "{} task(s) were held by workers that stopped renewing their lease ({lease:?}); took them back and published them again",
                stale.len()
            );
        }
        if !lost.is_empty() {
            tracing::warn!(
                "{} task(s) waited over {reconcile_after:?} with no message in sight; publishing them again",
                lost.len()
            );
        }
        let all: Vec<_> = orphans.into_iter().chain(stale).chain(lost).collect();
        if all.is_empty() {
            return Ok(());
        }
        self.broker.publish(&all).await
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
        let position = revisions::registry::position(revision.id).expect("a revision of the chain");
        let new_head = match direction {
            Direction::Upgrade => Some(revision.id),
            Direction::Downgrade => position.checked_sub(1).map(|i| CHAIN[i].id),
            Direction::Rerun => return self.finish_revision_run(revision_run_id).await,
        };
        let overtaken: Vec<&str> = CHAIN[position..].iter().map(|r| r.id).collect();
        store::record_revision(
            &self.pool,
            self.run_id,
            revision_run_id,
            revision.id,
            direction,
            new_head,
            &overtaken,
        )
        .await?;
        shared::say!(
            "{} {} ({}): recorded; alembic_version is now {}",
            revision.id,
            revision.name,
            direction.as_str(),
            new_head.unwrap_or("(base)")
        );
        Ok(())
    }

    async fn finish_revision_run(&self, revision_run_id: i64) -> anyhow::Result<()> {
        store::finish_revision_run(&self.pool, revision_run_id, self.run_id).await
    }

    /// Records the command's outcome in `pipeline.runs` and releases
    /// everything.
    pub async fn finish(mut self, outcome: Result<(), &anyhow::Error>) {
        let (status, error) = match outcome {
            Ok(()) => (RunStatus::Succeeded, None),
            Err(e) => (RunStatus::Failed, Some(format!("{e:#}"))),
        };
        store::finish_run(&self.pool, self.run_id, status, error.as_deref())
            .await
            .ok();
        if let Some(mut listener) = self.listener.take() {
            let _ = listener.unlisten_all().await;
        }
        self.lock.release().await;
        self.broker.close().await;
        self.pool.close().await;
    }

    /// `stamp`: sets `alembic_version` under the run lock, recorded as this run's.
    pub async fn stamp(&self, new_head: Option<&str>) -> anyhow::Result<()> {
        store::stamp(&self.pool, self.run_id, new_head).await
    }

    /// Stores a one-off revision run (not part of the chain) and returns its id.
    pub async fn store_adhoc(&mut self, revision: &str, phases: &[Phase]) -> anyhow::Result<i64> {
        self.running = (revision.to_string(), Direction::Rerun);
        self.store_plan(revision, Direction::Rerun, phases).await
    }
}

/// Prints what the revision says about its run (tokens, failures); a report
/// that cannot be read is only a warning.
async fn report(revision: &Revision, pool: &sqlx::PgPool, revision_run_id: i64) {
    match revision.planner.report(pool, revision_run_id).await {
        Ok(lines) => {
            for line in lines {
                shared::say!("{}: {line}", revision.name);
            }
        }
        Err(e) => {
            tracing::warn!("cannot read the report of revision run #{revision_run_id}: {e:#}")
        }
    }
}
