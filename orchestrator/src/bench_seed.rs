//! `orchestrator bench seed`: generates a data set (default 1,000,000
//! reviews), seeds it with K local workers into a scratch database of its
//! own (on the configured server, with a queue prefix of its own, so real
//! workers and data are never touched), then, in the same run and on the
//! same files, times a plain `psql \copy` of each file into empty copies of
//! the tables (same columns, indexes and foreign keys). Prints both rates,
//! their ratio, and the peak memory (VmHWM) of each seed worker.

use crate::driver::{self, RunOptions};
use crate::local_workers::LocalWorkers;
use crate::lock::WaitPolicy;
use crate::plan::Direction;
use anyhow::{bail, Context};
use shared::catalogue;
use shared::config::ConnectionUrl;
use shared::seed;
use shared::Config;
use sqlx::{Connection, Executor, PgConnection};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SeedBench {
    pub reviews: usize,
    pub products: usize,
    pub users: usize,
    pub workers: usize,
    pub concurrency: Option<usize>,
    /// Keep the scratch database and the generated files.
    pub keep: bool,
}

/// Columns whose CSV text a plain `COPY` cannot put into the table's type
/// (JSON arrays are not array literals, Python lists are not JSON), and
/// CSV columns the table lacks: the copies take them as this type.
const PLAIN_COPY_TYPES: &[(&str, &str, &str)] = &[
    ("users", "hobbies", "jsonb"),
    ("users", "lifestyle_preferences", "jsonb"),
    ("users", "preferences", "jsonb"),
    ("features", "categories", "text"),
    ("product_features", "feature_name", "text"),
];

pub async fn seed(config: &Config, bench: &SeedBench) -> anyhow::Result<()> {
    let tag = format!("{}_{}", std::process::id(), chrono::Utc::now().timestamp());
    let data_dir = std::env::temp_dir().join(format!("agenticshop-bench-seed-{tag}"));
    let generate = datagen::GenerateOptions {
        out_dir: data_dir.clone(),
        products: bench.products,
        reviews: bench.reviews,
        users: bench.users,
        seed: 42,
        labelled_share: 0.3,
    };
    eprintln!(
        "generating {} reviews into {}",
        bench.reviews,
        data_dir.display()
    );
    let summary = tokio::task::spawn_blocking(move || datagen::generate(&generate)).await??;
    eprintln!("{summary}");

    let database = format!("agenticshop_bench_seed_{tag}");
    let (admin, url) = crate::bench::create_scratch(config, &database).await?;
    let mut bench_config = config.clone();
    bench_config.database_url = ConnectionUrl::new(url.clone());
    bench_config.queue_prefix = format!("bench-seed-{tag}");
    bench_config.data_dir = data_dir.clone();

    let result = run(&bench_config, bench, &data_dir, &summary).await;

    crate::bench::remove_scratch(&bench_config, admin, &database, &data_dir, bench.keep).await;
    result
}

async fn run(
    config: &Config,
    bench: &SeedBench,
    data_dir: &Path,
    summary: &datagen::GenerateSummary,
) -> anyhow::Result<()> {
    let url = config.database_url.expose().to_string();
    let dir = data_dir.display().to_string();
    let workers = LocalWorkers::start_with_env(
        bench.workers,
        bench.concurrency,
        &[
            ("DATABASE_URL", url.as_str()),
            ("QUEUE_PREFIX", config.queue_prefix.as_str()),
            ("DATA_DIR", dir.as_str()),
        ],
    )?;
    let options = RunOptions {
        command: format!(
            "bench seed --reviews {} --workers {}",
            bench.reviews, bench.workers
        ),
        wait: WaitPolicy::Wait,
        data_dir: data_dir.to_path_buf(),
    };
    let mut driver = driver::start(config, &options).await?;
    let schema = catalogue::find(catalogue::SCHEMA).expect("in the catalogue");
    let seed_revision = catalogue::find(catalogue::SEED).expect("in the catalogue");
    let outcome = async {
        driver
            .run_path(&[schema], Direction::Upgrade, data_dir)
            .await?;
        let started = Instant::now();
        driver
            .run_path(&[seed_revision], Direction::Upgrade, data_dir)
            .await?;
        anyhow::Ok(started.elapsed())
    }
    .await;
    let peaks: Vec<(u32, Option<u64>)> = workers
        .pids()
        .into_iter()
        .map(|pid| (pid, peak_rss_kb(pid)))
        .collect();
    workers.stop(Duration::from_secs(30)).await;
    driver.finish(outcome.as_ref().map(|_| ())).await;
    let seed_time = outcome?;

    let mut conn = PgConnection::connect(&url).await?;
    let mut rows: i64 = 0;
    for table in seed::tables() {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM public.{table}"))
            .fetch_one(&mut conn)
            .await?;
        rows += n;
    }
    let plain = plain_copy(&mut conn, &url, data_dir).await?;
    conn.close().await.ok();
    let plain_time: Duration = plain.iter().map(|(_, _, t)| *t).sum();
    let plain_rows: i64 = plain.iter().map(|(_, r, _)| *r).sum();
    if plain_rows != rows {
        bail!("the plain copy loaded {plain_rows} rows, the seed {rows}: they did not load the same files");
    }

    let rate = rows as f64 / seed_time.as_secs_f64();
    let plain_rate = rows as f64 / plain_time.as_secs_f64();
    let mb = summary.total_bytes() as f64 / 1e6;
    println!(
        "seed benchmark: {} reviews; {rows} rows in 8 files, {mb:.0} MB; {} seed worker(s) x {} task(s) each; SEED_TASK_ROWS {}",
        bench.reviews,
        bench.workers,
        bench.concurrency.unwrap_or(config.worker_concurrency),
        config.seed_task_rows
    );
    println!(
        "  seed revision (plan, load, finalize):   {:>7.2} s  {:>9.0} rows/s",
        seed_time.as_secs_f64(),
        rate
    );
    println!(
        "  plain psql \\copy, one file at a time:  {:>7.2} s  {:>9.0} rows/s  (into empty copies: same indexes and foreign keys)",
        plain_time.as_secs_f64(),
        plain_rate
    );
    for (table, n, t) in &plain {
        println!(
            "      {:<24} {:>9} rows {:>7.2} s",
            format!("{table}.csv"),
            n,
            t.as_secs_f64()
        );
    }
    println!(
        "  ratio (seed / plain copy):             {:>7.2}  (target: at least 0.8)",
        rate / plain_rate
    );
    for (pid, peak) in peaks {
        match peak {
            Some(kb) => println!(
                "  peak memory of seed worker pid {pid}:   {:>7.1} MB VmHWM  (target: under 200 MB)",
                kb as f64 / 1024.0
            ),
            None => println!("  peak memory of seed worker pid {pid}:   unknown (no /proc/{pid}/status)"),
        }
    }
    Ok(())
}

/// `VmHWM` (peak resident set) of a live process, in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Times `psql \copy` of every file, in load order, into empty copies of
/// the tables in schema `bench_copy` (`FORCE_NULL`: an empty field, quoted
/// or not, is NULL, as the seed reads it). Returns `(table, rows, time)`.
async fn plain_copy(
    conn: &mut PgConnection,
    url: &str,
    data_dir: &Path,
) -> anyhow::Result<Vec<(String, i64, Duration)>> {
    (&mut *conn)
        .execute("DROP SCHEMA IF EXISTS bench_copy CASCADE; CREATE SCHEMA bench_copy")
        .await?;
    for table in seed::tables() {
        (&mut *conn)
            .execute(
                format!("CREATE TABLE bench_copy.{table} (LIKE public.{table} INCLUDING ALL)")
                    .as_str(),
            )
            .await?;
        for (t, column, kind) in PLAIN_COPY_TYPES.iter().filter(|(t, _, _)| *t == table) {
            let exists: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = 'bench_copy' AND table_name = $1 AND column_name = $2)",
            )
            .bind(t)
            .bind(column)
            .fetch_one(&mut *conn)
            .await?;
            let sql = if exists {
                format!("ALTER TABLE bench_copy.{t} ALTER COLUMN {column} TYPE {kind} USING NULL")
            } else {
                format!("ALTER TABLE bench_copy.{t} ADD COLUMN {column} {kind}")
            };
            (&mut *conn).execute(sql.as_str()).await?;
        }
        // The same foreign keys, pointing at the copies.
        (&mut *conn).execute("SET search_path = ''").await?;
        let foreign_keys: Vec<(String, String)> = sqlx::query_as(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint
              WHERE conrelid = $1::regclass AND contype = 'f'",
        )
        .bind(format!("public.{table}"))
        .fetch_all(&mut *conn)
        .await?;
        (&mut *conn).execute("RESET search_path").await?;
        for (name, definition) in foreign_keys {
            let definition = definition.replace("REFERENCES public.", "REFERENCES bench_copy.");
            if definition.contains("personalized_product_section") {
                continue;
            }
            (&mut *conn)
                .execute(
                    format!("ALTER TABLE bench_copy.{table} ADD CONSTRAINT {name} {definition}")
                        .as_str(),
                )
                .await?;
        }
    }
    let mut timings = Vec::new();
    for table in seed::tables() {
        let file = data_dir.join(format!("{table}.csv"));
        let header = shared::csv_chunks::read_header(&file)?;
        let columns = header
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(", ");
        let command = format!(
            "\\copy bench_copy.{table} ({columns}) FROM '{}' WITH (FORMAT csv, HEADER true, FORCE_NULL ({columns}))",
            file.display().to_string().replace('\'', "''")
        );
        let started = Instant::now();
        let output = tokio::process::Command::new("psql")
            .arg(url)
            .arg("-X")
            .arg("-q")
            .arg("-v")
            .arg("ON_ERROR_STOP=1")
            .arg("-c")
            .arg(&command)
            .output()
            .await
            .context("running psql (is the PostgreSQL client installed?)")?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            bail!(
                "psql {command} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM bench_copy.{table}"))
            .fetch_one(&mut *conn)
            .await?;
        timings.push((table.to_string(), rows, elapsed));
    }
    (&mut *conn)
        .execute("DROP SCHEMA bench_copy CASCADE")
        .await?;
    Ok(timings)
}
