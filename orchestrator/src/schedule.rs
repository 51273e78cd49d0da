//! Schedules: `orchestrator schedule add|list|pause|resume|remove|run` and
//! the `orchestrator scheduler` process that fires them.
//!
//! Any number of schedulers, on any machines, share the schedules through
//! the database alone:
//! - **Each due time fires exactly once.** A scheduler locks a due
//!   schedule's row (`FOR UPDATE SKIP LOCKED`: the others pass it by),
//!   records the fire (unique per schedule and due time), advances
//!   `next_fire_at` past now, and commits, all in one transaction; a
//!   scheduler killed before the commit leaves the due time to the next
//!   one, and after it, the fire recorded.
//! - **A fire is run under a lock of its own** (a session advisory lock on
//!   the fire's id, taken before that commit). A fire still `running` whose
//!   lock is free lost its scheduler: another scheduler takes it and runs it
//!   again, and the run resumes where it stopped (done tasks stay done).
//! - **Overlap:** a fire due while the schedule's previous fire still runs
//!   is recorded `skipped`, with the reason; it does not pile up. So is a
//!   fire that finds another run holding the database's run lock.
//! - **Missed fires:** due times that passed while no scheduler ran give one
//!   catch-up fire (`--catch-up one`, the default) or a `missed` record and
//!   no run (`--catch-up none`); the note says how many were missed.
//! - **SIGTERM:** the fires in hand are finished, then the scheduler stops.
//!
//! Fires older than `SCHEDULE_HISTORY_DAYS` are pruned.

use crate::migrate::{self, BadUsage, Request};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use futures_util::{FutureExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use shared::plan::Direction;
use shared::Config;
use sqlx::{PgConnection, PgPool, Row};
use std::str::FromStr as _;
use std::time::Duration;

/// What a schedule runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `upgrade <target>`.
    Upgrade(String),
    /// `rerun` of each revision in turn, then (`cascade`) every applied
    /// revision after the last of them.
    Rerun {
        revisions: Vec<String>,
        cascade: bool,
    },
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Upgrade(target) => write!(f, "upgrade {target}"),
            Action::Rerun { revisions, cascade } => write!(
                f,
                "rerun {}{}",
                revisions.join(","),
                if *cascade { " --cascade" } else { "" }
            ),
        }
    }
}

/// A schedule as `schedule add` takes it.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub name: String,
    pub cron: String,
    pub tz: String,
    pub action: Action,
    /// `one` or `none`.
    pub catch_up: String,
}

/// Parses a cron expression of 5 or 6 fields (seconds first when 6).
pub fn parse_cron(expression: &str) -> anyhow::Result<croner::Cron> {
    let fields = expression.split_whitespace().count();
    if !(5..=6).contains(&fields) && !expression.trim_start().starts_with('@') {
        return Err(BadUsage(format!(
            "cron expression {expression:?} has {fields} field(s): expected 5 (minute hour day month weekday) or 6 (with seconds first)"
        ))
        .into());
    }
    croner::Cron::from_str(expression)
        .map_err(|e| BadUsage(format!("cron expression {expression:?} is not valid: {e}")).into())
}

pub fn parse_tz(zone: &str) -> anyhow::Result<chrono_tz::Tz> {
    zone.parse::<chrono_tz::Tz>().map_err(|_| {
        BadUsage(format!(
            "time zone {zone:?} is unknown: expected an IANA name such as UTC or Europe/Paris"
        ))
        .into()
    })
}

/// The first due time of `cron` in `tz` strictly after `after`.
pub fn next_after(
    cron: &croner::Cron,
    tz: chrono_tz::Tz,
    after: DateTime<Utc>,
) -> anyhow::Result<DateTime<Utc>> {
    let local = after.with_timezone(&tz);
    let next = cron
        .find_next_occurrence(&local, false)
        .map_err(|e| anyhow::anyhow!("no next due time: {e}"))?;
    Ok(next.with_timezone(&Utc))
}

pub async fn add(pool: &PgPool, new: &NewSchedule) -> anyhow::Result<DateTime<Utc>> {
    let cron = parse_cron(&new.cron)?;
    let tz = parse_tz(&new.tz)?;
    if !["one", "none"].contains(&new.catch_up.as_str()) {
        return Err(BadUsage(format!(
            "--catch-up {:?}: expected one or none",
            new.catch_up
        ))
        .into());
    }
    match &new.action {
        Action::Upgrade(target) => {
            if !target.contains(['+', '-']) {
                migrate::resolve_target(target, None)?;
            }
        }
        Action::Rerun { revisions, .. } => {
            if revisions.is_empty() {
                return Err(BadUsage("--rerun names no revision".into()).into());
            }
            for revision in revisions {
                migrate::resolve_target(revision, None)?;
            }
        }
    }
    let next = next_after(&cron, tz, Utc::now())?;
    shared::db::ensure_pipeline_schema(pool).await?;
    let inserted = sqlx::query(
        "INSERT INTO pipeline.schedules (name, cron, tz, action, catch_up, next_fire_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&new.name)
    .bind(&new.cron)
    .bind(&new.tz)
    .bind(serde_json::to_value(&new.action)?)
    .bind(&new.catch_up)
    .bind(next)
    .execute(pool)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Err(BadUsage(format!(
            "a schedule named {:?} exists already; `schedule remove {}` first",
            new.name, new.name
        ))
        .into());
    }
    Ok(next)
}

/// One schedule as `schedule list` shows it (`--json`: an array of these).
#[derive(Debug, Serialize)]
pub struct Listed {
    pub name: String,
    pub cron: String,
    pub tz: String,
    pub action: Action,
    /// `one` or `none`.
    pub catch_up: String,
    pub paused: bool,
    /// UTC, `YYYY-MM-DD HH:MM:SS`; `null` while paused.
    pub next_fire: Option<String>,
    /// The latest fire; `null` if it never fired.
    pub last_fire: Option<ListedFire>,
}

#[derive(Debug, Serialize)]
pub struct ListedFire {
    /// The due time it was for (UTC).
    pub due: String,
    /// `running`, `succeeded`, `failed`, `skipped` or `missed`.
    pub status: String,
    pub note: Option<String>,
}

pub async fn list(pool: &PgPool, json: bool) -> anyhow::Result<()> {
    shared::db::ensure_pipeline_schema(pool).await?;
    let rows = sqlx::query(
        "SELECT s.name, s.cron, s.tz, s.action, s.catch_up, s.paused,
                to_char(s.next_fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS next,
                to_char(f.due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS last_due,
                f.status AS last_status, f.note AS last_note
           FROM pipeline.schedules s
           LEFT JOIN LATERAL (SELECT due_at, status, note FROM pipeline.schedule_fires
                               WHERE schedule = s.name ORDER BY due_at DESC LIMIT 1) f ON true
          ORDER BY s.name",
    )
    .fetch_all(pool)
    .await?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in rows {
        let paused: bool = row.get("paused");
        let last_due: Option<String> = row.get("last_due");
        listed.push(Listed {
            name: row.get("name"),
            cron: row.get("cron"),
            tz: row.get("tz"),
            action: serde_json::from_value(row.get("action"))?,
            catch_up: row.get("catch_up"),
            paused,
            next_fire: (!paused).then(|| row.get("next")),
            last_fire: last_due.map(|due| ListedFire {
                due,
                status: row
                    .get::<Option<String>, _>("last_status")
                    .unwrap_or_default(),
                note: row.get("last_note"),
            }),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&listed)?);
        return Ok(());
    }
    if listed.is_empty() {
        println!("no schedules");
    }
    for s in listed {
        println!(
            "{}: {:?} ({}) {}, catch-up {}{}\n  next fire {} UTC; last fire {}",
            s.name,
            s.cron,
            s.tz,
            s.action,
            s.catch_up,
            if s.paused { ", PAUSED" } else { "" },
            s.next_fire.as_deref().unwrap_or("(paused)"),
            match s.last_fire {
                Some(fire) => format!(
                    "{} UTC: {}{}",
                    fire.due,
                    fire.status,
                    fire.note.map(|n| format!(" ({n})")).unwrap_or_default()
                ),
                None => "never".into(),
            }
        );
    }
    Ok(())
}

/// `pause` / `resume`: a resumed schedule's next due time is after now (the
/// ones passed while paused are not caught up).
pub async fn set_paused(pool: &PgPool, name: &str, paused: bool) -> anyhow::Result<()> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT cron, tz FROM pipeline.schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    let Some((cron, tz)) = row else {
        return Err(BadUsage(format!("no schedule named {name:?}")).into());
    };
    let next = next_after(&parse_cron(&cron)?, parse_tz(&tz)?, Utc::now())?;
    sqlx::query(
        "UPDATE pipeline.schedules SET paused = $2,
                next_fire_at = CASE WHEN $2 THEN next_fire_at ELSE $3 END WHERE name = $1",
    )
    .bind(name)
    .bind(paused)
    .bind(next)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn remove(pool: &PgPool, name: &str) -> anyhow::Result<()> {
    let removed = sqlx::query("DELETE FROM pipeline.schedules WHERE name = $1")
        .bind(name)
        .execute(pool)
        .await?
        .rows_affected();
    if removed == 0 {
        return Err(BadUsage(format!("no schedule named {name:?}")).into());
    }
    Ok(())
}

/// Lock class of a fire's session advisory lock (`(class, fire id)`), apart
/// from the tasks' one-key locks and the run lock.
const FIRE_LOCK_CLASS: i32 = 0x5343_4844; // "SCHD"

/// A fire this scheduler holds and is to run.
struct Claimed {
    fire_id: i64,
    schedule: String,
    action: Action,
}

/// `schedule run NAME`: a fire now, run in this process.
pub async fn run_now(config: &Config, pool: &PgPool, name: &str, by: &str) -> anyhow::Result<()> {
    let action: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT action FROM pipeline.schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    let Some(action) = action else {
        return Err(BadUsage(format!("no schedule named {name:?}")).into());
    };
    let mut conn = pool.acquire().await?;
    let fire_id: i64 = sqlx::query_scalar(
        "INSERT INTO pipeline.schedule_fires (schedule, due_at, scheduler, status, note)
         VALUES ($1, clock_timestamp(), $2, 'running', 'fired by hand (schedule run)') RETURNING id",
    )
    .bind(name)
    .bind(by)
    .fetch_one(&mut *conn)
    .await?;
    lock_fire(&mut conn, fire_id).await?;
    let claimed = Claimed {
        fire_id,
        schedule: name.to_string(),
        action: serde_json::from_value(action)?,
    };
    let outcome = execute(config, pool, &claimed).await;
    unlock_fire(&mut conn, fire_id).await;
    outcome
}

/// `orchestrator scheduler`: fires due schedules until SIGTERM.
pub async fn scheduler(config: &Config, name: &str, tick: Duration) -> anyhow::Result<()> {
    let pool = shared::db::connect(config, 4, Duration::from_secs(120)).await?;
    shared::db::ensure_pipeline_schema(&pool).await?;
    let history_days: i64 = std::env::var("SCHEDULE_HISTORY_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    shared::say!("scheduler {name}: firing due schedules (history kept {history_days} days)");
    let mut stop = Box::pin(shutdown_signal());
    let mut last_prune = std::time::Instant::now() - Duration::from_secs(3600);
    let mut in_hand = futures_util::stream::FuturesUnordered::new();
    let mut stopping = false;
    loop {
        if last_prune.elapsed() >= Duration::from_secs(60) {
            let _ = sqlx::query(
                "DELETE FROM pipeline.schedule_fires
                  WHERE status <> 'running' AND fired_at < now() - $1 * interval '1 day'",
            )
            .bind(history_days)
            .execute(&pool)
            .await;
            last_prune = std::time::Instant::now();
        }
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("scheduler {name}: database unreachable ({e}); retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    _ = &mut stop => break,
                }
            }
        };
        let claimed = match claim_orphaned(&mut conn, name).await {
            Ok(Some(c)) => Ok(Some(c)),
            Ok(None) => claim_due(&mut conn, name).await,
            Err(e) => Err(e),
        };
        match claimed {
            Ok(Some(claimed)) => {
                // Runs beside the loop, which goes on claiming (and records
                // the fires that come while this one runs as skipped). The
                // fire's lock lives on `conn`, which the run keeps.
                let pool = &pool;
                in_hand.push(
                    async move {
                        if let Err(e) = execute(config, pool, &claimed).await {
                            tracing::warn!("schedule {}: {e:#}", claimed.schedule);
                        }
                        unlock_fire(&mut conn, claimed.fire_id).await;
                    }
                    .boxed_local(),
                );
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("scheduler {name}: {e:#}"),
        }
        drop(conn);
        // The fires in hand make progress here (and only while the loop
        // waits: a claim is a few milliseconds).
        let pause = tokio::time::sleep(tick);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                Some(()) = in_hand.next(), if !in_hand.is_empty() => {}
                _ = &mut stop => { stopping = true; break }
            }
        }
        if stopping {
            break;
        }
    }
    if !in_hand.is_empty() {
        shared::say!(
            "scheduler {name}: stopping once the {} fire(s) in hand finish",
            in_hand.len()
        );
    }
    while in_hand.next().await.is_some() {}
    shared::say!("scheduler {name}: stopped");
    pool.close().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn lock_fire(conn: &mut PgConnection, fire_id: i64) -> anyhow::Result<bool> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(FIRE_LOCK_CLASS)
        .bind(fire_id as i32)
        .fetch_one(conn)
        .await?)
}

async fn unlock_fire(conn: &mut PgConnection, fire_id: i64) {
    let _ = sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(FIRE_LOCK_CLASS)
        .bind(fire_id as i32)
        .execute(conn)
        .await;
}

/// A fire still `running` whose scheduler is gone (its lock is free).
async fn claim_orphaned(conn: &mut PgConnection, by: &str) -> anyhow::Result<Option<Claimed>> {
    let orphans: Vec<(i64, String, serde_json::Value)> = sqlx::query_as(
        "SELECT f.id, f.schedule, s.action FROM pipeline.schedule_fires f
           JOIN pipeline.schedules s ON s.name = f.schedule
          WHERE f.status = 'running'
            AND NOT EXISTS (SELECT 1 FROM pg_locks l
                             WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.granted
                               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                               AND l.classid = $1::oid AND l.objid = f.id::int::oid)
          ORDER BY f.id LIMIT 5",
    )
    .bind(FIRE_LOCK_CLASS as i64)
    .fetch_all(&mut *conn)
    .await?;
    for (fire_id, schedule, action) in orphans {
        if !lock_fire(conn, fire_id).await? {
            continue;
        }
        // Still running and unheld now that we hold its lock: ours.
        let still: Option<i64> = sqlx::query_scalar(
            "UPDATE pipeline.schedule_fires
                SET scheduler = $2, note = concat_ws('; ', note, 'resumed by ' || $2 || ' after its scheduler stopped')
              WHERE id = $1 AND status = 'running' RETURNING id",
        )
        .bind(fire_id)
        .bind(by)
        .fetch_optional(&mut *conn)
        .await?;
        if still.is_some() {
            return Ok(Some(Claimed {
                fire_id,
                schedule,
                action: serde_json::from_value(action)?,
            }));
        }
        unlock_fire(conn, fire_id).await;
    }
    Ok(None)
}

/// Claims the earliest due schedule, records its fire and advances it, in
/// one transaction.
async fn claim_due(conn: &mut PgConnection, by: &str) -> anyhow::Result<Option<Claimed>> {
    use sqlx::Connection as _;
    let mut tx = conn.begin().await?;
    let due: Option<(
        String,
        String,
        String,
        serde_json::Value,
        String,
        DateTime<Utc>,
    )> = sqlx::query_as(
        "SELECT name, cron, tz, action, catch_up, next_fire_at FROM pipeline.schedules
              WHERE NOT paused AND next_fire_at <= clock_timestamp()
              ORDER BY next_fire_at LIMIT 1 FOR UPDATE SKIP LOCKED",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some((name, cron, tz, action_json, catch_up, due_at)) = due else {
        return Ok(None);
    };
    let cron = parse_cron(&cron)?;
    let tz = parse_tz(&tz)?;
    let now = Utc::now();
    // Due times between the claimed one and now passed unfired.
    let mut last_due = due_at;
    let mut missed = 0u64;
    loop {
        let next = next_after(&cron, tz, last_due)?;
        if next > now || missed >= 100_000 {
            break;
        }
        last_due = next;
        missed += 1;
    }
    let next_fire = next_after(&cron, tz, now.max(last_due))?;
    let running: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM pipeline.schedule_fires WHERE schedule = $1 AND status = 'running' LIMIT 1",
    )
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await?;
    let missed_note =
        (missed > 0).then(|| format!("{missed} earlier due time(s) passed while no scheduler ran"));
    let (status, note) = if let Some(previous) = running {
        (
            "skipped",
            Some(format!("the previous fire (#{previous}) was still running")),
        )
    } else if missed > 0 && catch_up == "none" {
        (
            "missed",
            Some(format!(
                "{}; none fired (--catch-up none)",
                missed_note.clone().unwrap_or_default()
            )),
        )
    } else {
        (
            "running",
            missed_note.map(|n| format!("{n}; this fire catches up once (--catch-up one)")),
        )
    };
    let fire_id: i64 = sqlx::query_scalar(
        "INSERT INTO pipeline.schedule_fires (schedule, due_at, scheduler, status, note, finished_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $4 = 'running' THEN NULL ELSE clock_timestamp() END)
         RETURNING id",
    )
    .bind(&name)
    .bind(last_due)
    .bind(by)
    .bind(status)
    .bind(&note)
    .fetch_one(&mut *tx)
    .await
    .with_context(|| format!("recording the fire of schedule {name} due {last_due}"))?;
    sqlx::query("UPDATE pipeline.schedules SET next_fire_at = $2 WHERE name = $1")
        .bind(&name)
        .bind(next_fire)
        .execute(&mut *tx)
        .await?;
    if status == "running" {
        // Taken before the commit, so that no other scheduler ever sees
        // this fire running and unheld.
        sqlx::query("SELECT pg_advisory_lock($1, $2)")
            .bind(FIRE_LOCK_CLASS)
            .bind(fire_id as i32)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    if status != "running" {
        tracing::info!(
            "schedule {name}: due {last_due} {status}: {}",
            note.unwrap_or_default()
        );
        return Ok(None);
    }
    Ok(Some(Claimed {
        fire_id,
        schedule: name,
        action: serde_json::from_value(action_json)?,
    }))
}

/// Runs a fire's action and records its outcome.
async fn execute(config: &Config, pool: &PgPool, claimed: &Claimed) -> anyhow::Result<()> {
    let label = format!("schedule {}", claimed.schedule);
    shared::say!("{label}: firing ({})", claimed.action);
    let outcome = run_action(config, &claimed.action, &label).await;
    let (status, note) = match &outcome {
        Ok(()) => ("succeeded", None),
        Err(e) if e.chain().any(|c| c.is::<crate::lock::LockHeld>()) => (
            "skipped",
            Some(format!("another run held the database's run lock: {e:#}")),
        ),
        Err(e) => ("failed", Some(format!("{e:#}"))),
    };
    sqlx::query(
        "UPDATE pipeline.schedule_fires
            SET status = $2, note = nullif(concat_ws('; ', note, $3::text), ''), finished_at = clock_timestamp()
          WHERE id = $1",
    )
    .bind(claimed.fire_id)
    .bind(status)
    .bind(&note)
    .execute(pool)
    .await?;
    shared::say!(
        "{label}: {status}{}",
        note.map(|n| format!(": {n}")).unwrap_or_default()
    );
    outcome
}

/// `upgrade <target>`, or the re-runs (and their cascade) in order.
pub async fn run_action(config: &Config, action: &Action, label: &str) -> anyhow::Result<()> {
    let request = |direction, target: &str| Request {
        direction,
        target: target.to_string(),
        no_wait: true,
        with_workers: None,
        worker_concurrency: None,
        data_dir: None,
        label: Some(label.to_string()),
        rerun: Default::default(),
    };
    match action {
        Action::Upgrade(target) => migrate::run(config, &request(Direction::Upgrade, target))
            .await
            .map(|_| ()),
        Action::Rerun { revisions, cascade } => {
            for (i, revision) in revisions.iter().enumerate() {
                let last = i + 1 == revisions.len();
                migrate::rerun(
                    config,
                    &request(Direction::Rerun, revision),
                    *cascade && last,
                )
                .await?;
            }
            Ok(())
        }
    }
}
