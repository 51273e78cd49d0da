//! The local review analyser: for a review and the features of its product,
//! which features it talks about, the sentiment about each (positive,
//! negative, neutral), how sure it is, the sentence that says so, and which
//! aspect is the main one. CPU only, in-process, no network.
//!
//! The shape: [`text`] cuts a review into sentences and clauses (byte ranges,
//! so evidence is a verbatim slice); [`Analyser`] decides which sentence is
//! about which candidate feature, by shared words and by meaning
//! ([`meaning`], the local MiniLM model); [`polarity`] scores the clauses
//! about each feature (VADER), and the star rating adds a weak prior. The
//! rating never decides alone: a 4-star review that wishes the microphone
//! were clearer is negative about the microphone. [`evaluate`] measures all
//! of it against a labels file.

use std::ops::Range;

pub mod analyser;
pub mod dataset;
pub mod evaluate;
pub mod meaning;
pub mod polarity;
pub mod text;

pub use analyser::Analyser;

/// What a review says about a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sentiment {
    Positive,
    Negative,
    Neutral,
}

impl Sentiment {
    pub const ALL: [Sentiment; 3] = [Sentiment::Positive, Sentiment::Negative, Sentiment::Neutral];

    /// The spelling of the `sentiment` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Sentiment::Positive => "positive",
            Sentiment::Negative => "negative",
            Sentiment::Neutral => "neutral",
        }
    }
}

impl std::fmt::Display for Sentiment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Sentiment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "positive" => Ok(Sentiment::Positive),
            "negative" => Ok(Sentiment::Negative),
            "neutral" => Ok(Sentiment::Neutral),
            other => Err(format!(
                "unknown sentiment {other:?} (expected positive, negative or neutral)"
            )),
        }
    }
}

/// A feature of the review's product: a candidate aspect.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub id: i64,
    pub name: String,
}

/// A review to analyse.
#[derive(Debug, Clone, PartialEq)]
pub struct Review {
    pub id: i64,
    pub text: String,
    /// Stars, 1 to 5, when known.
    pub rating: Option<f64>,
    /// The features of the review's product: the only candidates.
    pub features: Vec<Feature>,
    /// The feature already known to be this review's main one: the main
    /// aspect is then that feature, with the sentiment about it.
    pub known_feature: Option<i64>,
}

/// What the review says about one feature.
#[derive(Debug, Clone, PartialEq)]
pub struct Aspect {
    pub feature_id: i64,
    pub sentiment: Sentiment,
    /// How sure the analyser is of the sentiment: 0.5 (on the edge between
    /// two classes) to 1.
    pub confidence: f32,
    /// Where in the review's text the evidence lies (bytes).
    pub span: Range<usize>,
    /// The sentence or clause that carries the sentiment, verbatim.
    pub evidence: String,
}

/// The analysis of one review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewAspects {
    pub review_id: i64,
    /// One per feature the review talks about, the main one first.
    pub aspects: Vec<Aspect>,
    /// The main aspect's feature; `None` when the review speaks of none of
    /// its product's features.
    pub main_feature: Option<i64>,
}

impl ReviewAspects {
    pub fn main(&self) -> Option<&Aspect> {
        let main = self.main_feature?;
        self.aspects.iter().find(|a| a.feature_id == main)
    }

    pub fn aspect(&self, feature_id: i64) -> Option<&Aspect> {
        self.aspects.iter().find(|a| a.feature_id == feature_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The local model could not be loaded or run.
    #[error("{0}")]
    Model(String),
    /// An input file is malformed; `place` names file, line and column.
    #[error("{place}: {message}")]
    Data { place: String, message: String },
    /// A review cannot be analysed as given.
    #[error("review {review_id}: {message}")]
    Review { review_id: i64, message: String },
}

/// Where the local model lives: `EMBEDDING_MODEL_DIR`, else
/// `$HOME/.cache/agenticshop/all-MiniLM-L6-v2`, where scripts/services.sh unpacks it.
pub fn default_model_dir() -> std::path::PathBuf {
    match std::env::var_os("EMBEDDING_MODEL_DIR") {
        Some(dir) if !dir.is_empty() => dir.into(),
        _ => std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/agenticshop/all-MiniLM-L6-v2"),
    }
}
