//! Moving the database to a target: `upgrade`, `downgrade` and `rerun` as a
//! library call ([`run`]), which `main.rs` and (later) the scheduler use.
//!
//! The path is resolved twice, by the same code: once before anything is
//! touched, so that a path crossing a revision this version cannot run is
//! refused without creating even the pipeline's tables, and once more under
//! the run lock, since another run may have moved the database meanwhile.

use crate::driver::{self, RunOptions};
use crate::local_workers::LocalWorkers;
use crate::lock::WaitPolicy;
use anyhow::bail;
use revisions::registry::{Target, CHAIN};
use revisions::Revision;
use shared::plan::{Direction, RerunFlags};
use shared::Config;
use sqlx::PgPool;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What a user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub direction: Direction,
    /// `head`, `base`, `latest`, an id, a unique id prefix or a name.
    pub target: String,
    /// Fail at once if another run holds the run lock.
    pub no_wait: bool,
    /// Start this many local worker processes for the run.
    pub with_workers: Option<usize>,
    pub worker_concurrency: Option<usize>,
    /// Default: `DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// Who asked, when not a person at the command line ("schedule
    /// nightly"): shown with the run by `status` and `history`.
    pub label: Option<String>,
    /// `rerun --full` / `--prune`: for the named revision only.
    pub rerun: RerunFlags,
}

/// What a finished move did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub direction: Direction,
    /// The resolved target (`base` or a revision id).
    pub target: &'static str,
    /// The revisions run, in order (empty: the database was there already).
    pub revisions: Vec<&'static str>,
    /// `alembic_version` before the move (`None`: base).
    pub started_at: Option<&'static str>,
    pub elapsed: Duration,
}

/// What the user typed, resolved from the revision the database is at
/// (relative targets count from there). A target that names nothing is
/// [`BadUsage`].
pub fn resolve_target(target: &str, current: Option<usize>) -> anyhow::Result<Target> {
    revisions::registry::resolve_at(target, current).map_err(|e| BadUsage(e).into())
}

/// A command that cannot mean anything (an unknown revision, a relative
/// target past the chain): exit code 2.
#[derive(Debug)]
pub struct BadUsage(pub String);

impl std::fmt::Display for BadUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadUsage {}

pub async fn run(config: &Config, request: &Request) -> anyhow::Result<Summary> {
    // Targets that need no database are checked before connecting.
    if !request.target.contains(['+', '-']) {
        resolve_target(&request.target, None)?;
    }
    let direction = request.direction;
    let data_dir = request
        .data_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.clone());
    // Refuse an earlier-layout database or an unavailable revision before
    // doing anything at all...
    let target = {
        let pool = shared::db::connect(config, 2, Duration::from_secs(30)).await?;
        let checked = async {
            check_connections(&pool, config, request).await?;
            refuse_earlier_layout(&pool).await?;
            let current = current_index(&pool).await?;
            let target = resolve_target(&request.target, current)?;
            anyhow::Ok((target, path(current, target, direction)?))
        }
        .await;
        pool.close().await;
        let (target, path) = checked?;
        preflight(config, &path, direction)?;
        target
    };
    let options = RunOptions {
        command: match &request.label {
            Some(label) => format!("{label}: {} {}", direction.as_str(), target_name(target)),
            None => format!("{} {}", direction.as_str(), target_name(target)),
        },
        wait: if request.no_wait {
            WaitPolicy::NoWait
        } else {
            WaitPolicy::Wait
        },
        data_dir: data_dir.clone(),
    };
    let mut driver = driver::start(config, &options).await?;
    driver.rerun = request.rerun;
    let outcome = async {
        // ...and look again under the run lock.
        let current = current_index(&driver.pool).await?;
        let target = resolve_target(&request.target, current)?;
        let path = path(current, target, direction)?;
        let started = Instant::now();
        if !path.is_empty() {
            let workers = match request.with_workers {
                Some(n) if n > 0 => Some(LocalWorkers::start(n, request.worker_concurrency)?),
                _ => None,
            };
            let result = driver.run_path(&path, direction, &data_dir).await;
            if let Some(workers) = workers {
                workers.stop(Duration::from_secs(60)).await;
            }
            result?;
        }
        anyhow::Ok(Summary {
            direction,
            target: target_name(target),
            revisions: path.iter().map(|r| r.id).collect(),
            started_at: current.map(|i| CHAIN[i].id),
            elapsed: started.elapsed(),
        })
    }
    .await;
    driver.finish(outcome.as_ref().map(|_| ())).await;
    outcome
}

/// Refuses, before anything is written, a move whose connections (this
/// process's and those of the local workers it starts) could never all be
/// open on the server.
async fn check_connections(
    pool: &PgPool,
    config: &Config,
    request: &Request,
) -> anyhow::Result<()> {
    let workers = request.with_workers.unwrap_or(0);
    let concurrency = request
        .worker_concurrency
        .unwrap_or(config.worker_concurrency);
    let wanted = shared::db::worker_connections(concurrency)
        .saturating_mul(u32::try_from(workers).unwrap_or(u32::MAX))
        .saturating_add(driver::CONNECTIONS);
    let who = if workers == 0 {
        "this orchestrator".to_string()
    } else {
        format!(
            "this orchestrator with its {workers} local worker(s) (--with-workers {workers}, \
             --concurrency / WORKER_CONCURRENCY {concurrency}: 2 per slot and 2 more each)"
        )
    };
    shared::db::check_connection_budget(pool, wanted, &who).await
}

/// `rerun <rev> [--cascade]`: the revision, then, with `cascade`, every
/// applied revision after it in chain order, each doing only its own
/// changed work (each is a re-run of its own, resumable on its own).
pub async fn rerun(
    config: &Config,
    request: &Request,
    cascade: bool,
) -> anyhow::Result<Vec<Summary>> {
    let first = run(config, request).await?;
    let from = revisions::registry::position(first.target);
    let mut summaries = vec![first];
    if cascade {
        let pool = shared::db::connect(config, 2, Duration::from_secs(30)).await?;
        let current = current_index(&pool).await;
        pool.close().await;
        if let (Some(from), Some(current)) = (from, current?) {
            for revision in &CHAIN[from + 1..=current] {
                // `--full` and `--prune` are the named revision's; the
                // ones after it change only what changed (a pruned row's
                // vectors, enrichment and vertices go as deletes).
                let next = Request {
                    target: revision.id.to_string(),
                    rerun: RerunFlags::default(),
                    ..request.clone()
                };
                summaries.push(run(config, &next).await?);
            }
        }
    }
    Ok(summaries)
}

/// Every revision a move will run checks the settings it needs, so that a
/// missing key refuses the whole move before its first revision changes
/// anything (a downgrade needs no provider).
fn preflight(config: &Config, path: &[&Revision], direction: Direction) -> anyhow::Result<()> {
    if direction == Direction::Downgrade {
        return Ok(());
    }
    for revision in path {
        revision.planner.preflight(config)?;
    }
    Ok(())
}

/// The revision `alembic_version` holds, as an index into the chain.
pub async fn current_index(pool: &PgPool) -> anyhow::Result<Option<usize>> {
    match shared::db::current_revision(pool).await? {
        None => Ok(None),
        Some(id) => match revisions::registry::position(&id) {
            Some(i) => Ok(Some(i)),
            None => bail!(
                "alembic_version holds {id:?}, which this version does not know; \
                 the database was migrated by something else"
            ),
        },
    }
}

/// Refuses a database that this project's earlier layout built (tables
/// `public.product` / `public.review`, `alembic_version` set): this version's
/// revisions read and write the current tables, so running them there would
/// half-migrate it. Called before anything is written, not even the
/// pipeline's own tables.
pub async fn refuse_earlier_layout(pool: &PgPool) -> anyhow::Result<()> {
    let Some(version) = shared::db::current_revision(pool).await? else {
        return Ok(());
    };
    let (older, current): (Vec<String>, bool) = sqlx::query_as(
        "SELECT ARRAY(SELECT t FROM unnest(ARRAY['public.product', 'public.review', 'public.product_image', 'public.personalized_product_section']) AS t
                       WHERE to_regclass(t) IS NOT NULL),
                to_regclass('public.products') IS NOT NULL",
    )
    .fetch_one(pool)
    .await?;
    if older.is_empty() || current {
        return Ok(());
    }
    bail!(
        "this database was built with the earlier table layout: it has {} and alembic_version {version}, \
         but no public.products; this version creates and reads the current layout (products, product_reviews, \
         product_images, personalized_product_sections) and will not change this database. Either run \
         `orchestrator downgrade base` with the earlier version of this project first, or point DATABASE_URL \
         at a fresh database; nothing was changed",
        older.join(", ")
    );
}

/// The revisions a command runs, in order: from `current` to `target` for
/// upgrade and downgrade; for a re-run, the one revision, which must be
/// applied.
pub fn path(
    current: Option<usize>,
    target: Target,
    direction: Direction,
) -> anyhow::Result<Vec<&'static Revision>> {
    let applied = current.map_or(0, |i| i + 1);
    let at = || current.map_or("base", |i| CHAIN[i].id);
    match (direction, target) {
        (Direction::Rerun, Target::Revision(i)) => {
            let revision = &CHAIN[i];
            if applied <= i {
                bail!(
                    "revision {} ({}) is not applied (the database is at {}); run `orchestrator upgrade {}` first",
                    revision.id,
                    revision.name,
                    at(),
                    revision.id
                );
            }
            Ok(vec![revision])
        }
        (Direction::Rerun, Target::Base) => {
            bail!("base is not a revision: name the revision to re-run")
        }
        (Direction::Upgrade, _) => {
            let wanted = target.applied_count();
            if wanted < applied {
                bail!(
                    "the database is already past that revision (at {}); use `downgrade` to go back",
                    at()
                );
            }
            Ok(CHAIN[applied..wanted].to_vec())
        }
        (Direction::Downgrade, _) => {
            let wanted = target.applied_count();
            if wanted > applied {
                bail!(
                    "the database is not at or past that revision (at {}); use `upgrade` to go forward",
                    at()
                );
            }
            Ok(CHAIN[wanted..applied].iter().rev().copied().collect())
        }
    }
}

pub fn target_name(target: Target) -> &'static str {
    match target {
        Target::Base => "base",
        Target::Revision(i) => CHAIN[i].id,
    }
}

/// `stamp <rev|head|base> [--purge]`: sets `alembic_version` without running
/// anything, under the run lock, as Alembic does. A version this version
/// does not know is only replaced with `--purge`.
pub async fn stamp(config: &Config, target: &str, purge: bool) -> anyhow::Result<()> {
    let current = {
        let pool = shared::db::connect(config, 2, Duration::from_secs(30)).await?;
        let current = match shared::db::current_revision(&pool).await {
            Ok(Some(id)) if revisions::registry::position(&id).is_none() && !purge => {
                pool.close().await;
                bail!(
                    "alembic_version holds {id:?}, which this version does not know; \
                     `stamp --purge` replaces it"
                );
            }
            Ok(Some(id)) => revisions::registry::position(&id),
            Ok(None) => None,
            Err(e) => {
                pool.close().await;
                return Err(e);
            }
        };
        pool.close().await;
        current
    };
    let target = resolve_target(target, current)?;
    let options = RunOptions {
        command: format!("stamp {}", target_name(target)),
        wait: WaitPolicy::Wait,
        data_dir: config.data_dir.clone(),
    };
    let driver = driver::start(config, &options).await?;
    let new_head = match target {
        Target::Base => None,
        Target::Revision(i) => Some(CHAIN[i].id),
    };
    let outcome = driver.stamp(new_head).await;
    driver.finish(outcome.as_ref().map(|_| ())).await;
    outcome?;
    shared::say!(
        "stamped: alembic_version is now {} (nothing was run)",
        new_head.unwrap_or("(base)")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::catalogue;

    fn ids(path: &[&Revision]) -> Vec<&'static str> {
        path.iter().map(|r| r.id).collect()
    }

    #[test]
    fn an_upgrade_runs_the_revisions_after_the_current_one_up_to_the_target() {
        let to_embeddings = Target::Revision(3);
        assert_eq!(
            ids(&path(None, to_embeddings, Direction::Upgrade).unwrap()),
            [
                catalogue::EXTENSIONS,
                catalogue::SCHEMA,
                catalogue::SEED,
                catalogue::EMBEDDINGS
            ]
        );
        // A database the current Alembic chain stamped at its base.
        assert_eq!(
            ids(&path(Some(0), to_embeddings, Direction::Upgrade).unwrap()),
            [catalogue::SCHEMA, catalogue::SEED, catalogue::EMBEDDINGS]
        );
        assert!(path(Some(3), to_embeddings, Direction::Upgrade)
            .unwrap()
            .is_empty());
        let e = path(Some(3), Target::Revision(1), Direction::Upgrade).unwrap_err();
        assert!(e.to_string().contains("use `downgrade`"), "{e}");
    }

    #[test]
    fn a_downgrade_undoes_in_reverse_order_down_to_the_target() {
        assert_eq!(
            ids(&path(Some(2), Target::Base, Direction::Downgrade).unwrap()),
            [catalogue::SEED, catalogue::SCHEMA, catalogue::EXTENSIONS]
        );
        assert_eq!(
            ids(&path(Some(2), Target::Revision(0), Direction::Downgrade).unwrap()),
            [catalogue::SEED, catalogue::SCHEMA]
        );
        let e = path(None, Target::Revision(1), Direction::Downgrade).unwrap_err();
        assert!(e.to_string().contains("at base"), "{e}");
    }

    #[test]
    fn a_rerun_is_the_one_revision_and_it_must_be_applied() {
        assert_eq!(
            ids(&path(Some(3), Target::Revision(2), Direction::Rerun).unwrap()),
            [catalogue::SEED]
        );
        let e = path(Some(1), Target::Revision(2), Direction::Rerun).unwrap_err();
        assert!(e.to_string().contains("is not applied"), "{e}");
        assert!(path(Some(1), Target::Base, Direction::Rerun).is_err());
    }
}
