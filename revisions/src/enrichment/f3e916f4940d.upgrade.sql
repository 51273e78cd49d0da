-- Revision f3e916f4940d (enrichment): every aspect of every review, and the
-- pipeline's own book-keeping of what it decided. product_reviews.feature_id
-- and .sentiment (the main aspect, as the shop reads it) are written by the
-- enrich tasks; the values they replace are kept in pipeline.enrichment_backup
-- so that a downgrade puts them back.
CREATE TABLE IF NOT EXISTS public.review_feature_sentiments (
    review_id   integer NOT NULL,
    feature_id  integer NOT NULL,
    sentiment   text NOT NULL CHECK (sentiment IN ('positive', 'negative', 'neutral')),
    confidence  real,
    evidence    text,
    source      text NOT NULL,
    text_hash   text NOT NULL,
    enriched_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, feature_id)
);
CREATE INDEX IF NOT EXISTS ix_review_feature_sentiments_feature
    ON public.review_feature_sentiments (feature_id, sentiment);

-- One row per review the revision decided: what it read (hashes of the text
-- and of its product's feature list) and what it wrote, so that a re-run
-- redoes only what changed and knows whether the values are still its own.
CREATE TABLE IF NOT EXISTS pipeline.enrichment_reviews (
    review_id        integer PRIMARY KEY,
    text_hash        text NOT NULL,
    features_hash    text NOT NULL,
    source           text NOT NULL,
    wrote_feature_id integer,
    wrote_sentiment  text,
    enriched_at      timestamptz NOT NULL DEFAULT now()
);

-- The values of product_reviews before the revision first wrote over them.
CREATE TABLE IF NOT EXISTS pipeline.enrichment_backup (
    review_id  integer PRIMARY KEY,
    feature_id integer,
    sentiment  text,
    saved_at   timestamptz NOT NULL DEFAULT now()
);

-- Reviews that could not be decided (the provider's answers were unusable
-- after every try); a re-run tries them again.
CREATE TABLE IF NOT EXISTS pipeline.enrichment_failures (
    review_id       integer PRIMARY KEY,
    reason          text NOT NULL,
    attempts        integer NOT NULL DEFAULT 1,
    revision_run_id bigint,
    failed_at       timestamptz NOT NULL DEFAULT now()
);

-- What each enrich task cost and did (status sums it per run).
CREATE TABLE IF NOT EXISTS pipeline.enrichment_usage (
    task_id           bigint PRIMARY KEY,
    revision_run_id   bigint NOT NULL,
    reviews_read      integer NOT NULL,
    reviews_sent      integer NOT NULL,
    reviews_failed    integer NOT NULL,
    reviews_changed   integer NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    requests          bigint NOT NULL,
    dropped_features  bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_enrichment_usage_run ON pipeline.enrichment_usage (revision_run_id);

-- Batch API mode: the batch a task submitted, so that a redelivery or a
-- restarted worker checks back on it instead of submitting again.
CREATE TABLE IF NOT EXISTS pipeline.enrichment_batches (
    task_id       bigint PRIMARY KEY,
    batch_id      text NOT NULL,
    input_file_id text,
    reviews       jsonb NOT NULL,
    submitted_at  timestamptz NOT NULL DEFAULT now()
);
