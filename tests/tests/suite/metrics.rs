//! Metrics and health, scraped as Prometheus and a container runtime would:
//! a worker started with `--metrics-addr` on a free port, a small upgrade
//! (extensions, schema, seed of the sample data set), its `/metrics`
//! parsed with `prometheus-parse` during and after the run and held against
//! the run's task rows; the orchestrator's own endpoint while it runs; and
//! `/readyz` (and `worker healthcheck`) saying why a worker that cannot
//! reach the broker is not ready.

use prometheus_parse::{Scrape, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use testkit::{finished, text, TestEnv};

const SEED: &str = "ef85393336cb";

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `(status, body)` of `GET path`, `None` while nothing answers.
async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    shared::metrics::get(addr, path).await.ok()
}

async fn scrape(addr: &str) -> Option<Scrape> {
    let (status, body) = get(addr, "/metrics").await?;
    assert_eq!(status, 200, "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    Some(Scrape::parse(lines).expect("the exposition parses"))
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("not a number: {other:?}"),
    }
}

/// The samples of `metric`, summed by the value of `label`.
fn by(scrape: &Scrape, metric: &str, label: &str) -> BTreeMap<String, f64> {
    let mut sums = BTreeMap::new();
    for sample in scrape.samples.iter().filter(|s| s.metric == metric) {
        let key = sample.labels.get(label).unwrap_or_default().to_string();
        *sums.entry(key).or_insert(0.0) += number(&sample.value);
    }
    sums
}

fn total(scrape: &Scrape, metric: &str) -> f64 {
    by(scrape, metric, "revision").values().sum()
}

fn gauge(scrape: &Scrape, metric: &str) -> f64 {
    total(scrape, metric)
}

async fn wait_for_status(env: &TestEnv, addr: &str, path: &str, want: u16) -> String {
    let mut last = None;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        last = get(addr, path).await;
        if let Some((status, body)) = &last {
            if *status == want {
                return body.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{addr}{path} did not answer {want} within 60 s (last: {last:?}; database {})",
        env.db_name
    );
}

#[tokio::test]
async fn a_scrape_during_and_after_a_run_counts_what_the_run_did() {
    let mut env = TestEnv::new("metrics_scrape").await;
    let worker_addr = format!("127.0.0.1:{}", free_port());
    env.start_worker(&["--role", "all", "--metrics-addr", &worker_addr]);
    assert_eq!(
        wait_for_status(&env, &worker_addr, "/healthz", 200).await,
        "ok\n"
    );
    // Ready once both connections are up and it consumes.
    assert_eq!(
        wait_for_status(&env, &worker_addr, "/readyz", 200).await,
        "ready\n"
    );
    let healthcheck = env
        .worker_within(
            &["healthcheck", "--metrics-addr", &worker_addr],
            Duration::from_secs(30),
        )
        .await;
    assert!(healthcheck.status.success(), "{}", text(&healthcheck));

    let orchestrator_addr = format!("127.0.0.1:{}", free_port());
    let mut upgrade =
        env.spawn_orchestrator(&["upgrade", SEED, "--metrics-addr", &orchestrator_addr]);
    // Scraped while the run goes on: both endpoints answer and parse, the
    // orchestrator's says where its phases are.
    let mut during = Vec::new();
    let mut orchestrator_scrapes = Vec::new();
    let exit = loop {
        if let Some(status) = upgrade.try_wait().expect("orchestrator status") {
            break status;
        }
        if let Some(s) = scrape(&worker_addr).await {
            during.push(total(&s, "pipeline_tasks_done_total"));
        }
        if let Some(s) = scrape(&orchestrator_addr).await {
            orchestrator_scrapes.push(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = upgrade
        .wait_with_output()
        .await
        .expect("orchestrator output");
    assert!(exit.success(), "{}", text(&output));

    // The task rows of the run, by revision: every one done, none failed.
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT revision, count(*), coalesce(sum(rows_done), 0)::bigint
         FROM pipeline.tasks WHERE status = 'done' GROUP BY revision ORDER BY revision",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "extensions, schema, seed: {rows:?}");
    let all_tasks = env.scalar("SELECT count(*) FROM pipeline.tasks").await;
    let task_rows: BTreeMap<String, f64> = rows
        .iter()
        .map(|(r, n, _)| (r.clone(), *n as f64))
        .collect();
    let rows_done: BTreeMap<String, f64> = rows
        .iter()
        .map(|(r, _, d)| (r.clone(), *d as f64))
        .collect();
    assert_eq!(task_rows.values().sum::<f64>(), all_tasks as f64);

    let after = scrape(&worker_addr)
        .await
        .expect("the worker still answers");
    assert_eq!(
        by(&after, "pipeline_tasks_done_total", "revision"),
        task_rows
    );
    assert_eq!(
        by(&after, "pipeline_tasks_started_total", "revision"),
        task_rows
    );
    assert_eq!(
        by(&after, "pipeline_rows_processed_total", "revision"),
        rows_done
    );
    assert!(
        rows_done[SEED] >= 2_000.0,
        "the seed loads the sample set: {rows_done:?}"
    );
    for none in [
        "pipeline_tasks_failed_total",
        "pipeline_tasks_retried_total",
        "pipeline_tasks_dead_lettered_total",
    ] {
        assert_eq!(total(&after, none), 0.0, "{none}");
    }
    assert_eq!(gauge(&after, "pipeline_messages_in_hand"), 0.0);
    assert_eq!(gauge(&after, "pipeline_postgres_connected"), 1.0);
    assert_eq!(gauge(&after, "pipeline_rabbitmq_connected"), 1.0);
    assert_eq!(gauge(&after, "pipeline_consuming"), 1.0);
    // One duration per task, by kind as the task rows have them.
    let kinds: Vec<(String, i64)> =
        sqlx::query_as("SELECT kind, count(*) FROM pipeline.tasks GROUP BY kind ORDER BY kind")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let timed = by(&after, "pipeline_task_duration_seconds_count", "kind");
    let kinds: BTreeMap<String, f64> = kinds.into_iter().map(|(k, n)| (k, n as f64)).collect();
    assert_eq!(timed, kinds);
    assert_eq!(
        wait_for_status(&env, &worker_addr, "/readyz", 200).await,
        "ready\n"
    );

    // During the run: the worker's count grew from scrape to scrape and
    // was seen short of the end at least once.
    let end = task_rows.values().sum::<f64>();
    assert!(
        during.windows(2).all(|w| w[0] <= w[1]),
        "counters never go down: {during:?}"
    );
    assert!(
        during.iter().any(|&n| n < end),
        "no scrape saw the run unfinished: {during:?}"
    );
    // The orchestrator served while it ran: the seed's phases by state.
    let last = orchestrator_scrapes
        .iter()
        .rev()
        .find(|s| {
            s.samples.iter().any(|x| {
                x.metric == "pipeline_phase_tasks" && x.labels.get("revision") == Some(SEED)
            })
        })
        .expect("an orchestrator scrape during the seed's phases");
    let states = by(last, "pipeline_phase_tasks", "state");
    assert!(states["done"] >= 1.0, "{states:?}");
    assert_eq!(states["failed"], 0.0, "{states:?}");
    env.cleanup().await;
}

#[tokio::test]
async fn a_worker_that_cannot_reach_the_broker_is_alive_but_not_ready_and_says_why() {
    let mut env = TestEnv::new("metrics_not_ready").await;
    // Nothing listens on the broker's address: the worker retries forever.
    let closed = free_port();
    env.set_env(
        "AMQP_URL",
        &format!("amqp://guest:guest@127.0.0.1:{closed}/%2f"),
    );
    let addr = format!("127.0.0.1:{}", free_port());
    env.start_worker(&["--role", "seed", "--metrics-addr", &addr]);
    assert_eq!(wait_for_status(&env, &addr, "/healthz", 200).await, "ok\n");
    // Connected to PostgreSQL (the probe says so within its period), never to RabbitMQ.
    let connected = |metric: &'static str| {
        let addr = addr.clone();
        async move { scrape(&addr).await.map(|s| gauge(&s, metric)) }
    };
    env.eventually("PostgreSQL connected", Duration::from_secs(30), || async {
        connected("pipeline_postgres_connected").await == Some(1.0)
    })
    .await;
    let (status, body) = get(&addr, "/readyz").await.expect("readyz answers");
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body,
        "not ready: not connected to RabbitMQ; not consuming\n"
    );
    assert_eq!(connected("pipeline_rabbitmq_connected").await, Some(0.0));
    let healthcheck = env
        .worker_within(
            &["healthcheck", "--metrics-addr", &addr],
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(healthcheck.status.code(), Some(1), "{}", text(&healthcheck));
    assert!(
        String::from_utf8_lossy(&healthcheck.stdout).contains("not connected to RabbitMQ"),
        "{}",
        text(&healthcheck)
    );
    env.cleanup().await;
}

#[tokio::test]
async fn retries_failures_and_dead_letters_are_counted_as_the_task_rows_record_them() {
    let mut env = TestEnv::new("metrics_failures").await;
    env.set_env("TASK_MAX_ATTEMPTS", "2");
    let addr = format!("127.0.0.1:{}", free_port());
    env.start_worker(&["--role", "all", "--metrics-addr", &addr]);
    wait_for_status(&env, &addr, "/readyz", 200).await;
    // Every attempt of the 3 no-op tasks fails: retried once, then failed.
    let run = env.spawn_noop_run_with(3, &["--fail-attempts", "2"]);
    let output = finished(run, Duration::from_secs(120)).await;
    assert!(!output.status.success(), "{}", text(&output));
    let (failed, attempts): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'failed'), sum(attempts)::bigint FROM pipeline.tasks",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!((failed, attempts), (3, 6));
    let after = scrape(&addr).await.expect("the worker answers");
    assert_eq!(total(&after, "pipeline_tasks_started_total"), 6.0);
    assert_eq!(total(&after, "pipeline_tasks_retried_total"), 3.0);
    assert_eq!(total(&after, "pipeline_tasks_failed_total"), 3.0);
    assert_eq!(total(&after, "pipeline_tasks_dead_lettered_total"), 3.0);
    assert_eq!(total(&after, "pipeline_tasks_done_total"), 0.0);
    let outcomes = by(&after, "pipeline_task_duration_seconds_count", "outcome");
    assert_eq!(
        outcomes,
        BTreeMap::from([("failed".to_string(), 3.0), ("retried".to_string(), 3.0)])
    );
    env.cleanup().await;
}
