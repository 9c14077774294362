-- Comparisons: which evaluations one Compare request made, in its order
-- (the reports themselves are rows of evaluations).
CREATE TABLE IF NOT EXISTS comparisons (
    id TEXT PRIMARY KEY NOT NULL,
    dataset TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    evaluation_ids TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comparisons_created ON comparisons (created_at);
