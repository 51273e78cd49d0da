//! Cutting a review into the pieces the analyser reasons about, as byte
//! ranges of the original text, so that evidence is always a verbatim slice.
//!
//! A *sentence* ends at `.`, `!`, `?` or `…` followed by white space (or the
//! end), or at a line break; decimals (`1.5`), abbreviations (`e.g.`) and
//! a terminator inside a word (`"Quoted."`, `v2.0`) do not end it. A *clause* is a part of a
//! sentence on one side of a contrast (`but`, `although`, `however`, `;`, a
//! dash…): "the sound is great but the mic is muffled" has two clauses with
//! opposite sentiments about different features, and the analyser scores
//! each clause on its own.

use std::ops::Range;

/// Words that open a contrasting clause. "while" and "yet" are left out: they
/// are more often about time ("while running", "not yet").
const CONTRAST_WORDS: [&str; 7] = [
    "but",
    "although",
    "though",
    "however",
    "whereas",
    "except",
    "unfortunately",
];

/// Abbreviations whose final dot does not end a sentence.
const ABBREVIATIONS: [&str; 9] = [
    "e.g", "i.e", "etc", "vs", "mr", "mrs", "dr", "approx", "incl",
];

/// The sentences of `text`, trimmed, empty ones dropped.
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let end_here = match c {
            '\n' | '\r' => Some(i),
            '.' | '!' | '?' | '…' => {
                // Swallow a run of terminators and closing quotes/brackets.
                let mut j = i + c.len_utf8();
                while let Some(&(k, d)) = chars.peek() {
                    if matches!(d, '.' | '!' | '?' | '…' | '"' | '\'' | ')' | '”' | '’') {
                        j = k + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                let at_break = j >= bytes.len() || text[j..].starts_with(char::is_whitespace);
                if at_break && !(c == '.' && ends_with_abbreviation(&text[start..i])) {
                    Some(j)
                } else {
                    None
                }
            }
            _ => None,
        };
        if let Some(end) = end_here {
            push_trimmed(text, start..end, &mut out);
            start = end;
        }
    }
    push_trimmed(text, start..text.len(), &mut out);
    out
}

fn ends_with_abbreviation(before_dot: &str) -> bool {
    let last = before_dot
        .rsplit(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_lowercase();
    ABBREVIATIONS.contains(&last.as_str())
}

fn push_trimmed(text: &str, range: Range<usize>, out: &mut Vec<Range<usize>>) {
    let piece = &text[range.clone()];
    let lead = piece.len() - piece.trim_start().len();
    let trimmed = piece.trim();
    // Pieces without a letter or digit ("—", "!!") carry no statement.
    if trimmed.chars().any(|c| c.is_alphanumeric()) {
        let begin = range.start + lead;
        out.push(begin..begin + trimmed.len());
    }
}

/// The clauses of the sentence `text[sentence]`, split before a contrast word
/// or at `;` and dashes; each range lies within `sentence`.
pub fn clauses(text: &str, sentence: Range<usize>) -> Vec<Range<usize>> {
    let piece = &text[sentence.clone()];
    let mut cuts: Vec<(usize, usize)> = Vec::new(); // (end of previous clause, start of next)
    for (i, c) in piece.char_indices() {
        if matches!(c, ';' | '—' | '–') {
            cuts.push((i, i + c.len_utf8()));
        }
    }
    for (i, word) in words(piece).into_iter().enumerate() {
        let lower = piece[word.clone()].to_lowercase();
        if !CONTRAST_WORDS.contains(&lower.as_str()) {
            continue;
        }
        if i > 0 {
            cuts.push((word.start, word.start));
        } else if let Some(comma) = piece.find(',') {
            // "Although X, Y": the concession ends at its comma.
            cuts.push((comma + 1, comma + 1));
        }
    }
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for (end, next) in cuts {
        if end >= start {
            push_clause(piece, start..end, sentence.start, &mut out);
            start = next;
        }
    }
    push_clause(piece, start..piece.len(), sentence.start, &mut out);
    if out.is_empty() {
        out.push(sentence);
    }
    out
}

fn push_clause(piece: &str, range: Range<usize>, offset: usize, out: &mut Vec<Range<usize>>) {
    let mut shifted = Vec::new();
    push_trimmed(piece, range, &mut shifted);
    out.extend(
        shifted
            .into_iter()
            .map(|r| r.start + offset..r.end + offset),
    );
}

/// The words of `text` (letters, digits and inner apostrophes), as ranges.
pub fn words(text: &str) -> Vec<Range<usize>> {
    words_joined(text, false)
}

/// The words of `text`; with `hyphens`, "so-so" and "rip-off" are one word.
pub fn words_joined(text: &str, hyphens: bool) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let joiner = matches!(c, '\'' | '’') || (hyphens && c == '-');
        let inner_joiner =
            joiner && start.is_some() && chars.peek().is_some_and(|&(_, d)| d.is_alphanumeric());
        if c.is_alphanumeric() || inner_joiner {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            out.push(s..i);
        }
    }
    if let Some(s) = start {
        out.push(s..text.len());
    }
    out
}

/// A word's comparison key: lower case, with a plural or verb ending cut and
/// at most six letters kept, so "connection", "connectivity" and "connects"
/// meet, as do "batteries" and "battery".
pub fn stem(word: &str) -> String {
    let lower: String = word
        .to_lowercase()
        .trim_end_matches("'s")
        .trim_end_matches("’s")
        .to_string();
    let cut = [("ies", 4), ("es", 4), ("s", 3), ("ing", 4), ("ed", 4)]
        .iter()
        .find_map(|&(suffix, keep)| {
            lower
                .strip_suffix(suffix)
                .filter(|rest| rest.chars().count() >= keep && !rest.ends_with('s'))
        })
        .unwrap_or(&lower);
    cut.chars().take(6).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces<'a>(text: &'a str, ranges: &[Range<usize>]) -> Vec<&'a str> {
        ranges.iter().map(|r| &text[r.clone()]).collect()
    }

    #[test]
    fn sentences_end_at_terminators_and_line_breaks_but_not_at_decimals_or_abbreviations() {
        let text = "Lasts 1.5 days, e.g. on trips!! Great.\nSecond line… and more?\"Quoted.\"";
        assert_eq!(
            pieces(text, &sentences(text)),
            vec![
                "Lasts 1.5 days, e.g. on trips!!",
                "Great.",
                "Second line…",
                "and more?\"Quoted.\""
            ]
        );
    }

    #[test]
    fn clauses_split_before_contrast_words_and_at_semicolons() {
        let text = "The sound is rich, but the mic is thin; calls are hard";
        let whole = 0..text.len();
        assert_eq!(
            pieces(text, &clauses(text, whole)),
            vec![
                "The sound is rich,",
                "but the mic is thin",
                "calls are hard"
            ]
        );
    }

    #[test]
    fn a_sentence_opening_with_although_splits_at_its_comma() {
        let text = "Although the pads are soft, the battery dies fast";
        assert_eq!(
            pieces(text, &clauses(text, 0..text.len())),
            vec!["Although the pads are soft,", "the battery dies fast"]
        );
    }

    #[test]
    fn stems_meet_across_word_forms() {
        assert_eq!(stem("Connectivity"), stem("connection"));
        assert_eq!(stem("batteries"), stem("Battery"));
        assert_eq!(stem("cancelling"), stem("Cancellation"));
        assert_ne!(stem("fit"), stem("fitness"));
    }
}
