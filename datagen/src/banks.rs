//! The words the generator draws from — phrase banks, names, cities, the
//! feature catalogue and the sample set's hand-written catalogue, users and
//! reviews — are data files under `datagen/banks/` (its README.md says what
//! each holds). They are compiled in with `include_str!`, so the binary
//! needs no files at run time, and parsed once, on first use.
//!
//! * `*.txt`: a list, one entry per line, taken exactly as written; blank
//!   lines and lines starting with `#` are skipped.
//! * `*.toml`: banks with structure, read into the types below.
//!
//! [`check`] parses every bank and returns the first error, naming the file
//! and the line and column (or the entry); [`crate::generate`] and
//! [`crate::write_sample_dataset`] call it first, so the `Deref` of a bank,
//! which cannot return an error, only ever meets a bank that parsed.

use crate::{Cat, FeatureDef, Kind, Sentiment};
use serde::Deserialize;
use std::ops::Deref;
use std::sync::OnceLock;

/// One bank: its file, the file's text, and what the text parses to.
pub(crate) struct Bank<T: 'static> {
    file: &'static str,
    text: &'static str,
    parse: fn(&'static str, &'static str) -> Result<T, String>,
    value: OnceLock<Result<T, String>>,
}

impl<T: Send + Sync> Bank<T> {
    const fn new(
        file: &'static str,
        text: &'static str,
        parse: fn(&'static str, &'static str) -> Result<T, String>,
    ) -> Bank<T> {
        Bank {
            file,
            text,
            parse,
            value: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> Result<&T, String> {
        self.value
            .get_or_init(|| (self.parse)(self.file, self.text))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl<T: Send + Sync> Deref for Bank<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self.get() {
            Ok(value) => value,
            // Unreachable after `check()`: the banks are compiled in.
            Err(e) => panic!("{e}"),
        }
    }
}

/// A list bank: one entry per line.
pub(crate) type List = Bank<Vec<&'static str>>;

macro_rules! list {
    ($file:literal) => {
        Bank::new(
            concat!("datagen/banks/", $file),
            include_str!(concat!("../banks/", $file)),
            parse_list,
        )
    };
}

macro_rules! toml_bank {
    ($file:literal, $parse:expr) => {
        Bank::new(
            concat!("datagen/banks/", $file),
            include_str!(concat!("../banks/", $file)),
            $parse,
        )
    };
}

pub(super) fn parse_list(
    file: &'static str,
    text: &'static str,
) -> Result<Vec<&'static str>, String> {
    let mut entries = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // An invisible space at either end would change the text generated.
        if line.trim() != line {
            let column = if line.starts_with(char::is_whitespace) {
                1
            } else {
                line.trim_end().chars().count() + 1
            };
            return Err(format!(
                "{file}:{}:{column}: an entry starts or ends with white space",
                i + 1
            ));
        }
        entries.push(line);
    }
    if entries.is_empty() {
        return Err(format!("{file}: no entries"));
    }
    Ok(entries)
}

fn parse_toml<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, String> {
    // toml's message names the line and column and quotes the line.
    toml::from_str(text).map_err(|e| format!("{file}: {e}"))
}

/// Parses every bank; the first error, if any.
pub(crate) fn check() -> anyhow::Result<()> {
    let lists: &[&List] = &[
        &MAIN_POS,
        &MAIN_NEG,
        &MAIN_NEU,
        &HEDGES,
        &INTENSIFIERS,
        &POS_ADJ,
        &NEG_ADJ,
        &NEU_ADJ,
        &MORE_POS,
        &MORE_NEG,
        &MORE_NEU,
        &ELAB_POS,
        &ELAB_NEG,
        &ELAB_NEU,
        &SECOND_POS_POS,
        &SECOND_POS_NEG,
        &SECOND_NEG_POS,
        &SECOND_NEG_NEG,
        &SECOND_NEU_NEU,
        &QUOTES_POS,
        &QUOTES_NEG,
        &QUOTES_NEU,
        &ASIDES_POS,
        &ASIDES_NEG,
        &ASIDES_NEU,
        &CLOSERS_POS,
        &CLOSERS_NEG,
        &CLOSERS_NEU,
        &EDITS_POS,
        &EDITS_NEG,
        &EDITS_NEU,
        &OPENERS,
        &OPENERS_POS,
        &OPENERS_NEG,
        &USE_HEADPHONES,
        &USE_TABLETS,
        &USE_WATCHES,
        &DURATIONS,
        &AGO,
        &DESC_INTRO_HEADPHONES,
        &DESC_INTRO_TABLETS,
        &DESC_INTRO_WATCHES,
        &DESC_CLOSERS,
        &HEADPHONE_BRANDS,
        &TABLET_BRANDS,
        &WATCH_BRANDS,
        &HEADPHONE_SERIES,
        &EARBUD_SERIES,
        &TABLET_SERIES,
        &WATCH_SERIES,
        &MODEL_SUFFIXES,
        &HEADPHONE_COLORS,
        &TABLET_COLORS,
        &WATCH_COLORS,
        &WATCH_BANDS,
        &FIRST_NAMES_F,
        &FIRST_NAMES_M,
        &LAST_NAMES,
        &HANDLES,
        &HOBBIES,
        &LIFESTYLES,
        &PREFERENCES,
    ];
    let results = lists.iter().map(|l| l.get().map(|_| ())).chain([
        CITIES.get().map(|_| ()),
        FEATURES.get().map(|_| ()),
        CATALOGUE.get().map(|_| ()),
        USERS.get().map(|_| ()),
        HAND.get().map(|_| ()),
    ]);
    for result in results {
        result.map_err(anyhow::Error::msg)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Reviews: sentence frames and fillers (placeholders in banks/README.md)
// ---------------------------------------------------------------------------

/// The main statement about the review's feature, per sentiment.
pub(crate) static MAIN_POS: List = list!("reviews/main_pos.txt");
pub(crate) static MAIN_NEG: List = list!("reviews/main_neg.txt");
pub(crate) static MAIN_NEU: List = list!("reviews/main_neu.txt");
/// Put before "the {N} {V}." (with a space between).
pub(crate) static HEDGES: List = list!("reviews/hedges.txt");
pub(crate) static INTENSIFIERS: List = list!("reviews/intensifiers.txt");
pub(crate) static POS_ADJ: List = list!("reviews/pos_adj.txt");
pub(crate) static NEG_ADJ: List = list!("reviews/neg_adj.txt");
pub(crate) static NEU_ADJ: List = list!("reviews/neu_adj.txt");
/// A second predicate about the main feature ("Plus, it {V}.").
pub(crate) static MORE_POS: List = list!("reviews/more_pos.txt");
pub(crate) static MORE_NEG: List = list!("reviews/more_neg.txt");
pub(crate) static MORE_NEU: List = list!("reviews/more_neu.txt");
pub(crate) static ELAB_POS: List = list!("reviews/elab_pos.txt");
pub(crate) static ELAB_NEG: List = list!("reviews/elab_neg.txt");
pub(crate) static ELAB_NEU: List = list!("reviews/elab_neu.txt");
/// The secondary feature, by (main, secondary) sentiment.
pub(crate) static SECOND_POS_POS: List = list!("reviews/second_pos_pos.txt");
pub(crate) static SECOND_POS_NEG: List = list!("reviews/second_pos_neg.txt");
pub(crate) static SECOND_NEG_POS: List = list!("reviews/second_neg_pos.txt");
pub(crate) static SECOND_NEG_NEG: List = list!("reviews/second_neg_neg.txt");
pub(crate) static SECOND_NEU_NEU: List = list!("reviews/second_neu_neu.txt");
pub(crate) static QUOTES_POS: List = list!("reviews/quotes_pos.txt");
pub(crate) static QUOTES_NEG: List = list!("reviews/quotes_neg.txt");
pub(crate) static QUOTES_NEU: List = list!("reviews/quotes_neu.txt");
/// Non-ASCII asides.
pub(crate) static ASIDES_POS: List = list!("reviews/asides_pos.txt");
pub(crate) static ASIDES_NEG: List = list!("reviews/asides_neg.txt");
pub(crate) static ASIDES_NEU: List = list!("reviews/asides_neu.txt");
pub(crate) static CLOSERS_POS: List = list!("reviews/closers_pos.txt");
pub(crate) static CLOSERS_NEG: List = list!("reviews/closers_neg.txt");
pub(crate) static CLOSERS_NEU: List = list!("reviews/closers_neu.txt");
/// Edit notes, after a blank line.
pub(crate) static EDITS_POS: List = list!("reviews/edits_pos.txt");
pub(crate) static EDITS_NEG: List = list!("reviews/edits_neg.txt");
pub(crate) static EDITS_NEU: List = list!("reviews/edits_neu.txt");
pub(crate) static OPENERS: List = list!("reviews/openers.txt");
pub(crate) static OPENERS_POS: List = list!("reviews/openers_pos.txt");
pub(crate) static OPENERS_NEG: List = list!("reviews/openers_neg.txt");
/// Use-case stories, per category.
pub(crate) static USE_HEADPHONES: List = list!("reviews/use_headphones.txt");
pub(crate) static USE_TABLETS: List = list!("reviews/use_tablets.txt");
pub(crate) static USE_WATCHES: List = list!("reviews/use_watches.txt");
/// `{dur}` and `{ago}`.
pub(crate) static DURATIONS: List = list!("reviews/durations.txt");
pub(crate) static AGO: List = list!("reviews/ago.txt");

// ---------------------------------------------------------------------------
// Products
// ---------------------------------------------------------------------------

pub(crate) static DESC_INTRO_HEADPHONES: List = list!("products/desc_intro_headphones.txt");
pub(crate) static DESC_INTRO_TABLETS: List = list!("products/desc_intro_tablets.txt");
pub(crate) static DESC_INTRO_WATCHES: List = list!("products/desc_intro_watches.txt");
pub(crate) static DESC_CLOSERS: List = list!("products/desc_closers.txt");
pub(crate) static HEADPHONE_BRANDS: List = list!("products/headphone_brands.txt");
pub(crate) static TABLET_BRANDS: List = list!("products/tablet_brands.txt");
pub(crate) static WATCH_BRANDS: List = list!("products/watch_brands.txt");
pub(crate) static HEADPHONE_SERIES: List = list!("products/headphone_series.txt");
pub(crate) static EARBUD_SERIES: List = list!("products/earbud_series.txt");
pub(crate) static TABLET_SERIES: List = list!("products/tablet_series.txt");
pub(crate) static WATCH_SERIES: List = list!("products/watch_series.txt");
pub(crate) static MODEL_SUFFIXES: List = list!("products/model_suffixes.txt");
pub(crate) static HEADPHONE_COLORS: List = list!("products/headphone_colors.txt");
pub(crate) static TABLET_COLORS: List = list!("products/tablet_colors.txt");
pub(crate) static WATCH_COLORS: List = list!("products/watch_colors.txt");
pub(crate) static WATCH_BANDS: List = list!("products/watch_bands.txt");

// ---------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------

pub(crate) static FIRST_NAMES_F: List = list!("people/first_names_f.txt");
pub(crate) static FIRST_NAMES_M: List = list!("people/first_names_m.txt");
pub(crate) static LAST_NAMES: List = list!("people/last_names.txt");
/// Reviewer handles (a number is appended).
pub(crate) static HANDLES: List = list!("people/handles.txt");
pub(crate) static HOBBIES: List = list!("people/hobbies.txt");
pub(crate) static LIFESTYLES: List = list!("people/lifestyles.txt");
pub(crate) static PREFERENCES: List = list!("people/preferences.txt");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct City {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

pub(crate) static CITIES: Bank<Vec<City>> = toml_bank!("people/cities.toml", |file, text| {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        city: Vec<City>,
    }
    let cities = parse_toml::<File>(file, text)?.city;
    if cities.is_empty() {
        return Err(format!("{file}: no [[city]]"));
    }
    Ok(cities)
});

// ---------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------

/// The feature catalogue; feature id = index + 1.
pub(crate) static FEATURES: Bank<Vec<FeatureDef>> = toml_bank!("features.toml", parse_features);

pub(super) fn parse_features(
    file: &'static str,
    text: &'static str,
) -> Result<Vec<FeatureDef>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        feature: Vec<Entry>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        name: String,
        categories: Vec<Cat>,
        #[serde(default)]
        kinds: Vec<Kind>,
        blurb: String,
        nouns: Vec<String>,
        positive: Vec<String>,
        negative: Vec<String>,
        neutral: Vec<String>,
    }
    let mut features = Vec::new();
    for (i, e) in parse_toml::<File>(file, text)?
        .feature
        .into_iter()
        .enumerate()
    {
        let at = || format!("{file}: feature {} ({:?})", i + 1, e.name);
        if features.iter().any(|f: &FeatureDef| f.name == e.name) {
            return Err(format!("{}: the name is taken by an earlier feature", at()));
        }
        if e.categories.is_empty() {
            return Err(format!("{}: no categories", at()));
        }
        // Kinds narrow a feature within the headphones, the one category
        // with several kinds.
        if let Some(k) = e.kinds.iter().find(|k| k.bit() == 0) {
            return Err(format!(
                "{}: kind {k:?} cannot narrow a feature (only over-ear, on-ear and earbuds can)",
                at()
            ));
        }
        for (what, list) in [
            ("nouns", &e.nouns),
            ("positive", &e.positive),
            ("negative", &e.negative),
            ("neutral", &e.neutral),
        ] {
            if list.is_empty() {
                return Err(format!("{}: no {what}", at()));
            }
        }
        features.push(FeatureDef {
            cats: e.categories.iter().fold(0, |bits, c| bits | c.bit()),
            kinds: e.kinds.iter().fold(0, |bits, k| bits | k.bit()),
            name: e.name,
            blurb: e.blurb,
            nouns: e.nouns,
            pos: e.positive,
            neg: e.negative,
            neu: e.neutral,
        });
    }
    Ok(features)
}

/// Resolves a feature name of a sample bank, or says where it is unknown.
fn feature_of(at: &dyn Fn() -> String, name: &str) -> Result<usize, String> {
    let features = FEATURES.get()?;
    features
        .iter()
        .position(|f| f.name == name)
        .ok_or_else(|| format!("{}: no feature {name:?} in features.toml", at()))
}

// ---------------------------------------------------------------------------
// The sample data set (data/)
// ---------------------------------------------------------------------------

/// A hand-written product of the sample catalogue.
pub(crate) struct Curated {
    pub name: String,
    pub brand: String,
    pub kind: Kind,
    /// In cents.
    pub price_cents: u64,
    pub tagline: String,
    /// Features the product is always linked to (indexes into FEATURES).
    pub must: Vec<u16>,
}

pub(crate) static CATALOGUE: Bank<Vec<Curated>> =
    toml_bank!("sample/catalogue.toml", parse_catalogue);

fn parse_catalogue(file: &'static str, text: &'static str) -> Result<Vec<Curated>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        product: Vec<Entry>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        name: String,
        brand: String,
        kind: Kind,
        price: String,
        tagline: String,
        features: Vec<String>,
    }
    let mut products = Vec::new();
    for (i, e) in parse_toml::<File>(file, text)?
        .product
        .into_iter()
        .enumerate()
    {
        let at = || format!("{file}: product {} ({:?})", i + 1, e.name);
        let price_cents = parse_price(&e.price)
            .ok_or_else(|| format!("{}: price {:?} is not dollars.cents", at(), e.price))?;
        let mut must = Vec::new();
        for name in &e.features {
            let f = feature_of(&at, name)?;
            if !FEATURES[f].applies_to(e.kind) {
                return Err(format!(
                    "{}: feature {name:?} does not apply to {:?} products",
                    at(),
                    e.kind
                ));
            }
            must.push(f as u16);
        }
        products.push(Curated {
            name: e.name,
            brand: e.brand,
            kind: e.kind,
            price_cents,
            tagline: e.tagline,
            must,
        });
    }
    Ok(products)
}

/// `"279.99"`, `"149.00"` or `"99"` in cents.
fn parse_price(s: &str) -> Option<u64> {
    let (dollars, cents) = s.split_once('.').unwrap_or((s, "0"));
    if cents.len() > 2
        || !dollars
            .bytes()
            .chain(cents.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(dollars.parse::<u64>().ok()? * 100 + format!("{cents:0<2}").parse::<u64>().ok()?)
}

/// A hand-written user of the sample set.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CuratedUser {
    pub first_name: String,
    pub last_name: String,
    pub city: String,
    pub gender: String,
    pub age: u32,
    pub hobbies: Vec<String>,
    pub location: String,
    pub lifestyle_preferences: Vec<String>,
    pub preferences: Vec<String>,
}

pub(crate) static USERS: Bank<Vec<CuratedUser>> = toml_bank!("sample/users.toml", |file, text| {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        user: Vec<CuratedUser>,
    }
    Ok(parse_toml::<File>(file, text)?.user)
});

/// A hand-written review and its hand-assigned label.
#[derive(Debug)]
pub(crate) struct Hand {
    /// Product id (1-based index into CATALOGUE).
    pub p: usize,
    /// Index into FEATURES.
    pub f: usize,
    pub s: Sentiment,
    pub r: u8,
    pub user: String,
    pub text: String,
}

pub(crate) static HAND: Bank<Vec<Hand>> = toml_bank!("sample/reviews.toml", parse_hand);

pub(super) fn parse_hand(file: &'static str, text: &'static str) -> Result<Vec<Hand>, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        review: Vec<Entry>,
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Entry {
        product: usize,
        feature: String,
        sentiment: Sentiment,
        rating: u8,
        user_name: String,
        text: String,
    }
    let catalogue = CATALOGUE.get()?;
    let mut reviews = Vec::new();
    for (i, e) in parse_toml::<File>(file, text)?
        .review
        .into_iter()
        .enumerate()
    {
        let at = || format!("{file}: review {} (by {:?})", i + 1, e.user_name);
        let Some(product) = e.product.checked_sub(1).and_then(|p| catalogue.get(p)) else {
            return Err(format!(
                "{}: product {} is not in sample/catalogue.toml (1..={})",
                at(),
                e.product,
                catalogue.len()
            ));
        };
        let f = feature_of(&at, &e.feature)?;
        if !FEATURES[f].applies_to(product.kind) {
            return Err(format!(
                "{}: feature {:?} does not apply to {}",
                at(),
                e.feature,
                product.name
            ));
        }
        // The rating a reader would expect from the sentiment.
        let fits = match e.sentiment {
            Sentiment::Positive => e.rating >= 4,
            Sentiment::Negative => e.rating <= 2,
            Sentiment::Neutral => e.rating == 3,
        };
        if !(1..=5).contains(&e.rating) || !fits {
            return Err(format!(
                "{}: rating {} does not fit a {} review",
                at(),
                e.rating,
                e.sentiment.as_str()
            ));
        }
        reviews.push(Hand {
            p: e.product,
            f,
            s: e.sentiment,
            r: e.rating,
            user: e.user_name,
            text: e.text,
        });
    }
    Ok(reviews)
}
