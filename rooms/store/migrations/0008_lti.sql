-- LTI 1.3 (docs/lti.md): registered platforms, the tool's own signing keys, one-time nonces,
-- resource links bound to rooms, and the platform users the tool has seen.
CREATE TABLE lti_platforms (
    id uuid PRIMARY KEY,
    name text NOT NULL DEFAULT '',
    issuer text NOT NULL,
    client_id text NOT NULL,
    deployment_ids text[] NOT NULL DEFAULT '{}',
    auth_login_url text NOT NULL,
    access_token_url text NOT NULL,
    jwks_url text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, client_id)
);

-- The tool's RSA keys: the newest unretired one signs; retired ones stay published in the
-- JWKS until `retired_at` + the overlap, so platforms holding a cached JWKS still verify.
CREATE TABLE lti_keys (
    kid text PRIMARY KEY,
    private_pem text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz
);

-- A launch's nonce is used once (replays refused) and kept until the id_token could have expired.
CREATE TABLE lti_nonces (
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    nonce text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (platform_id, nonce)
);
CREATE INDEX lti_nonces_expires ON lti_nonces (expires_at);

-- A course activity (resource link) of a platform, bound to a room; the service endpoints the
-- latest launch announced (AGS line item and scope, NRPS memberships URL).
CREATE TABLE lti_links (
    id uuid PRIMARY KEY,
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    deployment_id text NOT NULL,
    resource_link_id text NOT NULL,
    context_id text NOT NULL DEFAULT '',
    context_title text NOT NULL DEFAULT '',
    title text NOT NULL DEFAULT '',
    room_id uuid REFERENCES rooms (id) ON DELETE SET NULL,
    lineitems_url text,
    lineitem_url text,
    ags_scopes text[] NOT NULL DEFAULT '{}',
    memberships_url text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform_id, deployment_id, resource_link_id)
);
CREATE INDEX lti_links_room ON lti_links (room_id);

-- A platform user: the student id of their attempts is derived from (platform, subject), so a
-- re-launch resumes the same attempt; an instructor is linked to an account (step 10).
CREATE TABLE lti_users (
    platform_id uuid NOT NULL REFERENCES lti_platforms (id) ON DELETE CASCADE,
    subject text NOT NULL,
    student_id text NOT NULL,
    name text NOT NULL DEFAULT '',
    email text NOT NULL DEFAULT '',
    roles text[] NOT NULL DEFAULT '{}',
    account_id uuid,
    last_launch_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (platform_id, subject),
    UNIQUE (student_id)
);
