//! Throughput measurement of the local model, for `orchestrator benchmark`
//! and `examples/local_throughput.rs`.

use std::time::Instant;

use crate::embed::local::{BatchStats, LocalEmbedder};
use crate::embed::EmbedError;

/// What a benchmark run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub provider: String,
    pub texts: usize,
    pub seconds: f64,
    pub texts_per_sec: f64,
    /// CPU time the process used during the run (Linux; 0 elsewhere), and
    /// texts per CPU-second × threads: the throughput the run would have had
    /// with its threads to itself, so less sensitive to other load on the machine.
    pub cpu_seconds: f64,
    pub texts_per_sec_cpu_normalised: f64,
    /// Texts per encoder pass (at most).
    pub batch_size: usize,
    pub threads: usize,
    pub dimensions: usize,
    /// Real tokens (with [CLS]/[SEP]) and tokens computed including padding.
    pub tokens: usize,
    pub padded_tokens: usize,
    pub truncated: usize,
    pub avg_chars: f64,
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} texts (avg {:.0} chars, {} tokens, {} with padding, {} truncated) in {:.2} s = {:.1} texts/s (CPU {:.2} s, {:.1} texts/s CPU-normalised); batch {}, threads {}, {} dims",
            self.provider,
            self.texts,
            self.avg_chars,
            self.tokens,
            self.padded_tokens,
            self.truncated,
            self.seconds,
            self.texts_per_sec,
            self.cpu_seconds,
            self.texts_per_sec_cpu_normalised,
            self.batch_size,
            self.threads,
            self.dimensions
        )
    }
}

/// Embeds `texts` with the local model of `config` and times it (after a
/// small warm-up that loads the weights and touches every page).
pub async fn bench_local(
    config: &shared::config::EmbeddingConfig,
    texts: &[String],
) -> Result<BenchReport, EmbedError> {
    let embedder = LocalEmbedder::from_config(config)?;
    bench_embedder(&embedder, texts).await
}

/// Same as [`bench_local`] with an embedder already made (to try sub-batch sizes).
pub async fn bench_embedder(
    embedder: &LocalEmbedder,
    texts: &[String],
) -> Result<BenchReport, EmbedError> {
    let warm: Vec<String> = texts.iter().take(8).cloned().collect();
    embedder.embed_with_stats(&warm).await?;
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let (vectors, stats): (_, BatchStats) = embedder.embed_with_stats(texts).await?;
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = match (cpu_before, process_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    debug_assert_eq!(vectors.len(), texts.len());
    let model = embedder.model();
    Ok(BenchReport {
        provider: format!("local {}", model.model_dir().display()),
        texts: texts.len(),
        seconds,
        texts_per_sec: if seconds > 0.0 {
            texts.len() as f64 / seconds
        } else {
            0.0
        },
        cpu_seconds,
        texts_per_sec_cpu_normalised: if cpu_seconds > 0.0 {
            texts.len() as f64 * model.threads() as f64 / cpu_seconds
        } else {
            0.0
        },
        batch_size: embedder.sub_batch(),
        threads: model.threads(),
        dimensions: model.dims(),
        tokens: stats.tokens,
        padded_tokens: stats.padded_tokens,
        truncated: stats.truncated,
        avg_chars: if texts.is_empty() {
            0.0
        } else {
            texts.iter().map(|t| t.chars().count()).sum::<usize>() as f64 / texts.len() as f64
        },
    })
}

/// User + system CPU time of this process so far, from /proc (Linux).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here; in
    // clock ticks, 100 per second on Linux.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// `n` deterministic product-review-like texts of about 350 characters
/// (the same generator as `scripts/make_reference_vectors.py`, so both sides
/// time comparable inputs).
pub fn review_like_texts(n: usize) -> Vec<String> {
    const OPENERS: [&str; 8] = [
        "I bought this for my daughter and",
        "After three weeks of daily use,",
        "Honestly I was sceptical at first, but",
        "We ordered two of these and",
        "Compared to the previous model,",
        "The delivery was quick and",
        "For the price,",
        "My husband uses it every morning and",
    ];
    const SUBJECTS: [&str; 10] = [
        "the battery easily lasts two full days",
        "the screen is bright and sharp even outdoors",
        "the fabric feels soft and has not pilled after washing",
        "the zipper broke after a couple of weeks",
        "the sound quality is clear with surprisingly deep bass",
        "the straps are comfortable on long hikes",
        "the app keeps disconnecting from the device",
        "the blender crushes ice without any trouble",
        "the sizing runs small so order one size up",
        "the lid does not seal properly and it leaks",
    ];
    const DETAILS: [&str; 8] = [
        "The packaging was minimal and recyclable, which I appreciate.",
        "Customer service answered my question within a day.",
        "Setup took less than five minutes with the included guide.",
        "It is a bit heavier than I expected but feels sturdy.",
        "The colour matches the photos on the product page exactly.",
        "Cleaning it is easy, everything goes in the dishwasher.",
        "I would like more colour options in the next version.",
        "It replaced two other gadgets on my kitchen counter.",
    ];
    const CLOSERS: [&str; 6] = [
        "Overall I would recommend it to friends.",
        "Four stars because of the small issues mentioned above.",
        "I will probably buy another one as a gift.",
        "Not perfect, but good value for the money.",
        "I returned it and bought a different brand instead.",
        "Five stars, exactly what I needed.",
    ];
    (0..n)
        .map(|i| {
            let mut s = format!(
                "{} {}. {} {} {}",
                OPENERS[i % OPENERS.len()],
                SUBJECTS[(i / 3) % SUBJECTS.len()],
                DETAILS[(i / 7) % DETAILS.len()],
                DETAILS[(i / 11 + 3) % DETAILS.len()],
                CLOSERS[(i / 5) % CLOSERS.len()],
            );
            let mut k = i;
            while s.len() < 340 {
                s.push(' ');
                s.push_str(DETAILS[k % DETAILS.len()]);
                k = k / 2 + 5;
            }
            if s.len() > 360 {
                let cut = s[..360].rfind(' ').unwrap_or(360);
                s.truncate(cut);
                let end = s.trim_end_matches(['.', ',']).len();
                s.truncate(end);
                s.push('.');
            }
            s
        })
        .collect()
}
