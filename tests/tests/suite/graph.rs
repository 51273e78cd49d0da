//! The graph revision f41ba96cab17, driven as a user would: `worker`
//! processes and `orchestrator upgrade / rerun / downgrade`, each test with
//! a database and queue prefix of its own.
//!
//! To keep them fast the tests seed a data set and then stand in for the
//! embeddings and enrichment revisions: they create the enrichment's
//! `review_feature_sentiments` (with the aspects a test wants) and set
//! `alembic_version` to the enrichment's id, so that `upgrade f41ba96cab17`
//! runs the graph revision alone.
//!
//! The shop's query is sent as the shop sends it: one Cypher statement with
//! its data in the text, on a new connection that only sets `search_path`
//! (no `LOAD 'age'`: the server preloads it).

use nix::sys::signal::Signal;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::{assert_success, finished, text, TestEnv};

const SEED: &str = "ef85393336cb";
const ENRICHMENT: &str = "f3e916f4940d";
const GRAPH: &str = "f41ba96cab17";
const SENTIMENTS: [&str; 3] = ["positive", "negative", "neutral"];

/// The enrichment revision's tables (`review_feature_sentiments` among
/// them), as it creates them.
const ENRICHMENT_TABLES: &str = revisions::enrichment::UPGRADE_SQL;

async fn scalar_i64(env: &TestEnv, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn exec(env: &TestEnv, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A data set seeded (the sample one, or `data_dir`), then brought to the
/// enrichment's point with `aspects` (SQL filling review_feature_sentiments).
async fn at_enrichment(name: &str, data_dir: Option<&Path>, aspects: &str) -> TestEnv {
    at_enrichment_with(name, data_dir, aspects, &[]).await
}

/// [`at_enrichment`], with extra environment for every process.
async fn at_enrichment_with(
    name: &str,
    data_dir: Option<&Path>,
    aspects: &str,
    vars: &[(&str, &str)],
) -> TestEnv {
    let mut env = TestEnv::new(name).await;
    for (k, v) in vars {
        env.set_env(k, v);
    }
    for _ in 0..2 {
        env.start_worker(&["--role", "all"]);
    }
    let mut upgrade = vec!["upgrade", SEED];
    let dir;
    if let Some(d) = data_dir {
        dir = d.display().to_string();
        upgrade.extend(["--data-dir", dir.as_str()]);
    }
    assert_success(&env.orchestrator(&upgrade).await);
    exec(&env, ENRICHMENT_TABLES).await;
    exec(&env, aspects).await;
    exec(
        &env,
        &format!("UPDATE public.alembic_version SET version_num = '{ENRICHMENT}'"),
    )
    .await;
    env
}

/// A generated data set (every review labelled) in a temporary folder.
fn generated(name: &str, reviews: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "graph-test-{name}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let output = std::process::Command::new(testkit::env::bin_dir().join("orchestrator"))
        .args([
            "data",
            "generate",
            "--products",
            "60",
            "--users",
            "10",
            "--labelled-share",
            "1.0",
        ])
        .arg("--reviews")
        .arg(reviews.to_string())
        .arg("--out")
        .arg(&dir)
        .output()
        .expect("run orchestrator data generate");
    assert_success(&output);
    dir
}

/// Two aspects for every other review: its main one and another feature of
/// its product with another sentiment; plus, for one of them, an aspect of a
/// feature that does not exist (no edge may come of it).
const TWO_ASPECTS: &str = "
INSERT INTO public.review_feature_sentiments (review_id, feature_id, sentiment, source, text_hash)
SELECT r.id, r.feature_id, r.sentiment, 'test', md5(r.review)
  FROM public.product_reviews r
 WHERE r.id % 2 = 0 AND r.feature_id IS NOT NULL AND r.sentiment IN ('positive', 'negative', 'neutral');
INSERT INTO public.review_feature_sentiments (review_id, feature_id, sentiment, source, text_hash)
SELECT r.id, other.feature_id, (ARRAY['negative', 'neutral', 'positive'])[1 + r.id % 3], 'test', md5(r.review)
  FROM public.product_reviews r
  JOIN LATERAL (SELECT pf.feature_id FROM public.product_features pf
                 WHERE pf.product_id = r.product_id AND pf.feature_id <> r.feature_id
                 ORDER BY pf.feature_id LIMIT 1) other ON true
 WHERE r.id % 2 = 0 AND r.feature_id IS NOT NULL AND r.sentiment IN ('positive', 'negative', 'neutral');
INSERT INTO public.review_feature_sentiments (review_id, feature_id, sentiment, source, text_hash)
SELECT min(review_id), 999999, 'positive', 'test', 'x' FROM public.review_feature_sentiments;";

/// The shop's query, written as the shop writes it (data in the text).
fn shop_query(product_ids: &[i64], feature: &str, sentiment: &str) -> String {
    let ids: Vec<String> = product_ids.iter().map(i64::to_string).collect();
    let name = feature.replace('\\', "\\\\").replace('\'', "\\'");
    format!(
        "SELECT * FROM ag_catalog.cypher('product_review_graph', $$
            MATCH (p:Product), (f:Feature), (r:Review)
            WHERE p.id IN [{ids}] AND f.name = '{name}'
            MATCH (p)-[:HAS_FEATURE]->(f)
            MATCH (r)-[e:{sentiment}_sentiment {{product_id: p.id}}]->(f)
            RETURN p.id, count(e) ORDER BY count(e) DESC
        $$) AS (product_id ag_catalog.agtype, sentiment_count ag_catalog.agtype)",
        ids = ids.join(", ")
    )
}

/// A connection as the shop opens one: only its search path set.
async fn shop_connection(env: &TestEnv) -> PgConnection {
    shop_connection_to(&env.database_url).await
}

async fn shop_connection_to(url: &str) -> PgConnection {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query("SET search_path = ag_catalog, \"$user\", public")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

/// An agtype integer, strictly (a string `"7"` is not one).
fn integer(agtype: &str) -> i64 {
    agtype
        .parse()
        .unwrap_or_else(|_| panic!("{agtype:?} is not an agtype integer"))
}

/// The shop's answer: `(product id, count)` in the order returned.
async fn shop_counts(
    conn: &mut PgConnection,
    product_ids: &[i64],
    feature: &str,
    sentiment: &str,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT ag_catalog.agtype_out(product_id)::text, ag_catalog.agtype_out(sentiment_count)::text FROM ({}) q",
        shop_query(product_ids, feature, sentiment)
    );
    let rows: Vec<(String, String)> = sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(|(p, n)| (integer(p), integer(n))).collect())
}

/// The same question asked of the tables: per product having the feature,
/// the review aspects with that sentiment (`aspects`: the enrichment's
/// rows where a review has any, else its main feature).
async fn sql_counts(
    env: &TestEnv,
    product_ids: &[i64],
    feature: &str,
    sentiment: &str,
    aspects: bool,
) -> BTreeMap<i64, i64> {
    let source = if aspects {
        "SELECT s.review_id, s.feature_id, s.sentiment FROM public.review_feature_sentiments s
         UNION ALL
         SELECT r.id, r.feature_id, r.sentiment FROM public.product_reviews r
          WHERE NOT EXISTS (SELECT 1 FROM public.review_feature_sentiments s WHERE s.review_id = r.id)"
    } else {
        "SELECT r.id, r.feature_id, r.sentiment FROM public.product_reviews r"
    };
    let rows: Vec<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT r.product_id::bigint, count(*)
           FROM ({source}) a (review_id, feature_id, sentiment)
           JOIN public.product_reviews r ON r.id = a.review_id
           JOIN public.features f ON f.id = a.feature_id
          WHERE f.feature_name = $1 AND a.sentiment = $2 AND r.product_id = ANY($3)
            AND EXISTS (SELECT 1 FROM public.product_features pf WHERE pf.product_id = r.product_id AND pf.feature_id = f.id)
          GROUP BY r.product_id"
    ))
    .bind(feature)
    .bind(sentiment)
    .bind(product_ids)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    rows.into_iter().collect()
}

/// For every feature and sentiment over all products, the shop's query
/// returns what SQL counts, ordered by count; returns how many edges the
/// answers counted.
async fn assert_parity(env: &TestEnv, aspects: bool) -> i64 {
    assert_parity_on(env, aspects, shop_connection(env).await).await
}

/// [`assert_parity`] on a given connection.
async fn assert_parity_on(env: &TestEnv, aspects: bool, mut shop: PgConnection) -> i64 {
    let products: Vec<i64> =
        sqlx::query_scalar("SELECT id::bigint FROM public.products ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let features: Vec<String> =
        sqlx::query_scalar("SELECT feature_name::text FROM public.features ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let mut counted = 0;
    for feature in &features {
        for sentiment in SENTIMENTS {
            let answer = shop_counts(&mut shop, &products, feature, sentiment)
                .await
                .unwrap_or_else(|e| panic!("the shop's query for {feature}/{sentiment}: {e}"));
            let by_count: Vec<i64> = answer.iter().map(|(_, n)| *n).collect();
            let mut sorted = by_count.clone();
            sorted.sort_by(|a, b| b.cmp(a));
            assert_eq!(
                by_count, sorted,
                "{feature}/{sentiment}: ordered by count, descending"
            );
            let got: BTreeMap<i64, i64> = answer.into_iter().collect();
            let want = sql_counts(env, &products, feature, sentiment, aspects).await;
            assert_eq!(
                got, want,
                "{feature}/{sentiment}: the shop's counts against SQL's"
            );
            counted += got.values().sum::<i64>();
        }
    }
    shop.close().await.ok();
    counted
}

async fn label_count(env: &TestEnv, label: &str) -> i64 {
    scalar_i64(
        env,
        &format!("SELECT count(*) FROM product_review_graph.\"{label}\""),
    )
    .await
}

#[tokio::test]
async fn the_shops_query_on_a_fresh_connection_counts_what_sql_counts_on_the_sample_data() {
    let env = at_enrichment("graph_sample", None, "SELECT 1").await;
    let output = env.orchestrator(&["upgrade", GRAPH]).await;
    assert_success(&output);
    assert_eq!(
        sqlx::query_scalar::<_, String>("SELECT version_num FROM public.alembic_version")
            .fetch_one(&env.pool)
            .await
            .unwrap(),
        GRAPH
    );
    let counted = assert_parity(&env, true).await;
    // The answers do not depend on how property maps match, only the speed.
    let mut containment = shop_connection(&env).await;
    sqlx::query("SET age.enable_containment = on")
        .execute(&mut containment)
        .await
        .unwrap();
    assert_eq!(assert_parity_on(&env, true, containment).await, counted);
    let labelled = scalar_i64(
        &env,
        "SELECT count(*) FROM public.product_reviews r JOIN public.product_features pf
             ON pf.product_id = r.product_id AND pf.feature_id = r.feature_id
          WHERE r.sentiment IN ('positive', 'negative', 'neutral')",
    )
    .await;
    assert!(
        labelled > 300,
        "the sample data labels reviews ({labelled})"
    );
    assert_eq!(counted, labelled, "every labelled review is counted once");
    for (table, label) in [
        ("public.products", "Product"),
        ("public.features", "Feature"),
        ("public.product_reviews", "Review"),
        ("public.product_features", "HAS_FEATURE"),
    ] {
        assert_eq!(
            label_count(&env, label).await,
            scalar_i64(&env, &format!("SELECT count(*) FROM {table}")).await,
            "{label}"
        );
    }
    // The database's default search path is left alone; its Cypher matches
    // property maps by equality (GRAPH_PROPERTY_MATCH=equality).
    let defaults: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
          WHERE d.datname = current_database() AND s.setrole = 0",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(defaults, ["age.enable_containment=off"]);
    env.cleanup().await;
}

#[tokio::test]
async fn two_aspect_reviews_count_per_aspect_and_main_counts_the_main_feature_only() {
    let dir = generated("aspects", 3000);
    let mut env = at_enrichment("graph_aspects", Some(&dir), TWO_ASPECTS).await;
    env.set_env("GRAPH_TASK_ROWS", "700");
    assert_success(&env.orchestrator(&["upgrade", GRAPH]).await);
    let per_aspect = assert_parity(&env, true).await;
    // `main`, by an incremental re-run: the second aspects' edges go.
    env.set_env("GRAPH_SENTIMENT_EDGES", "main");
    let output = env.orchestrator(&["rerun", GRAPH]).await;
    assert_success(&output);
    assert!(
        text(&output).contains("compare"),
        "an incremental re-run: {}",
        text(&output)
    );
    let main = assert_parity(&env, false).await;
    let second_aspects = scalar_i64(
        &env,
        "SELECT count(*) FROM public.review_feature_sentiments s JOIN public.product_reviews r ON r.id = s.review_id
          WHERE s.feature_id <> r.feature_id AND EXISTS (SELECT 1 FROM public.product_features pf
                WHERE pf.product_id = r.product_id AND pf.feature_id = s.feature_id)",
    )
    .await;
    assert!(second_aspects > 500, "{second_aspects} second aspects");
    assert_eq!(per_aspect - main, second_aspects);
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

/// Texts a row-by-row build that pastes data into Cypher breaks on.
const AWKWARD: [&str; 6] = [
    "It's \"great\" -- $$ SELECT 1; $$ and a dollar: $5.",
    "back\\slash, \\n not a newline, \\' not a quote\\",
    "line one\nline two\r\n\ttabbed",
    "naïve café — 漢字 😀 Zürich 129 €",
    "'}) MATCH (n) DETACH DELETE n //",
    "$$",
];

/// Runs a Cypher statement returning one column, as the shop does.
async fn cypher_column(conn: &mut PgConnection, cypher: &str) -> Vec<String> {
    sqlx::query_scalar(&format!(
        "SELECT ag_catalog.agtype_out(v)::text FROM ag_catalog.cypher('product_review_graph', $$ {cypher} $$) AS (v ag_catalog.agtype)"
    ))
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_else(|e| panic!("{cypher}: {e}"))
}

#[tokio::test]
async fn awkward_text_comes_back_byte_for_byte_nulls_stay_absent_and_created_ids_are_fresh() {
    let env = at_enrichment("graph_text", None, "SELECT 1").await;
    for (i, awkward) in AWKWARD.iter().enumerate() {
        sqlx::query("UPDATE public.product_reviews SET review = $1 WHERE id = $2")
            .bind(awkward)
            .bind(i as i32 + 1)
            .execute(&env.pool)
            .await
            .unwrap();
    }
    exec(
        &env,
        "UPDATE public.product_reviews SET sentiment = NULL, feature_id = NULL WHERE id = 1",
    )
    .await;
    exec(&env, "UPDATE public.products SET name = $$O'Brien's \"best\" $$ || chr(10) || '$$', category = NULL WHERE id = 2").await;
    assert_success(&env.orchestrator(&["upgrade", GRAPH]).await);

    let mut shop = shop_connection(&env).await;
    for (i, awkward) in AWKWARD.iter().enumerate() {
        let texts: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t::text FROM ag_catalog.cypher('product_review_graph', $$ MATCH (r:Review {{id: {}}}) RETURN r.text $$) AS (t ag_catalog.agtype)",
            i + 1
        ))
        .fetch_all(&mut shop)
        .await
        .unwrap();
        assert_eq!(texts, [awkward.to_string()], "review {}", i + 1);
    }
    let name: String = sqlx::query_scalar("SELECT name FROM public.products WHERE id = 2")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT n::text FROM ag_catalog.cypher('product_review_graph', $$ MATCH (p:Product {id: 2}) RETURN p.name $$) AS (n ag_catalog.agtype)",
    )
    .fetch_all(&mut shop)
    .await
    .unwrap();
    assert_eq!(names, [name]);
    // NULL columns leave their keys out; ids are integers, categories a list.
    assert_eq!(
        cypher_column(&mut shop, "MATCH (r:Review {id: 1}) RETURN keys(r)").await,
        ["[\"id\", \"text\", \"product_id\"]"]
    );
    assert_eq!(
        cypher_column(&mut shop, "MATCH (p:Product {id: 2}) RETURN keys(p)").await,
        ["[\"id\", \"name\"]"]
    );
    let categories: serde_json::Value =
        sqlx::query_scalar("SELECT categories FROM public.features WHERE id = 1")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let in_graph = cypher_column(&mut shop, "MATCH (f:Feature {id: 1}) RETURN f.categories").await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&in_graph[0]).unwrap(),
        categories
    );
    assert!(categories.as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(
        cypher_column(
            &mut shop,
            "MATCH (r:Review) WHERE r.id = 3 AND r.product_id > 0 RETURN r.id"
        )
        .await,
        ["3"],
        "ids compare as integers"
    );

    // A Cypher CREATE after the bulk build takes a fresh id (the unique
    // indexes would refuse a taken one).
    let largest = scalar_i64(&env, "SELECT max(id)::bigint FROM public.product_reviews").await;
    let created = cypher_column(
        &mut shop,
        "CREATE (r:Review {id: -1, text: 'written by the shop'}) RETURN id(r)",
    )
    .await;
    let entry = integer(&created[0]) & ((1 << 48) - 1);
    assert!(
        entry > largest,
        "entry id {entry} of the created review is past {largest}"
    );
    let edge = cypher_column(
        &mut shop,
        "MATCH (p:Product {id: 1}), (r:Review {id: -1}) CREATE (p)-[e:HAS_REVIEW]->(r) RETURN id(e)",
    )
    .await;
    assert_eq!(edge.len(), 1);
    assert_eq!(
        scalar_i64(
            &env,
            "SELECT count(*) - count(DISTINCT id) FROM product_review_graph.\"HAS_REVIEW\""
        )
        .await,
        0
    );
    assert_eq!(
        cypher_column(&mut shop, "MATCH (r:Review {id: -1}) RETURN r.text").await,
        ["\"written by the shop\""]
    );
    shop.close().await.ok();
    env.cleanup().await;
}

/// `(product id, count)` per product, as the shop's query returns them.
type ShopAnswer = Vec<(i64, i64)>;

/// Answers the shop's query, again and again, until told to stop; returns
/// every distinct answer seen and any error.
fn keep_asking(
    env: &TestEnv,
    products: Vec<i64>,
    feature: String,
    sentiment: &'static str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<(Vec<ShopAnswer>, Vec<String>)> {
    let url = env.database_url.clone();
    tokio::spawn(async move {
        let mut conn = shop_connection_to(&url).await;
        let (mut answers, mut errors) = (Vec::new(), Vec::new());
        let mut asked = 0;
        while !*stop.borrow() || asked == 0 {
            asked += 1;
            match shop_counts(&mut conn, &products, &feature, sentiment).await {
                Ok(mut answer) => {
                    answer.sort();
                    if !answers.contains(&answer) {
                        answers.push(answer);
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        (answers, errors)
    })
}

#[tokio::test]
async fn an_incremental_rerun_gives_what_a_full_rebuild_gives_and_the_shop_never_sees_half() {
    let dir = generated("incremental", 2000);
    let mut env = at_enrichment("graph_rerun", Some(&dir), TWO_ASPECTS).await;
    env.set_env("GRAPH_TASK_ROWS", "500");
    assert_success(&env.orchestrator(&["upgrade", GRAPH]).await);
    let before = testkit::graph::dump(&env.pool).await;

    // The query to watch: the feature and sentiment of review 10's main aspect.
    let (feature, sentiment): (String, String) = sqlx::query_as(
        "SELECT f.feature_name::text, r.sentiment FROM public.product_reviews r JOIN public.features f ON f.id = r.feature_id WHERE r.id = 10",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let sentiment: &'static str = SENTIMENTS.into_iter().find(|s| *s == sentiment).unwrap();
    let products: Vec<i64> =
        sqlx::query_scalar("SELECT id::bigint FROM public.products ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let old_answer: Vec<(i64, i64)> = sql_counts(&env, &products, &feature, sentiment, true)
        .await
        .into_iter()
        .collect();

    // An edit, an insert and a delete of reviews (and of their aspects),
    // and a renamed product.
    exec(
        &env,
        "UPDATE public.product_reviews SET review = review || ' (edited)',
                sentiment = CASE sentiment WHEN 'positive' THEN 'negative' ELSE 'positive' END
          WHERE id = 10;
         DELETE FROM public.review_feature_sentiments WHERE review_id = 10;
         INSERT INTO public.product_reviews (product_id, user_name, review, rating, feature_id, sentiment)
         SELECT product_id, 'new reviewer', 'A new review: it''s $$ fine $$.', 4, feature_id, 'neutral'
           FROM public.product_reviews WHERE id = 11;
         DELETE FROM public.review_feature_sentiments WHERE review_id = 12;
         DELETE FROM public.product_reviews WHERE id = 12;
         UPDATE public.products SET name = name || ' II' WHERE id = 3;",
    )
    .await;
    let new_answer: Vec<(i64, i64)> = sql_counts(&env, &products, &feature, sentiment, true)
        .await
        .into_iter()
        .collect();
    assert_ne!(
        old_answer, new_answer,
        "the edits change the watched answer"
    );

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let watcher = keep_asking(&env, products.clone(), feature.clone(), sentiment, stopped);
    let output = env.orchestrator(&["rerun", GRAPH]).await;
    assert_success(&output);
    let incremental = testkit::graph::dump(&env.pool).await;
    let applied = scalar_i64(
        &env,
        "SELECT rows_done FROM pipeline.tasks WHERE revision = 'f41ba96cab17' AND kind = 'apply' ORDER BY id DESC LIMIT 1",
    )
    .await;
    assert_success(&env.orchestrator(&["rerun", GRAPH, "--full"]).await);
    stop.send(true).unwrap();
    let (answers, errors) = watcher.await.unwrap();
    let full = testkit::graph::dump(&env.pool).await;

    assert_ne!(incremental, before);
    assert_eq!(
        incremental.0, full.0,
        "vertices: incremental re-run against full rebuild"
    );
    assert_eq!(
        incremental.1, full.1,
        "edges: incremental re-run against full rebuild"
    );
    // Only what changed: the three reviews with their edges, the product.
    assert!(
        (6..=30).contains(&applied),
        "{applied} elements deleted or inserted by the re-run"
    );
    assert!(
        errors.is_empty(),
        "the shop's query failed meanwhile: {errors:?}"
    );
    for answer in &answers {
        assert!(
            *answer == old_answer || *answer == new_answer,
            "an answer from neither graph: {answer:?}\nold {old_answer:?}\nnew {new_answer:?}"
        );
    }
    assert!(answers.contains(&new_answer));
    assert_parity(&env, true).await;
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn a_graph_worker_killed_mid_build_leaves_no_duplicate_and_nothing_missing() {
    let mut env = TestEnv::new("graph_kill").await;
    env.set_env("GRAPH_TASK_ROWS", "300");
    env.start_worker(&["--role", "seed"]);
    assert_success(&env.orchestrator(&["upgrade", SEED]).await);
    exec(&env, ENRICHMENT_TABLES).await;
    exec(&env, TWO_ASPECTS).await;
    exec(
        &env,
        &format!("UPDATE public.alembic_version SET version_num = '{ENRICHMENT}'"),
    )
    .await;

    // Holding the aspects table stops the review edge tasks inside their
    // transactions, so that the kill lands mid-task.
    let mut holder = PgConnection::connect(&env.database_url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE public.review_feature_sentiments IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let victim = env.start_worker(&["--role", "graph", "--concurrency", "2"]);
    let run = env.spawn_orchestrator(&["upgrade", GRAPH]);
    env.wait_for_worker(
        victim,
        "a review edges task in the victim's hands",
        "SELECT count(*) > 0 FROM pipeline.tasks
                  WHERE revision = 'f41ba96cab17' AND kind = 'edges' AND status = 'running'
                    AND payload->>'source' = 'reviews' AND worker LIKE $1",
    )
    .await;
    env.signal_worker(victim, Signal::SIGKILL);
    env.start_worker(&["--role", "graph", "--concurrency", "2"]);
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    holder.close().await.ok();
    let output = finished(run, Duration::from_secs(240)).await;
    assert_success(&output);

    assert!(
        scalar_i64(&env, "SELECT count(*) FROM pipeline.tasks WHERE revision = 'f41ba96cab17' AND kind = 'edges' AND attempts > 1").await >= 1,
        "the killed worker's task was taken up again"
    );
    assert_eq!(
        label_count(&env, "Review").await,
        scalar_i64(&env, "SELECT count(*) FROM public.product_reviews").await
    );
    assert_eq!(
        label_count(&env, "HAS_REVIEW").await,
        scalar_i64(
            &env,
            "SELECT count(*) FROM public.product_reviews WHERE product_id IS NOT NULL"
        )
        .await
    );
    assert_eq!(
        scalar_i64(&env, "SELECT count(*) - count(DISTINCT (tableoid, start_id, end_id)) FROM product_review_graph._ag_label_edge").await,
        0,
        "no edge twice"
    );
    assert_parity(&env, true).await;
    env.cleanup().await;
}

/// Relations in `ag_catalog`: AGE's own, and whatever landed there by mistake.
async fn ag_catalog_relations(env: &TestEnv) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'ag_catalog' ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn earlier_revisions_rerun_after_the_graph_still_write_to_public() {
    let server = testkit::fake_openai::FakeOpenAi::start(testkit::fake_openai::FakeOptions {
        delay: Duration::ZERO,
        dims: 384,
        record_texts: false,
    })
    .await
    .unwrap();
    let base_url = server.base_url();
    let env = at_enrichment_with(
        "graph_public",
        None,
        "SELECT 1",
        &[
            ("EMBEDDING_PROVIDER", "openai"),
            ("OPENAI_BASE_URL", &base_url),
            ("OPENAI_API_KEY", "sk-test-not-a-secret"),
            ("EMBEDDING_MODEL", "text-embedding-3-small"),
            ("EMBEDDING_DIMENSIONS", "384"),
        ],
    )
    .await;
    assert_success(&env.orchestrator(&["upgrade", GRAPH]).await);
    let catalog = ag_catalog_relations(&env).await;
    // As an older original left the database: every session starts in ag_catalog.
    exec(
        &env,
        &format!(
            "ALTER DATABASE \"{}\" SET search_path = ag_catalog, \"$user\", public",
            env.db_name
        ),
    )
    .await;
    for revision in [SEED, "cc30da9b96c1", ENRICHMENT, GRAPH] {
        let output = env.orchestrator(&["rerun", revision]).await;
        assert_success(&output);
    }
    assert_eq!(
        ag_catalog_relations(&env).await,
        catalog,
        "nothing new in ag_catalog"
    );
    for table in [
        "public.data_product_embeddings",
        "public.data_review_embeddings",
    ] {
        assert!(
            scalar_i64(&env, &format!("SELECT count(*) FROM {table}")).await > 0,
            "{table} holds the re-run's rows"
        );
    }
    assert!(
        scalar_i64(
            &env,
            "SELECT count(*) FROM public.memories WHERE vector IS NOT NULL"
        )
        .await
            > 0
    );
    assert!(
        scalar_i64(
            &env,
            "SELECT count(*) FROM public.review_feature_sentiments"
        )
        .await
            > 0,
        "the enrichment's re-run wrote its aspects to public"
    );
    assert_parity(&env, true).await;
    env.cleanup().await;
}

#[tokio::test]
async fn downgrade_drops_the_graph_and_upgrade_builds_it_again_identically() {
    let dir = generated("downgrade", 500);
    let env = at_enrichment("graph_down", Some(&dir), TWO_ASPECTS).await;
    assert_success(&env.orchestrator(&["upgrade", GRAPH]).await);
    let built = testkit::graph::dump(&env.pool).await;
    assert!(!built.1.is_empty());
    assert_success(&env.orchestrator(&["downgrade", ENRICHMENT]).await);
    assert_eq!(
        scalar_i64(&env, "SELECT count(*) FROM ag_catalog.ag_graph").await,
        0,
        "no graph left, not even a build's"
    );
    assert_eq!(
        scalar_i64(
            &env,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'product_review_graph%'"
        )
        .await,
        0
    );
    assert_eq!(
        scalar_i64(
            &env,
            "SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
              WHERE d.datname = current_database()"
        )
        .await,
        0,
        "the database's settings are as before the graph"
    );
    let mut shop = shop_connection(&env).await;
    let gone = shop_counts(&mut shop, &[1], "Battery Life", "positive").await;
    assert!(gone.is_err_and(|e| e.to_string().contains("does not exist")));
    shop.close().await.ok();
    assert_success(&env.orchestrator(&["upgrade", GRAPH]).await);
    assert_eq!(testkit::graph::dump(&env.pool).await, built);
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}
