"""Names and Role Provisioning Services, the tool's side
(https://www.imsglobal.org/spec/lti-nrps/v2p0): a linked room's expected students from the
context's memberships URL, page by page along the `Link: <...>; rel="next"` header, bounded in
pages and members, stored as the room's roster (rooms/store/lti_roster.py)."""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, Field

from rooms.errors import Conflict
from rooms.lti import student_id_for
from rooms.store.lti_endpoints import LinkEndpoints
from rooms.store.lti_roster import RosterMember, RosterStore

from .platform_client import PlatformClient, PlatformError

logger = logging.getLogger(__name__)

SCOPE_MEMBERSHIPS = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
MEMBERSHIPS_MEDIA_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
MAX_PAGES = 100
MAX_MEMBERS = 20_000


class Member(BaseModel):
    model_config = ConfigDict(extra="allow")

    user_id: str = Field(min_length=1, max_length=255)
    roles: list[str] = Field(default_factory=list, max_length=50)
    status: str = Field(default="Active", max_length=32)
    name: str = Field(default="", max_length=512)
    email: str = Field(default="", max_length=512)

    @property
    def is_learner(self) -> bool:
        # Full URIs, and the short "Learner" some platforms send (the spec allows it for context roles).
        return any(r in (LEARNER, "Learner") or r.endswith("membership#Learner") for r in self.roles)


class MembershipPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    members: list[Member] = Field(max_length=MAX_MEMBERS)


class RosterImport:
    def __init__(self, client: PlatformClient, endpoints: LinkEndpoints, roster: RosterStore) -> None:
        self._client = client
        self._endpoints = endpoints
        self._roster = roster

    async def linked(self, room_id: str) -> bool:
        """Whether the room has a link whose platform offers a roster."""
        linked = await self._endpoints.of_room(room_id)
        return linked is not None and bool(linked.link.memberships_url)

    async def run(self, room_id: str) -> int:
        """Import the room's students; the count stored. Conflict when the room has no link with
        a memberships URL; Unavailable-style errors when the platform fails (nothing changes)."""
        linked = await self._endpoints.of_room(room_id)
        if linked is None or not linked.link.memberships_url:
            raise Conflict("this room is not linked to a course whose platform offers a roster", code="lti_no_roster")
        platform = linked.platform
        scopes = frozenset({SCOPE_MEMBERSHIPS})
        url: str | None = linked.link.memberships_url
        members: dict[str, RosterMember] = {}
        pages = 0
        while url:
            pages += 1
            if pages > MAX_PAGES:
                raise PlatformError(f"the roster has more than {MAX_PAGES} pages", retry=False)
            answer = await self._client.call(platform, scopes, "GET", url, accept=MEMBERSHIPS_MEDIA_TYPE)
            if answer.status != 200:
                raise PlatformError(f"the memberships service answered {answer.status}", status=answer.status)
            for m in answer.json_as(MembershipPage).members:
                if m.is_learner and m.status != "Deleted":
                    members[m.user_id] = RosterMember(
                        m.user_id, student_id_for(platform.id, m.user_id), m.name, m.email, tuple(m.roles), m.status
                    )
            if len(members) > MAX_MEMBERS:
                raise PlatformError(f"the roster has more than {MAX_MEMBERS} students", retry=False)
            url = answer.links.get("next")
        return await self._roster.replace(room_id, platform.id, list(members.values()))
