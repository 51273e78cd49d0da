//! Revision f41ba96cab17 (graph): what the graph workers do, in which order.
//!
//! A full build (`upgrade`, `rerun --full`, or a `rerun` that finds no
//! graph of this revision):
//! 1. `prepare`: a new graph with every label;
//! 2. `vertices`: one task per `GRAPH_TASK_ROWS` rows of products, features
//!    and reviews, cut at actual ids (the first slice open below, the last
//!    open above, so rows added while planning are still covered);
//! 3. `edges`: the same slices of products (`HAS_FEATURE`) and reviews
//!    (`HAS_REVIEW` and the sentiment edges) — the ends of an edge are
//!    computed from relational ids, so edges need no vertex lookup;
//! 4. `indexes`: one task per label;
//! 5. `publish`: sequences, then the new graph replaces the shop's.
//!
//! An incremental `rerun`: `prepare changes`, one `diff` per slice, `apply`.
//! A downgrade is one task that drops the graph.

use super::elements;
use super::labels::{self, GRAPH_NAME};
use super::tasks::{GraphTask, IndexPayload, PublishPayload, Slice, Source};
use crate::revision::Planner;
use shared::catalogue::Role;
use shared::config::{PropertyMatch, SentimentEdges};
use shared::plan::{Phase, PlanContext, PlannedTask};
use sqlx::PgPool;

pub struct GraphPlanner;

/// The slices of one source: `(from, to)`, unbounded at the ends.
pub type Slices = Vec<(Option<i64>, Option<i64>)>;

/// A full build, from the slices of each source (pure: see the tests).
pub fn build_plan(
    slices: &[(Source, Slices)],
    sentiment_edges: SentimentEdges,
    property_match: PropertyMatch,
) -> Vec<Phase> {
    let tasks = |make: fn(Slice) -> GraphTask, what: fn(Source) -> Option<&'static str>| {
        let mut tasks = Vec::new();
        for (source, ranges) in slices {
            let Some(what) = what(*source) else { continue };
            for (from, to) in ranges {
                let slice = Slice {
                    source: *source,
                    from: *from,
                    to: *to,
                    sentiment_edges,
                };
                tasks.push(PlannedTask::new(
                    Role::Graph,
                    format!("{what} of {}", show_range(*source, *from, *to)),
                    &make(slice),
                ));
            }
        }
        tasks
    };
    let vertices = tasks(GraphTask::Vertices, |source| {
        Some(match source {
            Source::Products => "Product vertices",
            Source::Features => "Feature vertices",
            Source::Reviews => "Review vertices",
        })
    });
    let edges = tasks(GraphTask::Edges, |source| match source {
        Source::Products => Some("HAS_FEATURE edges"),
        Source::Reviews => Some("HAS_REVIEW and sentiment edges"),
        Source::Features => None,
    });
    let indexes = labels::all_labels()
        .map(|label| {
            PlannedTask::new(
                Role::Graph,
                format!("indexes of {label}, analyse"),
                &GraphTask::Index(IndexPayload {
                    label: label.to_string(),
                }),
            )
        })
        .collect();
    vec![
        Phase::new(
            "prepare graph",
            vec![PlannedTask::new(
                Role::Graph,
                "create a new graph with its labels",
                &GraphTask::Prepare,
            )],
        ),
        Phase::new("vertices", vertices),
        Phase::new("edges", edges),
        Phase::new("indexes", indexes),
        Phase::new(
            "publish",
            vec![PlannedTask::new(
                Role::Graph,
                format!("move sequences; replace {GRAPH_NAME} with the new graph"),
                &GraphTask::Publish(PublishPayload { property_match }),
            )],
        ),
    ]
}

/// An incremental re-run, from the slices of each source (pure).
pub fn update_plan(slices: &[(Source, Slices)], sentiment_edges: SentimentEdges) -> Vec<Phase> {
    let mut diffs = Vec::new();
    for (source, ranges) in slices {
        for (from, to) in ranges {
            diffs.push(PlannedTask::new(
                Role::Graph,
                format!("compare {} with the graph", show_range(*source, *from, *to)),
                &GraphTask::Diff(Slice {
                    source: *source,
                    from: *from,
                    to: *to,
                    sentiment_edges,
                }),
            ));
        }
    }
    vec![
        Phase::new(
            "prepare changes",
            vec![PlannedTask::new(
                Role::Graph,
                "create the changes table",
                &GraphTask::PrepareUpdate,
            )],
        ),
        Phase::new("compare", diffs),
        Phase::new(
            "apply",
            vec![PlannedTask::new(
                Role::Graph,
                format!("apply the changes to {GRAPH_NAME} in one transaction"),
                &GraphTask::Apply,
            )],
        ),
    ]
}

fn show_range(source: Source, from: Option<i64>, to: Option<i64>) -> String {
    format!(
        "{} ids {} to {}",
        source.as_str(),
        from.map_or("start".into(), |v| v.to_string()),
        to.map_or("end".into(), |v| v.to_string())
    )
}

impl GraphPlanner {
    /// What both kinds of plan start from: the tables are there, their ids
    /// can be graph ids, the slices, and where sentiment edges come from.
    async fn inputs(&self, ctx: &PlanContext<'_>) -> anyhow::Result<(Vec<(Source, Slices)>, SentimentEdges)> {
        let pool = ctx.pool;
        for table in Source::ALL.map(Source::table).into_iter().chain(["public.product_features"]) {
            anyhow::ensure!(
                crate::ranges::table_exists(pool, table).await?,
                "{table} does not exist: revision f41ba96cab17 needs the schema and seed revisions applied first"
            );
        }
        let mut slices = Vec::new();
        for source in Source::ALL {
            let (smallest, largest): (Option<i64>, Option<i64>) = sqlx::query_as(&format!(
                "SELECT min(id)::bigint, max(id)::bigint FROM {}",
                source.table()
            ))
            .fetch_one(pool)
            .await?;
            if let Some(bad) = [smallest, largest]
                .into_iter()
                .flatten()
                .find(|id| !(1..=labels::MAX_ENTRY).contains(id))
            {
                anyhow::bail!(
                    "{} holds id {bad}: a vertex's graph id is its row's id, which must be between 1 and {}; nothing was built",
                    source.table(),
                    labels::MAX_ENTRY
                );
            }
            slices.push((
                source,
                crate::ranges::integer_ranges(pool, source.table(), ctx.config.graph.task_rows).await?,
            ));
        }
        let sentiment = elements::sentiment_source(pool, ctx.config.graph.sentiment_edges).await?;
        if sentiment != ctx.config.graph.sentiment_edges {
            shared::say!(
                "graph: GRAPH_SENTIMENT_EDGES is {} but public.review_feature_sentiments does not exist; \
                 sentiment edges come from product_reviews.feature_id / sentiment",
                ctx.config.graph.sentiment_edges
            );
        }
        warn_unless_preloaded(pool).await?;
        Ok((slices, sentiment))
    }

    async fn full(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        let (slices, sentiment) = self.inputs(ctx).await?;
        Ok(build_plan(&slices, sentiment, ctx.config.graph.property_match))
    }
}

#[async_trait::async_trait]
impl Planner for GraphPlanner {
    async fn upgrade(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        self.full(ctx).await
    }

    /// Changes only what changed, on a graph this revision built; any other
    /// graph (none, or the original migration's) is built afresh.
    async fn rerun(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        if !built_here(ctx.pool).await? {
            shared::say!(
                "graph: {GRAPH_NAME} was not built by this revision (or does not exist); rebuilding it from scratch"
            );
            return self.full(ctx).await;
        }
        let (slices, sentiment) = self.inputs(ctx).await?;
        Ok(update_plan(&slices, sentiment))
    }

    async fn rerun_full(&self, ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        self.full(ctx).await
    }

    async fn downgrade(&self, _ctx: &PlanContext<'_>) -> anyhow::Result<Vec<Phase>> {
        Ok(Phase::single(
            "drop graph",
            Role::Graph,
            format!("drop the graph {GRAPH_NAME}"),
            &GraphTask::Downgrade,
        ))
    }
}

/// Whether the shop's graph exists and a complete build of this revision
/// made it.
async fn built_here(pool: &PgPool) -> anyhow::Result<bool> {
    let age: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'age')")
        .fetch_one(pool)
        .await?;
    if !age {
        return Ok(false);
    }
    let mark: Option<Option<String>> = sqlx::query_scalar(
        "SELECT obj_description(namespace::oid, 'pg_namespace') FROM ag_catalog.ag_graph WHERE name = $1::name",
    )
    .bind(GRAPH_NAME)
    .fetch_optional(pool)
    .await?;
    Ok(mark.flatten().as_deref() == Some(labels::BUILT_MARK))
}

/// The shop runs `cypher()` without `LOAD 'age'`: say so when the server
/// does not preload AGE, since the graph then builds but the shop's query
/// fails on a fresh connection.
async fn warn_unless_preloaded(pool: &PgPool) -> anyhow::Result<()> {
    let libraries: String = sqlx::query_scalar("SELECT current_setting('shared_preload_libraries')")
        .fetch_one(pool)
        .await?;
    let preloaded = libraries
        .split(',')
        .map(|l| l.trim().trim_matches('"'))
        .any(|l| l == "age" || l.ends_with("/age"));
    if !preloaded {
        shared::say!(
            "graph: WARNING: this PostgreSQL server does not preload AGE (shared_preload_libraries = {libraries:?}); \
             the graph builds, but the shop's cypher() calls fail on connections that never ran LOAD 'age'. \
             Add age to shared_preload_libraries and restart the server (scripts/services.sh and the compose image do)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::plan::typed_task;

    fn sources() -> Vec<(Source, Slices)> {
        vec![
            (Source::Products, vec![(None, None)]),
            (Source::Features, vec![(None, None)]),
            (
                Source::Reviews,
                vec![(None, Some(500)), (Some(500), Some(900)), (Some(900), None)],
            ),
        ]
    }

    #[test]
    fn a_build_is_vertices_then_edges_then_indexes_then_publish() {
        let phases = build_plan(&sources(), SentimentEdges::Aspects, PropertyMatch::Equality);
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["prepare graph", "vertices", "edges", "indexes", "publish"]);
        assert_eq!(phases[1].tasks.len(), 1 + 1 + 3, "one vertex task per slice");
        assert_eq!(phases[2].tasks.len(), 1 + 3, "features own no edges");
        assert_eq!(phases[3].tasks.len(), labels::all_labels().count());
        assert!(phases.iter().flat_map(|p| &p.tasks).all(|t| t.role == Role::Graph));
        let labels: Vec<&str> = phases[2].tasks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels[0], "HAS_FEATURE edges of products ids start to end");
        assert_eq!(labels[2], "HAS_REVIEW and sentiment edges of reviews ids 500 to 900");
        assert_eq!(phases[4].tasks[0].payload["property_match"], "equality");
        let task = &phases[2].tasks[3];
        assert_eq!(
            typed_task::<GraphTask>(&task.kind, &task.payload),
            Ok(GraphTask::Edges(Slice {
                source: Source::Reviews,
                from: Some(900),
                to: None,
                sentiment_edges: SentimentEdges::Aspects
            }))
        );
    }

    #[test]
    fn an_update_compares_every_slice_then_applies_once() {
        let phases = update_plan(&sources(), SentimentEdges::Main);
        let names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["prepare changes", "compare", "apply"]);
        assert_eq!(phases[1].tasks.len(), 5);
        assert!(phases[1].tasks.iter().all(|t| t.kind == "diff"));
        assert_eq!(phases[1].tasks[1].payload["source"], "features");
        assert_eq!(phases[1].tasks[1].payload["sentiment_edges"], "main");
        assert_eq!(phases[2].tasks.len(), 1);
    }
}
