//! Revision f3e916f4940d (enrichment): which of its product's features each
//! review talks about, and the sentiment about each, decided by `enrich`
//! workers that any number of processes share.
//!
//! Task kinds ([`EnrichmentTask`]), in the phases the planner (`plan.rs`)
//! orders them:
//! 1. `prepare`: `public.review_feature_sentiments` (every aspect of every
//!    review) and the pipeline's enrichment tables (`*.upgrade.sql`);
//! 2. `enrich` (one per range of review ids): select the reviews that are
//!    due ([`reviews`]), have the analyser decide them *outside* any
//!    transaction ([`analyser`]: local by default, an LLM when asked), then
//!    write the aspects, the main ones and the failures ([`write`]) in the
//!    transaction that completes the task;
//! 3. `finish`: drop the book-keeping of deleted reviews, and fail the
//!    revision if more than `ENRICH_MAX_FAILED_SHARE` of the reviews sent
//!    could not be decided.
//!
//! `downgrade` puts back the values the enrichment replaced and drops its
//! tables.

use crate::revision::{Executor, Revision};
use anyhow::Context as _;
use shared::config::{EnrichProvider, EnrichScope};
use shared::exec::{CheckBack, Completed, Permanent, TaskContext};
use shared::Config;
use sqlx::{Connection, Executor as _};
use std::sync::Arc;

pub mod analyser;
pub mod llm;
mod plan;
pub mod report;
pub mod reviews;
mod tasks;
pub mod write;

pub use analyser::{
    AnalysedBatch, BatchAnalyser, BatchPoll, LocalAnalyser, ReviewAnalyser, ReviewOutcome,
};
pub use plan::check_provider_settings;
pub use tasks::{EnrichmentTask, ReviewRange};

pub const UPGRADE_SQL: &str = include_str!("f3e916f4940d.upgrade.sql");
pub const DOWNGRADE_SQL: &str = include_str!("f3e916f4940d.downgrade.sql");

pub const REVISION: Revision = Revision {
    id: shared::catalogue::ENRICHMENT,
    name: "enrichment",
    summary: "feature and sentiment of each review, by AI",
    planner: &plan::EnrichmentPlanner,
    executor: |config| Box::new(EnrichmentExecutor::new(config)),
};

/// Built once per worker process; owns the process's analyser.
pub struct EnrichmentExecutor {
    analyser: Result<Arc<dyn ReviewAnalyser>, String>,
    scope: EnrichScope,
}

impl EnrichmentExecutor {
    pub fn new(config: &Config) -> EnrichmentExecutor {
        EnrichmentExecutor {
            analyser: build_analyser(config),
            scope: config.enrichment.scope,
        }
    }
}

/// The analyser the configuration names. Settings it cannot work with are
/// kept as the reason every enrich task of this worker fails.
pub fn build_analyser(config: &Config) -> Result<Arc<dyn ReviewAnalyser>, String> {
    match config.enrichment.provider {
        EnrichProvider::Local => Ok(Arc::new(LocalAnalyser::new(
            config.embedding.model_dir.clone(),
            config.enrichment.local_threads,
        ))),
        EnrichProvider::OpenAi | EnrichProvider::AzureOpenAi => {
            check_provider_settings(config).map_err(|e| e.to_string())?;
            Ok(Arc::new(llm::LlmAnalyser::new(config)?))
        }
    }
}

#[async_trait::async_trait]
impl Executor for EnrichmentExecutor {
    async fn execute(&self, ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
        match ctx.task.typed()? {
            EnrichmentTask::Prepare => run_sql(ctx, UPGRADE_SQL).await,
            EnrichmentTask::Enrich(range) => self.enrich(ctx, &range).await,
            EnrichmentTask::Finish => finish(ctx).await,
            EnrichmentTask::Downgrade => run_sql(ctx, DOWNGRADE_SQL).await,
        }
    }
}

async fn run_sql(ctx: TaskContext<'_>, sql: &str) -> anyhow::Result<Completed> {
    let mut tx = ctx.conn.begin().await?;
    (&mut *tx)
        .execute(sql)
        .await
        .with_context(|| format!("revision f3e916f4940d {}", ctx.task.kind))?;
    ctx.task.complete(tx, 0).await
}

impl EnrichmentExecutor {
    async fn enrich(&self, ctx: TaskContext<'_>, range: &ReviewRange) -> anyhow::Result<Completed> {
        let analyser = self
            .analyser
            .as_ref()
            .map_err(|reason| Permanent::new(format!("revision f3e916f4940d: {reason}")))?
            .clone();
        let source = analyser.source();
        let selection =
            reviews::select(ctx.conn, range.from, range.to, self.scope, &source).await?;
        let mut selection = selection;
        let batch = match analyser.batch() {
            // A batch needs a request in it: reviews whose product has no
            // feature are decided without one.
            Some(batcher) if selection.due.iter().any(|d| !d.review.features.is_empty()) => {
                match self.through_batch(&ctx, batcher, &mut selection).await? {
                    Some(batch) => batch,
                    None => return Err(self.check_back(&ctx, "waiting on its provider batch")),
                }
            }
            _ => {
                let sent: Vec<analysis::Review> =
                    selection.due.iter().map(|d| d.review.clone()).collect();
                if sent.is_empty() {
                    AnalysedBatch::default()
                } else {
                    analyser.analyse(sent).await.with_context(|| {
                        format!(
                            "task {} ({}): the review analyser failed",
                            ctx.task.id, source
                        )
                    })?
                }
            }
        };
        anyhow::ensure!(
            batch.outcomes.len() == selection.due.len(),
            "the review analyser ({source}) answered {} outcomes for {} reviews",
            batch.outcomes.len(),
            selection.due.len()
        );
        let mut tx = ctx.conn.begin().await?;
        let written = write::apply(
            &mut tx,
            &selection.due,
            &batch,
            self.scope,
            &source,
            ctx.task.revision_run_id,
        )
        .await?;
        write::forget(&mut tx, &selection.left_scope).await?;
        sqlx::query("DELETE FROM pipeline.enrichment_batches WHERE task_id = $1")
            .bind(ctx.task.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO pipeline.enrichment_usage
                    (task_id, revision_run_id, reviews_read, reviews_sent, reviews_failed, reviews_changed,
                     prompt_tokens, completion_tokens, requests, dropped_features)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (task_id) DO UPDATE SET
                    revision_run_id = EXCLUDED.revision_run_id, reviews_read = EXCLUDED.reviews_read,
                    reviews_sent = EXCLUDED.reviews_sent, reviews_failed = EXCLUDED.reviews_failed,
                    reviews_changed = EXCLUDED.reviews_changed, prompt_tokens = EXCLUDED.prompt_tokens,
                    completion_tokens = EXCLUDED.completion_tokens, requests = EXCLUDED.requests,
                    dropped_features = EXCLUDED.dropped_features",
        )
        .bind(ctx.task.id)
        .bind(ctx.task.revision_run_id)
        .bind(selection.read as i32)
        .bind(selection.due.len() as i32)
        .bind(written.failed as i32)
        .bind(written.changed as i32)
        .bind(batch.prompt_tokens as i64)
        .bind(batch.completion_tokens as i64)
        .bind(batch.requests as i64)
        .bind(batch.dropped_features as i64)
        .execute(&mut *tx)
        .await?;
        if batch.dropped_features > 0 {
            tracing::warn!(
                "task {}: dropped {} aspects naming a feature that is not one of the review's product's",
                ctx.task.id,
                batch.dropped_features
            );
        }
        tracing::info!(
            "task {} ({source}): {} reviews; decided {} ({} aspects, {} changed), {} failed, {} unchanged, {} left the scope",
            ctx.task.id,
            selection.read,
            written.decided,
            written.aspects,
            written.changed,
            written.failed,
            selection.read - selection.due.len() - selection.left_scope.len(),
            selection.left_scope.len()
        );
        ctx.task.complete(tx, selection.read as i64).await
    }
}

impl EnrichmentExecutor {
    /// Batch API mode. The first time, submits the due reviews as one batch
    /// and records its id against the task (committed at once, so that a
    /// redelivery or a restarted worker checks back on it rather than
    /// submitting again); later, checks on it. Returns the answers once the
    /// batch is done, with `selection.due` narrowed to the reviews the batch
    /// holds whose text is still the one submitted (the others are due at
    /// the next re-run); `None` while it runs.
    async fn through_batch(
        &self,
        ctx: &TaskContext<'_>,
        batcher: &dyn BatchAnalyser,
        selection: &mut reviews::Selection,
    ) -> anyhow::Result<Option<AnalysedBatch>> {
        let stored: Option<(String, serde_json::Value)> = sqlx::query_as(
            "SELECT batch_id, reviews FROM pipeline.enrichment_batches WHERE task_id = $1",
        )
        .bind(ctx.task.id)
        .fetch_optional(ctx.pool)
        .await?;
        let Some((batch_id, submitted)) = stored else {
            let reviews: Vec<analysis::Review> =
                selection.due.iter().map(|d| d.review.clone()).collect();
            let batch_id = batcher.submit_batch(&reviews).await.with_context(|| {
                format!("task {}: submitting {} reviews as a batch", ctx.task.id, reviews.len())
            })?;
            let submitted: std::collections::BTreeMap<String, String> = selection
                .due
                .iter()
                .map(|d| (d.review.id.to_string(), d.text_hash.clone()))
                .collect();
            sqlx::query(
                "INSERT INTO pipeline.enrichment_batches (task_id, batch_id, reviews) VALUES ($1, $2, $3)
                 ON CONFLICT (task_id) DO UPDATE SET batch_id = EXCLUDED.batch_id, reviews = EXCLUDED.reviews,
                        submitted_at = now()",
            )
            .bind(ctx.task.id)
            .bind(&batch_id)
            .bind(serde_json::to_value(&submitted)?)
            .execute(ctx.pool)
            .await?;
            tracing::info!(
                "task {}: submitted {} reviews as batch {batch_id}",
                ctx.task.id,
                reviews.len()
            );
            return Ok(None);
        };
        let submitted: std::collections::BTreeMap<String, String> =
            serde_json::from_value(submitted).context("the stored batch's reviews")?;
        selection.due.retain(|d| {
            submitted.get(&d.review.id.to_string()) == Some(&d.text_hash)
        });
        let reviews: Vec<analysis::Review> =
            selection.due.iter().map(|d| d.review.clone()).collect();
        match batcher.poll_batch(&batch_id, &reviews).await? {
            BatchPoll::Pending(status) => {
                tracing::info!("task {}: batch {batch_id} is {status}", ctx.task.id);
                Ok(None)
            }
            BatchPoll::Done(batch) => Ok(Some(batch)),
            BatchPoll::Failed(reason) => {
                // Submitted again on the next attempt.
                sqlx::query("DELETE FROM pipeline.enrichment_batches WHERE task_id = $1")
                    .bind(ctx.task.id)
                    .execute(ctx.pool)
                    .await?;
                anyhow::bail!("task {}: batch {batch_id} failed: {reason}", ctx.task.id)
            }
        }
    }

    fn check_back(&self, ctx: &TaskContext<'_>, why: &str) -> anyhow::Error {
        CheckBack {
            after: std::time::Duration::from_secs(ctx.config.enrichment.batch_poll_secs),
            reason: format!("task {}: {why}", ctx.task.id),
        }
        .into()
    }
}

/// Drops what belongs to reviews that are gone, then judges the run by the
/// share of the reviews sent that failed.
async fn finish(ctx: TaskContext<'_>) -> anyhow::Result<Completed> {
    let max_share = ctx.config.enrichment.max_failed_share;
    let usage = report::usage(ctx.pool, ctx.task.revision_run_id)
        .await?
        .unwrap_or_default();
    if usage.reviews_sent > 0 {
        let share = usage.reviews_failed as f64 / usage.reviews_sent as f64;
        if share > max_share {
            let reasons: Vec<String> =
                report::failure_reasons(ctx.pool, ctx.task.revision_run_id, 3)
                    .await?
                    .into_iter()
                    .map(|(reason, n, example)| format!("{n} × (e.g. review {example}) {reason}"))
                    .collect();
            return Err(Permanent::new(format!(
                "{} of the {} reviews sent could not be decided ({}), more than ENRICH_MAX_FAILED_SHARE={}; \
                 the others are written. Reasons: {}. Fix the cause (or raise the share) and run the command again: \
                 it resumes here; once the revision is applied, `orchestrator rerun f3e916f4940d` tries the failed reviews again",
                usage.reviews_failed,
                usage.reviews_sent,
                plan::percent(share),
                plan::percent(max_share),
                reasons.join("; ")
            ))
            .into());
        }
    }
    let mut tx = ctx.conn.begin().await?;
    let mut pruned = 0;
    for table in [
        "public.review_feature_sentiments",
        "pipeline.enrichment_reviews",
        "pipeline.enrichment_backup",
        "pipeline.enrichment_failures",
    ] {
        pruned += sqlx::query(&format!(
            "DELETE FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM public.product_reviews r WHERE r.id = t.review_id)"
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tracing::info!(
        "task {}: {} reviews sent, {} failed (at most {} allowed); pruned {pruned} rows of deleted reviews",
        ctx.task.id,
        usage.reviews_sent,
        usage.reviews_failed,
        plan::percent(max_share)
    );
    ctx.task.complete(tx, pruned as i64).await
}
