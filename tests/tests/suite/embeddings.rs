//! The embeddings revision cc30da9b96c1, driven as a user would: `worker`
//! processes and `orchestrator upgrade / rerun / search` against a database
//! and queue prefix of each test's own, the sample data set seeded first.
//!
//! Most tests point the workers at an OpenAI-compatible fake served by the
//! test itself (`testkit::fake_openai`), which counts every input that
//! reaches the "provider"; the search test uses the local model.

use std::time::Duration;
use testkit::fake_openai::{FakeOpenAi, FakeOptions};
use testkit::{assert_success, finished, text, TestEnv};

const SEED: &str = "ef85393336cb";
const EMBEDDINGS: &str = "cc30da9b96c1";
const PRODUCTS: &str = "public.data_product_embeddings";
const REVIEWS: &str = "public.data_review_embeddings";
const DIMS: i32 = 384;

/// A fake provider answering after `delay_ms`, recording what it embeds.
async fn fake(delay_ms: u64) -> FakeOpenAi {
    FakeOpenAi::start(FakeOptions {
        delay: Duration::from_millis(delay_ms),
        dims: 1536,
        record_texts: true,
    })
    .await
    .expect("start the fake OpenAI server")
}

fn use_fake(env: &mut TestEnv, server: &FakeOpenAi) {
    // The memory table of the seed is vector(384): ask the model for 384.
    env.embed_with(server, DIMS as usize);
}

/// The sample data set seeded, provider settings in place, `workers` worker
/// processes running (all roles).
async fn seeded(name: &str, server: Option<&FakeOpenAi>, workers: usize) -> TestEnv {
    let mut env = TestEnv::new(name).await;
    if let Some(server) = server {
        use_fake(&mut env, server);
    }
    for _ in 0..workers {
        env.start_worker(&["--role", "all"]);
    }
    assert_success(&env.orchestrator(&["upgrade", SEED]).await);
    env
}

async fn source_counts(env: &TestEnv) -> (i64, i64, i64) {
    (
        env.scalar("SELECT count(*) FROM public.products").await,
        env.scalar("SELECT count(*) FROM public.product_reviews")
            .await,
        env.scalar("SELECT count(*) FROM public.memories").await,
    )
}

/// Every source row has exactly one vector, and nothing else has one.
async fn assert_exact_counts(env: &TestEnv) {
    let (products, reviews, memories) = source_counts(env).await;
    assert_eq!(
        env.scalar(&format!("SELECT count(*) FROM {PRODUCTS}"))
            .await,
        products,
        "product vectors"
    );
    assert_eq!(
        env.scalar(&format!("SELECT count(*) FROM {REVIEWS}")).await,
        reviews,
        "review vectors"
    );
    for table in [PRODUCTS, REVIEWS] {
        assert_eq!(
            env.scalar(&format!(
                "SELECT count(*) - count(DISTINCT node_id) FROM {table}"
            ))
            .await,
            0,
            "duplicate node ids in {table}"
        );
        assert_eq!(
            env.scalar(&format!(
                "SELECT count(*) FROM {table} WHERE embedding IS NULL"
            ))
            .await,
            0,
            "rows without a vector in {table}"
        );
    }
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(DISTINCT (metadata_->>'review_id')::int) FROM {REVIEWS}"
        ))
        .await,
        reviews,
        "one vector per review"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.memories WHERE vector IS NOT NULL")
            .await,
        memories,
        "memories with a vector"
    );
}

#[tokio::test]
async fn tables_and_index_have_the_design_layout_and_one_vector_per_row() {
    let server = fake(0).await;
    let env = seeded("embed_layout", Some(&server), 2).await;
    server.reset_counts();
    let output = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert_success(&output);

    // Layout of README.md ("Embeddings"): id bigint identity PK, text varchar not null,
    // metadata_ jsonb, node_id varchar, embedding vector(dims).
    for table in ["data_product_embeddings", "data_review_embeddings"] {
        let columns: Vec<(String, String, bool, String)> = sqlx::query_as(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity::text
               FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        )
        .bind(format!("public.{table}"))
        .fetch_all(&env.pool)
        .await
        .unwrap();
        let shown: Vec<(&str, &str, bool, &str)> = columns
            .iter()
            .map(|(n, t, nn, id)| (n.as_str(), t.as_str(), *nn, id.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("id", "bigint", true, "d"),
                ("text", "character varying", true, ""),
                ("metadata_", "jsonb", false, ""),
                ("node_id", "character varying", false, ""),
                ("embedding", "vector(384)", false, ""),
            ],
            "{table}"
        );
        let pk: String = sqlx::query_scalar(
            "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
              WHERE i.indrelid = $1::regclass AND i.indisprimary",
        )
        .bind(format!("public.{table}"))
        .fetch_one(&env.pool)
        .await
        .unwrap();
        assert_eq!(pk, "id");
        // The ANN index: named as the shop expects, hnsw, cosine distance.
        let (method, opclass): (String, String) = sqlx::query_as(
            "SELECT am.amname::text, oc.opcname::text FROM pg_class c JOIN pg_am am ON am.oid = c.relam
               JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_opclass oc ON oc.oid = i.indclass[0]
              WHERE c.oid = to_regclass($1)",
        )
        .bind(format!("public.{table}_embedding_idx"))
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("index of {table}: {e}"));
        assert_eq!(
            (method.as_str(), opclass.as_str()),
            ("hnsw", "vector_cosine_ops")
        );
    }
    assert_exact_counts(&env).await;
    let (products, reviews, memories) = source_counts(&env).await;
    assert!(memories > 0, "the sample users' preferences are memories");
    assert_eq!(
        server.inputs() as i64,
        products + reviews + memories,
        "each row embedded exactly once"
    );

    // metadata_: the ids, and what LlamaIndex needs to load the row as a node.
    let (metadata, text): (serde_json::Value, String) = sqlx::query_as(&format!(
        "SELECT metadata_, text FROM {PRODUCTS} WHERE metadata_->>'product_id' = '1'"
    ))
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(metadata["category"], "Headphones");
    assert_eq!(metadata["_node_type"], "TextNode");
    for key in ["doc_id", "document_id", "ref_doc_id", "content_hash"] {
        assert!(metadata[key].is_string(), "{key} in {metadata}");
    }
    let node: serde_json::Value =
        serde_json::from_str(metadata["_node_content"].as_str().unwrap()).unwrap();
    assert_eq!(node["text"], "");
    assert_eq!(node["metadata"]["product_id"], 1);
    assert_eq!(node["class_name"], "TextNode");
    // The product text: description without HTML, specifications, category, variants.
    assert!(
        text.starts_with("Auralis QuietLine 700 Wireless Headphones\n"),
        "{text}"
    );
    assert!(!text.contains("<h3>") && !text.contains("<p>"), "{text}");
    assert!(
        text.contains("Specifications: ") && text.contains("Category: Headphones"),
        "{text}"
    );
    let review: serde_json::Value = sqlx::query_scalar(&format!(
        "SELECT metadata_ FROM {REVIEWS} WHERE metadata_->>'review_id' = '2'"
    ))
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(review["product_id"], 57);
    env.cleanup().await;
}

#[tokio::test]
async fn a_rerun_embeds_only_what_changed_and_a_downgrade_drops_the_tables() {
    let server = fake(0).await;
    let env = seeded("embed_rerun", Some(&server), 1).await;
    assert_success(&env.orchestrator(&["upgrade", EMBEDDINGS]).await);
    let node_of_review_7: String = sqlx::query_scalar(&format!(
        "SELECT node_id FROM {REVIEWS} WHERE metadata_->>'review_id' = '7'"
    ))
    .fetch_one(&env.pool)
    .await
    .unwrap();

    // Nothing changed: no provider call at all.
    server.reset_counts();
    let output = env.orchestrator(&["rerun", EMBEDDINGS]).await;
    assert_success(&output);
    assert_eq!(
        server.requests(),
        0,
        "a re-run with nothing changed called the provider:\n{}",
        text(&output)
    );

    // One review's text changed: exactly that text is embedded again, in place.
    sqlx::query("UPDATE public.product_reviews SET review = 'The battery died after two days. Very disappointed.' WHERE id = 7")
        .execute(&env.pool)
        .await
        .unwrap();
    server.reset_counts();
    assert_success(&env.orchestrator(&["rerun", EMBEDDINGS]).await);
    assert_eq!(
        server.texts(),
        ["The battery died after two days. Very disappointed."]
    );
    let (node_id, stored): (String, String) = sqlx::query_as(&format!(
        "SELECT node_id, text FROM {REVIEWS} WHERE metadata_->>'review_id' = '7'"
    ))
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        node_id, node_of_review_7,
        "updated in place, not duplicated"
    );
    assert_eq!(
        stored,
        "The battery died after two days. Very disappointed."
    );

    // A review deleted: its vector goes, nothing is embedded.
    sqlx::query("DELETE FROM public.product_reviews WHERE id = 9")
        .execute(&env.pool)
        .await
        .unwrap();
    server.reset_counts();
    assert_success(&env.orchestrator(&["rerun", EMBEDDINGS]).await);
    assert_eq!(server.inputs(), 0);
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(*) FROM {REVIEWS} WHERE metadata_->>'review_id' = '9'"
        ))
        .await,
        0,
        "the deleted review's vector is gone"
    );
    assert_exact_counts(&env).await;

    // The memories' vectors are marked as the pipeline's, with the hash of
    // the text embedded.
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM public.memories
              WHERE vector IS NULL OR payload->>'vector_source' IS DISTINCT FROM 'agenticshop-embeddings'
                 OR payload->>'hash' IS DISTINCT FROM md5(payload->>'data')"
        )
        .await,
        0
    );
    // A memory the shop's memory layer wrote, with its own vector.
    sqlx::query(
        "INSERT INTO public.memories (id, vector, payload)
         VALUES ('00000000-0000-4000-8000-00000000000a', array_fill(0.5, ARRAY[384])::vector,
                 jsonb_build_object('data', 'Asked about trail shoes', 'user_id', '3', 'hash', md5('Asked about trail shoes')))",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    // Downgrade: the embedding tables go, the memories lose the vectors the
    // pipeline wrote, and only those.
    assert_success(&env.orchestrator(&["downgrade", SEED]).await);
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.memories WHERE vector IS NOT NULL")
            .await,
        1,
        "only the shop's own vector is left"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.memories WHERE vector IS NOT NULL AND id = '00000000-0000-4000-8000-00000000000a'")
            .await,
        1
    );
    for table in [PRODUCTS, REVIEWS] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert!(!exists, "{table} after the downgrade");
    }
    env.cleanup().await;
}

#[tokio::test]
async fn a_killed_embed_worker_loses_and_duplicates_nothing() {
    // Slow answers and small tasks, so that the kill lands mid-run.
    let server = fake(150).await;
    let mut env = TestEnv::new("embed_kill").await;
    use_fake(&mut env, &server);
    env.set_env("EMBED_TASK_ROWS", "40");
    env.set_env("EMBEDDING_BATCH_SIZE", "8");
    env.set_env("EMBEDDING_REQUESTS_IN_FLIGHT", "1");
    env.start_worker(&["--role", "seed"]);
    assert_success(&env.orchestrator(&["upgrade", SEED]).await);
    let victim = env.start_worker(&["--role", "embed", "--concurrency", "2"]);
    env.start_worker(&["--role", "embed", "--concurrency", "2"]);
    let run = env.spawn_orchestrator(&["upgrade", EMBEDDINGS]);
    env.kill_while_holding(victim, EMBEDDINGS, "embed", 4).await;
    env.start_worker(&["--role", "embed", "--concurrency", "2"]);
    let output = finished(run, Duration::from_secs(300)).await;
    assert_success(&output);
    assert_exact_counts(&env).await;
    let interrupted: i64 = env.scalar("SELECT count(*) FROM pipeline.tasks WHERE revision = 'cc30da9b96c1' AND kind = 'embed' AND attempts > 1",
    )
    .await;
    assert!(
        interrupted >= 1,
        "the killed worker's task was taken up again"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_rate_limit_with_retry_after_is_waited_out_and_the_run_succeeds() {
    let server = fake(0).await;
    let env = seeded("embed_429", Some(&server), 1).await;
    server.fail_next(
        2,
        429,
        Some(1),
        "Rate limit reached for text-embedding-3-small",
    );
    let output = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert_success(&output);
    assert_exact_counts(&env).await;
    env.cleanup().await;
}

#[tokio::test]
async fn a_request_the_provider_rejects_fails_the_task_with_its_message() {
    let server = fake(0).await;
    let env = seeded("embed_400", Some(&server), 1).await;
    server.fail_always(
        400,
        "Invalid 'input': this model's maximum context length is 8192 tokens",
    );
    let output = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert!(
        !output.status.success(),
        "the upgrade should fail:\n{}",
        text(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("maximum context length is 8192 tokens"),
        "{}",
        text(&output)
    );
    let error: String = sqlx::query_scalar(
        "SELECT last_error FROM pipeline.tasks WHERE revision = 'cc30da9b96c1' AND status = 'failed' ORDER BY id LIMIT 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(error.contains("maximum context length"), "{error}");
    let head: String = sqlx::query_scalar("SELECT version_num FROM public.alembic_version")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(head, SEED, "a failed revision is not recorded");
    env.cleanup().await;
}

#[tokio::test]
async fn a_table_of_another_dimension_stops_the_run_with_what_to_do() {
    let server = fake(0).await;
    let env = seeded("embed_dims", Some(&server), 1).await;
    sqlx::query(
        "CREATE TABLE public.data_review_embeddings (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
           text varchar NOT NULL, metadata_ jsonb, node_id varchar, embedding vector(1536))",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    server.reset_counts();
    let output = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert!(!output.status.success(), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("holds vectors of 1536 dimensions") && stderr.contains("downgrade"),
        "{}",
        text(&output)
    );
    assert_eq!(
        server.inputs(),
        0,
        "nothing embedded before the mismatch was found"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn search_with_the_local_model_finds_the_obvious_match() {
    let model_dir = std::env::var("EMBEDDING_MODEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/agenticshop/all-MiniLM-L6-v2")
        });
    assert!(
        model_dir.join("model.safetensors").exists(),
        "the local model is missing at {}: run scripts/services.sh",
        model_dir.display()
    );
    let mut env = TestEnv::new("embed_search").await;
    env.set_env("EMBEDDING_PROVIDER", "local");
    env.set_env("EMBEDDING_MODEL_DIR", model_dir.to_str().unwrap());
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", SEED]).await);
    assert_success(&env.orchestrator(&["upgrade", EMBEDDINGS]).await);
    assert_exact_counts(&env).await;

    let output = env
        .orchestrator(&[
            "search",
            "Auralis QuietLine 700 wireless headphones",
            "-k",
            "3",
        ])
        .await;
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().nth(1).unwrap_or_default();
    assert!(
        first.contains("Auralis QuietLine 700"),
        "top hit:\n{stdout}"
    );

    let review: String =
        sqlx::query_scalar("SELECT review FROM public.product_reviews WHERE id = 15")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let query: String = review
        .split_whitespace()
        .take(30)
        .collect::<Vec<_>>()
        .join(" ");
    let output = env
        .orchestrator(&["search", &query, "--in", "reviews", "-k", "3"])
        .await;
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first = stdout.lines().nth(1).unwrap_or_default();
    assert_eq!(
        first.split_whitespace().nth(1),
        Some("15"),
        "top hit:\n{stdout}"
    );
    env.cleanup().await;
}

/// Rows that hold a vector: both embedding tables and the memories.
async fn embedded_rows(env: &TestEnv) -> i64 {
    env.scalar(&format!(
        "SELECT (SELECT count(*) FROM {PRODUCTS}) + (SELECT count(*) FROM {REVIEWS})
                  + (SELECT count(*) FROM public.memories WHERE vector IS NOT NULL)"
    ))
    .await
}

#[tokio::test]
async fn upgrade_again_after_a_failure_resumes_and_redoes_only_the_failed_task() {
    let server = fake(0).await;
    let mut env = TestEnv::new("embed_resume").await;
    use_fake(&mut env, &server);
    // Several embed tasks, run one at a time, so that exactly one of them
    // meets the provider's refusal.
    env.set_env("EMBED_TASK_ROWS", "300");
    env.start_worker(&["--role", "all", "--concurrency", "1"]);
    assert_success(&env.orchestrator(&["upgrade", SEED]).await);
    server.fail_next(1, 400, None, "Invalid 'input' (refused once by the test)");

    let failed = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("run the same command again to resume"),
        "{}",
        text(&failed)
    );
    let done_before: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, finished_at::text FROM pipeline.tasks
          WHERE revision = 'cc30da9b96c1' AND status = 'done' ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(
        done_before.len() >= 2,
        "other tasks finished: {done_before:?}"
    );
    let (products, reviews, memories) = source_counts(&env).await;
    let embedded_before = embedded_rows(&env).await;
    assert!(embedded_before < products + reviews + memories);

    server.reset_counts();
    let resumed = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert_success(&resumed);
    assert!(
        String::from_utf8_lossy(&resumed.stderr).contains("resuming revision run"),
        "{}",
        text(&resumed)
    );
    // Only the failed task's rows reached the provider again.
    assert_eq!(
        server.inputs() as i64,
        products + reviews + memories - embedded_before,
        "provider inputs on resume"
    );
    assert_exact_counts(&env).await;
    // The tasks done before were not redone.
    let done_after: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, finished_at::text FROM pipeline.tasks
          WHERE revision = 'cc30da9b96c1' AND id = ANY($1) ORDER BY id",
    )
    .bind(done_before.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(done_after, done_before);
    env.cleanup().await;
}

/// What the current Alembic chain leaves after its base revision: the
/// extensions, and `alembic_version` at 7a35c0d9d159.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stamped_at_the_extensions_base_is_continued_and_downgrade_base_keeps_them() {
    const EXTENSIONS: &str = "7a35c0d9d159";
    let server = fake(0).await;
    let mut env = TestEnv::new("stamped_base").await;
    use_fake(&mut env, &server);
    sqlx::raw_sql(
        "CREATE EXTENSION IF NOT EXISTS vector; CREATE EXTENSION IF NOT EXISTS age;
         CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
         INSERT INTO alembic_version VALUES ('7a35c0d9d159');",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let current = env.orchestrator(&["current"]).await;
    assert_success(&current);
    assert_eq!(
        String::from_utf8_lossy(&current.stdout).trim(),
        format!("{EXTENSIONS} (extensions)")
    );
    env.start_worker(&["--role", "all"]);

    let up = env.orchestrator(&["upgrade", EMBEDDINGS]).await;
    assert_success(&up);
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(
        !stderr.contains(&format!("upgrade {EXTENSIONS}")),
        "the stamped base revision is not run again:\n{stderr}"
    );
    assert!(stderr.contains("(3 revision(s))"), "{stderr}");
    let head: String = sqlx::query_scalar("SELECT version_num FROM public.alembic_version")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(head, EMBEDDINGS);
    let (products, reviews, memories) = source_counts(&env).await;
    assert!(products > 0 && reviews > 0 && memories > 0);
    assert_exact_counts(&env).await;

    let down = env.orchestrator(&["downgrade", "base"]).await;
    assert_success(&down);
    let left: Option<String> = sqlx::query_scalar("SELECT version_num FROM public.alembic_version")
        .fetch_optional(&env.pool)
        .await
        .unwrap();
    assert_eq!(left, None, "downgrade base empties alembic_version");
    let tables: i64 = env.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'",
    )
    .await;
    assert_eq!(tables, 0, "downgrade base drops every application table");
    let extensions: Vec<String> = sqlx::query_scalar(
        "SELECT extname::text FROM pg_extension WHERE extname IN ('vector', 'age') ORDER BY 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        extensions,
        ["age", "vector"],
        "downgrade base leaves the extensions"
    );
    let history = env.orchestrator(&["history"]).await;
    assert_success(&history);
    let history = String::from_utf8_lossy(&history.stdout).to_string();
    let base_line = history.lines().find(|l| l.contains(EXTENSIONS)).unwrap();
    assert!(base_line.contains("not applied"), "{history}");
    env.cleanup().await;
}
