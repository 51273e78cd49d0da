//! Similarity by meaning, with the local all-MiniLM-L6-v2 model the project
//! already runs for embeddings: "twelve days on one charge" is close to
//! "battery life" although they share no word.
//!
//! This is the only module that calls the embedding crate, so that moving or
//! renaming it is a change here alone.

use std::path::Path;
use std::sync::Arc;

use providers::embed::local::{LocalModel, Spread, DEFAULT_SUB_BATCH};

use crate::AnalysisError;

/// The sentence encoder: L2-normalised vectors, so a dot product is a cosine.
#[derive(Clone)]
pub struct SentenceEncoder {
    model: Arc<LocalModel>,
}

impl SentenceEncoder {
    /// The process-wide model in `dir`, on `threads` threads (0: every core),
    /// loaded on first use and shared with the embedding provider.
    pub fn load(dir: &Path, threads: usize) -> Result<Self, AnalysisError> {
        let model =
            LocalModel::shared(dir, threads).map_err(|e| AnalysisError::Model(e.to_string()))?;
        Ok(SentenceEncoder { model })
    }

    /// Says what is missing from `dir`, and how to get it, if anything is.
    pub fn check_dir(dir: &Path) -> Result<(), AnalysisError> {
        providers::embed::local::check_model_dir(dir)
            .map_err(|e| AnalysisError::Model(e.to_string()))
    }

    /// One vector per text, in input order (blocking: run it off an async runtime).
    pub fn encode(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AnalysisError> {
        self.model
            .embed_blocking(texts, DEFAULT_SUB_BATCH, Spread::Auto)
            .map(|(vectors, _)| vectors)
            .map_err(|e| AnalysisError::Model(e.to_string()))
    }

    /// The model's folder, for the `source` of what the analyser writes.
    pub fn model_dir(&self) -> &Path {
        self.model.model_dir()
    }
}

/// Cosine of two L2-normalised vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// User + system CPU seconds of this process so far (Linux), for benchmarks.
pub use providers::embed::bench::process_cpu_seconds;
/// The model's thread count for a configured one (0: every core).
pub use providers::embed::local::resolve_threads;
