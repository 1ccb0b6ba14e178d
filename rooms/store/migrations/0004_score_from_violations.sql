-- The suspicion score is the sum of the attempt's violation severities, computed when read.
-- Keeping it in attempts meant an UPDATE of the attempt rows in every write batch, more than
-- half of Postgres's time per batch (docs/benchmarks.md); reads are rare and indexed.
ALTER TABLE attempts DROP COLUMN score;
CREATE INDEX violations_attempt_severity ON violations (attempt_id) INCLUDE (severity);
