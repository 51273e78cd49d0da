//! `orchestrator bench enrich`: how fast the enrichment revision goes with
//! the local analyser, and whether a second worker process adds throughput.
//!
//! It generates a data set (default 2,000 reviews), seeds it through the
//! pipeline in a scratch database, then runs the enrichment revision's
//! plan (scope `all`, so that every review is decided) with 1 and then 2
//! local `worker` processes, starting from no enrichment each time, and
//! prints reviews/s of the enrich phase. Each worker's analyser gets
//! `cores / workers` threads unless `--threads` says otherwise, so that two
//! workers do not fight over the same cores.

use crate::scratch::{self, DataSet, Room};
use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::lock::WaitPolicy;
use orchestrator::plan::{Direction, PlanContext};
use shared::catalogue;
use shared::Config;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct EnrichBench {
    pub reviews: usize,
    /// Worker process counts to compare (default 1, 2).
    pub workers: Vec<usize>,
    /// Reviews per enrich task.
    pub task_rows: i64,
    /// Analyser threads per worker (default: cores / workers).
    pub threads: Option<usize>,
    pub keep: bool,
}

pub struct ScalingRun {
    pub workers: usize,
    pub reviews: i64,
    pub elapsed: Duration,
}

impl ScalingRun {
    pub fn rate(&self) -> f64 {
        self.reviews as f64 / self.elapsed.as_secs_f64()
    }
}

pub async fn enrich(config: &Config, bench: &EnrichBench) -> anyhow::Result<()> {
    let data = DataSet::new(bench.reviews, 20, 0.0);
    let room = Room::open(config, "enrich", data).await?;
    let mut bench_config = room.config.clone();
    bench_config.enrichment.task_rows = bench.task_rows;
    bench_config.enrichment.scope = shared::config::EnrichScope::All;

    let result = run(&bench_config, bench).await;
    room.close(bench.keep).await;
    result
}

async fn run(config: &Config, bench: &EnrichBench) -> anyhow::Result<()> {
    let options = RunOptions {
        command: format!("bench enrich --reviews {}", bench.reviews),
        wait: WaitPolicy::Wait,
        data_dir: config.data_dir.clone(),
    };
    let mut driver = scratch::seeded(config, &options).await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut runs = Vec::new();
    for &count in &bench.workers {
        let threads = bench.threads.unwrap_or((cores / count.max(1)).max(1));
        let mut env = scratch::base_env(config);
        let threads_text = threads.to_string();
        env.extend([
            ("ENRICH_PROVIDER", "local"),
            ("ENRICH_SCOPE", "all"),
            ("ENRICH_THREADS", threads_text.as_str()),
        ]);
        match scaling_run(config, &mut driver, count, 1, &env).await {
            Ok(run) => runs.push((run, threads)),
            Err(e) => {
                driver.finish(Err(&e)).await;
                return Err(e);
            }
        }
    }
    driver.finish(Ok(())).await;
    println!(
        "enrichment, local analyser ({}), scope all: {} generated reviews, ENRICH_TASK_ROWS {}, on {cores} core(s)",
        analysis::Analyser::source_for(&config.embedding.model_dir),
        bench.reviews,
        bench.task_rows
    );
    let base = runs.first().map_or(0.0, |(r, _)| r.rate());
    for (run, threads) in &runs {
        println!(
            "  {} worker process(es), {threads} analyser thread(s) each: {:>6} reviews in {:>6.2} s = {:>6.1} reviews/s  {:.2}x of 1  ({:.1} reviews/s per worker)",
            run.workers,
            run.reviews,
            run.elapsed.as_secs_f64(),
            run.rate(),
            if base > 0.0 { run.rate() / base } else { 0.0 },
            run.rate() / run.workers as f64
        );
    }
    Ok(())
}

/// One run of the enrichment plan with `count` workers started with `env`
/// (`tasks` at once each), from no enrichment: the enrich phase's reviews
/// and time.
pub async fn scaling_run(
    config: &Config,
    driver: &mut driver::Driver,
    count: usize,
    tasks: usize,
    env: &[(&str, &str)],
) -> anyhow::Result<ScalingRun> {
    let pool = driver.pool.clone();
    let enriched: bool =
        sqlx::query_scalar("SELECT to_regclass('pipeline.enrichment_backup') IS NOT NULL")
            .fetch_one(&pool)
            .await?;
    if enriched {
        sqlx::raw_sql(revisions::enrichment::DOWNGRADE_SQL)
            .execute(&pool)
            .await?;
    }
    let mut env = env.to_vec();
    let rows = config.enrichment.task_rows.to_string();
    env.push(("ENRICH_TASK_ROWS", rows.as_str()));
    let workers = LocalWorkers::start_with_env(count, Some(tasks), &env)?;
    // Let them connect, so that start-up is not measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let result = async {
        let ctx = PlanContext {
            config,
            pool: &pool,
            direction: Direction::Upgrade,
            data_dir: config.data_dir.clone(),
            rerun: Default::default(),
        };
        let phases = revisions::enrichment::REVISION.plan(&ctx).await?;
        let revision_run_id = driver
            .store_adhoc(catalogue::ENRICHMENT, &phases)
            .await?;
        let mut enrich_time = Duration::ZERO;
        for (i, phase) in phases.iter().enumerate() {
            let started = Instant::now();
            let title = format!("bench enrich, {count} worker(s): {}", phase.name);
            driver.run_phase(revision_run_id, i as i32, &title).await?;
            if i == 1 {
                enrich_time = started.elapsed();
            }
        }
        let reviews: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(reviews_sent), 0)::bigint FROM pipeline.enrichment_usage WHERE revision_run_id = $1",
        )
        .bind(revision_run_id)
        .fetch_one(&pool)
        .await?;
        shared::store::delete_revision_run(&pool, revision_run_id).await?;
        anyhow::Ok(ScalingRun {
            workers: count,
            reviews,
            elapsed: enrich_time,
        })
    }
    .await;
    workers.stop(Duration::from_secs(30)).await;
    result
}
