//! The backbone against the real PostgreSQL and RabbitMQ: the schema
//! revision both ways, exactly-once effects under duplicates and crashes,
//! the run lock, broker reconnection, poison messages, and continuing a
//! database that Alembic started.

use nix::sys::signal::Signal;
use shared::catalogue::Role;
use shared::queue::Topology;
use shared::task::TaskMessage;
use std::time::Duration;
use testkit::{amqp_url, assert_success, finished, text, TestEnv};

const SCHEMA: &str = "1b33292593a9";

/// Every column of the application tables as `table.column type [not null] [default ...]`.
async fn columns(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND c.relname <> 'alembic_version'
          ORDER BY c.relname, a.attnum",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

async fn enum_labels(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT e.enumlabel::text FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
          WHERE t.typname = 'personalized_product_section_status' ORDER BY e.enumsortorder",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// The catalogue facts of the application tables (one normalised line per
/// column, constraint, index and enum), by the query the facts file was made with.
async fn schema_facts(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar(include_str!("../../fixtures/schema/schema_facts.sql"))
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

/// What the current original's own migration leaves in the catalogue.
fn expected_schema_facts() -> Vec<String> {
    include_str!("../../fixtures/schema/1b33292593a9.facts.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

/// Fails with the facts missing from the database and those it has in
/// excess, one per line, rather than two 90-line lists.
fn assert_same_facts(got: &[String], expected: &[String], round: usize) {
    let missing: Vec<&String> = expected.iter().filter(|f| !got.contains(f)).collect();
    let extra: Vec<&String> = got.iter().filter(|f| !expected.contains(f)).collect();
    if missing.is_empty() && extra.is_empty() && got.len() == expected.len() {
        return;
    }
    let mut diff = String::new();
    for fact in &missing {
        diff.push_str(&format!("\n  - {fact}"));
    }
    for fact in &extra {
        diff.push_str(&format!("\n  + {fact}"));
    }
    panic!(
        "round {round}: the catalogue differs from tests/fixtures/schema/1b33292593a9.facts.txt \
         ({} facts expected, {} found; - expected but missing, + found but not expected):{diff}",
        expected.len(),
        got.len()
    );
}

async fn current(env: &TestEnv) -> String {
    let out = env.orchestrator(&["current"]).await;
    assert_success(&out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_upgrade_then_downgrade_twice_matches_the_original_and_leaves_nothing() {
    let mut env = TestEnv::new("schema_up_down").await;
    env.start_worker(&["--role", "seed"]);
    for round in 1..=2 {
        assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
        assert_eq!(
            current(&env).await,
            format!("{SCHEMA} (schema)"),
            "round {round}"
        );
        assert_same_facts(&schema_facts(&env).await, &expected_schema_facts(), round);
        assert_eq!(
            enum_labels(&env).await,
            ["pending", "running", "done", "failed"],
            "round {round}: enum"
        );

        assert_success(&env.orchestrator(&["downgrade", "base"]).await);
        assert_eq!(current(&env).await, "(base)");
        assert!(
            columns(&env).await.is_empty(),
            "round {round}: tables left after downgrade"
        );
        assert!(
            enum_labels(&env).await.is_empty(),
            "round {round}: enum left after downgrade"
        );
    }
    let history = env.orchestrator(&["history"]).await;
    assert_success(&history);
    assert!(String::from_utf8_lossy(&history.stdout).contains("not applied"));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_message_published_twice_has_its_effect_once() {
    let mut env = TestEnv::new("published_twice").await;
    // Plan and publish the schema task with no worker running, then publish
    // the very same message again.
    let orchestrator = env.spawn_orchestrator(&["upgrade", SCHEMA]);
    env.wait_for_tasks("queued", 1, Duration::from_secs(30))
        .await;
    let (task_id,): (i64,) = sqlx::query_as("SELECT id FROM pipeline.tasks")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let duplicate = TaskMessage {
        task_id,
        revision: SCHEMA.into(),
        role: Role::Seed,
        kind: "upgrade".into(),
        database: None,
    };
    // And a copy that names another database: its task id is another task
    // there, so no worker of this database may run it.
    let foreign = TaskMessage {
        database: Some(uuid::Uuid::new_v4()),
        ..duplicate.clone()
    };
    // The orchestrator marks a task queued just before it publishes it:
    // wait for its message, then add the duplicate.
    let work_queue = env.topology().work_queue(Role::Seed);
    let depth_is = |n: u32| {
        let (env, queue) = (&env, work_queue.clone());
        move || {
            let queue = queue.clone();
            async move { env.queue_depth(&queue).await.unwrap() == n }
        }
    };
    env.eventually(
        "the orchestrator's message",
        Duration::from_secs(30),
        depth_is(1),
    )
    .await;
    env.publish_raw(Role::Seed, &duplicate.to_bytes())
        .await
        .unwrap();
    env.publish_raw(Role::Seed, &foreign.to_bytes())
        .await
        .unwrap();
    env.eventually(
        "the duplicate and the foreign copy beside it",
        Duration::from_secs(30),
        depth_is(3),
    )
    .await;

    env.start_worker(&["--role", "all"]);
    let out = finished(orchestrator, Duration::from_secs(120)).await;
    assert_success(&out);
    // Both deliveries consumed; the DDL ran once (a second run would have
    // failed on "already exists" and left an error and a second attempt).
    let queue = env.topology().work_queue(Role::Seed);
    let pool = env.pool.clone();
    env.eventually(
        "the duplicate to be consumed",
        Duration::from_secs(30),
        || {
            let queue = queue.clone();
            let env = &env;
            async move { env.queue_depth(&queue).await.unwrap() == 0 }
        },
    )
    .await;
    let (status, attempts, error): (String, i32, Option<String>) =
        sqlx::query_as("SELECT status, attempts, last_error FROM pipeline.tasks WHERE id = $1")
            .bind(task_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts, error), ("done", 1, None));
    let dead = env.topology().dead_queue(Role::Seed);
    env.eventually(
        "the foreign copy dead-lettered",
        Duration::from_secs(30),
        || {
            let (env, dead) = (&env, dead.clone());
            async move { env.queue_depth(&dead).await.unwrap() == 1 }
        },
    )
    .await;

    // The same with a visible effect per task: while 30 slow no-op tasks
    // run, every one of their messages is published a second time.
    let run = env.spawn_noop_run(30, 200);
    env.wait_for_count(
        "SELECT count(*) FROM pipeline.tasks WHERE kind = 'noop'",
        30,
        Duration::from_secs(30),
    )
    .await;
    let tasks: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, role FROM pipeline.tasks WHERE kind = 'noop'")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for (task_id, role) in tasks {
        let role: Role = role.parse().unwrap();
        let again = TaskMessage {
            task_id,
            revision: shared::catalogue::BENCH_NOOP.into(),
            role,
            kind: "noop".into(),
            database: None,
        };
        env.publish_raw(role, &again.to_bytes()).await.unwrap();
    }
    let out = finished(run, Duration::from_secs(120)).await;
    assert_success(&out);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.noop_marks().await, (30, 30));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_loses_nothing_and_duplicates_nothing() {
    let mut env = TestEnv::new("sigkill").await;
    let victim = env.start_worker(&["--role", "all", "--concurrency", "4"]);
    let run = env.spawn_noop_run(24, 1500);
    env.wait_for_tasks("running", 2, Duration::from_secs(60))
        .await;
    env.signal_worker(victim, Signal::SIGKILL);
    env.wait_worker(victim, Duration::from_secs(10)).await;
    // Another worker finishes the job.
    env.start_worker(&["--role", "all", "--concurrency", "8"]);
    let out = finished(run, Duration::from_secs(180)).await;
    assert_success(&out);
    assert_eq!(
        env.noop_marks().await,
        (24, 24),
        "every task's effect exactly once"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_worker_finish_its_tasks_and_exit_zero() {
    let mut env = TestEnv::new("sigterm").await;
    let worker = env.start_worker(&["--role", "all", "--concurrency", "2"]);
    let run = env.spawn_noop_run(6, 2000);
    env.wait_for_tasks("running", 1, Duration::from_secs(60))
        .await;
    env.signal_worker(worker, Signal::SIGTERM);
    assert_eq!(
        env.wait_worker(worker, Duration::from_secs(30)).await,
        Some(0),
        "exit code after SIGTERM"
    );
    let (done, running): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'running') FROM pipeline.tasks",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(done >= 1, "the tasks in hand were finished");
    assert_eq!(running, 0, "nothing left claimed by the stopped worker");
    env.start_worker(&["--role", "all"]);
    let out = finished(run, Duration::from_secs(120)).await;
    assert_success(&out);
    assert_eq!(env.noop_marks().await, (6, 6));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_upgrades_at_once_one_runs_the_other_waits_or_refuses() {
    let mut env = TestEnv::new("run_lock").await;
    // No worker yet: the first upgrade holds the lock while it waits.
    let first = env.spawn_orchestrator(&["upgrade", SCHEMA]);
    env.wait_for_tasks("queued", 1, Duration::from_secs(30))
        .await;
    let refused = env.orchestrator(&["upgrade", SCHEMA, "--no-wait"]).await;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("run lock"),
        "{}",
        text(&refused)
    );

    let waiting = env.spawn_orchestrator(&["upgrade", SCHEMA]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.start_worker(&["--role", "seed"]);
    let first = finished(first, Duration::from_secs(60)).await;
    assert_success(&first);
    let waiting = finished(waiting, Duration::from_secs(60)).await;
    assert_success(&waiting);
    let stderr = String::from_utf8_lossy(&waiting.stderr);
    assert!(stderr.contains("waiting"), "{stderr}");
    assert!(stderr.contains("nothing to do"), "{stderr}");
    // One task each for the two revisions on the path (extensions, schema),
    // all planned by the first upgrade.
    let tasks: Vec<(String, i64)> = sqlx::query_as(
        "SELECT revision, count(*) FROM pipeline.tasks GROUP BY revision ORDER BY revision",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        tasks,
        [
            ("1b33292593a9".to_string(), 1),
            ("7a35c0d9d159".to_string(), 1)
        ],
        "the second upgrade planned nothing"
    );
    env.cleanup().await;
}

/// Connection names known to the broker, by `rabbitmqctl`.
fn broker_connections() -> Vec<(String, String)> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_connections", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (pid, props) = line.split_once('\t')?;
            Some((pid.trim().to_string(), props.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_broker_connection_is_closed_reconnects_and_the_run_completes() {
    if !amqp_url().contains("127.0.0.1") && !amqp_url().contains("localhost") {
        panic!("this test closes connections with rabbitmqctl and needs the local broker");
    }
    let mut env = TestEnv::new("broker_drop").await;
    env.set_env("TASK_MAX_ATTEMPTS", "5");
    env.start_worker(&["--role", "all", "--concurrency", "4"]);
    // Every task fails its first attempt on purpose, so that retries sit
    // in the delay queues and are published while the connection goes.
    let run = env.spawn_noop_run_with(40, &["--sleep-ms", "300", "--fail-attempts", "1"]);
    env.wait_for_tasks("retrying", 4, Duration::from_secs(60))
        .await;
    let worker_tag = format!("worker {}", env.queue_prefix);
    let victims: Vec<String> = broker_connections()
        .into_iter()
        .filter(|(_, props)| props.contains(&worker_tag))
        .map(|(pid, _)| pid)
        .collect();
    assert!(
        !victims.is_empty(),
        "the worker's connection is listed by the broker"
    );
    for pid in &victims {
        let status = std::process::Command::new("rabbitmqctl")
            .args(["close_connection", pid, "closed by the broker-drop test"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let out = finished(run, Duration::from_secs(180)).await;
    assert_success(&out);
    assert_eq!(env.noop_marks().await, (40, 40), "each effect exactly once");
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.tasks WHERE status = 'done' AND attempts >= 2")
            .await,
        40,
        "every task failed once and its retry came through"
    );
    assert!(
        broker_connections()
            .iter()
            .any(|(pid, props)| props.contains(&worker_tag) && !victims.contains(pid)),
        "the worker opened a new connection"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_end_in_the_dead_letter_queue_without_looping() {
    let mut env = TestEnv::new("poison").await;
    env.start_worker(&["--role", "seed"]);
    env.publish_raw(Role::Seed, b"this is not json")
        .await
        .unwrap();
    env.publish_raw(
        Role::Seed,
        br#"{"task_id":1,"revision":"0000deadbeef","role":"seed","kind":"upgrade"}"#,
    )
    .await
    .unwrap();
    env.publish_raw(
        Role::Seed,
        br#"{"task_id":1,"revision":"1b33292593a9","role":"oracle","kind":"upgrade"}"#,
    )
    .await
    .unwrap();
    let dead = env.topology().dead_queue(Role::Seed);
    let work = env.topology().work_queue(Role::Seed);
    env.eventually(
        "three messages in the dead-letter queue",
        Duration::from_secs(30),
        || {
            let (dead, env) = (dead.clone(), &env);
            async move { env.queue_depth(&dead).await.unwrap() == 3 }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.queue_depth(&work).await.unwrap(), 0, "nothing requeued");
    assert_eq!(
        env.queue_depth(&dead).await.unwrap(),
        3,
        "each poison message dead-lettered once"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_alembic_started_is_continued() {
    let mut env = TestEnv::new("alembic_started").await;
    // What the original leaves: its extensions (its base revision), its
    // schema and alembic_version at 1b33292593a9. (With `age` preloaded, as
    // the server is, AGE refuses even a plain DROP TABLE in a database
    // without the extension: the original never has one.)
    sqlx::raw_sql("CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS age;")
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::raw_sql(revisions::schema::UPGRADE_SQL)
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
         INSERT INTO alembic_version VALUES ('1b33292593a9');",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_eq!(current(&env).await, format!("{SCHEMA} (schema)"));
    let history = env.orchestrator(&["history"]).await;
    assert_success(&history);
    let history = String::from_utf8_lossy(&history.stdout).to_string();
    let schema_line = history.lines().find(|l| l.contains(SCHEMA)).unwrap();
    assert!(
        schema_line.contains("applied") && !schema_line.contains("not applied"),
        "{history}"
    );

    let out = env.orchestrator(&["upgrade", SCHEMA]).await;
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
        "{}",
        text(&out)
    );
    // And it can be undone from here.
    env.start_worker(&["--role", "seed"]);
    assert_success(&env.orchestrator(&["downgrade", "base"]).await);
    let left: Option<String> = sqlx::query_scalar("SELECT version_num FROM alembic_version")
        .fetch_optional(&env.pool)
        .await
        .unwrap();
    assert_eq!(left, None);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_prints_every_setting_with_secrets_redacted() {
    let mut env = TestEnv::new("config").await;
    env.set_env("OPENAI_API_KEY", "sk-test-must-not-show");
    env.set_env(
        "DATABASE_URL",
        "postgres://shop:pg-password-must-not-show@127.0.0.1:5433/x",
    );
    let out = env.orchestrator(&["config"]).await;
    assert_success(&out);
    let all = text(&out);
    assert!(
        !all.contains("sk-test-must-not-show") && !all.contains("pg-password-must-not-show"),
        "{all}"
    );
    assert!(
        all.contains("OPENAI_API_KEY") && all.contains("(set, redacted)"),
        "{all}"
    );

    env.set_env("WORKER_CONCURRENCY", "many");
    let out = env.orchestrator(&["config"]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WORKER_CONCURRENCY"),
        "{}",
        text(&out)
    );
    let help = env.orchestrator(&["--help"]).await;
    assert!(!text(&help).contains("sk-test-must-not-show"));
    env.cleanup().await;
}

/// The delay a worker's log gives for each failed attempt it retried:
/// `(attempt, delay)` from "attempt N/M failed: ...; retrying in 5s".
fn retry_delays_logged(log: &str) -> Vec<(u32, String)> {
    log.lines()
        .filter_map(|line| {
            let (_, after) = line.split_once(" attempt ")?;
            let attempt = after.split('/').next()?.parse().ok()?;
            let (_, delay) = after.rsplit_once("; retrying in ")?;
            Some((attempt, delay.trim().to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_delays_grow() {
    let mut env = TestEnv::new("retry_delays_grow").await;
    env.set_env("TASK_MAX_ATTEMPTS", "4");
    let log = std::env::temp_dir().join(format!("{}.worker.log", env.db_name));
    env.start_worker_logging_to(&["--role", "all"], &log);
    let run = env.spawn_noop_run_with(1, &["--fail-attempts", "3"]);
    assert_success(&finished(run, Duration::from_secs(120)).await);
    env.kill_workers().await;
    let logged = std::fs::read_to_string(&log).unwrap();
    let delays = retry_delays_logged(&logged);
    // What the worker did: each retry waited longer than the one before,
    // and the fourth attempt succeeded.
    let attempts: Vec<u32> = delays.iter().map(|(attempt, _)| *attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "{logged}");
    let secs: Vec<f64> = delays
        .iter()
        .map(|(_, delay)| delay.trim_end_matches('s').parse().unwrap())
        .collect();
    assert!(secs.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
    assert_eq!(env.noop_marks().await, (1, 1));
    std::fs::remove_file(&log).ok();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_task_is_retried_with_back_off_then_succeeds() {
    let mut env = TestEnv::new("retry_then_ok").await;
    env.start_worker(&["--role", "all"]);
    let out = env
        .orchestrator(&[
            "bench",
            "runtime",
            "--tasks",
            "4",
            "--workers",
            "0",
            "--fail-attempts",
            "2",
            "--mark",
        ])
        .await;
    assert_success(&out);
    let attempts: Vec<i32> = sqlx::query_scalar("SELECT attempts FROM pipeline.tasks ORDER BY id")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(
        attempts,
        [3, 3, 3, 3],
        "two failed attempts, then the third succeeded"
    );
    assert_eq!(env.noop_marks().await, (4, 4));
    // The second retry waited longer than the first (1 s, then 5 s).
    let waited: f64 = sqlx::query_scalar(
        "SELECT min(extract(epoch FROM finished_at - created_at))::float8 FROM pipeline.tasks",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let expected = (Topology::retry_delay(1) + Topology::retry_delay(2)).as_secs_f64();
    assert!(
        waited >= expected,
        "tasks finished after {waited}s, before the back-off of {expected}s"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_keeps_failing_is_dead_lettered_and_the_run_fails_with_its_error() {
    let mut env = TestEnv::new("retry_then_dead").await;
    env.set_env("TASK_MAX_ATTEMPTS", "2");
    env.start_worker(&["--role", "all"]);
    let out = env
        .orchestrator(&[
            "bench",
            "runtime",
            "--tasks",
            "1",
            "--workers",
            "0",
            "--fail-attempts",
            "9",
        ])
        .await;
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("failing on purpose") && stderr.contains("after 2 attempt"),
        "{stderr}"
    );
    let (status, error): (String, String) =
        sqlx::query_as("SELECT status, last_error FROM pipeline.tasks")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.contains("failing on purpose"), "{error}");
    let dead_total: u32 = {
        let mut total = 0;
        for role in Role::ALL {
            total += env
                .queue_depth(&env.topology().dead_queue(role))
                .await
                .unwrap();
        }
        total
    };
    assert_eq!(dead_total, 1, "the message is in its dead-letter queue");
    let status = env.orchestrator(&["status"]).await;
    assert_success(&status);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("failing on purpose"),
        "{}",
        text(&status)
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_database_connections_are_survived_by_workers_and_orchestrator() {
    let mut env = TestEnv::new("db_drop").await;
    env.start_worker(&["--role", "all", "--concurrency", "4"]);
    let run = env.spawn_noop_run(40, 300);
    env.wait_for_tasks("done", 4, Duration::from_secs(60)).await;
    // Every pipeline connection to this database dies, as in a server restart.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()) t",
    )
    .bind(shared::db::APPLICATION_NAME)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(killed >= 2, "terminated {killed} pipeline connections");
    let out = finished(run, Duration::from_secs(180)).await;
    assert_success(&out);
    assert_eq!(env.noop_marks().await, (40, 40));
    env.cleanup().await;
}

/// Every table and column outside the system schemas, and what
/// `alembic_version` holds: what "unchanged" means for a database.
async fn database_state(env: &TestEnv) -> (Vec<String>, Vec<String>) {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT table_schema || '.' || table_name || '.' || column_name || ' ' || data_type
           FROM information_schema.columns
          WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
          ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let version: Vec<String> = sqlx::query_scalar("SELECT version_num FROM public.alembic_version")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    (columns, version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_in_the_earlier_layout_is_refused_and_left_unchanged() {
    let mut env = TestEnv::new("earlier_layout").await;
    env.start_worker(&["--role", "seed"]);
    // What this project's earlier version left: the older table names, seeded.
    sqlx::raw_sql(
        "CREATE TABLE public.product (id serial PRIMARY KEY, name varchar);
         CREATE TABLE public.review (id serial PRIMARY KEY, product_id integer REFERENCES public.product (id), review_text text);
         CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);
         INSERT INTO public.product (name) VALUES ('Auralis QuietLine 700');
         INSERT INTO public.review (product_id, review_text) VALUES (1, 'Great.');
         INSERT INTO public.alembic_version VALUES ('ef85393336cb');",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let before = database_state(&env).await;
    for command in [
        &["upgrade", "head"][..],
        &["upgrade", "cc30da9b96c1"],
        &["downgrade", "base"],
    ] {
        let out = env.orchestrator(command).await;
        let shown = text(&out);
        assert!(
            !out.status.success(),
            "{command:?} must be refused:\n{shown}"
        );
        for needle in [
            "earlier table layout",
            "public.product, public.review",
            "alembic_version ef85393336cb",
            "downgrade base` with the earlier version",
            "a fresh database",
        ] {
            assert!(
                shown.contains(needle),
                "{command:?}: {needle:?} in\n{shown}"
            );
        }
        assert_eq!(
            database_state(&env).await,
            before,
            "{command:?} changed the database"
        );
    }
    let rows: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM public.product), (SELECT count(*) FROM public.review)",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows, (1, 1));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_to_a_file_or_pipe_has_no_colour_escapes() {
    let env = TestEnv::new("no_colour_escapes").await;
    // stderr is a pipe here, as a log file or a platform's collector would
    // be; the orchestrator relays its local workers' lines into it, so both
    // binaries' lines are in it.
    let out = env
        .orchestrator(&["upgrade", SCHEMA, "--with-workers", "1"])
        .await;
    assert_success(&out);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(" INFO "),
        "the run should have logged INFO lines: {log}"
    );
    assert!(
        !out.stderr.contains(&0x1b),
        "ESC bytes (terminal colour codes) in a log that is not a terminal:\n{log:?}"
    );
    env.cleanup().await;
}
