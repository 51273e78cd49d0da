//! `orchestrator bench embeddings`: how fast the embeddings revision goes,
//! and whether adding workers adds throughput while the provider is not the
//! limit. It prints:
//!
//! 1. the local model's throughput (texts/s, batch, threads) on the sample
//!    reviews (`DATA_DIR/product_reviews.csv`);
//! 2. with the in-process OpenAI-compatible fake ([`testkit::fake_openai`],
//!    fixed delay per request, random 1536-dimension vectors): embeddings
//!    per second of the embed phase with 1, 2 and 4 local worker processes
//!    on a generated data set (default 100,000 reviews, seeded by the seed
//!    revision), and the time of the final phase (prune + hnsw build);
//! 3. with a zero-delay fake: the embed task's write path (binary COPY of
//!    new rows in the task's transaction, [`revisions::embeddings::write`])
//!    against a raw binary COPY of the same rows into a table of the same
//!    layout, chunk by chunk, interleaved in the same run.
//!
//! Everything runs in a scratch database and queue prefix of its own on the
//! configured servers, dropped at the end (unless `--keep`).

use crate::scratch::{self, DataSet, Room};
use anyhow::Context;
use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::lock::WaitPolicy;
use orchestrator::plan::{Direction, PlanContext};
use revisions::embeddings::sources::node_id;
use revisions::embeddings::write::{self, CopyBuffer, DocumentRow};
use revisions::embeddings::{EmbeddingTable, Source};
use shared::catalogue;
use shared::config::{EmbeddingProvider, Secret};
use shared::Config;
use sqlx::{Connection, PgConnection};
use std::time::{Duration, Instant};
use testkit::fake_openai::{FakeOpenAi, FakeOptions};

#[derive(Debug, Clone)]
pub struct EmbeddingsBench {
    pub reviews: usize,
    /// Worker process counts to compare (default 1, 2, 4).
    pub workers: Vec<usize>,
    /// Tasks each worker runs at once.
    pub concurrency: usize,
    /// Delay of the fake provider per request.
    pub delay: Duration,
    pub dims: usize,
    /// Texts per provider request.
    pub batch: usize,
    /// Provider requests in flight per task.
    pub in_flight: usize,
    /// Source rows per embed task.
    pub task_rows: i64,
    pub skip_local: bool,
    pub keep: bool,
}

struct ScalingRun {
    workers: usize,
    rows: i64,
    embed: Duration,
    finish: Option<Duration>,
    /// Vectors in the two tables when the final phase ran.
    indexed: i64,
}

pub async fn embeddings(config: &Config, bench: &EmbeddingsBench) -> anyhow::Result<()> {
    if !bench.skip_local {
        local_model(config).await;
    }
    let data = DataSet::new(bench.reviews, 20, 0.0);
    let room = Room::open(config, "embeddings", data).await?;
    let server = FakeOpenAi::start(FakeOptions {
        delay: bench.delay,
        dims: bench.dims,
        record_texts: false,
    })
    .await?;
    let mut bench_config = room.config.clone();
    bench_config.memory_dims = bench.dims as u32;
    bench_config.openai.base_url = server.base_url();
    bench_config.openai.api_key = Secret::new("sk-fake");
    let e = &mut bench_config.embedding;
    e.provider = EmbeddingProvider::OpenAi;
    e.model = "text-embedding-3-small".into();
    e.dimensions = Some(bench.dims as u32);
    e.request_batch_size = bench.batch;
    e.requests_in_flight = bench.in_flight;
    e.task_rows = bench.task_rows;

    let result = run(&bench_config, bench, &server).await;

    room.close(bench.keep).await;
    result
}

/// The local model on the sample reviews; a missing model is reported, not fatal.
async fn local_model(config: &Config) {
    let path = config
        .data_dir
        .join(revisions::seed::tasks::file_name("product_reviews"));
    let texts = match read_review_texts(&path) {
        Ok(t) => t,
        Err(e) => {
            println!("local model: skipped ({e:#})");
            return;
        }
    };
    let mut settings = config.embedding.clone();
    settings.provider = EmbeddingProvider::Local;
    match providers::embed::bench_local(&settings, &texts).await {
        Ok(report) => {
            println!(
                "local model on the {} sample reviews of {}:",
                texts.len(),
                path.display()
            );
            println!("  {report}");
            println!(
                "  throughput: {:.1} texts/s with batch {} and {} thread(s)  (reference: sentence-transformers on PyTorch CPU; `scripts/make_reference_vectors.py` times it on this machine)",
                report.texts_per_sec, report.batch_size, report.threads
            );
        }
        Err(e) => println!("local model: skipped ({e})"),
    }
}

fn read_review_texts(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = headers
        .iter()
        .position(|h| h == "review")
        .with_context(|| format!("{} has no review column", path.display()))?;
    let mut texts = Vec::new();
    for record in reader.records() {
        let record = record?;
        let text = record.get(column).unwrap_or_default().trim();
        if !text.is_empty() {
            texts.push(text.to_string());
        }
    }
    Ok(texts)
}

fn worker_env(config: &Config) -> Vec<(&'static str, String)> {
    let e = &config.embedding;
    vec![
        ("DATABASE_URL", config.database_url.expose().to_string()),
        (
            "QUEUE_PREFIX",
            config.queue_prefix.clone().unwrap_or_default(),
        ),
        ("DATA_DIR", config.data_dir.display().to_string()),
        ("MEM0_EMBEDDING_MODEL_DIMS", config.memory_dims.to_string()),
        ("EMBEDDING_PROVIDER", "openai".into()),
        ("OPENAI_BASE_URL", config.openai.base_url.clone()),
        ("OPENAI_API_KEY", config.openai.api_key.expose().to_string()),
        ("EMBEDDING_MODEL", e.model.clone()),
        (
            "EMBEDDING_DIMENSIONS",
            e.dimensions.unwrap_or(1536).to_string(),
        ),
        ("EMBEDDING_BATCH_SIZE", e.request_batch_size.to_string()),
        (
            "EMBEDDING_REQUESTS_IN_FLIGHT",
            e.requests_in_flight.to_string(),
        ),
        ("EMBED_TASK_ROWS", e.task_rows.to_string()),
        ("RUST_LOG", "warn".into()),
    ]
}

fn start_workers(
    config: &Config,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<LocalWorkers> {
    let env = worker_env(config);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    LocalWorkers::start_with_env(count, Some(concurrency), &pairs)
}

async fn run(config: &Config, bench: &EmbeddingsBench, server: &FakeOpenAi) -> anyhow::Result<()> {
    let options = RunOptions {
        command: format!("bench embeddings --reviews {}", bench.reviews),
        wait: WaitPolicy::Wait,
        data_dir: config.data_dir.clone(),
    };
    let mut driver = scratch::seeded(config, &options).await?;

    let mut runs = Vec::new();
    let last = bench.workers.len().saturating_sub(1);
    for (i, &count) in bench.workers.iter().enumerate() {
        match scaling_run(config, &mut driver, bench, count, i == last).await {
            Ok(run) => runs.push(run),
            Err(e) => {
                driver.finish(Err(&e)).await;
                return Err(e);
            }
        }
    }
    let requests = server.requests();
    driver.finish(Ok(())).await;

    let write = write_path(config, bench).await?;

    println!(
        "embeddings with an OpenAI-compatible fake ({} ms per request, {} dimensions): {} reviews; EMBEDDING_BATCH_SIZE {}, EMBEDDING_REQUESTS_IN_FLIGHT {}, EMBED_TASK_ROWS {}, {} task(s) per worker; {requests} requests",
        bench.delay.as_millis(),
        bench.dims,
        bench.reviews,
        bench.batch,
        bench.in_flight,
        bench.task_rows,
        bench.concurrency
    );
    let base = runs
        .first()
        .map(|r| r.rows as f64 / r.embed.as_secs_f64())
        .unwrap_or(0.0);
    for run in &runs {
        let rate = run.rows as f64 / run.embed.as_secs_f64();
        let target = match run.workers {
            2 => "  (target: at least 1.8x)",
            4 => "  (target: at least 3.6x)",
            _ => "",
        };
        println!(
            "  {} worker process(es): {:>7} embeddings in {:>7.2} s = {:>8.0} embeddings/s  {:>5.2}x of 1{target}",
            run.workers,
            run.rows,
            run.embed.as_secs_f64(),
            rate,
            if base > 0.0 { rate / base } else { 0.0 }
        );
    }
    if let Some(run) = runs.iter().find(|r| r.finish.is_some()) {
        println!(
            "  final phase, both tables ({} vectors): prune + hnsw build (m {}, ef_construction {}, maintenance_work_mem {}): {:.2} s",
            run.indexed,
            config.embedding.hnsw_m,
            config.embedding.hnsw_ef_construction,
            config.embedding.index_maintenance_work_mem,
            run.finish.unwrap_or_default().as_secs_f64()
        );
    }
    println!(
        "write path with a zero-delay fake: {} rows of {} dimensions in chunks of {}",
        write.rows, bench.dims, bench.task_rows
    );
    println!(
        "  embed task write (binary COPY in the task's transaction): {:>7.2} s = {:>8.0} rows/s",
        write.write_path.as_secs_f64(),
        write.rows as f64 / write.write_path.as_secs_f64()
    );
    println!(
        "  raw binary COPY of the same rows:                        {:>7.2} s = {:>8.0} rows/s",
        write.raw.as_secs_f64(),
        write.rows as f64 / write.raw.as_secs_f64()
    );
    println!(
        "  ratio (write path / raw COPY): {:.2}  (target: at least 0.8)",
        write.raw.as_secs_f64() / write.write_path.as_secs_f64()
    );
    println!(
        "  for information, the same rows re-embedded (changed: COPY to a temp table + UPDATE): {:.2} s = {:.0} rows/s",
        write.update.as_secs_f64(),
        write.rows as f64 / write.update.as_secs_f64()
    );
    Ok(())
}

/// One run of the revision with `count` embed workers on fresh tables.
async fn scaling_run(
    config: &Config,
    driver: &mut driver::Driver,
    bench: &EmbeddingsBench,
    count: usize,
    with_index: bool,
) -> anyhow::Result<ScalingRun> {
    let pool = driver.pool.clone();
    for table in [
        EmbeddingTable::products(config),
        EmbeddingTable::reviews(config),
    ] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", table.qualified()))
            .execute(&pool)
            .await?;
    }
    sqlx::query(&format!(
        "UPDATE public.{} SET vector = NULL",
        config.memory_table
    ))
    .execute(&pool)
    .await
    .ok();
    let workers = start_workers(config, count, bench.concurrency)?;
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
        let phases = revisions::embeddings::REVISION.plan(&ctx).await?;
        let phase_count = if with_index {
            phases.len()
        } else {
            phases.len() - 1
        };
        let revision_run_id = driver
            .store_adhoc(catalogue::EMBEDDINGS, &phases[..phase_count])
            .await?;
        let mut times = Vec::new();
        for (i, phase) in phases[..phase_count].iter().enumerate() {
            let started = Instant::now();
            let title = format!("bench embeddings, {count} worker(s): {}", phase.name);
            driver.run_phase(revision_run_id, i as i32, &title).await?;
            times.push(started.elapsed());
        }
        let rows = shared::store::phase_rows_done(&pool, revision_run_id, 1).await?;
        let indexed = shared::store::phase_rows_done(&pool, revision_run_id, 2).await?;
        shared::store::delete_revision_run(&pool, revision_run_id).await?;
        anyhow::Ok(ScalingRun {
            workers: count,
            rows,
            embed: times[1],
            finish: times.get(2).copied(),
            indexed,
        })
    }
    .await;
    workers.stop(Duration::from_secs(30)).await;
    result
}

struct WriteComparison {
    rows: usize,
    write_path: Duration,
    raw: Duration,
    /// The same rows written again as changed rows (temp table + UPDATE).
    update: Duration,
}

/// The embed task's write against a raw binary COPY of the same rows.
async fn write_path(config: &Config, bench: &EmbeddingsBench) -> anyhow::Result<WriteComparison> {
    let server = FakeOpenAi::start(FakeOptions {
        delay: Duration::ZERO,
        dims: bench.dims,
        record_texts: false,
    })
    .await?;
    let mut settings = config.clone();
    settings.openai.base_url = server.base_url();
    settings.embedding.request_batch_size = 256;
    settings.embedding.requests_in_flight = 4;
    let embedder = providers::embed::from_config(&settings)?;
    let mut conn = PgConnection::connect(config.database_url.expose()).await?;
    let path_table = EmbeddingTable::named("data_bench_write_path", Source::Reviews);
    let raw_table = EmbeddingTable::named("data_bench_raw_copy", Source::Reviews);
    for table in [&path_table, &raw_table] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", table.qualified()))
            .execute(&mut conn)
            .await?;
        table.create(&mut conn, bench.dims).await?;
    }
    let reviews: Vec<(i64, String)> =
        sqlx::query_as("SELECT id::bigint, review FROM public.product_reviews ORDER BY id")
            .fetch_all(&mut conn)
            .await?;
    let mut comparison = WriteComparison {
        rows: 0,
        write_path: Duration::ZERO,
        raw: Duration::ZERO,
        update: Duration::ZERO,
    };
    for (n, chunk) in reviews.chunks(bench.task_rows.max(1) as usize).enumerate() {
        let texts: Vec<String> = chunk.iter().map(|(_, t)| t.clone()).collect();
        let vectors = embedder
            .embed(&texts)
            .await
            .map_err(|e| anyhow::anyhow!("the zero-delay fake: {e}"))?;
        let rows: Vec<DocumentRow> = chunk
            .iter()
            .zip(vectors)
            .map(|((id, text), vector)| DocumentRow {
                node_id: node_id("review", *id),
                text: text.clone(),
                metadata: serde_json::json!({"review_id": id, "product_id": null}),
                embedding: Some(vector),
            })
            .collect();
        // Alternate which goes first, so neither always finds the cache warm.
        for first in [n % 2 == 0, n % 2 != 0] {
            if first {
                let started = Instant::now();
                let mut tx = conn.begin().await?;
                write::insert_new(&mut tx, &path_table, &rows).await?;
                write::update_existing(&mut tx, &path_table, &[], bench.dims).await?;
                tx.commit().await?;
                comparison.write_path += started.elapsed();
            } else {
                let started = Instant::now();
                let mut tx = conn.begin().await?;
                let mut buffer = CopyBuffer::new();
                for row in &rows {
                    buffer.tuple(4);
                    buffer.field(Some(row.text.as_bytes()));
                    buffer.jsonb(&row.metadata);
                    buffer.field(Some(row.node_id.as_bytes()));
                    buffer.vector(row.embedding.as_deref());
                }
                let mut copy = tx
                    .copy_in_raw(&format!(
                        "COPY {} (text, metadata_, node_id, embedding) FROM STDIN WITH (FORMAT BINARY)",
                        raw_table.qualified()
                    ))
                    .await?;
                copy.send(buffer.finish()).await?;
                copy.finish().await?;
                tx.commit().await?;
                comparison.raw += started.elapsed();
            }
        }
        let started = Instant::now();
        let mut tx = conn.begin().await?;
        write::update_existing(&mut tx, &path_table, &rows, bench.dims).await?;
        tx.commit().await?;
        comparison.update += started.elapsed();
        comparison.rows += rows.len();
    }
    for table in [&path_table, &raw_table] {
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", table.qualified()))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await.ok();
    Ok(comparison)
}
