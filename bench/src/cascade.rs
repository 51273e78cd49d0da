//! `orchestrator bench cascade`: what a scheduled re-run costs next to the
//! load it follows. In a scratch database and queue prefix of its own
//! (dropped at the end unless `--keep`):
//!
//! 1. generates a data set (default 1,000,000 reviews, half of them
//!    labelled, so that the enrichment has work) and brings it to head with
//!    N local workers, timed;
//! 2. changes 1 % of the reviews in the files — a third edited, a third
//!    deleted, a third new — and times `rerun seed --prune --cascade`;
//! 3. prints both times, their ratio (target ≤ 5 %), and what each revision
//!    of the cascade did: rows read, rows written, provider inputs.
//!
//! The providers are the in-process OpenAI-compatible fake (embeddings and
//! chat completions, answering at once), so the times are the pipeline's
//! own; with a real provider, its time grows with the inputs printed.

use crate::scratch::{DataSet, Room};
use anyhow::Context;
use orchestrator::local_workers::LocalWorkers;
use orchestrator::migrate::{self, Request};
use shared::plan::{Direction, RerunFlags};
use shared::{catalogue, Config};
use std::path::Path;
use std::time::{Duration, Instant};
use testkit::fake_openai::FakeOpenAi;

#[derive(Debug, Clone)]
pub struct CascadeBench {
    pub reviews: usize,
    pub workers: usize,
    /// Tasks each worker runs at once.
    pub concurrency: usize,
    /// Share of the reviews changed between the load and the re-run.
    pub changed_share: f64,
    /// Keep the scratch database and the generated files.
    pub keep: bool,
}

pub async fn cascade(config: &Config, bench: &CascadeBench) -> anyhow::Result<()> {
    let data = DataSet::new(bench.reviews, 50, 0.5);
    let room = Room::open(config, "cascade", data).await?;
    let server = crate::scratch::fake_providers(Duration::ZERO).await?;
    // The orchestrator (planning here) and the workers read the same
    // settings: the caller's, with the scratch room and the fake providers.
    let settings = room.fake_provider_settings(&server, 384);
    let bench_config = crate::scratch::config_with(&settings)?;

    let result = run(&bench_config, bench, &settings, &server).await;

    room.close(bench.keep).await;
    result
}

async fn run(
    config: &Config,
    bench: &CascadeBench,
    settings: &[(String, String)],
    server: &FakeOpenAi,
) -> anyhow::Result<()> {
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let workers = LocalWorkers::start_with_env(bench.workers, Some(bench.concurrency), &pairs)?;
    let request = |direction, target: &str| Request {
        direction,
        target: target.to_string(),
        no_wait: false,
        with_workers: None,
        worker_concurrency: None,
        data_dir: None,
        label: Some("bench cascade".into()),
        rerun: RerunFlags::default(),
    };
    let outcome = async {
        let started = Instant::now();
        migrate::run(config, &request(Direction::Upgrade, "head")).await?;
        let full = started.elapsed();
        let embedded_by_load = server.inputs();
        let asked_by_load = server.reviews_asked().len();
        let pool = shared::db::connect(config, 2, Duration::from_secs(30)).await?;
        let before: i64 =
            sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM pipeline.revision_runs")
                .fetch_one(&pool)
                .await?;

        let changes = change_reviews(&config.data_dir, bench.changed_share)?;
        server.reset_counts();
        let asked_before = server.reviews_asked().len();
        let rerun = Request {
            rerun: RerunFlags {
                full: false,
                prune: true,
            },
            ..request(Direction::Rerun, catalogue::SEED)
        };
        let started = Instant::now();
        migrate::rerun(config, &rerun, true).await?;
        let cascade = started.elapsed();
        let report = Report {
            bench,
            changes,
            full,
            cascade,
            embedded_by_load,
            asked_by_load,
            embedded: server.inputs(),
            asked: server.reviews_asked().len() - asked_before,
        };
        report.print(&pool, before).await?;
        pool.close().await;
        anyhow::Ok(())
    }
    .await;
    workers.stop(Duration::from_secs(60)).await;
    outcome
}

/// What [`change_reviews`] did to `product_reviews.csv`.
#[derive(Debug, Default, Clone, Copy)]
struct Changes {
    edited: usize,
    deleted: usize,
    inserted: usize,
}

/// Edits, deletes and inserts (a third each) `share` of the reviews of the
/// data folder's `product_reviews.csv`, spread evenly over the file.
fn change_reviews(data_dir: &Path, share: f64) -> anyhow::Result<Changes> {
    let path = data_dir.join("product_reviews.csv");
    let changed = data_dir.join("product_reviews.csv.changed");
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let header = reader.headers()?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{} has no column {name}", path.display()))
    };
    let (id, review) = (column("id")?, column("review")?);
    let records: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    let next_id = records
        .iter()
        .filter_map(|r| r[id].parse::<i64>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    // Every `step`-th record changes, in turn edited, deleted, and
    // followed by a new one.
    let step = ((1.0 / share.clamp(1e-6, 1.0)).round() as usize).max(1);
    let mut writer = csv::Writer::from_path(&changed)?;
    writer.write_record(&header)?;
    let mut changes = Changes::default();
    for (i, record) in records.iter().enumerate() {
        if i % step != 0 {
            writer.write_record(record)?;
            continue;
        }
        match (i / step) % 3 {
            0 => {
                let mut edited: Vec<String> = record.iter().map(str::to_string).collect();
                edited[review] = format!(
                    "{} Update after a month: still as described.",
                    edited[review]
                );
                writer.write_record(&edited)?;
                changes.edited += 1;
            }
            1 => changes.deleted += 1,
            _ => {
                writer.write_record(record)?;
                let mut new: Vec<String> = record.iter().map(str::to_string).collect();
                new[id] = (next_id + changes.inserted as i64).to_string();
                new[review] = format!("A second opinion: {}", new[review]);
                writer.write_record(&new)?;
                changes.inserted += 1;
            }
        }
    }
    writer.flush()?;
    drop(writer);
    std::fs::rename(&changed, &path)?;
    Ok(changes)
}

struct Report<'a> {
    bench: &'a CascadeBench,
    changes: Changes,
    full: Duration,
    cascade: Duration,
    embedded_by_load: u64,
    asked_by_load: usize,
    embedded: u64,
    asked: usize,
}

impl Report<'_> {
    async fn print(&self, pool: &sqlx::PgPool, after_run: i64) -> anyhow::Result<()> {
        let c = self.changes;
        println!(
            "cascade re-run: {} generated reviews, {} worker process(es) x {} task(s), providers: in-process fake (no delay)",
            self.bench.reviews, self.bench.workers, self.bench.concurrency
        );
        println!(
            "  change in the files: {} reviews ({:.2} %): {} edited, {} deleted, {} inserted",
            c.edited + c.deleted + c.inserted,
            100.0 * (c.edited + c.deleted + c.inserted) as f64 / self.bench.reviews.max(1) as f64,
            c.edited,
            c.deleted,
            c.inserted
        );
        println!(
            "  upgrade head (full load):            {:>8.2} s  ({} embedding inputs, {} reviews to the LLM)",
            self.full.as_secs_f64(),
            self.embedded_by_load,
            self.asked_by_load
        );
        println!(
            "  rerun seed --prune --cascade:        {:>8.2} s  = {:.2} % of the full load (target <= 5 %)",
            self.cascade.as_secs_f64(),
            100.0 * self.cascade.as_secs_f64() / self.full.as_secs_f64().max(1e-9)
        );
        // Rows read: the source rows each revision compares (every re-run
        // reads each source row's hash once; the seed, every record of the
        // files). Task rows: what its tasks report done, by kind.
        let runs: Vec<(i64, String, f64)> = sqlx::query_as(
            "SELECT rr.id, rr.revision, extract(epoch FROM rr.finished_at - rr.started_at)::float8
               FROM pipeline.revision_runs rr
              WHERE rr.id > $1 AND rr.direction = 'rerun'
              ORDER BY rr.id",
        )
        .bind(after_run)
        .fetch_all(pool)
        .await?;
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await
        };
        let reviews = count("SELECT count(*) FROM public.product_reviews").await?;
        let products = count("SELECT count(*) FROM public.products").await?;
        let features = count("SELECT count(*) FROM public.features").await?;
        let memories = count("SELECT count(*) FROM public.memories")
            .await
            .unwrap_or(0);
        println!(
            "  revision     time (s)   rows read   provider inputs          task rows by kind"
        );
        for (id, revision, seconds) in runs {
            let name = revisions::registry::find(&revision).map_or(revision.as_str(), |r| r.name);
            let kinds: Vec<(String, i64)> = sqlx::query_as(
                "SELECT kind, sum(rows_done)::bigint FROM pipeline.tasks
                  WHERE revision_run_id = $1 GROUP BY kind ORDER BY min(id)",
            )
            .bind(id)
            .fetch_all(pool)
            .await?;
            let by_kind = |kind: &str| kinds.iter().find(|(k, _)| k == kind).map_or(0, |(_, n)| *n);
            let (read, inputs) = match name {
                "seed" => (by_kind("load"), "-".to_string()),
                "embeddings" => (
                    reviews + products + memories,
                    format!("{} texts embedded", self.embedded),
                ),
                "enrichment" => (reviews, format!("{} reviews to the LLM", self.asked)),
                _ => (reviews + products + features, "-".to_string()),
            };
            let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!(
                "  {name:<12} {seconds:>8.2}   {read:>9}   {inputs:<24} {}",
                kinds.join(", ")
            );
        }
        Ok(())
    }
}
