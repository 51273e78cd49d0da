//! The worker runtime: consume, claim, execute, complete, ack, retry — the
//! one place every role goes through, and the one place where shutdown and
//! reconnection happen.
//!
//! Exactly-once effects over at-least-once delivery:
//! 1. A delivery names a task row. A task already `done` (or finally
//!    `failed`) is acked and skipped.
//! 2. The worker takes the task's advisory lock on a connection of its own.
//!    The lock lives as long as that connection: if the worker dies, the
//!    server drops the connection and the lock with it, so a redelivered
//!    message can be claimed by anyone. A lock held by another live worker
//!    means a duplicate message: acked and skipped (the holder has its own).
//! 3. The executor writes its effect and marks the task done in one
//!    transaction on that connection ([`ClaimedTask::complete`]); only after
//!    the commit is the message acked. A crash before the commit loses
//!    nothing (the transaction rolls back, the broker redelivers); a crash
//!    after it finds the task done on redelivery.
//!
//! Failures: an executor error counts an attempt; before the last attempt
//! the message is parked in a delay queue (exponential back-off) and acked;
//! after it the task is marked failed and the message rejected, so the
//! broker dead-letters it. An error marked [`Permanent`] (bad input that no
//! retry can fix) skips the retries and fails the task at once. Messages
//! that are not tasks at all are rejected at once, with a log line saying
//! why.
//!
//! Connections: a lost broker connection ends the consumers; the runtime
//! reconnects with back-off and consumes again, while tasks in hand finish
//! (their acks fail, the broker redelivers, step 1 skips them). A lost
//! database connection fails the task's transaction; the message is
//! requeued and the pool opens new connections when the server is back.
//!
//! Shutdown (SIGTERM or Ctrl-C): consumers are cancelled, tasks in hand
//! finish (up to `drain` time; after that they are abandoned and the broker
//! redelivers them), then the process exits 0.

use crate::revisions;
use anyhow::Context as _;
use futures_util::future::FutureExt;
use futures_util::stream::{SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use serde_json::Value;
use shared::backoff::{Backoff, Verdict};
use shared::catalogue::Role;
use shared::config::Config;
use shared::db;
use shared::queue::{Publisher, Topology};
use shared::task::{status, TaskMessage};
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// A task this worker holds the claim of.
#[derive(Debug, Clone)]
pub struct ClaimedTask {
    pub id: i64,
    pub revision_run_id: i64,
    pub revision: String,
    pub kind: String,
    pub phase: i32,
    pub payload: Value,
    /// 1 for the first attempt.
    pub attempt: i32,
}

/// Proof that a task was completed: executors can only return one by
/// calling [`ClaimedTask::complete`].
#[derive(Debug)]
pub struct Completed {
    pub rows_done: i64,
}

impl ClaimedTask {
    /// Marks the task done inside `tx`, which holds the task's effect, and
    /// commits both together.
    pub async fn complete(
        &self,
        mut tx: Transaction<'_, Postgres>,
        rows_done: i64,
    ) -> anyhow::Result<Completed> {
        let updated = sqlx::query(
            "UPDATE pipeline.tasks
                SET status = 'done', rows_done = $2, finished_at = clock_timestamp(), last_error = NULL
              WHERE id = $1 AND status = 'running'",
        )
        .bind(self.id)
        .bind(rows_done)
        .execute(&mut *tx)
        .await
        .context("recording the task as done")?
        .rows_affected();
        if updated != 1 {
            tx.rollback().await.ok();
            anyhow::bail!(
                "task {} was no longer claimed by this worker; its effect was rolled back",
                self.id
            );
        }
        notify(&mut tx, self.revision_run_id).await?;
        tx.commit().await.context("committing the task's effect")?;
        Ok(Completed { rows_done })
    }

    /// A typed view of the payload.
    pub fn payload<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_value(self.payload.clone()).with_context(|| {
            format!(
                "task {} ({} {}) has a payload this worker cannot read",
                self.id, self.revision, self.kind
            )
        })
    }
}

async fn notify(conn: &mut PgConnection, revision_run_id: i64) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(db::TASK_CHANNEL)
        .bind(revision_run_id.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// An error that another attempt cannot cure (bad input data, a missing
/// file): the runtime fails the task at once instead of retrying it.
/// Executors return it with `Err(Permanent::new(reason).into())`, possibly
/// wrapped in context; the runtime looks for it anywhere in the chain.
#[derive(Debug)]
pub struct Permanent(String);

impl Permanent {
    pub fn new(reason: impl Into<String>) -> Permanent {
        Permanent(reason.into())
    }
}

impl std::fmt::Display for Permanent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Permanent {}

fn is_permanent(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| cause.is::<Permanent>())
}

/// What an executor gets: its task, the connection that holds the claim (run
/// the completing transaction on it), the pool for anything else, and the
/// process-wide state.
pub struct TaskContext<'a> {
    pub task: &'a ClaimedTask,
    pub conn: &'a mut PgConnection,
    pub pool: &'a PgPool,
    pub config: &'a Config,
    pub process: &'a revisions::ProcessState,
}

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub roles: Vec<Role>,
    pub concurrency: usize,
    /// How long tasks in hand may run after a shutdown signal.
    pub drain: Duration,
    pub name: String,
}

/// What a delivery turned into; logged, and counted by tests through the
/// task table rather than through this value.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Completed,
    SkippedDone,
    SkippedClaimedElsewhere,
    Retrying,
    Failed,
    Rejected,
    Requeued,
}

struct Shared {
    config: Config,
    pool: PgPool,
    process: revisions::ProcessState,
    worker_name: String,
}

/// Runs until a shutdown signal, then drains and returns.
pub async fn run(config: Config, options: WorkerOptions) -> anyhow::Result<()> {
    let pool = db::connect(
        &config,
        (options.concurrency as u32) * 2 + 2,
        Duration::from_secs(120),
    )
    .await?;
    let shared = Arc::new(Shared {
        process: revisions::ProcessState::default(),
        config,
        pool,
        worker_name: options.name.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_shutdown_signal().await;
        tracing::info!("shutdown signal: no new tasks; finishing the ones in hand");
        let _ = stop_tx.send(true);
    });

    let slots = Arc::new(Semaphore::new(options.concurrency));
    let topology = Topology::from_config(&shared.config);
    // Forever (a worker waits for the broker however long it is away); each
    // reconnection starts again from the first delay.
    let reconnect = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    loop {
        if *stop_rx.borrow() {
            break;
        }
        let session = shared::backoff::retry(
            reconnect,
            || open_session(&shared.config, &topology, &options),
            |_| Verdict::Retry,
            |e, delay| tracing::warn!("broker not available ({e:#}); reconnecting in {delay:?}"),
        );
        let (connection, publisher, consumers) = tokio::select! {
            s = session => s?,
            _ = stopped(stop_rx.clone()) => break,
        };
        tracing::info!(
            "worker {} consuming {} with {} slots",
            options.name,
            options
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            options.concurrency
        );
        let ended = consume(&shared, &publisher, consumers, &slots, stop_rx.clone()).await;
        match ended {
            SessionEnd::Stop => {
                let _ = connection.close(200, "worker shutting down".into()).await;
                break;
            }
            SessionEnd::ConnectionLost(reason) => {
                tracing::warn!("lost the broker connection ({reason}); reconnecting");
                drop(publisher);
                let _ = connection.close(200, "reconnecting".into()).await;
            }
        }
    }

    // Drain: every slot back means no task in hand.
    let all = options.concurrency as u32;
    match tokio::time::timeout(options.drain, slots.acquire_many(all)).await {
        Ok(_) => tracing::info!("all tasks in hand finished; exiting"),
        Err(_) => tracing::warn!(
            "tasks still running after {:?}; leaving them to the broker's redelivery",
            options.drain
        ),
    }
    shared.pool.close().await;
    Ok(())
}

enum SessionEnd {
    Stop,
    ConnectionLost(String),
}

async fn open_session(
    config: &Config,
    topology: &Topology,
    options: &WorkerOptions,
) -> anyhow::Result<(Connection, Publisher, Vec<(Role, Consumer, lapin::Channel)>)> {
    let connection = shared::queue::connect(
        config,
        &format!("worker {} {}", config.queue_prefix, options.name),
        Duration::ZERO,
    )
    .await?;
    let publisher = Publisher::open(&connection, topology.clone()).await?;
    let mut consumers = Vec::new();
    for &role in &options.roles {
        let channel = connection.create_channel().await?;
        channel
            .basic_qos(
                options.concurrency.min(u16::MAX as usize) as u16,
                BasicQosOptions::default(),
            )
            .await?;
        let consumer = channel
            .basic_consume(
                topology.work_queue(role).into(),
                format!("{}-{}", options.name, role).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        consumers.push((role, consumer, channel));
    }
    Ok((connection, publisher, consumers))
}

async fn consume(
    shared: &Arc<Shared>,
    publisher: &Publisher,
    consumers: Vec<(Role, Consumer, lapin::Channel)>,
    slots: &Arc<Semaphore>,
    mut stop_rx: watch::Receiver<bool>,
) -> SessionEnd {
    let mut streams = SelectAll::new();
    let mut channels = Vec::new();
    for (role, consumer, channel) in consumers {
        let tag = consumer.tag();
        channels.push((channel, tag));
        streams.push(consumer.map(move |d| (role, d)).boxed());
    }
    loop {
        // Take a slot first: prefetch bounds what the broker sends, the
        // slots bound what runs.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore never closes"),
            _ = stop_rx.changed() => return cancel(channels).await,
        };
        let next = tokio::select! {
            n = streams.next() => n,
            _ = stop_rx.changed() => return cancel(channels).await,
        };
        match next {
            Some((role, Ok(delivery))) => {
                let shared = shared.clone();
                let publisher = publisher.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    handle_delivery(&shared, &publisher, role, delivery).await;
                });
            }
            Some((_, Err(e))) => return SessionEnd::ConnectionLost(e.to_string()),
            None => return SessionEnd::ConnectionLost("all consumers ended".into()),
        }
    }
}

async fn cancel(channels: Vec<(lapin::Channel, lapin::types::ShortString)>) -> SessionEnd {
    for (channel, tag) in channels {
        let _ = channel
            .basic_cancel(tag, BasicCancelOptions::default())
            .await;
    }
    SessionEnd::Stop
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn wait_for_shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn handle_delivery(shared: &Shared, publisher: &Publisher, role: Role, delivery: Delivery) {
    let outcome = match TaskMessage::parse(&delivery.data, role) {
        Err(e) => {
            tracing::error!(
                "rejecting a message on the {role} queue to the dead-letter queue: {e}; body: {}",
                preview(&delivery.data)
            );
            Outcome::Rejected
        }
        Ok(message) if !revisions::knows(&message.revision, &message.kind) => {
            tracing::error!(
                "rejecting task {} to the dead-letter queue: this worker has no executor for revision {} kind {:?}",
                message.task_id,
                message.revision,
                message.kind
            );
            Outcome::Rejected
        }
        Ok(message) => match process(shared, publisher, &message).boxed().await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!("task {}: {e:#}; requeueing the message", message.task_id);
                tokio::time::sleep(Duration::from_millis(500)).await;
                Outcome::Requeued
            }
        },
    };
    let acked = match outcome {
        Outcome::Rejected | Outcome::Failed => {
            delivery
                .nack(BasicNackOptions {
                    requeue: false,
                    ..BasicNackOptions::default()
                })
                .await
        }
        Outcome::Requeued => {
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
        _ => delivery.ack(BasicAckOptions::default()).await,
    };
    if let Err(e) = acked {
        // The channel died with the connection: the broker redelivers, and
        // the task row decides what happens then.
        tracing::debug!("could not settle a delivery ({e}); the broker will redeliver it");
    }
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut shown: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        shown.push('…');
    }
    shown
}

/// Claims, executes and settles one task. An `Err` means the database could
/// not be reached to record anything: the caller requeues the message.
async fn process(
    shared: &Shared,
    publisher: &Publisher,
    message: &TaskMessage,
) -> anyhow::Result<Outcome> {
    let mut conn: PoolConnection<Postgres> = shared.pool.acquire().await?;
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM pipeline.tasks WHERE id = $1")
        .bind(message.task_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some((current,)) = row else {
        tracing::error!(
            "rejecting task {} to the dead-letter queue: no such task row in this database",
            message.task_id
        );
        return Ok(Outcome::Rejected);
    };
    if current == status::DONE || current == status::FAILED {
        return Ok(Outcome::SkippedDone);
    }
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(message.task_id)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Outcome::SkippedClaimedElsewhere);
    }
    let result = run_claimed(shared, publisher, message, &mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(message.task_id)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // A connection we cannot unlock must not go back to the pool with the lock.
        conn.detach();
    }
    result
}

async fn run_claimed(
    shared: &Shared,
    publisher: &Publisher,
    message: &TaskMessage,
    conn: &mut PgConnection,
) -> anyhow::Result<Outcome> {
    let claimed: Option<(i64, String, String, i32, Value, i32, i32)> = sqlx::query_as(
        "UPDATE pipeline.tasks
            SET status = 'running', attempts = attempts + 1, worker = $2, started_at = clock_timestamp()
          WHERE id = $1 AND status NOT IN ('done', 'failed')
          RETURNING revision_run_id, revision, kind, phase, payload, attempts, max_attempts",
    )
    .bind(message.task_id)
    .bind(&shared.worker_name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((revision_run_id, revision, kind, phase, payload, attempt, max_attempts)) = claimed
    else {
        return Ok(Outcome::SkippedDone);
    };
    let task = ClaimedTask {
        id: message.task_id,
        revision_run_id,
        revision,
        kind,
        phase,
        payload,
        attempt,
    };
    let started = std::time::Instant::now();
    let result = revisions::execute(TaskContext {
        task: &task,
        conn: &mut *conn,
        pool: &shared.pool,
        config: &shared.config,
        process: &shared.process,
    })
    .await;
    match result {
        Ok(done) => {
            tracing::debug!(
                "task {} ({} {}) done: {} rows in {:?}",
                task.id,
                task.revision,
                task.kind,
                done.rows_done,
                started.elapsed()
            );
            Ok(Outcome::Completed)
        }
        Err(e) if db::is_transient_chain(&e) => {
            // Not the task's fault: put it back, uncounted, for when the
            // database answers. The claim's connection may be the one that
            // broke, so this goes through the pool, and only while no other
            // worker has claimed the task since.
            let _ = sqlx::query(
                "UPDATE pipeline.tasks SET status = 'queued', attempts = attempts - 1
                  WHERE id = $1 AND status = 'running' AND worker = $2",
            )
            .bind(task.id)
            .bind(&shared.worker_name)
            .execute(&shared.pool)
            .await;
            Err(e)
        }
        Err(e) => {
            let error = format!("{e:#}");
            if attempt < max_attempts && !is_permanent(&e) {
                let delay = Topology::retry_delay(attempt);
                tracing::warn!(
                    "task {} ({} {}) attempt {attempt}/{max_attempts} failed: {error}; retrying in {delay:?}",
                    task.id,
                    task.revision,
                    task.kind
                );
                record_failure(conn, &task, status::RETRYING, &error).await?;
                publisher.publish_retry(message, delay).await?;
                Ok(Outcome::Retrying)
            } else {
                tracing::error!(
                    "task {} ({} {}) failed after {attempt} attempt(s): {error}",
                    task.id,
                    task.revision,
                    task.kind
                );
                record_failure(conn, &task, status::FAILED, &error).await?;
                Ok(Outcome::Failed)
            }
        }
    }
}

async fn record_failure(
    conn: &mut PgConnection,
    task: &ClaimedTask,
    new_status: &str,
    error: &str,
) -> anyhow::Result<()> {
    let finished = new_status == status::FAILED;
    sqlx::query(
        "UPDATE pipeline.tasks
            SET status = $2, last_error = $3,
                finished_at = CASE WHEN $4 THEN clock_timestamp() ELSE finished_at END
          WHERE id = $1 AND status = 'running'",
    )
    .bind(task.id)
    .bind(new_status)
    .bind(error)
    .bind(finished)
    .execute(&mut *conn)
    .await?;
    notify(conn, task.revision_run_id).await?;
    Ok(())
}
