-- Exams with a life (step 12, docs/exams.md "Versions and lifecycle"): versions in a family,
-- extra settings in one jsonb column, archive; rooms that close.
--
-- A version is an exams row: attempts keep the exam_id they started with, and the family's
-- rooms move to the newest version for new attempts.
ALTER TABLE exams ADD COLUMN family_id uuid;
UPDATE exams SET family_id = id WHERE family_id IS NULL;
ALTER TABLE exams ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE exams ADD COLUMN parent_id uuid REFERENCES exams (id) ON DELETE SET NULL;
-- shuffle_questions, shuffle_options, pools (and the schedule, migration 0012 reads it too).
ALTER TABLE exams ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';
ALTER TABLE exams ADD COLUMN archived_at timestamptz;
ALTER TABLE exams ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- A node of the previous release inserts exams without a family: the row is its own family
-- (expand-then-contract, docs/upgrades.md), so the column can be NOT NULL at once.
CREATE FUNCTION exams_own_family() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.family_id IS NULL THEN
        NEW.family_id := NEW.id;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER exams_own_family BEFORE INSERT ON exams FOR EACH ROW EXECUTE FUNCTION exams_own_family();
ALTER TABLE exams ALTER COLUMN family_id SET NOT NULL;
CREATE UNIQUE INDEX exams_family_version ON exams (family_id, version);
CREATE INDEX exams_title_search ON exams (lower(title));

ALTER TABLE rooms ADD COLUMN closed_at timestamptz;

-- Grades waiting for the sweeper: closed attempts not yet graded.
CREATE INDEX attempts_ungraded ON attempts (submitted_at) WHERE grade IS NULL AND status IN ('submitted', 'terminated');

-- When the attempt was last graded: an answer saved after it (still in the writer's batch when
-- the attempt closed) makes the sweeper grade it again.
ALTER TABLE attempts ADD COLUMN graded_at timestamptz;
CREATE INDEX attempts_closed_recent ON attempts (submitted_at) WHERE status IN ('submitted', 'terminated');
