-- How each registration's description is encoded: 0, the protobuf
-- ModelInfo or DatasetInfo of earlier releases; 1, the CBOR of the
-- service's own record (src/domain). Rows of format 0 are converted when
-- read.
ALTER TABLE registrations ADD COLUMN format BIGINT NOT NULL DEFAULT 0;
