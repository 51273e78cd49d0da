//! Nothing lost, nothing stuck: the holes a run used to fall into, each
//! driven with the real binaries (the no-op tasks of `bench runtime`, which
//! go through the whole runtime and write a mark in their completing
//! transaction, so that an effect applied twice shows).
//!
//! On the code before the reconciler, leases and the attempts check, the
//! first test hung (8 tasks `queued`, no message anywhere), the second left
//! its task `running` at the limit with no end, and the third hung behind
//! the stopped worker's lock.

use nix::sys::signal::Signal;
use shared::Role;
use std::time::Duration;
use testkit::{assert_success, finished, text, TestEnv};

/// Deletes the test's work queues, and every message in them.
async fn delete_work_queues(env: &TestEnv) {
    let connection =
        lapin::Connection::connect(&testkit::amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    for role in Role::ALL {
        let _ = channel
            .queue_delete(
                env.topology().work_queue(role).as_str().into(),
                lapin::options::QueueDeleteOptions::default(),
            )
            .await;
    }
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_whose_messages_were_lost_with_a_deleted_queue_are_published_again() {
    let mut env = TestEnv::new("lost_queue").await;
    env.set_env("TASK_RECONCILE_SECS", "2");
    let run = env.spawn_noop_run(8, 50);
    env.wait_for_tasks("queued", 8, Duration::from_secs(60))
        .await;
    // Every message goes with the queues.
    delete_work_queues(&env).await;
    env.start_worker(&["--role", "all"]);
    let output = finished(run, Duration::from_secs(120)).await;
    assert_success(&output);
    assert_eq!(env.noop_marks().await, (8, 8), "every task once");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_attempts_all_died_with_their_worker_fails_at_the_limit() {
    let mut env = TestEnv::new("crash_loop").await;
    env.set_env("TASK_MAX_ATTEMPTS", "2");
    let run = env.spawn_noop_run(3, 0);
    env.wait_for_tasks("queued", 3, Duration::from_secs(60))
        .await;
    // What two attempts whose worker was SIGKILLed leave: the attempts
    // counted, the task `running` under no lock, no error recorded.
    sqlx::query(
        "UPDATE pipeline.tasks SET status = 'running', attempts = 2, started_at = now() - interval '1 hour'
          WHERE id = (SELECT min(id) FROM pipeline.tasks)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    env.start_worker(&["--role", "all"]);
    let output = finished(run, Duration::from_secs(120)).await;
    assert!(!output.status.success(), "{}", text(&output));
    let (status, attempts, error): (String, i32, String) = sqlx::query_as(
        "SELECT status, attempts, last_error FROM pipeline.tasks WHERE id = (SELECT min(id) FROM pipeline.tasks)",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        (status.as_str(), attempts),
        ("failed", 2),
        "no third attempt"
    );
    assert!(error.contains("gave up after 2 attempt(s)"), "{error}");
    assert!(
        text(&output).contains("gave up after 2 attempt(s)"),
        "{}",
        text(&output)
    );
    assert_eq!(env.noop_marks().await, (2, 2), "the other tasks ran");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_past_its_lease_loses_its_tasks_to_another_and_nothing_runs_twice() {
    let mut env = TestEnv::new("sigstop").await;
    env.set_env("TASK_LEASE_SECS", "3");
    // The copies published when the tasks are taken back may be delivered
    // to the stopped worker's consumers, which the broker still sees alive
    // until their heartbeat lapses; the reconciler publishes them again.
    env.set_env("TASK_RECONCILE_SECS", "5");
    let stopped = env.start_worker(&["--role", "all", "--concurrency", "4"]);
    let run = env.spawn_noop_run(4, 6000);
    env.wait_for_tasks("running", 4, Duration::from_secs(60))
        .await;
    env.signal_worker(stopped, Signal::SIGSTOP);
    env.start_worker(&["--role", "all", "--concurrency", "4"]);
    let output = finished(run, Duration::from_secs(120)).await;
    env.signal_worker(stopped, Signal::SIGCONT);
    assert_success(&output);
    assert_eq!(
        env.noop_marks().await,
        (4, 4),
        "every task's effect exactly once"
    );
    assert!(
        text(&output).contains("stopped renewing their lease"),
        "{}",
        text(&output)
    );
    env.cleanup().await;
}

/// The shop's open transaction on a table the pipeline must empty: the
/// pipeline's TRUNCATE gives up after `TASK_LOCK_TIMEOUT_SECS` and is
/// retried, instead of queueing behind it and blocking the shop's own
/// queries behind itself; once the shop commits, the downgrade completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipelines_ddl_never_queues_behind_the_shops_open_transaction() {
    use sqlx::Connection;
    let mut env = TestEnv::new("lock_timeout").await;
    env.set_env("TASK_LOCK_TIMEOUT_SECS", "1");
    env.set_env("TASK_MAX_ATTEMPTS", "20");
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", "ef85393336cb"]).await);

    let mut idle_shop = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; SELECT count(*) FROM public.product_reviews")
        .execute(&mut idle_shop)
        .await
        .unwrap();
    let run = env.spawn_orchestrator(&["downgrade", "1b33292593a9"]);
    env.wait_for_count(
        "SELECT count(*) FROM pipeline.tasks WHERE kind = 'downgrade' AND last_error LIKE '%lock timeout%'",
        1,
        Duration::from_secs(60),
    )
    .await;
    // The shop's other sessions still read the table: nothing of ours
    // waits in front of them for good.
    let mut shop = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    let reviews: i64 = tokio::time::timeout(
        Duration::from_secs(30),
        sqlx::query_scalar("SELECT count(*) FROM public.product_reviews").fetch_one(&mut shop),
    )
    .await
    .expect("the shop's query is not stuck behind the pipeline's TRUNCATE")
    .unwrap();
    assert!(
        reviews > 0,
        "the table is not emptied while the shop reads it"
    );

    sqlx::raw_sql("COMMIT")
        .execute(&mut idle_shop)
        .await
        .unwrap();
    let output = finished(run, Duration::from_secs(120)).await;
    assert_success(&output);
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.product_reviews")
            .await,
        0
    );
    env.cleanup().await;
}

/// An executor that panics inside its transaction: the task fails at once
/// with the panic's message, nothing it wrote stays, and its worker lives on
/// with its lock and connection released, running the next tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_executor_fails_its_task_and_its_worker_goes_on() {
    let mut env = TestEnv::new("panic").await;
    let worker = env.start_worker(&["--role", "all", "--concurrency", "1"]);
    let run = env.spawn_orchestrator(&[
        "bench",
        "runtime",
        "--tasks",
        "2",
        "--workers",
        "0",
        "--mark",
        "--panic",
    ]);
    let output = finished(run, Duration::from_secs(120)).await;
    assert!(!output.status.success(), "{}", text(&output));
    let failed: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT status, attempts, last_error FROM pipeline.tasks WHERE status = 'failed' ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(!failed.is_empty(), "{}", text(&output));
    for (status, attempts, error) in &failed {
        assert_eq!(
            (status.as_str(), *attempts),
            ("failed", 1),
            "no retry of a panic"
        );
        assert!(
            error.contains("the executor panicked: no-op task panicking on purpose"),
            "{error}"
        );
    }
    assert_eq!(
        env.noop_marks().await,
        (0, 0),
        "the panicking transaction was rolled back"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            .await,
        0,
        "no task lock left behind"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
            .await,
        0,
        "no transaction left open"
    );
    // The same worker runs the next run's tasks.
    let run = env.spawn_noop_run(4, 0);
    assert_success(&finished(run, Duration::from_secs(120)).await);
    assert_eq!(env.noop_marks().await, (4, 4));
    assert_eq!(
        env.scalar(&format!("SELECT count(DISTINCT worker) FROM pipeline.tasks WHERE status = 'done' AND worker LIKE '%:{worker}'"))
            .await,
        1
    );
    env.cleanup().await;
}

/// Fencing: once another orchestrator has taken the run lock and marked a
/// run interrupted, that run's orchestrator can neither record its revision
/// nor mark it failed (and so undoes nothing); the database stays as the
/// new run leaves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_taken_over_by_another_orchestrator_records_nothing() {
    use shared::plan::{Direction, Phase};
    use shared::store;
    let env = TestEnv::new("fencing").await;
    shared::db::ensure_pipeline_schema(&env.pool).await.unwrap();
    let old_run = store::start_run(&env.pool, "upgrade schema", "first")
        .await
        .unwrap();
    let phases = [Phase::new("tables", vec![])];
    let revision_run = store::store_plan(
        &env.pool,
        old_run,
        "1b33292593a9",
        Direction::Upgrade,
        &phases,
        3,
    )
    .await
    .unwrap();
    // The second orchestrator takes the lock: the first run is interrupted.
    let new_run = store::start_run(&env.pool, "upgrade schema", "second")
        .await
        .unwrap();
    let status: String = sqlx::query_scalar("SELECT status FROM pipeline.runs WHERE id = $1")
        .bind(old_run)
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(status, "interrupted");

    let recorded = store::record_revision(
        &env.pool,
        old_run,
        revision_run,
        "1b33292593a9",
        Direction::Upgrade,
        Some("1b33292593a9"),
        &[],
    )
    .await;
    let error = format!(
        "{:#}",
        recorded.expect_err("the interrupted run recorded its revision")
    );
    assert!(error.contains("no longer run #"), "{error}");
    assert_eq!(
        env.current_revision().await,
        None,
        "alembic_version untouched"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.revision_history")
            .await,
        0
    );
    assert!(
        store::fail_revision_run(&env.pool, revision_run, old_run, "late")
            .await
            .is_err()
    );
    assert!(store::finish_revision_run(&env.pool, revision_run, old_run)
        .await
        .is_err());
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM pipeline.revision_runs WHERE id = $1")
            .bind(revision_run)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), error), ("running", None));
    // The run that holds the lock still can.
    sqlx::query("UPDATE pipeline.revision_runs SET run_id = $2 WHERE id = $1")
        .bind(revision_run)
        .bind(new_run)
        .execute(&env.pool)
        .await
        .unwrap();
    store::record_revision(
        &env.pool,
        new_run,
        revision_run,
        "1b33292593a9",
        Direction::Upgrade,
        Some("1b33292593a9"),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        env.current_revision().await.as_deref(),
        Some("1b33292593a9")
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_consumer_the_broker_cancelled_subscribes_again() {
    let mut env = TestEnv::new("cancelled_consumer").await;
    env.start_worker(&["--role", "all"]);
    let graph = env.topology().work_queue(Role::Graph);
    env.eventually(
        "the worker consumes the graph queue",
        Duration::from_secs(60),
        || async { env.queue_consumers(&graph).await.is_ok_and(|n| n == 1) },
    )
    .await;
    // Deleting a queue cancels its consumers; the run declares it again.
    let connection =
        lapin::Connection::connect(&testkit::amqp_url(), lapin::ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .queue_delete(
            graph.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let _ = connection.close(200, "done".into()).await;
    // Before the worker subscribed again, its other roles went on and the
    // graph tasks of this run (every fourth) waited for ever.
    let run = env.spawn_noop_run(8, 0);
    let output = finished(run, Duration::from_secs(90)).await;
    assert_success(&output);
    assert_eq!(env.noop_marks().await, (8, 8), "every task once");
    assert_eq!(env.queue_consumers(&graph).await.unwrap(), 1);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_finished_during_the_drain_are_acked_and_not_delivered_again() {
    let mut env = TestEnv::new("drain_acks").await;
    let run = env.spawn_noop_run(4, 3000);
    let first = env.start_worker(&["--role", "all", "--concurrency", "4"]);
    env.wait_for_tasks("running", 4, Duration::from_secs(60))
        .await;
    env.signal_worker(first, Signal::SIGTERM);
    assert_eq!(
        env.wait_worker(first, Duration::from_secs(30)).await,
        Some(0),
        "the worker drains and exits 0"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.tasks WHERE status = 'done'")
            .await,
        4,
        "the tasks in hand finished in the drain"
    );
    // Closing the broker connection before the drain lost these acks: the
    // next worker got all four messages again.
    env.start_worker(&["--role", "all"]);
    let output = finished(run, Duration::from_secs(60)).await;
    assert_success(&output);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.scalar("SELECT sum(duplicates)::bigint FROM pipeline.tasks")
            .await,
        0,
        "no copy of a drained task came back"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_exits_at_the_end_of_its_drain_time_even_with_a_task_in_hand() {
    let mut env = TestEnv::new("drain_limit").await;
    let _run = env.spawn_noop_run(1, 120_000);
    let worker = env.start_worker(&["--role", "all", "--drain-secs", "2"]);
    env.wait_for_tasks("running", 1, Duration::from_secs(60))
        .await;
    env.signal_worker(worker, Signal::SIGTERM);
    // It used to wait for its pool, whose connection the task had checked
    // out, until the task ended two minutes later.
    assert_eq!(
        env.wait_worker(worker, Duration::from_secs(20)).await,
        Some(0),
        "the worker exits soon after its 2 s drain"
    );
    env.cleanup().await;
}

/// A task that hangs in a database statement: past its kind's deadline it
/// is stopped (its statement gone from the server), each attempt counts,
/// and at the last it fails with the deadline in its error; the worker
/// goes on with the next task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_past_its_kinds_deadline_is_stopped_and_retried_until_it_fails() {
    let mut env = TestEnv::new("deadline").await;
    env.set_env("TASK_DEADLINE_SECS", "noop=2");
    env.set_env("TASK_MAX_ATTEMPTS", "2");
    env.start_worker(&["--role", "all", "--concurrency", "1"]);
    let run = env.spawn_noop_run_with(1, &["--sleep-ms", "600000", "--sleep-in-database"]);
    let output = finished(run, Duration::from_secs(120)).await;
    assert!(!output.status.success(), "{}", text(&output));
    let (status, attempts, error): (String, i32, String) =
        sqlx::query_as("SELECT status, attempts, last_error FROM pipeline.tasks")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!((status.as_str(), attempts), ("failed", 2), "{error}");
    assert!(
        error.contains("the deadline of 2 s passed (noop tasks; TASK_DEADLINE_SECS)"),
        "{error}"
    );
    assert_eq!(env.noop_marks().await, (0, 0), "nothing of it committed");
    let sleeping = env
        .scalar(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'SELECT pg_sleep%'",
            env.db_name
        ))
        .await;
    assert_eq!(sleeping, 0, "the hung statement is gone from the server");

    // The worker takes the next tasks.
    let next = env.spawn_noop_run_with(2, &[]);
    assert_success(&finished(next, Duration::from_secs(120)).await);
    env.cleanup().await;
}

/// Two databases on one broker, neither with a `QUEUE_PREFIX`: each gets
/// queues named after its identity. The first database's worker runs while
/// the second's tasks are published, and takes none of them; the second's
/// own worker, started once the first run is over, finishes them. With one
/// shared default prefix the first worker took the second's messages and
/// dead-lettered them (another database's), and the second run hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_databases_with_default_prefixes_on_one_broker_never_take_each_others_tasks() {
    let mut first = TestEnv::new("two_dbs_first").await;
    let mut second = TestEnv::new("two_dbs_second").await;
    for env in [&mut first, &mut second] {
        env.use_default_queue_prefix();
        // Nothing republished behind the test's back.
        env.set_env("TASK_RECONCILE_SECS", "600");
    }
    let log = std::env::temp_dir().join(format!("{}-worker.log", first.db_name));
    // Started before its database has pipeline tables: it waits for them.
    let first_worker = first.start_worker_logging_to(&["--role", "all"], &log);
    let first_run = first.spawn_orchestrator(&["upgrade", "1b33292593a9"]);
    let second_run = second.spawn_orchestrator(&["upgrade", "1b33292593a9"]);
    assert_success(&finished(first_run, Duration::from_secs(120)).await);
    second.start_worker(&["--role", "all"]);
    let output = finished(second_run, Duration::from_secs(60)).await;
    assert_success(&output);
    for env in [&first, &second] {
        assert_eq!(
            env.current_revision().await.as_deref(),
            Some("1b33292593a9")
        );
    }
    let (a, b) = (
        first.used_topology().await.unwrap(),
        second.used_topology().await.unwrap(),
    );
    assert_ne!(a.prefix(), b.prefix());
    for (env, topology) in [(&first, &a), (&second, &b)] {
        let identity = shared::store::database_identity(&env.pool).await.unwrap();
        assert_eq!(topology.prefix(), format!("agenticshop-{identity}"));
        for role in Role::ALL {
            let dead = env.queue_depth(&topology.dead_queue(role)).await.unwrap();
            assert_eq!(dead, 0, "nothing dead-lettered in {}", topology.prefix());
        }
    }
    assert_eq!(
        first
            .scalar(&format!(
                "SELECT count(*) FROM pipeline.tasks WHERE worker NOT LIKE '%:{first_worker}'"
            ))
            .await,
        0
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logged.contains("belongs to database"),
        "the first worker saw the second database's tasks:\n{logged}"
    );
    assert!(logged.contains("has no pipeline tables yet"), "{logged}");
    // `config` shows the prefix in use.
    let config = first.orchestrator(&["config"]).await;
    assert!(
        text(&config).contains(&format!("{} (unset", a.prefix())),
        "{}",
        text(&config)
    );
    let _ = std::fs::remove_file(&log);
    first.cleanup().await;
    second.cleanup().await;
}

/// Lost messages with no orchestrator left to republish them: the run's
/// orchestrator is killed once its tasks are queued, the queues (and every
/// message) are deleted, and a worker started then finds the tasks of its
/// roles waiting with no message in sight and publishes them again itself.
/// Before workers reconciled, the tasks stayed `queued` for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_publishes_again_the_tasks_of_a_deleted_queue_without_the_orchestrator() {
    let mut env = TestEnv::new("worker_reconciles").await;
    env.set_env("TASK_RECONCILE_SECS", "2");
    env.set_env("TASK_RECONCILE_EVERY_SECS", "1");
    let mut run = env.spawn_noop_run(8, 50);
    env.wait_for_tasks("queued", 8, Duration::from_secs(60))
        .await;
    run.kill().await.unwrap();
    delete_work_queues(&env).await;
    // Two workers reconciling at once publish each task once per period.
    env.start_worker(&["--role", "all"]);
    env.start_worker(&["--role", "all"]);
    env.wait_for_count(
        "SELECT count(*) FROM pipeline.tasks WHERE status = 'done'",
        8,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(env.noop_marks().await, (8, 8), "every task once");
    env.cleanup().await;
}

/// A consumer that goes deaf — its connection alive, no delivery and no
/// cancel reaching it, as after a broker restart with the queue deleted and
/// declared again — is noticed by the worker's reconciler (every slot free,
/// nothing delivered, tasks of its roles waiting with messages ready), which
/// reopens the broker session. The deafness is made by a proxy that drops
/// the deliveries of the worker's first connection. Before, the worker sat
/// idle for ever and the run never ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_consumers_went_deaf_reopens_its_broker_session() {
    let mut env = TestEnv::new("deaf_consumer").await;
    env.set_env("TASK_RECONCILE_SECS", "4");
    env.set_env("TASK_RECONCILE_EVERY_SECS", "1");
    let proxy = testkit::amqp_proxy::AmqpProxy::start(&testkit::amqp_url()).await;
    env.set_env("AMQP_URL", &proxy.url);
    let log = std::env::temp_dir().join(format!("{}-worker.log", env.db_name));
    env.start_worker_logging_to(&["--role", "all", "--concurrency", "1"], &log);
    env.set_env("AMQP_URL", &testkit::amqp_url());
    let noop = env.topology().work_queue(Role::Seed);
    env.eventually("the worker consumes", Duration::from_secs(60), || async {
        env.queue_consumers(&noop).await.is_ok_and(|n| n == 1)
    })
    .await;
    proxy.deafen();
    let run = env.spawn_noop_run(16, 0);
    let output = finished(run, Duration::from_secs(90)).await;
    assert_success(&output);
    assert_eq!(env.noop_marks().await, (16, 16), "every task once");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("the consumers look deaf; reopening the broker session"),
        "{logged}"
    );
    assert!(proxy.connections() >= 2, "the worker connected again");
    let _ = std::fs::remove_file(&log);
    env.cleanup().await;
}

/// Failing a revision run cancels its unfinished tasks in the same
/// transaction: while one task row is locked, neither change is visible;
/// then both are. A done task stays done; a copy of a cancelled task's
/// message is acked as a duplicate, without effect; resuming the revision
/// run plans the cancelled tasks again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_a_revision_run_cancels_its_tasks_in_the_same_transaction() {
    use shared::plan::{Direction, Phase, PlannedTask};
    use shared::store;
    use sqlx::Connection;
    let mut env = TestEnv::new("fail_cancels").await;
    shared::db::ensure_pipeline_schema(&env.pool).await.unwrap();
    let run = store::start_run(&env.pool, "bench runtime", "test")
        .await
        .unwrap();
    let tasks = (0..4)
        .map(|i| {
            PlannedTask::new(
                Role::Seed,
                format!("noop {i}"),
                &serde_json::json!({"kind": "noop", "sleep_ms": 0, "mark": true}),
            )
        })
        .collect();
    let revision_run = store::store_plan(
        &env.pool,
        run,
        shared::catalogue::BENCH_NOOP,
        Direction::Rerun,
        &[Phase::new("noop", tasks)],
        3,
    )
    .await
    .unwrap();
    let messages = store::queue_phase(&env.pool, revision_run, 0)
        .await
        .unwrap();
    let ids: Vec<i64> = messages.iter().map(|m| m.task_id).collect();
    sqlx::query("UPDATE pipeline.tasks SET status = 'done' WHERE id = $1")
        .bind(ids[0])
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE pipeline.tasks SET status = 'running' WHERE id = $1")
        .bind(ids[1])
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE pipeline.tasks SET status = 'retrying' WHERE id = $1")
        .bind(ids[2])
        .execute(&env.pool)
        .await
        .unwrap();

    let mut holder = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    sqlx::raw_sql(&format!(
        "BEGIN; SELECT 1 FROM pipeline.tasks WHERE id = {} FOR UPDATE",
        ids[3]
    ))
    .execute(&mut holder)
    .await
    .unwrap();
    let pool = env.pool.clone();
    let failing = tokio::spawn(async move {
        store::fail_revision_run(&pool, revision_run, run, "a task failed").await
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = |env: &TestEnv| {
        let pool = env.pool.clone();
        async move {
            let run_status: String =
                sqlx::query_scalar("SELECT status FROM pipeline.revision_runs WHERE id = $1")
                    .bind(revision_run)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            let tasks: Vec<String> = sqlx::query_scalar(
                "SELECT status FROM pipeline.tasks WHERE revision_run_id = $1 ORDER BY id",
            )
            .bind(revision_run)
            .fetch_all(&pool)
            .await
            .unwrap();
            (run_status, tasks)
        }
    };
    assert_eq!(
        seen(&env).await,
        (
            "running".to_string(),
            vec!["done", "running", "retrying", "queued"]
                .into_iter()
                .map(String::from)
                .collect()
        ),
        "nothing visible while the transaction waits"
    );
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    failing.await.unwrap().unwrap();
    assert_eq!(
        seen(&env).await,
        (
            "failed".to_string(),
            vec!["done", "cancelled", "cancelled", "cancelled"]
                .into_iter()
                .map(String::from)
                .collect()
        )
    );

    // A copy of a cancelled task's message is a duplicate.
    env.start_worker(&["--role", "all"]);
    let mut message = messages[3].clone();
    message.database = Some(store::database_identity(&env.pool).await.unwrap());
    env.publish_raw(Role::Seed, &message.to_bytes())
        .await
        .unwrap();
    env.wait_for_count(
        &format!(
            "SELECT duplicates::bigint FROM pipeline.tasks WHERE id = {}",
            ids[3]
        ),
        1,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(env.noop_marks().await, (0, 0), "no effect");
    assert_eq!(
        env.queue_depth(&env.topology().dead_queue(Role::Seed))
            .await
            .unwrap(),
        0,
        "acked, not dead-lettered"
    );

    // Resuming plans them again.
    let next = store::start_run(&env.pool, "bench runtime", "test")
        .await
        .unwrap();
    store::resume_revision_run(&env.pool, revision_run, next)
        .await
        .unwrap();
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(*) FROM pipeline.tasks WHERE revision_run_id = {revision_run} AND status = 'pending'"
        ))
        .await,
        3
    );
    env.cleanup().await;
}

/// A publish the broker cannot route (its queue was deleted) comes back
/// (mandatory) and is published again after the topology is declared
/// again; a publish the broker never confirms is an error once
/// `CONFIRM_TIMEOUT_SECS` has passed, never taken as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_publish_is_routed_again_and_an_unconfirmed_one_is_an_error() {
    let env = TestEnv::new("publish_confirms").await;
    let proxy = testkit::amqp_proxy::AmqpProxy::start(&testkit::amqp_url()).await;
    let connection = lapin::Connection::connect(&proxy.url, lapin::ConnectionProperties::default())
        .await
        .unwrap();
    let publisher =
        shared::queue::Publisher::open(&connection, env.topology(), Duration::from_secs(2))
            .await
            .unwrap();
    let message = |task_id| shared::task::TaskMessage {
        task_id,
        revision: "noop".into(),
        role: Role::Seed,
        kind: "noop".into(),
        database: None,
    };
    let seed_queue = env.topology().work_queue(Role::Seed);

    delete_work_queues(&env).await;
    publisher
        .publish_tasks(&[message(1), message(2)])
        .await
        .unwrap();
    assert_eq!(
        env.queue_depth(&seed_queue).await.unwrap(),
        2,
        "both messages are in the queue declared again"
    );

    proxy.mute_confirms();
    let started = std::time::Instant::now();
    let err = publisher
        .publish_tasks(&[message(3)])
        .await
        .expect_err("a publish without a confirm must not count as done");
    let shown = format!("{err:#}");
    assert!(shown.contains("CONFIRM_TIMEOUT_SECS"), "{shown}");
    assert!(started.elapsed() >= Duration::from_secs(2), "{shown}");
    let _ = connection.close(200, "done".into()).await;
    env.cleanup().await;
}
