"""A signal: one sender, listeners that subscribe when they are built.

The composition root (server/wire.py) builds the node in one pass; an event that flows
back up that graph (an attempt ended, so the student's sockets close and the analysis
peer goes) would otherwise need a callback assigned after construction. Instead the
signal is built first and handed to the sender and to each listener's constructor.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Listener = Callable[[T], Awaitable[None]]


class Signal(Generic[T]):
    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Listener[T]] = []

    def __repr__(self) -> str:
        return f"Signal({self.name!r}, {len(self._listeners)} listeners)"

    def connect(self, listener: Listener[T]) -> None:
        self._listeners.append(listener)

    def disconnect(self, listener: Listener[T]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def send(self, value: T) -> None:
        """Call every listener in order; one that fails is logged and the rest still run."""
        for listener in list(self._listeners):
            try:
                await listener(value)
            except Exception:
                logger.exception("%s: a listener failed", self.name)
