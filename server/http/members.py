"""REST for roles per room: a room's colleagues (owners only) and "my rooms" for the home page.

Built by the composition root with the account directory it adds colleagues from
(`AccountService.find_by_email`), so a test or another way of signing in can hand it another.
The handlers in `server/http/api.py` delegate here, which keeps every route in `api.ROUTES`
(the OpenAPI document and the access matrix read it).
"""

from __future__ import annotations

from aiohttp import web

from rooms.errors import Invalid, NotFound
from rooms.protocols import Presence
from rooms.roles import AccountDirectory
from rooms.store.catalog import Catalog
from rooms.store.members import RoomAccess
from rooms.tokens import Claims

from .errors import parse_body
from .schemas import MemberAdd, MemberRemove

# Said the same for an address nobody has and one whose account is disabled or pending, so
# an owner learns nothing about accounts beyond "you cannot add this one".
NO_ACCOUNT = "no account with that email"


class MembersApi:
    def __init__(self, catalog: Catalog, access: RoomAccess, directory: AccountDirectory, presence: Presence) -> None:
        self._catalog = catalog
        self._access = access
        self._directory = directory
        self._presence = presence

    async def list(self, request: web.Request, claims: Claims) -> web.Response:
        room, exam = await self._catalog.room_for(claims, request.match_info["room_id"], "room.members")
        members = await self._access.members(room.id, exam.created_by)
        return web.json_response({"room_id": room.id, "members": members})

    async def add(self, request: web.Request, claims: Claims) -> web.Response:
        # The role is checked before the body is read: only owners may ask whether an email exists.
        room, _ = await self._catalog.room_for(claims, request.match_info["room_id"], "room.members")
        body = await parse_body(request, MemberAdd)
        found = await self._directory.find_by_email(body.email)
        if found is None:
            raise NotFound(NO_ACCOUNT, code="not_found")
        subject, name = found
        await self._access.set_role(claims, room.id, subject, body.role, email=body.email)
        return web.json_response({"room_id": room.id, "subject": subject, "name": name, "role": body.role})

    async def remove(self, request: web.Request, claims: Claims) -> web.Response:
        room, exam = await self._catalog.room_for(claims, request.match_info["room_id"], "room.members")
        body = await parse_body(request, MemberRemove)
        if (body.email is None) == (body.subject is None):
            raise Invalid("name the colleague by email or by subject (one of them)", fields={"email": "or subject"})
        subject = body.subject
        if body.email is not None:
            found = await self._directory.find_by_email(body.email)
            if found is None:
                raise NotFound(NO_ACCOUNT, code="not_found")
            subject = found[0]
        assert subject is not None
        removed = await self._access.remove(claims, room.id, subject, exam.created_by)
        return web.json_response({"room_id": room.id, "subject": subject, "removed": removed})

    async def mine(self, request: web.Request, claims: Claims) -> web.Response:
        claims.require_role("admin", "teacher")
        rooms = await self._access.rooms_of(claims)
        for room in rooms:
            # Online is presence (in-process or Redis), read per room like the roster does.
            states = await self._presence.room(room["id"])
            open_attempts = room.pop("open_attempts")
            room["online"] = sum(1 for a in open_attempts if states.get(a) == "online")
        return web.json_response({"rooms": rooms, "role": claims.role})
