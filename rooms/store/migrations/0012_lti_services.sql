-- LTI Advantage services (docs/lti.md): the grade outbox (AGS), the imported roster (NRPS),
-- the deep-linking requests waiting for an instructor's choice and the bindings they produce,
-- and the proctoring sessions between LtiStartProctoring and LtiStartAssessment.

-- One row per attempt: the latest score to publish. A newer score overwrites an undelivered
-- one (it supersedes it) and re-queues a delivered one; `version` tells a delivery in flight
-- that it was superseded. `scored_at` is the AGS timestamp, strictly increasing per attempt.
CREATE TABLE lti_grade_outbox (
    id uuid PRIMARY KEY,
    attempt_id uuid NOT NULL UNIQUE REFERENCES attempts (id) ON DELETE CASCADE,
    link_id uuid NOT NULL REFERENCES lti_links (id) ON DELETE CASCADE,
    user_id text NOT NULL,  -- the platform's subject of the student
    score_given double precision,
    score_maximum double precision,
    activity_progress text NOT NULL,
    grading_progress text NOT NULL,
    scored_at timestamptz NOT NULL,
    version integer NOT NULL DEFAULT 1,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    tries integer NOT NULL DEFAULT 0,
    next_try_at timestamptz NOT NULL DEFAULT now(),
    last_error text NOT NULL DEFAULT '',
    delivered_version integer,
    delivered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lti_grade_outbox_due ON lti_grade_outbox (next_try_at) WHERE state = 'pending';
CREATE INDEX lti_grade_outbox_failed ON lti_grade_outbox (updated_at) WHERE state = 'failed';

-- The students a linked room expects, as the platform's memberships service listed them.
CREATE TABLE lti_roster (
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    subject text NOT NULL,
    student_id text NOT NULL,
    name text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    roles text[] NOT NULL DEFAULT '{}',
    status text NOT NULL DEFAULT 'Active',
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, subject)
);

-- A deep-linking request, kept server-side between the platform's launch and the
-- instructor's choice: the id is the one-time credential of the choice page's form.
CREATE TABLE lti_deep_link_requests (
    id text PRIMARY KEY,
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    deployment_id text NOT NULL,
    subject text NOT NULL,
    owner text NOT NULL,  -- who the exams and rooms created or listed belong to
    return_url text NOT NULL,
    data text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX lti_deep_link_requests_expires ON lti_deep_link_requests (expires_at);

-- What a deep-linking response promised: the content item's custom parameter names this id,
-- and the first launch of the new resource link (same platform) binds it to the room.
CREATE TABLE lti_bindings (
    id text PRIMARY KEY,
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    deployment_id text NOT NULL,
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- LTI Proctoring Services: one row per LtiStartProctoring, until the assessment ends.
CREATE TABLE lti_proctoring_sessions (
    id text PRIMARY KEY,
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    deployment_id text NOT NULL,
    subject text NOT NULL,
    resource_link_id text NOT NULL,
    attempt_number text NOT NULL,
    session_data text NOT NULL DEFAULT '',
    start_assessment_url text NOT NULL,
    acs_url text,
    room_id uuid REFERENCES rooms (id) ON DELETE SET NULL,
    state text NOT NULL DEFAULT 'checking' CHECK (state IN ('checking', 'started', 'ended', 'terminated')),
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lti_proctoring_sessions_user ON lti_proctoring_sessions (platform_id, subject);
