-- The erasure log: which students were erased and when, as a hash of their id (no name, no
-- data). A restore re-applies it after loading an older backup, so an erased student does
-- not come back (docs/operations.md, "Erasure and backups"). Expand-only: a new table that
-- the previous release never reads. IF NOT EXISTS because a restore creates it in the same
-- transaction that loads a backup made before this migration.
CREATE TABLE IF NOT EXISTS erasures (
    student_hash text PRIMARY KEY CHECK (student_hash ~ '^[0-9a-f]{64}$'),
    erased_at timestamptz NOT NULL DEFAULT now()
);
