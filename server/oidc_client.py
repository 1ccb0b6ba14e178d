"""The relying party's protocol half of OpenID Connect: discovery, keys, the code exchange and
the id_token's validation. The routes (server/http/oidc.py) hold cookies, audit and sessions.

Built on authlib's protocol core (`OAuth2Client` without a session: the authorization URL with
state, nonce and the PKCE S256 challenge; the token request body; client authentication) and
on joserfc (authlib's JOSE successor: JWS signatures against the provider's JWKS, JWT claims),
with the node's own aiohttp for HTTP rather than authlib's httpx integration
(docs/accounts.md, "Single sign-on", says why).

Every way a provider or a forged callback can fail ends in `SignInError` with a stable
`reason`, which the routes show, audit and answer with its `status`; none is a 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from authlib.oauth2.client import OAuth2Client
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet

logger = logging.getLogger(__name__)

SCOPES = "openid email profile"
# Asymmetric algorithms only: "none" never, and HS256 would make the client secret a signing key.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"}
)
MAX_DOCUMENT_BYTES = 1 << 20  # discovery, JWKS, token and userinfo answers are a few KiB


class SignInError(Exception):
    """A sign-in that stops here; `reason` is the stable code shown, audited and tested."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


def _unavailable(message: str) -> SignInError:
    return SignInError("provider_unavailable", message, 502)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document (OIDC Discovery §3) this client uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_method: str  # client_secret_basic or client_secret_post
    algorithms: tuple[str, ...]
    iss_parameter: bool  # RFC 9207: the callback must carry `iss`

    @classmethod
    def parse(cls, issuer: str, document: Mapping[str, Any]) -> ProviderMetadata:
        if document.get("issuer") != issuer:
            # OIDC Discovery §4.3: otherwise another issuer's keys would vouch for this one.
            raise _unavailable(
                f"the discovery document names issuer {str(document.get('issuer'))[:200]!r}, "
                f"not {issuer!r} (check PROCTOR_OIDC_ISSUER)"
            )
        urls = {name: document.get(name) for name in ("authorization_endpoint", "token_endpoint", "jwks_uri")}
        for name, url in urls.items():
            if not isinstance(url, str) or not _same_security(issuer, url):
                raise _unavailable(f"the discovery document's {name} is missing or not https")
        userinfo = document.get("userinfo_endpoint")
        methods = _strings(document, "token_endpoint_auth_methods_supported", ["client_secret_basic"])  # RFC 8414
        method = next((m for m in ("client_secret_basic", "client_secret_post") if m in methods), None)
        if method is None:
            raise _unavailable("the provider accepts neither client_secret_basic nor client_secret_post")
        if "S256" not in _strings(document, "code_challenge_methods_supported", ["S256"]):
            raise _unavailable("the provider does not support PKCE with S256")
        # RS256 is the default (OIDC Discovery §3).
        algorithms = tuple(
            a for a in _strings(document, "id_token_signing_alg_values_supported", ["RS256"]) if a in SIGNING_ALGORITHMS
        )
        if not algorithms:
            raise _unavailable("the provider signs id_tokens with no asymmetric algorithm this node accepts")
        return cls(
            issuer=issuer,
            authorization_endpoint=str(urls["authorization_endpoint"]),
            token_endpoint=str(urls["token_endpoint"]),
            jwks_uri=str(urls["jwks_uri"]),
            userinfo_endpoint=userinfo if isinstance(userinfo, str) and _same_security(issuer, userinfo) else None,
            token_auth_method=method,
            algorithms=algorithms,
            iss_parameter=document.get("authorization_response_iss_parameter_supported") is True,
        )


def _strings(document: Mapping[str, Any], name: str, default: list[str]) -> list[str]:
    """A list-of-strings member; absent or malformed (a provider's bug), the spec's default."""
    value = document.get(name)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else default


def _same_security(issuer: str, url: str) -> bool:
    """An endpoint must be https, or http only when the issuer itself is (a loopback test provider)."""
    scheme = urllib.parse.urlsplit(url).scheme
    return scheme == "https" or (scheme == "http" and issuer.startswith("http://"))


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the provider says signed in, from a validated id_token (and userinfo)."""

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str
    claims: Mapping[str, Any]


def basic_credentials(client: Any, method: str, uri: str, headers: dict[str, str], body: str) -> tuple[Any, ...]:
    """client_secret_basic as RFC 6749 §2.3.1 says: id and secret form-urlencoded, then base64.

    authlib's own encoder skips the form-encoding, which breaks a secret holding `%`, `+` or `:`
    at providers that decode it (oidc-provider does).
    """
    pair = f"{urllib.parse.quote_plus(client.client_id)}:{urllib.parse.quote_plus(client.client_secret)}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    return uri, headers, body


class OidcClient:
    """One provider, one confidential client; caches discovery and JWKS for `cache_seconds`."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        cache_seconds: float = 3600.0,
        jwks_refetch_seconds: float = 10.0,
        leeway_seconds: int = 60,
        max_token_age_seconds: int = 600,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self._secret = client_secret
        self._cache_seconds = cache_seconds
        # A token under an unknown kid fetches the JWKS again (the provider rotated its keys),
        # but not more often than this: forged kids must not turn into a request each.
        self._jwks_refetch_seconds = jwks_refetch_seconds
        self._leeway = leeway_seconds
        self._max_token_age = max_token_age_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._http: aiohttp.ClientSession | None = None
        self._metadata: tuple[ProviderMetadata, float] | None = None
        self._keys: tuple[KeySet, float] | None = None
        self._last_refetch = -float("inf")
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        # trust_env: a school network's HTTPS_PROXY applies to the provider as to any client.
        self._http = aiohttp.ClientSession(timeout=self._timeout, trust_env=True)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _oauth(self, metadata: ProviderMetadata) -> Any:
        client = OAuth2Client(
            None,
            client_id=self.client_id,
            client_secret=self._secret,
            scope=SCOPES,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=metadata.token_auth_method,
        )
        client.register_client_auth_method(("client_secret_basic", basic_credentials))
        return client

    # -- discovery and keys -----------------------------------------------------------------

    async def metadata(self) -> ProviderMetadata:
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata[1] < self._cache_seconds:
            return self._metadata[0]
        async with self._lock:  # concurrent sign-ins fetch it once
            if self._metadata is not None and time.monotonic() - self._metadata[1] < self._cache_seconds:
                return self._metadata[0]
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                metadata = ProviderMetadata.parse(self.issuer, await self._get_json(url))
            except SignInError:
                if self._metadata is None:
                    raise
                # The provider is down but its document was valid an hour ago: keep signing in.
                logger.warning("OIDC discovery failed; using the cached document", exc_info=True)
                metadata = self._metadata[0]
            self._metadata = (metadata, time.monotonic())
            return metadata

    async def _key_set(self, metadata: ProviderMetadata, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            cached, now = self._keys, time.monotonic()
            if refresh and now - self._last_refetch >= self._jwks_refetch_seconds:
                self._last_refetch = now
            elif cached is not None and now - cached[1] < self._cache_seconds:
                return cached[0]
            document = await self._get_json(metadata.jwks_uri)
            try:
                keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise _unavailable(f"the provider's JWKS is not a key set ({type(exc).__name__})") from None
            self._keys = (keys, time.monotonic())
            return keys

    # -- the flow -----------------------------------------------------------------------------

    async def authorization_url(self, state: str, nonce: str, verifier: str) -> str:
        metadata = await self.metadata()
        url, _ = self._oauth(metadata).create_authorization_url(
            metadata.authorization_endpoint,
            state=state,
            code_verifier=verifier,
            nonce=nonce,
        )
        return str(url)

    async def exchange(self, code: str, verifier: str) -> Mapping[str, Any]:
        """The token endpoint's answer for `code`, authenticated as this client, with the verifier."""
        metadata = await self.metadata()
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        auth = self._oauth(metadata).client_auth(metadata.token_auth_method)
        url, headers, body = auth.prepare("POST", metadata.token_endpoint, headers, body)
        status, answer = await self._request("POST", url, headers=headers, data=body)
        if status == 200 and isinstance(answer, dict) and isinstance(answer.get("id_token"), str):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        if error == "invalid_grant":
            raise SignInError(
                "code_refused",
                "The identity provider refused the sign-in code: it was used "
                "already or has expired. Start the sign-in again.",
            )
        if error in ("invalid_client", "unauthorized_client"):
            raise SignInError(
                "client_refused",
                "The identity provider refused this server's client credentials "
                "(PROCTOR_OIDC_CLIENT_ID / PROCTOR_OIDC_CLIENT_SECRET).",
                502,
            )
        raise _unavailable(
            f"the token endpoint answered {status}" + (f" ({str(error)[:80]})" if error else " without an id_token")
        )

    async def identity(self, tokens: Mapping[str, Any], nonce: str) -> Identity:
        """Validate the id_token (signature, iss, aud/azp, exp, iat, nonce) and say who it names."""
        metadata = await self.metadata()
        claims = await self._verified_claims(metadata, str(tokens["id_token"]), nonce)
        access_token = tokens.get("access_token")
        if metadata.userinfo_endpoint and isinstance(access_token, str) and not _has_profile(claims):
            # A provider may keep the scopes' claims for userinfo (OIDC Core §5.4, oidc-provider does).
            claims = {**await self._userinfo(metadata.userinfo_endpoint, access_token, claims["sub"]), **claims}
        email = claims.get("email")
        email = email.strip().lower() if isinstance(email, str) else ""
        return Identity(
            issuer=metadata.issuer,
            subject=str(claims["sub"]),
            email=email,
            email_verified=_email_verified(claims),
            name=_display_name(claims, email),
            claims=claims,
        )

    async def _verified_claims(self, metadata: ProviderMetadata, id_token: str, nonce: str) -> dict[str, Any]:
        keys = await self._key_set(metadata)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=list(metadata.algorithms))
            except InvalidKeyIdError:
                # A kid we have not seen: the provider may have rotated its keys since we cached them.
                keys = await self._key_set(metadata, refresh=True)
                token = jwt.decode(id_token, keys, algorithms=list(metadata.algorithms))
            claims = dict(token.claims)
            jwt.JWTClaimsRegistry(
                leeway=self._leeway,
                iss={"essential": True, "value": metadata.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(claims)
        except (BadSignatureError, InvalidKeyIdError):
            raise SignInError(
                "bad_signature", "The sign-in token's signature does not match the identity provider's keys."
            ) from None
        except ExpiredTokenError:
            raise SignInError("token_expired", "The sign-in token has expired. Start the sign-in again.") from None
        except ClaimError as exc:
            raise _claim_error(exc.claim) from None
        except (JoseError, ValueError, TypeError) as exc:
            raise SignInError(
                "malformed_token", f"The sign-in token is not a valid JWT ({type(exc).__name__})."
            ) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        # OIDC Core §3.1.3.7 (4, 5): with several audiences azp must name us; if present it must anyway.
        if ("azp" in claims or len(audiences) > 1) and claims.get("azp") != self.client_id:
            raise _claim_error("azp")
        if claims["iat"] < time.time() - self._max_token_age - self._leeway:
            # Just issued by the token endpoint; an old one is a replay from somewhere else.
            raise SignInError("token_expired", "The sign-in token was issued too long ago. Start the sign-in again.")
        return claims

    async def _userinfo(self, url: str, access_token: str, subject: str) -> dict[str, Any]:
        status, answer = await self._request(
            "GET", url, headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        )
        if status != 200 or not isinstance(answer, dict):
            raise _unavailable(f"the userinfo endpoint answered {status}")
        if answer.get("sub") != subject:  # OIDC Core §5.3.2: otherwise it may describe someone else
            raise SignInError("wrong_subject", "The identity provider's user information names someone else.")
        return answer

    # -- HTTP ----------------------------------------------------------------------------------

    async def _get_json(self, url: str) -> dict[str, Any]:
        status, answer = await self._request("GET", url, headers={"Accept": "application/json"})
        if status != 200 or not isinstance(answer, dict):
            raise _unavailable(f"{urllib.parse.urlsplit(url).path or '/'} answered {status}")
        return answer

    async def _request(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        if self._http is None:
            raise _unavailable("the node is not started")
        try:
            async with self._http.request(method, url, allow_redirects=False, **kwargs) as response:
                raw = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(raw) > MAX_DOCUMENT_BYTES:
                    raise _unavailable(f"{urllib.parse.urlsplit(url).path} answered more than 1 MiB")
                try:
                    return response.status, json.loads(raw) if raw else None
                except (ValueError, UnicodeDecodeError):
                    return response.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _unavailable(f"the identity provider is unreachable ({type(exc).__name__})") from None


def _claim_error(claim: str) -> SignInError:
    if claim == "iss":
        return SignInError("wrong_issuer", "The sign-in token comes from another identity provider.")
    if claim in ("aud", "azp"):
        return SignInError("wrong_audience", "The sign-in token was issued to another application.")
    if claim == "nonce":
        return SignInError("nonce_mismatch", "The sign-in token belongs to another sign-in. Start again.")
    if claim in ("iat", "nbf"):
        return SignInError("token_not_yet_valid", "The sign-in token is not valid yet (are the clocks right?).")
    return SignInError("malformed_token", f"The sign-in token lacks a valid {claim!r} claim.")


def _has_profile(claims: Mapping[str, Any]) -> bool:
    return isinstance(claims.get("email"), str) and "email_verified" in claims and isinstance(claims.get("name"), str)


def _email_verified(claims: Mapping[str, Any]) -> bool:
    # Some providers send the boolean as a string. Microsoft Entra ID sends no email_verified;
    # its optional claim `xms_edov` (the email's domain is verified by its owner) stands in.
    value = claims.get("email_verified", claims.get("xms_edov"))
    return value is True or value == "true"


def _display_name(claims: Mapping[str, Any], email: str) -> str:
    for value in (
        claims.get("name"),
        " ".join(str(claims.get(k, "")) for k in ("given_name", "family_name")),
        claims.get("preferred_username"),
        email,
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return ""


def is_admin(claims: Mapping[str, Any], rule: tuple[str, str | None]) -> bool:
    """PROCTOR_OIDC_ADMIN_CLAIM: `claim` is true, or `claim=value` equals or (as a list) holds value."""
    name, expected = rule
    if not name:
        return False
    value = claims.get(name)
    if expected is None:
        return value is True or value == "true"
    return value == expected or (isinstance(value, list) and expected in value)


def refusal(identity: Identity, allowed_domains: tuple[str, ...]) -> SignInError | None:
    """Why this identity may not sign in here, or None.

    An unverified address is refused outright: accounts are linked by email, and the allowed
    domains mean nothing for an address nobody has proved to own.
    """
    if not identity.email:
        return SignInError(
            "email_missing",
            "The identity provider sent no email address (is the `email` scope allowed for this application?).",
            403,
        )
    if not identity.email_verified:
        return SignInError("email_unverified", "The identity provider has not verified this email address.", 403)
    domain = identity.email.rpartition("@")[2]
    if allowed_domains and domain not in allowed_domains:
        return SignInError("domain_not_allowed", f"Addresses at {domain} may not sign in to this server.", 403)
    return None
