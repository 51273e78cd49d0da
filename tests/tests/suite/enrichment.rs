//! The enrichment revision f3e916f4940d, driven as a user would: `worker`
//! processes and `orchestrator upgrade / rerun / downgrade` against a
//! database and queue prefix of each test's own. The embeddings revision
//! before it runs against the fake OpenAI server (instant vectors); the
//! enrichment itself uses the local analyser, or the fake's chat
//! completions where a test says so.

use nix::sys::signal::Signal;
use std::path::Path;
use std::time::Duration;
use testkit::data::{copy_sample, read_csv, write_csv};
use testkit::fake_openai::{FakeOpenAi, FakeOptions};
use testkit::{assert_success, finished, text, TestEnv};

const EMBEDDINGS: &str = "cc30da9b96c1";
const ENRICHMENT: &str = "f3e916f4940d";

/// Embeddings of 384 dimensions from the fake, at once.
async fn instant_embeddings(env: &mut TestEnv) -> FakeOpenAi {
    let server = FakeOpenAi::start(FakeOptions {
        delay: Duration::ZERO,
        dims: 384,
        record_texts: false,
    })
    .await
    .expect("start the fake OpenAI server");
    env.embed_with(&server, 384);
    server
}

/// Reviews of product 1 of the sample data (features 1 Battery Life,
/// 2 Noise Cancellation, 4 Comfort, 5 Sound Quality, 20 Touch Controls, …),
/// written for this test: `(id, text, rating, feature_id, sentiment)`.
const REVIEWS: [(i64, &str, &str, &str, &str); 6] = [
    // Both values given: the data's values stand, however the text reads.
    (1, "The battery died within two hours.", "2", "1", "positive"),
    // A feature without its sentiment.
    (
        2,
        "After an hour the ear cups press on my head and start to hurt. Not comfortable at all.",
        "3",
        "4",
        "",
    ),
    // Neither, and two aspects with opposite sentiments.
    (
        3,
        "The battery easily lasts a whole week. The noise cancellation, however, is weak and disappointing.",
        "3",
        "",
        "",
    ),
    // None of the product's features.
    (
        4,
        "Arrived two days late in a dented box. The courier left it with my neighbour.",
        "3",
        "",
        "",
    ),
    // Text that must come back verbatim in the evidence.
    (
        5,
        "He said \"wow\" \u{2014} the sound quality is worth every $$ and more \\o/\nS\u{fc}\u{df} und klar: the sound quality is great!",
        "5",
        "",
        "",
    ),
    // Negation under four stars.
    (6, "The touch controls are not good at all.", "4", "", ""),
];

fn write_reviews(dir: &Path) {
    let records: Vec<Vec<String>> = REVIEWS
        .iter()
        .map(|(id, review, rating, feature, sentiment)| {
            vec![
                id.to_string(),
                "1".into(),
                "tester".into(),
                review.to_string(),
                rating.to_string(),
                feature.to_string(),
                sentiment.to_string(),
            ]
        })
        .collect();
    // The sample's own header (the callers copy the sample first).
    let (header, _) = read_csv(dir, "product_reviews.csv");
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    write_csv(dir, "product_reviews.csv", &header, &records);
}

async fn main_values(env: &TestEnv) -> Vec<(i32, Option<i32>, Option<String>)> {
    sqlx::query_as("SELECT id, feature_id, sentiment FROM public.product_reviews ORDER BY id")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn aspects(env: &TestEnv, review: i32) -> Vec<(i32, String, String)> {
    sqlx::query_as(
        "SELECT feature_id, sentiment, evidence FROM public.review_feature_sentiments
          WHERE review_id = $1 ORDER BY feature_id",
    )
    .bind(review)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

/// `reviews_sent` of the last enrichment revision run.
async fn last_run_sent(env: &TestEnv) -> i64 {
    env.scalar(
        "SELECT coalesce(sum(reviews_sent), 0)::bigint FROM pipeline.enrichment_usage
          WHERE revision_run_id = (SELECT max(id) FROM pipeline.revision_runs WHERE revision = 'f3e916f4940d')",
    )
    .await
}

#[tokio::test]
async fn the_local_analyser_fills_only_what_is_missing_reruns_only_changes_and_downgrade_restores_exactly(
) {
    let mut env = TestEnv::new("enrich_local").await;
    let _embeddings = instant_embeddings(&mut env).await;
    let dir = copy_sample("enrich-local");
    write_reviews(&dir);
    env.start_worker(&["--role", "all"]);
    let data_dir = dir.to_str().unwrap();
    let output = env
        .orchestrator(&["upgrade", ENRICHMENT, "--data-dir", data_dir])
        .await;
    assert_success(&output);
    let before = {
        let mut values = main_values(&env).await;
        // What the CSV file said, as the seed loaded it.
        for v in values.iter_mut() {
            let csv = REVIEWS.iter().find(|r| r.0 == v.0 as i64).unwrap();
            *v = (
                v.0,
                csv.3.parse().ok(),
                Some(csv.4.to_string()).filter(|s| !s.is_empty()),
            );
        }
        values
    };
    let report = text(&output);
    assert!(
        report.contains("reviews: 6 read, 5 sent to the analyser"),
        "the end of upgrade reports what was sent:\n{report}"
    );

    let values = main_values(&env).await;
    assert_eq!(
        values[0],
        (1, Some(1), Some("positive".into())),
        "data values stand"
    );
    assert!(
        aspects(&env, 1).await.is_empty(),
        "a complete review is not decided"
    );
    assert_eq!(
        values[1],
        (2, Some(4), Some("negative".into())),
        "sentiment about the given feature"
    );
    let both: Vec<(i32, String)> = aspects(&env, 3)
        .await
        .into_iter()
        .map(|(f, s, _)| (f, s))
        .collect();
    assert_eq!(
        both,
        [(1, "positive".into()), (2, "negative".into())],
        "two aspects, two rows"
    );
    let main = (values[2].1.unwrap(), values[2].2.clone().unwrap());
    assert!(
        both.contains(&main),
        "the main aspect is one of them: {main:?}"
    );
    assert_eq!(values[3], (4, None, None), "no feature: both stay NULL");
    assert!(aspects(&env, 4).await.is_empty());
    assert_eq!(values[4], (5, Some(5), Some("positive".into())));
    assert_eq!(
        values[5],
        (6, Some(20), Some("negative".into())),
        "negation"
    );
    for (id, review, ..) in REVIEWS {
        for (_, _, evidence) in aspects(&env, id as i32).await {
            assert!(
                !evidence.is_empty() && review.contains(&evidence),
                "review {id}: evidence {evidence:?} is not a verbatim part of its text"
            );
        }
    }
    let evidence5: Vec<String> = aspects(&env, 5).await.into_iter().map(|a| a.2).collect();
    assert!(
        evidence5
            .iter()
            .any(|e| e.contains("$$") || e.contains('\u{fc}')),
        "{evidence5:?}"
    );
    let status = text(&env.orchestrator(&["status"]).await);
    assert!(
        status.contains("tokens: 0 prompt + 0 completion"),
        "{status}"
    );

    // Three reviews change, one goes: a re-run decides exactly the three and
    // drops the aspects of the deleted one.
    sqlx::raw_sql(
        "UPDATE public.product_reviews SET review = 'The touch controls work perfectly, every tap lands.' WHERE id = 6;
         UPDATE public.product_reviews SET review = review || ' Still, I wear them daily.' WHERE id IN (2, 5);
         DELETE FROM public.product_reviews WHERE id = 3;",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_success(&env.orchestrator(&["rerun", ENRICHMENT]).await);
    assert_eq!(
        last_run_sent(&env).await,
        3,
        "only the changed reviews are sent"
    );
    assert_eq!(
        main_values(&env).await[4],
        (6, Some(20), Some("positive".into())),
        "the changed text is decided again"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.review_feature_sentiments WHERE review_id = 3")
            .await,
        0,
        "a deleted review's aspects go"
    );
    assert_success(&env.orchestrator(&["rerun", ENRICHMENT]).await);
    assert_eq!(
        last_run_sent(&env).await,
        0,
        "nothing changed: nothing sent"
    );

    // Downgrade: the values the data had, exactly.
    assert_success(&env.orchestrator(&["downgrade", EMBEDDINGS]).await);
    let restored = main_values(&env).await;
    let expected: Vec<_> = before.into_iter().filter(|v| v.0 != 3).collect();
    assert_eq!(restored, expected);
    assert_eq!(
        env.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'review_feature_sentiments'")
            .await,
        0
    );
    assert_eq!(env.current_revision().await.as_deref(), Some(EMBEDDINGS));
    env.cleanup().await;
}

#[tokio::test]
async fn an_llm_provider_without_its_endpoint_or_key_is_refused_before_any_change() {
    let mut env = TestEnv::new("enrich_refused").await;
    env.set_env("USE_AZURE_AI_FOR_REVIEWS", "true");
    let output = env.orchestrator(&["upgrade", ENRICHMENT]).await;
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("AZURE_OPENAI_ENDPOINT"),
        "{}",
        text(&output)
    );
    env.set_env("AZURE_OPENAI_ENDPOINT", "https://example.openai.azure.com");
    let output = env.orchestrator(&["upgrade", ENRICHMENT]).await;
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("AZURE_OPENAI_API_KEY"),
        "{}",
        text(&output)
    );
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'pipeline'
              UNION ALL SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
              ORDER BY 1 DESC LIMIT 1"
        )
        .await,
        0,
        "nothing was created"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn a_worker_killed_mid_run_loses_no_review_and_writes_none_twice() {
    let mut env = TestEnv::new("enrich_sigkill").await;
    let _embeddings = instant_embeddings(&mut env).await;
    env.set_env("ENRICH_TASK_ROWS", "60");
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", EMBEDDINGS]).await);
    let missing = env
        .scalar("SELECT count(*) FROM public.product_reviews WHERE feature_id IS NULL OR sentiment IS NULL")
        .await;
    assert!(missing > 100, "the sample data leaves reviews to decide");

    let victim = env.start_worker(&["--role", "enrich", "--concurrency", "1"]);
    let run = env.spawn_orchestrator(&["upgrade", ENRICHMENT]);
    env.kill_while_holding(victim, ENRICHMENT, "enrich", 2)
        .await;
    let output = finished(run, Duration::from_secs(300)).await;
    assert_success(&output);
    assert!(
        env.scalar("SELECT count(*) FROM pipeline.tasks WHERE kind = 'enrich' AND attempts > 1")
            .await
            >= 1,
        "the killed worker's task was taken up again"
    );

    let tasks = env
        .scalar("SELECT count(*) FROM pipeline.tasks WHERE kind = 'enrich'")
        .await;
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.enrichment_usage")
            .await,
        tasks,
        "one usage row per enrich task"
    );
    assert_eq!(
        env.scalar("SELECT sum(reviews_sent)::bigint FROM pipeline.enrichment_usage")
            .await,
        missing,
        "every review to decide was sent, once per committed task"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.enrichment_reviews")
            .await,
        missing,
        "every review decided"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.product_reviews WHERE sentiment IS NULL AND feature_id IS NOT NULL")
            .await,
        0,
        "a review with a feature always gets its sentiment"
    );
    env.cleanup().await;
}

/// The fake answers chat completions by itself; the enrichment goes to it.
fn use_llm(env: &mut TestEnv, server: &FakeOpenAi) {
    env.enrich_with(server);
}

/// The sample products and features, with the hand-made reviews.
fn small_data_dir(name: &str) -> std::path::PathBuf {
    let dir = copy_sample(name);
    write_reviews(&dir);
    dir
}

fn asked(server: &FakeOpenAi, from: usize) -> Vec<String> {
    let mut ids: Vec<String> = server.reviews_asked()[from..].to_vec();
    ids.sort();
    ids
}

#[tokio::test]
async fn llm_answers_go_to_both_places_and_a_rerun_asks_only_for_the_changed_reviews() {
    let mut env = TestEnv::new("enrich_llm").await;
    let server = instant_embeddings(&mut env).await;
    use_llm(&mut env, &server);
    let dir = small_data_dir("enrich-llm");
    env.start_worker(&["--role", "all"]);
    let output = env
        .orchestrator(&["upgrade", ENRICHMENT, "--data-dir", dir.to_str().unwrap()])
        .await;
    assert_success(&output);

    // The request: strict structured output, each review with its own names.
    let chat = server
        .last_requests()
        .into_iter()
        .find(|r| r.path.ends_with("/chat/completions"))
        .expect("a chat request");
    let format = &chat.body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    let schema = format["json_schema"]["schema"].to_string();
    for name in ["Battery Life", "Noise Cancellation", "Touch Controls"] {
        assert!(schema.contains(name), "{name} is an allowed name: {schema}");
    }
    assert_eq!(
        asked(&server, 0),
        ["2", "3", "4", "5", "6"],
        "review 1 is complete"
    );

    let decided = env
        .scalar(
            "SELECT count(*) FROM public.product_reviews
              WHERE id BETWEEN 2 AND 6 AND feature_id IS NOT NULL AND sentiment IS NOT NULL",
        )
        .await;
    assert_eq!(decided, 5, "main aspects written to product_reviews");
    assert_eq!(
        env.scalar(
            "SELECT count(DISTINCT review_id) FROM public.review_feature_sentiments WHERE source = 'openai:gpt-4o-mini'"
        )
        .await,
        5,
        "aspects written to review_feature_sentiments"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM public.product_reviews WHERE id = 2 AND feature_id = 4")
            .await,
        1,
        "the data's feature stays the main one"
    );
    let report = text(&output);
    assert!(
        !report.contains("tokens: 0 prompt") && report.contains("tokens: "),
        "tokens are counted:\n{report}"
    );

    let before = server.reviews_asked().len();
    sqlx::raw_sql(
        "UPDATE public.product_reviews SET review = review || ' Update: still fine.' WHERE id IN (3, 5, 6)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    assert_success(&env.orchestrator(&["rerun", ENRICHMENT]).await);
    assert_eq!(
        asked(&server, before),
        ["3", "5", "6"],
        "exactly the changed reviews"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn unusable_answers_fail_their_reviews_the_share_fails_the_revision_and_a_rerun_retries_them()
{
    let mut env = TestEnv::new("enrich_llm_fail").await;
    let server = instant_embeddings(&mut env).await;
    use_llm(&mut env, &server);
    env.set_env("ENRICH_ANSWER_TRIES", "2");
    let dir = small_data_dir("enrich-llm-fail");
    env.start_worker(&["--role", "all"]);
    // Review 3 is always left out of the answers; review 5 gets a feature
    // it does not have, which is dropped.
    server.fault_review(3, testkit::fake_openai::ChatFault::MissingReview);
    server.fault_review(5, testkit::fake_openai::ChatFault::UnknownFeature);
    let output = env
        .orchestrator(&["upgrade", ENRICHMENT, "--data-dir", dir.to_str().unwrap()])
        .await;
    assert!(!output.status.success(), "{}", text(&output));
    let shown = text(&output);
    assert!(
        shown.contains("1 of the 5 reviews sent could not be decided")
            && shown.contains("review 3"),
        "{shown}"
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.enrichment_failures WHERE review_id = 3")
            .await,
        1
    );
    assert!(
        env.scalar(
            "SELECT count(DISTINCT review_id) FROM public.review_feature_sentiments WHERE review_id IN (2, 4, 5, 6)"
        )
        .await
            >= 3,
        "the rest of the task committed"
    );
    assert!(shown.contains("were dropped"), "{shown}");
    let status = text(&env.orchestrator(&["status"]).await);
    assert!(status.contains("failed: 1 review(s)"), "{status}");

    // A higher allowance lets the same run complete; a re-run retries review 3.
    env.set_env("ENRICH_MAX_FAILED_SHARE", "0.5");
    env.kill_workers().await;
    env.start_worker(&["--role", "all"]);
    assert_success(&env.orchestrator(&["upgrade", ENRICHMENT]).await);
    server.clear_faults();
    let before = server.reviews_asked().len();
    assert_success(&env.orchestrator(&["rerun", ENRICHMENT]).await);
    assert_eq!(asked(&server, before), ["3"], "only the failed review");
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.enrichment_failures")
            .await,
        0
    );
    env.cleanup().await;
}

#[tokio::test]
async fn the_batch_api_is_submitted_once_even_when_its_worker_dies_before_collecting() {
    let mut env = TestEnv::new("enrich_batch").await;
    let server = instant_embeddings(&mut env).await;
    use_llm(&mut env, &server);
    server.set_batch_timing(testkit::fake_openai::BatchTiming {
        pending_polls: 2,
        min_delay: Duration::ZERO,
    });
    env.set_env("ENRICH_BATCH_API", "true");
    env.set_env("ENRICH_BATCH_POLL_SECS", "1");
    let dir = small_data_dir("enrich-batch");
    env.start_worker(&["--role", "seed,embed"]);
    assert_success(
        &env.orchestrator(&["upgrade", EMBEDDINGS, "--data-dir", dir.to_str().unwrap()])
            .await,
    );
    let victim = env.start_worker(&["--role", "enrich"]);
    let run = env.spawn_orchestrator(&["upgrade", ENRICHMENT]);
    env.wait_for_count(
        "SELECT count(*) FROM pipeline.enrichment_batches",
        1,
        Duration::from_secs(60),
    )
    .await;
    env.signal_worker(victim, Signal::SIGKILL);
    env.start_worker(&["--role", "enrich"]);
    let output = finished(run, Duration::from_secs(120)).await;
    assert_success(&output);
    assert_eq!(server.batch_submissions(), 1, "no second submission");
    assert_eq!(
        env.scalar(
            "SELECT count(*) FROM public.product_reviews WHERE id BETWEEN 2 AND 6 AND sentiment IS NOT NULL"
        )
        .await,
        5
    );
    assert_eq!(
        env.scalar("SELECT count(*) FROM pipeline.enrichment_batches")
            .await,
        0
    );
    env.cleanup().await;
}
