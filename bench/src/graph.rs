//! `orchestrator bench graph`: how fast the graph revision builds and how
//! fast the shop's query answers on what it built. In a scratch database
//! and queue prefix of its own (dropped at the end unless `--keep`):
//!
//! 1. generates a data set (default 1,000,000 reviews, every review
//!    labelled) and seeds it with the pipeline;
//! 2. builds the graph with N local graph workers (default 2) and prints
//!    vertices + edges per second, phase by phase;
//! 3. asks the shop's query 60 times — 20 features × 3 sentiments, each for
//!    20 products having the feature — on a connection that only sets its
//!    search path, checks every answer against SQL, and prints p50 / p95;
//! 4. builds the same graph the original way on the first 10,000 reviews
//!    (one Cypher `CREATE` per row with its data pasted into the text,
//!    `MATCH … WHERE … CREATE` per edge) and prints its rate and the ratio.

use crate::scratch::{self, DataSet, Room};
use anyhow::Context;
use orchestrator::driver::{self, RunOptions};
use orchestrator::local_workers::LocalWorkers;
use orchestrator::lock::WaitPolicy;
use orchestrator::plan::{Direction, PlanContext};
use shared::catalogue;
use shared::config::SentimentEdges;
use shared::Config;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct GraphBench {
    pub reviews: usize,
    pub workers: usize,
    /// Tasks each worker runs at once.
    pub concurrency: usize,
    /// Source rows per graph task.
    pub task_rows: i64,
    /// Reviews the original way builds (0: skip it).
    pub original_reviews: usize,
    /// Keep the scratch database and the generated files.
    pub keep: bool,
}

pub async fn graph(config: &Config, bench: &GraphBench) -> anyhow::Result<()> {
    let data = DataSet::new(bench.reviews, 20, 1.0);
    let room = Room::open(config, "graph", data).await?;
    let mut bench_config = room.config.clone();
    bench_config.graph.task_rows = bench.task_rows;
    bench_config.graph.sentiment_edges = SentimentEdges::Main;

    let result = run(&bench_config, bench).await;

    room.close(bench.keep).await;
    result
}

struct Build {
    elements: i64,
    total: Duration,
    phases: Vec<(String, Duration, i64)>,
}

async fn run(config: &Config, bench: &GraphBench) -> anyhow::Result<()> {
    let options = RunOptions {
        command: format!("bench graph --reviews {}", bench.reviews),
        wait: WaitPolicy::Wait,
        data_dir: config.data_dir.clone(),
    };
    let mut driver = scratch::seeded(config, &options).await?;
    let build = build(config, &mut driver, bench).await;
    let build = match build {
        Ok(b) => b,
        Err(e) => {
            driver.finish(Err(&e)).await;
            return Err(e);
        }
    };
    driver.finish(Ok(())).await;

    println!(
        "graph build, {} reviews, {} graph worker(s) x {} task(s), GRAPH_TASK_ROWS {}:",
        bench.reviews, bench.workers, bench.concurrency, bench.task_rows
    );
    for (name, time, rows) in &build.phases {
        println!("  {name:<16} {:>7.2} s  {rows:>9} rows", time.as_secs_f64());
    }
    let rate = build.elements as f64 / build.total.as_secs_f64();
    println!(
        "  whole revision: {} vertices and edges in {:.2} s = {:.0} elements/s  (target: at least 100000)",
        build.elements,
        build.total.as_secs_f64(),
        rate
    );

    let mut conn = PgConnection::connect(config.database_url.expose()).await?;
    let latency = query_latency(&mut conn, config).await?;
    println!(
        "shop's query, {} calls (20 features x 3 sentiments, 20 products having the feature each), fresh connection with only search_path set:",
        latency.len()
    );
    println!(
        "  p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms  (target: p95 under 100 ms); every answer equals SQL's counts",
        percentile(&latency, 0.50),
        percentile(&latency, 0.95),
        percentile(&latency, 1.0)
    );

    if bench.original_reviews > 0 {
        let original = original_way(&mut conn, bench.original_reviews).await?;
        let original_rate = original.0 as f64 / original.1.as_secs_f64();
        println!(
            "the original way (Cypher CREATE per row with data in the text, MATCH ... WHERE ... CREATE per edge, one transaction), first {} reviews:",
            bench.original_reviews
        );
        println!(
            "  {} vertices and edges in {:.2} s = {:.0} elements/s",
            original.0,
            original.1.as_secs_f64(),
            original_rate
        );
        println!(
            "  ratio (bulk build at {} reviews / the original way at {}): {:.0}x  (target: at least 100x)",
            bench.reviews,
            bench.original_reviews,
            rate / original_rate
        );
    }
    conn.close().await.ok();
    Ok(())
}

/// The graph revision, planned and run phase by phase with `workers` fresh
/// local graph workers.
async fn build(
    config: &Config,
    driver: &mut driver::Driver,
    bench: &GraphBench,
) -> anyhow::Result<Build> {
    let pool = driver.pool.clone();
    let workers = LocalWorkers::start_with_env(
        bench.workers,
        Some(bench.concurrency),
        &scratch::base_env(config),
    )?;
    // Let them connect, so that start-up is not measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let result = async {
        let started = Instant::now();
        let ctx = PlanContext {
            config,
            pool: &pool,
            direction: Direction::Upgrade,
            data_dir: config.data_dir.clone(),
            rerun: Default::default(),
        };
        let phases = revisions::graph::REVISION.plan(&ctx).await?;
        let revision_run_id = driver.store_adhoc(catalogue::GRAPH, &phases).await?;
        let mut times = Vec::new();
        for (i, phase) in phases.iter().enumerate() {
            let phase_started = Instant::now();
            let title = format!("bench graph: {}", phase.name);
            driver.run_phase(revision_run_id, i as i32, &title).await?;
            let rows = shared::store::phase_rows_done(&pool, revision_run_id, i as i32).await?;
            times.push((phase.name.clone(), phase_started.elapsed(), rows));
        }
        let total = started.elapsed();
        shared::store::delete_revision_run(&pool, revision_run_id).await?;
        let elements = times
            .iter()
            .find(|(n, _, _)| n == "publish")
            .map_or(0, |(_, _, r)| *r);
        anyhow::Ok(Build {
            elements,
            total,
            phases: times,
        })
    }
    .await;
    workers.stop(Duration::from_secs(30)).await;
    result
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted_ms.len() as f64).ceil() as usize).clamp(1, sorted_ms.len());
    sorted_ms[rank - 1]
}

/// The shop's query, as the shop writes it.
fn shop_query(product_ids: &[i64], feature: &str, sentiment: &str) -> String {
    let ids: Vec<String> = product_ids.iter().map(i64::to_string).collect();
    format!(
        "SELECT ag_catalog.agtype_out(product_id)::text, ag_catalog.agtype_out(sentiment_count)::text
           FROM ag_catalog.cypher('product_review_graph', $$
            MATCH (p:Product), (f:Feature), (r:Review)
            WHERE p.id IN [{}] AND f.name = '{}'
            MATCH (p)-[:HAS_FEATURE]->(f)
            MATCH (r)-[e:{sentiment}_sentiment {{product_id: p.id}}]->(f)
            RETURN p.id, count(e) ORDER BY count(e) DESC
           $$) AS (product_id ag_catalog.agtype, sentiment_count ag_catalog.agtype)",
        ids.join(", "),
        feature.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

/// Milliseconds of each call, sorted; every answer checked against SQL.
async fn query_latency(admin: &mut PgConnection, config: &Config) -> anyhow::Result<Vec<f64>> {
    // The 20 features most products have, and 20 of those products each,
    // spread over the id range.
    let features: Vec<(i32, String)> = sqlx::query_as(
        "SELECT f.id, f.feature_name::text FROM public.features f
           JOIN public.product_features pf ON pf.feature_id = f.id
          GROUP BY f.id ORDER BY count(*) DESC, f.id LIMIT 20",
    )
    .fetch_all(&mut *admin)
    .await?;
    let mut shop = PgConnection::connect(config.database_url.expose()).await?;
    sqlx::raw_sql("SET search_path = ag_catalog, \"$user\", public")
        .execute(&mut shop)
        .await?;
    let mut times = Vec::new();
    for (feature_id, feature) in &features {
        let products: Vec<i64> = sqlx::query_scalar(
            "SELECT product_id::bigint FROM (
                SELECT product_id, row_number() OVER (ORDER BY product_id) AS n, count(*) OVER () AS total
                  FROM public.product_features WHERE feature_id = $1) t
              WHERE (n - 1) % greatest(total / 20, 1) = 0 ORDER BY n LIMIT 20",
        )
        .bind(feature_id)
        .fetch_all(&mut *admin)
        .await?;
        for sentiment in ["positive", "negative", "neutral"] {
            let sql = shop_query(&products, feature, sentiment);
            let started = Instant::now();
            let rows: Vec<(String, String)> = sqlx::query_as(&sql)
                .fetch_all(&mut shop)
                .await
                .with_context(|| format!("the shop's query for {feature} / {sentiment}"))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            let got: BTreeMap<i64, i64> = rows
                .iter()
                .map(|(p, n)| Ok((p.parse()?, n.parse()?)))
                .collect::<Result<_, std::num::ParseIntError>>()
                .context("the shop's query returned non-integers")?;
            let want: BTreeMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
                "SELECT r.product_id::bigint, count(*) FROM public.product_reviews r
                   JOIN public.product_features pf ON pf.product_id = r.product_id AND pf.feature_id = r.feature_id
                  WHERE r.feature_id = $1 AND r.sentiment = $2 AND r.product_id = ANY($3)
                  GROUP BY r.product_id",
            )
            .bind(feature_id)
            .bind(sentiment)
            .bind(&products)
            .fetch_all(&mut *admin)
            .await?
            .into_iter()
            .collect();
            anyhow::ensure!(
                got == want,
                "the shop's query for {feature} / {sentiment} counted {got:?}, SQL {want:?}"
            );
        }
    }
    shop.close().await.ok();
    times.sort_by(f64::total_cmp);
    Ok(times)
}

/// A Cypher string literal of a value, as the original pasted it (with the
/// quotes escaped, so that it runs at all).
fn cypher_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `(id, product_id, feature_id, sentiment, review)`.
type ReviewRow = (
    i32,
    Option<i32>,
    Option<i32>,
    Option<String>,
    Option<String>,
);

/// The original migration's way on a graph of its own: every vertex a
/// Cypher `CREATE` with its data in the text, every edge a `MATCH … WHERE
/// … CREATE`, one statement at a time, all in one transaction (as an
/// Alembic migration runs). Returns (elements, time).
async fn original_way(conn: &mut PgConnection, reviews: usize) -> anyhow::Result<(i64, Duration)> {
    let graph = "original_way_graph";
    sqlx::raw_sql(&format!(
        "SET search_path = ag_catalog, \"$user\", public; SELECT create_graph('{graph}')"
    ))
    .execute(&mut *conn)
    .await?;
    let products: Vec<(i32, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, name::text, category::text FROM public.products ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let features: Vec<(i32, String, String)> = sqlx::query_as(
        "SELECT id, feature_name::text, categories::text FROM public.features ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let review_rows: Vec<ReviewRow> = sqlx::query_as(
        "SELECT id, product_id, feature_id, sentiment, review FROM public.product_reviews ORDER BY id LIMIT $1",
    )
    .bind(reviews as i64)
    .fetch_all(&mut *conn)
    .await?;
    let product_features: Vec<(i32, i32)> =
        sqlx::query_as("SELECT product_id, feature_id FROM public.product_features ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    let mut statements = Vec::new();
    let opt = |v: &Option<String>| v.as_deref().map_or("'None'".to_string(), cypher_string);
    for (id, name, category) in &products {
        statements.push(format!(
            "CREATE (:Product {{id: {id}, name: {}, category: {}}})",
            opt(name),
            opt(category)
        ));
    }
    for (id, name, categories) in &features {
        statements.push(format!(
            "CREATE (:Feature {{id: {id}, name: {}, categories: {categories}}})",
            cypher_string(name)
        ));
    }
    for (id, product_id, feature_id, sentiment, text) in &review_rows {
        statements.push(format!(
            "CREATE (:Review {{id: {id}, product_id: {}, feature_id: {}, sentiment: {}, text: {}}})",
            product_id.map_or("null".into(), |v| v.to_string()),
            feature_id.map_or("null".into(), |v| v.to_string()),
            opt(sentiment),
            opt(text)
        ));
    }
    for (product_id, feature_id) in &product_features {
        statements.push(format!(
            "MATCH (p:Product), (f:Feature) WHERE p.id = {product_id} AND f.id = {feature_id} CREATE (p)-[:HAS_FEATURE]->(f)"
        ));
    }
    for (id, product_id, feature_id, sentiment, _) in &review_rows {
        let Some(product_id) = product_id else {
            continue;
        };
        statements.push(format!(
            "MATCH (p:Product), (r:Review) WHERE p.id = {product_id} AND r.id = {id} CREATE (p)-[:HAS_REVIEW]->(r)"
        ));
        if let (Some(feature_id), Some(sentiment)) = (feature_id, sentiment) {
            if ["positive", "negative", "neutral"].contains(&sentiment.as_str()) {
                statements.push(format!(
                    "MATCH (r:Review), (f:Feature) WHERE r.id = {id} AND f.id = {feature_id} \
                     CREATE (r)-[:{sentiment}_sentiment {{sentiment: '{sentiment}', product_id: {product_id}, feature_id: {feature_id}}}]->(f)"
                ));
            }
        }
    }
    eprintln!(
        "the original way: {} Cypher statements, one at a time",
        statements.len()
    );
    let started = Instant::now();
    sqlx::raw_sql("BEGIN").execute(&mut *conn).await?;
    for statement in &statements {
        sqlx::raw_sql(&format!(
            "SELECT * FROM cypher('{graph}', $q$ {statement} $q$) AS (a agtype)"
        ))
        .execute(&mut *conn)
        .await
        .with_context(|| format!("the original way: {statement}"))?;
    }
    sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
    let elapsed = started.elapsed();
    let elements: i64 = sqlx::query_scalar(&format!(
        "SELECT (SELECT count(*) FROM {graph}._ag_label_vertex) + (SELECT count(*) FROM {graph}._ag_label_edge)"
    ))
    .fetch_one(&mut *conn)
    .await?;
    sqlx::raw_sql(&format!(
        "SELECT drop_graph('{graph}', true); RESET search_path"
    ))
    .execute(&mut *conn)
    .await?;
    Ok((elements, elapsed))
}
