"""The tool's own RSA keys (table lti_keys): the newest unretired key signs what the tool sends
a platform (deep-linking responses, client assertions, proctoring messages); `jwks()` publishes
it together with keys retired less than the overlap ago, so a platform holding a cached JWKS
still verifies a message signed just before a rotation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .database import Pool

KEY_BITS = 2048


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": _b64(numbers.n), "e": _b64(numbers.e)}


def _new_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    # RFC 7638 thumbprint: a kid derived from the key, the same on every node.
    numbers = key.public_key().public_numbers()
    canonical = f'{{"e":"{_b64(numbers.e)}","kty":"RSA","n":"{_b64(numbers.n)}"}}'
    kid = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return kid, pem


def _load(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


class ToolKeys:
    """Generate, publish, rotate. The private PEM never leaves this class except as a key object."""

    def __init__(self, pool: Pool, *, overlap: timedelta) -> None:
        self._pool = pool
        self._overlap = overlap
        self._cache: dict[str, rsa.RSAPrivateKey] = {}

    def __repr__(self) -> str:
        return "ToolKeys(<keys>)"

    async def signing_key(self) -> tuple[str, rsa.RSAPrivateKey]:
        """The current key, generated on first use (two nodes racing keep the older one)."""
        row = await self._pool.fetchrow(
            "SELECT kid, private_pem FROM lti_keys WHERE retired_at IS NULL ORDER BY created_at, kid LIMIT 1"
        )
        if row is None:
            await self._insert()
            return await self.signing_key()
        return row["kid"], self._key(row["kid"], row["private_pem"])

    async def jwks(self) -> dict[str, Any]:
        """The public keys a platform may verify with: the current one and those retired less than
        the overlap ago (older ones are deleted here)."""
        await self._pool.execute("DELETE FROM lti_keys WHERE retired_at < now() - $1::interval", self._overlap)
        rows = await self._pool.fetch("SELECT kid, private_pem FROM lti_keys ORDER BY created_at DESC, kid")
        if not rows:
            await self.signing_key()
            return await self.jwks()
        return {"keys": [public_jwk(r["kid"], self._key(r["kid"], r["private_pem"])) for r in rows]}

    async def rotate(self) -> str:
        """A new signing key; the previous ones stay published for the overlap. Returns the new kid."""
        kid = await self._insert(retire_others=True)
        return kid

    async def _insert(self, *, retire_others: bool = False) -> str:
        kid, pem = await asyncio.to_thread(_new_key)  # ~50-200 ms of CPU: off the loop
        # One statement: no moment without a current key for another node to fill.
        retire = "WITH retired AS (UPDATE lti_keys SET retired_at = now() WHERE retired_at IS NULL) "
        await self._pool.execute(
            (retire if retire_others else "") + "INSERT INTO lti_keys (kid, private_pem) VALUES ($1, $2)"
            " ON CONFLICT DO NOTHING",
            kid,
            pem,
        )
        return kid

    def _key(self, kid: str, pem: str) -> rsa.RSAPrivateKey:
        key = self._cache.get(kid)
        if key is None:
            key = self._cache[kid] = _load(pem)
        return key
