//! The model providers: everything that sends text to a model, local or
//! remote.
//!
//! - [`http`]: the one HTTP client for OpenAI-compatible and Azure OpenAI
//!   APIs (URLs, auth, time-outs, the retry policy, rate-limit headers);
//! - [`embed`]: the [`embed::Embedder`] trait, the local model, the OpenAI
//!   and Azure embedders on [`http`], and the texts they embed;
//! - [`chat`]: a chat completions client on [`http`], with structured
//!   (`json_schema`, strict) answers and token usage;
//! - [`batch`]: the Batch API (`files`, `batches`) for chat requests sent
//!   as a JSONL file and answered within 24 hours, at half the price.

pub mod batch;
pub mod chat;
pub mod embed;
pub mod http;

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Retrying cannot help (a 4xx other than 429, a bad setting, a model
    /// folder that does not load...): fail with this message.
    #[error("{0}")]
    Permanent(String),
    /// It might pass later: retries were exhausted on 429, 5xx or time-outs.
    #[error("{0}")]
    Transient(String),
    /// The provider answered, but not with what was asked: a chat answer
    /// cut short, refused, or not the JSON of its schema. Asking again may
    /// well do; the answer's tokens were spent all the same.
    #[error("{reason}")]
    Unusable { reason: String, usage: chat::Usage },
}
