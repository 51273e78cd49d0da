//! `orchestrator bench seed`: generates a data set (default 1,000,000
//! reviews), seeds it with K local workers into a scratch database of its
//! own (on the configured server, with a queue prefix of its own, so real
//! workers and data are never touched), then, in the same run and on the
//! same files, times a plain `psql \copy` of each file into empty copies of
//! the tables (same columns, indexes and foreign keys). Prints both rates,
//! their ratio, and the peak memory (VmHWM) of each seed worker.

use crate::scratch::{DataSet, Room};
use anyhow::{bail, Context};
use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::lock::WaitPolicy;
use orchestrator::plan::Direction;
use revisions::seed::tasks as seed;
use shared::catalogue;
use shared::Config;
use sqlx::{Connection, Executor, PgConnection};
use std::path::{Path, PathBuf};
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
];

pub async fn seed(config: &Config, bench: &SeedBench) -> anyhow::Result<()> {
    let data = DataSet {
        products: bench.products,
        ..DataSet::new(bench.reviews, bench.users, 0.3)
    };
    let room = Room::open(config, "seed", data).await?;
    let bench_config = room.config.clone();

    eprintln!("{}", room.summary);
    let result = run(&bench_config, bench, &room.data_dir, &room.summary).await;

    room.close(bench.keep).await;
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
            (
                "QUEUE_PREFIX",
                config.queue_prefix.as_deref().unwrap_or_default(),
            ),
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
    // The extensions first, as the chain does: with AGE preloaded, a
    // database without the age extension cannot drop a table (AGE 1.5's
    // drop hook reads ag_catalog), and the plain copy drops its tables.
    let before_seed: Vec<_> = [catalogue::EXTENSIONS, catalogue::SCHEMA]
        .iter()
        .map(|id| revisions::registry::find(id).expect("a revision of the chain"))
        .collect();
    let seed_revision =
        revisions::registry::find(catalogue::SEED).expect("a revision of the chain");
    let outcome = async {
        driver
            .run_path(&before_seed, Direction::Upgrade, data_dir)
            .await?;
        let started = Instant::now();
        driver
            .run_path(&[seed_revision], Direction::Upgrade, data_dir)
            .await?;
        anyhow::Ok(started.elapsed())
    }
    .await;
    let peaks: Vec<(u32, Option<u64>, Option<f64>)> = workers
        .pids()
        .into_iter()
        .map(|pid| (pid, peak_rss_kb(pid), cpu_seconds(pid)))
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
    let phase = review_phase(&mut conn).await?;
    let streams = bench.workers.max(1);
    let plain = plain_copy(&mut conn, &url, data_dir, streams).await?;
    conn.close().await.ok();
    let plain_time = plain.time();
    if plain.rows() != rows {
        bail!(
            "the plain copy loaded {} rows, the seed {rows}: they did not load the same files",
            plain.rows()
        );
    }

    let rate = rows as f64 / seed_time.as_secs_f64();
    let plain_rate = rows as f64 / plain_time.as_secs_f64();
    let parallel_time = plain.time_with_parallel_review();
    let parallel_rate = rows as f64 / parallel_time.as_secs_f64();
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
        "    its phase {} holding {}:          {:>7.2} s  {:>9.0} rows/s  ({} tasks; a task {:.2} s median, {:.2} s max; {:.1} running on average)",
        phase.phase,
        seed::file_name(&plain.review_table),
        phase.wall.as_secs_f64(),
        phase.rows as f64 / phase.wall.as_secs_f64(),
        phase.tasks,
        phase.median_task.as_secs_f64(),
        phase.max_task.as_secs_f64(),
        phase.busy.as_secs_f64() / phase.wall.as_secs_f64(),
    );
    println!(
        "  plain psql \\copy, one file at a time:  {:>7.2} s  {:>9.0} rows/s  (into empty copies: same indexes and foreign keys)",
        plain_time.as_secs_f64(),
        plain_rate
    );
    for (table, n, t) in &plain.files {
        println!(
            "      {:<24} {:>9} rows {:>7.2} s",
            seed::file_name(table),
            n,
            t.as_secs_f64()
        );
    }
    println!(
        "  plain psql \\copy, {} in {streams} parallel streams, the other files one at a time:",
        seed::file_name(&plain.review_table)
    );
    println!(
        "                                          {:>7.2} s  {:>9.0} rows/s  ({}: {:.2} s)",
        parallel_time.as_secs_f64(),
        parallel_rate,
        seed::file_name(&plain.review_table),
        plain.parallel_review.as_secs_f64()
    );
    println!(
        "  ratio (seed / plain copy, one stream):  {:>7.2}  (target: at least 0.8)",
        rate / plain_rate
    );
    println!(
        "  ratio (seed / {streams} parallel streams):     {:>7.2}  (whole data set)",
        rate / parallel_rate
    );
    println!(
        "  ratio ({streams} parallel streams of {} / the seed's phase holding it, by time):  {:.2}  (target: at least 0.9)",
        seed::file_name(&plain.review_table),
        plain.parallel_review.as_secs_f64() / phase.wall.as_secs_f64()
    );
    for (pid, peak, cpu) in peaks {
        if let Some(cpu) = cpu {
            // Parsing and encoding on the workers takes cores from the server.
            println!(
                "  CPU time of seed worker pid {pid}:      {cpu:>7.2} s  (user + system, whole run)"
            );
        }
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

/// The seed's phase holding the review file (the phase that loaded the
/// most rows), read from its task rows.
struct ReviewPhase {
    phase: i32,
    tasks: i64,
    rows: i64,
    /// First task queued to last task finished.
    wall: Duration,
    /// The tasks' own time (started to finished), added up.
    busy: Duration,
    median_task: Duration,
    max_task: Duration,
}

async fn review_phase(conn: &mut PgConnection) -> anyhow::Result<ReviewPhase> {
    let row: Option<(i32, i64, i64, f64, f64, f64, f64)> = sqlx::query_as(
        "SELECT t.phase + 1, count(*), sum(t.rows_done)::bigint,
                extract(epoch FROM max(t.finished_at) - min(t.queued_at))::float8,
                sum(extract(epoch FROM t.finished_at - t.started_at))::float8,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM t.finished_at - t.started_at))::float8,
                max(extract(epoch FROM t.finished_at - t.started_at))::float8
           FROM pipeline.tasks t JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id
          WHERE rr.revision = $1 AND rr.direction = 'upgrade'
          GROUP BY t.revision_run_id, t.phase
          ORDER BY sum(t.rows_done) DESC LIMIT 1",
    )
    .bind(catalogue::SEED)
    .fetch_optional(&mut *conn)
    .await?;
    let (phase, tasks, rows, wall, busy, median, max) =
        row.context("no task rows of the seed revision")?;
    let secs = |s: f64| Duration::from_secs_f64(s.max(0.0));
    Ok(ReviewPhase {
        phase,
        tasks,
        rows,
        wall: secs(wall),
        busy: secs(busy),
        median_task: secs(median),
        max_task: secs(max),
    })
}

/// User plus system CPU time of a live process so far, in seconds, from
/// `/proc/PID/stat` (fields 14 and 15, in clock ticks of 1/100 s: Linux's
/// USER_HZ, which /proc reports in on every architecture it runs on here).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// `VmHWM` (peak resident set) of a live process, in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// What the plain `psql \copy` took: every file in load order, one at a
/// time, then the review file again in N parallel streams.
struct PlainCopy {
    /// `(table, rows, time)` per file, one stream.
    files: Vec<(String, i64, Duration)>,
    /// The table of the review file (the largest file).
    review_table: String,
    /// The review file in N streams: wall time until the last one finished.
    parallel_review: Duration,
}

impl PlainCopy {
    fn time(&self) -> Duration {
        self.files.iter().map(|(_, _, t)| *t).sum()
    }
    fn rows(&self) -> i64 {
        self.files.iter().map(|(_, r, _)| *r).sum()
    }
    /// Every file one at a time, but the review file in N streams.
    fn time_with_parallel_review(&self) -> Duration {
        self.files
            .iter()
            .map(|(table, _, t)| {
                if *table == self.review_table {
                    self.parallel_review
                } else {
                    *t
                }
            })
            .sum()
    }
}

/// Times `psql \copy` of every file, in load order, into empty copies of
/// the tables in schema `bench_copy` (`FORCE_NULL`: an empty field, quoted
/// or not, is NULL, as the seed reads it); then empties the review table's
/// copy and loads the review file again as `streams` parallel `psql
/// \copy` streams, each of one `streams`-th of its records (split on record
/// boundaries into files of their own beforehand, not timed).
async fn plain_copy(
    conn: &mut PgConnection,
    url: &str,
    data_dir: &Path,
    streams: usize,
) -> anyhow::Result<PlainCopy> {
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
            if seed::DEPENDENTS.iter().any(|d| definition.contains(d)) {
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
    let mut files = Vec::new();
    for table in seed::tables() {
        let file = data_dir.join(seed::file_name(table));
        let columns = copy_columns(&file)?;
        let elapsed = psql_copy(url, table, &columns, &file).await?;
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM bench_copy.{table}"))
            .fetch_one(&mut *conn)
            .await?;
        files.push((table.to_string(), rows, elapsed));
    }

    // The review file: the largest.
    let (review_table, review_rows) = seed::tables()
        .map(|t| {
            let bytes = std::fs::metadata(data_dir.join(seed::file_name(t))).map_or(0, |m| m.len());
            (bytes, t)
        })
        .max()
        .map(|(_, t)| t)
        .and_then(|t| files.iter().find(|(f, _, _)| f == t))
        .map(|(t, r, _)| (t.clone(), *r))
        .context("no files")?;
    let file = data_dir.join(seed::file_name(&review_table));
    let columns = copy_columns(&file)?;
    let parts = split_records(&file, streams.max(1), &data_dir.join("parallel-copy"))?;
    (&mut *conn)
        .execute(format!("TRUNCATE bench_copy.{review_table}").as_str())
        .await?;
    let started = Instant::now();
    let copies = parts
        .iter()
        .map(|part| psql_copy(url, &review_table, &columns, part));
    for result in futures_util::future::join_all(copies).await {
        result?;
    }
    let parallel_review = started.elapsed();
    let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM bench_copy.{review_table}"))
        .fetch_one(&mut *conn)
        .await?;
    if rows != review_rows {
        bail!(
            "{} parallel streams loaded {rows} rows of {}, one stream {review_rows}",
            parts.len(),
            seed::file_name(&review_table)
        );
    }
    for part in &parts {
        let _ = std::fs::remove_file(part);
    }
    (&mut *conn)
        .execute("DROP SCHEMA bench_copy CASCADE")
        .await?;
    Ok(PlainCopy {
        files,
        review_table,
        parallel_review,
    })
}

/// The quoted column list of a file's header, for `\copy`.
fn copy_columns(file: &Path) -> anyhow::Result<String> {
    let header = shared::csv_chunks::read_header(file)?;
    Ok(header
        .columns
        .iter()
        .map(|c| format!("\"{}\"", c.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", "))
}

/// One `psql \copy` of `file` into `bench_copy.{table}`; its wall time.
async fn psql_copy(url: &str, table: &str, columns: &str, file: &Path) -> anyhow::Result<Duration> {
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
    Ok(elapsed)
}

/// Splits the records of a CSV file into `parts` files of about as many
/// records each (on record boundaries, [`shared::csv_chunks`]), each with
/// the header; returns their paths.
fn split_records(file: &Path, parts: usize, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use std::io::{Read, Write};
    let records = shared::csv_chunks::scan(file, u64::MAX)?.records;
    let scan = shared::csv_chunks::scan(file, records.div_ceil(parts as u64).max(1))?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut header = vec![0u8; scan.header.data_start as usize];
    std::fs::File::open(file)
        .and_then(|mut f| f.read_exact(&mut header))
        .with_context(|| format!("reading {}", file.display()))?;
    let mut paths = Vec::new();
    for (i, chunk) in scan.chunks.iter().enumerate() {
        let path = dir.join(format!("part-{i}.csv"));
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?,
        );
        out.write_all(&header)?;
        std::io::copy(&mut shared::csv_chunks::open_chunk(file, chunk)?, &mut out)?;
        out.flush()?;
        paths.push(path);
    }
    Ok(paths)
}
