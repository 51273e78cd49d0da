//! The seed revision ef85393336cb, driven as a user would: `worker --role
//! seed` processes and `orchestrator upgrade / rerun / downgrade` commands
//! against a database and queue prefix of each test's own.

use nix::sys::signal::Signal;
use sqlx::Connection as _;
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::data::{copy_sample, edit, replace_first};
use testkit::{assert_success, finished, repo_root, text, TestEnv};

const SEED: &str = "ef85393336cb";
const SCHEMA: &str = "1b33292593a9";

/// Rows of each file of the sample data set (data/README.md).
const SAMPLE_COUNTS: [(&str, i64); 8] = [
    ("users", 8),
    ("products", 60),
    ("features", 60),
    ("product_features", 448),
    ("product_reviews", 1200),
    ("product_images", 184),
    ("variants", 148),
    ("variant_attributes", 289),
];

async fn count(env: &TestEnv, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM public.{table}"))
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("count {table}: {e}"))
}

async fn upgrade_seed(env: &TestEnv, data_dir: &Path) -> std::process::Output {
    env.orchestrator(&["upgrade", SEED, "--data-dir", data_dir.to_str().unwrap()])
        .await
}

/// A database with the sample data set seeded by `workers` seed workers.
async fn seeded(name: &str, workers: usize) -> TestEnv {
    let mut env = TestEnv::new(name).await;
    for _ in 0..workers {
        env.start_worker(&["--role", "seed"]);
    }
    let output = upgrade_seed(&env, &repo_root().join("data")).await;
    assert_success(&output);
    env
}

#[tokio::test]
async fn the_sample_data_set_loads_with_exact_counts_and_values() {
    let env = seeded("seed_sample", 1).await;
    for (table, expected) in SAMPLE_COUNTS {
        assert_eq!(count(&env, table).await, expected, "rows of {table}.csv");
    }
    assert_eq!(env.current_revision().await.as_deref(), Some(SEED));

    // A JSON array into varchar[].
    let hobbies: Vec<String> = sqlx::query_scalar("SELECT hobbies FROM public.users WHERE id = 1")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(hobbies, ["Running", "Podcasts", "Photography"]);
    // A Python-literal list stored as a JSON array.
    let categories: serde_json::Value =
        sqlx::query_scalar("SELECT categories FROM public.features WHERE id = 1")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        categories,
        serde_json::json!(["Headphones", "Tablets", "Smartwatches"])
    );
    let kind: String =
        sqlx::query_scalar("SELECT jsonb_typeof(categories) FROM public.features WHERE id = 2")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(kind, "array");
    // HTML kept verbatim; specifications a JSON object.
    let (description, spec_kind): (String, String) = sqlx::query_as(
        "SELECT description, jsonb_typeof(specifications) FROM public.products WHERE id = 1",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        description.starts_with("<h3>Auralis QuietLine 700 Wireless Headphones</h3>\n<p>Our flagship over-ear headphones:"),
        "{description}"
    );
    assert_eq!(spec_kind, "object");
    // `5` (review 8) and `5.00` (review 11) are both 5.00.
    let ratings: Vec<String> = sqlx::query_scalar(
        "SELECT rating::text FROM public.product_reviews WHERE id IN (8, 11) ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(ratings, ["5.00", "5.00"]);
    // A quoted field with a newline (review 15), and empty fields as NULL.
    let (review, feature_id, sentiment): (String, Option<i32>, Option<String>) = sqlx::query_as(
        "SELECT review, feature_id, sentiment FROM public.product_reviews WHERE id = 15",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(review.contains('\n'), "{review:?}");
    assert!(review.starts_with("Had them for a month. My commute is 45 minutes by bus each way."));
    let labelled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM public.product_reviews WHERE sentiment IS NOT NULL",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        labelled, 364,
        "reviews with a sentiment (the others are empty, hence NULL)"
    );
    let _ = (feature_id, sentiment);
    // Non-ASCII text intact.
    let cafe: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM public.product_reviews WHERE review LIKE '%café%'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(cafe > 0);
    env.cleanup().await;
}

#[tokio::test]
async fn after_seeding_inserts_without_ids_succeed() {
    let env = seeded("seed_sequences", 1).await;
    let id: i32 = sqlx::query_scalar(
        "INSERT INTO public.product_reviews (product_id, user_name, review, rating) VALUES (1, 'New', 'Fine.', 4) RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .expect("an insert without an id after seeding");
    assert_eq!(id, 1201);
    for (table, insert) in [
        ("products", "INSERT INTO public.products (name) VALUES ('x') RETURNING id"),
        ("users", "INSERT INTO public.users (first_name) VALUES ('x') RETURNING id"),
        ("features", "INSERT INTO public.features (feature_name, categories) VALUES ('New feature', '[]') RETURNING id"),
        ("variants", "INSERT INTO public.variants (product_id, price, in_stock) VALUES (1, 1, 1) RETURNING id"),
    ] {
        let id: i32 = sqlx::query_scalar(insert)
            .fetch_one(&env.pool)
            .await
            .unwrap_or_else(|e| panic!("insert into {table}: {e}"));
        let expected = SAMPLE_COUNTS.iter().find(|(t, _)| *t == table).unwrap().1 + 1;
        assert_eq!(id as i64, expected, "{table}");
    }
    env.cleanup().await;
}

#[tokio::test]
async fn memories_are_one_per_preference_with_the_payload_fields() {
    let env = seeded("seed_memories", 1).await;
    let rows: Vec<(uuid::Uuid, Option<String>, serde_json::Value)> =
        sqlx::query_as("SELECT id, vector::text, payload FROM public.memories ORDER BY payload->>'user_id', payload->>'data'")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 24, "one memory per preference of users.csv");
    for (_, vector, payload) in &rows {
        assert!(
            vector.is_none(),
            "vector is left for the embedding revision"
        );
        let data = payload["data"].as_str().expect("data");
        assert!(payload["user_id"].is_string(), "{payload}");
        assert!(!data.is_empty());
        assert!(payload["created_at"].is_string(), "{payload}");
    }
    let bad_hashes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM public.memories WHERE payload->>'hash' IS DISTINCT FROM md5(payload->>'data')")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(bad_hashes, 0, "hash is the md5 of the text");
    let maya: Vec<String> = sqlx::query_scalar(
        "SELECT payload->>'data' FROM public.memories WHERE payload->>'user_id' = '1' ORDER BY payload->>'data'",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        maya,
        [
            "Prefers over-ear headphones with strong noise cancellation",
            "Values long battery life over a slim design",
            "Wants a running watch with accurate GPS and heart rate tracking",
        ]
    );
    let dims: i32 = sqlx::query_scalar(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'public.memories'::regclass AND attname = 'vector'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(dims, 384, "vector(MEM0_EMBEDDING_MODEL_DIMS)");
    env.cleanup().await;
}

/// One kind of bad input: how to make it, and what the error must say.
struct BadInput {
    what: &'static str,
    corrupt: fn(&Path),
    expected: &'static [&'static str],
}

const BAD_INPUTS: &[BadInput] = &[
    BadInput {
        what: "wrong number of fields",
        corrupt: |dir| {
            edit(dir, "variants.csv", |c| {
                replace_first(c, b"\n4,1,279.99,166\n", b"\n4,1,279.99\n")
            })
        },
        expected: &["variants.csv line 5", "expected 4 fields"],
    },
    BadInput {
        what: "a number that does not parse",
        corrupt: |dir| {
            edit(dir, "variants.csv", |c| {
                replace_first(c, b"\n2,1,279.99,0\n", b"\n2,1,27x.99,0\n")
            })
        },
        expected: &[
            "variants.csv line 3, column price",
            "expected a number",
            "27x.99",
        ],
    },
    BadInput {
        what: "JSON that does not parse",
        corrupt: |dir| {
            edit(dir, "products.csv", |c| {
                replace_first(c, b"\"{\"\"Type\"\"", b"\"{\"\"Type\"\" oops")
            })
        },
        expected: &["products.csv line 2, column specifications", "expected JSON"],
    },
    BadInput {
        what: "a foreign key that points nowhere",
        corrupt: |dir| {
            edit(dir, "product_reviews.csv", |c| {
                let c = replace_first(c, b"\n\"1\",\"30\",", b"\n\"1\",\"9999\",");
                replace_first(c, b"\n\"2\",\"57\",", b"\n\"2\",\"8888\",")
            })
        },
        expected: &[
            "product_reviews.csv line 2, column product_id: 9999 points nowhere: public.products has no row with id 9999",
            "product_reviews.csv line 3, column product_id: 8888 points nowhere",
        ],
    },
    BadInput {
        what: "a duplicate id",
        corrupt: |dir| {
            edit(dir, "product_images.csv", |c| {
                replace_first(
                    c,
                    b"\n2,1,data/images/1-image-2.png\n",
                    b"\n1,1,data/images/1-image-2.png\n",
                )
            })
        },
        expected: &["product_images.csv lines 2, 3, column id", "duplicate id 1"],
    },
    BadInput {
        what: "a missing required column",
        corrupt: |dir| {
            edit(dir, "variant_attributes.csv", |c| {
                replace_first(c, b"attribute_name", b"attr_name")
            })
        },
        expected: &[
            "variant_attributes.csv line 1",
            "no column \"attribute_name\"",
        ],
    },
    BadInput {
        what: "a file that is not UTF-8",
        corrupt: |dir| {
            edit(dir, "product_reviews.csv", |c| {
                replace_first(c, "café".as_bytes(), b"caf\xe9")
            })
        },
        expected: &[
            "product_reviews.csv line ",
            "column review:",
            "not valid UTF-8",
        ],
    },
    BadInput {
        what: "a missing file",
        corrupt: |dir| std::fs::remove_file(dir.join("product_images.csv")).unwrap(),
        expected: &["product_images.csv is missing"],
    },
];

#[tokio::test]
async fn each_kind_of_bad_input_is_named_and_leaves_no_rows_behind() {
    let mut env = TestEnv::new("seed_bad_input").await;
    env.start_worker(&["--role", "seed"]);
    env.start_worker(&["--role", "seed"]);
    // Small tasks, so that some ranges load (and must be undone) before the bad one fails.
    env.set_env("SEED_TASK_ROWS", "50");
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    for bad in BAD_INPUTS {
        let dir = copy_sample("bad");
        (bad.corrupt)(&dir);
        let output = upgrade_seed(&env, &dir).await;
        let shown = text(&output);
        assert!(
            !output.status.success(),
            "{}: the seed should fail:\n{shown}",
            bad.what
        );
        for needle in bad.expected {
            assert!(
                shown.contains(needle),
                "{}: the error should say {needle:?}:\n{shown}",
                bad.what
            );
        }
        for (table, _) in SAMPLE_COUNTS {
            assert_eq!(
                count(&env, table).await,
                0,
                "{}: {table} must be left empty",
                bad.what
            );
        }
        let memories: bool =
            sqlx::query_scalar("SELECT to_regclass('public.memories') IS NOT NULL")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert!(
            !memories,
            "{}: the memory table did not exist before and must not now",
            bad.what
        );
        let staging: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'seed%'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(staging, 0, "{}: no staging left", bad.what);
        assert_eq!(
            env.current_revision().await.as_deref(),
            Some(SCHEMA),
            "{}",
            bad.what
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    // Fixed, it loads.
    let output = upgrade_seed(&env, &repo_root().join("data")).await;
    assert_success(&output);
    for (table, expected) in SAMPLE_COUNTS {
        assert_eq!(
            count(&env, table).await,
            expected,
            "rows of {table}.csv after the fix"
        );
    }
    env.cleanup().await;
}

/// A failed fresh seed empties the tables it had started to fill; a session
/// of the shop's holding one of them makes that undo wait, but only up to
/// TASK_LOCK_TIMEOUT_SECS: the command then fails, saying so, and the same
/// command run once the lock is gone rolls back as usual. (Before, the
/// orchestrator waited for the lock for ever.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fresh_seed_whose_undo_meets_a_held_lock_fails_in_bounded_time() {
    let mut env = TestEnv::new("seed_undo_lock").await;
    env.set_env("TASK_LOCK_TIMEOUT_SECS", "1");
    env.start_worker(&["--role", "seed"]);
    let dir = copy_sample("undo-lock");
    edit(&dir, "variants.csv", |c| {
        replace_first(c, b"\n2,1,279.99,0\n", b"\n2,1,27x.99,0\n")
    });
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    // Compatible with the seed's own writes, not with the undo's TRUNCATE.
    let mut shop = sqlx::PgConnection::connect(&env.database_url)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE public.users IN ACCESS SHARE MODE")
        .execute(&mut shop)
        .await
        .unwrap();
    let data_dir = dir.display().to_string();
    let failed = env
        .orchestrator_within(
            &["upgrade", SEED, "--data-dir", &data_dir],
            Duration::from_secs(120),
        )
        .await;
    let shown = text(&failed);
    // A failed run exits 1, as the README documents.
    assert_eq!(failed.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("variants.csv line 3, column price"),
        "{shown}"
    );
    assert!(
        shown.contains("undoing what it had done failed too"),
        "{shown}"
    );
    assert!(shown.contains("lock timeout"), "{shown}");

    sqlx::raw_sql("ROLLBACK").execute(&mut shop).await.unwrap();
    let again = upgrade_seed(&env, &dir).await;
    let shown = text(&again);
    assert_eq!(again.status.code(), Some(1), "{shown}");
    assert!(shown.contains("was rolled back"), "{shown}");
    assert_eq!(count(&env, "users").await, 0);
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn bad_records_of_a_file_are_all_reported_up_to_a_cap() {
    let mut env = TestEnv::new("seed_many_errors").await;
    env.start_worker(&["--role", "seed"]);
    let dir = copy_sample("many");
    edit(&dir, "variants.csv", |c| {
        let text = String::from_utf8(c).unwrap();
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if (2..=4).contains(&i) {
                    l.replace(".99", ".9x")
                } else {
                    l.to_string()
                }
            })
            .collect();
        (lines.join("\n") + "\n").into_bytes()
    });
    let output = upgrade_seed(&env, &dir).await;
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    for line in 3..=5 {
        assert!(
            shown.contains(&format!("variants.csv line {line}, column price")),
            "line {line}:\n{shown}"
        );
    }
    assert_eq!(count(&env, "users").await, 0);
    std::fs::remove_dir_all(&dir).ok();

    // Every record bad: the first 20 are named, and the message says there are more.
    let dir = copy_sample("all-bad");
    edit(&dir, "variants.csv", |c| {
        let text = String::from_utf8(c).unwrap();
        let mut lines = text.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for line in lines {
            let (rest, _) = line.rsplit_once(',').unwrap();
            out.push_str(&format!("{rest},many\n"));
        }
        out.into_bytes()
    });
    let output = upgrade_seed(&env, &dir).await;
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("variants.csv has more than 20 bad records; the first 20"),
        "{shown}"
    );
    assert!(
        shown.contains("variants.csv line 21, column in_stock: expected an integer"),
        "{shown}"
    );
    assert!(!shown.contains("variants.csv line 22,"), "{shown}");
    assert_eq!(count(&env, "users").await, 0);
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

/// Every seeded table's content (without `created_at`, which is the load time).
async fn fingerprint(env: &TestEnv) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (table, _) in SAMPLE_COUNTS {
        let digest: String = sqlx::query_scalar(&format!(
            "SELECT md5(coalesce(string_agg((to_jsonb(t) - 'created_at')::text, '|' ORDER BY id), '')) FROM public.{table} t"
        ))
        .fetch_one(&env.pool)
        .await
        .unwrap();
        out.push((table.to_string(), digest));
    }
    let memories: String = sqlx::query_scalar(
        "SELECT md5(string_agg(id::text || (payload - 'created_at')::text, '|' ORDER BY id)) FROM public.memories",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    out.push(("memories".into(), memories));
    out
}

#[tokio::test]
async fn a_file_split_across_several_workers_loads_the_same_rows_as_one_worker() {
    let one = seeded("seed_one_worker", 1).await;
    let mut many = TestEnv::new("seed_many_workers").await;
    many.set_env("SEED_TASK_ROWS", "37");
    for _ in 0..3 {
        many.start_worker(&["--role", "seed", "--concurrency", "2"]);
    }
    assert_success(&upgrade_seed(&many, &repo_root().join("data")).await);
    let (tasks, workers): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT worker) FROM pipeline.tasks WHERE revision = $1 AND label LIKE 'product_reviews.csv%'",
    )
    .bind(SEED)
    .fetch_one(&many.pool)
    .await
    .unwrap();
    assert_eq!(tasks, 33, "1200 reviews in ranges of 37");
    assert!(
        workers >= 2,
        "the review ranges were shared by {workers} worker(s)"
    );
    assert_eq!(fingerprint(&one).await, fingerprint(&many).await);
    one.cleanup().await;
    many.cleanup().await;
}

#[tokio::test]
async fn a_seed_worker_killed_mid_load_leaves_exact_counts_and_no_duplicates() {
    let mut env = TestEnv::new("seed_killed_worker").await;
    // `  product_reviews.csv   200000 rows ...`: expected rows per table from the generator's summary.
    let (dir, summary) = env.generate_data("seed-test-big", 200_000).await;
    let expected: Vec<(String, i64)> = summary
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let file = words.next()?.strip_suffix(".csv")?.to_string();
            let rows = words.next()?.parse().ok()?;
            SAMPLE_COUNTS
                .iter()
                .any(|(t, _)| *t == file)
                .then_some((file, rows))
        })
        .collect();
    assert_eq!(expected.len(), 8, "{summary}");

    env.set_env("SEED_TASK_ROWS", "5000");
    let victim = env.start_worker(&["--role", "seed", "--concurrency", "2"]);
    env.start_worker(&["--role", "seed", "--concurrency", "2"]);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    let orchestrator =
        env.spawn_orchestrator(&["upgrade", SEED, "--data-dir", dir.to_str().unwrap()]);
    let pool = env.pool.clone();
    env.eventually(
        "review ranges done, and one running on the worker to kill",
        Duration::from_secs(120),
        || {
            let pool = pool.clone();
            async move {
                let (done, running_on_victim): (i64, i64) = sqlx::query_as(
                    "SELECT count(*) FILTER (WHERE status = 'done'),
                        count(*) FILTER (WHERE status = 'running' AND worker LIKE '%:' || $1)
                   FROM pipeline.tasks WHERE label LIKE 'product_reviews.csv%'",
                )
                .bind(victim.to_string())
                .fetch_one(&pool)
                .await
                .unwrap_or((0, 0));
                done >= 3 && running_on_victim > 0
            }
        },
    )
    .await;
    env.signal_worker(victim, Signal::SIGKILL);
    env.start_worker(&["--role", "seed", "--concurrency", "2"]);
    let output = finished(orchestrator, Duration::from_secs(300)).await;
    assert!(output.status.success(), "{}", text(&output));
    let redone: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pipeline.tasks WHERE label LIKE 'product_reviews.csv%' AND attempts > 1 AND status = 'done'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(
        redone >= 1,
        "the range the killed worker held was loaded again by another"
    );
    for (table, rows) in &expected {
        assert_eq!(count(&env, table).await, *rows, "rows of {table}");
        let distinct: i64 =
            sqlx::query_scalar(&format!("SELECT count(DISTINCT id) FROM public.{table}"))
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(distinct, *rows, "distinct ids of {table}");
    }
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn a_rerun_updates_changed_rows_adds_new_ones_and_leaves_the_rest_untouched() {
    let env = seeded("seed_rerun", 1).await;
    let dir = copy_sample("rerun");
    edit(&dir, "product_reviews.csv", |c| {
        let c = replace_first(
            c,
            b"\n\"2\",\"57\",\"techdad425\",\"Really happy",
            b"\n\"2\",\"57\",\"techdad425\",\"Changed: really happy",
        );
        let mut c = c;
        c.extend_from_slice(
            b"\"5000\",\"1\",\"Newcomer\",\"Brand new review, added later.\",\"4\",\"\",\"\"\n",
        );
        c
    });
    let xmin_before: Vec<(i32, String)> = sqlx::query_as(
        "SELECT id, xmin::text FROM public.product_reviews WHERE id IN (1, 3) ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let memories_before = fingerprint(&env).await.pop().unwrap();
    let output = env
        .orchestrator(&["rerun", SEED, "--data-dir", dir.to_str().unwrap()])
        .await;
    assert_success(&output);
    assert_eq!(count(&env, "product_reviews").await, 1201);
    let changed: String =
        sqlx::query_scalar("SELECT review FROM public.product_reviews WHERE id = 2")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(changed.starts_with("Changed: really happy"), "{changed}");
    let added: String =
        sqlx::query_scalar("SELECT user_name FROM public.product_reviews WHERE id = 5000")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(added, "Newcomer");
    let xmin_after: Vec<(i32, String)> = sqlx::query_as(
        "SELECT id, xmin::text FROM public.product_reviews WHERE id IN (1, 3) ORDER BY id",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        xmin_before, xmin_after,
        "unchanged rows are not written again"
    );
    assert_eq!(
        fingerprint(&env).await.pop().unwrap(),
        memories_before,
        "memories unchanged"
    );
    assert_eq!(
        env.current_revision().await.as_deref(),
        Some(SEED),
        "a re-run does not move alembic_version"
    );
    // The next id after the new largest one.
    let id: i32 = sqlx::query_scalar(
        "INSERT INTO public.product_reviews (product_id) VALUES (1) RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(id, 5001);
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn a_failed_rerun_leaves_the_tables_as_they_were() {
    let env = seeded("seed_rerun_fails", 1).await;
    let before = fingerprint(&env).await;
    let dir = copy_sample("rerun-bad");
    edit(&dir, "product_reviews.csv", |c| {
        let c = replace_first(
            c,
            b"\n\"2\",\"57\",\"techdad425\",\"Really happy",
            b"\n\"2\",\"57\",\"techdad425\",\"Changed",
        );
        replace_first(c, b"\n\"1\",\"30\",", b"\n\"1\",\"9999\",")
    });
    let output = env
        .orchestrator(&["rerun", SEED, "--data-dir", dir.to_str().unwrap()])
        .await;
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("product_reviews.csv line 2, column product_id: 9999 points nowhere"),
        "{shown}"
    );
    assert_eq!(fingerprint(&env).await, before);
    let staging: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'pipeline' AND tablename LIKE 'seed%'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(staging, 0, "staging is dropped");
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn downgrade_empties_the_seeded_tables_and_drops_the_memory_table() {
    let env = seeded("seed_downgrade", 1).await;
    assert_success(&env.orchestrator(&["downgrade", SCHEMA]).await);
    for (table, _) in SAMPLE_COUNTS {
        assert_eq!(count(&env, table).await, 0, "{table}");
    }
    let memories: bool = sqlx::query_scalar("SELECT to_regclass('public.memories') IS NOT NULL")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(!memories);
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    // And it seeds again.
    assert_success(&upgrade_seed(&env, &repo_root().join("data")).await);
    assert_eq!(count(&env, "product_reviews").await, 1200);
    env.cleanup().await;
}

/// A copy of the sample data set written in the older naming of the
/// original: four files renamed, `review` back to `review_text`, and
/// `product_features.csv` with the extra `feature_name` column.
fn copy_sample_in_older_names(name: &str) -> PathBuf {
    let dir = copy_sample(name);
    for (current, older) in [
        ("products.csv", "product.csv"),
        ("product_reviews.csv", "review.csv"),
        ("product_images.csv", "product_image.csv"),
    ] {
        std::fs::rename(dir.join(current), dir.join(older)).unwrap();
    }
    edit(&dir, "review.csv", |c| {
        replace_first(
            c,
            b"\"user_name\",\"review\",",
            b"\"user_name\",\"review_text\",",
        )
    });
    let features = std::fs::read_to_string(dir.join("features.csv")).unwrap();
    let names: std::collections::HashMap<String, String> = features
        .lines()
        .skip(1)
        .map(|l| {
            let mut fields = l.splitn(3, ',');
            let id = fields.next().unwrap().to_string();
            let name = fields.next().unwrap().to_string();
            assert!(!name.starts_with('"'), "a quoted feature name: {l}");
            (id, name)
        })
        .collect();
    edit(&dir, "product_features.csv", |c| {
        let text = String::from_utf8(c).unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            if i == 0 {
                assert_eq!(line, "id,product_id,feature_id");
                out.push_str("id,product_id,feature_id,feature_name\n");
            } else {
                let feature = line.rsplit(',').next().unwrap();
                out.push_str(&format!("{line},\"{}\"\n", names[feature]));
            }
        }
        out.into_bytes()
    });
    dir
}

/// Every row of every seeded table (and the memories), without the
/// `created_at` the database stamps: `(table, rows, md5 of the rows in id order)`.
async fn seeded_rows(env: &TestEnv) -> Vec<(String, i64, String)> {
    let mut tables: Vec<String> = SAMPLE_COUNTS.iter().map(|(t, _)| t.to_string()).collect();
    tables.push("memories".into());
    let mut out = Vec::new();
    for table in tables {
        let (rows, digest): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg((to_jsonb(t) - 'created_at' #- '{{payload,created_at}}')::text, E'\\n' ORDER BY t.id))
               FROM public.{table} t"
        ))
        .fetch_one(&env.pool)
        .await
        .unwrap_or_else(|e| panic!("rows of {table}: {e}"));
        out.push((table, rows, digest.unwrap_or_default()));
    }
    out
}

#[tokio::test]
async fn a_data_directory_in_the_older_names_loads_row_for_row_like_the_current_one() {
    let mut env = TestEnv::new("seed_older_names").await;
    env.set_env("SEED_TASK_ROWS", "300");
    let dir = copy_sample_in_older_names("older");
    let output = env
        .orchestrator(&[
            "upgrade",
            SEED,
            "--data-dir",
            dir.to_str().unwrap(),
            "--with-workers",
            "1",
        ])
        .await;
    assert_success(&output);
    let shown = text(&output);
    let mapped: Vec<&str> = shown
        .lines()
        .filter(|l| l.contains("older naming"))
        .collect();
    assert_eq!(mapped.len(), 1, "one line names what was mapped:\n{shown}");
    for needle in [
        "product.csv → products",
        "review.csv → product_reviews (column review_text → review)",
        "product_image.csv → product_images",
        "product_features.csv (column feature_name ignored",
    ] {
        assert!(mapped[0].contains(needle), "{needle:?} in {:?}", mapped[0]);
    }
    assert!(
        !shown.contains("ignoring column"),
        "feature_name is named by the mapping line only:\n{shown}"
    );
    for (table, expected) in SAMPLE_COUNTS {
        assert_eq!(count(&env, table).await, expected, "rows of {table}");
    }
    let review: String =
        sqlx::query_scalar("SELECT review FROM public.product_reviews WHERE id = 15")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(review.starts_with("Had them for a month."), "{review:?}");
    let older = seeded_rows(&env).await;

    // A re-run merges through staging: the older column name maps there too.
    edit(&dir, "review.csv", |c| {
        replace_first(c, b"Had them for a month.", b"Had them for a year.")
    });
    let rerun = env
        .orchestrator(&[
            "rerun",
            SEED,
            "--data-dir",
            dir.to_str().unwrap(),
            "--with-workers",
            "1",
        ])
        .await;
    assert_success(&rerun);
    let review: String =
        sqlx::query_scalar("SELECT review FROM public.product_reviews WHERE id = 15")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(review.starts_with("Had them for a year."), "{review:?}");

    // The same data set in the current names, into the same (emptied) tables.
    assert_success(
        &env.orchestrator(&["downgrade", SCHEMA, "--with-workers", "1"])
            .await,
    );
    assert_eq!(count(&env, "product_reviews").await, 0);
    let data = repo_root().join("data");
    let output = env
        .orchestrator(&[
            "upgrade",
            SEED,
            "--data-dir",
            data.to_str().unwrap(),
            "--with-workers",
            "1",
        ])
        .await;
    assert_success(&output);
    assert!(!text(&output).contains("older naming"), "{}", text(&output));
    assert_eq!(seeded_rows(&env).await, older);
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn a_directory_with_both_spellings_of_a_table_is_refused_before_anything_is_written() {
    let mut env = TestEnv::new("seed_both_spellings").await;
    env.start_worker(&["--role", "seed"]);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    let dir = copy_sample("both");
    let older = copy_sample_in_older_names("both-older");
    std::fs::copy(older.join("review.csv"), dir.join("review.csv")).unwrap();
    let output = upgrade_seed(&env, &dir).await;
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("both product_reviews.csv and review.csv"),
        "{shown}"
    );
    for (table, _) in SAMPLE_COUNTS {
        assert_eq!(count(&env, table).await, 0, "{table} must be left empty");
    }
    let memories: bool = sqlx::query_scalar("SELECT to_regclass('public.memories') IS NOT NULL")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(!memories, "the memory table must not be created");
    let planned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pipeline.revision_runs WHERE revision = $1")
            .bind(SEED)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(planned, 0, "no seed run was planned");
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&older).ok();
    env.cleanup().await;
}

#[tokio::test]
async fn a_pruning_rerun_deletes_only_the_seeds_rows_gone_from_the_files() {
    let env = seeded("seed_prune", 1).await;
    // The shop's own rows: a review it took, and a memory its memory layer
    // wrote (no origin marker), both about things the files will drop.
    let shop_review: i32 = sqlx::query_scalar(
        "INSERT INTO public.product_reviews (product_id, user_name, review) VALUES (1, 'shopper', 'Written in the shop') RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO public.memories (id, payload) VALUES ('00000000-0000-4000-8000-000000000008',
           jsonb_build_object('data', 'Asked the shop about trail shoes', 'user_id', '8', 'hash', md5('Asked the shop about trail shoes')))",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let seeded_memories_of_8 =
        "SELECT count(*) FROM public.memories WHERE payload->>'user_id' = '8' AND payload->>'origin' = 'agenticshop-seed'";
    assert_eq!(env.scalar(seeded_memories_of_8).await, 3);
    let reviews = count(&env, "product_reviews").await;
    let users = count(&env, "users").await;

    let dir = copy_sample("prune");
    edit(&dir, "product_reviews.csv", |c| {
        let start = c.windows(5).position(|w| w == b"\n\"3\",").unwrap() + 1;
        let end = start + c[start..].iter().position(|&b| b == b'\n').unwrap() + 1;
        [&c[..start], &c[end..]].concat()
    });
    edit(&dir, "users.csv", |c| {
        let start = c.windows(3).position(|w| w == b"\n8,").unwrap() + 1;
        c[..start].to_vec()
    });
    let rerun = |prune: bool| {
        let mut args = vec!["rerun", SEED, "--data-dir", dir.to_str().unwrap()];
        if prune {
            args.push("--prune");
        }
        let env = &env;
        async move { env.orchestrator(&args).await }
    };

    // Without --prune a re-run only upserts: nothing is deleted.
    assert_success(&rerun(false).await);
    assert_eq!(count(&env, "product_reviews").await, reviews);
    assert_eq!(env.scalar(seeded_memories_of_8).await, 3);

    assert_success(&rerun(true).await);
    assert_eq!(count(&env, "product_reviews").await, reviews - 1);
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.product_reviews WHERE id = 3")
            .await,
        0,
        "the review gone from the file is deleted"
    );
    assert_eq!(
        env.scalar(&format!(
            "SELECT count(*) FROM public.product_reviews WHERE id = {shop_review} AND review = 'Written in the shop'"
        ))
        .await,
        1,
        "the shop's own review is kept"
    );
    assert_eq!(count(&env, "users").await, users - 1);
    assert_eq!(env.scalar(seeded_memories_of_8).await, 0);
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.memories WHERE id = '00000000-0000-4000-8000-000000000008'")
            .await,
        1,
        "the shop's own memory is kept"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.memories WHERE payload->>'user_id' = '1'")
            .await,
        3,
        "memories still in the files are kept"
    );
    // The sequence never goes back: the next review comes after the shop's.
    let next: i32 = sqlx::query_scalar(
        "INSERT INTO public.product_reviews (product_id) VALUES (1) RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(next, shop_review + 1);

    // Only the seed prunes, and the refusal says so.
    let refused = env
        .orchestrator(&["rerun", "1b33292593a9", "--prune"])
        .await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("only the seed revision deletes rows gone from its files"),
        "{}",
        text(&refused)
    );
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}

/// A data file edited between planning and loading, keeping its size and
/// its modification time (`touch -r`): the load task sees other content
/// than was planned, fails with what changed, and nothing is loaded; the
/// command run again loads the file as it is now.
#[tokio::test]
async fn a_file_edited_after_planning_keeping_its_size_and_mtime_fails_clearly_and_loads_nothing() {
    let mut env = TestEnv::new("seed_same_size_edit").await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", SCHEMA]).await);
    env.kill_workers().await;
    let dir = copy_sample("same-size-edit");
    let file = dir.join("product_reviews.csv");
    // `touch -r`: the first file gets the second's times.
    let touch_like = |target: &Path, source: &Path| {
        let touched = std::process::Command::new("touch")
            .arg("-r")
            .arg(source)
            .arg(target)
            .status()
            .unwrap();
        assert!(touched.success());
    };
    let reference = dir.join("mtime-reference");
    touch_like(&reference, &file);
    let planned = std::fs::metadata(&file).unwrap();

    let run = env.spawn_orchestrator(&["upgrade", SEED, "--data-dir", dir.to_str().unwrap()]);
    // Planned: its tasks (ranges and hashes) are stored, the first queued.
    env.wait_for_tasks("queued", 1, Duration::from_secs(60))
        .await;
    edit(&dir, "product_reviews.csv", |c| {
        replace_first(c, b"\"Really happy", b"\"REALLY HAPPY")
    });
    touch_like(&file, &reference);
    let edited = std::fs::metadata(&file).unwrap();
    assert_eq!(edited.len(), planned.len());
    assert_eq!(edited.modified().unwrap(), planned.modified().unwrap());
    std::fs::remove_file(&reference).unwrap();

    env.start_worker(&["--role", "seed"]);
    let output = finished(run, Duration::from_secs(300)).await;
    let shown = text(&output);
    assert!(!output.status.success(), "{shown}");
    assert!(
        shown.contains("product_reviews.csv changed since the seed was planned"),
        "{shown}"
    );
    for (table, _) in SAMPLE_COUNTS {
        assert_eq!(count(&env, table).await, 0, "{table} must be left empty");
    }
    assert_eq!(env.current_revision().await.as_deref(), Some(SCHEMA));

    assert_success(&upgrade_seed(&env, &dir).await);
    let review: String =
        sqlx::query_scalar("SELECT review FROM public.product_reviews WHERE id = 2")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(review.starts_with("REALLY HAPPY"), "{review}");
    std::fs::remove_dir_all(&dir).ok();
    env.cleanup().await;
}
