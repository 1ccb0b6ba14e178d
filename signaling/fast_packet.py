"""The Socket.IO packet class of the node (python-socketio's `serializer`), behind the version
gate of signaling/upstream.py like the rest of signaling/transport.py.

Outgoing: one JSON encoding per packet with a reused encoder. Incoming: one exception class,
`InvalidPacket`, for everything a client can send that upstream's decoder or handlers choke
on, so the server can end that connection with one log line instead of a traceback per
packet.
"""

from __future__ import annotations

import json
from typing import Any

from engineio import json as engineio_json
from socketio import packet as sio_packet

_encode_json = json.JSONEncoder(separators=(",", ":")).encode  # what upstream's json.dumps call produces
# What a client may send: not CONNECT_ERROR (upstream raises for it), nor an unknown type.
_CLIENT_PACKET_TYPES = frozenset(
    {
        sio_packet.CONNECT,
        sio_packet.DISCONNECT,
        sio_packet.EVENT,
        sio_packet.ACK,
        sio_packet.BINARY_EVENT,
        sio_packet.BINARY_ACK,
    }
)
_EVENT_TYPES = (sio_packet.EVENT, sio_packet.BINARY_EVENT)
_ACK_TYPES = (sio_packet.ACK, sio_packet.BINARY_ACK)


class InvalidPacket(ValueError):
    """A Socket.IO packet from a client that does not decode, or of a type no client sends."""


class FastPacket(sio_packet.Packet):  # type: ignore[misc]
    """Socket.IO packet that encodes its JSON once, with one encoder, and skips the walk for
    binary data when the JSON encoding already proves there is none (bytes do not encode).

    Upstream walks every outgoing payload for bytes (`data_is_binary`, in Python) and then
    builds a new `JSONEncoder` for each `json.dumps(..., separators=...)`; together ~5 % of
    the node's CPU at 2,000 events/s. Anything that does not encode (binary attachments)
    takes upstream's path unchanged, and the text is the same upstream's would be.
    """

    _text: str | None = None
    _encoded_data: Any = None

    def __init__(
        self,
        packet_type: int = sio_packet.EVENT,
        data: Any = None,
        namespace: str | None = None,
        id: Any = None,
        binary: Any = None,
        encoded_packet: Any = None,
    ) -> None:
        if binary is None and encoded_packet is None and data is not None and self.json is engineio_json:
            try:
                text = _encode_json(data)
            except (TypeError, ValueError, RecursionError):
                pass  # bytes (a binary packet) or not JSON: upstream decides and raises
            else:
                super().__init__(packet_type, data, namespace, id, binary=False)
                self._text, self._encoded_data = text, data
                return
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def decode(self, encoded_packet: Any) -> Any:
        # Upstream raises whatever its parsing meets (ValueError, TypeError, JSONDecodeError,
        # RecursionError), and python-engineio logs each with a traceback; one class lets the
        # server end such a connection instead (ProctorServer._handle_eio_message).
        try:
            attachments = super().decode(encoded_packet)
        except Exception as exc:
            raise InvalidPacket(f"{type(exc).__name__}: {exc}") from exc
        kind, data = self.packet_type, self.data
        if kind not in _CLIENT_PACKET_TYPES:
            raise InvalidPacket(f"packet type {kind!r}")
        # Upstream's handlers index these without a check: an event is [name, *args], an ack
        # a list of arguments.
        if kind in _EVENT_TYPES and not (type(data) is list and data and type(data[0]) is str):
            raise InvalidPacket("an event without a name")
        if kind in _ACK_TYPES and type(data) is not list:
            raise InvalidPacket("an ack without a list of arguments")
        return attachments

    def encode(self) -> Any:
        text = self._text
        if text is None or self.data is not self._encoded_data:
            return super().encode()
        head = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            head += self.namespace + ","
        if self.id is not None:
            head += str(self.id)
        return head + text
