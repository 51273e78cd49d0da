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
//!    transaction on that connection (`shared::exec::ClaimedTask::complete`); only after
//!    the commit is the message acked. A crash before the commit loses
//!    nothing (the transaction rolls back, the broker redelivers); a crash
//!    after it finds the task done on redelivery.
//!
//! Failures: an executor error counts an attempt; before the last attempt
//! the message is parked in a delay queue (exponential back-off) and acked;
//! after it the task is marked failed and the message rejected, so the
//! broker dead-letters it. An error marked `shared::exec::Permanent` (bad
//! input that no retry can fix) skips the retries and fails the task at
//! once. Messages that are not tasks at all are rejected at once, with a log
//! line saying why. [`settle`] and [`Outcome::delivery`] are that policy, as
//! pure functions.
//!
//! Deadlines: a task of each kind may run for its `TASK_DEADLINE_SECS`.
//! Past it, the runtime terminates the database backend of the task's claim
//! (so the statement it is stuck in, its transaction and its lock go) and
//! settles the attempt like any failure: retried, or failed at the last
//! attempt, with "the deadline of N s passed". Next to `lock_timeout`, the
//! server bounds every statement too (`statement_timeout`): on a task's
//! claim connection at its kind's deadline, on the pool's others at the
//! longest, each plus a margin, so that the runtime acts first.
//!
//! Executors come from the registry of the `revisions` crate, one per
//! revision, built once when the process starts; each owns its clients.
//!
//! Connections: a lost broker connection ends the consumers; the runtime
//! reconnects with back-off and consumes again, while tasks in hand finish
//! (their acks fail, the broker redelivers, step 1 skips them). A lost
//! database connection fails the task's transaction; the message is
//! requeued and the pool opens new connections when the server is back.
//!
//! Reconciling: beside its consumers, each broker session runs the worker's
//! reconciler ([`Session::reconcile`]): the tasks of its roles that wait with
//! no message in sight are published again (the orchestrator's own query,
//! `store::possibly_lost`), and consumers that look deaf — every slot free,
//! nothing delivered, while tasks wait and their queue has messages ready —
//! end the session as a lost connection does, so that the worker connects,
//! declares and subscribes again.
//!
//! Queues: named after `QUEUE_PREFIX`, or when it is unset after the
//! database's identity (`Topology::for_database`); a worker waits for that
//! identity until an orchestrator has made the pipeline tables, and never
//! makes them itself.
//!
//! Shutdown (SIGTERM or Ctrl-C): consumers are cancelled, tasks in hand
//! finish (up to `drain` time; after that they are abandoned and the broker
//! redelivers them), then the process exits 0.

use futures_util::future::FutureExt;
use futures_util::stream::{SelectAll, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lapin::{Connection, Consumer};
use revisions::Executor;
use shared::backoff::{Backoff, Verdict};
use shared::catalogue::Role;
use shared::config::Config;
use shared::db;
use shared::exec::{ClaimedTask, FailureKind, TaskContext};
use shared::metrics::{self, TaskRun};
use shared::queue::{Publisher, Topology};
use shared::store::{self, TaskStatus};
use shared::task::TaskMessage;
use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tracing::Instrument;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    SkippedDone,
    SkippedClaimedElsewhere,
    /// Parked in a delay queue for its next attempt.
    Retrying,
    Failed,
    /// Not a task this worker can take (poison).
    Rejected,
    /// The database could not record anything: the broker delivers it again.
    Requeued,
}

/// How a delivery is settled with the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivered {
    Ack,
    /// Rejected without requeue: the broker dead-letters it.
    DeadLetter,
    Requeue,
}

impl Outcome {
    fn delivery(self) -> Delivered {
        match self {
            Outcome::Rejected | Outcome::Failed => Delivered::DeadLetter,
            Outcome::Requeued => Delivered::Requeue,
            Outcome::Completed
            | Outcome::SkippedDone
            | Outcome::SkippedClaimedElsewhere
            // The retry copy is in its delay queue, published with confirms.
            | Outcome::Retrying => Delivered::Ack,
        }
    }
}

/// What happens to a claimed task after its executor returned an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settlement {
    /// Back to queued, the attempt not counted; the message is requeued.
    Release,
    /// Another attempt after this delay.
    Retry(Duration),
    /// No more attempts.
    Fail,
    /// Not a failure: again after this delay, uncounted.
    CheckBack(Duration),
}

/// The retry policy: a database outage is not the task's fault; a permanent
/// error, or the last attempt, fails the task; anything else is retried
/// after the back-off of its attempt.
fn settle(failure: FailureKind, attempt: i32, max_attempts: i32) -> Settlement {
    match failure {
        FailureKind::CheckBack(after) => Settlement::CheckBack(Topology::check_back_delay(after)),
        FailureKind::Transient => Settlement::Release,
        FailureKind::Permanent => Settlement::Fail,
        FailureKind::Retryable if attempt < max_attempts => {
            Settlement::Retry(Topology::retry_delay(attempt))
        }
        FailureKind::Retryable => Settlement::Fail,
    }
}

struct Shared {
    config: Config,
    pool: PgPool,
    /// One executor per registered revision, built once for the process.
    executors: HashMap<&'static str, Box<dyn Executor>>,
    worker_name: String,
    /// This worker's database's identity: read at start when the queue
    /// prefix is derived from it, else at the first message that names one
    /// (the orchestrator makes it before it publishes).
    database: tokio::sync::OnceCell<uuid::Uuid>,
}

impl Shared {
    /// The identity, read once it exists; `None` while the pipeline tables
    /// are not made (this worker never makes them).
    async fn identity(&self) -> anyhow::Result<Option<uuid::Uuid>> {
        if let Some(known) = self.database.get() {
            return Ok(Some(*known));
        }
        let read = store::database_identity_if_made(&self.pool).await?;
        if let Some(id) = read {
            let _ = self.database.set(id);
        }
        Ok(read)
    }
}

/// How often a worker whose queues are named after its database's identity
/// looks again for the pipeline tables that hold it.
const IDENTITY_POLL: Duration = Duration::from_secs(2);

/// The database's identity, waiting (forever, saying so) until an
/// orchestrator has made the pipeline tables: with `QUEUE_PREFIX` unset the
/// worker's queues are named after it, and a worker never makes the tables
/// itself.
async fn wait_for_identity(shared: &Shared) -> anyhow::Result<uuid::Uuid> {
    let mut said = None::<std::time::Instant>;
    loop {
        match shared.identity().await {
            Ok(Some(id)) => return Ok(id),
            Ok(None) => {
                if said.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        "database {} has no pipeline tables yet: QUEUE_PREFIX is unset, so this worker's queues are named after the database's identity (pipeline.identity), which the first orchestrator command on it makes (`orchestrator upgrade`); waiting for it (set QUEUE_PREFIX to consume at once)",
                        shared.config.database_url
                    );
                    said = Some(std::time::Instant::now());
                }
            }
            Err(e) if db::is_transient_chain(&e) => {
                tracing::warn!("reading this database's identity: {e:#}; retrying")
            }
            Err(e) => return Err(e.context("reading this database's identity (pipeline.identity)")),
        }
        tokio::time::sleep(IDENTITY_POLL).await;
    }
}

/// Runs until a shutdown signal, then drains and returns.
pub async fn run(config: Config, options: WorkerOptions) -> anyhow::Result<()> {
    let lock_timeout = format!("{}s", config.task_lock_timeout_secs);
    // No statement outlives the longest deadline, whichever connection of
    // the pool an executor runs it on; a task's own claim connection gets
    // its kind's deadline (`run_claimed`).
    let statement_timeout = format!(
        "{}ms",
        (config.task_deadlines.longest() + STATEMENT_TIMEOUT_MARGIN).as_millis()
    );
    let connections = db::worker_connections(options.concurrency);
    let pool = db::connect_with_settings(
        &config,
        connections,
        Duration::from_secs(120),
        &[
            ("lock_timeout", lock_timeout),
            ("statement_timeout", statement_timeout),
        ],
    )
    .await?;
    db::check_connection_budget(
        &pool,
        connections,
        &format!(
            "this worker (--concurrency / WORKER_CONCURRENCY {}: 2 per slot and 2 more)",
            options.concurrency
        ),
    )
    .await?;
    metrics::watch(pool.clone());
    let executors = revisions::registry::CHAIN
        .iter()
        .chain(revisions::registry::DIAGNOSTIC)
        .map(|r| (r.id, (r.executor)(&config)))
        .collect();
    let shared = Arc::new(Shared {
        executors,
        config,
        pool,
        worker_name: options.name.clone(),
        database: tokio::sync::OnceCell::new(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(
        async move {
            wait_for_shutdown_signal().await;
            tracing::info!("shutdown signal: no new tasks; finishing the ones in hand");
            let _ = stop_tx.send(true);
        }
        .in_current_span(),
    );

    let slots = Arc::new(Semaphore::new(options.concurrency));
    let topology = match Topology::explicit(&shared.config) {
        Some(topology) => topology,
        None => {
            let database = tokio::select! {
                d = wait_for_identity(&shared) => d?,
                _ = stopped(stop_rx.clone()) => return Ok(()),
            };
            Topology::for_database(&shared.config, database)
        }
    };
    // Forever (a worker waits for the broker however long it is away); each
    // reconnection starts again from the first delay.
    let reconnect = Backoff::new(Duration::from_millis(250), Duration::from_secs(10));
    // The session at shutdown, kept open through the drain: the tasks in
    // hand ack their messages and publish their retries on it.
    let mut last_session = None;
    loop {
        if *stop_rx.borrow() {
            break;
        }
        let session = shared::backoff::retry(
            reconnect,
            || open_session(&shared.config, &topology, &options),
            |e| {
                if e.chain().any(shared::backoff::is_tls_refusal) {
                    Verdict::Stop
                } else {
                    Verdict::Retry
                }
            },
            |e, delay| tracing::warn!("broker not available ({e:#}); reconnecting in {delay:?}"),
        );
        let (connection, publisher, consumers) = tokio::select! {
            s = session => s?,
            _ = stopped(stop_rx.clone()) => break,
        };
        metrics::broker_connected(connection.status().clone());
        metrics::set_consuming(true);
        tracing::info!(
            "worker {} consuming {} of {} with {} slots",
            options.name,
            options
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(","),
            topology.prefix(),
            options.concurrency
        );
        let session = Session {
            shared: &shared,
            publisher: &publisher,
            connection: &connection,
            topology: &topology,
            options: &options,
            slots: &slots,
            last_delivery: std::sync::Mutex::new(std::time::Instant::now()),
            in_hand: Arc::default(),
        };
        let ended = session.run(consumers, stop_rx.clone()).await;
        match ended {
            SessionEnd::Stop(channels) => {
                metrics::set_consuming(false);
                last_session = Some((connection, publisher, channels));
                break;
            }
            SessionEnd::ConnectionLost(reason) => {
                metrics::broker_lost();
                tracing::warn!("lost the broker connection ({reason}); reconnecting");
                drop(publisher);
                let _ = connection.close(200, "reconnecting".into()).await;
            }
        }
    }

    // Drain: every slot back means no task in hand.
    let all = options.concurrency as u32;
    let drained = tokio::time::timeout(options.drain, slots.acquire_many(all)).await;
    if let Some((connection, publisher, channels)) = last_session {
        drop((publisher, channels));
        let _ = connection.close(200, "worker shutting down".into()).await;
    }
    match drained {
        Ok(_) => {
            tracing::info!("all tasks in hand finished; exiting");
            shared.pool.close().await;
        }
        // Not waiting for the pool either: a task past the drain still has
        // its connection checked out. Exiting closes it, its transaction
        // rolls back, and the broker redelivers its message.
        Err(_) => tracing::warn!(
            "tasks still running after {:?}; exiting without them (the broker redelivers their messages)",
            options.drain
        ),
    }
    Ok(())
}

enum SessionEnd {
    /// The consumers' channels, kept open with the connection through the
    /// drain (closing a channel loses the acks of its deliveries).
    Stop(Vec<lapin::Channel>),
    ConnectionLost(String),
}

async fn open_session(
    config: &Config,
    topology: &Topology,
    options: &WorkerOptions,
) -> anyhow::Result<(Connection, Publisher, Vec<(Role, Consumer, lapin::Channel)>)> {
    let connection = shared::queue::connect(
        config,
        &format!("worker {} {}", topology.prefix(), options.name),
        Duration::ZERO,
    )
    .await?;
    let publisher = Publisher::open(
        &connection,
        topology.clone(),
        Duration::from_secs(config.confirm_timeout_secs),
    )
    .await?;
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

/// One broker session: its consumers, and beside them the worker's
/// reconciler.
struct Session<'a> {
    shared: &'a Arc<Shared>,
    publisher: &'a Publisher,
    connection: &'a Connection,
    topology: &'a Topology,
    options: &'a WorkerOptions,
    slots: &'a Arc<Semaphore>,
    /// When the last delivery came (or the session opened).
    last_delivery: std::sync::Mutex<std::time::Instant>,
    /// Deliveries being handled now (the consume loop holds a slot of its
    /// own while it waits, so the free slots do not tell).
    in_hand: Arc<std::sync::atomic::AtomicUsize>,
}

impl Session<'_> {
    /// Consumes until a shutdown, a lost connection, or the reconciler
    /// finds the consumers deaf.
    async fn run(
        &self,
        consumers: Vec<(Role, Consumer, lapin::Channel)>,
        stop_rx: watch::Receiver<bool>,
    ) -> SessionEnd {
        tokio::select! {
            ended = self.consume(consumers, stop_rx) => ended,
            ended = self.reconcile() => ended,
        }
    }

    async fn consume(
        &self,
        consumers: Vec<(Role, Consumer, lapin::Channel)>,
        mut stop_rx: watch::Receiver<bool>,
    ) -> SessionEnd {
        let mut streams = SelectAll::new();
        let mut channels = Vec::new();
        for (role, consumer, channel) in consumers {
            let tag = consumer.tag();
            channels.push((channel, tag));
            // A consumer's stream also ends when the broker cancels it (its
            // queue was deleted): the `None` after its last delivery says so,
            // so that the worker subscribes again instead of going on without
            // that role.
            let ended = futures_util::stream::once(async move { (role, None) });
            streams.push(consumer.map(move |d| (role, Some(d))).chain(ended).boxed());
        }
        loop {
            // Take a slot first: prefetch bounds what the broker sends, the
            // slots bound what runs.
            let permit = tokio::select! {
                p = self.slots.clone().acquire_owned() => p.expect("semaphore never closes"),
                _ = stop_rx.changed() => return cancel(channels).await,
            };
            let next = tokio::select! {
                n = streams.next() => n,
                _ = stop_rx.changed() => return cancel(channels).await,
            };
            match next {
                Some((role, Some(Ok(delivery)))) => {
                    *self.last_delivery.lock().expect("not poisoned") = std::time::Instant::now();
                    let shared = self.shared.clone();
                    let publisher = self.publisher.clone();
                    let in_hand = self.in_hand.clone();
                    in_hand.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(
                        async move {
                            let _permit = permit;
                            handle_delivery(&shared, &publisher, role, delivery).await;
                            in_hand.fetch_sub(1, Ordering::SeqCst);
                        }
                        .in_current_span(),
                    );
                }
                Some((_, Some(Err(e)))) => return SessionEnd::ConnectionLost(e.to_string()),
                Some((role, None)) => {
                    return SessionEnd::ConnectionLost(format!(
                        "the broker cancelled the {role} consumer (its queue deleted?)"
                    ))
                }
                None => return SessionEnd::ConnectionLost("no consumers".into()),
            }
        }
    }

    /// The worker's reconciler: every `TASK_RECONCILE_EVERY_SECS` it
    /// publishes again the tasks of its roles whose message may be lost
    /// (see [`store::possibly_lost`], the orchestrator's own query), and
    /// ends the session when its consumers look deaf; it returns only then.
    async fn reconcile(&self) -> SessionEnd {
        let every = Duration::from_secs(self.shared.config.task_reconcile_every_secs);
        // Deaf twice in a row: a message published a moment ago is not yet
        // evidence.
        let mut suspect = false;
        loop {
            tokio::time::sleep(every).await;
            match self.reconcile_once().await {
                Ok(Some(deaf)) if suspect => {
                    tracing::warn!("{deaf}; reopening the broker session");
                    return SessionEnd::ConnectionLost(deaf);
                }
                Ok(deaf) => suspect = deaf.is_some(),
                Err(e) => {
                    suspect = false;
                    tracing::warn!("reconciling the tasks of this worker's roles: {e:#}");
                }
            }
        }
    }

    /// One look: returns why the consumers look deaf — every slot free, no
    /// delivery for half of `TASK_RECONCILE_SECS`, while tasks of a role
    /// wait that long and its queue has messages ready — or publishes the
    /// tasks of drained queues again.
    async fn reconcile_once(&self) -> anyhow::Result<Option<String>> {
        let Some(database) = self.shared.identity().await? else {
            return Ok(None);
        };
        let after = Duration::from_secs(self.shared.config.task_reconcile_secs);
        let deaf_after = after / 2;
        let watched = store::Watched::Roles(&self.options.roles);
        let waiting = store::waiting_roles(&self.shared.pool, watched, deaf_after).await?;
        if waiting.is_empty() {
            return Ok(None);
        }
        let mut drained = Vec::new();
        let mut ready = Vec::new();
        for role in waiting {
            // A failed look (the queue is gone) closes its channel.
            let channel = self.connection.create_channel().await?;
            match self.topology.ready_messages(&channel, role).await {
                Ok(0) | Err(_) => drained.push(role),
                Ok(n) => ready.push(format!("{n} in {}", self.topology.work_queue(role))),
            }
            let _ = channel.close(200, "looked".into()).await;
        }
        let silent = self.last_delivery.lock().expect("not poisoned").elapsed();
        let idle = self.in_hand.load(Ordering::SeqCst) == 0;
        if idle && silent >= deaf_after && !ready.is_empty() {
            return Ok(Some(format!(
                "no delivery for {silent:.0?} with every slot free, while tasks of this worker's roles wait over {deaf_after:?} (half of TASK_RECONCILE_SECS) and messages are ready ({}): the consumers look deaf",
                ready.join(", ")
            )));
        }
        let mut lost = store::possibly_lost(&self.shared.pool, watched, &drained, after).await?;
        if lost.is_empty() {
            return Ok(None);
        }
        tracing::warn!(
            "{} task(s) of this worker's roles waited over {after:?} with no message in sight; publishing them again",
            lost.len()
        );
        for message in &mut lost {
            message.database = Some(database);
        }
        self.publisher.publish_tasks(&lost).await?;
        Ok(None)
    }
}

async fn cancel(channels: Vec<(lapin::Channel, lapin::types::ShortString)>) -> SessionEnd {
    let mut open = Vec::with_capacity(channels.len());
    for (channel, tag) in channels {
        let _ = channel
            .basic_cancel(tag, BasicCancelOptions::default())
            .await;
        open.push(channel);
    }
    SessionEnd::Stop(open)
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

/// Whether `message` is for this worker's database (a message that names
/// none is). One for another database is dead-lettered with the reason: its
/// task id means another task here.
async fn same_database(shared: &Shared, message: &TaskMessage) -> bool {
    let Some(theirs) = message.database else {
        return true;
    };
    let ours = shared
        .database
        .get_or_try_init(|| store::database_identity(&shared.pool))
        .await;
    match ours {
        Ok(ours) if *ours == theirs => true,
        Ok(ours) => {
            tracing::error!(
                "rejecting task {} ({} {}) to the dead-letter queue: it belongs to database {theirs}, and this worker serves database {ours}; give each database its own QUEUE_PREFIX",
                message.task_id,
                message.revision,
                message.kind
            );
            false
        }
        Err(e) => {
            // Unknown yet: let the claim decide, as before identities.
            tracing::warn!("{e:#}; task {} not checked against it", message.task_id);
            true
        }
    }
}

/// Whether this worker has an executor for the revision a message names.
fn runs_revision(id: &str) -> bool {
    revisions::registry::find(id).is_some()
}

async fn handle_delivery(shared: &Shared, publisher: &Publisher, role: Role, delivery: Delivery) {
    let _in_hand = metrics::InHand::enter();
    let outcome = match TaskMessage::parse(&delivery.data, role, runs_revision) {
        Err(e) => {
            tracing::error!(
                "rejecting a message on the {role} queue to the dead-letter queue: {e}; body: {}",
                preview(&delivery.data)
            );
            Outcome::Rejected
        }
        Ok(message) if !shared.executors.contains_key(message.revision.as_str()) => {
            tracing::error!(
                "rejecting task {} to the dead-letter queue: this worker has no executor for revision {}",
                message.task_id,
                message.revision
            );
            Outcome::Rejected
        }
        Ok(message) if !same_database(shared, &message).await => Outcome::Rejected,
        Ok(message) => match process(shared, publisher, &message)
            .instrument(task_span(&message))
            .boxed()
            .await
        {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!("task {}: {e:#}; requeueing the message", message.task_id);
                tokio::time::sleep(Duration::from_millis(500)).await;
                Outcome::Requeued
            }
        },
    };
    let acked = match outcome.delivery() {
        Delivered::DeadLetter => {
            count_dead_letter(role, &delivery.data);
            delivery
                .nack(BasicNackOptions {
                    requeue: false,
                    ..BasicNackOptions::default()
                })
                .await
        }
        Delivered::Requeue => {
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await
        }
        Delivered::Ack => delivery.ack(BasicAckOptions::default()).await,
    };
    if let Err(e) = acked {
        // The channel died with the connection: the broker redelivers, and
        // the task row decides what happens then.
        tracing::debug!("could not settle a delivery ({e}); the broker will redeliver it");
    }
}

/// Counts a message sent to the dead-letter queue, by its task's revision
/// and kind where it is a task message (parsed again: this is rare).
fn count_dead_letter(role: Role, body: &[u8]) {
    let parsed = TaskMessage::parse(body, role, runs_revision).ok();
    let (revision, kind) = parsed
        .as_ref()
        .map_or(("", ""), |m| (m.revision.as_str(), m.kind.as_str()));
    metrics::dead_lettered(revision, role.as_str(), kind);
}

/// The span of one task's delivery: every line logged while it is handled
/// carries the task's fields (and the worker's, from the worker's span);
/// `run` and `attempt` are known once it is claimed. At the error level, so
/// that it is there whatever level `RUST_LOG` lets through.
fn task_span(message: &TaskMessage) -> tracing::Span {
    tracing::error_span!(
        "task",
        run = tracing::field::Empty,
        revision = %message.revision,
        task = message.task_id,
        kind = %message.kind,
        role = %message.role,
        attempt = tracing::field::Empty,
    )
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
    let Some(current) = store::task_status(&mut conn, message.task_id).await? else {
        tracing::error!(
            "rejecting task {} to the dead-letter queue: no such task row in this database",
            message.task_id
        );
        return Ok(Outcome::Rejected);
    };
    if current.is_settled() {
        store::note_duplicate(&mut conn, message.task_id).await?;
        return Ok(Outcome::SkippedDone);
    }
    if !store::try_lock_task(&mut conn, message.task_id).await? {
        // Another worker holds the task. It may be unable to ack or retry
        // (its channel died, it hangs), so this copy is not dropped: it
        // comes back through a delay queue, and is dropped once the task is
        // settled.
        publisher
            .publish_retry(message, CLAIMED_ELSEWHERE_RECHECK)
            .await?;
        return Ok(Outcome::SkippedClaimedElsewhere);
    }
    let result = run_claimed(shared, publisher, message, &mut conn).await;
    // Bounded: cut off from the server, the unlock would wait for TCP to
    // give up, keeping the slot busy long after the task was taken back.
    let unlocked = tokio::time::timeout(
        UNLOCK_TIMEOUT,
        store::unlock_task(&mut conn, message.task_id),
    )
    .await;
    if !matches!(unlocked, Ok(Ok(_))) {
        // A connection we cannot unlock must not go back to the pool with
        // the lock; dropped, it closes, and the server frees the lock.
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
    let Some(row) = store::claim_task(conn, message.task_id, &shared.worker_name).await? else {
        if store::fail_exhausted(conn, message.task_id).await? {
            metrics::task_failed(&metrics::TaskLabels {
                revision: message.revision.clone(),
                role: message.role.as_str().to_string(),
                kind: message.kind.clone(),
            });
            tracing::error!(
                "task {} ({} {}) used up its attempts without an outcome; failed",
                message.task_id,
                message.revision,
                message.kind
            );
            return Ok(Outcome::Failed);
        }
        if store::task_status(conn, message.task_id)
            .await?
            .is_some_and(|s| s.is_settled())
        {
            // Settled between the first look and the claim.
            store::note_duplicate(conn, message.task_id).await?;
        }
        return Ok(Outcome::SkippedDone);
    };
    let task = ClaimedTask::from(row);
    tracing::Span::current()
        .record("run", task.run_id)
        .record("attempt", task.attempt);
    let executor = shared
        .executors
        .get(task.revision.as_str())
        .expect("checked before the claim");
    let deadline = shared.config.task_deadlines.of(&task.kind);
    let backend = db::limit_statements(conn, deadline + STATEMENT_TIMEOUT_MARGIN).await?;
    let started = std::time::Instant::now();
    let run = TaskRun::start(&task.revision, message.role.as_str(), &task.kind);
    let execute = executor
        .execute(TaskContext {
            task: &task,
            conn: &mut *conn,
            pool: &shared.pool,
            config: &shared.config,
        })
        .boxed();
    // A panicking executor fails its task like an error would; the claim's
    // lock and connection are released by the caller as always.
    let execute = std::panic::AssertUnwindSafe(execute)
        .catch_unwind()
        .map(|caught| {
            caught.unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Err(shared::exec::Permanent::new(format!("the executor panicked: {what}")).into())
            })
        });
    let result = tokio::select! {
        // A task that completed wins over a renewal that, just after the
        // commit, found the row no longer running.
        biased;
        result = execute => Some(result),
        lost = renew_lease(shared, task.id) => {
            // Fenced off: the task is (or is about to be) another worker's,
            // so this one stops it where it is and settles nothing. Its
            // backend goes if the server can still be reached, so that no
            // late statement of it runs; the message goes back to the
            // broker as a duplicate, which is harmless.
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                db::terminate_backend(&shared.pool, backend),
            )
            .await;
            run.released();
            tracing::warn!("task {}: {lost}; stopped it without settling it", task.id);
            return Err(anyhow::anyhow!("task {}: {lost}; stopped", task.id));
        }
        _ = tokio::time::sleep(deadline) => None,
    };
    // Past its deadline, the task is stopped where it is: its backend is
    // terminated (the statement it waits on, its transaction and its lock
    // go), and the attempt is settled like a failure through the pool.
    let mut fresh;
    let (conn, result) = match result {
        Some(result) => (conn, result),
        None => {
            db::terminate_backend(&shared.pool, backend).await?;
            fresh = shared.pool.acquire().await?;
            let stopped = anyhow::anyhow!(
                "the deadline of {} s passed ({} tasks; TASK_DEADLINE_SECS); stopped",
                deadline.as_secs(),
                task.kind
            );
            (&mut *fresh, Err(stopped))
        }
    };
    let e = match result {
        Ok(done) => {
            tracing::debug!(
                "task {} ({} {}) done: {} rows in {:?}",
                task.id,
                task.revision,
                task.kind,
                done.rows_done(),
                started.elapsed()
            );
            run.done(done.rows_done());
            return Ok(Outcome::Completed);
        }
        Err(e) => e,
    };
    let (attempt, max_attempts) = (task.attempt, task.max_attempts);
    let error = format!("{e:#}");
    match settle(FailureKind::of(&e), attempt, max_attempts) {
        Settlement::Release => {
            // The claim's connection may be the one that broke, so this goes
            // through the pool, and only while no other worker has claimed
            // the task since.
            let _ = store::release_claim(&shared.pool, task.id, &shared.worker_name).await;
            run.released();
            Err(e)
        }
        Settlement::CheckBack(delay) => {
            tracing::info!(
                "task {} ({} {}): {error}; checking back through the delay queue in {delay:?}",
                task.id,
                task.revision,
                task.kind
            );
            store::defer_task(conn, task.id, task.revision_run_id, &error).await?;
            publisher.publish_retry(message, delay).await?;
            run.check_back();
            Ok(Outcome::Retrying)
        }
        Settlement::Retry(delay) => {
            tracing::warn!(
                "task {} ({} {}) attempt {attempt}/{max_attempts} failed: {error}; retrying in {delay:?}",
                task.id,
                task.revision,
                task.kind
            );
            store::record_failure(
                conn,
                task.id,
                task.revision_run_id,
                &shared.worker_name,
                TaskStatus::Retrying,
                &error,
            )
            .await?;
            publisher.publish_retry(message, delay).await?;
            run.retried();
            Ok(Outcome::Retrying)
        }
        Settlement::Fail => {
            tracing::error!(
                "task {} ({} {}) failed after {attempt} attempt(s): {error}",
                task.id,
                task.revision,
                task.kind
            );
            store::record_failure(
                conn,
                task.id,
                task.revision_run_id,
                &shared.worker_name,
                TaskStatus::Failed,
                &error,
            )
            .await?;
            run.failed();
            Ok(Outcome::Failed)
        }
    }
}

/// How much longer than a deadline the server lets a statement run: the
/// runtime stops the task first (with the deadline in its error), and the
/// server's `statement_timeout` ends the statement should the worker itself
/// be stuck or gone.
const STATEMENT_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// How long the release of a task's advisory lock may take before its
/// connection is dropped instead.
const UNLOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How soon a copy of a task another worker holds is looked at again.
const CLAIMED_ELSEWHERE_RECHECK: Duration = shared::queue::RETRY_DELAYS[1];

/// Renews the lease of a running task every quarter of `TASK_LEASE_SECS`,
/// through the pool (the claim's connection is the executor's). Returns,
/// with the reason, once the lease is lost: the row says the task is no
/// longer this worker's (it was taken back), or no renewal has succeeded
/// for a whole lease (cut off from the database, the task is being taken
/// back by now). A single failed renewal is only logged: the next one may
/// succeed.
async fn renew_lease(shared: &Shared, task_id: i64) -> String {
    let lease = Duration::from_secs(shared.config.task_lease_secs);
    let mut renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(lease.div_f64(4.0)).await;
        match store::heartbeat(&shared.pool, task_id, &shared.worker_name).await {
            Ok(true) => renewed = std::time::Instant::now(),
            Ok(false) => return "its lease was taken back by another worker".into(),
            Err(e) => tracing::warn!("task {task_id}: renewing its lease failed: {e:#}"),
        }
        if renewed.elapsed() >= lease {
            return format!(
                "its lease could not be renewed for {} s (TASK_LEASE_SECS)",
                lease.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_attempt_is_retried_with_back_off_until_the_last() {
        assert_eq!(
            settle(FailureKind::Retryable, 1, 3),
            Settlement::Retry(Topology::retry_delay(1))
        );
        assert_eq!(
            settle(FailureKind::Retryable, 2, 3),
            Settlement::Retry(Topology::retry_delay(2))
        );
        assert!(Topology::retry_delay(2) > Topology::retry_delay(1));
        assert_eq!(settle(FailureKind::Retryable, 3, 3), Settlement::Fail);
    }

    #[test]
    fn a_permanent_error_fails_at_once_and_a_database_outage_costs_no_attempt() {
        assert_eq!(settle(FailureKind::Permanent, 1, 5), Settlement::Fail);
        assert_eq!(settle(FailureKind::Transient, 1, 5), Settlement::Release);
        assert_eq!(settle(FailureKind::Transient, 5, 5), Settlement::Release);
    }

    #[test]
    fn a_check_back_is_not_an_attempt_even_on_the_last_one() {
        let after = Duration::from_secs(30);
        assert_eq!(
            settle(FailureKind::CheckBack(after), 3, 3),
            Settlement::CheckBack(Topology::check_back_delay(after))
        );
        assert_eq!(Topology::check_back_delay(after), Duration::from_secs(20));
        assert_eq!(
            Topology::check_back_delay(Duration::from_millis(10)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn only_failed_and_poison_deliveries_are_dead_lettered() {
        assert_eq!(Outcome::Failed.delivery(), Delivered::DeadLetter);
        assert_eq!(Outcome::Rejected.delivery(), Delivered::DeadLetter);
        assert_eq!(Outcome::Requeued.delivery(), Delivered::Requeue);
        for settled in [
            Outcome::Completed,
            Outcome::SkippedDone,
            Outcome::SkippedClaimedElsewhere,
            Outcome::Retrying,
        ] {
            assert_eq!(settled.delivery(), Delivered::Ack, "{settled:?}");
        }
    }
}
