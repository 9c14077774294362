-- Jobs: what was submitted (one model, uploaded embeddings, or a
-- comparison), which replica runs it and until when its lease holds. Every
-- replica sharing the database claims jobs whose lease lapsed (their
-- replica died), and detached jobs still waiting for a slot elsewhere when
-- it has one free, and runs them to their end; writes of a job's reports are
-- fenced by (owner, attempt), so a replica that lost its lease records
-- nothing more.
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    -- The request that rebuilds the job on another replica (the encoding
    -- of jobs::queue::JobRequest); NULL when it cannot be rebuilt
    -- (uploaded embeddings live in the memory of the replica they came to).
    request BYTEA,
    detached BIGINT NOT NULL,
    owner TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    lease_until BIGINT NOT NULL,
    cancel_requested BIGINT NOT NULL DEFAULT 0,
    -- 1 once its holder gave it a slot: a detached job not started may be
    -- taken by an idle replica (work stealing); a started one moves only
    -- when its lease lapses.
    started BIGINT NOT NULL DEFAULT 0,
    done BIGINT NOT NULL DEFAULT 0,
    -- The latest progress (jobs::queue::StoredProgress), for watchers on
    -- other replicas.
    progress BYTEA,
    created_at BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (done, lease_until);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner, done);
-- Which job each evaluation belongs to.
CREATE TABLE IF NOT EXISTS job_members (
    evaluation_id TEXT PRIMARY KEY NOT NULL,
    job_id TEXT NOT NULL,
    position BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_members_job ON job_members (job_id, position);
-- Models and datasets registered through any replica when uploads are
-- shared in an object store (--data-url): the content each name holds now.
-- A replica that does not hold that content fetches it from the store
-- when it is used; listings are answered from `info` (the encoding of the
-- entry's ModelInfo or DatasetInfo), so nothing is fetched to be listed.
CREATE TABLE IF NOT EXISTS registrations (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    content_id TEXT NOT NULL,
    -- The store folder of its files, one per upload (<name>/<folder>/).
    folder TEXT NOT NULL,
    info BYTEA NOT NULL,
    updated_at BIGINT NOT NULL,
    -- 1 once removed: the row stays, so that a replica tells a local copy
    -- of an entry removed elsewhere (dropped) from an upload never shared.
    removed BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, name)
);
