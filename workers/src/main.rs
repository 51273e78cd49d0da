use clap::Parser;
use shared::catalogue::Role;
use shared::Config;
use std::time::Duration;
use workers::runtime::{self, WorkerOptions};

/// Consumes pipeline tasks from RabbitMQ and executes them against PostgreSQL.
/// Run as many as you like, on any machine that reaches both.
#[derive(Parser, Debug)]
#[command(name = "worker", version)]
struct Args {
    /// Which tasks to take: seed, embed, enrich, graph, or all.
    #[arg(long, default_value = "all")]
    role: String,
    /// Tasks run at once by this process (default: WORKER_CONCURRENCY).
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds that tasks in hand may take to finish after SIGTERM.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shared::logging::init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let roles = match args.role.as_str() {
        "all" => Role::ALL.to_vec(),
        list => list
            .split(',')
            .map(|r| r.trim().parse::<Role>().map_err(anyhow::Error::msg))
            .collect::<anyhow::Result<Vec<_>>>()?,
    };
    let concurrency = args.concurrency.unwrap_or(config.worker_concurrency).max(1);
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let name = format!("{}:{}", host.trim(), std::process::id());
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
