//! The Batch API of OpenAI and Azure OpenAI, for chat completions: the
//! requests go up as one JSONL file (`POST files`, purpose `batch`), a
//! batch is created on it (`POST batches`, `completion_window` 24h), and
//! its state is read back (`GET batches/{id}`) until it is done; the
//! answers are then one JSONL file (`GET files/{id}/content`), the failed
//! requests another. Half the price of the same requests sent one by one.
//!
//! Where: `{OPENAI_BASE_URL}/files`, `/batches` (`Authorization: Bearer`);
//! `{AZURE_OPENAI_ENDPOINT}/openai/files?api-version={AZURE_API_VERSION_LLM}`,
//! `/openai/batches?...` (`api-key`), on [`crate::http::HttpClient`] with the
//! `LLM_HTTP_*` limits. The lines themselves are written by
//! [`crate::chat::ChatClient::batch_line`].
//!
//! A batch create that times out is retried like any request, so in that
//! rare case the provider may hold a second batch that no one collects.

use reqwest::Method;
use serde::Deserialize;
use shared::config::OpenAiConfig;

use crate::http::{Api, Body, Endpoint, HttpClient};
use crate::ProviderError;

/// The `url` of a chat completions line, and the `endpoint` of its batch.
pub fn chat_url(api: Api) -> &'static str {
    match api {
        Api::OpenAi => "/v1/chat/completions",
        Api::Azure => "/chat/completions",
    }
}

/// A batch as the API describes it (the fields used here).
#[derive(Debug, Clone, Deserialize)]
pub struct Batch {
    pub id: String,
    /// `validating`, `in_progress`, `finalizing`, `completed`, `failed`,
    /// `expired`, `cancelling`, `cancelled`.
    pub status: String,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    #[serde(default)]
    pub request_counts: Option<RequestCounts>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchErrors {
    #[serde(default)]
    pub data: Vec<BatchError>,
}

/// Why a batch (or one line of its input) was refused.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub line: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct RequestCounts {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub failed: u64,
}

impl Batch {
    /// Still on its way: nothing to read yet.
    pub fn is_pending(&self) -> bool {
        matches!(
            self.status.as_str(),
            "validating" | "in_progress" | "finalizing" | "cancelling"
        )
    }

    /// Why the batch failed as a whole, from its `errors`.
    pub fn error_summary(&self) -> String {
        let errors: Vec<String> = self
            .errors
            .iter()
            .flat_map(|e| &e.data)
            .map(|e| {
                let mut text = e.message.clone().unwrap_or_else(|| "no message".into());
                if let Some(code) = &e.code {
                    text = format!("{text} (code {code})");
                }
                if let Some(line) = e.line {
                    text = format!("line {line}: {text}");
                }
                text
            })
            .collect();
        if errors.is_empty() {
            format!("batch {} is {}", self.id, self.status)
        } else {
            format!(
                "batch {} is {}: {}",
                self.id,
                self.status,
                errors.join("; ")
            )
        }
    }
}

#[derive(Deserialize)]
struct FileObject {
    id: String,
}

pub struct BatchClient {
    http: HttpClient,
}

impl BatchClient {
    /// `{OPENAI_BASE_URL}/files` and `/batches`.
    pub fn openai(openai: &OpenAiConfig, setting: &str) -> Result<Self, ProviderError> {
        let endpoint = Endpoint::openai(&openai.base_url, &openai.api_key, &[], setting)?;
        Self::new(endpoint, openai)
    }

    /// `{AZURE_OPENAI_ENDPOINT}/openai/files` and `/openai/batches`, with
    /// `AZURE_API_VERSION_LLM`.
    pub fn azure(openai: &OpenAiConfig, setting: &str) -> Result<Self, ProviderError> {
        let endpoint = Endpoint::azure_resource(
            &openai.azure_endpoint,
            &openai.azure_api_key,
            &[],
            &openai.azure_api_version_llm,
            setting,
        )?;
        Self::new(endpoint, openai)
    }

    fn new(endpoint: Endpoint, openai: &OpenAiConfig) -> Result<Self, ProviderError> {
        let name = format!("{} batch", endpoint.api.name());
        Ok(BatchClient {
            http: HttpClient::new(endpoint, &openai.llm_http, &name)?,
        })
    }

    /// Changes the back-off delays (tests use milliseconds).
    pub fn with_backoff(mut self, base: std::time::Duration, max: std::time::Duration) -> Self {
        self.http = self.http.with_backoff(base, max);
        self
    }

    pub fn api(&self) -> Api {
        self.http.endpoint().api
    }

    pub fn describe(&self) -> &str {
        self.http.describe()
    }

    /// Uploads `jsonl` as the input file of a batch; its file id.
    pub async fn upload(&self, filename: &str, jsonl: &[u8]) -> Result<String, ProviderError> {
        let boundary = format!("agenticshop-{:032x}", rand::random::<u128>());
        let body = multipart(&boundary, filename, jsonl);
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let answer = self
            .http
            .send(
                Method::POST,
                &["files"],
                Some(Body {
                    content_type: &content_type,
                    bytes: &body,
                }),
                "batch file upload",
            )
            .await?;
        let file: FileObject = self.parse(&answer.body, "a file object")?;
        Ok(file.id)
    }

    /// Creates a batch of chat completions on an uploaded file.
    pub async fn create(&self, input_file_id: &str) -> Result<Batch, ProviderError> {
        let request = serde_json::json!({
            "input_file_id": input_file_id,
            "endpoint": chat_url(self.api()),
            "completion_window": "24h",
        });
        let body = request.to_string();
        let answer = self
            .http
            .send(
                Method::POST,
                &["batches"],
                Some(Body::json(body.as_bytes())),
                "batch create",
            )
            .await?;
        self.parse(&answer.body, "a batch")
    }

    pub async fn retrieve(&self, batch_id: &str) -> Result<Batch, ProviderError> {
        let answer = self
            .http
            .send(Method::GET, &["batches", batch_id], None, "batch status")
            .await?;
        self.parse(&answer.body, "a batch")
    }

    /// A file's content (a batch's output or error file, JSONL).
    pub async fn content(&self, file_id: &str) -> Result<String, ProviderError> {
        let answer = self
            .http
            .send(
                Method::GET,
                &["files", file_id, "content"],
                None,
                "batch file content",
            )
            .await?;
        Ok(answer.body)
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        body: &str,
        what: &str,
    ) -> Result<T, ProviderError> {
        serde_json::from_str(body).map_err(|e| {
            ProviderError::Transient(format!(
                "{}: the answer is not {what}: {e}",
                self.http.describe()
            ))
        })
    }
}

/// `multipart/form-data` with the two fields of a batch upload.
fn multipart(boundary: &str, filename: &str, content: &[u8]) -> Vec<u8> {
    let filename: String = filename
        .chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\'))
        .collect();
    let mut body = Vec::with_capacity(content.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_is_two_form_fields_around_the_file() {
        let body = multipart("XYZ", "req\"s.jsonl", b"{\"a\":1}\n{\"a\":2}\n");
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(
            "--XYZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--XYZ\r\n"
        ));
        assert!(text.contains("name=\"file\"; filename=\"reqs.jsonl\"\r\n"));
        assert!(text.ends_with("{\"a\":1}\n{\"a\":2}\n\r\n--XYZ--\r\n"));
    }

    #[test]
    fn pending_states_and_error_summaries() {
        let batch: Batch = serde_json::from_value(serde_json::json!({
            "id": "batch_1", "status": "failed",
            "errors": {"object": "list", "data": [
                {"code": "invalid_json_line", "message": "not JSON", "line": 3, "param": null}]}
        }))
        .unwrap();
        assert!(!batch.is_pending());
        assert_eq!(
            batch.error_summary(),
            "batch batch_1 is failed: line 3: not JSON (code invalid_json_line)"
        );
        for status in ["validating", "in_progress", "finalizing", "cancelling"] {
            let batch: Batch =
                serde_json::from_value(serde_json::json!({"id": "b", "status": status})).unwrap();
            assert!(batch.is_pending(), "{status}");
        }
    }
}
