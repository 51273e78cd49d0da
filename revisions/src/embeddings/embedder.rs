//! The embedding provider of a worker process, owned by the embeddings
//! executor.

use shared::Config;
use std::sync::Arc;

/// The embedding provider of a worker process: made on first use (a worker
/// that never takes an embed task never loads a model), then kept, so the
/// local model's weights load once and HTTP connections are reused.
pub struct Embedder {
    /// The provider settings (`embedding` and the `openai` / `azure` sections).
    settings: Config,
    made: tokio::sync::OnceCell<Arc<dyn providers::embed::Embedder>>,
}

impl Embedder {
    pub fn new(config: &Config) -> Embedder {
        Embedder {
            settings: config.clone(),
            made: tokio::sync::OnceCell::new(),
        }
    }

    /// The provider `EMBEDDING_PROVIDER` names.
    pub async fn get(&self) -> anyhow::Result<Arc<dyn providers::embed::Embedder>> {
        let made = self
            .made
            .get_or_try_init(|| async {
                let settings = self.settings.clone();
                // Loading a local model reads and converts its weights: not on the async threads.
                tokio::task::spawn_blocking(move || providers::embed::from_config(&settings))
                    .await
                    .map_err(|e| anyhow::anyhow!("loading the embedding provider panicked: {e}"))?
            })
            .await?;
        Ok(made.clone())
    }
}
