-- How each row's report is encoded: 0, the protobuf EvaluationReport of
-- earlier releases; 1, the CBOR of the service's own record
-- (src/domain). The service rewrites rows of format 0 when it opens the
-- database.
ALTER TABLE evaluations ADD COLUMN format BIGINT NOT NULL DEFAULT 0;
