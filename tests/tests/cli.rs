//! Alembic's verbs as the orchestrator speaks them: relative targets,
//! `stamp`, `heads`, `branches`, `show`, and the documented exit codes
//! (0 done, 1 failed, 2 bad usage, 3 lock held with `--no-wait`).

use std::time::Duration;
use testkit::{assert_success, text, TestEnv};

const EXTENSIONS: &str = "7a35c0d9d159";
const SCHEMA: &str = "1b33292593a9";
const SEED: &str = "ef85393336cb";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_targets_stamp_show_and_exit_codes() {
    let mut env = TestEnv::new("cli_verbs").await;
    env.start_worker(&["--role", "all"]);

    assert_success(&env.orchestrator(&["upgrade", "+2"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    assert_success(&env.orchestrator(&["downgrade", "-1"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(EXTENSIONS));
    assert_success(&env.orchestrator(&["upgrade", "extensions+1"]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));

    let past = env.orchestrator(&["upgrade", "+9"]).await;
    assert_eq!(past.status.code(), Some(2), "{}", text(&past));
    assert!(
        text(&past).contains("past the end of the chain"),
        "{}",
        text(&past)
    );
    let unknown = env.orchestrator(&["upgrade", "nonesuch"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    let bad_flag = env.orchestrator(&["upgrade", SEED, "--no-such-flag"]).await;
    assert_eq!(bad_flag.status.code(), Some(2), "{}", text(&bad_flag));

    // stamp moves the version only: the seed's tables stay empty.
    let tasks_before = env.scalar("SELECT count(*) FROM pipeline.tasks").await;
    assert_success(&env.orchestrator(&["stamp", SEED]).await);
    assert_eq!(env.current_revision().await.as_deref(), Some(SEED));
    assert_eq!(env.scalar("SELECT count(*) FROM public.products").await, 0);
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.tasks").await,
        tasks_before
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.revision_history WHERE direction = 'stamp'")
            .await,
        1
    );
    assert_success(&env.orchestrator(&["stamp", SCHEMA]).await);

    let heads = env.orchestrator(&["heads"]).await;
    assert_success(&heads);
    assert!(String::from_utf8_lossy(&heads.stdout).contains("(head)"));
    let branches = env.orchestrator(&["branches"]).await;
    assert!(String::from_utf8_lossy(&branches.stdout).contains("no branches"));
    let show = env.orchestrator(&["show", "schema"]).await;
    assert_success(&show);
    let shown = String::from_utf8_lossy(&show.stdout).to_string();
    assert!(
        shown.contains(&format!("Rev: {SCHEMA} (schema)")),
        "{shown}"
    );
    assert!(shown.contains(&format!("Parent: {EXTENSIONS}")), "{shown}");
    assert!(shown.contains("Applied: yes"), "{shown}");
    assert!(shown.contains("Last run: #"), "{shown}");

    // The run lock held by a waiting upgrade: --no-wait exits 3.
    env.kill_workers().await;
    let holder = env.spawn_orchestrator(&["upgrade", SEED]);
    env.wait_for_tasks("queued", 1, Duration::from_secs(60))
        .await;
    let refused = env.orchestrator(&["upgrade", SEED, "--no-wait"]).await;
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused));
    drop(holder);
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_any_earlier_run_by_its_number() {
    let mut env = TestEnv::new("cli_status_run").await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", EXTENSIONS]).await);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    let first = env.scalar("SELECT min(id) FROM pipeline.runs").await;

    let last = env.orchestrator(&["status"]).await;
    assert_success(&last);
    let last = String::from_utf8_lossy(&last.stdout).into_owned();
    assert!(last.contains(&format!("{SCHEMA} (schema): done")), "{last}");

    let earlier = env
        .orchestrator(&["status", "--run", &first.to_string()])
        .await;
    assert_success(&earlier);
    let earlier = String::from_utf8_lossy(&earlier.stdout).into_owned();
    assert!(earlier.starts_with(&format!("run #{first} ")), "{earlier}");
    assert!(
        earlier.contains(&format!("{EXTENSIONS} (extensions): done")),
        "{earlier}"
    );
    assert!(!earlier.contains("(schema)"), "{earlier}");

    let unknown = env.orchestrator(&["status", "--run", "999"]).await;
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown).contains("there is no run #999"),
        "{}",
        text(&unknown)
    );
    env.cleanup().await;
}
