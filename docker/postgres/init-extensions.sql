-- Run by the postgres image's entrypoint when the data volume is created.
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS age;
