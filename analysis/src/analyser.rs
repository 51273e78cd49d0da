//! Which sentence is about which feature, and what it says about it.
//!
//! For every sentence and every candidate feature the analyser computes a
//! *relevance*: the cosine between the sentence's and the feature name's
//! MiniLM vectors, less the sentence's mean cosine over all candidates (a
//! sentence about "these earbuds" is close to every earbud feature, and so
//! to none in particular), plus a bonus for the feature's words in the
//! sentence: the words of its name, or the words reviewers use for them
//! (`data/feature_terms.tsv`: "waterproof" for *water*, "mic" for
//! *microphone*). A word shared by several candidates, like "quality", counts
//! for less.
//!
//! A sentence is about its most relevant feature, if relevant enough, and
//! about any other feature it names; a sentence about none continues the
//! one before it ("It failed after a month."). A feature some sentence is
//! about is an aspect of the review. When no sentence clears the threshold,
//! the single most relevant pair still counts if it clears a lower one.
//!
//! The sentiment about a feature comes from the clauses of its sentences
//! (see [`crate::polarity`]): in a sentence that names the feature, only the
//! clauses from that name on, until another feature is named ("I wanted to
//! like it, but the pen has terrible palm rejection" is about the pen's
//! second clause). Their scores are averaged; strong praise and strong blame
//! together, or lukewarm wording, make it neutral. The star rating is a
//! weak prior added to that: it decides a sentence without sentiment words
//! and cannot overturn clear words.
//!
//! The main aspect is the feature with the most relevant sentences, earlier
//! ones weighing more (reviews tend to open with their point), and the
//! sentences that continue them weighing a little.

use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Mutex;

use crate::meaning::{cosine, SentenceEncoder};
use crate::polarity::Polarity;
use crate::text::{clauses, sentences, stem, words};
use crate::{AnalysisError, Aspect, Feature, Review, ReviewAspects, Sentiment};

/// The knobs of the method, chosen on the generated part of
/// `data/eval/review_labels.csv` (never on the hand-written part).
#[derive(Debug, Clone)]
pub struct Params {
    /// Relevance a sentence needs to be about a feature.
    pub aspect_threshold: f32,
    /// When no sentence clears `aspect_threshold`, the most relevant pair
    /// still counts above this...
    pub fallback_threshold: f32,
    /// ...if the sentence is also this close to the feature's name in
    /// meaning, uncentred: with many candidates, centring alone lifts one of
    /// them above the rest even for a sentence about none ("arrived late").
    pub fallback_min_cosine: f32,
    /// Share of the sentence's mean cosine over the candidates subtracted.
    pub centring: f32,
    /// Added to the relevance when all of a feature's words are in the sentence.
    pub word_bonus: f32,
    /// Weight of a sentence for the main aspect: `position_decay` to the power of its index.
    pub position_decay: f32,
    /// Weight, for the main aspect, of a sentence that continues a feature's sentence.
    pub continuation_weight: f32,
    /// Weight, in the mean, of a clause of a sentence that only continues the feature's.
    pub continuation_clause_weight: f32,
    /// Weight of the sentence's meaning-based polarity (its cosine to a
    /// praising sentence less its cosine to a complaining one), added to
    /// each of its clauses' lexicon score.
    pub meaning_polarity: f32,
    /// Weight of the star rating, mapped to [-1, 1], added to the clauses' mean score.
    pub rating_prior: f32,
    /// Scores within this distance of 0 are neutral.
    pub neutral_band: f32,
    /// A clause at least this positive and another at least this negative: mixed, so neutral.
    pub mixed_level: f32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            aspect_threshold: 0.25,
            fallback_threshold: 0.10,
            fallback_min_cosine: 0.25,
            centring: 1.0,
            word_bonus: 0.5,
            position_decay: 0.8,
            continuation_weight: 0.2,
            continuation_clause_weight: 0.5,
            meaning_polarity: 3.0,
            rating_prior: 0.3,
            neutral_band: 0.15,
            mixed_level: 0.7,
        }
    }
}

/// A sentence that praises and one that complains, in general words: a
/// sentence's polarity by meaning is how much closer it is to the first.
const PRAISE: &str = "I love it, it works great and I am very happy with it.";
const COMPLAINT: &str = "It is terrible, it stopped working and I am very disappointed.";

/// The analyser: the sentence model, the lexicon and a cache of feature-name vectors.
pub struct Analyser {
    encoder: SentenceEncoder,
    polarity: Polarity,
    params: Params,
    feature_vectors: Mutex<HashMap<String, Vec<f32>>>,
    /// The vectors of [`PRAISE`] and [`COMPLAINT`].
    poles: [Vec<f32>; 2],
}

/// A review and its sentences, during analysis.
struct Prepared<'a> {
    review: &'a Review,
    sentences: Vec<Range<usize>>,
}

impl Analyser {
    /// Loads the MiniLM model from `model_dir` (shared with the embedding
    /// provider when both run in one process), on `threads` threads (0: all).
    pub fn load(model_dir: &Path, threads: usize) -> Result<Analyser, AnalysisError> {
        let encoder = SentenceEncoder::load(model_dir, threads)?;
        let mut poles = encoder.encode(&[PRAISE.to_string(), COMPLAINT.to_string()])?;
        let complaint = poles.pop().unwrap_or_default();
        let praise = poles.pop().unwrap_or_default();
        Ok(Analyser {
            encoder,
            polarity: Polarity::default(),
            params: Params::default(),
            feature_vectors: Mutex::new(HashMap::new()),
            poles: [praise, complaint],
        })
    }

    pub fn with_params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// What produced the results, for the `source` column.
    pub fn source(&self) -> String {
        Self::source_for(self.encoder.model_dir())
    }

    /// The `source` of an analyser loaded from `model_dir`, known before it
    /// is loaded (a re-run compares it with the one that decided a review).
    pub fn source_for(model_dir: &Path) -> String {
        let model = model_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("local:vader-3.3.2+{model}")
    }

    /// Analyses one review.
    pub fn analyse(&self, review: &Review) -> Result<ReviewAspects, AnalysisError> {
        Ok(self.analyse_batch(std::slice::from_ref(review))?.remove(0))
    }

    /// Analyses many reviews; one result per review, in input order. All
    /// sentences of the batch go through the model together (blocking: call
    /// it from a blocking thread in async code).
    pub fn analyse_batch(&self, reviews: &[Review]) -> Result<Vec<ReviewAspects>, AnalysisError> {
        for review in reviews {
            if let Some(known) = review.known_feature {
                if !review.features.iter().any(|f| f.id == known) {
                    return Err(AnalysisError::Review {
                        review_id: review.id,
                        message: format!(
                            "its known feature {known} is not one of its product's features"
                        ),
                    });
                }
            }
        }
        let prepared: Vec<Prepared> = reviews
            .iter()
            .map(|review| Prepared {
                review,
                sentences: sentences(&review.text),
            })
            .collect();
        // Each distinct sentence once: openers and closers ("Would buy
        // again.") recur across reviews.
        let mut distinct: HashMap<&str, usize> = HashMap::new();
        let mut texts: Vec<String> = Vec::new();
        let slots: Vec<usize> = prepared
            .iter()
            .flat_map(|p| p.sentences.iter().map(|s| &p.review.text[s.clone()]))
            .map(|sentence| {
                *distinct.entry(sentence).or_insert_with(|| {
                    texts.push(sentence.to_string());
                    texts.len() - 1
                })
            })
            .collect();
        let encoded = self.encoder.encode(&texts)?;
        let vectors: Vec<&Vec<f32>> = slots.iter().map(|&i| &encoded[i]).collect();
        let names: Vec<&Feature> = reviews.iter().flat_map(|r| r.features.iter()).collect();
        self.cache_feature_vectors(&names)?;
        let features = self
            .feature_vectors
            .lock()
            .unwrap_or_else(|p| p.into_inner());

        let mut offset = 0;
        let mut out = Vec::with_capacity(reviews.len());
        for p in &prepared {
            let sentence_vectors = &vectors[offset..offset + p.sentences.len()];
            offset += p.sentences.len();
            let feature_vectors: Vec<&[f32]> = p
                .review
                .features
                .iter()
                .map(|f| features[&f.name].as_slice())
                .collect();
            out.push(self.analyse_prepared(p, sentence_vectors, &feature_vectors));
        }
        Ok(out)
    }

    fn cache_feature_vectors(&self, features: &[&Feature]) -> Result<(), AnalysisError> {
        let missing: Vec<String> = {
            let cache = self
                .feature_vectors
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let mut names: Vec<String> = features
                .iter()
                .filter(|f| !cache.contains_key(&f.name))
                .map(|f| f.name.clone())
                .collect();
            names.sort();
            names.dedup();
            names
        };
        if missing.is_empty() {
            return Ok(());
        }
        let queries: Vec<String> = missing.iter().map(|n| feature_query(n)).collect();
        let vectors = self.encoder.encode(&queries)?;
        let mut cache = self
            .feature_vectors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        cache.extend(missing.into_iter().zip(vectors));
        Ok(())
    }

    fn analyse_prepared(
        &self,
        p: &Prepared,
        sentence_vectors: &[&Vec<f32>],
        feature_vectors: &[&[f32]],
    ) -> ReviewAspects {
        let review = p.review;
        let text = review.text.as_str();
        let features = &review.features;
        let keys = FeatureWords::new(features);
        let params = &self.params;
        let n = p.sentences.len();

        let sentence_stems: Vec<Vec<String>> = p
            .sentences
            .iter()
            .map(|s| stems_of(&text[s.clone()]))
            .collect();
        let coverage: Vec<Vec<f32>> = sentence_stems
            .iter()
            .map(|stems| {
                (0..features.len())
                    .map(|f| keys.coverage(f, stems))
                    .collect()
            })
            .collect();
        let cosines: Vec<Vec<f32>> = sentence_vectors
            .iter()
            .map(|v| feature_vectors.iter().map(|f| cosine(v, f)).collect())
            .collect();
        let relevance: Vec<Vec<f32>> = cosines
            .iter()
            .zip(&coverage)
            .map(|(cos, cov)| {
                let mean = cos.iter().sum::<f32>() / cos.len().max(1) as f32;
                cos.iter()
                    .zip(cov)
                    .map(|(c, w)| c - params.centring * mean + params.word_bonus * w)
                    .collect()
            })
            .collect();

        let leaning: Vec<f32> = sentence_vectors
            .iter()
            .map(|v| cosine(v, &self.poles[0]) - cosine(v, &self.poles[1]))
            .collect();

        // The features each sentence is about, its most relevant one first.
        let mut about: Vec<Vec<usize>> = relevance
            .iter()
            .zip(&coverage)
            .map(|(row, cov)| {
                let mut set: Vec<usize> = first_max(row)
                    .filter(|&f| row[f] >= params.aspect_threshold)
                    .into_iter()
                    .collect();
                if let Some(&top) = set.first() {
                    set.extend((0..features.len()).filter(|&f| {
                        f != top && cov[f] >= 0.5 && row[f] >= params.aspect_threshold
                    }));
                }
                set
            })
            .collect();
        if about.iter().all(|set| set.is_empty()) {
            let pairs = (0..n).flat_map(|s| (0..features.len()).map(move |f| (s, f)));
            let mut top: Option<(usize, usize)> = None;
            for (s, f) in pairs {
                if top.is_none_or(|(ts, tf)| relevance[s][f] > relevance[ts][tf]) {
                    top = Some((s, f));
                }
            }
            if let Some((s, f)) = top.filter(|&(s, f)| {
                relevance[s][f] >= params.fallback_threshold
                    && (cosines[s][f] >= params.fallback_min_cosine || coverage[s][f] > 0.0)
            }) {
                about[s].push(f);
            }
        }
        let known = review
            .known_feature
            .and_then(|id| features.iter().position(|f| f.id == id));
        if let Some(k) = known {
            if n > 0 && !about.iter().any(|set| set.contains(&k)) {
                // The known feature is the review's subject even if no
                // sentence clears the threshold: its most relevant sentence is about it.
                let s =
                    first_max(&relevance.iter().map(|row| row[k]).collect::<Vec<_>>()).unwrap_or(0);
                about[s].push(k);
            }
        }
        // A sentence about nothing continues the one before it.
        let mut carried = about.clone();
        for s in 1..n {
            if carried[s].is_empty() {
                carried[s] = carried[s - 1].clone();
            }
        }

        let mut mass = vec![0.0f32; features.len()];
        for s in 0..n {
            let weight = params.position_decay.powi(s as i32);
            if let Some(&f) = about[s].first() {
                mass[f] += relevance[s][f] * weight;
            } else if let Some(&f) = carried[s].first() {
                mass[f] += params.continuation_weight * weight;
            }
        }

        let mut aspects: Vec<Aspect> = (0..features.len())
            .filter_map(|f| {
                let own: Vec<usize> = (0..n).filter(|&s| about[s].contains(&f)).collect();
                let first = *own.first()?;
                let evidence_sentence = own.iter().copied().fold(first, |b, s| {
                    if relevance[s][f] > relevance[b][f] {
                        s
                    } else {
                        b
                    }
                });
                let spoken: Vec<usize> = (0..n).filter(|&s| carried[s].contains(&f)).collect();
                Some(self.aspect(
                    text,
                    &p.sentences,
                    &about,
                    &leaning,
                    &spoken,
                    evidence_sentence,
                    f,
                    &keys,
                    review,
                ))
            })
            .collect();
        if let (Some(k), true) = (known, aspects.is_empty()) {
            // An empty text: nothing to read but the stars.
            aspects.push(self.aspect(text, &[], &[], &[], &[], 0, k, &keys, review));
        }

        let main_feature = match known {
            Some(k) => Some(features[k].id),
            None => first_max(&mass)
                .filter(|&f| mass[f] > 0.0)
                .map(|f| features[f].id),
        };
        if let Some(main) = main_feature {
            if let Some(i) = aspects.iter().position(|a| a.feature_id == main) {
                let first = aspects.remove(i);
                aspects.insert(0, first);
            }
        }
        ReviewAspects {
            review_id: review.id,
            aspects,
            main_feature,
        }
    }

    /// The aspect for `feature`, from the clauses about it in the sentences `spoken`.
    #[allow(clippy::too_many_arguments)]
    fn aspect(
        &self,
        text: &str,
        sentence_ranges: &[Range<usize>],
        about: &[Vec<usize>],
        leaning: &[f32],
        spoken: &[usize],
        evidence_sentence: usize,
        feature: usize,
        keys: &FeatureWords,
        review: &Review,
    ) -> Aspect {
        let params = &self.params;
        let mut scores = Vec::new();
        let mut lukewarm = 0;
        let mut evidence_clause: Option<(f32, Range<usize>)> = None;
        let mut names_in_evidence = 0;
        for &s in spoken {
            let weight = if about[s].contains(&feature) {
                1.0
            } else {
                params.continuation_clause_weight
            };
            let parts = clauses(text, sentence_ranges[s].clone());
            let named: Vec<Option<usize>> = parts
                .iter()
                .map(|c| keys.named(&stems_of(&text[c.clone()])))
                .collect();
            if s == evidence_sentence {
                let mut distinct: Vec<usize> = named.iter().flatten().copied().collect();
                distinct.sort_unstable();
                distinct.dedup();
                names_in_evidence = distinct.len();
            }
            // A clause is about the feature it names, else about the one the
            // clause before it named; before any name, about the sentence's
            // feature unless the sentence names this one later.
            let mut current = if named.contains(&Some(feature)) {
                None
            } else {
                Some(feature)
            };
            for (c, name) in parts.iter().zip(&named) {
                if name.is_some() {
                    current = *name;
                }
                if current != Some(feature) {
                    continue;
                }
                let said = self.polarity.clause(&text[c.clone()]);
                let score = (said.score + params.meaning_polarity * leaning[s]).clamp(-1.0, 1.0);
                scores.push((score, weight));
                lukewarm += said.lukewarm;
                if s == evidence_sentence
                    && evidence_clause
                        .as_ref()
                        .is_none_or(|(e, _)| score.abs() > *e)
                {
                    evidence_clause = Some((score.abs(), c.clone()));
                }
            }
        }
        let span = match evidence_clause {
            // The whole sentence reads better, unless it is about two features.
            Some((_, clause)) if names_in_evidence > 1 => clause,
            _ => sentence_ranges
                .get(evidence_sentence)
                .cloned()
                .unwrap_or(0..text.len()),
        };

        let total_weight: f32 = scores.iter().map(|(_, w)| w).sum();
        let mean = if scores.is_empty() {
            0.0
        } else {
            scores.iter().map(|(s, w)| s * w).sum::<f32>() / total_weight
        };
        let mixed = scores.iter().any(|&(s, _)| s >= params.mixed_level)
            && scores.iter().any(|&(s, _)| s <= -params.mixed_level);
        let words_say = if mixed || lukewarm > 0 { 0.0 } else { mean };
        let prior = review
            .rating
            .map_or(0.0, |r| ((r as f32 - 3.0) / 2.0).clamp(-1.0, 1.0));
        let score = words_say + params.rating_prior * prior;
        let band = params.neutral_band;
        let (sentiment, confidence) = if score > band {
            (Sentiment::Positive, (score - band) / (1.0 - band))
        } else if score < -band {
            (Sentiment::Negative, (-score - band) / (1.0 - band))
        } else {
            (Sentiment::Neutral, 1.0 - score.abs() / band)
        };
        Aspect {
            feature_id: review.features[feature].id,
            sentiment,
            confidence: 0.5 + 0.5 * confidence.clamp(0.0, 1.0),
            evidence: text[span.clone()].to_string(),
            span,
        }
    }
}

fn stems_of(text: &str) -> Vec<String> {
    words(text).into_iter().map(|w| stem(&text[w])).collect()
}

/// The index of the largest value, the first of equal ones.
fn first_max(row: &[f32]) -> Option<usize> {
    (0..row.len()).fold(None, |best, i| match best {
        Some(b) if row[b] >= row[i] => Some(b),
        _ => Some(i),
    })
}

/// What the model compares sentences with, for a feature name.
fn feature_query(name: &str) -> String {
    name.replace('/', " and ")
}

const FEATURE_TERMS: &str = include_str!("../data/feature_terms.tsv");
const NAME_STOPWORDS: [&str; 6] = ["and", "the", "of", "for", "with", "per"];

/// Per word of a feature name (by stem), the stems of the terms reviewers use for it.
fn feature_terms() -> &'static HashMap<String, Vec<Vec<String>>> {
    static TERMS: std::sync::OnceLock<HashMap<String, Vec<Vec<String>>>> =
        std::sync::OnceLock::new();
    TERMS.get_or_init(|| {
        FEATURE_TERMS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (key, terms) = line.split_once('\t')?;
                let terms = terms
                    .split(',')
                    .map(stems_of)
                    .filter(|t| !t.is_empty())
                    .collect();
                Some((stem(key.trim()), terms))
            })
            .collect()
    })
}

/// A name word of a candidate: its stem, its weight, and the terms that stand for it.
struct NameWord {
    stem: String,
    weight: f32,
    terms: &'static [Vec<String>],
}

/// The candidates' words, each weighted by how many candidates share it.
struct FeatureWords {
    words: Vec<Vec<NameWord>>,
}

impl FeatureWords {
    fn new(features: &[Feature]) -> Self {
        let per: Vec<Vec<String>> = features
            .iter()
            .map(|f| {
                let mut stems: Vec<String> = Vec::new();
                for w in words(&f.name) {
                    let word = &f.name[w];
                    let s = stem(word);
                    if !NAME_STOPWORDS.contains(&word.to_lowercase().as_str())
                        && !stems.contains(&s)
                    {
                        stems.push(s);
                    }
                }
                stems
            })
            .collect();
        let mut shared: HashMap<&str, usize> = HashMap::new();
        for stems in &per {
            for s in stems {
                *shared.entry(s.as_str()).or_default() += 1;
            }
        }
        let glossary = feature_terms();
        let words = per
            .iter()
            .map(|stems| {
                let n = stems.len().max(1) as f32;
                stems
                    .iter()
                    .map(|s| NameWord {
                        stem: s.clone(),
                        weight: 1.0 / (n * shared[s.as_str()] as f32),
                        terms: glossary.get(s).map_or(&[], |t| t.as_slice()),
                    })
                    .collect()
            })
            .collect();
        FeatureWords { words }
    }

    /// The weighted share of feature `f`'s name words present in `stems`,
    /// in person or by one of their terms.
    fn coverage(&self, f: usize, stems: &[String]) -> f32 {
        self.words[f]
            .iter()
            .filter(|w| {
                stems.contains(&w.stem)
                    || w.terms.iter().any(|t| t.iter().all(|x| stems.contains(x)))
            })
            .map(|w| w.weight)
            .sum()
    }

    /// The feature a clause names, if its words cover at least half of one.
    fn named(&self, stems: &[String]) -> Option<usize> {
        let covered: Vec<f32> = (0..self.words.len())
            .map(|f| self.coverage(f, stems))
            .collect();
        first_max(&covered).filter(|&f| covered[f] >= 0.5)
    }
}
