//! Metrics and health of a process, over HTTP: `/metrics` (the Prometheus
//! text format, OpenMetrics flavour, written by `prometheus-client`),
//! `/healthz` (the process answers) and `/readyz` (connected to PostgreSQL
//! and RabbitMQ, and for a worker consuming).
//!
//! One registry per process, [`metrics()`]: the worker runtime counts tasks
//! and messages, the providers' HTTP client counts requests and tokens at
//! the one place they are made, the orchestrator's driver sets the phase it
//! waits on. Nothing is served unless `METRICS_ADDR` (or `--metrics-addr`)
//! is set: [`serve`] starts the server.
//!
//! Connection state: [`watch`] probes a pool every [`PROBE_EVERY`] and, once
//! a broker session is handed to it ([`broker_connected`]), the session's
//! status.

use crate::store::PhaseCounts;
use anyhow::Context as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

/// How often [`watch`] looks at the connections.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// A task's revision (id), role and kind (`load`, `embed`, ... as `status` shows).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    pub revision: String,
    pub role: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    revision: String,
    role: String,
    kind: String,
    /// `done`, `retried`, `failed`, `released` (a database outage: requeued,
    /// no attempt counted) or `check_back`.
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    /// `openai` or `azure-openai`.
    provider: &'static str,
    /// `embedding`, `chat`, `batch create`, ...
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    provider: &'static str,
    operation: String,
    /// The HTTP status, or `error` when no answer came (time-out, transport).
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    provider: &'static str,
    operation: String,
    /// `prompt` or `completion`.
    r#type: &'static str,
}

/// The phase an orchestrator waits on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub revision: String,
    pub direction: String,
    /// 1-based, as the progress lines print it.
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseStateLabels {
    revision: String,
    direction: String,
    phase: String,
    state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    tasks_started: Family<TaskLabels, Counter>,
    tasks_done: Family<TaskLabels, Counter>,
    tasks_retried: Family<TaskLabels, Counter>,
    tasks_failed: Family<TaskLabels, Counter>,
    tasks_dead_lettered: Family<TaskLabels, Counter>,
    task_duration: HistogramFamily<DurationLabels>,
    rows_processed: Family<TaskLabels, Counter>,
    messages_in_hand: Gauge,
    provider_requests: Family<RequestLabels, Counter>,
    provider_latency: HistogramFamily<ProviderLabels>,
    provider_rate_limited: Family<ProviderLabels, Counter>,
    provider_tokens: Family<TokenLabels, Counter>,
    postgres_connected: Gauge,
    rabbitmq_connected: Gauge,
    consuming: Gauge,
    phase_tasks: Family<PhaseStateLabels, Gauge>,
    phase_rows: Family<PhaseLabels, Gauge>,
    phase_rows_per_second: Family<PhaseLabels, FloatGauge>,
    /// The broker session [`watch`] follows.
    broker: Mutex<Option<lapin::ConnectionStatus>>,
}

fn task_buckets() -> Histogram {
    // 10 ms to about 45 min, ×4 each.
    Histogram::new(exponential_buckets(0.01, 4.0, 10))
}

fn request_buckets() -> Histogram {
    // 10 ms to about 82 s, ×2 each.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

impl Metrics {
    fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::with_prefix("pipeline"),
            tasks_started: Family::default(),
            tasks_done: Family::default(),
            tasks_retried: Family::default(),
            tasks_failed: Family::default(),
            tasks_dead_lettered: Family::default(),
            task_duration: Family::new_with_constructor(task_buckets),
            rows_processed: Family::default(),
            messages_in_hand: Gauge::default(),
            provider_requests: Family::default(),
            provider_latency: Family::new_with_constructor(request_buckets),
            provider_rate_limited: Family::default(),
            provider_tokens: Family::default(),
            postgres_connected: Gauge::default(),
            rabbitmq_connected: Gauge::default(),
            consuming: Gauge::default(),
            phase_tasks: Family::default(),
            phase_rows: Family::default(),
            phase_rows_per_second: Family::default(),
            broker: Mutex::new(None),
        };
        let mut registry = Registry::with_prefix("pipeline");
        let r = &mut registry;
        r.register(
            "tasks_started",
            "Tasks this worker claimed and began to execute",
            m.tasks_started.clone(),
        );
        r.register(
            "tasks_done",
            "Tasks this worker completed",
            m.tasks_done.clone(),
        );
        r.register(
            "tasks_retried",
            "Failed attempts this worker parked in a delay queue for another attempt",
            m.tasks_retried.clone(),
        );
        r.register(
            "tasks_failed",
            "Tasks this worker recorded failed (no attempts left, or a permanent error)",
            m.tasks_failed.clone(),
        );
        r.register(
            "tasks_dead_lettered",
            "Messages this worker sent to the dead-letter queue (failed tasks and poison messages)",
            m.tasks_dead_lettered.clone(),
        );
        r.register(
            "task_duration_seconds",
            "Time from claim to outcome of a task's attempt",
            m.task_duration.clone(),
        );
        r.register(
            "rows_processed",
            "Rows the tasks this worker completed reported (pipeline.tasks.rows_done)",
            m.rows_processed.clone(),
        );
        r.register(
            "messages_in_hand",
            "Task messages delivered to this worker and not settled yet",
            m.messages_in_hand.clone(),
        );
        r.register(
            "provider_requests",
            "HTTP requests to a model provider, every attempt, by status",
            m.provider_requests.clone(),
        );
        r.register(
            "provider_request_duration_seconds",
            "Time of one HTTP attempt to a model provider, until its status",
            m.provider_latency.clone(),
        );
        r.register(
            "provider_rate_limited",
            "Answers 429 (rate limited) from a model provider",
            m.provider_rate_limited.clone(),
        );
        r.register(
            "provider_tokens",
            "Tokens a model provider reported used, prompt and completion",
            m.provider_tokens.clone(),
        );
        r.register(
            "postgres_connected",
            "1 while PostgreSQL answers this process",
            m.postgres_connected.clone(),
        );
        r.register(
            "rabbitmq_connected",
            "1 while this process has a connection to RabbitMQ",
            m.rabbitmq_connected.clone(),
        );
        r.register(
            "consuming",
            "1 while this worker consumes its roles' queues",
            m.consuming.clone(),
        );
        r.register(
            "phase_tasks",
            "Orchestrator: tasks of a phase by state (pending, queued, running, retrying, done, failed)",
            m.phase_tasks.clone(),
        );
        r.register(
            "phase_rows_done",
            "Orchestrator: rows the done tasks of a phase reported",
            m.phase_rows.clone(),
        );
        r.register(
            "phase_rows_per_second",
            "Orchestrator: rows done per second since the phase started",
            m.phase_rows_per_second.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String never fails");
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

fn flag(gauge: &Gauge, on: bool) {
    gauge.set(i64::from(on));
}

/// One attempt of a task, from its claim to its outcome: counted started
/// when made, and by outcome (with its duration) when ended.
pub struct TaskRun {
    labels: TaskLabels,
    started: Instant,
}

impl TaskRun {
    pub fn start(revision: &str, role: &str, kind: &str) -> TaskRun {
        let labels = TaskLabels {
            revision: revision.to_string(),
            role: role.to_string(),
            kind: kind.to_string(),
        };
        metrics().tasks_started.get_or_create(&labels).inc();
        TaskRun {
            labels,
            started: Instant::now(),
        }
    }

    fn end(self, outcome: &'static str) -> TaskLabels {
        let TaskLabels {
            revision,
            role,
            kind,
        } = self.labels.clone();
        metrics()
            .task_duration
            .get_or_create(&DurationLabels {
                revision,
                role,
                kind,
                outcome,
            })
            .observe(self.started.elapsed().as_secs_f64());
        self.labels
    }

    pub fn done(self, rows: i64) {
        let labels = self.end("done");
        let m = metrics();
        m.tasks_done.get_or_create(&labels).inc();
        m.rows_processed
            .get_or_create(&labels)
            .inc_by(rows.max(0) as u64);
    }

    pub fn retried(self) {
        let labels = self.end("retried");
        metrics().tasks_retried.get_or_create(&labels).inc();
    }

    pub fn failed(self) {
        let labels = self.end("failed");
        task_failed(&labels);
    }

    /// A database outage: the message goes back, no attempt counted.
    pub fn released(self) {
        self.end("released");
    }

    /// Waiting on a provider's batch: again later, no attempt counted.
    pub fn check_back(self) {
        self.end("check_back");
    }
}

/// A task recorded failed without being executed here (it had used up its
/// attempts elsewhere).
pub fn task_failed(labels: &TaskLabels) {
    metrics().tasks_failed.get_or_create(labels).inc();
}

/// A message sent to the dead-letter queue; `revision` and `kind` empty
/// when it was not a task message at all.
pub fn dead_lettered(revision: &str, role: &str, kind: &str) {
    metrics()
        .tasks_dead_lettered
        .get_or_create(&TaskLabels {
            revision: revision.to_string(),
            role: role.to_string(),
            kind: kind.to_string(),
        })
        .inc();
}

/// A delivery in hand, from its arrival until it is settled (dropped).
pub struct InHand(());

impl InHand {
    pub fn enter() -> InHand {
        metrics().messages_in_hand.inc();
        InHand(())
    }
}

impl Drop for InHand {
    fn drop(&mut self) {
        metrics().messages_in_hand.dec();
    }
}

/// One HTTP attempt to a model provider: its status (`None`: no answer)
/// and how long it took.
pub fn provider_attempt(
    provider: &'static str,
    operation: &str,
    status: Option<u16>,
    took: Duration,
) {
    let m = metrics();
    let labels = ProviderLabels {
        provider,
        operation: operation.to_string(),
    };
    m.provider_latency
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    if status == Some(429) {
        m.provider_rate_limited.get_or_create(&labels).inc();
    }
    m.provider_requests
        .get_or_create(&RequestLabels {
            provider,
            operation: labels.operation,
            status: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
        })
        .inc();
}

/// Tokens a provider's answer reported.
pub fn provider_tokens(provider: &'static str, operation: &str, prompt: u64, completion: u64) {
    for (r#type, n) in [("prompt", prompt), ("completion", completion)] {
        if n > 0 {
            metrics()
                .provider_tokens
                .get_or_create(&TokenLabels {
                    provider,
                    operation: operation.to_string(),
                    r#type,
                })
                .inc_by(n);
        }
    }
}

/// The orchestrator's view of a phase it waits on (what its progress line
/// says): tasks by state, rows done, and rows per second when known.
pub fn phase(labels: &PhaseLabels, counts: &PhaseCounts, rows_per_second: Option<f64>) {
    let m = metrics();
    for (state, n) in [
        ("pending", counts.pending),
        ("queued", counts.queued),
        ("running", counts.running),
        ("retrying", counts.retrying),
        ("done", counts.done),
        ("failed", counts.failed),
    ] {
        m.phase_tasks
            .get_or_create(&PhaseStateLabels {
                revision: labels.revision.clone(),
                direction: labels.direction.clone(),
                phase: labels.phase.clone(),
                state,
            })
            .set(n);
    }
    m.phase_rows.get_or_create(labels).set(counts.rows_done);
    if let Some(rate) = rows_per_second {
        m.phase_rows_per_second.get_or_create(labels).set(rate);
    }
}

/// PostgreSQL answered (or did not).
pub fn set_postgres(connected: bool) {
    flag(&metrics().postgres_connected, connected);
}

/// Whether a worker consumes its queues.
pub fn set_consuming(consuming: bool) {
    flag(&metrics().consuming, consuming);
}

/// A broker session opened: connected now, and followed by [`watch`]
/// until [`broker_lost`].
pub fn broker_connected(status: lapin::ConnectionStatus) {
    flag(&metrics().rabbitmq_connected, status.connected());
    *metrics().broker.lock().expect("not poisoned") = Some(status);
}

/// The broker session ended (also: not consuming).
pub fn broker_lost() {
    *metrics().broker.lock().expect("not poisoned") = None;
    flag(&metrics().rabbitmq_connected, false);
    set_consuming(false);
}

/// Follows the connections until `pool` is closed: `SELECT 1` on it, and
/// the status of the broker session, every [`PROBE_EVERY`]. A pool whose
/// every connection is busy counts as connected: they are in use.
pub fn watch(pool: sqlx::PgPool) {
    tokio::spawn(async move {
        while !pool.is_closed() {
            let probe = sqlx::query("SELECT 1").execute(&pool);
            let answered = match tokio::time::timeout(PROBE_EVERY, probe).await {
                Ok(result) => result.is_ok(),
                Err(_) => pool.size() > 0 && pool.num_idle() == 0,
            };
            if pool.is_closed() {
                break;
            }
            set_postgres(answered);
            let m = metrics();
            if let Some(status) = m.broker.lock().expect("not poisoned").as_ref() {
                flag(&m.rabbitmq_connected, status.connected());
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    });
}

/// What `/readyz` asks of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// PostgreSQL, RabbitMQ, and consuming.
    Worker,
    /// PostgreSQL and RabbitMQ.
    Orchestrator,
}

impl Readiness {
    /// `Ok` when ready, else what is missing.
    pub fn check(self) -> Result<(), String> {
        let m = metrics();
        let mut missing = Vec::new();
        if m.postgres_connected.get() != 1 {
            missing.push("not connected to PostgreSQL");
        }
        if m.rabbitmq_connected.get() != 1 {
            missing.push("not connected to RabbitMQ");
        }
        if self == Readiness::Worker && m.consuming.get() != 1 {
            missing.push("not consuming");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }
}

/// Starts serving `/metrics`, `/healthz` and `/readyz` on `addr`
/// (`HOST:PORT`); returns the address bound (port 0 picks a free one). An
/// address that cannot be bound is an error at once.
pub async fn serve(addr: &str, readiness: Readiness) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("serving metrics on METRICS_ADDR / --metrics-addr {addr}"))?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("metrics server: accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| async move {
                    Ok::<_, std::convert::Infallible>(respond(&request, readiness))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    tracing::info!("serving /metrics, /healthz and /readyz on http://{bound}");
    Ok(bound)
}

type Response = hyper::Response<http_body_util::Full<bytes::Bytes>>;

fn respond<B>(request: &hyper::Request<B>, readiness: Readiness) -> Response {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics().encode(),
        ),
        (&hyper::Method::GET, "/healthz") => (200, TEXT, "ok\n".to_string()),
        (&hyper::Method::GET, "/readyz") => match readiness.check() {
            Ok(()) => (200, TEXT, "ready\n".to_string()),
            Err(missing) => (503, TEXT, format!("not ready: {missing}\n")),
        },
        (&hyper::Method::GET, _) => (404, TEXT, "not found: /metrics, /healthz, /readyz\n".into()),
        _ => (405, TEXT, "only GET\n".to_string()),
    };
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("a static response builds")
}

const TEXT: &str = "text/plain; charset=utf-8";

/// `GET http://{addr}{path}` (a wildcard address asks the loopback one):
/// the status and body. What `worker healthcheck` runs, so that an image
/// without curl or wget can check itself.
pub async fn get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = local_address(addr);
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .with_context(|| format!("connecting to {addr}: timed out"))?
    .with_context(|| format!("connecting to {addr}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .with_context(|| format!("reading the answer of {addr}: timed out"))??;
    let answer = String::from_utf8_lossy(&answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{addr} did not answer HTTP: {head:?}"))?;
    Ok((status, body.to_string()))
}

/// `0.0.0.0:9100` → `127.0.0.1:9100`, `[::]:9100` → `[::1]:9100`.
fn local_address(addr: &str) -> String {
    if let Some(port) = addr.strip_prefix("0.0.0.0:") {
        format!("127.0.0.1:{port}")
    } else if let Some(port) = addr.strip_prefix("[::]:") {
        format!("[::1]:{port}")
    } else {
        addr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_family_with_its_prefix_and_unit() {
        TaskRun::start("ef85393336cb", "seed", "load").done(42);
        provider_attempt("openai", "embedding", Some(429), Duration::from_millis(3));
        provider_tokens("openai", "chat", 7, 2);
        let text = metrics().encode();
        for line in [
            "pipeline_tasks_started_total{revision=\"ef85393336cb\",role=\"seed\",kind=\"load\"} 1",
            "pipeline_tasks_done_total{revision=\"ef85393336cb\",role=\"seed\",kind=\"load\"} 1",
            "pipeline_rows_processed_total{revision=\"ef85393336cb\",role=\"seed\",kind=\"load\"} 42",
            "pipeline_provider_rate_limited_total{provider=\"openai\",operation=\"embedding\"} 1",
            "pipeline_provider_requests_total{provider=\"openai\",operation=\"embedding\",status=\"429\"} 1",
            "pipeline_provider_tokens_total{provider=\"openai\",operation=\"chat\",type=\"prompt\"} 7",
            "pipeline_task_duration_seconds_count{revision=\"ef85393336cb\",role=\"seed\",kind=\"load\",outcome=\"done\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from:\n{text}");
        }
    }

    #[test]
    fn readiness_names_what_is_missing() {
        // The gauges start at 0: nothing is connected.
        let missing = Readiness::Worker.check().unwrap_err();
        assert!(
            missing.contains("PostgreSQL")
                && missing.contains("RabbitMQ")
                && missing.contains("consuming"),
            "{missing}"
        );
        assert!(!Readiness::Orchestrator
            .check()
            .unwrap_err()
            .contains("consuming"));
        assert_eq!(local_address("0.0.0.0:9100"), "127.0.0.1:9100");
        assert_eq!(local_address("[::]:9100"), "[::1]:9100");
        assert_eq!(local_address("10.0.0.2:9100"), "10.0.0.2:9100");
    }
}
