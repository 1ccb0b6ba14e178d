"""Third-party initiated login (LTI 1.3 §5.1.1, 1EdTech Security Framework §5.1.1): the platform
sends the browser to `/lti/login` (GET or POST) naming itself; the tool answers with a redirect
to the platform's OIDC authorization URL carrying a fresh state and nonce.

Where the state lives (docs/lti.md, "State and sessions in the iframe"): nowhere on the server
and in no cookie. The state is sealed (HMAC with a key of its own, derived from the node
secret): it names the platform, the nonce and an expiry, so any node of a cluster opens it, and
a third-party iframe that blocks cookies does not break the launch. What makes a launch
usable once is its nonce: the platform signs it into the id_token, the launch checks it equals
the sealed one, and `lti_nonces` refuses it the second time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import LaunchError

LOGIN_PATH = "/lti/login"
LAUNCH_PATH = "/lti/launch"
# From the login redirect to the launch: the platform's own sign-in may sit in between.
STATE_SECONDS = 600


class LoginRequest(BaseModel):
    """What a platform sends to the login initiation URL (query or form)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    iss: str = Field(min_length=1, max_length=2048)
    login_hint: str = Field(min_length=1, max_length=2048)
    target_link_uri: str = Field(min_length=1, max_length=2048)
    lti_message_hint: str | None = Field(default=None, max_length=4096)
    client_id: str | None = Field(default=None, max_length=255)
    lti_deployment_id: str | None = Field(default=None, max_length=255)


@dataclass(frozen=True, slots=True)
class LoginState:
    platform_id: str
    nonce: str
    expires_at: float


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class LoginStates:
    """Seal and open the `state` parameter."""

    def __init__(self, secret: str) -> None:
        # A key of its own: a state can never pass for a token, a cookie or a live-view session.
        self._key = hmac.new(secret.encode(), b"proctor lti login state v1", hashlib.sha256).digest()

    def new(self, platform_id: str, now: float | None = None) -> tuple[str, LoginState]:
        login = LoginState(platform_id, secrets.token_urlsafe(24), (now or time.time()) + STATE_SECONDS)
        payload = _b64(json.dumps([login.platform_id, login.nonce, login.expires_at]).encode())
        return payload + "." + _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest()), login

    def open(self, value: str, now: float | None = None) -> LoginState:
        payload, _, mac = value.partition(".")
        expected = _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())
        if not payload or not hmac.compare_digest(mac.encode(), expected.encode()):
            raise LaunchError(
                "bad_state", "This launch was not started from this tool's login. Open the activity again.", 401
            )
        try:
            platform_id, nonce, expires_at = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):  # signed by us, so only an old format could get here
            raise LaunchError("bad_state", "This launch's state is not readable. Open the activity again.") from None
        if (now or time.time()) > float(expires_at):
            raise LaunchError("state_expired", "This launch took too long. Open the activity again.", 401)
        return LoginState(str(platform_id), str(nonce), float(expires_at))


def parse_login(fields: dict[str, str]) -> LoginRequest:
    try:
        return LoginRequest.model_validate(fields)
    except ValidationError as exc:
        names = sorted({str(e["loc"][0]) for e in exc.errors(include_url=False) if e["loc"]})
        raise LaunchError(
            "bad_login", f"The learning platform's login request lacks or garbles: {', '.join(names)}."
        ) from None


def authorization_redirect(
    auth_url: str, login: LoginRequest, *, client_id: str, redirect_uri: str, state: str, nonce: str
) -> str:
    """The platform's OIDC authorization URL with the parameters LTI 1.3 §5.1.1.2 lists."""
    params = {
        "scope": "openid",
        "response_type": "id_token",
        "response_mode": "form_post",
        "prompt": "none",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "login_hint": login.login_hint,
        "state": state,
        "nonce": nonce,
    }
    if login.lti_message_hint is not None:
        params["lti_message_hint"] = login.lti_message_hint
    separator = "&" if urllib.parse.urlsplit(auth_url).query else "?"
    return auth_url + separator + urllib.parse.urlencode(params)
