-- Evaluation reports: the indexed fields, and the whole report as the
-- protobuf encoding of embedeval.v1.EvaluationReport.
CREATE TABLE IF NOT EXISTS evaluations (
    id TEXT PRIMARY KEY NOT NULL,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    status BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    report BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_model ON evaluations (model, created_at);
CREATE INDEX IF NOT EXISTS evaluations_dataset ON evaluations (dataset, created_at);
CREATE INDEX IF NOT EXISTS evaluations_created ON evaluations (created_at);
