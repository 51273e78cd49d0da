//! Revision f3e916f4940d (enrichment): what the enrich workers do, in which
//! order.
//!
//! - phase 1, `prepare`: one task creates the aspects table and the
//!   pipeline's enrichment tables;
//! - phase 2, `enrich`: one task per `ENRICH_TASK_ROWS` reviews, cut at
//!   actual ids, the first range open below and the last open above;
//! - phase 3, `finish`: one task drops what belongs to deleted reviews and
//!   fails the revision if more than `ENRICH_MAX_FAILED_SHARE` of the
//!   reviews it sent could not be decided.
//!
//! A re-run plans the same: the enrich tasks skip the reviews whose text,
//! product feature list and analyser are unchanged since they were decided,
//! and retry the ones that failed. A downgrade is one task.

use super::tasks::{EnrichmentTask, ReviewRange};
use crate::revision::Planner;
use shared::catalogue::Role;
use shared::config::EnrichProvider;
use shared::plan::{Phase, PlanContext, PlannedTask};
use shared::Config;

pub struct EnrichmentPlanner;

/// The plan, from the review id ranges (pure: see the tests).
pub fn enrichment_plan(ranges: &[(Option<i64>, Option<i64>)], config: &Config) -> Vec<Phase> {
    let show = |bound: Option<i64>, open: &str| bound.map_or(open.to_string(), |b| b.to_string());
    let enrich = ranges
        .iter()
        .map(|&(from, to)| {
            PlannedTask::new(
                Role::Enrich,
                format!("reviews ids {} to {}", show(from, "start"), show(to, "end")),
                &EnrichmentTask::Enrich(ReviewRange { from, to }),
            )
        })
        .collect();
    let e = &config.enrichment;
    vec![
        Phase::new(
            "prepare tables",
            vec![PlannedTask::new(
                Role::Enrich,
                "create review_feature_sentiments and the enrichment book-keeping tables",
                &EnrichmentTask::Prepare,
            )],
        ),
        Phase::new(
            format!("enrich (scope {}, analyser {})", e.scope, e.provider),
            enrich,
        ),
        Phase::new(
            "prune and check",
            vec![PlannedTask::new(
                Role::Enrich,
                format!(
                    "drop the aspects of deleted reviews; fail if more than {} of the reviews failed",
                    percent(e.max_failed_share)
                ),
                &EnrichmentTask::Finish,
            )],
        ),
    ]
}

pub fn percent(share: f64) -> String {
    format!("{}%", (share * 10000.0).round() / 100.0)
}

/// The settings an LLM provider needs, refused before anything is done.
pub fn check_provider_settings(config: &Config) -> anyhow::Result<()> {
    let e = &config.enrichment;
    let o = &config.openai;
    let why = if e.use_azure_ai {
        "USE_AZURE_AI_FOR_REVIEWS=true".to_string()
    } else {
        format!("ENRICH_PROVIDER={}", e.provider)
    };
    let missing = match e.provider {
        EnrichProvider::Local => None,
        EnrichProvider::AzureOpenAi if o.azure_endpoint.trim().is_empty() => {
            Some("AZURE_OPENAI_ENDPOINT")
        }
        EnrichProvider::AzureOpenAi if o.azure_api_key.expose().trim().is_empty() => {
            Some("AZURE_OPENAI_API_KEY")
        }
        EnrichProvider::OpenAi if o.api_key.expose().trim().is_empty() => Some("OPENAI_API_KEY"),
        EnrichProvider::AzureOpenAi | EnrichProvider::OpenAi => None,
    };
    if let Some(variable) = missing {
        anyhow::bail!(
            "revision f3e916f4940d (enrichment): {why} needs {variable}, which is not set; \
             nothing was done"
        );
    }
    if e.provider.is_llm() && e.llm_model.trim().is_empty() {
        anyhow::bail!("revision f3e916f4940d (enrichment): {why} needs LLM_MODEL; nothing was done");
    }
    Ok(())
}

#[async_trait::async_trait]
impl Planner for EnrichmentPlanner {
    fn preflight(&self, config: &Config) -> anyhow::Result<()> {
        check_provider_settings(config)
    }

    async fn upgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        anyhow::ensure!(
            crate::ranges::table_exists(ctx.pool, "public.product_reviews").await?,
            "public.product_reviews does not exist: revision f3e916f4940d needs the schema and seed revisions applied first"
        );
        let ranges = crate::ranges::integer_ranges(
            ctx.pool,
            "public.product_reviews",
            ctx.config.enrichment.task_rows,
        )
        .await?;
        Ok(enrichment_plan(&ranges, ctx.config))
    }

    async fn rerun(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        self.upgrade(ctx).await
    }

    async fn downgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Phase::single(
            "restore and drop",
            Role::Enrich,
            "put back the values the enrichment replaced; drop review_feature_sentiments",
            &EnrichmentTask::Downgrade,
        ))
    }

    async fn report(
        &self,
        pool: &sqlx::PgPool,
        revision_run_id: i64,
    ) -> anyhow::Result<Vec<String>> {
        super::report::lines(pool, revision_run_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::config::{EnrichScope, Source};

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_source(&Source::from_pairs(pairs.iter().copied())).unwrap()
    }

    #[test]
    fn one_enrich_task_per_range_between_prepare_and_finish() {
        let phases = enrichment_plan(
            &[(None, Some(40)), (Some(40), Some(95)), (Some(95), None)],
            &config(&[]),
        );
        assert_eq!(phases.len(), 3);
        assert_eq!(phases[0].tasks[0].kind, "prepare");
        let labels: Vec<&str> = phases[1].tasks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(
            labels,
            ["reviews ids start to 40", "reviews ids 40 to 95", "reviews ids 95 to end"]
        );
        assert_eq!(
            phases[1].tasks[1].payload,
            serde_json::json!({"from": 40, "to": 95})
        );
        assert!(phases[1].tasks.iter().all(|t| t.role == Role::Enrich));
        assert_eq!(phases[2].tasks[0].kind, "finish");
        assert!(phases[2].tasks[0].label.contains("1%"), "{}", phases[2].tasks[0].label);
    }

    #[test]
    fn an_llm_provider_without_its_endpoint_or_key_is_refused_naming_the_variable() {
        assert!(check_provider_settings(&config(&[])).is_ok());
        let e = check_provider_settings(&config(&[("USE_AZURE_AI_FOR_REVIEWS", "true")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AZURE_OPENAI_ENDPOINT") && e.contains("USE_AZURE_AI_FOR_REVIEWS"), "{e}");
        let e = check_provider_settings(&config(&[
            ("USE_AZURE_AI_FOR_REVIEWS", "true"),
            ("AZURE_OPENAI_ENDPOINT", "https://x.openai.azure.com"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(e.contains("AZURE_OPENAI_API_KEY"), "{e}");
        let e = check_provider_settings(&config(&[("ENRICH_PROVIDER", "openai")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("OPENAI_API_KEY"), "{e}");
        let c = config(&[("USE_AZURE_AI_FOR_REVIEWS", "true")]);
        assert_eq!(c.enrichment.scope, EnrichScope::All);
        assert_eq!(c.enrichment.provider, EnrichProvider::AzureOpenAi);
        let c = config(&[
            ("USE_AZURE_AI_FOR_REVIEWS", "true"),
            ("ENRICH_PROVIDER", "openai"),
        ]);
        assert_eq!(c.enrichment.provider, EnrichProvider::OpenAi);
    }
}
