"""python-socketio, configured for many sockets and many small messages per second.

A few subclasses, each keeping the library's protocol and behaviour and dropping per-message
work that showed in py-spy at 2,000 events/s (docs/benchmarks.md, "second session"):

- `LeanSocket` (Engine.IO WebSocket transport): upstream starts a task and a `wait_for`
  (another task and a timer) for every message it reads, and a `wait_for` around every
  queue read of the writer. Here the reader awaits the WebSocket directly, watched by one
  timer per socket that re-arms itself about once per ping interval and ends the socket
  after ping_interval + ping_timeout of silence, as upstream's `wait_for` does; the writer
  awaits its queue without a timer (it ends on the `None` the reader or `close()` puts
  there, as upstream's does). An invalid Engine.IO packet ends the connection (as in
  upstream's loop) with one log line.
- `LeanEngineServer._service_task`: upstream's sweep over every socket, in slices of
  200 instead of a task and a timer per socket.
- `DirectManager`: upstream's `emit` starts one task per recipient and `asyncio.wait`s for
  them; sending to an Engine.IO socket only puts the packet on its queue, so here the
  recipients get it in a plain loop.
- `FastPacket` (signaling/fast_packet.py): encodes a packet's JSON once, and raises one
  `InvalidPacket` for anything a client sends that does not decode, so `ProctorServer` ends
  that connection with one log line.
- `ProctorServer`: remembers the length of the raw Socket.IO packet an event arrived in
  (`raw_length()`), so the guard can bound a payload's size without re-encoding it.

Redis (cluster) managers keep upstream's `emit`; they deliver locally through it.

All of it relies on upstream's private code, so it is used only with the versions it was
checked against: `socket_server()` and `in_process_manager()` return upstream's own classes
outside them (signaling/upstream.py, the gate and the hashes of the source we follow).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any

import engineio
import socketio
from engineio import async_socket, exceptions
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from . import upstream
from .fast_packet import FastPacket, InvalidPacket
from .room_index import RoomIndex

logger = logging.getLogger(__name__)

_running: set[asyncio.Task[None]] = set()  # event tasks, referenced until done (as upstream does)
_RAW_LENGTH: contextvars.ContextVar[int | None] = contextvars.ContextVar("raw_length", default=None)


# A binary event's attachments arrive as separate Engine.IO messages, and python-socketio
# keeps them per connection until the header's count is reached; the count may have 10
# digits. Our protocol carries no binary data (the guard answers `invalid` to any), so a
# small binary event is let through to that answer; a header announcing more than
# MAX_ATTACHMENTS, or attachments adding up to more than Engine.IO's max_http_buffer_size
# (the bound of one text message), close the connection before more is kept. A partial
# packet is released when its connection ends.
MAX_ATTACHMENTS = 32
_BINARY_TYPES = ("5", "6")  # Socket.IO BINARY_EVENT, BINARY_ACK


def announced_attachments(encoded: str) -> int:
    """The attachment count in a text Socket.IO packet's header (`51-/ns,[...]`), else 0."""
    dash = encoded.find("-", 1, 13)
    digits = encoded[1:dash] if dash > 1 else ""
    return int(digits) if digits.isdigit() else 0


def raw_length() -> int | None:
    """Characters of the text Socket.IO EVENT packet being handled, if known.

    The event's task copies the context when python-socketio creates it (inside
    `_handle_eio_message`), so the value belongs to that event's own packet.
    """
    return _RAW_LENGTH.get()


class LeanSocket(async_socket.AsyncSocket):  # type: ignore[misc]
    """Engine.IO socket whose WebSocket loop costs no task or timer per message."""

    connected: bool
    _ws: Any = None  # the WebSocket once upgraded, while its writer runs
    _writing = False  # a frame is being sent (by the writer or by send() directly)

    async def send(self, pkt: Any) -> None:
        # Upstream queues every packet for the writer task, which costs a queue round and a
        # task wake-up per message. When nothing is queued or being written, writing the
        # frame here keeps the order (aiohttp writes a frame before its first await, and
        # serialises compressed frames with its own lock); anything else takes the queue.
        ws = self._ws
        last_ping = self.last_ping
        if (
            ws is None
            or self._writing
            or not self.queue.empty()
            or self.closed
            or (last_ping and time.time() - last_ping > self.server.ping_timeout)
        ):
            await super().send(pkt)  # upstream's checks (ping timeout, closed) and queue
            return
        self._writing = True
        try:
            await ws.send(pkt.encode())
        except Exception:
            # The connection is going: the reader sees it close and cleans up, as when
            # upstream's writer fails.
            pass
        finally:
            self._writing = False

    async def _websocket_handler(self, ws: Any) -> None:
        server = self.server
        max_size = server.max_http_buffer_size

        async def websocket_wait() -> Any:
            data = await ws.wait()
            if data and len(data) > max_size:
                raise ValueError("packet is too large")
            return data

        if self.connected:
            # An upgrade from polling: the same handshake as upstream's.
            self.upgrading = True
            try:
                pkt = await websocket_wait()
            except OSError:
                return
            decoded = eio_packet.Packet(encoded_packet=pkt)
            if decoded.packet_type != eio_packet.PING or decoded.data != "probe":
                self.upgrading = False
                return
            await ws.send(eio_packet.Packet(eio_packet.PONG, data="probe").encode())
            await self.queue.put(eio_packet.Packet(eio_packet.NOOP))  # end the poll
            try:
                pkt = await websocket_wait()
            except OSError:
                self.upgrading = False
                return
            decoded = eio_packet.Packet(encoded_packet=pkt)
            if decoded.packet_type != eio_packet.UPGRADE:
                self.upgraded = False
                self.upgrading = False
                return
            self.upgraded = True
            self.upgrading = False
        else:
            self.connected = True
            self.upgraded = True

        queue = self.queue

        async def writer() -> None:
            while True:
                pkt = await queue.get()
                queue.task_done()
                if pkt is None:  # the connection is over
                    break
                self._writing = True
                packets = [pkt]
                while not queue.empty():
                    more = queue.get_nowait()
                    queue.task_done()
                    if more is None:
                        queue.put_nowait(None)
                        break
                    packets.append(more)
                try:
                    for p in packets:
                        await ws.send(p.encode())
                except Exception:
                    break
                finally:
                    self._writing = False
            self._ws = None
            await ws.close()

        writer_task = asyncio.ensure_future(writer())
        self._ws = ws

        # A live client answers every ping (ping_interval) well within ping_timeout, so silence
        # for both ends the socket, as upstream's wait_for around each read does. Here one
        # watchdog timer per socket looks at when the reader started waiting: while messages
        # flow it only re-arms itself (about once per ping_interval), and once the reader has
        # waited `limit` it cancels that read (through `expiry`, which turns it into a
        # TimeoutError). It never cancels the handling of a message.
        loop = asyncio.get_running_loop()
        limit = server.ping_interval + server.ping_timeout
        waiting_since = loop.time()
        reading = False
        expiring = False
        invalid: Exception | None = None
        watch: asyncio.TimerHandle

        def watchdog() -> None:
            nonlocal watch, expiring
            now = loop.time()
            if reading and (now - waiting_since >= limit or self.closed):
                # A socket the service task closed (ping unanswered) while its client kept
                # sending ends here too, as upstream's writer ends it at its next poll timeout.
                expiring = True
                expiry.reschedule(now)
            else:
                watch = loop.call_at((waiting_since if reading else now) + limit, watchdog)

        watch = loop.call_at(waiting_since + limit, watchdog)
        try:
            async with asyncio.timeout(None) as expiry:
                try:
                    while True:
                        waiting_since = loop.time()
                        reading = True
                        try:
                            p = await websocket_wait()
                        except asyncio.CancelledError:
                            raise
                        except Exception:
                            break
                        reading = False
                        if expiring:  # the message beat the expiry by one turn of the loop
                            expiring = False
                            expiry.reschedule(None)
                            watch = loop.call_at(loop.time() + limit, watchdog)
                        if p is None:  # closed by the client
                            break
                        try:
                            pkt = eio_packet.Packet(encoded_packet=p)
                            if not 0 <= pkt.packet_type < len(eio_packet.packet_names):
                                raise ValueError(f"unknown packet type {pkt.packet_type}")
                        except Exception as exc:
                            # Upstream's loop ends here too (the decode error escapes it); a
                            # client sending garbage gets one log line, not one per frame.
                            invalid = exc
                            break
                        try:
                            await self.receive(pkt)
                        except exceptions.UnknownPacketError:
                            pass
                        except exceptions.SocketIsClosedError:
                            break
                        except Exception:
                            logger.exception("Engine.IO receive error")
                finally:
                    watch.cancel()
        except (TimeoutError, asyncio.CancelledError):
            # Silence past the limit, or the request handler was cancelled: clean up below,
            # as upstream does.
            pass

        reason = server.reason.TRANSPORT_CLOSE
        if invalid is not None:
            logger.warning(
                "closing Engine.IO connection %s: invalid packet (%s: %.80s)", self.sid, type(invalid).__name__, invalid
            )
            reason = server.reason.TRANSPORT_ERROR
        self._ws = None  # from now on packets take the queue (and end with the writer)
        self.queue.put_nowait(None)  # unlock the writer so it can exit (the queue is unbounded)
        try:
            await writer_task
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the connection is lost, which can land here
            # once the read above already saw the close (upstream's reader, a separate task,
            # always takes it inside its wait_for). The disconnect must still be handled.
            pass
        await self.close(wait=False, abort=True, reason=reason)


class LeanEngineServer(engineio.AsyncServer):  # type: ignore[misc]
    SERVICE_SLICE = 200  # sockets checked per step of the service task

    async def _service_task(self) -> None:
        """Upstream's sweep (drop closed sockets, close those whose ping went unanswered,
        every socket once per ping_timeout), in slices instead of one socket at a time.

        Upstream sleeps between consecutive sockets with `wait_for(event.wait(), timeout)`:
        a task, a timer and a TimeoutError per socket, ~1,500 a second at 15,000 sockets,
        which was most of an idle node's CPU.
        """
        self.service_task_event = self.create_event()
        while not self.service_task_event.is_set():
            if not self.sockets:
                if await self._service_stop(self.ping_timeout):
                    break
                continue
            sockets = list(self.sockets.values())
            steps = -(-len(sockets) // self.SERVICE_SLICE)
            try:
                for start in range(0, len(sockets), self.SERVICE_SLICE):
                    for s in sockets[start : start + self.SERVICE_SLICE]:
                        if s.closed:
                            if self.sockets.get(s.sid) is s:
                                del self.sockets[s.sid]
                        elif not s.closing:
                            await s.check_ping_timeout()
                    if await self._service_stop(self.ping_timeout / steps):
                        return
            except asyncio.CancelledError:
                break
            except Exception:
                if asyncio.get_running_loop().is_closed():
                    break
                logger.exception("service task exception")

    async def _service_stop(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self.service_task_event.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        # The 'connect' event fires right after upstream created the socket and before any
        # transport runs: the moment to give it the lean WebSocket loop (it adds no state).
        if event == "connect":
            sock = self.sockets.get(args[0])
            if sock is not None and type(sock) is async_socket.AsyncSocket:
                sock.__class__ = LeanSocket
        return super()._trigger_event(event, *args, **kwargs)


class ProctorServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", FastPacket)
        super().__init__(*args, **kwargs)

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return LeanEngineServer

    async def _handle_event(self, eio_sid: str, namespace: str | None, id: Any, data: Any) -> None:
        # For a namespace that handles every event itself (`handles_all_events`, our guarded
        # namespaces), go straight to it: upstream's path adds two coroutine layers and a
        # look-up of decorator handlers (we register none) per event. Same task per event,
        # same ack packet.
        namespace = namespace or "/"
        handler = self.namespace_handlers.get(namespace)
        if not getattr(handler, "handles_all_events", False) or not self.async_handlers:
            await super()._handle_event(eio_sid, namespace, id, data)
            return None
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            return None
        task = asyncio.create_task(self._run_event(handler, sid, eio_sid, data, namespace, id))
        _running.add(task)
        task.add_done_callback(_running.discard)
        return None

    async def _run_event(self, handler: Any, sid: str, eio_sid: str, data: list[Any], namespace: str, id: Any) -> None:
        r = await handler.trigger_event(data[0], sid, *data[1:])
        if id is not None:
            args = [] if r is None else list(r) if isinstance(r, tuple) else [r]
            await self._send_packet(eio_sid, self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=args))

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        partial = self._binary_packet.get(eio_sid)
        if partial is None and not data:  # an Engine.IO message without data: upstream does not decode it
            await self._refuse(eio_sid, "invalid packet (empty)")
            return
        header = type(data) is str and partial is None
        refusal = self._binary_refusal(partial, data) if partial is not None or data[:1] in _BINARY_TYPES else None
        if refusal is not None:
            await self._refuse(eio_sid, f"binary packet {refusal}")
            return
        # Only a whole text EVENT packet bounds its payload; binary events arrive in parts.
        _RAW_LENGTH.set(len(data) if header and data[:1] == "2" else None)
        try:
            await super()._handle_eio_message(eio_sid, data)
        except InvalidPacket as exc:
            # Upstream logs a traceback per invalid packet and keeps the connection: one
            # client could fill the log. One line, and the connection ends.
            await self._refuse(eio_sid, f"invalid packet ({exc!s:.80})")

    async def _refuse(self, eio_sid: str, why: str) -> None:
        logger.warning("closing Socket.IO connection %s: %s", eio_sid, why)
        await self._drop(eio_sid)

    def _binary_refusal(self, partial: Any, data: Any) -> str | None:
        """Why a binary packet's header or next attachment is refused, or None."""
        if partial is None:
            announced = announced_attachments(data) if type(data) is str else 0
            if announced > MAX_ATTACHMENTS:
                return f"announces {announced} attachments (at most {MAX_ATTACHMENTS})"
            return None
        limit = self.eio.max_http_buffer_size
        if sum(map(len, partial.attachments)) + len(data) > limit:
            return f"exceeds {limit} bytes"
        return None

    async def _drop(self, eio_sid: str) -> None:
        """Close one Engine.IO connection now: its Socket.IO sessions end (and with them any
        partial binary packet), and its WebSocket is closed so nothing more is read."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        await sock.close(wait=False, abort=True, reason=self.eio.reason.SERVER_DISCONNECT)
        ws = getattr(sock, "_ws", None)
        if ws is not None:
            await ws.close()


class DirectManager(RoomIndex, socketio.AsyncManager):  # type: ignore[misc]
    """The in-process manager, emitting without a task per recipient."""

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to, **kwargs)
            return None
        room = to or room
        if namespace not in self.rooms:
            return None
        args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in parts]
        for sid, eio_sid in list(self.get_participants(namespace, room)):
            if sid in skip:
                continue
            for p in packets:
                try:
                    await self.server._send_eio_packet(eio_sid, p)
                except Exception:  # one recipient's failure must not stop the others (as upstream)
                    logger.exception("emit %s to %s failed", event, sid)
        return None


def socket_server(**kwargs: Any) -> socketio.AsyncServer:
    """The node's Socket.IO server: `ProctorServer` with the tested python-socketio and
    python-engineio, their own `AsyncServer` (unpatched, one warning) with any other."""
    if upstream.patched():
        return ProctorServer(**kwargs)
    return socketio.AsyncServer(**kwargs)


def in_process_manager() -> socketio.AsyncManager:
    """The manager of a node without Redis: `DirectManager`, or upstream's behind the gate."""
    if upstream.patched():
        return DirectManager()
    return socketio.AsyncManager()
