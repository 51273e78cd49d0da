//! Read-only commands: `current`, `history`, `status`.

use shared::catalogue::REVISIONS;
use shared::db;
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

pub async fn history(pool: &PgPool) -> anyhow::Result<()> {
    let current = db::current_revision(pool).await?;
    let applied_count = current
        .as_deref()
        .and_then(shared::catalogue::position)
        .map_or(0, |i| i + 1);
    let has_history: bool =
        sqlx::query_scalar("SELECT to_regclass('pipeline.revision_history') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    for (i, revision) in REVISIONS.iter().enumerate() {
        let applied = i < applied_count;
        let when: Option<String> = if applied && has_history {
            sqlx::query_scalar(
                "SELECT to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS TZ') FROM pipeline.revision_history
                  WHERE revision = $1 AND direction = 'upgrade' ORDER BY id DESC LIMIT 1",
            )
            .bind(revision.id)
            .fetch_optional(pool)
            .await?
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
        let availability = if revision.available {
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

/// id, command, status, started, finished, error.
type RunRow = (i64, String, String, String, Option<String>, Option<String>);

/// The current run, or the last one: per revision run and phase, task
/// counts by state and rows; then the last errors.
pub async fn status(pool: &PgPool) -> anyhow::Result<()> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('pipeline.runs') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists {
        println!("no run yet: the pipeline has never run on this database");
        return Ok(());
    }
    let run: Option<RunRow> = sqlx::query_as(
        "SELECT id, command, status, to_char(started_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
                to_char(finished_at, 'YYYY-MM-DD HH24:MI:SS TZ'), error
           FROM pipeline.runs ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    let Some((run_id, command, state, started, finished, error)) = run else {
        println!("no run yet");
        return Ok(());
    };
    println!(
        "run #{run_id} `{command}`: {state}, started {started}{}",
        finished
            .map(|f| format!(", finished {f}"))
            .unwrap_or_default()
    );
    let revision_runs: Vec<(i64, String, String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT id, revision, direction, status, phases FROM pipeline.revision_runs WHERE run_id = $1 ORDER BY id",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    for (rr_id, revision, direction, rr_state, phases) in revision_runs {
        let name = shared::catalogue::find(&revision).map_or(revision.as_str(), |r| r.name);
        println!("  {direction} {revision} ({name}): {rr_state}");
        let rows: Vec<(i32, String, String, i64, i64)> = sqlx::query_as(
            "SELECT phase, role, status, count(*), coalesce(sum(rows_done), 0)::bigint
               FROM pipeline.tasks WHERE revision_run_id = $1
              GROUP BY phase, role, status ORDER BY phase, role, status",
        )
        .bind(rr_id)
        .fetch_all(pool)
        .await?;
        let phase_names: Vec<String> = serde_json::from_value(phases).unwrap_or_default();
        for (phase, phase_name) in phase_names.iter().enumerate() {
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
    let errors: Vec<(i64, String, String, i32, String)> = sqlx::query_as(
        "SELECT t.id, t.revision, t.label, t.attempts, t.last_error FROM pipeline.tasks t
           JOIN pipeline.revision_runs rr ON rr.id = t.revision_run_id
          WHERE rr.run_id = $1 AND t.last_error IS NOT NULL ORDER BY t.id DESC LIMIT 5",
    )
    .bind(run_id)
    .fetch_all(pool)
    .await?;
    if !errors.is_empty() {
        println!("  last errors:");
        for (id, revision, label, attempts, message) in errors {
            println!("    task {id} ({revision}, {label}, attempt {attempts}): {message}");
        }
    }
    if let Some(error) = error {
        println!("  run error: {error}");
    }
    Ok(())
}
