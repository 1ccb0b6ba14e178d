"""The checks every launch's id_token passes (1EdTech Security Framework §5.1.3, LTI 1.3 §5):
signature (RS256 only) against the platform's JWKS, issuer, audience and azp, expiry and
issued-at with a small leeway, the nonce minted at login, the registered deployment, a known
message type and version 1.3.0, and the claims the tool reads (a pydantic model). The nonce's
single use is the store's (LtiStore.use_nonce) and is checked after all of these.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rooms.lti import CLAIM, VERSION, Platform

from .errors import LaunchError
from .platform_keys import PlatformKeys

ALGORITHMS = ["RS256"]  # LTI 1.3 §5.1.3 names RS256; "none" and HS* never
MAX_TOKEN_BYTES = 64 << 10
MAX_AGE_SECONDS = 3600.0  # an id_token issued longer ago than this is refused whatever its exp


class LaunchClaims(BaseModel):
    """The claims every message carries (the rest stay in `Launch.claims` for the handlers).
    The aliases are `rooms.lti.CLAIM` + name, spelled out because mypy wants literals."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    iss: str = Field(min_length=1, max_length=2048)
    aud: str | list[str]
    azp: str | None = None
    exp: float
    iat: float
    nonce: str = Field(min_length=1, max_length=512)
    sub: str = Field(min_length=1, max_length=255)  # anonymous launches (no sub) are not supported
    name: str = Field(default="", max_length=500)
    email: str = Field(default="", max_length=254)
    locale: str = Field(default="", max_length=35)
    message_type: str = Field(alias="https://purl.imsglobal.org/spec/lti/claim/message_type", max_length=100)
    version: str = Field(alias="https://purl.imsglobal.org/spec/lti/claim/version", max_length=20)
    deployment_id: str = Field(
        alias="https://purl.imsglobal.org/spec/lti/claim/deployment_id", min_length=1, max_length=255
    )
    roles: list[str] = Field(alias="https://purl.imsglobal.org/spec/lti/claim/roles", max_length=100)
    target_link_uri: str = Field(
        default="", alias="https://purl.imsglobal.org/spec/lti/claim/target_link_uri", max_length=2048
    )


def unverified_header(token: str) -> dict[str, Any]:
    head, dot, _ = token.partition(".")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, UnicodeDecodeError):
        header = None
    if not dot or not isinstance(header, dict):
        raise LaunchError("malformed_token", "The launch's id_token is not a JWT.")
    return header


async def verify(
    token: str,
    platform: Platform,
    keys: PlatformKeys,
    *,
    nonce: str,
    known_messages: frozenset[str],
    leeway: float,
    now: float | None = None,
) -> tuple[LaunchClaims, dict[str, Any]]:
    """The typed claims and the whole verified payload, or LaunchError with the reason."""
    if len(token) > MAX_TOKEN_BYTES:
        raise LaunchError("malformed_token", "The launch's id_token is too large.")
    header = unverified_header(token)
    if header.get("alg") not in ALGORITHMS:
        raise LaunchError("bad_algorithm", "The launch's id_token is not signed with RS256.", 401)
    kid = header.get("kid")
    kid = str(kid) if isinstance(kid, str) and kid else None
    payload = await _signed_payload(token, platform, keys, kid)
    try:
        claims = LaunchClaims.model_validate(payload)
    except ValidationError as exc:
        names = sorted({str(e["loc"][0]).removeprefix(CLAIM) for e in exc.errors(include_url=False) if e["loc"]})
        raise LaunchError(
            "missing_claims", f"The launch lacks required claims or has malformed ones: {', '.join(names)}."
        ) from None
    _check(claims, platform, nonce=nonce, known_messages=known_messages, leeway=leeway, now=now or time.time())
    return claims, payload


async def _signed_payload(token: str, platform: Platform, keys: PlatformKeys, kid: str | None) -> dict[str, Any]:
    key_set = await keys.key_set(platform.jwks_url, kid)
    try:
        try:
            decoded = jwt.decode(token, key_set, algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            # A kid the cached set lacks (PlatformKeys refetches it), or none to choose by.
            key_set = await keys.key_set(platform.jwks_url, kid)
            decoded = jwt.decode(token, key_set, algorithms=ALGORITHMS)
    except InvalidKeyIdError:
        raise LaunchError(
            "unknown_kid", "The launch is signed with a key the learning platform does not publish.", 401
        ) from None
    except BadSignatureError:
        raise LaunchError(
            "bad_signature", "The launch's signature does not match the learning platform's keys.", 401
        ) from None
    except (JoseError, ValueError, TypeError) as exc:
        raise LaunchError(
            "malformed_token", f"The launch's id_token is not a valid JWT ({type(exc).__name__})."
        ) from None
    return dict(decoded.claims)


def _check(
    claims: LaunchClaims,
    platform: Platform,
    *,
    nonce: str,
    known_messages: frozenset[str],
    leeway: float,
    now: float,
) -> None:
    if claims.iss != platform.issuer:
        raise LaunchError("wrong_issuer", "The launch comes from another learning platform than it says.", 401)
    audiences = [claims.aud] if isinstance(claims.aud, str) else claims.aud
    if platform.client_id not in audiences:
        raise LaunchError("wrong_audience", "The launch is meant for another tool (its audience).", 401)
    # OIDC Core §3.1.3.7: with several audiences azp must be ours; when present, always.
    if (claims.azp is not None or len(audiences) > 1) and claims.azp != platform.client_id:
        raise LaunchError("wrong_audience", "The launch is meant for another tool (its azp).", 401)
    if claims.exp < now - leeway:
        raise LaunchError("token_expired", "The launch has expired. Open the activity again from the course.", 401)
    if claims.iat > now + leeway:
        raise LaunchError("token_not_yet_valid", "The launch was issued in the future; check the clocks.", 401)
    if claims.iat < now - MAX_AGE_SECONDS - leeway:
        raise LaunchError("token_expired", "The launch was issued too long ago. Open the activity again.", 401)
    if claims.nonce != nonce:
        raise LaunchError("wrong_nonce", "The launch does not belong to this login. Open the activity again.", 401)
    if claims.deployment_id not in platform.deployment_ids:
        raise LaunchError(
            "unknown_deployment",
            "This deployment of the tool is not registered here. An administrator must add its deployment id.",
            403,
        )
    if claims.version != VERSION:
        raise LaunchError("unsupported_version", f"LTI version {claims.version[:20]!r} is not supported (1.3.0 is).")
    if claims.message_type not in known_messages:
        raise LaunchError("unknown_message", f"The message type {claims.message_type[:100]!r} is not supported here.")
