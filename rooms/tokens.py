"""Signed access tokens (JWT, HS256) and the scope checks every edge uses.

A token names its role, and for students their exam, room and student id; for teachers
the rooms it makes them proctor of. What a teacher may do in a room is decided by their
role there (rooms/roles.py, rooms/store/members.py); students reach only their own attempt,
admins everything.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from .errors import Forbidden, Unauthorized

Role = Literal["admin", "teacher", "student"]
ROLES: tuple[Role, ...] = ("admin", "teacher", "student")
_ALGORITHM = "HS256"
_ISSUER = "proctor"


@dataclass(frozen=True, slots=True)
class Claims:
    role: Role
    sub: str
    name: str = ""
    exam_id: str | None = None
    room_id: str | None = None
    rooms: tuple[str, ...] = ()
    expires_at: float | None = None
    token_id: str = ""
    # The reader's language when the issuer knows it (an LTI launch's locale claim, the account's
    # setting): the pages and error texts use it before Accept-Language (server/http/messages.py).
    locale: str | None = None

    def require_role(self, *roles: Role) -> None:
        if self.role not in roles:
            raise Forbidden(f"this needs the {' or '.join(roles)} role, not {self.role}")


ADMIN_STATIC = Claims(role="admin", sub="admin", name="admin")


class TokenService:
    """Mints and verifies tokens with one secret; a static admin token may be configured."""

    def __init__(
        self, secret: str, *, admin_token: str = "", is_revoked: Callable[[Claims], bool] | None = None
    ) -> None:
        if len(secret.encode()) < 32:
            raise ValueError("the signing secret must be at least 32 bytes (RFC 7518 §3.2)")
        self._secret = secret
        self._admin_token = admin_token
        # The revocation list (rooms.store.privacy.Revocations, loaded at start-up); None: none.
        self.is_revoked = is_revoked

    def __repr__(self) -> str:
        return "TokenService(<secret>)"

    def mint(
        self,
        role: Role,
        sub: str,
        *,
        name: str = "",
        exam_id: str | None = None,
        room_id: str | None = None,
        rooms: tuple[str, ...] | list[str] = (),
        ttl_seconds: float | None = 12 * 3600,
        now: float | None = None,
        locale: str | None = None,
    ) -> str:
        issued = int(now if now is not None else time.time())
        payload: dict[str, Any] = {
            "iss": _ISSUER,
            "role": role,
            "sub": sub,
            "iat": issued,
            "jti": uuid.uuid4().hex,
        }
        if name:
            payload["name"] = name
        if exam_id:
            payload["exam"] = exam_id
        if room_id:
            payload["room"] = room_id
        if rooms:
            payload["rooms"] = list(rooms)
        if ttl_seconds is not None:
            payload["exp"] = issued + int(ttl_seconds)
        if locale and _LOCALE.fullmatch(locale):
            payload["locale"] = locale
        return jwt.encode(payload, self._secret, algorithm=_ALGORITHM)

    def inspect(self, token: str) -> Claims:
        """Claims of one of our tokens even if expired or revoked (for revocation itself)."""
        try:
            data = jwt.decode(
                token, self._secret, algorithms=[_ALGORITHM], issuer=_ISSUER, options={"verify_exp": False}
            )
        except jwt.InvalidTokenError as exc:
            from .errors import Invalid

            raise Invalid(f"not one of this server's tokens: {exc}", fields={"token": "invalid"}) from None
        return Claims(
            role=data.get("role", "student"),
            sub=str(data.get("sub", "")),
            token_id=str(data.get("jti", "")),
            expires_at=float(data["exp"]) if "exp" in data else None,
        )

    def verify(self, token: str | None) -> Claims:
        if not token:
            raise Unauthorized("a bearer token is required", code="unauthorized")
        if self._admin_token and hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return ADMIN_STATIC
        try:
            data = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                options={"require": ["role", "sub", "iat", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired", code="token_expired") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from None
        role = data.get("role")
        if role not in ROLES:
            raise Unauthorized("the token names no known role", code="invalid_token")
        rooms = data.get("rooms", [])
        if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
            raise Unauthorized("the token's rooms are malformed", code="invalid_token")
        claims = Claims(
            role=role,
            sub=str(data["sub"]),
            name=str(data.get("name", "")),
            exam_id=_opt_str(data.get("exam")),
            room_id=_opt_str(data.get("room")),
            rooms=tuple(rooms),
            expires_at=float(data["exp"]) if "exp" in data else None,
            token_id=str(data.get("jti", "")),
            locale=_locale(data.get("locale")),
        )
        if claims.role == "student" and not (claims.exam_id and claims.room_id):
            raise Unauthorized("a student token must name its exam and room", code="invalid_token")
        if self.is_revoked is not None and self.is_revoked(claims):
            raise Unauthorized("the token has been revoked", code="token_revoked")
        return claims


# A BCP 47 language tag as far as a page or a catalog needs it ("he", "en-GB", "pt-BR").
_LOCALE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}")


def _locale(value: Any) -> str | None:
    return value if isinstance(value, str) and _LOCALE.fullmatch(value) else None


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)
