//! `orchestrator bench enrich-llm`: the enrichment revision's LLM path
//! (`ENRICH_PROVIDER=openai`) through real `worker` processes, against the
//! in-process OpenAI-compatible fake ([`testkit::fake_openai`]) answering
//! every chat request after a fixed delay (300 ms by default) with a valid
//! structured answer. It prints:
//!
//! 1. reviews per second of the enrich phase with 1, 2 and 4 local worker
//!    processes, on a generated data set seeded by the pipeline itself
//!    (scope `all`: every review is sent), and the ratio to one worker;
//! 2. the same run (with the last worker count) with a rate-limit window
//!    injected a third of the way in: every request is refused with 429
//!    (`Retry-After`, `x-ratelimit-*`) for `--limit-ms`; the time it lost
//!    against the clean run, next to the length of the limit itself.
//!
//! The runs are those of `bench enrich` ([`crate::enrich::scaling_run`]:
//! the enrichment undone with its own downgrade SQL before each, so that
//! every review is decided afresh), with the LLM settings. Everything runs in a scratch database
//! and queue prefix of its own, dropped at the end (unless `--keep`).

use crate::enrich;
use crate::scratch::{self, DataSet, Room};
use orchestrator::driver::{self, RunOptions};
use orchestrator::lock::WaitPolicy;
use shared::config::{EnrichProvider, EnrichScope, Secret};
use shared::Config;
use std::time::Duration;
use testkit::fake_openai::{FakeOpenAi, FakeOptions};

#[derive(Debug, Clone)]
pub struct EnrichLlmBench {
    pub reviews: usize,
    /// Worker process counts to compare (default 1, 2, 4).
    pub workers: Vec<usize>,
    /// Tasks each worker runs at once.
    pub concurrency: usize,
    /// Delay of the fake provider per chat request.
    pub delay: Duration,
    /// `ENRICH_REVIEWS_PER_REQUEST`.
    pub per_request: usize,
    /// `ENRICH_CONCURRENCY`: chat requests in flight per worker.
    pub in_flight: usize,
    /// `ENRICH_TASK_ROWS`.
    pub task_rows: i64,
    /// Length of the injected rate limit (0: no rate-limited run).
    pub limit: Duration,
    pub keep: bool,
}

struct Run {
    workers: usize,
    reviews: i64,
    requests: u64,
    enrich: Duration,
}

pub async fn enrich_llm(config: &Config, bench: &EnrichLlmBench) -> anyhow::Result<()> {
    let data = DataSet {
        products: (bench.reviews / 100).max(60),
        ..DataSet::new(bench.reviews, 50, 0.0)
    };
    let room = Room::open(config, "enrich-llm", data).await?;
    let server = FakeOpenAi::start(FakeOptions {
        delay: bench.delay,
        ..FakeOptions::default()
    })
    .await?;
    server.answer_chat_automatically();
    let mut bench_config = room.config.clone();
    bench_config.openai.base_url = server.base_url();
    bench_config.openai.api_key = Secret::new("sk-fake");
    let e = &mut bench_config.enrichment;
    e.provider = EnrichProvider::OpenAi;
    e.llm_model = "gpt-4o-mini".into();
    e.scope = EnrichScope::All;
    e.reviews_per_request = bench.per_request;
    e.concurrency = bench.in_flight;
    e.task_rows = bench.task_rows;
    e.batch_api = false;

    let result = run(&bench_config, bench, &server).await;

    room.close(bench.keep).await;
    result
}

/// The settings of the LLM path for the enrich workers, after
/// [`crate::scratch::base_env`].
fn llm_env(config: &Config) -> Vec<(&'static str, String)> {
    let e = &config.enrichment;
    vec![
        ("ENRICH_PROVIDER", e.provider.to_string()),
        ("ENRICH_SCOPE", e.scope.to_string()),
        ("OPENAI_BASE_URL", config.openai.base_url.clone()),
        ("OPENAI_API_KEY", config.openai.api_key.expose().to_string()),
        ("LLM_MODEL", e.llm_model.clone()),
        (
            "ENRICH_REVIEWS_PER_REQUEST",
            e.reviews_per_request.to_string(),
        ),
        ("ENRICH_CONCURRENCY", e.concurrency.to_string()),
        ("ENRICH_BATCH_API", "false".into()),
    ]
}

async fn run(config: &Config, bench: &EnrichLlmBench, server: &FakeOpenAi) -> anyhow::Result<()> {
    let options = RunOptions {
        command: format!("bench enrich-llm --reviews {}", bench.reviews),
        wait: WaitPolicy::Wait,
        data_dir: config.data_dir.clone(),
    };
    let mut driver = scratch::seeded(config, &options).await?;
    let mut runs = Vec::new();
    for &count in &bench.workers {
        match enrich_run(config, &mut driver, bench, server, count, None).await {
            Ok(run) => runs.push(run),
            Err(e) => {
                driver.finish(Err(&e)).await;
                return Err(e);
            }
        }
    }
    let limited = match (runs.last(), bench.limit.is_zero()) {
        (Some(clean), false) => {
            // A third of the way into the run, by requests.
            let window = Some((clean.requests / 3, bench.limit));
            match enrich_run(config, &mut driver, bench, server, clean.workers, window).await {
                Ok(run) => Some(run),
                Err(e) => {
                    driver.finish(Err(&e)).await;
                    return Err(e);
                }
            }
        }
        _ => None,
    };
    let seen = server.rate_limit_window_seen();
    driver.finish(Ok(())).await;

    println!(
        "enrichment, LLM path: real worker processes, ENRICH_PROVIDER=openai against an in-process fake ({} ms per chat request, auto answers); {} reviews, scope all; ENRICH_REVIEWS_PER_REQUEST {}, ENRICH_CONCURRENCY {} per worker, ENRICH_TASK_ROWS {}, {} task(s) per worker",
        bench.delay.as_millis(),
        bench.reviews,
        bench.per_request,
        bench.in_flight,
        bench.task_rows,
        bench.concurrency
    );
    let ceiling = bench.in_flight as f64 * bench.per_request as f64 / bench.delay.as_secs_f64();
    println!(
        "  (one worker cannot pass {ceiling:.0} reviews/s: {} requests of {} reviews in flight, {} ms each)",
        bench.in_flight,
        bench.per_request,
        bench.delay.as_millis()
    );
    let base = runs
        .first()
        .map(|r| r.reviews as f64 / r.enrich.as_secs_f64())
        .unwrap_or(0.0);
    for run in &runs {
        let rate = run.reviews as f64 / run.enrich.as_secs_f64();
        let target = if run.workers > 1 {
            format!("  (target: at least {:.1}x)", 0.9 * run.workers as f64)
        } else {
            String::new()
        };
        println!(
            "  {} worker process(es): {:>7} reviews in {:>7.2} s = {:>7.1} reviews/s  {:>5.2}x of 1{target}  ({} requests)",
            run.workers,
            run.reviews,
            run.enrich.as_secs_f64(),
            rate,
            if base > 0.0 { rate / base } else { 0.0 },
            run.requests
        );
    }
    if let (Some(limited), Some(clean)) = (&limited, runs.last()) {
        let lost = limited.enrich.as_secs_f64() - clean.enrich.as_secs_f64();
        let refused = seen.map_or(0, |(_, _, refused)| refused);
        println!(
            "  rate limit: {} worker(s), every request refused with 429 for {:.2} s a third of the way in ({refused} refused, Retry-After and x-ratelimit-* given): {:.2} s instead of {:.2} s",
            limited.workers,
            bench.limit.as_secs_f64(),
            limited.enrich.as_secs_f64(),
            clean.enrich.as_secs_f64()
        );
        println!(
            "    time lost: {lost:.2} s for a limit of {:.2} s = {:.2}x the limit  (target: about 1x)",
            bench.limit.as_secs_f64(),
            lost / bench.limit.as_secs_f64()
        );
    }
    Ok(())
}

/// One run of the enrichment with `count` workers, every review due; with
/// `window`, a rate limit opens after that many requests of the run.
async fn enrich_run(
    config: &Config,
    driver: &mut driver::Driver,
    bench: &EnrichLlmBench,
    server: &FakeOpenAi,
    count: usize,
    window: Option<(u64, Duration)>,
) -> anyhow::Result<Run> {
    let llm = llm_env(config);
    let mut env = scratch::base_env(config);
    env.extend(llm.iter().map(|(k, v)| (*k, v.as_str())));
    let requests = server.chat_requests();
    if let Some((after, length)) = window {
        // The revision's first phase (its tables) sends no model request.
        server.rate_limit_window(server.requests() + after, length);
    }
    let run = enrich::scaling_run(config, driver, count, bench.concurrency, &env).await?;
    Ok(Run {
        workers: count,
        reviews: run.reviews,
        requests: server.chat_requests() - requests,
        enrich: run.elapsed,
    })
}
