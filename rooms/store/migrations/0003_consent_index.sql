-- join() looks up an attempt's consent by (attempt, notice version) before recording it.
CREATE INDEX consents_attempt ON consents (attempt_id, notice_version);
