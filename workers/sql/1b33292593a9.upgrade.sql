-- Revision 1b33292593a9 (schema), the current layout, exactly as the original's
-- current Alembic revision leaves the database (catalogue facts in
-- tests/fixtures/schema/1b33292593a9.facts.txt). Every object is named with its schema: after the graph
-- revision the default search_path starts with ag_catalog.
CREATE TYPE public.personalized_product_section_status AS ENUM ('pending', 'running', 'done', 'failed');

CREATE TABLE public.products (
    id             serial PRIMARY KEY,
    name           varchar,
    category       varchar,
    price          numeric(10, 2),
    brand          varchar(64),
    description    text,
    specifications jsonb,
    created_at     timestamptz DEFAULT now()
);
CREATE INDEX ix_product_id ON public.products (id);

CREATE TABLE public.users (
    id                    serial PRIMARY KEY,
    first_name            varchar(255),
    last_name             varchar(255),
    city                  varchar(255),
    gender                varchar(64),
    age                   integer,
    avatar_url            text,
    hobbies               varchar[],
    search_history        varchar[],
    lifestyle_preferences varchar[],
    location              varchar
);
CREATE INDEX ix_users_id ON public.users (id);

CREATE TABLE public.product_images (
    id         serial PRIMARY KEY,
    product_id integer REFERENCES public.products (id) ON DELETE CASCADE,
    image_url  text NOT NULL,
    created_at timestamptz DEFAULT now()
);
CREATE INDEX ix_product_image_id ON public.product_images (id);

CREATE TABLE public.features (
    id           serial PRIMARY KEY,
    feature_name varchar(255) NOT NULL UNIQUE,
    categories   jsonb NOT NULL
);

CREATE TABLE public.product_reviews (
    id          serial PRIMARY KEY,
    product_id  integer REFERENCES public.products (id) ON DELETE CASCADE,
    user_name   varchar(255),
    review      text,
    rating      numeric(5, 2),
    feature_id  integer,
    sentiment   text,
    created_at  timestamptz DEFAULT now(),
    CONSTRAINT fk_review_feature FOREIGN KEY (feature_id) REFERENCES public.features (id) ON DELETE SET NULL
);
CREATE INDEX ix_review_id ON public.product_reviews (id);

CREATE TABLE public.variants (
    id         serial PRIMARY KEY,
    product_id integer NOT NULL REFERENCES public.products (id) ON DELETE CASCADE,
    price      numeric(10, 2) NOT NULL,
    in_stock   integer NOT NULL
);
CREATE INDEX ix_variants_id ON public.variants (id);

CREATE TABLE public.variant_attributes (
    id              serial PRIMARY KEY,
    product_id      integer NOT NULL,
    variant_id      integer NOT NULL REFERENCES public.variants (id) ON DELETE CASCADE,
    attribute_name  varchar(128) NOT NULL,
    attribute_value varchar(128) NOT NULL
);
CREATE INDEX ix_variant_attributes_id ON public.variant_attributes (id);

CREATE TABLE public.personalized_product_sections (
    product_id       integer NOT NULL REFERENCES public.products (id) ON DELETE CASCADE,
    user_id          integer NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    personalization  jsonb,
    status           public.personalized_product_section_status NOT NULL,
    phoenix_trace_id varchar(128),
    created_at       timestamptz DEFAULT now(),
    PRIMARY KEY (product_id, user_id)
);

CREATE TABLE public.product_features (
    id         serial PRIMARY KEY,
    product_id integer NOT NULL REFERENCES public.products (id) ON DELETE CASCADE,
    feature_id integer NOT NULL REFERENCES public.features (id) ON DELETE CASCADE,
    CONSTRAINT uq_product_feature UNIQUE (product_id, feature_id)
);
