//! Read-only commands: `current`, `heads`, `show`, `history`, `status`.
//! What they read of the pipeline tables comes through `shared::store`.
//!
//! `history` and `status` first build a report (the `--json` schema, see the
//! README's "Machine-readable output"), then print it as text or as JSON, so
//! that both views always say the same numbers.

use revisions::registry::{Target, CHAIN};
use serde::Serialize;
use shared::db;
use shared::store;
use sqlx::PgPool;
use std::io::IsTerminal;
use std::time::Duration;

/// How a read-only command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text { verbose: bool },
    Json,
}

pub async fn current(pool: &PgPool, verbose: bool) -> anyhow::Result<()> {
    let current = db::current_revision(pool).await?;
    match current.as_deref() {
        Some(id) => {
            let name = revisions::registry::find(id).map_or("unknown to this version", |r| r.name);
            println!("{id} ({name})");
            if verbose {
                if let Some(i) = revisions::registry::position(id) {
                    show(pool, Target::Revision(i)).await?;
                }
            }
        }
        None => println!("(base)"),
    }
    Ok(())
}

/// `heads`: the one head of the chain.
pub fn heads() {
    if let Some(head) = CHAIN.last() {
        println!("{} ({}) (head)", head.id, head.name);
    }
}

fn parent(i: usize) -> String {
    i.checked_sub(1).map_or("<base>".to_string(), |p| {
        format!("{} ({})", CHAIN[p].id, CHAIN[p].name)
    })
}

/// How many revisions of the chain `alembic_version` says are applied.
async fn applied_count(pool: &PgPool) -> anyhow::Result<usize> {
    Ok(db::current_revision(pool)
        .await?
        .as_deref()
        .and_then(revisions::registry::position)
        .map_or(0, |c| c + 1))
}

/// `show <rev>`: what the revision is, whether it is applied, and how its
/// last run went.
pub async fn show(pool: &PgPool, target: Target) -> anyhow::Result<()> {
    let Target::Revision(i) = target else {
        println!("base: the empty database, before the first revision");
        return Ok(());
    };
    let revision = &CHAIN[i];
    println!("Rev: {} ({})", revision.id, revision.name);
    println!("Parent: {}", parent(i));
    println!("Does: {}", revision.summary);
    let applied = if i < applied_count(pool).await? {
        match store::last_applied_at(pool, revision.id).await? {
            Some(when) => format!("yes, {when}"),
            None => "yes (before this pipeline, by Alembic)".to_string(),
        }
    } else {
        "no".to_string()
    };
    println!("Applied: {applied}");
    match store::last_revision_run(pool, revision.id).await? {
        None => println!("Last run: none"),
        Some((id, direction, status, started)) => {
            println!("Last run: #{id} {direction}, {status}, started {started}");
            for (phase, role, state, n, rows) in store::task_summary(pool, id).await? {
                println!("  phase {}: {role} {state} {n} ({rows} rows)", phase + 1);
            }
        }
    }
    Ok(())
}

/// One revision of the chain, as `history` lists it.
#[derive(Debug, Serialize)]
pub struct HistoryEntry {
    /// 1 for the chain's first revision.
    pub position: usize,
    pub id: &'static str,
    pub name: &'static str,
    /// The revision before it; `null` for the first.
    pub down_revision: Option<&'static str>,
    pub summary: &'static str,
    pub applied: bool,
    /// When the pipeline last applied it (`null`: not applied, or applied
    /// by Alembic before this pipeline ran here).
    pub applied_at: Option<String>,
    pub current: bool,
    /// Its latest revision run, if any.
    pub last_run: Option<LastRun>,
}

#[derive(Debug, Serialize)]
pub struct LastRun {
    pub revision_run: i64,
    pub direction: String,
    pub status: String,
    pub started: String,
}

/// The chain's revisions from `range` (`A:B`, either side optional; `base`,
/// `head`, `current`, an id, prefix or name), oldest first.
pub async fn history(pool: &PgPool, range: Option<&str>, output: Output) -> anyhow::Result<()> {
    let current = db::current_revision(pool).await?;
    let current_index = current.as_deref().and_then(revisions::registry::position);
    let (from, to) = match range {
        Some(range) => history_range(range, current_index)?,
        None => (0, CHAIN.len()),
    };
    let applied_count = current_index.map_or(0, |i| i + 1);
    let mut entries = Vec::new();
    for (i, revision) in CHAIN.iter().enumerate().take(to).skip(from) {
        let applied = i < applied_count;
        let applied_at = if applied {
            store::last_applied_at(pool, revision.id).await?
        } else {
            None
        };
        let last_run = store::last_revision_run(pool, revision.id).await?.map(
            |(id, direction, status, started)| LastRun {
                revision_run: id,
                direction,
                status,
                started,
            },
        );
        entries.push(HistoryEntry {
            position: i + 1,
            id: revision.id,
            name: revision.name,
            down_revision: i.checked_sub(1).map(|p| CHAIN[p].id),
            summary: revision.summary,
            applied,
            applied_at,
            current: current_index == Some(i),
            last_run,
        });
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        Output::Text { verbose } => print_history(&entries, verbose),
    }
    Ok(())
}

/// `A:B` as a half-open range of chain positions (`B` included).
fn history_range(range: &str, current: Option<usize>) -> anyhow::Result<(usize, usize)> {
    let bad = |why: String| crate::migrate::BadUsage(format!("history -r {range:?}: {why}"));
    let Some((a, b)) = range.split_once(':') else {
        return Err(bad("expected A:B (either side may be empty: `A:` or `:B`)".into()).into());
    };
    // The position just after the revision named (0 for base).
    let end_of = |side: &str, empty: usize| -> anyhow::Result<usize> {
        match side.trim() {
            "" => Ok(empty),
            "current" => Ok(current.map_or(0, |i| i + 1)),
            name => match revisions::registry::resolve(name).map_err(bad)? {
                Target::Base => Ok(0),
                Target::Revision(i) => Ok(i + 1),
            },
        }
    };
    let from = end_of(a, 1)?.saturating_sub(1);
    let to = end_of(b, CHAIN.len())?;
    if from >= to {
        return Err(bad(format!(
            "{} comes after {}: give the older revision first",
            a.trim(),
            b.trim()
        ))
        .into());
    }
    Ok((from, to))
}

fn print_history(entries: &[HistoryEntry], verbose: bool) {
    for entry in entries {
        let state = match (entry.applied, &entry.applied_at) {
            (true, Some(when)) => format!("applied {when}"),
            (true, None) => "applied (before this pipeline, by Alembic)".to_string(),
            (false, _) => "not applied".to_string(),
        };
        let head = if entry.current { " (current)" } else { "" };
        println!(
            "{:>2}. {} {:<11} {:<48}{head}\n      {}",
            entry.position, entry.id, entry.name, state, entry.summary
        );
        if verbose {
            println!("      Parent: {}", parent(entry.position - 1));
            match &entry.last_run {
                Some(run) => println!(
                    "      Last run: #{} {}, {}, started {}",
                    run.revision_run, run.direction, run.status, run.started
                ),
                None => println!("      Last run: none"),
            }
        }
    }
}

/// `status`: one run (the last, or `run`), as text or JSON.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub id: i64,
    pub command: String,
    /// `running`, `succeeded`, `failed` or `interrupted` (its orchestrator died).
    pub status: String,
    /// Who asked: a user's command, or `schedule <name>`.
    pub requested_by: String,
    pub started: String,
    pub finished: Option<String>,
    pub error: Option<String>,
    pub revisions: Vec<RevisionReport>,
    /// The run's latest task errors, newest first (at most 5).
    pub last_errors: Vec<TaskError>,
}

#[derive(Debug, Serialize)]
pub struct RevisionReport {
    pub revision_run: i64,
    pub revision: String,
    pub name: String,
    pub direction: String,
    pub status: String,
    /// The revision's own report lines (enrichment: tokens, failures).
    pub report: Vec<String>,
    pub phases: Vec<PhaseReport>,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    /// 1 for the first phase.
    pub number: usize,
    pub name: String,
    pub tasks: Vec<TaskCount>,
}

#[derive(Debug, Serialize)]
pub struct TaskCount {
    pub role: String,
    pub state: String,
    pub count: i64,
    pub rows: i64,
}

#[derive(Debug, Serialize)]
pub struct TaskError {
    pub task: i64,
    pub revision: String,
    pub label: String,
    pub attempt: i32,
    pub message: String,
}

/// The report of run `run` (`None`: the last one); `None` when there is no run.
async fn status_report(pool: &PgPool, run: Option<i64>) -> anyhow::Result<Option<StatusReport>> {
    let Some(run_row) = store::find_run(pool, run).await? else {
        if let Some(id) = run {
            return Err(crate::migrate::BadUsage(format!(
                "there is no run #{id} on this database (`orchestrator status` shows the last one)"
            ))
            .into());
        }
        return Ok(None);
    };
    let mut revisions_report = Vec::new();
    for revision_run in store::revision_runs_of(pool, run_row.id).await? {
        let revision = revision_run.revision.as_str();
        let name = revisions::registry::find(revision).map_or(revision, |r| r.name);
        let report = match revisions::registry::find(revision) {
            Some(registered) => registered.planner.report(pool, revision_run.id).await?,
            None => Vec::new(),
        };
        let rows = store::task_summary(pool, revision_run.id).await?;
        let phases = revision_run
            .phases
            .iter()
            .enumerate()
            .map(|(phase, phase_name)| PhaseReport {
                number: phase + 1,
                name: phase_name.clone(),
                tasks: rows
                    .iter()
                    .filter(|r| r.0 == phase as i32)
                    .map(|(_, role, state, count, rows)| TaskCount {
                        role: role.clone(),
                        state: state.clone(),
                        count: *count,
                        rows: *rows,
                    })
                    .collect(),
            })
            .collect();
        revisions_report.push(RevisionReport {
            revision_run: revision_run.id,
            revision: revision.to_string(),
            name: name.to_string(),
            direction: revision_run.direction,
            status: revision_run.status,
            report,
            phases,
        });
    }
    let last_errors = store::last_errors(pool, run_row.id, 5)
        .await?
        .into_iter()
        .map(|(task, revision, label, attempt, message)| TaskError {
            task,
            revision,
            label,
            attempt,
            message,
        })
        .collect();
    Ok(Some(StatusReport {
        id: run_row.id,
        command: run_row.command,
        status: run_row.status,
        requested_by: run_row.requested_by,
        started: run_row.started,
        finished: run_row.finished,
        error: run_row.error,
        revisions: revisions_report,
        last_errors,
    }))
}

/// The last run (or run `run`): its revision runs, phases, tasks by state
/// and last errors. With `watch`, drawn again every `watch` until the run
/// is no longer running.
pub async fn status(
    pool: &PgPool,
    run: Option<i64>,
    output: Output,
    watch: Option<Duration>,
) -> anyhow::Result<()> {
    if !store::has_pipeline_tables(pool).await? && run.is_none() {
        match output {
            Output::Json => println!("null"),
            Output::Text { .. } => {
                println!("no run yet: the pipeline has never run on this database")
            }
        }
        return Ok(());
    }
    // Redrawn in place on a terminal; elsewhere (a file, a pipe) one frame
    // after the other.
    let redraw = watch.is_some() && std::io::stdout().is_terminal();
    loop {
        let report = status_report(pool, run).await?;
        if redraw {
            print!("\x1b[2J\x1b[H");
        }
        match (&report, output) {
            (report, Output::Json) => println!("{}", serde_json::to_string(report)?),
            (None, Output::Text { .. }) => println!("no run yet"),
            (Some(report), Output::Text { .. }) => print_status(report),
        }
        let running = report
            .as_ref()
            .is_some_and(|r| r.status == store::RunStatus::Running.as_str());
        match watch {
            Some(every) if running => {
                if !redraw && output != Output::Json {
                    println!();
                }
                tokio::time::sleep(every).await;
            }
            _ => return Ok(()),
        }
    }
}

fn print_status(run: &StatusReport) {
    println!(
        "run #{} `{}`: {}, started {}{}",
        run.id,
        run.command,
        run.status,
        run.started,
        run.finished
            .as_ref()
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    );
    for revision in &run.revisions {
        println!(
            "  {} {} ({}): {}",
            revision.direction, revision.revision, revision.name, revision.status
        );
        for line in &revision.report {
            println!("    {line}");
        }
        for phase in &revision.phases {
            let mut line = format!("    phase {} {}:", phase.number, phase.name);
            for task in &phase.tasks {
                line.push_str(&format!(" {} {} {}", task.role, task.state, task.count));
                if task.rows > 0 {
                    line.push_str(&format!(" ({} rows)", task.rows));
                }
                line.push(';');
            }
            println!("{}", line.trim_end_matches(';'));
        }
    }
    if !run.last_errors.is_empty() {
        println!("  last errors:");
        for e in &run.last_errors {
            println!(
                "    task {} ({}, {}, attempt {}): {}",
                e.task, e.revision, e.label, e.attempt, e.message
            );
        }
    }
    if let Some(error) = &run.error {
        println!("  run error: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_ranges_name_both_ends_inclusive() {
        let (seed, embeddings) = (2, 3);
        assert_eq!(history_range("base:head", None).unwrap(), (0, 6));
        assert_eq!(history_range(":", None).unwrap(), (0, 6));
        assert_eq!(
            history_range("seed:embeddings", None).unwrap(),
            (seed, embeddings + 1)
        );
        assert_eq!(history_range("ef85:", None).unwrap(), (seed, 6));
        assert_eq!(history_range(":schema", None).unwrap(), (0, 2));
        assert_eq!(
            history_range("current:", Some(embeddings)).unwrap(),
            (embeddings, 6)
        );
        assert!(history_range("embeddings:seed", None).is_err());
        assert!(history_range("seed", None).is_err());
        assert!(history_range("nope:head", None).is_err());
    }
}
