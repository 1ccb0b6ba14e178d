-- Grades (step 12, docs/exams.md): points per answered question and the attempt's total.
-- Auto-graded questions are scored at submit; essays (and keyless questions) by a person.
CREATE TABLE answer_grades (
    attempt_id uuid NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    question_id text NOT NULL,
    points double precision NOT NULL CHECK (points >= 0),
    max_points double precision NOT NULL CHECK (max_points >= 0),
    auto boolean NOT NULL,
    comment text NOT NULL DEFAULT '',
    graded_by text,
    graded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attempt_id, question_id),
    CHECK (points <= max_points)
);

-- The attempt's grade: NULL until submitted; final once every question of it is graded.
ALTER TABLE attempts ADD COLUMN grade double precision;
ALTER TABLE attempts ADD COLUMN grade_max double precision;
ALTER TABLE attempts ADD COLUMN grade_final boolean NOT NULL DEFAULT false;

-- A reviewer's verdict on the whole attempt (the flags' own decisions stay in violations.review).
ALTER TABLE attempts ADD COLUMN verdict text CHECK (verdict IN ('cleared', 'follow_up', 'misconduct'));
ALTER TABLE attempts ADD COLUMN verdict_note text NOT NULL DEFAULT '';
ALTER TABLE attempts ADD COLUMN verdict_by text;
ALTER TABLE attempts ADD COLUMN verdict_at timestamptz;
ALTER TABLE violations ADD COLUMN review_note text NOT NULL DEFAULT '';
ALTER TABLE violations ADD COLUMN reviewed_by text;
ALTER TABLE violations ADD COLUMN reviewed_at timestamptz;
