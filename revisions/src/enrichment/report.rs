//! What `status` and the end of `upgrade` say about an enrichment run: the
//! reviews read, sent and changed, the tokens, and the reviews that failed.

use sqlx::PgPool;

/// Sums of `pipeline.enrichment_usage` over one revision run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct RunUsage {
    pub tasks: i64,
    pub reviews_read: i64,
    pub reviews_sent: i64,
    pub reviews_failed: i64,
    pub reviews_changed: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub requests: i64,
    pub dropped_features: i64,
}

pub async fn usage(pool: &PgPool, revision_run_id: i64) -> anyhow::Result<Option<RunUsage>> {
    if !crate::ranges::table_exists(pool, "pipeline.enrichment_usage").await? {
        return Ok(None);
    }
    let usage: RunUsage = sqlx::query_as(
        "SELECT count(*) AS tasks,
                coalesce(sum(reviews_read), 0)::bigint AS reviews_read,
                coalesce(sum(reviews_sent), 0)::bigint AS reviews_sent,
                coalesce(sum(reviews_failed), 0)::bigint AS reviews_failed,
                coalesce(sum(reviews_changed), 0)::bigint AS reviews_changed,
                coalesce(sum(prompt_tokens), 0)::bigint AS prompt_tokens,
                coalesce(sum(completion_tokens), 0)::bigint AS completion_tokens,
                coalesce(sum(requests), 0)::bigint AS requests,
                coalesce(sum(dropped_features), 0)::bigint AS dropped_features
           FROM pipeline.enrichment_usage WHERE revision_run_id = $1",
    )
    .bind(revision_run_id)
    .fetch_one(pool)
    .await?;
    Ok((usage.tasks > 0).then_some(usage))
}

/// The most frequent failure reasons of a run, with their counts.
pub async fn failure_reasons(
    pool: &PgPool,
    revision_run_id: i64,
    limit: i64,
) -> anyhow::Result<Vec<(String, i64, i64)>> {
    if !crate::ranges::table_exists(pool, "pipeline.enrichment_failures").await? {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT reason, count(*), min(review_id)::bigint FROM pipeline.enrichment_failures
          WHERE revision_run_id = $1 GROUP BY reason ORDER BY count(*) DESC, reason LIMIT $2",
    )
    .bind(revision_run_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn lines(pool: &PgPool, revision_run_id: i64) -> anyhow::Result<Vec<String>> {
    let Some(u) = usage(pool, revision_run_id).await? else {
        return Ok(Vec::new());
    };
    let mut lines = vec![format!(
        "reviews: {} read, {} sent to the analyser, {} changed, {} failed; \
         tokens: {} prompt + {} completion in {} requests",
        u.reviews_read,
        u.reviews_sent,
        u.reviews_changed,
        u.reviews_failed,
        u.prompt_tokens,
        u.completion_tokens,
        u.requests
    )];
    if u.dropped_features > 0 {
        lines.push(format!(
            "{} aspects named a feature that is not one of the review's product's, and were dropped",
            u.dropped_features
        ));
    }
    for (reason, count, example) in failure_reasons(pool, revision_run_id, 3).await? {
        lines.push(format!(
            "failed: {count} review(s) (e.g. review {example}): {reason}"
        ));
    }
    Ok(lines)
}
