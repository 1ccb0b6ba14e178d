-- Revoked tokens (by jti) until they would have expired anyway.
CREATE TABLE revoked_tokens (
    token_id text PRIMARY KEY,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_by text NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
CREATE INDEX attempts_room_status ON attempts (room_id, status);
