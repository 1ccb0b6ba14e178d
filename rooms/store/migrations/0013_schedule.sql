-- Schedules and accommodations (step 12, docs/exams.md "Schedule and accommodations").
-- An exam's window is `exams.settings->'schedule'` (0011, with the exam's other settings); a
-- room's own window replaces it (a room is one sitting). NULL: the exam's applies. The JSON is
-- `rooms.exam.Schedule` (ISO times with their offset).
ALTER TABLE rooms ADD COLUMN schedule jsonb;

-- Per-student accommodations of a room, set before or during the exam. Copied onto the
-- attempt at its first join and applied to a running attempt when edited.
CREATE TABLE room_accommodations (
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    student_id text NOT NULL,
    extra_percent double precision NOT NULL DEFAULT 0 CHECK (extra_percent >= 0 AND extra_percent <= 400),
    extra_minutes integer NOT NULL DEFAULT 0 CHECK (extra_minutes >= 0 AND extra_minutes <= 1440),
    rules_off jsonb NOT NULL DEFAULT '[]',
    note text NOT NULL DEFAULT '',
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, student_id)
);
CREATE INDEX room_accommodations_student ON room_accommodations (student_id);

-- The attempt's share of them. `extra_seconds`: accommodation time already in the deadline.
-- `time_deadline`: the deadline the clock alone gives (start + duration + extra time +
-- extensions + pauses); `deadline` is that, cut at `hard_close_at` (the window's end when the
-- window closes hard). Written only with a hard close; NULL: equal to deadline.
ALTER TABLE attempts ADD COLUMN extra_seconds integer NOT NULL DEFAULT 0 CHECK (extra_seconds >= 0);
ALTER TABLE attempts ADD COLUMN time_deadline timestamptz;
ALTER TABLE attempts ADD COLUMN hard_close_at timestamptz;

-- The sweeper also submits running (even paused) attempts whose window closed hard.
CREATE INDEX attempts_open_hard_close ON attempts (hard_close_at)
    WHERE status IN ('active', 'paused') AND hard_close_at IS NOT NULL;
