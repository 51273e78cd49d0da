use clap::{Parser, Subcommand};
use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::lock::WaitPolicy;
use orchestrator::plan::Direction;
use orchestrator::{bench, bench_embeddings, bench_seed, inspect, search};
use shared::catalogue;
use shared::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Builds the AgenticShop database: publishes revision tasks to RabbitMQ for
/// the workers, waits for them, and records each revision in PostgreSQL.
/// Configuration comes from the environment and a `.env` file
/// (`orchestrator config` shows it, secrets redacted).
#[derive(Parser, Debug)]
#[command(name = "orchestrator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Apply revisions up to a target (`head`, a revision id or name).
    Upgrade {
        target: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Undo revisions down to a target (`base`, a revision id or name).
    Downgrade {
        target: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run an applied revision again (the seed: upsert the data directory by
    /// id), without moving `alembic_version`.
    Rerun {
        revision: String,
        #[command(flatten)]
        run: RunArgs,
    },
    /// The nearest products or reviews to a query, by embedding similarity.
    Search {
        query: String,
        /// Which embeddings to search.
        #[arg(long = "in", value_enum, default_value = "products")]
        target: search::SearchIn,
        /// How many results.
        #[arg(short = 'k', long, default_value_t = 10)]
        k: i64,
    },
    /// Print the revision `alembic_version` holds.
    Current,
    /// List the revisions, applied or not, and when.
    History,
    /// The current or last run: per phase, tasks by state; the last errors.
    Status,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Data sets: `data generate` writes one of any size in the seed format.
    Data {
        #[command(subcommand)]
        which: DataCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: BenchCommand,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Exit at once (non-zero) if another run holds the database's run lock,
    /// instead of waiting for it.
    #[arg(long)]
    no_wait: bool,
    /// Also start N worker processes on this machine for this run (default 2).
    #[arg(long, num_args = 0..=1, default_missing_value = "2", value_name = "N")]
    with_workers: Option<usize>,
    /// Tasks each local worker runs at once (with --with-workers).
    #[arg(long)]
    worker_concurrency: Option<usize>,
    /// Folder of the CSV files to seed from (default: DATA_DIR, or ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Write a synthetic data set (deterministic per seed) in the CSV format the seed revision loads.
    Generate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 60)]
        products: usize,
        #[arg(long, default_value_t = 1_000)]
        reviews: usize,
        #[arg(long, default_value_t = 100)]
        users: usize,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Share of reviews whose feature_id and sentiment are filled in review.csv.
        #[arg(long, default_value_t = 0.3)]
        labelled_share: f64,
    },
    /// Rewrite the project's sample data set (data/) from the generator.
    Sample {
        #[arg(long, default_value = "data")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
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
        /// Record each task's effect in pipeline.noop_marks (to check exactly-once).
        #[arg(long)]
        mark: bool,
        /// Attempts each task fails on purpose before it succeeds.
        #[arg(long, default_value_t = 0)]
        fail_attempts: i32,
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
    if let Command::Data { which } = cli.command {
        // Needs no configuration: it only writes files.
        let summary = match which {
            DataCommand::Generate {
                out,
                products,
                reviews,
                users,
                seed,
                labelled_share,
            } => datagen::generate(&datagen::GenerateOptions {
                out_dir: out,
                products,
                reviews,
                users,
                seed,
                labelled_share,
            })?,
            DataCommand::Sample { out } => datagen::write_sample_dataset(&out)?,
        };
        println!("{summary}");
        return Ok(());
    }
    let config = Config::from_env()?;
    match cli.command {
        Command::Upgrade { target, run } => {
            migrate(&config, &target, Direction::Upgrade, run).await
        }
        Command::Downgrade { target, run } => {
            migrate(&config, &target, Direction::Downgrade, run).await
        }
        Command::Rerun { revision, run } => {
            migrate(&config, &revision, Direction::Rerun, run).await
        }
        Command::Current => inspect::current(&connect(&config).await?).await,
        Command::History => inspect::history(&connect(&config).await?).await,
        Command::Status => inspect::status(&connect(&config).await?).await,
        Command::Search { query, target, k } => {
            search::run(&config, &connect(&config).await?, &query, target, k).await
        }
        Command::Config => {
            for (name, value) in config.describe() {
                println!("{name:<34} {value}");
            }
            Ok(())
        }
        Command::Data { .. } => unreachable!("handled above"),
        Command::Bench { which } => match which {
            BenchCommand::Embeddings {
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
                bench_embeddings::embeddings(
                    &config,
                    &bench_embeddings::EmbeddingsBench {
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
            BenchCommand::Runtime {
                tasks,
                workers,
                concurrency,
                sleep_ms,
                mark,
                fail_attempts,
            } => {
                let work = bench::NoopWork {
                    sleep_ms,
                    mark,
                    fail_attempts,
                };
                bench::runtime(&config, tasks, workers, concurrency, work).await
            }
            BenchCommand::Seed {
                reviews,
                products,
                users,
                workers,
                concurrency,
                keep,
            } => {
                let options = bench_seed::SeedBench {
                    reviews,
                    products: products.unwrap_or(reviews / 1000).max(60),
                    users,
                    workers,
                    concurrency,
                    keep,
                };
                bench_seed::seed(&config, &options).await
            }
        },
    }
}

async fn connect(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    shared::db::connect(config, 2, Duration::from_secs(30)).await
}

async fn migrate(
    config: &Config,
    target: &str,
    direction: Direction,
    args: RunArgs,
) -> anyhow::Result<()> {
    let target = catalogue::resolve(target).map_err(anyhow::Error::msg)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    let options = RunOptions {
        command: format!("{} {}", direction.as_str(), target_name(target)),
        wait: if args.no_wait {
            WaitPolicy::NoWait
        } else {
            WaitPolicy::Wait
        },
        data_dir: data_dir.clone(),
    };
    // Refuse an unavailable revision before doing anything at all...
    {
        let pool = connect(config).await?;
        let current = driver::current_index(&pool).await?;
        driver::check_available(&path_for(current, target, direction)?)?;
        pool.close().await;
    }
    let mut driver = driver::start(config, &options).await?;
    let outcome = async {
        // ...and look again under the run lock: another run may have moved the database.
        let current = driver::current_index(&driver.pool).await?;
        let path = path_for(current, target, direction)?;
        driver::check_available(&path)?;
        if path.is_empty() {
            eprintln!(
                "nothing to do: the database is already at {}",
                current.map_or("base", |i| catalogue::REVISIONS[i].id)
            );
            return Ok(());
        }
        let workers = match args.with_workers {
            Some(n) if n > 0 => Some(LocalWorkers::start(n, args.worker_concurrency)?),
            _ => None,
        };
        let started = std::time::Instant::now();
        let result = driver.run_path(&path, direction, &data_dir).await;
        if let Some(workers) = workers {
            workers.stop(Duration::from_secs(60)).await;
        }
        result?;
        eprintln!(
            "{} to {} finished in {:.1}s ({} revision(s))",
            direction.as_str(),
            target_name(target),
            started.elapsed().as_secs_f64(),
            path.len()
        );
        anyhow::Ok(())
    }
    .await;
    driver.finish(outcome.as_ref().map(|_| ())).await;
    outcome
}

/// The revisions a command runs: the path between two revisions for
/// upgrade and downgrade; for a re-run, the one revision, which must be
/// applied.
fn path_for(
    current: Option<usize>,
    target: catalogue::Target,
    direction: Direction,
) -> anyhow::Result<Vec<&'static catalogue::Revision>> {
    match (direction, target) {
        (Direction::Rerun, catalogue::Target::Revision(i)) => {
            let revision = &catalogue::REVISIONS[i];
            if current.is_none_or(|c| c < i) {
                anyhow::bail!(
                    "revision {} ({}) is not applied (the database is at {}); run `orchestrator upgrade {}` first",
                    revision.id,
                    revision.name,
                    current.map_or("base", |c| catalogue::REVISIONS[c].id),
                    revision.id
                );
            }
            Ok(vec![revision])
        }
        (Direction::Rerun, catalogue::Target::Base) => {
            anyhow::bail!("base is not a revision: name the revision to re-run")
        }
        _ => driver::path(current, target, direction),
    }
}

fn target_name(target: catalogue::Target) -> &'static str {
    match target {
        catalogue::Target::Base => "base",
        catalogue::Target::Revision(i) => catalogue::REVISIONS[i].id,
    }
}
