//! The LLM review analyser against the testkit's fake OpenAI / Azure server,
//! which checks each request as the API does and answers by itself from the
//! request's schema (the first allowed feature of every review, positive),
//! with the faults and rate limits a test asks for. No database: what is
//! asserted is what the analyser sends and what it makes of the answers.

use analysis::{Feature, Review, Sentiment};
use revisions::enrichment::llm::LlmAnalyser;
use revisions::enrichment::{BatchPoll, ReviewAnalyser, ReviewOutcome};
use std::time::{Duration, Instant};
use testkit::fake_openai::{answers, BatchTiming, ChatFault, FakeOpenAi, FakeOptions};

async fn fake(delay_ms: u64) -> FakeOpenAi {
    let server = FakeOpenAi::start(FakeOptions {
        delay: Duration::from_millis(delay_ms),
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    server.answer_chat_automatically();
    server
}

fn analyser(server: &FakeOpenAi, extra: &[(&str, &str)]) -> LlmAnalyser {
    let mut pairs = vec![
        ("ENRICH_PROVIDER".to_string(), "openai".to_string()),
        ("OPENAI_BASE_URL".to_string(), server.base_url()),
        ("OPENAI_API_KEY".to_string(), "sk-llm-test".to_string()),
        ("AZURE_OPENAI_ENDPOINT".to_string(), server.endpoint()),
        (
            "AZURE_OPENAI_API_KEY".to_string(),
            "az-llm-test".to_string(),
        ),
        ("LLM_MODEL".to_string(), "gpt-4o-mini".to_string()),
        ("LLM_HTTP_TIMEOUT_SECS".to_string(), "2".to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = shared::Config::from_source(&shared::config::Source::from_pairs(pairs)).unwrap();
    LlmAnalyser::new(&config)
        .unwrap()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

fn review(id: i64, text: &str, features: &[(i64, &str)], known: Option<i64>) -> Review {
    Review {
        id,
        text: text.into(),
        rating: Some(3.0),
        features: features
            .iter()
            .map(|(id, name)| Feature {
                id: *id,
                name: name.to_string(),
            })
            .collect(),
        known_feature: known,
    }
}

const HEADPHONES: &[(i64, &str)] = &[(1, "Sound Quality"), (2, "Microphone"), (3, "Comfort")];

fn headphone_reviews(ids: std::ops::Range<i64>) -> Vec<Review> {
    ids.map(|id| review(id, &format!("review number {id}"), HEADPHONES, None))
        .collect()
}

fn analysed(outcome: &ReviewOutcome) -> &analysis::ReviewAspects {
    match outcome {
        ReviewOutcome::Analysed(aspects) => aspects,
        ReviewOutcome::Failed(reason) => panic!("failed: {reason}"),
    }
}

fn failure(outcome: &ReviewOutcome) -> &str {
    match outcome {
        ReviewOutcome::Failed(reason) => reason,
        ReviewOutcome::Analysed(a) => panic!("analysed: {a:?}"),
    }
}

#[tokio::test]
async fn the_request_carries_a_strict_schema_with_each_reviews_own_feature_names() {
    let server = fake(0).await;
    let llm = analyser(&server, &[("ENRICH_REVIEWS_PER_REQUEST", "10")]);
    assert_eq!(llm.source(), "openai:gpt-4o-mini");
    let reviews = vec![
        review(
            7,
            "Sound is \"crisp\" but the mic\\hiss $$",
            HEADPHONES,
            None,
        ),
        review(
            8,
            "Grip slips when wet.",
            &[(9, "Grip"), (10, "Weight")],
            Some(10),
        ),
        review(9, "Arrived late.", &[], None),
    ];
    let batch = llm.analyse(reviews.clone()).await.unwrap();
    assert_eq!(server.chat_requests(), 1, "two reviews, one request");
    let request = server.last_requests().pop().unwrap();
    assert_eq!(request.body["model"], "gpt-4o-mini");
    let format = &request.body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    let schema = &format["json_schema"]["schema"];
    assert_eq!(
        answers::review_keys(schema),
        ["7", "8"],
        "9 has no features: not asked"
    );
    let names = |def: &str| schema["$defs"][def]["properties"]["feature"]["enum"].clone();
    assert_eq!(
        names("aspect_7"),
        serde_json::json!(["Sound Quality", "Microphone", "Comfort"])
    );
    assert_eq!(names("aspect_8"), serde_json::json!(["Grip", "Weight"]));
    assert_eq!(
        names("known_8"),
        serde_json::json!(["Weight"]),
        "a known feature is the main aspect"
    );
    assert_eq!(
        schema["properties"]["reviews"]["properties"]["8"]["properties"]["main_aspect"]["$ref"],
        "#/$defs/known_8"
    );
    let user = request.body["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains(r#""text": "Sound is \"crisp\" but the mic\\hiss $$""#),
        "{user}"
    );
    assert!(user.contains(r#""main_feature": "Weight""#), "{user}");

    let ids: Vec<i64> = batch.outcomes.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [7, 8, 9], "one outcome per review, in order");
    let seven = analysed(&batch.outcomes[0].1);
    assert_eq!(seven.main_feature, Some(1));
    assert_eq!(seven.aspects[0].sentiment, Sentiment::Positive);
    let eight = analysed(&batch.outcomes[1].1);
    assert_eq!(eight.main_feature, Some(10));
    let nine = analysed(&batch.outcomes[2].1);
    assert_eq!((nine.main_feature, nine.aspects.len()), (None, 0));
    assert_eq!(batch.requests, 1);
}

#[tokio::test]
async fn good_answers_become_aspects_and_their_tokens_are_summed() {
    let server = fake(0).await;
    let llm = analyser(&server, &[("ENRICH_REVIEWS_PER_REQUEST", "1")]);
    server.answer_chat(&[
        r#"{"reviews": {"21": {
            "main_aspect": {"feature": "microphone", "sentiment": "negative", "evidence": "the mic hisses"},
            "other_aspects": [
                {"feature": "Sound Quality", "sentiment": "positive", "evidence": "Great sound"},
                {"feature": "Comfort", "sentiment": "neutral", "evidence": null}]}}}"#,
        r#"{"reviews": {"22": {"main_aspect": null, "other_aspects": []}}}"#,
    ]);
    let reviews = vec![
        review(21, "Great sound, but the mic hisses.", HEADPHONES, None),
        review(22, "Arrived in a crushed box.", HEADPHONES, None),
    ];
    let batch = llm.analyse(reviews).await.unwrap();
    let first = analysed(&batch.outcomes[0].1);
    let got: Vec<(i64, Sentiment, &str)> = first
        .aspects
        .iter()
        .map(|a| (a.feature_id, a.sentiment, a.evidence.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, Sentiment::Negative, "the mic hisses"),
            (1, Sentiment::Positive, "Great sound"),
            (3, Sentiment::Neutral, "")
        ]
    );
    assert_eq!(first.main_feature, Some(2), "matched case-insensitively");
    let second = analysed(&batch.outcomes[1].1);
    assert_eq!((second.main_feature, second.aspects.len()), (None, 0));
    // The fake counts the words of the messages as prompt tokens.
    let words: u64 = server
        .last_requests()
        .iter()
        .flat_map(|r| r.body["messages"].as_array().unwrap().clone())
        .map(|m| m["content"].as_str().unwrap().split_whitespace().count() as u64)
        .sum();
    assert_eq!(batch.prompt_tokens, words);
    assert!(batch.completion_tokens > 0);
    assert_eq!(batch.requests, 2);
}

#[tokio::test]
async fn unusable_answers_are_asked_again_then_their_reviews_fail_and_the_rest_stand() {
    let server = fake(0).await;
    let llm = analyser(
        &server,
        &[
            ("ENRICH_REVIEWS_PER_REQUEST", "4"),
            ("ENRICH_ANSWER_TRIES", "3"),
        ],
    );
    server.fault_next_chat(1, ChatFault::Malformed);
    server.fault_review(11, ChatFault::UnknownFeature);
    server.fault_review(12, ChatFault::MissingReview);
    server.fault_review(13, ChatFault::BadSentiment);
    let batch = llm.analyse(headphone_reviews(11..15)).await.unwrap();

    // Try 1: malformed, all four again; try 2: 11 and 14 stand; try 3: 12 and 13 again.
    let mut asked = server.reviews_asked();
    asked.sort();
    assert_eq!(
        asked,
        ["11", "11", "12", "12", "12", "13", "13", "13", "14", "14"]
    );
    assert_eq!(batch.requests, 3);
    let eleven = analysed(&batch.outcomes[0].1);
    assert_eq!(eleven.main_feature, Some(1));
    assert_eq!(eleven.aspects.len(), 1, "the unknown feature is dropped");
    assert_eq!(batch.dropped_features, 1);
    let missing = failure(&batch.outcomes[1].1);
    assert!(
        missing.contains("no entry for review 12") && missing.contains("after 3 tries"),
        "{missing}"
    );
    let bad = failure(&batch.outcomes[2].1);
    assert!(
        bad.contains(answers::BAD_SENTIMENT) && bad.contains("after 3 tries"),
        "{bad}"
    );
    analysed(&batch.outcomes[3].1);
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_and_lowers_the_concurrency() {
    let server = fake(0).await;
    let llm = analyser(&server, &[("ENRICH_CONCURRENCY", "4")]);
    server.fail_next_with(
        1,
        429,
        Some(1),
        &[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "1s"),
        ],
        "Rate limit reached for requests",
    );
    let started = Instant::now();
    let batch = llm.analyse(headphone_reviews(1..3)).await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After said 1 s, retried after {waited:?}"
    );
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(batch.requests, 2);
    analysed(&batch.outcomes[0].1);
    let pace = llm.pace();
    assert_eq!((pace.refused, pace.lowered, pace.limit), (1, 1, 2));
}

#[tokio::test]
async fn server_errors_and_time_outs_are_retried_within_the_bound() {
    let server = fake(0).await;
    let llm = analyser(&server, &[]);
    server.fail_next(2, 503, None, "The server is overloaded");
    let batch = llm.analyse(headphone_reviews(1..2)).await.unwrap();
    assert_eq!(batch.requests, 3, "two 503s, then the answer");
    analysed(&batch.outcomes[0].1);

    server.slow_next(1, Duration::from_millis(2500));
    let llm = analyser(&server, &[("LLM_HTTP_TIMEOUT_SECS", "1")]);
    let started = Instant::now();
    let batch = llm.analyse(headphone_reviews(1..2)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(batch.requests, 2, "the time-out, then the answer");

    server.fail_always(500, "internal error");
    let llm = analyser(&server, &[("LLM_HTTP_MAX_RETRIES", "2")]);
    let requests = server.chat_requests();
    let err = llm.analyse(headphone_reviews(1..2)).await.unwrap_err();
    assert_eq!(
        server.chat_requests() - requests,
        3,
        "1 attempt + 2 retries"
    );
    assert!(format!("{err:#}").contains("internal error"), "{err:#}");
    assert!(
        err.downcast_ref::<shared::exec::Permanent>().is_none(),
        "past the retries the task is retried later, not failed: {err:#}"
    );
    server.heal();
    server.fail_next(1, 401, None, "Incorrect API key provided");
    let err = llm.analyse(headphone_reviews(1..2)).await.unwrap_err();
    assert!(
        err.downcast_ref::<shared::exec::Permanent>().is_some(),
        "a refusal fails the task at once: {err:#}"
    );
}

#[tokio::test]
async fn a_rate_limit_window_halves_the_concurrency_once_and_it_grows_back() {
    let server = fake(50).await;
    let llm = analyser(
        &server,
        &[
            ("ENRICH_CONCURRENCY", "4"),
            ("ENRICH_REVIEWS_PER_REQUEST", "1"),
        ],
    );
    server.rate_limit_window(8, Duration::from_millis(300));
    let batch = llm.analyse(headphone_reviews(1..41)).await.unwrap();
    assert!(batch
        .outcomes
        .iter()
        .all(|(_, o)| matches!(o, ReviewOutcome::Analysed(_))));
    let (_, _, refused) = server.rate_limit_window_seen().expect("the window opened");
    let pace = llm.pace();
    assert!(
        refused >= 1 && pace.refused == refused,
        "{pace:?}, {refused}"
    );
    assert_eq!(pace.lowered, 1, "one window, one halving: {pace:?}");
    assert!(pace.raised >= 2 && pace.limit == 4, "grew back: {pace:?}");
    assert!(server.max_chat_in_flight() <= 4);
}

#[tokio::test]
async fn a_batch_is_submitted_once_and_its_output_read_with_the_same_validation() {
    let server = fake(0).await;
    server.set_batch_timing(BatchTiming {
        pending_polls: 1,
        min_delay: Duration::ZERO,
    });
    let llm = analyser(
        &server,
        &[
            ("ENRICH_BATCH_API", "true"),
            ("ENRICH_REVIEWS_PER_REQUEST", "2"),
        ],
    );
    let batcher = llm.batch().expect("ENRICH_BATCH_API=true");
    let reviews = headphone_reviews(31..34);
    server.fault_review(33, ChatFault::MissingReview);
    let id = batcher.submit_batch(&reviews).await.unwrap();
    assert_eq!(server.batch_submissions(), 1);
    assert_eq!(
        server.chat_requests(),
        0,
        "nothing through chat completions"
    );
    match batcher.poll_batch(&id, &reviews).await.unwrap() {
        BatchPoll::Pending(status) => assert_eq!(status, "in_progress"),
        other => panic!("{other:?}"),
    }
    let BatchPoll::Done(batch) = batcher.poll_batch(&id, &reviews).await.unwrap() else {
        panic!("the batch should be done");
    };
    assert_eq!(batch.requests, 2, "two lines of two and one review");
    assert!(batch.prompt_tokens > 0);
    analysed(&batch.outcomes[0].1);
    analysed(&batch.outcomes[1].1);
    let reason = failure(&batch.outcomes[2].1);
    assert!(
        reason.contains("no entry for review 33") || reason.contains("no answer for review 33"),
        "{reason}"
    );
    assert_eq!(server.reviews_asked().len(), 3, "no retry inside a batch");
    // Reading it again is the same answer, not a new batch.
    assert!(matches!(
        batcher.poll_batch(&id, &reviews).await.unwrap(),
        BatchPoll::Done(_)
    ));
    assert_eq!(server.batch_submissions(), 1);

    server.fail_next_batch("Enqueued token limit reached");
    let id = batcher.submit_batch(&reviews).await.unwrap();
    match batcher.poll_batch(&id, &reviews).await.unwrap() {
        BatchPoll::Failed(reason) => assert!(reason.contains("token limit"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn azure_names_the_deployment_in_the_source_and_the_url() {
    let server = fake(0).await;
    let llm = analyser(
        &server,
        &[
            ("ENRICH_PROVIDER", "azure-openai"),
            ("LLM_MODEL", "shop-gpt4o"),
        ],
    );
    assert_eq!(llm.source(), "azure-openai:shop-gpt4o");
    llm.analyse(headphone_reviews(1..2)).await.unwrap();
    let request = server.last_requests().pop().unwrap();
    assert!(
        request
            .path
            .starts_with("/openai/deployments/shop-gpt4o/chat/completions?api-version="),
        "{}",
        request.path
    );
}
