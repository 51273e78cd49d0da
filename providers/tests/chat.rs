//! The chat client against the testkit's fake OpenAI / Azure OpenAI server,
//! which checks every request as the real API would.

use std::time::{Duration, Instant};

use providers::chat::{ChatClient, JsonSchema, Message};
use providers::ProviderError;
use testkit::fake_openai::{FakeOpenAi, FakeOptions};

const KEY: &str = "sk-chat-SECRET-0123456789";

async fn fake() -> FakeOpenAi {
    FakeOpenAi::start(FakeOptions {
        delay: Duration::ZERO,
        ..FakeOptions::default()
    })
    .await
    .unwrap()
}

fn settings(server: &FakeOpenAi, extra: &[(&str, &str)]) -> shared::config::OpenAiConfig {
    let mut pairs = vec![
        ("OPENAI_BASE_URL".to_string(), server.base_url()),
        ("OPENAI_API_KEY".to_string(), KEY.to_string()),
        ("AZURE_OPENAI_ENDPOINT".to_string(), server.endpoint()),
        ("AZURE_OPENAI_API_KEY".to_string(), KEY.to_string()),
        ("LLM_HTTP_TIMEOUT_SECS".to_string(), "5".to_string()),
    ];
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    shared::Config::from_source(&shared::config::Source::from_pairs(pairs))
        .unwrap()
        .openai
}

fn client(server: &FakeOpenAi, extra: &[(&str, &str)]) -> ChatClient {
    ChatClient::openai(&settings(server, extra), "gpt-4o-mini", "test")
        .unwrap()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

fn sentiment_schema() -> JsonSchema {
    JsonSchema {
        name: "review_aspects".into(),
        schema: serde_json::json!({
            "type": "object", "additionalProperties": false, "required": ["reviews"],
            "properties": {"reviews": {"type": "array", "items": {
                "type": "object", "additionalProperties": false,
                "required": ["id", "feature", "sentiment"],
                "properties": {
                    "id": {"type": "integer"},
                    "feature": {"type": ["string", "null"], "enum": ["Battery Life", "Screen", null]},
                    "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}
                }}}}
        }),
    }
}

fn messages() -> Vec<Message> {
    vec![
        Message::system("Name the feature each review talks about."),
        Message::user("1: the battery lasts all day"),
    ]
}

#[tokio::test]
async fn the_request_carries_the_strict_schema_and_the_answer_its_usage() {
    let server = fake().await;
    server.set_answer_headers(&[
        ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-tokens", "12ms"),
    ]);
    server.answer_chat(&[
        r#"{"reviews": [{"id": 1, "feature": "Battery Life", "sentiment": "positive"}]}"#,
    ]);
    let chat = client(&server, &[]);
    let (parsed, answer): (serde_json::Value, _) = chat
        .complete_json(&messages(), &sentiment_schema())
        .await
        .unwrap();
    assert_eq!(parsed["reviews"][0]["feature"], "Battery Life");
    assert_eq!(answer.usage.prompt_tokens, 13, "words of both messages");
    assert!(answer.usage.completion_tokens > 0);
    assert_eq!(answer.rate_limit.remaining_requests, Some(499));
    assert_eq!(
        answer.rate_limit.reset_tokens,
        Some(Duration::from_millis(12))
    );
    let seen = server.last_requests();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert!(request
        .headers
        .iter()
        .any(|(k, v)| k == "authorization" && v == &format!("Bearer {KEY}")));
    let format = &request.body["response_format"];
    assert_eq!(format["type"], "json_schema");
    assert_eq!(format["json_schema"]["strict"], true);
    assert_eq!(format["json_schema"]["schema"], sentiment_schema().schema);
    assert_eq!(request.body["model"], "gpt-4o-mini");
    assert_eq!(request.body["messages"][1]["role"], "user");
}

#[tokio::test]
async fn a_non_strict_schema_is_refused_by_the_fake_as_by_the_api() {
    let server = fake().await;
    let chat = client(&server, &[]);
    let mut loose = sentiment_schema();
    loose.schema["properties"]["reviews"]["items"]["required"] = serde_json::json!(["id"]);
    let err = chat.complete(&messages(), Some(&loose)).await.unwrap_err();
    assert!(matches!(err, ProviderError::Permanent(_)), "{err}");
    assert!(
        err.to_string().contains("400") && err.to_string().contains("required"),
        "{err}"
    );
    assert_eq!(server.requests(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn a_429_with_retry_after_is_waited_out_then_succeeds() {
    let server = fake().await;
    server.fail_next_with(
        1,
        429,
        Some(1),
        &[("x-ratelimit-remaining-requests", "0")],
        "Rate limit reached for requests",
    );
    server.answer_chat(&[r#"{"reviews": []}"#]);
    let chat = client(&server, &[]);
    let started = Instant::now();
    let (parsed, _): (serde_json::Value, _) = chat
        .complete_json(&messages(), &sentiment_schema())
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(parsed["reviews"], serde_json::json!([]));
    assert_eq!(server.requests(), 2);
    assert!(
        waited >= Duration::from_millis(950),
        "retried after {waited:?}, Retry-After said 1 s"
    );
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn server_errors_are_retried_until_the_limit_then_transient() {
    let server = fake().await;
    server.fail_next(2, 503, None, "The server is overloaded");
    server.answer_chat(&["{\"reviews\": []}"]);
    let chat = client(&server, &[]);
    chat.complete(&messages(), Some(&sentiment_schema()))
        .await
        .unwrap();
    assert_eq!(server.requests(), 3, "two 503s, then the answer");

    server.reset_counts();
    server.fail_always(500, "internal error");
    let chat = client(&server, &[("LLM_HTTP_MAX_RETRIES", "2")]);
    let err = chat.complete(&messages(), None).await.unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err}");
    assert!(err.to_string().contains("internal error"), "{err}");
    assert!(!format!("{err} {err:?}").contains(KEY), "key leaked: {err}");
    assert_eq!(server.requests(), 3, "1 attempt + 2 retries");
}

#[tokio::test]
async fn malformed_json_is_an_error_the_caller_can_retry() {
    let server = fake().await;
    server.answer_chat(&["{\"reviews\": [", r#"{"reviews": []}"#]);
    let chat = client(&server, &[]);
    let err = chat
        .complete_json::<serde_json::Value>(&messages(), &sentiment_schema())
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Unusable { .. }), "{err}");
    assert!(err.to_string().contains("review_aspects"), "{err}");
    let (again, _): (serde_json::Value, _) = chat
        .complete_json(&messages(), &sentiment_schema())
        .await
        .unwrap();
    assert_eq!(again["reviews"], serde_json::json!([]));
}

#[tokio::test]
async fn azure_goes_to_the_deployment_with_the_api_version_and_key_header() {
    let server = fake().await;
    server.answer_chat(&["{}"]);
    let openai = settings(&server, &[("AZURE_API_VERSION_LLM", "2024-10-21")]);
    let chat = ChatClient::azure(&openai, "my-gpt4o", "ENRICH_PROVIDER=azure-openai").unwrap();
    assert!(!chat.describe().contains(KEY));
    chat.complete(&messages(), Some(&sentiment_schema()))
        .await
        .unwrap();
    let seen = server.last_requests();
    assert_eq!(
        seen[0].path,
        "/openai/deployments/my-gpt4o/chat/completions?api-version=2024-10-21"
    );
    assert!(seen[0]
        .headers
        .iter()
        .any(|(k, v)| k == "api-key" && v == KEY));
    assert!(!seen[0].headers.iter().any(|(k, _)| k == "authorization"));
    assert!(seen[0].body.get("model").is_none());
    let mut no_key = openai.clone();
    no_key.azure_api_key = shared::config::Secret::new("");
    let err = ChatClient::azure(&no_key, "my-gpt4o", "ENRICH_PROVIDER=azure-openai")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("AZURE_OPENAI_API_KEY") && err.contains("ENRICH_PROVIDER"),
        "{err}"
    );
}

#[tokio::test]
async fn the_observer_sees_every_attempt_the_retried_429s_too() {
    let server = fake().await;
    server.fail_next_with(
        2,
        429,
        None,
        &[("retry-after-ms", "20")],
        "Rate limit reached for requests",
    );
    server.answer_chat(&[r#"{"reviews": []}"#]);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let chat = client(&server, &[]).with_observer({
        let seen = seen.clone();
        std::sync::Arc::new(move |a: &providers::http::Attempted| {
            seen.lock()
                .unwrap()
                .push((a.status.map(|s| s.as_u16()), a.rate_limit.retry_after));
        })
    });
    let answer = chat
        .complete(&messages(), Some(&sentiment_schema()))
        .await
        .unwrap();
    assert_eq!(answer.attempts, 3);
    let ms20 = Some(Duration::from_millis(20));
    assert_eq!(
        *seen.lock().unwrap(),
        [(Some(429), ms20), (Some(429), ms20), (Some(200), None)]
    );
}
