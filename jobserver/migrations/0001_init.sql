-- AeroFS job server schema, version 1 (plain SQL shared by SQLite and PostgreSQL).
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL,
    params TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    summary TEXT,
    outputs TEXT,
    errors TEXT,
    error TEXT,
    idempotency_key TEXT,
    correlation_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_owner_created ON jobs (owner, created_at);
CREATE INDEX jobs_state ON jobs (state);
CREATE UNIQUE INDEX jobs_idempotency ON jobs (owner, idempotency_key);

CREATE TABLE tasks (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    heartbeat DOUBLE PRECISION,
    spec TEXT NOT NULL,
    result TEXT,
    progress TEXT,
    error TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX tasks_state ON tasks (state);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX events_job ON events (job_id);

CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX logs_job ON logs (job_id);

CREATE TABLE outputs (
    job_id TEXT NOT NULL,
    path TEXT NOT NULL,
    size BIGINT,
    PRIMARY KEY (job_id, path)
);
