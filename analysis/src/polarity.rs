//! The sentiment of one clause: VADER (Hutto & Gilbert 2014; the
//! `vader-parity` port of vaderSentiment 3.3.2, lexicon vendored), with
//! negation ("not great"), boosters ("really", "barely") and the contrastive
//! "but", corrected by a small lexicon of shop-review wording
//! (`data/review_terms.tsv`).
//!
//! VADER's lexicon is general-purpose: it reads "a steal" and "I wish" as
//! negative and positive, "okay" and "fine" as praise, and knows neither
//! "laggy" nor "flimsy". A review term found in the clause is blanked out
//! before VADER scores the rest, and its own valence is added to VADER's
//! (on VADER's unnormalised scale, then normalised as VADER does), flipped
//! and damped when a negation stands just before it. Lukewarm wording
//! ("okay", "does the job") carries no valence but is counted: the analyser
//! reads it as neutral.

use vader_parity::SentimentIntensityAnalyzer;

use crate::text::words_joined;

/// VADER's normalisation constant: compound = x / sqrt(x² + ALPHA).
const ALPHA: f32 = 15.0;
/// VADER's factor for a negated word.
const NEGATION_SCALAR: f32 = -0.74;
/// How many words before a term a negation still applies.
const NEGATION_WINDOW: usize = 3;
const NEGATIONS: [&str; 13] = [
    "not", "no", "never", "isn't", "doesn't", "don't", "didn't", "wasn't", "aren't", "won't",
    "hardly", "without", "nothing",
];

const REVIEW_TERMS: &str = include_str!("../data/review_terms.tsv");

/// What a clause says: a score in [-1, 1] and how much lukewarm wording it has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClauseSentiment {
    pub score: f32,
    pub lukewarm: usize,
}

/// A review term: its words, and its valence (`None`: lukewarm).
struct Term {
    words: Vec<String>,
    valence: Option<f32>,
}

/// Scores clauses; build one and reuse it (building parses both lexicons).
pub struct Polarity {
    vader: SentimentIntensityAnalyzer,
    /// Longest first, so "not worth" wins over "worth it".
    terms: Vec<Term>,
}

impl Default for Polarity {
    fn default() -> Self {
        let mut terms: Vec<Term> = REVIEW_TERMS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|line| {
                let (phrase, value) = line.split_once('\t')?;
                Some(Term {
                    words: phrase.split_whitespace().map(str::to_string).collect(),
                    valence: value.trim().parse().ok(),
                })
            })
            .collect();
        terms.sort_by_key(|t| std::cmp::Reverse(t.words.len()));
        Polarity {
            vader: SentimentIntensityAnalyzer::new(),
            terms,
        }
    }
}

fn normalise_word(word: &str) -> String {
    word.to_lowercase().replace('’', "'")
}

impl Polarity {
    /// VADER's compound score of `text` alone, in [-1, 1].
    pub fn vader(&self, text: &str) -> f32 {
        self.vader.polarity_scores(text).compound as f32
    }

    /// The sentiment of `clause`.
    pub fn clause(&self, clause: &str) -> ClauseSentiment {
        let ranges = words_joined(clause, true);
        let tokens: Vec<String> = ranges
            .iter()
            .map(|r| normalise_word(&clause[r.clone()]))
            .collect();
        let mut used = vec![false; tokens.len()];
        let mut added = 0.0f32;
        let mut lukewarm = 0;
        let mut blanked = clause.to_string();
        let mut blanks = Vec::new();
        for i in 0..tokens.len() {
            for term in &self.terms {
                let n = term.words.len();
                if i + n > tokens.len()
                    || used[i..i + n].iter().any(|&u| u)
                    || tokens[i..i + n] != term.words[..]
                {
                    continue;
                }
                let negated = tokens[i.saturating_sub(NEGATION_WINDOW)..i]
                    .iter()
                    .any(|t| NEGATIONS.contains(&t.as_str()) || t.ends_with("n't"));
                match term.valence {
                    Some(v) => added += if negated { v * NEGATION_SCALAR } else { v },
                    None if !negated => lukewarm += 1,
                    None => {}
                }
                used[i..i + n].iter_mut().for_each(|u| *u = true);
                blanks.push(ranges[i].start..ranges[i + n - 1].end);
                break;
            }
        }
        // Blank from the end so earlier ranges stay valid; spaces keep VADER's word positions.
        for range in blanks.into_iter().rev() {
            blanked.replace_range(range.clone(), &" ".repeat(range.len()));
        }
        let compound = self.vader(&blanked).clamp(-0.9999, 0.9999);
        let raw = compound * ALPHA.sqrt() / (1.0 - compound * compound).sqrt() + added;
        ClauseSentiment {
            score: raw / (raw * raw + ALPHA).sqrt(),
            lukewarm,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_terms_correct_vaders_general_lexicon() {
        let p = Polarity::default();
        assert!(p.vader("It was a steal at that price.") < 0.0);
        assert!(p.clause("It was a steal at that price.").score > 0.2);
        assert!(p.clause("The touch panel is laggy.").score < -0.2);
    }

    #[test]
    fn lukewarm_wording_is_counted_not_scored_and_negation_cancels_it() {
        let p = Polarity::default();
        let fine = p.clause("The battery is fine.");
        assert_eq!((fine.score, fine.lukewarm), (0.0, 1));
        assert_eq!(p.clause("It is not okay at all.").lukewarm, 0);
    }

    #[test]
    fn a_negated_review_term_turns_around() {
        let p = Polarity::default();
        assert!(p.clause("The hinge feels sturdy.").score > 0.2);
        assert!(p.clause("The hinge does not feel sturdy.").score < -0.2);
    }
}
