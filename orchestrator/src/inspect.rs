//! Read-only commands: `current`, `history`, `status`. What they read of
//! the pipeline tables comes through `shared::store`.

use shared::catalogue::REVISIONS;
use shared::db;
use shared::store;
use sqlx::PgPool;

pub async fn current(pool: &PgPool) -> anyhow::Result<()> {
    match db::current_revision(pool).await? {
        Some(id) => {
            let name = shared::catalogue::find(&id).map_or("unknown to this version", |r| r.name);
            println!("{id} ({name})");
        }
        None => println!("(base)"),
    }
    Ok(())
}

/// `heads`: the one head of the chain.
pub fn heads() {
    if let Some(head) = REVISIONS.last() {
        let available = if revisions::registry::is_registered(head.id) {
            ""
        } else {
            "  [not available in this version]"
        };
        println!("{} ({}) (head){available}", head.id, head.name);
    }
}

/// `show <rev>`: what the revision is, whether it is applied, and how its
/// last run went.
pub async fn show(pool: &PgPool, target: shared::catalogue::Target) -> anyhow::Result<()> {
    let shared::catalogue::Target::Revision(i) = target else {
        println!("base: the empty database, before the first revision");
        return Ok(());
    };
    let revision = &REVISIONS[i];
    let applied_count = db::current_revision(pool)
        .await?
        .as_deref()
        .and_then(shared::catalogue::position)
        .map_or(0, |c| c + 1);
    println!("Rev: {} ({})", revision.id, revision.name);
    println!(
        "Parent: {}",
        i.checked_sub(1).map_or("<base>".to_string(), |p| format!(
            "{} ({})",
            REVISIONS[p].id, REVISIONS[p].name
        ))
    );
    println!("Does: {}", revision.summary);
    println!(
        "In this version: {}",
        if revisions::registry::is_registered(revision.id) {
            "yes"
        } else {
            "no"
        }
    );
    let applied = if i < applied_count {
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

pub async fn history(pool: &PgPool) -> anyhow::Result<()> {
    let current = db::current_revision(pool).await?;
    let applied_count = current
        .as_deref()
        .and_then(shared::catalogue::position)
        .map_or(0, |i| i + 1);
    for (i, revision) in REVISIONS.iter().enumerate() {
        let applied = i < applied_count;
        let when = if applied {
            store::last_applied_at(pool, revision.id).await?
        } else {
            None
        };
        let state = match (applied, when) {
            (true, Some(when)) => format!("applied {when}"),
            (true, None) => "applied (before this pipeline, by Alembic)".to_string(),
            (false, _) => "not applied".to_string(),
        };
        let head = if current.as_deref() == Some(revision.id) {
            " (current)"
        } else {
            ""
        };
        let availability = if revisions::registry::is_registered(revision.id) {
            ""
        } else {
            "  [not available in this version]"
        };
        println!(
            "{:>2}. {} {:<11} {:<48}{head}{availability}\n      {}",
            i + 1,
            revision.id,
            revision.name,
            state,
            revision.summary
        );
    }
    Ok(())
}

/// The current run, or the last one: per revision run and phase, task
/// counts by state and rows; then the last errors.
/// The last run (or run `run`): its revision runs, phases, tasks by state
/// and last errors.
pub async fn status(pool: &PgPool, run: Option<i64>) -> anyhow::Result<()> {
    if !store::has_pipeline_tables(pool).await? && run.is_none() {
        println!("no run yet: the pipeline has never run on this database");
        return Ok(());
    }
    let Some(run) = store::find_run(pool, run).await? else {
        if let Some(id) = run {
            return Err(crate::migrate::BadUsage(format!(
                "there is no run #{id} on this database (`orchestrator status` shows the last one)"
            ))
            .into());
        }
        println!("no run yet");
        return Ok(());
    };
    println!(
        "run #{} `{}`: {}, started {}{}",
        run.id,
        run.command,
        run.status,
        run.started,
        run.finished
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    );
    for revision_run in store::revision_runs_of(pool, run.id).await? {
        let revision = revision_run.revision.as_str();
        let name = shared::catalogue::find(revision).map_or(revision, |r| r.name);
        println!(
            "  {} {revision} ({name}): {}",
            revision_run.direction, revision_run.status
        );
        if let Some(registered) = revisions::registry::find(revision) {
            for line in registered.planner.report(pool, revision_run.id).await? {
                println!("    {line}");
            }
        }
        let rows = store::task_summary(pool, revision_run.id).await?;
        for (phase, phase_name) in revision_run.phases.iter().enumerate() {
            let mut line = format!("    phase {} {phase_name}:", phase + 1);
            for (_, role, task_state, n, task_rows) in rows.iter().filter(|r| r.0 == phase as i32) {
                line.push_str(&format!(" {role} {task_state} {n}"));
                if *task_rows > 0 {
                    line.push_str(&format!(" ({task_rows} rows)"));
                }
                line.push(';');
            }
            println!("{}", line.trim_end_matches(';'));
        }
    }
    let errors = store::last_errors(pool, run.id, 5).await?;
    if !errors.is_empty() {
        println!("  last errors:");
        for (id, revision, label, attempts, message) in errors {
            println!("    task {id} ({revision}, {label}, attempt {attempts}): {message}");
        }
    }
    if let Some(error) = run.error {
        println!("  run error: {error}");
    }
    Ok(())
}
