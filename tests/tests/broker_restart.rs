//! A restarted broker, in a test binary of its own: restarting RabbitMQ
//! disturbs every connection on it, so no other test may run meanwhile
//! (cargo runs test binaries one after another).

use std::time::Duration;
use testkit::{amqp_url, assert_success, finished, text, TestEnv};

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl runs");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrator_and_workers_carry_on_across_a_broker_restart() {
    assert!(
        amqp_url().contains("127.0.0.1") || amqp_url().contains("localhost"),
        "this test restarts the broker with rabbitmqctl and needs the local one"
    );
    let mut env = TestEnv::new("broker_restart").await;
    env.set_env("TASK_MAX_ATTEMPTS", "5");
    env.start_worker(&["--role", "all", "--concurrency", "4"]);
    env.start_worker(&["--role", "all", "--concurrency", "4"]);
    // Every task fails its first attempt on purpose, so that retries sit
    // in the delay queues, and are published, across the restart.
    let run = env.spawn_noop_run_with(60, &["--sleep-ms", "300", "--fail-attempts", "1"]);
    env.wait_for_tasks("retrying", 8, Duration::from_secs(60))
        .await;

    rabbitmqctl(&["stop_app"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    rabbitmqctl(&["start_app"]);

    let out = finished(run, Duration::from_secs(240)).await;
    assert_success(&out);
    let (marks, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT task_id) FROM pipeline.noop_marks")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        (marks, distinct),
        (60, 60),
        "each effect exactly once: {}",
        text(&out)
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.tasks WHERE status = 'done' AND attempts >= 2")
            .await,
        60,
        "every task failed once and its retry came through"
    );
    env.cleanup().await;
}
