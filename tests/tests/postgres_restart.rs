//! An immediate PostgreSQL stop (`pg_ctl stop -m immediate`: no checkpoint,
//! crash recovery on start) in the middle of a merge-mode seed, in a test
//! binary of its own: stopping the database disturbs every test running
//! meanwhile (cargo runs test binaries one after another).
//!
//! A merge seed `COPY`s each range into a staging table and commits it with
//! its task's `done`; finalize applies all of staging at the end. Staging
//! that did not survive the crash (an `UNLOGGED` table is emptied by crash
//! recovery) would let finalize apply a short staging table: with
//! `--prune`, the rows of the lost ranges would be deleted as "gone from
//! the files".

use nix::sys::signal::Signal;
use std::path::Path;
use std::time::Duration;
use testkit::{assert_success, finished, text, TestEnv};

const SEED: &str = "ef85393336cb";

/// Review ranges the rerun has staged (loaded into staging and marked done).
const STAGED_REVIEW_RANGES: &str =
    "SELECT count(*) FROM pipeline.tasks t JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id
      WHERE rr.direction = 'rerun' AND t.label LIKE 'product_reviews.csv%' AND t.status = 'done'";

async fn reviews_digest(env: &TestEnv, except: &[i32]) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), md5(string_agg(r::text, '|' ORDER BY id))
           FROM public.product_reviews r WHERE id <> ALL($1)",
    )
    .bind(except)
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// Moves the review with the largest id to a new id: the rerun must delete
/// one row (`--prune`) and insert one, and leave every other row as it was.
fn renumber_last_review(dir: &Path, from: i32, to: i32) {
    let (header, mut records) = testkit::data::read_csv(dir, "product_reviews.csv");
    let moved = records
        .iter_mut()
        .find(|r| r[0] == from.to_string())
        .expect("the review with the largest id is in the file");
    moved[0] = to.to_string();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    testkit::data::write_csv(dir, "product_reviews.csv", &header, &records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_seed_survives_an_immediate_postgres_stop_and_applies_every_range() {
    let admin = testkit::admin_url();
    assert!(
        admin.contains("127.0.0.1") || admin.contains("localhost"),
        "this test stops the local PostgreSQL and starts it again with scripts/services.sh"
    );
    let mut env = TestEnv::new("postgres_restart").await;
    let (dir, _) = env.generate_data("seed-pg-restart", 200_000).await;
    env.set_env("SEED_TASK_ROWS", "5000");
    env.start_worker(&["--role", "all", "--concurrency", "2"]);
    assert_success(
        &env.orchestrator(&["upgrade", SEED, "--data-dir", dir.to_str().unwrap()])
            .await,
    );
    let last: i32 = env
        .scalar("SELECT max(id)::bigint FROM public.product_reviews")
        .await as i32;
    let moved_to = last + 1000;
    let before = reviews_digest(&env, &[last, moved_to]).await;
    renumber_last_review(&dir, last, moved_to);
    env.kill_workers().await;

    let victim = env.start_worker(&["--role", "seed", "--concurrency", "2"]);
    let rerun = env.spawn_orchestrator(&[
        "rerun",
        SEED,
        "--prune",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let pool = env.pool.clone();
    env.eventually(
        "review ranges staged, the rest not yet",
        Duration::from_secs(120),
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(STAGED_REVIEW_RANGES)
                    .fetch_one(&pool)
                    .await
                    .unwrap_or(0)
                    >= 3
            }
        },
    )
    .await;
    env.signal_worker(victim, Signal::SIGKILL);
    let staged: i64 = env.scalar(STAGED_REVIEW_RANGES).await;
    let finalized: i64 = env
        .scalar(
            "SELECT count(*) FROM pipeline.tasks t JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id
              WHERE rr.direction = 'rerun' AND t.kind = 'finalize' AND t.status = 'done'",
        )
        .await;
    assert_eq!(finalized, 0, "the stop must land before finalize");
    let stopped = testkit::services::restart_postgres_immediately(&env.pool)
        .await
        .unwrap();
    eprintln!("{staged} review range(s) staged when PostgreSQL stopped: {stopped}");

    env.start_worker(&["--role", "seed", "--concurrency", "2"]);
    let output = finished(rerun, Duration::from_secs(300)).await;
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert_eq!(
        reviews_digest(&env, &[last, moved_to]).await,
        before,
        "every review the files still hold is there, unchanged: {shown}"
    );
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(*) FROM public.product_reviews WHERE id = {last}"
        ))
        .await,
        0,
        "the review gone from the file is pruned"
    );
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(*) FROM public.product_reviews WHERE id = {moved_to}"
        ))
        .await,
        1,
        "the review new in the file is inserted"
    );
    let out = env.orchestrator(&["status"]).await;
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}
