//! `orchestrator bench runtime`: N no-op tasks through the whole path — plan,
//! publish with confirms, claim, complete in PostgreSQL, ack, phase finished —
//! with local worker processes; prints tasks per second and the time from
//! publish to completion (median, 99th percentile), read from the task rows.

use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::lock::WaitPolicy;
use orchestrator::plan::{Phase, PlannedTask};
use shared::catalogue::{Role, BENCH_NOOP};
use shared::Config;
use std::time::{Duration, Instant};

use revisions::noop::NoopTask;
/// What the no-op tasks of a runtime benchmark do.
pub use revisions::noop::NoopWork;

/// With `workers == 0` no local worker is started: workers started
/// elsewhere (or by a test) do the work.
pub async fn runtime(
    config: &Config,
    tasks: usize,
    workers: usize,
    concurrency: Option<usize>,
    work: NoopWork,
) -> anyhow::Result<()> {
    let options = RunOptions {
        command: format!("bench runtime --tasks {tasks} --workers {workers}"),
        wait: WaitPolicy::Wait,
        data_dir: config.data_dir.clone(),
    };
    let mut driver = driver::start(config, &options).await?;
    let local = if workers > 0 {
        let local = LocalWorkers::start(workers, concurrency)?;
        // Let the workers connect, so that start-up is not measured.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Some(local)
    } else {
        None
    };

    let started = Instant::now();
    let roles = Role::ALL;
    let planned: Vec<PlannedTask> = (0..tasks)
        .map(|i| {
            PlannedTask::new(
                roles[i % roles.len()],
                format!("no-op {i}"),
                &NoopTask::Noop(work.clone()),
            )
        })
        .collect();
    let revision_run_id = driver
        .store_adhoc(BENCH_NOOP, &[Phase::new("no-op", planned)])
        .await?;
    let planned_at = started.elapsed();
    let result = driver.run_phase(revision_run_id, 0, "bench no-op").await;
    let elapsed = started.elapsed();
    if let Some(local) = local {
        local.stop(Duration::from_secs(30)).await;
    }
    if let Err(e) = result {
        driver.finish(Err(&e)).await;
        return Err(e);
    }

    let (median_ms, p99_ms, max_ms) =
        shared::store::completion_latency_ms(&driver.pool, revision_run_id).await?;
    if !work.mark {
        // Twenty thousand no-op rows are no history worth keeping; marked
        // runs are kept as the evidence their marks point to.
        shared::store::delete_revision_run(&driver.pool, revision_run_id).await?;
    }
    driver.finish(Ok(())).await;
    println!("runtime benchmark: {tasks} no-op tasks, {workers} worker process(es)");
    println!("  plan + store:          {:.2} s", planned_at.as_secs_f64());
    println!("  plan to phase done:    {:.2} s", elapsed.as_secs_f64());
    println!(
        "  throughput:            {:.0} tasks/s",
        tasks as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  publish to completion: median {median_ms:.1} ms, p99 {p99_ms:.1} ms, max {max_ms:.1} ms"
    );
    Ok(())
}
