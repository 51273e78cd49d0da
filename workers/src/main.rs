use clap::Parser;
use shared::catalogue::Role;
use shared::Config;
use std::time::Duration;
use tracing::Instrument;
use workers::runtime::{self, WorkerOptions};

/// Consumes pipeline tasks from RabbitMQ and executes them against PostgreSQL.
/// Run as many as you like, on any machine that reaches both.
#[derive(Parser, Debug)]
#[command(name = "worker", version)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Which tasks to take: seed, embed, enrich, graph, or all.
    #[arg(long, default_value = "all")]
    role: String,
    /// Tasks run at once by this process (default: WORKER_CONCURRENCY).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds that tasks in hand may take to finish after SIGTERM.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
    /// Serve /metrics, /healthz and /readyz on HOST:PORT (default:
    /// METRICS_ADDR; unset: no server).
    #[arg(long, value_name = "HOST:PORT", global = true)]
    metrics_addr: Option<String>,
    /// A label for this worker's name (`LABEL@host:pid`; without it,
    /// `host:pid`): in its log lines and in the task rows it claims.
    #[arg(long)]
    label: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// GET /readyz (or PATH) of the worker serving on --metrics-addr /
    /// METRICS_ADDR: exit 0 on 200, 1 otherwise, printing the answer. For
    /// container health checks, in an image without curl.
    Healthcheck {
        #[arg(long, default_value = "/readyz")]
        path: String,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::logging::init();
    let args = Args::parse();
    let name = shared::logging::worker_name(args.label.as_deref(), std::process::id());
    // Every line of this process carries the worker's name (JSON: `worker`);
    // at the error level, so that it is there whatever `RUST_LOG` lets through.
    let span = tracing::error_span!("worker", worker = %name);
    match run(args, name).instrument(span.clone()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            span.in_scope(|| shared::logging::fatal("worker", &e));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args, name: String) -> anyhow::Result<()> {
    let mut config = Config::from_env()?;
    if args.metrics_addr.is_some() {
        config.metrics_addr = args.metrics_addr.clone();
    }
    if let Some(Command::Healthcheck { path }) = &args.command {
        return healthcheck(&config, path).await;
    }
    let roles = match args.role.as_str() {
        "all" => Role::ALL.to_vec(),
        list => list
            .split(',')
            .map(|r| r.trim().parse::<Role>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let concurrency = args.concurrency.unwrap_or(config.worker_concurrency).max(1);
    if let Some(addr) = &config.metrics_addr {
        shared::metrics::serve(addr, shared::metrics::Readiness::Worker).await?;
    }
    runtime::run(
        config,
        WorkerOptions {
            roles,
            concurrency,
            drain: Duration::from_secs(args.drain_secs),
            name,
        },
    )
    .await
}

async fn healthcheck(config: &Config, path: &str) -> anyhow::Result<()> {
    let addr = config.metrics_addr.as_deref().ok_or_else(|| {
        anyhow::anyhow!("worker healthcheck needs METRICS_ADDR or --metrics-addr")
    })?;
    let (status, body) = shared::metrics::get(addr, path).await?;
    print!("{body}");
    anyhow::ensure!(status == 200, "{path} answered {status}");
    Ok(())
}
