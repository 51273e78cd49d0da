//! What decides a review's aspects: the [`ReviewAnalyser`] an executor owns,
//! the local one ([`LocalAnalyser`], the default) or an LLM
//! ([`super::llm::LlmAnalyser`]). Both take a slice of reviews, each with its
//! product's features as the only candidates, and answer one
//! [`ReviewOutcome`] per review: the aspects, or why that review could not be
//! decided. An `Err` from [`ReviewAnalyser::analyse`] fails the whole call
//! (the provider is down past its retries): the task is retried.

use analysis::{Review, ReviewAspects};
use std::sync::Arc;

/// What one review came to.
#[derive(Debug, Clone, PartialEq)]
pub enum ReviewOutcome {
    Analysed(ReviewAspects),
    /// Recorded in `pipeline.enrichment_failures` with this reason; a re-run
    /// tries the review again.
    Failed(String),
}

/// The result of one [`ReviewAnalyser::analyse`] call.
#[derive(Debug, Clone, Default)]
pub struct AnalysedBatch {
    /// One per input review, in input order: `(review id, outcome)`.
    pub outcomes: Vec<(i64, ReviewOutcome)>,
    /// Tokens the provider counted (0 for the local analyser).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Requests sent to the provider, retries included (0 locally).
    pub requests: u64,
    /// Aspects the provider named that are not features of the review's
    /// product, dropped.
    pub dropped_features: u64,
}

#[async_trait::async_trait]
pub trait ReviewAnalyser: Send + Sync {
    /// The analyser and model, for the `source` column ("local:…",
    /// "openai:gpt-4o", "azure-openai:<deployment>").
    fn source(&self) -> String;

    /// Decides every review of `reviews`. A review with a `known_feature`
    /// keeps it as its main aspect, with the sentiment about it.
    async fn analyse(&self, reviews: Vec<Review>) -> anyhow::Result<AnalysedBatch>;

    /// The provider's Batch API, when the analyser is to go through it
    /// (`ENRICH_BATCH_API=true`).
    fn batch(&self) -> Option<&dyn BatchAnalyser> {
        None
    }
}

/// Where a submitted batch stands.
#[derive(Debug, Clone)]
pub enum BatchPoll {
    /// Not finished; the provider's status.
    Pending(String),
    Done(AnalysedBatch),
    /// The provider gave up on it (expired, failed, cancelled): why.
    Failed(String),
}

/// An analyser that can submit reviews as one provider batch job and
/// collect its answers later (half the price, within 24 hours).
#[async_trait::async_trait]
pub trait BatchAnalyser: Send + Sync {
    /// Uploads the requests and creates the batch; returns its id.
    async fn submit_batch(&self, reviews: &[Review]) -> anyhow::Result<String>;

    /// Checks on the batch; when it is done, its answers for `reviews`
    /// (the ones submitted), validated as [`ReviewAnalyser::analyse`]'s are.
    async fn poll_batch(&self, batch_id: &str, reviews: &[Review]) -> anyhow::Result<BatchPoll>;
}

/// The local analyser (`analysis::Analyser`): CPU only, on a blocking
/// thread, loaded once per worker process on first use.
pub struct LocalAnalyser {
    model_dir: std::path::PathBuf,
    threads: usize,
    loaded: tokio::sync::OnceCell<Arc<analysis::Analyser>>,
}

impl LocalAnalyser {
    pub fn new(model_dir: std::path::PathBuf, threads: usize) -> LocalAnalyser {
        LocalAnalyser {
            model_dir,
            threads,
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    async fn get(&self) -> anyhow::Result<Arc<analysis::Analyser>> {
        let analyser = self
            .loaded
            .get_or_try_init(|| async {
                let (dir, threads) = (self.model_dir.clone(), self.threads);
                tokio::task::spawn_blocking(move || analysis::Analyser::load(&dir, threads))
                    .await?
                    .map(Arc::new)
                    .map_err(|e| {
                        anyhow::Error::from(shared::exec::Permanent::new(format!(
                            "the local review analyser cannot load its model from {}: {e} \
                             (scripts/services.sh installs it; EMBEDDING_MODEL_DIR points elsewhere)",
                            self.model_dir.display()
                        )))
                    })
            })
            .await?;
        Ok(analyser.clone())
    }
}

#[async_trait::async_trait]
impl ReviewAnalyser for LocalAnalyser {
    fn source(&self) -> String {
        analysis::Analyser::source_for(&self.model_dir)
    }

    async fn analyse(&self, reviews: Vec<Review>) -> anyhow::Result<AnalysedBatch> {
        let analyser = self.get().await?;
        tokio::task::spawn_blocking(move || {
            let mut outcomes = Vec::with_capacity(reviews.len());
            // One batch through the model; a review the analyser refuses is
            // retried alone so that it fails by itself.
            match analyser.analyse_batch(&reviews) {
                Ok(all) => outcomes.extend(
                    all.into_iter()
                        .map(|a| (a.review_id, ReviewOutcome::Analysed(a))),
                ),
                Err(analysis::AnalysisError::Model(e)) => anyhow::bail!("local analyser: {e}"),
                Err(_) => {
                    for review in &reviews {
                        outcomes.push(match analyser.analyse(review) {
                            Ok(a) => (review.id, ReviewOutcome::Analysed(a)),
                            Err(analysis::AnalysisError::Model(e)) => {
                                anyhow::bail!("local analyser: {e}")
                            }
                            Err(e) => (review.id, ReviewOutcome::Failed(e.to_string())),
                        });
                    }
                }
            }
            Ok(AnalysedBatch {
                outcomes,
                ..AnalysedBatch::default()
            })
        })
        .await?
    }
}
