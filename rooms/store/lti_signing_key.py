"""The tool's signing key, read straight from lti_keys: THE SEAM to the registration work.

The LTI services sign client assertions, deep-linking responses and LtiStartAssessment
messages with the tool's newest unretired key. The registration part (rooms/store/lti.py,
`ToolKeys.signing_key()`) owns generation and rotation; until it is merged this reader gives
the same interface, `async def signing_key() -> tuple[str, RSAPrivateKey]`, so the composition
root swaps one for the other (docs/lti.md).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..errors import Unavailable
from .database import Pool


class StoredSigningKey:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._cached: tuple[str, RSAPrivateKey] | None = None

    async def __call__(self) -> tuple[str, RSAPrivateKey]:
        row = await self._pool.fetchrow(
            "SELECT kid, private_pem FROM lti_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1"
        )
        if row is None:
            raise Unavailable("the tool has no LTI signing key yet", code="lti_no_key")
        if self._cached is not None and self._cached[0] == row["kid"]:
            return self._cached
        key = load_pem_private_key(row["private_pem"].encode(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise Unavailable("the tool's LTI key is not an RSA key", code="lti_no_key")
        self._cached = (row["kid"], key)
        return self._cached
