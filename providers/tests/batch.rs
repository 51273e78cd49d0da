//! The Batch API client against the testkit's fake, which checks the upload,
//! the lines and the batch as the API does.

use std::time::Duration;

use providers::batch::BatchClient;
use providers::chat::{ChatClient, Message};
use testkit::fake_openai::{FakeOpenAi, FakeOptions};

const KEY: &str = "sk-batch-SECRET-0123456789";

fn settings(server: &FakeOpenAi) -> shared::config::OpenAiConfig {
    let pairs = [
        ("OPENAI_BASE_URL", server.base_url()),
        ("OPENAI_API_KEY", KEY.to_string()),
        ("AZURE_OPENAI_ENDPOINT", server.endpoint()),
        ("AZURE_OPENAI_API_KEY", KEY.to_string()),
        ("AZURE_API_VERSION_LLM", "2024-10-21".to_string()),
        ("LLM_HTTP_TIMEOUT_SECS", "5".to_string()),
    ];
    shared::Config::from_source(&shared::config::Source::from_pairs(pairs))
        .unwrap()
        .openai
}

#[tokio::test]
async fn an_azure_batch_goes_up_as_jsonl_and_its_answers_come_back() {
    let server = FakeOpenAi::start(FakeOptions {
        delay: Duration::ZERO,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    server.answer_chat(&[r#"{"first": true}"#, r#"{"second": true}"#]);
    let openai = settings(&server);
    let setting = "ENRICH_PROVIDER=azure-openai";
    let chat = ChatClient::azure(&openai, "gpt-4o-batch", setting).unwrap();
    let batches = BatchClient::azure(&openai, setting).unwrap();
    let lines: String = ["a", "b"]
        .iter()
        .map(|id| {
            let messages = [Message::user(format!("request {id}"))];
            format!("{}\n", chat.batch_line(id, &messages, None))
        })
        .collect();
    let file = batches.upload("two.jsonl", lines.as_bytes()).await.unwrap();
    let upload = server.last_requests().pop().unwrap();
    assert_eq!(upload.path, "/openai/files?api-version=2024-10-21");
    assert!(upload
        .headers
        .iter()
        .any(|(k, v)| k == "api-key" && v == KEY));
    let batch = batches.create(&file).await.unwrap();
    assert_eq!(batch.status, "validating");
    assert_eq!(server.batch_submissions(), 1);
    let first = batches.retrieve(&batch.id).await.unwrap();
    assert!(first.is_pending(), "{}", first.status);
    let done = batches.retrieve(&batch.id).await.unwrap();
    assert_eq!(done.status, "completed");
    let output = batches
        .content(done.output_file_id.as_deref().unwrap())
        .await
        .unwrap();
    let mut contents: Vec<(String, String)> = output
        .lines()
        .map(|line| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            let body = line["response"]["body"].to_string();
            let answer = chat.read_completion(&body).unwrap();
            (
                line["custom_id"].as_str().unwrap().to_string(),
                answer.content,
            )
        })
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        [
            ("a".to_string(), r#"{"first": true}"#.to_string()),
            ("b".to_string(), r#"{"second": true}"#.to_string())
        ]
    );
}

#[tokio::test]
async fn lines_for_another_endpoint_fail_the_batch_with_the_line() {
    let server = FakeOpenAi::start(FakeOptions {
        delay: Duration::ZERO,
        ..FakeOptions::default()
    })
    .await
    .unwrap();
    let openai = settings(&server);
    let chat = ChatClient::azure(&openai, "gpt-4o-batch", "t").unwrap();
    let batches = BatchClient::openai(&openai, "t").unwrap();
    // An Azure line ("/chat/completions") in an OpenAI batch ("/v1/chat/completions").
    let line = chat.batch_line("x", &[Message::user("hi")], None);
    let file = batches
        .upload("one.jsonl", format!("{line}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(server.last_requests().pop().unwrap().path, "/v1/files");
    let batch = batches.create(&file).await.unwrap();
    let failed = batches.retrieve(&batch.id).await.unwrap();
    assert_eq!(failed.status, "failed");
    let summary = failed.error_summary();
    assert!(
        summary.contains("line 1") && summary.contains("/v1/chat/completions"),
        "{summary}"
    );
}
