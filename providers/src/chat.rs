//! A Chat Completions client, OpenAI-compatible or Azure OpenAI, on
//! [`crate::http::HttpClient`] (its retries; `LLM_HTTP_*` limits).
//!
//! [`ChatClient::complete`] sends messages, optionally with a
//! `response_format` of type `json_schema` that is always `strict` (the
//! model must answer in exactly that shape), and returns the answer's text,
//! the prompt and completion tokens it cost and the rate-limit state the
//! provider reported, so that a caller can sum tokens and adapt its
//! concurrency ([`ChatClient::with_observer`] also shows it every attempt).
//! [`ChatClient::complete_json`] also parses the answer. An answer that is
//! cut short, refused, or not the JSON asked for is a
//! [`ProviderError::Unusable`]: the same request may well succeed again.
//!
//! The same request can go through the Batch API instead
//! ([`crate::batch`]): [`ChatClient::batch_line`] writes it as one line of
//! the input file, and [`ChatClient::read_completion`] reads an answer of
//! the output file as [`ChatClient::complete`] reads one over HTTP.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shared::config::OpenAiConfig;

use crate::http::{Api, Endpoint, HttpClient, Observer, RateLimit};
use crate::ProviderError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
}

/// The shape an answer must have: a JSON Schema under a name. Sent strict,
/// so every object must list all its properties as required and forbid
/// others (`additionalProperties: false`), as the APIs demand.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonSchema {
    pub name: String,
    pub schema: serde_json::Value,
}

/// Tokens one request cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// One answer.
#[derive(Debug, Clone)]
pub struct ChatAnswer {
    /// The assistant message's text (the JSON, when a schema was given).
    pub content: String,
    pub usage: Usage,
    pub rate_limit: RateLimit,
    /// HTTP attempts it took (1 unless a 429, 5xx or time-out was retried).
    pub attempts: u32,
}

#[derive(Serialize)]
struct Request<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Deserialize)]
struct Response {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Usage,
}

#[derive(Deserialize)]
struct Choice {
    message: AnswerMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct AnswerMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

pub struct ChatClient {
    http: HttpClient,
    /// Sent as `model` (OpenAI); for Azure the deployment is in the URL.
    model: String,
    temperature: Option<f32>,
}

impl ChatClient {
    /// `{OPENAI_BASE_URL}/chat/completions` with `model`.
    pub fn openai(
        openai: &OpenAiConfig,
        model: &str,
        setting: &str,
    ) -> Result<Self, ProviderError> {
        let endpoint = Endpoint::openai(
            &openai.base_url,
            &openai.api_key,
            &["chat", "completions"],
            setting,
        )?;
        Self::new(endpoint, openai, model)
    }

    /// `{AZURE_OPENAI_ENDPOINT}/openai/deployments/{LLM_MODEL}/chat/completions?api-version={AZURE_API_VERSION_LLM}`.
    pub fn azure(
        openai: &OpenAiConfig,
        deployment: &str,
        setting: &str,
    ) -> Result<Self, ProviderError> {
        let endpoint = Endpoint::azure(
            &openai.azure_endpoint,
            &openai.azure_api_key,
            ("LLM_MODEL", deployment),
            &["chat", "completions"],
            &openai.azure_api_version_llm,
            setting,
        )?;
        Self::new(endpoint, openai, deployment)
    }

    fn new(endpoint: Endpoint, openai: &OpenAiConfig, model: &str) -> Result<Self, ProviderError> {
        let name = format!("{} chat {model}", endpoint.api.name());
        Ok(ChatClient {
            http: HttpClient::new(endpoint, &openai.llm_http, &name)?,
            model: model.to_string(),
            temperature: Some(0.0),
        })
    }

    /// Changes the back-off delays (tests use milliseconds).
    pub fn with_backoff(mut self, base: std::time::Duration, max: std::time::Duration) -> Self {
        self.http = self.http.with_backoff(base, max);
        self
    }

    /// Reports every HTTP attempt (retried ones too) to `observer`.
    pub fn with_observer(mut self, observer: Observer) -> Self {
        self.http = self.http.with_observer(observer);
        self
    }

    /// Provider, model and redacted URL, for logs.
    pub fn describe(&self) -> &str {
        self.http.describe()
    }

    /// The model (OpenAI) or deployment (Azure).
    pub fn model(&self) -> &str {
        &self.model
    }

    pub fn api(&self) -> Api {
        self.http.endpoint().api
    }

    fn request<'a>(
        &'a self,
        messages: &'a [Message],
        schema: Option<&JsonSchema>,
        with_model: bool,
    ) -> Request<'a> {
        Request {
            model: with_model.then_some(self.model.as_str()),
            messages,
            response_format: schema.map(|s| {
                serde_json::json!({
                    "type": "json_schema",
                    "json_schema": {"name": s.name, "strict": true, "schema": s.schema},
                })
            }),
            temperature: self.temperature,
        }
    }

    pub async fn complete(
        &self,
        messages: &[Message],
        schema: Option<&JsonSchema>,
    ) -> Result<ChatAnswer, ProviderError> {
        // Azure names the deployment in the URL, not in the body.
        let request = self.request(messages, schema, self.api() == Api::OpenAi);
        let body = serde_json::to_vec(&request)
            .map_err(|e| ProviderError::Permanent(format!("cannot encode the request: {e}")))?;
        let answer = self.http.post_json(&body, "chat").await?;
        let mut read = self.read_completion(&answer.body)?;
        read.rate_limit = answer.rate_limit;
        read.attempts = answer.attempts;
        Ok(read)
    }

    /// The request [`ChatClient::complete`] would send, as one line of a
    /// Batch API input file: `{"custom_id", "method", "url", "body"}`. The
    /// body names the model for both APIs (Azure routes batch lines by it).
    pub fn batch_line(
        &self,
        custom_id: &str,
        messages: &[Message],
        schema: Option<&JsonSchema>,
    ) -> serde_json::Value {
        serde_json::json!({
            "custom_id": custom_id,
            "method": "POST",
            "url": crate::batch::chat_url(self.api()),
            "body": self.request(messages, schema, true),
        })
    }

    /// A chat completion's JSON (an HTTP answer's body, or the
    /// `response.body` of a Batch API output line) as an answer; no
    /// rate-limit state, one attempt.
    pub fn read_completion(&self, body: &str) -> Result<ChatAnswer, ProviderError> {
        let unusable = |what: String, usage: Usage| ProviderError::Unusable {
            reason: format!("{}: unusable answer: {what}", self.describe()),
            usage,
        };
        let response: Response = serde_json::from_str(body)
            .map_err(|e| unusable(format!("not a chat completion: {e}"), Usage::default()))?;
        let usage = response.usage;
        shared::metrics::provider_tokens(
            self.api().name(),
            "chat",
            usage.prompt_tokens,
            usage.completion_tokens,
        );
        let choice = response
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| unusable("no choices".into(), usage))?;
        if let Some(refusal) = choice.message.refusal.filter(|r| !r.is_empty()) {
            return Err(unusable(format!("the model refused: {refusal}"), usage));
        }
        if choice.finish_reason.as_deref() == Some("length") {
            return Err(unusable("cut short at the token limit".into(), usage));
        }
        let content = choice
            .message
            .content
            .ok_or_else(|| unusable("no content".into(), usage))?;
        Ok(ChatAnswer {
            content,
            usage,
            rate_limit: RateLimit::default(),
            attempts: 1,
        })
    }

    /// [`ChatClient::complete`] with `schema`, the answer parsed as `T`.
    pub async fn complete_json<T: DeserializeOwned>(
        &self,
        messages: &[Message],
        schema: &JsonSchema,
    ) -> Result<(T, ChatAnswer), ProviderError> {
        let answer = self.complete(messages, Some(schema)).await?;
        let parsed =
            serde_json::from_str(&answer.content).map_err(|e| ProviderError::Unusable {
                reason: format!(
                    "{}: the answer is not the JSON asked for ({}): {e}",
                    self.describe(),
                    schema.name
                ),
                usage: answer.usage,
            })?;
        Ok((parsed, answer))
    }
}
