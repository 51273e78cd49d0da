//! What the graph should hold for a slice of the relational tables: one
//! `SELECT` per kind of element, used both by the bulk build (which inserts
//! its rows straight into the label tables) and by the incremental re-run
//! (which compares them with what the label tables hold). Data never leaves
//! the database and never enters query text: the only things formatted into
//! these statements are label ids read from AGE's catalogue; the slice's
//! bounds are the bind parameters `$1` (from, inclusive) and `$2` (to,
//! exclusive), both `bigint`.
//!
//! Properties keep their types: ids are integers, `categories` the feature's
//! JSON list, text is passed as a value (never parsed), and a NULL column
//! leaves its key out (`agtype_build_map_nonull`).
//!
//! Sentiment edges go from a review to a feature, labelled by the sentiment
//! (`positive_sentiment`, ...), with `{sentiment, product_id, feature_id}`.
//! Where the enrichment revision wrote aspects (`review_feature_sentiments`)
//! a review has one edge per aspect; otherwise, or with
//! `GRAPH_SENTIMENT_EDGES=main`, the one of its `feature_id` / `sentiment`.
//! A sentiment other than the three makes no edge; a feature that no longer
//! exists neither.

use super::labels::{Graph, FEATURE, HAS_FEATURE, HAS_REVIEW, PRODUCT, REVIEW, SENTIMENT_LABELS};
use super::tasks::Source;
use shared::config::SentimentEdges;

/// `SELECT id, properties` of the vertices of `source`'s slice.
pub fn vertices(graph: &Graph, source: Source) -> String {
    match source {
        Source::Products => format!(
            "SELECT ag_catalog._graphid({label}, p.id) AS id,
                    ag_catalog.agtype_build_map_nonull('id', p.id, 'name', p.name, 'category', p.category) AS properties
               FROM public.products p
              WHERE p.id >= $1 AND p.id < $2",
            label = graph.label_id(PRODUCT)
        ),
        Source::Features => format!(
            "SELECT ag_catalog._graphid({label}, f.id) AS id,
                    ag_catalog.agtype_build_map_nonull('id', f.id, 'name', f.feature_name,
                                                       'categories', f.categories::text::ag_catalog.agtype) AS properties
               FROM public.features f
              WHERE f.id >= $1 AND f.id < $2",
            label = graph.label_id(FEATURE)
        ),
        Source::Reviews => format!(
            "SELECT ag_catalog._graphid({label}, r.id) AS id,
                    ag_catalog.agtype_build_map_nonull('id', r.id, 'product_id', r.product_id, 'feature_id', r.feature_id,
                                                       'sentiment', r.sentiment, 'text', r.review) AS properties
               FROM public.product_reviews r
              WHERE r.id >= $1 AND r.id < $2",
            label = graph.label_id(REVIEW)
        ),
    }
}

/// The vertex label of a source.
pub fn vertex_label(source: Source) -> &'static str {
    match source {
        Source::Products => PRODUCT,
        Source::Features => FEATURE,
        Source::Reviews => REVIEW,
    }
}

/// The label whose vertex is the owning end of the edges of `label`, and
/// which end it is: the end the slice's ids range over.
pub fn owning_end(label: &str) -> (&'static str, &'static str) {
    match label {
        HAS_FEATURE => (PRODUCT, "start_id"),
        HAS_REVIEW => (REVIEW, "end_id"),
        _ => (REVIEW, "start_id"),
    }
}

/// The edges `source`'s slice owns, per label: `(label, SELECT start_id,
/// end_id, properties)`. An edge belongs to the slice of the row it comes
/// from (a product's `HAS_FEATURE`, a review's `HAS_REVIEW` and sentiment
/// edges), so that every edge is built, and compared, by exactly one task;
/// features own none.
pub fn edges(graph: &Graph, source: Source, sentiment: SentimentEdges) -> Vec<(&'static str, String)> {
    let product = graph.label_id(PRODUCT);
    let review = graph.label_id(REVIEW);
    let feature = graph.label_id(FEATURE);
    match source {
        Source::Features => Vec::new(),
        Source::Products => vec![(
            HAS_FEATURE,
            format!(
                "SELECT ag_catalog._graphid({product}, pf.product_id) AS start_id,
                        ag_catalog._graphid({feature}, pf.feature_id) AS end_id,
                        ag_catalog.agtype_build_map() AS properties
                   FROM public.product_features pf
                  WHERE pf.product_id >= $1 AND pf.product_id < $2"
            ),
        )],
        Source::Reviews => {
            let aspects = match sentiment {
                SentimentEdges::Main => MAIN_ASPECTS,
                SentimentEdges::Aspects => ENRICHED_ASPECTS,
            };
            let mut edges = vec![(
                HAS_REVIEW,
                format!(
                    "SELECT ag_catalog._graphid({product}, r.product_id) AS start_id,
                            ag_catalog._graphid({review}, r.id) AS end_id,
                            ag_catalog.agtype_build_map() AS properties
                       FROM public.product_reviews r
                      WHERE r.id >= $1 AND r.id < $2 AND r.product_id IS NOT NULL"
                ),
            )];
            for (value, label) in SENTIMENT_LABELS {
                edges.push((
                    label,
                    format!(
                        "SELECT ag_catalog._graphid({review}, a.review_id) AS start_id,
                                ag_catalog._graphid({feature}, a.feature_id) AS end_id,
                                ag_catalog.agtype_build_map_nonull('sentiment', a.sentiment, 'product_id', a.product_id,
                                                                   'feature_id', a.feature_id) AS properties
                           FROM ({aspects}) a
                           JOIN public.features f ON f.id = a.feature_id
                          WHERE a.sentiment = '{value}'"
                    ),
                ));
            }
            edges
        }
    }
}

/// `(review_id, product_id, feature_id, sentiment)`: the main feature of
/// each review.
const MAIN_ASPECTS: &str = "SELECT r.id AS review_id, r.product_id, r.feature_id, r.sentiment
                              FROM public.product_reviews r
                             WHERE r.id >= $1 AND r.id < $2 AND r.feature_id IS NOT NULL";

/// The enrichment's aspects of a review where it wrote any, else its main
/// feature.
const ENRICHED_ASPECTS: &str = "SELECT s.review_id, r.product_id, s.feature_id, s.sentiment
                                  FROM public.review_feature_sentiments s
                                  JOIN public.product_reviews r ON r.id = s.review_id AND r.id >= $1 AND r.id < $2
                                 WHERE s.review_id >= $1 AND s.review_id < $2
                                UNION ALL
                                SELECT r.id, r.product_id, r.feature_id, r.sentiment
                                  FROM public.product_reviews r
                                 WHERE r.id >= $1 AND r.id < $2 AND r.feature_id IS NOT NULL
                                   AND NOT EXISTS (SELECT 1 FROM public.review_feature_sentiments s WHERE s.review_id = r.id)";

/// The sentiment edges a run uses: per aspect only where the configuration
/// asks for it and the enrichment's table exists.
pub async fn sentiment_source(
    pool: &sqlx::PgPool,
    wanted: SentimentEdges,
) -> anyhow::Result<SentimentEdges> {
    if wanted == SentimentEdges::Main {
        return Ok(SentimentEdges::Main);
    }
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public.review_feature_sentiments') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    Ok(if exists {
        SentimentEdges::Aspects
    } else {
        SentimentEdges::Main
    })
}
