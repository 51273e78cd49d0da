//! Embedding providers and the texts they embed.
//!
//! Everything that turns text into vectors lives here, behind [`Embedder`],
//! so that the embed workers and `orchestrator search` embed the same way:
//! the local model ([`local`], on the encoder in [`bert`]) and the OpenAI
//! and Azure OpenAI embedders ([`remote`], on [`crate::http`]).

use std::sync::Arc;

pub mod bench;
pub mod bert;
pub mod local;
pub mod remote;
pub mod text;

pub use bench::{bench_local, review_like_texts, BenchReport};
pub use local::{LocalEmbedder, LocalModel};
pub use remote::{AzureOpenAiEmbedder, OpenAiEmbedder};

/// Why a batch could not be embedded: [`crate::ProviderError`], whose
/// `Transient` here means retries were exhausted on errors that might pass.
pub type EmbedError = crate::ProviderError;

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
pub fn from_config(config: &shared::Config) -> anyhow::Result<Arc<dyn Embedder>> {
    use shared::config::EmbeddingProvider;
    let (embedding, openai) = (&config.embedding, &config.openai);
    match embedding.provider {
        EmbeddingProvider::Local => Ok(Arc::new(LocalEmbedder::from_config(embedding)?)),
        EmbeddingProvider::OpenAi => Ok(Arc::new(OpenAiEmbedder::from_config(embedding, openai)?)),
        EmbeddingProvider::AzureOpenAi => Ok(Arc::new(AzureOpenAiEmbedder::from_config(
            embedding, openai,
        )?)),
    }
}
