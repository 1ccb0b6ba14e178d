"""The server-side aiortc peers that receive students' camera tracks, one per attempt.

`AnalysisPeers` is a registry object, not a module global: `server/` creates one per
application and keeps it behind a `web.AppKey`. It answers offers, drains every received
track into a one-frame slot (see `frames.py` for why), and forgets peers whose
connection failed or closed. What the frames mean is for the sampler and `detection/`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription, candidate_from_sdp

from core.tasks import stop_tasks

from .analysis import AnalysisSettings, AnalysisSource
from .audio import AudioRing, drain_audio
from .errors import AnalysisUnavailable, InvalidOffer, MediaError
from .frames import LatestFrame, drain_track

logger = logging.getLogger(__name__)

DEFAULT_MAX_PEERS = 500
# A browser's offer with every codec and a dozen candidates is ~6 KiB; anything near
# this limit is not a camera offer, and parsing it would be wasted work.
DEFAULT_MAX_SDP_BYTES = 64 * 1024
_ENDED_STATES = frozenset({"failed", "closed"})
_SENDING_DIRECTIONS = frozenset({"sendonly", "sendrecv"})


class _Peer:
    """One attempt's connection: the aiortc peer, its frame slot and its drain tasks."""

    __slots__ = ("attempt_id", "audio", "closed", "pc", "settings", "slot", "tasks")

    def __init__(self, attempt_id: str, settings: AnalysisSettings, pc: RTCPeerConnection) -> None:
        self.attempt_id = attempt_id
        self.settings = settings
        self.pc = pc
        self.slot = LatestFrame()
        self.audio = AudioRing() if settings.listens else None
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def source(self) -> AnalysisSource:
        return AnalysisSource(self.attempt_id, self.settings, self.slot, self.audio)


class AnalysisPeers:
    """Registry of analysis peers, at most one per attempt.

    `ice_servers` are STUN/TURN URLs (`PROCTOR_ICE_SERVERS`), or `RTCIceServer`s when a
    TURN server needs credentials; an empty sequence means host candidates only, which
    is what loopback tests and a publicly reachable node need. (aiortc falls back to
    Google's STUN server only when given None, never here.)
    """

    def __init__(
        self,
        ice_servers: Sequence[str | RTCIceServer] = (),
        *,
        max_peers: int = DEFAULT_MAX_PEERS,
        max_sdp_bytes: int = DEFAULT_MAX_SDP_BYTES,
    ) -> None:
        if max_peers < 1:
            raise ValueError("max_peers must be at least 1")
        self._ice_servers = tuple(ice_servers)
        self._max_peers = max_peers
        self._max_sdp_bytes = max_sdp_bytes
        self._peers: dict[str, _Peer] = {}
        # Closing tasks started from aiortc's synchronous event callbacks.
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def live_count(self) -> int:
        return len(self._peers)

    def __contains__(self, attempt_id: object) -> bool:
        return attempt_id in self._peers

    def sources(self) -> list[AnalysisSource]:
        return [peer.source() for peer in self._peers.values()]

    def source(self, attempt_id: str) -> AnalysisSource | None:
        peer = self._peers.get(attempt_id)
        return peer.source() if peer is not None else None

    async def accept_offer(self, attempt_id: str, sdp: str, type_: str, settings: AnalysisSettings) -> tuple[str, str]:
        """Answer a student's offer; returns the answer's (sdp, type).

        Replaces (and closes) any existing peer of the attempt: a reconnecting student
        offers again. Raises `MediaError` with category `invalid` for an unusable
        offer, `unavailable` when analysis is off, the node is full or negotiation
        fails on our side, `conflict` when a newer offer for the attempt won the race.
        """
        if not settings.enabled:
            raise AnalysisUnavailable("server-side analysis is disabled for this attempt")
        self._validate_offer(sdp, type_)
        others = self.live_count - (1 if attempt_id in self._peers else 0)
        if others >= self._max_peers:
            raise AnalysisUnavailable(f"this node already analyses {others} peers")

        old = self._peers.pop(attempt_id, None)
        if old is not None:
            await self._close_peer(old)

        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=[
                    RTCIceServer(urls=server) if isinstance(server, str) else server for server in self._ice_servers
                ]
            )
        )
        peer = _Peer(attempt_id, settings, pc)
        # Registered before negotiation so that a concurrent offer for the same attempt
        # replaces this one, and this one notices below.
        self._peers[attempt_id] = peer
        pc.on("track", lambda track: self._on_track(peer, track))
        pc.on("connectionstatechange", lambda: self._on_state_change(peer))
        try:
            await self._negotiate(peer, sdp, type_)
        except BaseException as exc:
            replaced = self._peers.get(attempt_id) is not peer
            await self._discard(peer)
            if replaced and isinstance(exc, MediaError):
                # Our peer was closed under us by the newer offer: that is the real story.
                raise _replaced() from exc
            raise
        if self._peers.get(attempt_id) is not peer:
            await self._close_peer(peer)
            raise _replaced()
        local = pc.localDescription
        return local.sdp, local.type

    async def _negotiate(self, peer: _Peer, sdp: str, type_: str) -> None:
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
        except Exception as exc:
            # aiortc reports a bad offer with ValueError, its own InvalidAccessError,
            # OperationError (no common codec)... all of them are the caller's fault.
            raise InvalidOffer(f"offer rejected: {exc or type(exc).__name__}") from exc
        try:
            answer = await peer.pc.createAnswer()
            await peer.pc.setLocalDescription(answer)
        except Exception as exc:
            if peer.closed:
                raise AnalysisUnavailable("the analysis peer closed while negotiating") from exc
            logger.exception("cannot answer the analysis offer of attempt %s", peer.attempt_id)
            raise AnalysisUnavailable("cannot negotiate the analysis peer") from exc

    async def add_ice_candidate(
        self, attempt_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        """Add a trickled remote ICE candidate; an empty `candidate` ends the trickle."""
        peer = self._peers.get(attempt_id)
        if peer is None:
            raise MediaError("not_found", f"no analysis peer for attempt {attempt_id}")
        if not candidate:
            await peer.pc.addIceCandidate(None)
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except Exception as exc:
            # aiortc's candidate parser asserts on a short line, so AssertionError too.
            raise InvalidOffer(f"malformed ICE candidate: {candidate[:80]!r}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        try:
            await peer.pc.addIceCandidate(parsed)
        except ValueError as exc:
            raise InvalidOffer(f"ICE candidate rejected: {exc}") from exc

    async def close(self, attempt_id: str) -> bool:
        """Close the attempt's peer (student left, attempt ended); False if there was none."""
        peer = self._peers.pop(attempt_id, None)
        if peer is None:
            return False
        await self._close_peer(peer)
        return True

    async def close_all(self) -> None:
        """Close every peer (node shutdown) and wait for the closing tasks."""
        peers = list(self._peers.values())
        self._peers.clear()
        await asyncio.gather(*(self._close_peer(peer) for peer in peers))
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _validate_offer(self, sdp: str, type_: str) -> None:
        if type_ != "offer":
            raise InvalidOffer(f"expected an SDP of type 'offer', got {type_!r}")
        if not isinstance(sdp, str) or not sdp.strip():
            raise InvalidOffer("the offer's SDP is empty")
        if len(sdp) > self._max_sdp_bytes:
            raise InvalidOffer(f"the offer's SDP exceeds {self._max_sdp_bytes} bytes")
        if not sdp.lstrip().startswith("v=0"):
            raise InvalidOffer("the offer is not an SDP (it must start with v=0)")
        try:
            description = SessionDescription.parse(sdp)
        except Exception as exc:
            # aiortc's parser fails with whatever the malformed line provokes (ValueError,
            # IndexError, KeyError...): all mean the same thing to the caller.
            raise InvalidOffer(f"malformed SDP: {exc or type(exc).__name__}") from exc
        videos = [
            media for media in description.media if media.kind == "video" and media.direction in _SENDING_DIRECTIONS
        ]
        if not videos:
            raise InvalidOffer("the offer sends no video track")
        # aiortc would accept an offer without a DTLS fingerprint and fail only at the
        # handshake, leaving a peer that never connects; refuse it here instead.
        if any(media.dtls is None or not media.dtls.fingerprints for media in videos):
            raise InvalidOffer("the offer's video has no DTLS fingerprint")

    def _on_track(self, peer: _Peer, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and peer.audio is not None:
            # A speaking exam: the microphone goes to a bounded ring the speech listener reads.
            self._spawn_for(peer, drain_audio(track, peer.audio), f"drain audio {peer.attempt_id}")
            return
        # Other audio is received and thrown away: undrained, it would pile up like video.
        slot = peer.slot if track.kind == "video" else None
        self._spawn_for(peer, drain_track(track, slot), f"drain {track.kind} {peer.attempt_id}")

    def _on_state_change(self, peer: _Peer) -> None:
        if peer.pc.connectionState in _ENDED_STATES and not peer.closed:
            logger.info("analysis peer of attempt %s is %s", peer.attempt_id, peer.pc.connectionState)
            self._spawn(self._discard(peer), f"discard peer {peer.attempt_id}")

    async def _discard(self, peer: _Peer) -> None:
        # Only forget the registry entry if it is still this peer, not its replacement.
        if self._peers.get(peer.attempt_id) is peer:
            del self._peers[peer.attempt_id]
        await self._close_peer(peer)

    async def _close_peer(self, peer: _Peer) -> None:
        if peer.closed:
            return
        peer.closed = True
        try:
            await peer.pc.close()
        except Exception:
            logger.exception("closing the analysis peer of attempt %s failed", peer.attempt_id)
        # The drain tasks end by themselves once the tracks stop; cancelling covers a
        # track aiortc failed to end.
        await stop_tasks(list(peer.tasks))
        peer.slot.clear()
        if peer.audio is not None:
            peer.audio.clear()

    def _spawn_for(self, peer: _Peer, coro: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.get_running_loop().create_task(_guarded(coro, what), name=what)
        peer.tasks.add(task)
        task.add_done_callback(peer.tasks.discard)

    def _spawn(self, coro: Coroutine[Any, Any, None], what: str) -> None:
        task = asyncio.get_running_loop().create_task(_guarded(coro, what), name=what)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _replaced() -> MediaError:
    return MediaError("conflict", "a newer offer for this attempt replaced this one")


async def _guarded(coro: Coroutine[Any, Any, None], what: str) -> None:
    """Run a background coroutine; log its failure instead of losing it in a task."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s failed", what)
