//! Which reviews of a range an enrich task decides, and what each of them
//! already holds.
//!
//! A review is *in scope* when the configured scope asks for it: `all`
//! takes every review; `missing` takes a review whose data leaves its
//! feature or its sentiment empty. "The data" is what the row held before
//! the enrichment wrote to it: the row itself, or, while the row still
//! holds what the enrichment wrote, the backup kept of it.
//!
//! A review in scope is *due* unless it was decided before from the same
//! text, the same feature list of its product and the same analyser, and
//! still holds what was written then; a review that failed is always due.
//! A review that left the scope since (the data now carries both values)
//! loses its aspects: the data's values stand.

use analysis::{Feature, Review};
use anyhow::Context as _;
use shared::config::EnrichScope;
use sqlx::PgConnection;
use std::collections::HashMap;

/// What the data says of a review, before any enrichment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DataValues {
    pub feature_id: Option<i64>,
    pub sentiment: Option<String>,
}

/// A review the task decides.
#[derive(Debug, Clone)]
pub struct Due {
    pub review: Review,
    pub data: DataValues,
    /// The row's values now: what the backup keeps if the enrichment has
    /// not written to the row yet.
    pub current: DataValues,
    /// Whether the row holds what the enrichment last wrote to it.
    pub ours: bool,
    pub text_hash: String,
    pub features_hash: String,
}

/// The reviews of a range, sorted out.
#[derive(Debug, Default)]
pub struct Selection {
    pub read: usize,
    pub due: Vec<Due>,
    /// Reviews that left the scope: their aspects and book-keeping go.
    pub left_scope: Vec<i64>,
}

/// The enrichment's book-keeping tables a seed re-run looks at (they exist
/// once the enrichment has run).
pub const BOOKKEEPING: [&str; 2] = ["pipeline.enrichment_reviews", "pipeline.enrichment_backup"];

/// What a seed re-run upserts `product_reviews` from, instead of its
/// staging table `staging` (columns `columns`, `id` among them): where the
/// file still carries the values the enrichment backed up (the data did not
/// change) and the row still holds what the enrichment wrote, the enriched
/// `feature_id` and `sentiment` are kept. Otherwise re-running the seed
/// would put the data's empty values back over every enriched review, and
/// the next enrichment would decide them all again.
pub fn seed_upsert_source(staging: &str, columns: &[&str]) -> String {
    const ENRICHED: [(&str, &str); 2] = [
        ("feature_id", "wrote_feature_id"),
        ("sentiment", "wrote_sentiment"),
    ];
    let mut owned = vec![
        "e.review_id IS NOT NULL".to_string(),
        "b.review_id IS NOT NULL".to_string(),
    ];
    for (column, wrote) in ENRICHED {
        owned.push(format!("r.{column} IS NOT DISTINCT FROM e.{wrote}"));
        if columns.contains(&column) {
            owned.push(format!("s.{column} IS NOT DISTINCT FROM b.{column}"));
        }
    }
    let owned = owned.join(" AND ");
    let selected: Vec<String> = columns
        .iter()
        .map(|c| {
            if ENRICHED.iter().any(|(e, _)| e == c) {
                format!("CASE WHEN {owned} THEN r.{c} ELSE s.{c} END AS {c}")
            } else {
                format!("s.{c}")
            }
        })
        .collect();
    format!(
        "SELECT {} FROM {staging} s
           LEFT JOIN public.product_reviews r ON r.id = s.id
           LEFT JOIN {} e ON e.review_id = s.id
           LEFT JOIN {} b ON b.review_id = s.id",
        selected.join(", "),
        BOOKKEEPING[0],
        BOOKKEEPING[1]
    )
}

/// One review row with what the pipeline knows of it.
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    product_id: Option<i64>,
    review: Option<String>,
    rating: Option<f64>,
    feature_id: Option<i64>,
    sentiment: Option<String>,
    decided: bool,
    text_hash: Option<String>,
    features_hash: Option<String>,
    source: Option<String>,
    wrote_feature_id: Option<i64>,
    wrote_sentiment: Option<String>,
    backed_up: bool,
    backup_feature_id: Option<i64>,
    backup_sentiment: Option<String>,
    failed: bool,
}

pub fn text_hash(text: &str) -> String {
    providers::embed::text::content_hash("enrichment/text", text)
}

/// The hash of a product's candidate features, by id and name: renaming,
/// adding or removing one makes its reviews due again.
pub fn features_hash(features: &[Feature]) -> String {
    let listed: String = features
        .iter()
        .map(|f| format!("{}\t{}\n", f.id, f.name))
        .collect();
    providers::embed::text::content_hash("enrichment/features", &listed)
}

pub async fn select(
    conn: &mut PgConnection,
    from: Option<i64>,
    to: Option<i64>,
    scope: EnrichScope,
    source: &str,
) -> anyhow::Result<Selection> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.id::bigint, r.product_id::bigint, r.review, r.rating::float8 AS rating,
                r.feature_id::bigint, r.sentiment,
                s.review_id IS NOT NULL AS decided, s.text_hash, s.features_hash, s.source,
                s.wrote_feature_id::bigint, s.wrote_sentiment,
                b.review_id IS NOT NULL AS backed_up, b.feature_id::bigint AS backup_feature_id,
                b.sentiment AS backup_sentiment,
                f.review_id IS NOT NULL AS failed
           FROM public.product_reviews r
           LEFT JOIN pipeline.enrichment_reviews s ON s.review_id = r.id
           LEFT JOIN pipeline.enrichment_backup b ON b.review_id = r.id
           LEFT JOIN pipeline.enrichment_failures f ON f.review_id = r.id
          WHERE ($1::bigint IS NULL OR r.id >= $1) AND ($2::bigint IS NULL OR r.id < $2)
          ORDER BY r.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await
    .context("reading the reviews of the range")?;

    let products: Vec<i64> = rows.iter().filter_map(|r| r.product_id).collect();
    let mut features_of: HashMap<i64, Vec<Feature>> = HashMap::new();
    let listed: Vec<(i64, i64, String)> = sqlx::query_as(
        "SELECT pf.product_id::bigint, f.id::bigint, f.feature_name::text
           FROM public.product_features pf JOIN public.features f ON f.id = pf.feature_id
          WHERE pf.product_id = ANY($1) ORDER BY pf.product_id, f.id",
    )
    .bind(&products)
    .fetch_all(&mut *conn)
    .await
    .context("reading the features of the reviews' products")?;
    for (product, id, name) in listed {
        features_of.entry(product).or_default().push(Feature { id, name });
    }
    let names: HashMap<i64, String> = sqlx::query_as::<_, (i64, String)>(
        "SELECT id::bigint, feature_name::text FROM public.features WHERE id = ANY($1)",
    )
    .bind(
        rows.iter()
            .flat_map(|r| [r.feature_id, r.backup_feature_id])
            .flatten()
            .collect::<Vec<i64>>(),
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();

    let mut selection = Selection {
        read: rows.len(),
        ..Selection::default()
    };
    for row in rows {
        let current = DataValues {
            feature_id: row.feature_id,
            sentiment: row.sentiment.clone(),
        };
        let ours = row.decided
            && row.feature_id == row.wrote_feature_id
            && row.sentiment == row.wrote_sentiment;
        let data = if ours && row.backed_up {
            DataValues {
                feature_id: row.backup_feature_id,
                sentiment: row.backup_sentiment.clone(),
            }
        } else {
            current.clone()
        };
        let in_scope = match scope {
            EnrichScope::All => true,
            EnrichScope::Missing => data.feature_id.is_none() || data.sentiment.is_none(),
        };
        if !in_scope {
            if row.decided {
                selection.left_scope.push(row.id);
            }
            continue;
        }
        let text = row.review.unwrap_or_default();
        let mut features = row
            .product_id
            .and_then(|p| features_of.get(&p).cloned())
            .unwrap_or_default();
        let known_feature = match scope {
            EnrichScope::Missing => data.feature_id,
            EnrichScope::All => None,
        };
        // A feature the data gives that is not listed for the product still
        // is the review's: it is a candidate, so that its sentiment can be
        // told.
        if let Some(known) = known_feature {
            if !features.iter().any(|f| f.id == known) {
                if let Some(name) = names.get(&known) {
                    features.push(Feature {
                        id: known,
                        name: name.clone(),
                    });
                }
            }
        }
        let known_feature = known_feature.filter(|k| features.iter().any(|f| f.id == *k));
        let (text_hash, features_hash) = (text_hash(&text), features_hash(&features));
        let unchanged = ours
            && row.text_hash.as_deref() == Some(text_hash.as_str())
            && row.features_hash.as_deref() == Some(features_hash.as_str())
            && row.source.as_deref() == Some(source);
        if unchanged && !row.failed {
            continue;
        }
        selection.due.push(Due {
            review: Review {
                id: row.id,
                text,
                rating: row.rating,
                features,
                known_feature,
            },
            data,
            current,
            ours,
            text_hash,
            features_hash,
        });
    }
    Ok(selection)
}
