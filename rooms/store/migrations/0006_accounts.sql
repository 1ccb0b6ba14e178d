-- People (docs/accounts.md): admins and teachers, their single-sign-on identities, browser
-- sessions, personal API tokens and the one-time first-admin setup code. Expand-only: new
-- tables, nothing existing changes.
CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    display_name text NOT NULL DEFAULT '' CHECK (length(display_name) <= 200),
    role text NOT NULL CHECK (role IN ('admin', 'teacher')),
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'disabled')),
    password_hash text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- citext is an extension a managed Postgres may not offer: case-insensitive by index instead.
CREATE UNIQUE INDEX accounts_email_lower ON accounts (lower(email));

CREATE TABLE account_identities (
    issuer text NOT NULL,
    subject text NOT NULL,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX account_identities_account ON account_identities (account_id);

-- The cookie holds 32 random bytes; only their SHA-256 is stored.
CREATE TABLE account_sessions (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    user_agent text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT ''
);
CREATE INDEX account_sessions_account ON account_sessions (account_id);

CREATE TABLE personal_tokens (
    id uuid PRIMARY KEY,
    token_hash bytea NOT NULL UNIQUE,
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX personal_tokens_account ON personal_tokens (account_id);

-- First-admin setup: one code, stored hashed, single use, with an expiry.
CREATE TABLE setup_codes (
    code_hash bytea PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
