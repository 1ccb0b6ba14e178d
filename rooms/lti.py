"""LTI 1.3 as the domain sees it: a registered platform, a resource link bound to a room, and
how a platform user becomes a student id (docs/lti.md).

The id_token checks, the keys and the HTTP flows are the edge's (server/lti/); the tables
are rooms/store/migrations/0008_lti.sql.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

# The claim namespaces and message types of the 1EdTech specifications.
CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
PROCTORING_CLAIM = "https://purl.imsglobal.org/spec/lti-ap/claim/"
RESOURCE_LINK_REQUEST = "LtiResourceLinkRequest"
DEEP_LINKING_REQUEST = "LtiDeepLinkingRequest"
DEEP_LINKING_RESPONSE = "LtiDeepLinkingResponse"
START_PROCTORING = "LtiStartProctoring"
START_ASSESSMENT = "LtiStartAssessment"
END_ASSESSMENT = "LtiEndAssessment"
VERSION = "1.3.0"


@dataclass(frozen=True, slots=True)
class Platform:
    """A learning platform an admin registered (its values come from the platform's tool page)."""

    id: str
    name: str
    issuer: str
    client_id: str
    deployment_ids: tuple[str, ...]
    auth_login_url: str
    access_token_url: str
    jwks_url: str
    created_by: str
    created_at: datetime
    # An instructor's first launch may take over the teacher account with the platform's email
    # (migration 0009): only for a platform whose emails are verified.
    link_by_email: bool = False


@dataclass(frozen=True, slots=True)
class ResourceLink:
    """A course activity of a platform, bound to a room, with the services its launch announced."""

    id: str
    platform_id: str
    deployment_id: str
    resource_link_id: str
    context_id: str
    context_title: str
    title: str
    room_id: str | None
    lineitems_url: str | None
    lineitem_url: str | None
    ags_scopes: tuple[str, ...]
    memberships_url: str | None


def student_id_for(platform_id: str, subject: str) -> str:
    """The stable student id of a platform user: the same on every launch, distinct across
    platforms, and within the student-id alphabet (`[A-Za-z0-9_.@+-]`) whatever the subject is."""
    digest = hashlib.sha256(f"{platform_id}\x00{subject}".encode()).hexdigest()[:24]
    return f"lti-{digest}"


@dataclass(frozen=True, slots=True)
class Launch:
    """An id_token that passed every check (server/lti/launch.py): signature against the
    platform's JWKS, iss, aud/azp, exp/iat, one-time nonce, state, deployment, message type
    and version. Message handlers (resource link, deep linking, proctoring) receive this."""

    platform: Platform
    deployment_id: str
    message_type: str
    subject: str
    name: str
    email: str
    roles: tuple[str, ...]
    locale: str
    claims: dict[str, object]  # the whole verified payload, for the handler's own claims

    @property
    def is_instructor(self) -> bool:
        # Context (membership#…) and institution (person#…) roles end the same way.
        return any(
            r.endswith(("#Instructor", "#Administrator", "#ContentDeveloper", "#TeachingAssistant")) for r in self.roles
        )

    def claim(self, name: str) -> object:
        """An LTI core claim by its short name (``resource_link``, ``context``, ``custom``...)."""
        return self.claims.get(CLAIM + name)
