//! Embedding providers and the texts they embed.
//!
//! Everything that turns text into vectors lives here, behind [`Embedder`],
//! so that the embed workers and `orchestrator search` embed the same way.

use std::sync::Arc;

pub mod bench;
pub mod bert;
pub mod http;
pub mod local;
pub mod text;

pub use bench::{bench_local, review_like_texts, BenchReport};
pub use http::{AzureOpenAiEmbedder, OpenAiEmbedder};
pub use local::{LocalEmbedder, LocalModel};

/// Why a batch could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Retrying cannot help (a 4xx other than 429, a bad model folder...):
    /// the task fails with this message.
    #[error("{0}")]
    Permanent(String),
    /// Retries were exhausted on errors that might pass (429, 5xx, time-outs).
    #[error("{0}")]
    Transient(String),
}

#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// What it is, for logs: provider, model, dimensions. Never a secret.
    fn describe(&self) -> String;
    /// Length of every vector it returns.
    async fn dimensions(&self) -> Result<usize, EmbedError>;
    /// One vector per input, in input order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// The provider that `EMBEDDING_PROVIDER` names.
pub fn from_config(config: &shared::config::EmbeddingConfig) -> anyhow::Result<Arc<dyn Embedder>> {
    use shared::config::EmbeddingProvider;
    match config.provider {
        EmbeddingProvider::Local => Ok(Arc::new(LocalEmbedder::from_config(config)?)),
        EmbeddingProvider::OpenAi => Ok(Arc::new(OpenAiEmbedder::from_config(config)?)),
        EmbeddingProvider::AzureOpenAi => Ok(Arc::new(AzureOpenAiEmbedder::from_config(config)?)),
    }
}
