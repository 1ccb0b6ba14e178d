-- Exams, rooms, attempts, answers, violations, evidence, controls, audit log, consents.
CREATE TABLE exams (
    id uuid PRIMARY KEY,
    title text NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds > 0),
    questions jsonb NOT NULL,
    rules jsonb NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exams_created_by ON exams (created_by);

CREATE TABLE rooms (
    id uuid PRIMARY KEY,
    exam_id uuid NOT NULL REFERENCES exams (id) ON DELETE CASCADE,
    name text NOT NULL,
    seats integer NOT NULL CHECK (seats > 0),
    host_node text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rooms_exam ON rooms (exam_id);

CREATE TABLE attempts (
    id uuid PRIMARY KEY,
    exam_id uuid NOT NULL REFERENCES exams (id) ON DELETE CASCADE,
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    student_id text NOT NULL,
    student_name text NOT NULL DEFAULT '',
    status text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'paused', 'submitted', 'terminated')),
    started_at timestamptz NOT NULL DEFAULT now(),
    deadline timestamptz NOT NULL,
    paused_at timestamptz,
    extension_seconds integer NOT NULL DEFAULT 0,
    submitted_at timestamptz,
    end_reason text,
    score double precision NOT NULL DEFAULT 0,
    accommodations jsonb NOT NULL DEFAULT '[]',
    UNIQUE (room_id, student_id)
);
-- The deadline sweeper looks for running attempts past their deadline.
CREATE INDEX attempts_open_deadline ON attempts (deadline) WHERE status = 'active';
CREATE INDEX attempts_student ON attempts (student_id);

-- Autosave: last write wins per question, ordered by the client's sequence number.
CREATE TABLE answers (
    attempt_id uuid NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    question_id text NOT NULL,
    value jsonb NOT NULL,
    seq bigint NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (attempt_id, question_id)
);

CREATE TABLE evidence (
    id uuid PRIMARY KEY,
    attempt_id uuid NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    content_type text NOT NULL DEFAULT 'image/jpeg',
    data bytea NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX evidence_attempt ON evidence (attempt_id);
CREATE INDEX evidence_expires ON evidence (expires_at);

CREATE TABLE violations (
    id bigserial PRIMARY KEY,
    attempt_id uuid NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    seq bigint NOT NULL,
    source text NOT NULL CHECK (source IN ('client', 'server')),
    kind text NOT NULL,
    severity double precision NOT NULL DEFAULT 0,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    details jsonb NOT NULL DEFAULT '{}',
    evidence_id uuid REFERENCES evidence (id) ON DELETE SET NULL,
    review text CHECK (review IN ('confirmed', 'dismissed')),
    -- A re-sent event is acknowledged again but stored once.
    UNIQUE (attempt_id, source, seq)
);
CREATE INDEX violations_attempt_time ON violations (attempt_id, occurred_at);

CREATE TABLE controls (
    id bigserial PRIMARY KEY,
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    attempt_id uuid REFERENCES attempts (id) ON DELETE CASCADE,
    actor text NOT NULL,
    action text NOT NULL,
    params jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX controls_attempt ON controls (attempt_id, created_at);
CREATE INDEX controls_room ON controls (room_id, created_at);

-- Neutral timeline entries: joins, network gaps, submits. Never violations.
CREATE TABLE attempt_log (
    id bigserial PRIMARY KEY,
    attempt_id uuid NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    kind text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX attempt_log_attempt ON attempt_log (attempt_id, at);

CREATE TABLE consents (
    id bigserial PRIMARY KEY,
    attempt_id uuid REFERENCES attempts (id) ON DELETE CASCADE,
    exam_id uuid NOT NULL REFERENCES exams (id) ON DELETE CASCADE,
    room_id uuid NOT NULL,
    student_id text NOT NULL,
    notice_version text NOT NULL,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_student ON consents (student_id);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_role text NOT NULL,
    actor_id text NOT NULL,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_target ON audit_log (target_type, target_id, at);
