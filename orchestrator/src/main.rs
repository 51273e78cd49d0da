use clap::{Parser, Subcommand};
use orchestrator::migrate;
use orchestrator::{inspect, offline, search};
use shared::plan::{Direction, RerunFlags};
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
    /// Apply revisions up to a target: `head`, a revision id, prefix or
    /// name, `+N` (N more), or `<rev>+N`.
    Upgrade {
        #[arg(allow_hyphen_values = true)]
        target: String,
        #[command(flatten)]
        sql: SqlArg,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Undo revisions down to a target: `base`, a revision id, prefix or
    /// name, `-N` (N fewer), or `<rev>-N`.
    Downgrade {
        #[arg(allow_hyphen_values = true)]
        target: String,
        #[command(flatten)]
        sql: SqlArg,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Run an applied revision again (the seed: upsert the data directory by
    /// id), without moving `alembic_version`.
    Rerun {
        revision: String,
        /// Then re-run every applied revision after it, each doing only its
        /// own changed work.
        #[arg(long)]
        cascade: bool,
        /// Rebuild from scratch instead of changing only what changed (the
        /// graph revision; with --cascade, the named revision only).
        #[arg(long)]
        full: bool,
        /// Also delete the rows that disappeared from the files (the seed
        /// revision; only rows the seed itself loaded, never the shop's own
        /// rows or memories).
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Schedules: `add`, `list`, `pause`, `resume`, `remove`, `run`.
    Schedule {
        #[command(subcommand)]
        which: ScheduleCommand,
    },
    /// Fire due schedules until SIGTERM; run any number, on any machines.
    Scheduler {
        /// This scheduler's name in the fire history (default: host and pid).
        #[arg(long)]
        name: Option<String>,
        /// How often to look for due schedules, in milliseconds.
        #[arg(long, default_value_t = 250)]
        tick_ms: u64,
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
    Current {
        /// Also what it is, its parent and its last run (as `show`).
        #[arg(short, long)]
        verbose: bool,
    },
    /// The head of the chain (the revision `upgrade head` goes to).
    Heads,
    /// Branch points of the chain (it is a single line: there are none).
    Branches,
    /// One revision: id, name, down-revision, what it does, whether it is
    /// applied, and the tasks of its last run.
    Show { revision: String },
    /// Set `alembic_version` to a revision (or `base`) without running
    /// anything, as Alembic's stamp does; recorded in the history.
    Stamp {
        revision: String,
        /// Also when `alembic_version` holds a revision this version does
        /// not know: it is replaced.
        #[arg(long)]
        purge: bool,
    },
    /// List the revisions, applied or not, and when.
    History {
        /// Only the revisions from A to B, both included: `A:B`, `A:`, `:B`
        /// (ids, prefixes, names, `base`, `head` or `current`).
        #[arg(short = 'r', long = "rev-range", value_name = "A:B")]
        range: Option<String>,
        /// Also each revision's parent and its last run.
        #[arg(short, long, conflicts_with = "json")]
        verbose: bool,
        /// One JSON array (schema in the README).
        #[arg(long)]
        json: bool,
    },
    /// The current or last run: per phase, tasks by state; the last errors.
    Status {
        /// An earlier run, by its number (`run #N` in `status` and `history`).
        #[arg(long)]
        run: Option<i64>,
        /// One JSON object (schema in the README); with --watch, one per line.
        #[arg(long)]
        json: bool,
        /// Draw it again every SECS seconds (default 2) until the run ends.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
        watch: Option<u64>,
    },
    /// Print the effective configuration, secrets redacted.
    Config,
    /// The local review analyser against a labels file (review_id,
    /// feature_id, feature_name, sentiment): accuracy, the confusion matrix
    /// and per-class precision and recall.
    Evaluate {
        /// The labels file.
        #[arg(long, default_value = "data/eval/review_labels.csv")]
        labels: PathBuf,
        /// The data folder holding the labelled reviews and their products' features.
        #[arg(long, default_value = "data")]
        data: PathBuf,
        /// Ignore the star rating: what the text alone gives.
        #[arg(long)]
        no_rating: bool,
    },
    /// Data sets: `data generate` writes one of any size in the seed format.
    Data {
        #[command(subcommand)]
        which: DataCommand,
    },
    /// Benchmarks: `bench runtime|seed|embeddings|graph [flags]`, run by the
    /// `orchestrator-bench` binary next to this one (`bench --help` lists them).
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark and its flags, passed on as they are.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "BENCHMARK"
        )]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct SqlArg {
    /// Offline mode: print the SQL the move would run and run nothing, with
    /// no database (the DDL revisions only: extensions, schema). The target
    /// may be `START:TARGET`; an upgrade starts from base without it, a
    /// downgrade needs it.
    #[arg(long, conflicts_with_all = ["no_wait", "with_workers", "worker_concurrency", "data_dir"])]
    sql: bool,
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
    /// Serve /metrics, /healthz and /readyz on HOST:PORT while this runs
    /// (default: METRICS_ADDR; unset: no server).
    #[arg(long, value_name = "HOST:PORT")]
    metrics_addr: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ScheduleCommand {
    /// A schedule: a cron expression (5 fields, or 6 with seconds first)
    /// and what it runs.
    Add {
        name: String,
        #[arg(long)]
        cron: String,
        /// Re-run these revisions (comma-separated), in order.
        #[arg(
            long,
            value_delimiter = ',',
            conflicts_with = "upgrade",
            required_unless_present = "upgrade"
        )]
        rerun: Vec<String>,
        /// With --rerun: then every applied revision after the last one.
        #[arg(long, requires = "rerun")]
        cascade: bool,
        /// Upgrade to this target (`head`).
        #[arg(long)]
        upgrade: Option<String>,
        /// Time zone of the cron expression (IANA name).
        #[arg(long, default_value = "UTC")]
        tz: String,
        /// Due times missed while no scheduler ran: `one` catch-up fire, or `none`.
        #[arg(long, default_value = "one")]
        catch_up: String,
    },
    /// Every schedule: its next fire, its last fire and how it went.
    List {
        /// One JSON array (schema in the README).
        #[arg(long)]
        json: bool,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    Remove {
        name: String,
    },
    /// Fire a schedule now, in this process.
    Run {
        name: String,
    },
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
        /// Share of reviews whose feature_id and sentiment are filled in product_reviews.csv.
        #[arg(long, default_value_t = 0.3)]
        labelled_share: f64,
    },
    /// Rewrite the project's sample data set (data/) from the generator.
    Sample {
        #[arg(long, default_value = "data")]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    shared::logging::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            shared::logging::fatal("error", &e);
            exit_code(&e)
        }
    }
}

/// The documented exit codes: 2 bad usage (clap's own, and a target that
/// names nothing), 3 the run lock held with `--no-wait`, 1 anything else.
fn exit_code(e: &anyhow::Error) -> ExitCode {
    if e.chain().any(|c| c.is::<migrate::BadUsage>()) {
        ExitCode::from(2)
    } else if e.chain().any(|c| c.is::<orchestrator::lock::LockHeld>()) {
        ExitCode::from(3)
    } else {
        ExitCode::FAILURE
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
    if let Command::Bench { args } = cli.command {
        return Err(run_bench(&args));
    }
    // Offline mode needs no configuration and no database.
    match &cli.command {
        Command::Upgrade { target, sql, .. } if sql.sql => {
            print!("{}", offline::sql(target, Direction::Upgrade)?);
            return Ok(());
        }
        Command::Downgrade { target, sql, .. } if sql.sql => {
            print!("{}", offline::sql(target, Direction::Downgrade)?);
            return Ok(());
        }
        _ => {}
    }
    let config = Config::from_env()?;
    if let Command::Evaluate {
        labels,
        data,
        no_rating,
    } = &cli.command
    {
        return evaluate(&config, labels, data, *no_rating).await;
    }
    if let Command::Upgrade { run, .. }
    | Command::Downgrade { run, .. }
    | Command::Rerun { run, .. } = &cli.command
    {
        if let Some(addr) = run.metrics_addr.as_ref().or(config.metrics_addr.as_ref()) {
            shared::metrics::serve(addr, shared::metrics::Readiness::Orchestrator).await?;
        }
    }
    match cli.command {
        Command::Upgrade { target, run, .. } => {
            migrate(&config, &target, Direction::Upgrade, run).await
        }
        Command::Downgrade { target, run, .. } => {
            migrate(&config, &target, Direction::Downgrade, run).await
        }
        Command::Rerun {
            revision,
            cascade,
            full,
            prune,
            run,
        } => {
            let request = migrate::Request {
                rerun: RerunFlags { full, prune },
                ..request(&revision, Direction::Rerun, run)
            };
            for summary in migrate::rerun(&config, &request, cascade).await? {
                report(&summary);
            }
            Ok(())
        }
        Command::Schedule { which } => schedule(&config, which).await,
        Command::Scheduler { name, tick_ms } => {
            let name = name.unwrap_or_else(who);
            orchestrator::schedule::scheduler(
                &config,
                &name,
                Duration::from_millis(tick_ms.max(10)),
            )
            .await
        }
        Command::Current { verbose } => inspect::current(&connect(&config).await?, verbose).await,
        Command::Heads => {
            inspect::heads();
            Ok(())
        }
        Command::Branches => {
            println!(
                "the chain is a single line: no branches (head: {})",
                revisions::registry::CHAIN.last().map_or("", |r| r.id)
            );
            Ok(())
        }
        Command::Show { revision } => {
            let target = migrate::resolve_target(&revision, None)?;
            inspect::show(&connect(&config).await?, target).await
        }
        Command::Stamp { revision, purge } => migrate::stamp(&config, &revision, purge).await,
        Command::History {
            range,
            verbose,
            json,
        } => {
            let output = if json {
                inspect::Output::Json
            } else {
                inspect::Output::Text { verbose }
            };
            inspect::history(&connect(&config).await?, range.as_deref(), output).await
        }
        Command::Status { run, json, watch } => {
            let output = if json {
                inspect::Output::Json
            } else {
                inspect::Output::Text { verbose: false }
            };
            let watch = watch.map(|secs| Duration::from_secs(secs.max(1)));
            inspect::status(&connect(&config).await?, run, output, watch).await
        }
        Command::Search { query, target, k } => {
            search::run(&config, &connect(&config).await?, &query, target, k).await
        }
        Command::Config => {
            let derived = derived_queue_prefix(&config).await;
            for (name, value) in config.describe() {
                let value = match (name, &derived) {
                    ("QUEUE_PREFIX", Some(prefix)) => {
                        format!("{prefix} (unset: derived from the database's identity)")
                    }
                    _ => value,
                };
                println!("{name:<34} {value}");
            }
            Ok(())
        }
        Command::Data { .. } | Command::Evaluate { .. } => unreachable!("handled above"),
        Command::Bench { .. } => unreachable!("handled above"),
    }
}

/// Replaces this process with the bench binary, with the same arguments;
/// returns only if that fails. The benchmarks live in a binary of their own
/// so that the production one carries none of their code.
fn run_bench(args: &[String]) -> anyhow::Error {
    use anyhow::Context as _;
    use std::os::unix::process::CommandExt as _;
    let path = match std::env::current_exe().context("locating the orchestrator binary") {
        Ok(me) => me.with_file_name("orchestrator-bench"),
        Err(e) => return e,
    };
    if !path.exists() {
        return anyhow::anyhow!(
            "`orchestrator bench` runs the orchestrator-bench binary, expected next to this one at {}; build it with `cargo build --release -p bench`",
            path.display()
        );
    }
    let error = std::process::Command::new(&path).args(args).exec();
    anyhow::Error::new(error).context(format!("running {}", path.display()))
}

/// `orchestrator evaluate`: the analyser the enrichment uses by default,
/// on the same model folder.
async fn evaluate(
    config: &Config,
    labels: &std::path::Path,
    data: &std::path::Path,
    no_rating: bool,
) -> anyhow::Result<()> {
    let (model_dir, threads) = (
        config.embedding.model_dir.clone(),
        config.enrichment.local_threads,
    );
    let (labels, data) = (labels.to_path_buf(), data.to_path_buf());
    tokio::task::spawn_blocking(move || {
        let mut analyser = analysis::Analyser::load(&model_dir, threads)?;
        if no_rating {
            let params = analysis::analyser::Params {
                rating_prior: 0.0,
                ..analyser.params().clone()
            };
            analyser = analyser.with_params(params);
        }
        let evaluation = analysis::evaluate::evaluate_files(&analyser, &labels, &data)?;
        println!(
            "{} on {} ({}{})",
            labels.display(),
            data.display(),
            analyser.source(),
            if no_rating {
                ", star rating ignored"
            } else {
                ""
            }
        );
        print!("{evaluation}");
        anyhow::Ok(())
    })
    .await?
}

/// The queue prefix the pipeline uses on this database when `QUEUE_PREFIX`
/// is unset (`None` when it is set, or the database or its identity cannot
/// be read within a few seconds: `config` then says how it is derived).
async fn derived_queue_prefix(config: &Config) -> Option<String> {
    if config.queue_prefix.is_some() {
        return None;
    }
    let pool = shared::db::connect(config, 1, Duration::from_secs(3))
        .await
        .ok()?;
    let identity = shared::store::database_identity_if_made(&pool).await.ok()?;
    pool.close().await;
    identity.map(|id| {
        shared::queue::Topology::for_database(config, id)
            .prefix()
            .to_string()
    })
}

async fn connect(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    shared::db::connect(config, 2, Duration::from_secs(30)).await
}

fn request(target: &str, direction: Direction, args: RunArgs) -> migrate::Request {
    migrate::Request {
        direction,
        target: target.to_string(),
        no_wait: args.no_wait,
        with_workers: args.with_workers,
        worker_concurrency: args.worker_concurrency,
        data_dir: args.data_dir,
        label: None,
        rerun: Default::default(),
    }
}

/// Host and process, to name a scheduler.
fn who() -> String {
    format!(
        "{}:{}",
        std::fs::read_to_string("/etc/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id()
    )
}

async fn schedule(config: &Config, which: ScheduleCommand) -> anyhow::Result<()> {
    use orchestrator::schedule::{self, Action, NewSchedule};
    let pool = connect(config).await?;
    shared::db::ensure_pipeline_schema(&pool).await?;
    match which {
        ScheduleCommand::Add {
            name,
            cron,
            rerun,
            cascade,
            upgrade,
            tz,
            catch_up,
        } => {
            let action = match upgrade {
                Some(target) => Action::Upgrade(target),
                None => Action::Rerun {
                    revisions: rerun,
                    cascade,
                },
            };
            let next = schedule::add(
                &pool,
                &NewSchedule {
                    name: name.clone(),
                    cron,
                    tz,
                    action,
                    catch_up,
                },
            )
            .await?;
            println!("schedule {name} added; next fire {next}");
            Ok(())
        }
        ScheduleCommand::List { json } => schedule::list(&pool, json).await,
        ScheduleCommand::Pause { name } => schedule::set_paused(&pool, &name, true).await,
        ScheduleCommand::Resume { name } => schedule::set_paused(&pool, &name, false).await,
        ScheduleCommand::Remove { name } => schedule::remove(&pool, &name).await,
        ScheduleCommand::Run { name } => schedule::run_now(config, &pool, &name, &who()).await,
    }
}

/// Moves the database ([`migrate::run`]) and reports what happened.
async fn migrate(
    config: &Config,
    target: &str,
    direction: Direction,
    args: RunArgs,
) -> anyhow::Result<()> {
    let summary = migrate::run(config, &request(target, direction, args)).await?;
    report(&summary);
    Ok(())
}

fn report(summary: &migrate::Summary) {
    if summary.revisions.is_empty() {
        shared::say!(
            "nothing to do: the database is already at {}",
            summary.started_at.unwrap_or("base")
        );
    } else {
        shared::say!(
            "{} to {} finished in {:.1}s ({} revision(s))",
            summary.direction.as_str(),
            summary.target,
            summary.elapsed.as_secs_f64(),
            summary.revisions.len()
        );
    }
}
