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
