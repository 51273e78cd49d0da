//! Schedules and schedulers, with the real binaries: several `orchestrator
//! scheduler` processes share one database; each due time fires once.

use nix::sys::signal::Signal;
use std::time::Duration;
use testkit::{assert_success, text, TestEnv};

const SCHEMA: &str = "1b33292593a9";

fn scheduler(env: &TestEnv, name: &str) -> tokio::process::Child {
    env.spawn_orchestrator(&["scheduler", "--name", name, "--tick-ms", "100"])
}

fn signal(child: &tokio::process::Child, signal: Signal) {
    if let Some(pid) = child.id() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schedulers_fire_each_due_second_exactly_once() {
    let env = TestEnv::new("sched_three").await;
    // A database at base, upgraded to base: each fire takes the run lock,
    // records a run and finds nothing to do.
    assert_success(
        &env.orchestrator(&[
            "schedule",
            "add",
            "tick",
            "--cron",
            "* * * * * *",
            "--upgrade",
            "base",
        ])
        .await,
    );
    let schedulers: Vec<_> = (1..=3).map(|i| scheduler(&env, &format!("s{i}"))).collect();
    tokio::time::sleep(Duration::from_secs(8)).await;
    for s in &schedulers {
        signal(s, Signal::SIGTERM);
    }
    for s in schedulers {
        let out = tokio::time::timeout(Duration::from_secs(30), s.wait_with_output())
            .await
            .expect("a scheduler stops on SIGTERM")
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let (fires, distinct, span, failed): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT due_at),
                extract(epoch FROM max(due_at) - min(due_at))::bigint + 1,
                count(*) FILTER (WHERE status <> 'succeeded')
           FROM pipeline.schedule_fires WHERE schedule = 'tick'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(fires >= 5, "{fires} fires in 8 s");
    assert_eq!(fires, distinct, "no due time fired twice");
    assert_eq!(
        fires, span,
        "every due second between the first and the last fired"
    );
    assert_eq!(failed, 0);
    let by: i64 = env
        .scalar("SELECT count(DISTINCT scheduler) FROM pipeline.schedule_fires")
        .await;
    assert!(by >= 2, "the fires were shared: {by} scheduler(s)");
    let list = env.orchestrator(&["schedule", "list"]).await;
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("succeeded"),
        "{}",
        text(&list)
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_fires_catch_up_once_or_not_at_all_and_bad_schedules_are_refused() {
    let env = TestEnv::new("sched_catch_up").await;
    let bad = env
        .orchestrator(&[
            "schedule",
            "add",
            "x",
            "--cron",
            "61 * * * *",
            "--upgrade",
            "base",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("\"61 * * * *\""), "{}", text(&bad));
    let bad = env
        .orchestrator(&[
            "schedule",
            "add",
            "x",
            "--cron",
            "* * * * *",
            "--rerun",
            "nonesuch",
        ])
        .await;
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("nonesuch"), "{}", text(&bad));

    for (name, catch_up) in [("one", "one"), ("none", "none")] {
        assert_success(
            &env.orchestrator(&[
                "schedule",
                "add",
                name,
                "--cron",
                "* * * * * *",
                "--upgrade",
                "base",
                "--catch-up",
                catch_up,
            ])
            .await,
        );
    }
    // No scheduler for several due times.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let s = scheduler(&env, "late");
    env.wait_for_count(
        "SELECT least(count(*), 2) FROM pipeline.schedule_fires WHERE status <> 'running'",
        2,
        Duration::from_secs(30),
    )
    .await;
    signal(&s, Signal::SIGTERM);
    let first = |name: &'static str| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_as::<_, (String, Option<String>)>(
                "SELECT status, note FROM pipeline.schedule_fires WHERE schedule = $1 ORDER BY due_at LIMIT 1",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let (status, note) = first("one").await;
    assert_eq!(status, "succeeded");
    assert!(note.unwrap_or_default().contains("catches up once"));
    let (status, note) = first("none").await;
    assert_eq!(status, "missed");
    assert!(note.unwrap_or_default().contains("none fired"));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_fire_makes_later_ones_skip_and_survives_its_scheduler_being_killed() {
    let mut env = TestEnv::new("sched_overlap").await;
    // No worker yet: the fire's upgrade waits for one.
    assert_success(
        &env.orchestrator(&[
            "schedule",
            "add",
            "long",
            "--cron",
            "* * * * * *",
            "--upgrade",
            SCHEMA,
        ])
        .await,
    );
    let victim = scheduler(&env, "victim");
    env.wait_for_count(
        "SELECT least(count(*), 2) FROM pipeline.schedule_fires WHERE status = 'skipped'",
        2,
        Duration::from_secs(30),
    )
    .await;
    let note: String = sqlx::query_scalar(
        "SELECT note FROM pipeline.schedule_fires WHERE status = 'skipped' ORDER BY id LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(note.contains("still running"), "{note}");
    signal(&victim, Signal::SIGKILL);
    let _ = victim.wait_with_output().await;
    // Another scheduler takes the fire up; a worker lets it finish.
    let heir = scheduler(&env, "heir");
    env.start_worker(&["--role", "all"]);
    env.wait_for_count(
        "SELECT count(*) FROM pipeline.schedule_fires WHERE status = 'succeeded' AND note LIKE '%resumed by heir%'",
        1,
        Duration::from_secs(60),
    )
    .await;
    signal(&heir, Signal::SIGTERM);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.schedule_fires WHERE status = 'running'")
            .await,
        0
    );
    env.cleanup().await;
}
