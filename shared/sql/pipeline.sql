-- Tables the pipeline owns, kept apart from the application in schema
-- `pipeline`. Idempotent: run by every orchestrator start under an advisory
-- transaction lock, so concurrent starts do not race.
CREATE SCHEMA IF NOT EXISTS pipeline;

-- One row per orchestrator command that runs revisions.
CREATE TABLE IF NOT EXISTS pipeline.runs (
    id           bigserial PRIMARY KEY,
    command      text        NOT NULL,
    requested_by text        NOT NULL,
    status       text        NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    error        text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

-- One row per attempt to move one revision in one direction. A failed one is
-- resumed by the next command that asks for the same move: its done tasks
-- stay done.
CREATE TABLE IF NOT EXISTS pipeline.revision_runs (
    id          bigserial PRIMARY KEY,
    run_id      bigint      NOT NULL REFERENCES pipeline.runs (id),
    revision    text        NOT NULL,
    direction   text        NOT NULL CHECK (direction IN ('upgrade', 'downgrade', 'rerun')),
    status      text        NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'done', 'failed', 'abandoned')),
    phases      jsonb       NOT NULL,
    options     jsonb       NOT NULL DEFAULT '{}',
    error       text,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE IF NOT EXISTS pipeline.tasks (
    id              bigserial PRIMARY KEY,
    revision_run_id bigint      NOT NULL REFERENCES pipeline.revision_runs (id) ON DELETE CASCADE,
    revision        text        NOT NULL,
    phase           integer     NOT NULL,
    role            text        NOT NULL,
    kind            text        NOT NULL,
    label           text        NOT NULL,
    payload         jsonb       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'queued', 'running', 'retrying', 'done', 'failed', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,
    max_attempts    integer     NOT NULL,
    last_error      text,
    worker          text,
    rows_done       bigint      NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX IF NOT EXISTS tasks_by_phase ON pipeline.tasks (revision_run_id, phase, status);
-- The lease of a running task: its worker touches it while the task runs.
ALTER TABLE pipeline.tasks ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;
-- What faults cost a task: copies of it that arrived after it was settled
-- (acked without effect), and times it was taken back from a holder whose
-- lease went stale.
ALTER TABLE pipeline.tasks ADD COLUMN IF NOT EXISTS duplicates integer NOT NULL DEFAULT 0;
ALTER TABLE pipeline.tasks ADD COLUMN IF NOT EXISTS taken_back integer NOT NULL DEFAULT 0;
-- `cancelled`: left unfinished when its revision run failed. Databases made
-- before it existed get the wider check once.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                    WHERE conname = 'tasks_status_check' AND conrelid = 'pipeline.tasks'::regclass
                      AND pg_get_constraintdef(oid) LIKE '%cancelled%') THEN
        ALTER TABLE pipeline.tasks DROP CONSTRAINT IF EXISTS tasks_status_check;
        ALTER TABLE pipeline.tasks ADD CONSTRAINT tasks_status_check
            CHECK (status IN ('pending', 'queued', 'running', 'retrying', 'done', 'failed', 'cancelled'));
    END IF;
END $$;

-- Every revision applied or undone, when, and by which run.
CREATE TABLE IF NOT EXISTS pipeline.revision_history (
    id         bigserial PRIMARY KEY,
    revision   text        NOT NULL,
    direction  text        NOT NULL,
    run_id     bigint      REFERENCES pipeline.runs (id),
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- public.alembic_version: shared/sql/alembic_version.sql, run after this file.

-- Effects of the diagnostic no-op tasks (`orchestrator bench runtime
-- --mark`): one row per completed task, written in the task's completing
-- transaction, so a task whose effect happened twice shows up twice.
CREATE TABLE IF NOT EXISTS pipeline.noop_marks (
    task_id bigint      NOT NULL,
    worker  text,
    at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Schedules (`orchestrator schedule add`) and their fires. A due time is
-- claimed, advanced and recorded in one transaction by whichever scheduler
-- locks the schedule's row first (FOR UPDATE SKIP LOCKED), so each due time
-- fires exactly once however many schedulers run.
CREATE TABLE IF NOT EXISTS pipeline.schedules (
    name         text PRIMARY KEY,
    cron         text        NOT NULL,
    tz           text        NOT NULL DEFAULT 'UTC',
    action       jsonb       NOT NULL,
    catch_up     text        NOT NULL DEFAULT 'one' CHECK (catch_up IN ('one', 'none')),
    paused       boolean     NOT NULL DEFAULT false,
    next_fire_at timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS pipeline.schedule_fires (
    id          bigserial PRIMARY KEY,
    schedule    text        NOT NULL,
    due_at      timestamptz NOT NULL,
    fired_at    timestamptz NOT NULL DEFAULT now(),
    scheduler   text,
    status      text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'missed')),
    note        text,
    finished_at timestamptz,
    UNIQUE (schedule, due_at)
);

-- This database's identity, made once: every task message carries it, and a
-- worker connected to another database dead-letters the message instead of
-- running its task id against the wrong tables.
CREATE TABLE IF NOT EXISTS pipeline.identity (
    one        boolean     PRIMARY KEY DEFAULT true CHECK (one),
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO pipeline.identity DEFAULT VALUES ON CONFLICT DO NOTHING;
