-- Roles per room (rooms/roles.py): who, besides the exam's creator and the rooms a minted
-- teacher token names, may act on a room, and as what. Expand-only.
CREATE TABLE room_members (
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    subject text NOT NULL,  -- the account id (Claims.sub)
    role text NOT NULL CHECK (role IN ('owner', 'proctor', 'reviewer')),
    added_by text NOT NULL,
    added_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, subject)
);
-- "My rooms": the rooms one subject holds a role in.
CREATE INDEX room_members_subject ON room_members (subject);

-- The account directory colleagues are added from. Part A's accounts migration owns this
-- table (docs/accounts.md); it is created here only if absent, with the columns the
-- directory reads, so adding colleagues by email works before part A lands.
CREATE TABLE IF NOT EXISTS accounts (
    id uuid PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL DEFAULT '',
    role text NOT NULL DEFAULT 'teacher',
    state text NOT NULL DEFAULT 'active'
);
