"""Password hashing: Argon2id with fixed parameters, off the event loop, with a bounded queue.

An Argon2id hash costs tens of milliseconds of one core by design; run on the loop it would
stall every socket of the node for that long per sign-in. Hashes therefore run in a small
thread pool (argon2-cffi releases the GIL while it hashes) and at most `max_waiting` wait
for a thread: past that a sign-in is answered `unavailable` with a retry hint instead of
queueing without bound while an attacker floods the sign-in route.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import Unavailable

# OWASP's first Argon2id choice (m = 19 MiB, t = 2, p = 1): measured at 41-46 ms per hash on
# this project's shared 2-core test machine (benchmarks/auth/bench_signin.py, docs/accounts.md).
TIME_COST = 2
MEMORY_KIB = 19 * 1024
PARALLELISM = 1
HASH_LEN = 32
SALT_LEN = 16
MAX_PASSWORD = 1024  # characters; Argon2 would take more, but a megabyte "password" is an attack


def hasher(time_cost: int = TIME_COST, memory_kib: int = MEMORY_KIB, parallelism: int = PARALLELISM) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_kib,
        parallelism=parallelism,
        hash_len=HASH_LEN,
        salt_len=SALT_LEN,
    )


class Passwords:
    """Hash and verify passwords in worker threads; `needs_rehash` says when parameters changed."""

    def __init__(self, ph: PasswordHasher | None = None, *, workers: int | None = None, max_waiting: int = 64) -> None:
        self._ph = ph or hasher()
        self._workers = workers or max(1, min(4, os.cpu_count() or 1))
        self._executor: ThreadPoolExecutor | None = None
        self._queued = 0
        self._limit = self._workers + max_waiting
        # A hash of a random password, verified when the account is unknown so that the answer
        # takes as long as for a known account with a wrong password (no email enumeration).
        self._dummy = self._ph.hash(os.urandom(16).hex())
        self.dummy_checks = 0  # how often the dummy path ran (tests assert it does)

    def __repr__(self) -> str:
        return f"Passwords(workers={self._workers})"

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="argon2")
        return self._executor

    async def _run(self, fn: object, *args: str) -> object:
        if self._queued >= self._limit:
            raise Unavailable("the server is busy checking passwords; retry shortly", code="busy", retry_after=1)
        self._queued += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool(), fn, *args)  # type: ignore[arg-type]
        finally:
            self._queued -= 1

    async def hash(self, password: str) -> str:
        check_length(password)
        result = await self._run(self._ph.hash, password)
        assert isinstance(result, str)
        return result

    async def verify(self, stored: str | None, password: str) -> bool:
        """True if `password` matches `stored`; with no stored hash the dummy is checked."""
        if stored is None:
            self.dummy_checks += 1
            await self._run(self._verify, self._dummy, password)
            return False
        return bool(await self._run(self._verify, stored, password))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return bool(self._ph.verify(stored, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return bool(self._ph.check_needs_rehash(stored))
        except InvalidHashError:
            return True

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def check_length(password: str) -> None:
    from .errors import Invalid

    if not 8 <= len(password) <= MAX_PASSWORD:
        raise Invalid(f"a password has 8 to {MAX_PASSWORD} characters", code="invalid", fields={"password": "length"})
