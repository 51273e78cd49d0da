//! Writing what the analyser decided, inside the transaction that completes
//! the enrich task: the aspects of each decided review replace its earlier
//! ones, its main aspect goes to `product_reviews` as the scope says, the
//! values it replaces are backed up the first time, and the reviews that
//! failed are recorded.
//!
//! Everything is sent as arrays in a handful of statements per task, not
//! row by row.

use super::analyser::{AnalysedBatch, ReviewOutcome};
use super::reviews::Due;
use shared::config::EnrichScope;
use sqlx::PgConnection;
use std::collections::HashMap;

/// What a task's write changed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub decided: usize,
    pub failed: usize,
    /// Reviews whose `feature_id` or `sentiment` changed.
    pub changed: usize,
    pub aspects: usize,
}

/// The values the shop reads for a decided review: in scope `missing`, the
/// data's own values stand and only the missing ones are filled (the
/// sentiment is the one about the review's feature); in scope `all`, the
/// main aspect's.
pub fn main_values(
    due: &Due,
    aspects: &analysis::ReviewAspects,
    scope: EnrichScope,
) -> (Option<i64>, Option<String>) {
    let sentiment_about = |feature: Option<i64>| {
        feature
            .and_then(|f| aspects.aspect(f))
            .map(|a| a.sentiment.as_str().to_string())
    };
    match scope {
        EnrichScope::All => (aspects.main_feature, sentiment_about(aspects.main_feature)),
        EnrichScope::Missing => {
            let feature = due.data.feature_id.or(aspects.main_feature);
            let sentiment = due.data.sentiment.clone().or_else(|| sentiment_about(feature));
            (feature, sentiment)
        }
    }
}

pub async fn apply(
    conn: &mut PgConnection,
    due: &[Due],
    batch: &AnalysedBatch,
    scope: EnrichScope,
    source: &str,
    revision_run_id: i64,
) -> anyhow::Result<Written> {
    let by_id: HashMap<i64, &Due> = due.iter().map(|d| (d.review.id, d)).collect();
    let mut written = Written::default();

    // Columns of the decided reviews, and of their aspects.
    let (mut ids, mut text_hashes, mut features_hashes) = (vec![], vec![], vec![]);
    let (mut main_features, mut main_sentiments) = (vec![], vec![]);
    let (mut backup_ids, mut backup_features, mut backup_sentiments) = (vec![], vec![], vec![]);
    let (mut a_review, mut a_feature, mut a_sentiment) = (vec![], vec![], vec![]);
    let (mut a_confidence, mut a_evidence, mut a_hash) = (vec![], vec![], vec![]);
    let (mut failed_ids, mut failed_reasons) = (vec![], vec![]);
    for (review_id, outcome) in &batch.outcomes {
        let Some(due) = by_id.get(review_id) else {
            anyhow::bail!("the analyser answered for review {review_id}, which this task did not send");
        };
        match outcome {
            ReviewOutcome::Failed(reason) => {
                failed_ids.push(*review_id as i32);
                failed_reasons.push(reason.clone());
            }
            ReviewOutcome::Analysed(aspects) => {
                let (feature, sentiment) = main_values(due, aspects, scope);
                if (feature, sentiment.as_deref())
                    != (due.current.feature_id, due.current.sentiment.as_deref())
                {
                    written.changed += 1;
                }
                if !due.ours {
                    backup_ids.push(*review_id as i32);
                    backup_features.push(due.current.feature_id.map(|f| f as i32));
                    backup_sentiments.push(due.current.sentiment.clone());
                }
                ids.push(*review_id as i32);
                text_hashes.push(due.text_hash.clone());
                features_hashes.push(due.features_hash.clone());
                main_features.push(feature.map(|f| f as i32));
                main_sentiments.push(sentiment);
                for aspect in &aspects.aspects {
                    a_review.push(*review_id as i32);
                    a_feature.push(aspect.feature_id as i32);
                    a_sentiment.push(aspect.sentiment.as_str().to_string());
                    a_confidence.push(aspect.confidence);
                    a_evidence.push(aspect.evidence.clone());
                    a_hash.push(due.text_hash.clone());
                }
            }
        }
    }
    written.decided = ids.len();
    written.failed = failed_ids.len();
    written.aspects = a_review.len();

    // The values before the first write over them; a row the enrichment no
    // longer owns (the data changed it since) is backed up afresh.
    sqlx::query(
        "INSERT INTO pipeline.enrichment_backup (review_id, feature_id, sentiment)
         SELECT * FROM unnest($1::int[], $2::int[], $3::text[])
         ON CONFLICT (review_id) DO UPDATE
            SET feature_id = EXCLUDED.feature_id, sentiment = EXCLUDED.sentiment, saved_at = now()",
    )
    .bind(&backup_ids)
    .bind(&backup_features)
    .bind(&backup_sentiments)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE public.product_reviews r SET feature_id = v.feature_id, sentiment = v.sentiment
           FROM unnest($1::int[], $2::int[], $3::text[]) AS v(id, feature_id, sentiment)
          WHERE r.id = v.id
            AND (r.feature_id IS DISTINCT FROM v.feature_id OR r.sentiment IS DISTINCT FROM v.sentiment)",
    )
    .bind(&ids)
    .bind(&main_features)
    .bind(&main_sentiments)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM public.review_feature_sentiments WHERE review_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO public.review_feature_sentiments
                (review_id, feature_id, sentiment, confidence, evidence, text_hash, source)
         SELECT v.*, $7 FROM unnest($1::int[], $2::int[], $3::text[], $4::real[], $5::text[], $6::text[])
                AS v(review_id, feature_id, sentiment, confidence, evidence, text_hash)",
    )
    .bind(&a_review)
    .bind(&a_feature)
    .bind(&a_sentiment)
    .bind(&a_confidence)
    .bind(&a_evidence)
    .bind(&a_hash)
    .bind(source)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO pipeline.enrichment_reviews
                (review_id, text_hash, features_hash, wrote_feature_id, wrote_sentiment, source)
         SELECT v.*, $6 FROM unnest($1::int[], $2::text[], $3::text[], $4::int[], $5::text[])
                AS v(review_id, text_hash, features_hash, wrote_feature_id, wrote_sentiment)
         ON CONFLICT (review_id) DO UPDATE
            SET text_hash = EXCLUDED.text_hash, features_hash = EXCLUDED.features_hash,
                source = EXCLUDED.source, wrote_feature_id = EXCLUDED.wrote_feature_id,
                wrote_sentiment = EXCLUDED.wrote_sentiment, enriched_at = now()",
    )
    .bind(&ids)
    .bind(&text_hashes)
    .bind(&features_hashes)
    .bind(&main_features)
    .bind(&main_sentiments)
    .bind(source)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM pipeline.enrichment_failures WHERE review_id = ANY($1)")
        .bind(&ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO pipeline.enrichment_failures (review_id, reason, revision_run_id)
         SELECT v.*, $3 FROM unnest($1::int[], $2::text[]) AS v(review_id, reason)
         ON CONFLICT (review_id) DO UPDATE
            SET reason = EXCLUDED.reason, attempts = pipeline.enrichment_failures.attempts + 1,
                revision_run_id = EXCLUDED.revision_run_id, failed_at = now()",
    )
    .bind(&failed_ids)
    .bind(&failed_reasons)
    .bind(revision_run_id)
    .execute(&mut *conn)
    .await?;
    Ok(written)
}

/// Drops the aspects and book-keeping of reviews the data took back (they
/// left the scope): the data's values stand, and the backup no longer says
/// anything true about them.
pub async fn forget(conn: &mut PgConnection, review_ids: &[i64]) -> anyhow::Result<()> {
    if review_ids.is_empty() {
        return Ok(());
    }
    for table in [
        "public.review_feature_sentiments",
        "pipeline.enrichment_reviews",
        "pipeline.enrichment_backup",
        "pipeline.enrichment_failures",
    ] {
        sqlx::query(&format!("DELETE FROM {table} WHERE review_id = ANY($1)"))
            .bind(review_ids)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
