-- LTI launch (docs/lti.md, "Where a launch lands"): whether an instructor's first launch may be
-- linked to the existing teacher account with the platform's email. Off unless an admin says
-- the platform vouches for its users' emails: otherwise anyone who can set their email on the
-- platform and hold an instructor role in some course would be signed in as that teacher.
ALTER TABLE lti_platforms ADD COLUMN link_by_email boolean NOT NULL DEFAULT false;
