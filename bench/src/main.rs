//! `orchestrator bench runtime|seed|embeddings|enrich|enrich-llm|graph|cascade|chaos|hosts`: the benchmarks, kept out
//! of the production binary. `orchestrator bench ARGS` runs this binary
//! (`orchestrator-bench`, next to it) with the same ARGS; each benchmark is
//! a module, and works in a scratch database and queue prefix of its own
//! ([`scratch`]) on the configured servers.

mod cascade;
mod chaos;
mod embeddings;
mod enrich;
mod enrich_llm;
mod graph;
mod hosts;
mod runtime;
mod scratch;
mod seed;

use clap::{Parser, Subcommand};
use shared::Config;
use std::process::ExitCode;
use std::time::Duration;

/// Benchmarks of the pipeline on this machine; each prints its figures.
/// Configuration comes from the environment and a `.env` file, as for the
/// orchestrator.
#[derive(Parser, Debug)]
#[command(name = "orchestrator bench", bin_name = "orchestrator bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The embeddings revision: the local model's throughput, then embed
    /// workers (1, 2, 4) against an in-process OpenAI-compatible fake, the
    /// hnsw build, and the write path against a raw binary COPY.
    Embeddings {
        #[arg(long, default_value_t = 100_000)]
        reviews: usize,
        /// Worker process counts to compare.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        workers: Vec<usize>,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Delay of the fake provider per request, in milliseconds.
        #[arg(long, default_value_t = 100)]
        delay_ms: u64,
        #[arg(long, default_value_t = 1536)]
        dims: usize,
        /// Texts per provider request.
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Provider requests in flight per task.
        #[arg(long, default_value_t = 1)]
        in_flight: usize,
        /// Source rows per embed task.
        #[arg(long, default_value_t = 1000)]
        task_rows: i64,
        /// Skip the local model's throughput.
        #[arg(long)]
        skip_local: bool,
        /// Keep the scratch database and the generated files.
        #[arg(long)]
        keep: bool,
    },
    /// The enrichment revision: reviews/s of the enrich phase with the local
    /// analyser and 1 and 2 worker processes, then (unless --skip-llm) the
    /// LLM path as `enrich-llm` measures it, with its defaults.
    Enrich {
        /// Only the local analyser's figures.
        #[arg(long)]
        skip_llm: bool,
        #[arg(long, default_value_t = 2_000)]
        reviews: usize,
        /// Worker process counts to compare.
        #[arg(long, value_delimiter = ',', default_value = "1,2")]
        workers: Vec<usize>,
        /// Reviews per enrich task.
        #[arg(long, default_value_t = 250)]
        task_rows: i64,
        /// Analyser threads per worker (default: cores / workers).
        #[arg(long)]
        threads: Option<usize>,
        /// Keep the scratch database and the generated files.
        #[arg(long)]
        keep: bool,
    },
    /// The enrichment revision's LLM path: enrich workers (1, 2, 4) against
    /// an in-process OpenAI-compatible fake answering after a fixed delay,
    /// then the time an injected rate limit costs against the limit itself.
    EnrichLlm {
        #[arg(long, default_value_t = 10_000)]
        reviews: usize,
        /// Worker process counts to compare.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        workers: Vec<usize>,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Delay of the fake provider per chat request, in milliseconds.
        #[arg(long, default_value_t = 300)]
        delay_ms: u64,
        /// Reviews per chat request (ENRICH_REVIEWS_PER_REQUEST).
        #[arg(long, default_value_t = 10)]
        per_request: usize,
        /// Chat requests in flight per worker (ENRICH_CONCURRENCY).
        #[arg(long, default_value_t = 4)]
        in_flight: usize,
        /// Review ids per enrich task (ENRICH_TASK_ROWS).
        #[arg(long, default_value_t = 250)]
        task_rows: i64,
        /// Length of the injected rate limit, in milliseconds (0: none).
        #[arg(long, default_value_t = 3000)]
        limit_ms: u64,
        /// Keep the scratch database and the generated files.
        #[arg(long)]
        keep: bool,
    },
    /// The graph revision: build rate with N graph workers, the shop's
    /// query latency (p50 / p95 over 60 calls, answers checked against SQL),
    /// and the original row-by-row Cypher way on a smaller set, with the ratio.
    Graph {
        #[arg(long, default_value_t = 1_000_000)]
        reviews: usize,
        /// Local graph worker processes.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Source rows per graph task.
        #[arg(long, default_value_t = 50_000)]
        task_rows: i64,
        /// Reviews the original way builds (0 skips it).
        #[arg(long, default_value_t = 10_000)]
        original_reviews: usize,
        /// Keep the scratch database and the generated files.
        #[arg(long)]
        keep: bool,
    },
    /// A scheduled re-run's cost: a generated data set brought to head, 1 %
    /// of its reviews changed (edited, deleted, inserted), then `rerun seed
    /// --prune --cascade`; prints both times, their ratio and what each
    /// revision of the cascade did.
    Cascade {
        #[arg(long, default_value_t = 1_000_000)]
        reviews: usize,
        /// Local worker processes (every role).
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Share of the reviews changed.
        #[arg(long, default_value_t = 0.01)]
        changed_share: f64,
        /// Keep the scratch database and the generated files.
        #[arg(long)]
        keep: bool,
    },
    /// The run to head with faults (SIGKILLed and SIGSTOPped workers, a
    /// broker restart, an immediate PostgreSQL stop, closed connections, a
    /// deleted queue), against the same run without them: both digests must
    /// be equal and no effect applied twice. Needs the local RabbitMQ
    /// (rabbitmqctl) and PostgreSQL (scripts/services.sh starts it again).
    Chaos {
        #[arg(long, default_value_t = 200_000)]
        reviews: usize,
        #[arg(long, default_value_t = 2)]
        workers_per_role: usize,
        /// Seeds the faults' choice, order and timing; printed, for replays.
        #[arg(long)]
        seed: Option<u64>,
        /// Workers SIGKILLed, one at a time.
        #[arg(long, default_value_t = 20)]
        kills: usize,
        /// TASK_LEASE_SECS of both runs.
        #[arg(long, default_value_t = 10)]
        lease_secs: u64,
        /// Seconds after which the run with faults counts as hung.
        #[arg(long, default_value_t = 1800)]
        bound_secs: u64,
        /// Leave out the RabbitMQ restart.
        #[arg(long)]
        no_broker_restart: bool,
        /// Leave out the PostgreSQL stop.
        #[arg(long)]
        no_postgres_restart: bool,
        /// Delay of the fake providers per request, in milliseconds (a
        /// small data set needs one to last through every fault).
        #[arg(long, default_value_t = 0)]
        provider_delay_ms: u64,
        /// Keep the scratch databases and the generated files.
        #[arg(long)]
        keep: bool,
    },
    /// Workers on three hosts of our own (network namespaces, as root): a
    /// one-host run, a clean three-host run, one with a slowed, lossy host,
    /// and one with a host cut off mid-embed and a broker address gone. Every
    /// digest must equal the one-host run's. Data over HTTP from the nginx of
    /// `REMOTE=1 scripts/services.sh`.
    Hosts {
        #[arg(long, default_value_t = 20_000)]
        reviews: usize,
        /// TASK_LEASE_SECS of every run.
        #[arg(long, default_value_t = 5)]
        lease_secs: u64,
        /// Delay of the fake providers per request, in milliseconds.
        #[arg(long, default_value_t = 100)]
        provider_delay_ms: u64,
        /// The slowed host's added delay each way, in milliseconds.
        #[arg(long, default_value_t = 50)]
        delay_ms: u64,
        /// The slowed host's packet loss, in percent.
        #[arg(long, default_value_t = 1)]
        loss_percent: u32,
        /// nginx's root folder (default: TEST_HTTP_DATA_ROOT).
        #[arg(long)]
        http_root: Option<std::path::PathBuf>,
        /// Its URL (default: TEST_HTTP_DATA_URL).
        #[arg(long)]
        http_url: Option<String>,
        /// Seconds after which a run counts as hung.
        #[arg(long, default_value_t = 1800)]
        bound_secs: u64,
        /// Keep the scratch databases, the generated files and the logs.
        #[arg(long)]
        keep: bool,
    },
    /// No-op tasks through the whole runtime path.
    Runtime {
        #[arg(long, default_value_t = 20_000)]
        tasks: usize,
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Tasks each worker runs at once.
        #[arg(long)]
        concurrency: Option<usize>,
        /// Simulated work per task, in milliseconds.
        #[arg(long, default_value_t = 0)]
        sleep_ms: u64,
        /// Spend --sleep-ms in one database statement inside the completing
        /// transaction (a task that hangs in the database).
        #[arg(long)]
        sleep_in_database: bool,
        /// Record each task's effect in pipeline.noop_marks (to check exactly-once).
        #[arg(long)]
        mark: bool,
        /// Attempts each task fails on purpose before it succeeds.
        #[arg(long, default_value_t = 0)]
        fail_attempts: i32,
        /// Each task panics in its completing transaction.
        #[arg(long)]
        panic: bool,
    },
    /// The seed revision on a generated data set against a plain `psql \copy`
    /// of the same files, in a scratch database; prints rows/s, the ratio and
    /// the seed workers' peak memory.
    Seed {
        #[arg(long, default_value_t = 1_000_000)]
        reviews: usize,
        /// Products of the generated data set (default: reviews / 1000, at least 60).
        #[arg(long)]
        products: Option<usize>,
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// Local seed worker processes.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Tasks each worker runs at once (default: WORKER_CONCURRENCY).
        #[arg(long)]
        concurrency: Option<usize>,
        /// Keep the scratch database and the generated files.
        #[arg(long)]
        keep: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    shared::logging::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    match cli.command {
        Command::Embeddings {
            reviews,
            workers,
            concurrency,
            delay_ms,
            dims,
            batch,
            in_flight,
            task_rows,
            skip_local,
            keep,
        } => {
            embeddings::embeddings(
                &config,
                &embeddings::EmbeddingsBench {
                    reviews,
                    workers,
                    concurrency: concurrency.max(1),
                    delay: Duration::from_millis(delay_ms),
                    dims,
                    batch: batch.max(1),
                    in_flight: in_flight.max(1),
                    task_rows: task_rows.max(1),
                    skip_local,
                    keep,
                },
            )
            .await
        }
        Command::Enrich {
            skip_llm,
            reviews,
            workers,
            task_rows,
            threads,
            keep,
        } => {
            let options = enrich::EnrichBench {
                reviews,
                workers,
                task_rows: task_rows.max(1),
                threads,
                keep,
            };
            enrich::enrich(&config, &options).await?;
            if skip_llm {
                return Ok(());
            }
            let defaults = Cli::parse_from(["orchestrator bench", "enrich-llm"]);
            let Command::EnrichLlm {
                reviews,
                workers,
                concurrency,
                delay_ms,
                per_request,
                in_flight,
                task_rows,
                limit_ms,
                keep,
            } = defaults.command
            else {
                unreachable!("parsed as enrich-llm")
            };
            enrich_llm::enrich_llm(
                &config,
                &enrich_llm::EnrichLlmBench {
                    reviews,
                    workers,
                    concurrency,
                    delay: Duration::from_millis(delay_ms),
                    per_request,
                    in_flight,
                    task_rows,
                    limit: Duration::from_millis(limit_ms),
                    keep,
                },
            )
            .await
        }
        Command::EnrichLlm {
            reviews,
            workers,
            concurrency,
            delay_ms,
            per_request,
            in_flight,
            task_rows,
            limit_ms,
            keep,
        } => {
            enrich_llm::enrich_llm(
                &config,
                &enrich_llm::EnrichLlmBench {
                    reviews,
                    workers,
                    concurrency: concurrency.max(1),
                    delay: Duration::from_millis(delay_ms.max(1)),
                    per_request: per_request.max(1),
                    in_flight: in_flight.max(1),
                    task_rows: task_rows.max(1),
                    limit: Duration::from_millis(limit_ms),
                    keep,
                },
            )
            .await
        }
        Command::Graph {
            reviews,
            workers,
            concurrency,
            task_rows,
            original_reviews,
            keep,
        } => {
            graph::graph(
                &config,
                &graph::GraphBench {
                    reviews,
                    workers: workers.max(1),
                    concurrency: concurrency.max(1),
                    task_rows: task_rows.max(1),
                    original_reviews,
                    keep,
                },
            )
            .await
        }
        Command::Cascade {
            reviews,
            workers,
            concurrency,
            changed_share,
            keep,
        } => {
            let options = cascade::CascadeBench {
                reviews,
                workers: workers.max(1),
                concurrency: concurrency.max(1),
                changed_share,
                keep,
            };
            cascade::cascade(&config, &options).await
        }
        Command::Chaos {
            reviews,
            workers_per_role,
            seed,
            kills,
            lease_secs,
            bound_secs,
            no_broker_restart,
            no_postgres_restart,
            provider_delay_ms,
            keep,
        } => {
            let options = chaos::ChaosBench {
                reviews,
                workers_per_role: workers_per_role.max(1),
                seed: seed.unwrap_or_else(|| chrono::Utc::now().timestamp() as u64),
                kills,
                lease_secs: lease_secs.max(2),
                bound: Duration::from_secs(bound_secs),
                broker_restart: !no_broker_restart,
                postgres_restart: !no_postgres_restart,
                provider_delay: Duration::from_millis(provider_delay_ms),
                keep,
            };
            chaos::chaos(&config, &options).await
        }
        Command::Hosts {
            reviews,
            lease_secs,
            provider_delay_ms,
            delay_ms,
            loss_percent,
            http_root,
            http_url,
            bound_secs,
            keep,
        } => {
            let from_env = |name: &str| {
                std::env::var(name).map_err(|_| {
                    anyhow::anyhow!(
                        "{name} is not set: run REMOTE=1 scripts/services.sh and load .cache/services.env, or give the nginx flags"
                    )
                })
            };
            let options = hosts::HostsBench {
                reviews,
                lease_secs: lease_secs.max(2),
                provider_delay: Duration::from_millis(provider_delay_ms),
                delay: Duration::from_millis(delay_ms),
                loss_percent,
                http_root: match http_root {
                    Some(root) => root,
                    None => from_env("TEST_HTTP_DATA_ROOT")?.into(),
                },
                http_url: match http_url {
                    Some(url) => url,
                    None => from_env("TEST_HTTP_DATA_URL")?,
                },
                bound: Duration::from_secs(bound_secs),
                keep,
            };
            hosts::hosts(&config, &options).await
        }
        Command::Runtime {
            tasks,
            workers,
            concurrency,
            sleep_ms,
            sleep_in_database,
            mark,
            fail_attempts,
            panic,
        } => {
            let work = runtime::NoopWork {
                sleep_ms,
                sleep_in_database,
                mark,
                fail_attempts,
                panic,
            };
            runtime::runtime(&config, tasks, workers, concurrency, work).await
        }
        Command::Seed {
            reviews,
            products,
            users,
            workers,
            concurrency,
            keep,
        } => {
            let options = seed::SeedBench {
                reviews,
                products: products.unwrap_or(reviews / 1000).max(60),
                users,
                workers,
                concurrency,
                keep,
            };
            seed::seed(&config, &options).await
        }
    }
}
