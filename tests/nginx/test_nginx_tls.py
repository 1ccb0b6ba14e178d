"""The rendered TLS site in a real Nginx (the system's, on free loopback ports) in front of a
real node: HTTP redirects to HTTPS, HSTS, TLS 1.2+ with HTTP/2, REST and Socket.IO over wss."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer

from nginx.render import Node, SiteTLS, render_site
from server.app import create_app
from server.embedded_pg import free_port
from server.settings import Settings
from tests.support.https import LocalCA, handshake, handshake_error, old_tls_client
from tests.support.nginx import running_nginx
from tests.support.node import ADMIN, EXAM_BODY, bearer

pytestmark = pytest.mark.slow


@dataclass
class Proxy:
    http_port: int
    tls_port: int
    ca: LocalCA
    serial: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
async def upstream(settings: Settings, ports: tuple[int, int]) -> AsyncIterator[int]:
    # The node's public URL is Nginx's https address: invite links must point there.
    app = create_app(settings.replace(public_url=f"https://127.0.0.1:{ports[1]}"))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        assert server.port is not None
        yield server.port
    finally:
        await server.close()


@pytest.fixture
def proxy(upstream: int, ports: tuple[int, int], tmp_path: Path) -> Iterator[Proxy]:
    ca = LocalCA()
    served = ca.issue(serial=7001)
    cert, key = tmp_path / "tls" / "fullchain.pem", tmp_path / "tls" / "key.pem"
    cert.parent.mkdir()
    served.write(cert, key)
    http_port, tls_port = ports
    site = render_site(
        [Node("127.0.0.1", upstream)],
        listen=f"127.0.0.1:{tls_port}",
        tls=SiteTLS(str(cert), str(key), http_listen=f"127.0.0.1:{http_port}"),
    )
    with running_nginx(tmp_path / "nginx", site, tls_port):
        yield Proxy(http_port, tls_port, ca, served.serial)


async def test_nginx_terminates_tls_for_rest_and_socketio(proxy: Proxy) -> None:
    trust = proxy.ca.client_context()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:
        # Plain HTTP: a permanent redirect to the same path on HTTPS (port and query kept).
        async with http.get(f"http://127.0.0.1:{proxy.http_port}/healthz?x=1", allow_redirects=False) as resp:
            assert resp.status == 301
            assert resp.headers["Location"] == f"{proxy.url}/healthz?x=1"
        async with http.get(f"http://127.0.0.1:{proxy.http_port}/exam/") as resp:
            assert resp.status == 200 and resp.url.scheme == "https"

        async with http.get(proxy.url + "/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["node"] == "node-test"
            assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"
        async with http.get(proxy.url + "/admin/drain") as resp:
            assert resp.status == 404
            assert resp.headers["Strict-Transport-Security"] == "max-age=63072000"

        # TLS 1.2+ only; HTTP/2 offered to browsers; the test's certificate is the one served.
        assert await handshake_error(proxy.tls_port, old_tls_client(proxy.ca)) is not None
        assert await handshake_error(proxy.tls_port, old_tls_client(proxy.ca, ssl.TLSVersion.TLSv1_2)) is None
        alpn = proxy.ca.client_context()
        alpn.set_alpn_protocols(["h2", "http/1.1"])
        negotiated = await handshake(proxy.tls_port, alpn)
        assert negotiated.alpn == "h2" and negotiated.version == "TLSv1.3", negotiated
        assert negotiated.certificate.serial_number == proxy.serial

        headers = bearer(ADMIN)
        async with http.post(proxy.url + "/api/exams", json=EXAM_BODY, headers=headers) as resp:
            exam = await resp.json()
        async with http.post(
            proxy.url + f"/api/exams/{exam['id']}/rooms", json={"name": "Hall", "seats": 3}, headers=headers
        ) as resp:
            room = await resp.json()
        async with http.post(
            proxy.url + f"/api/rooms/{room['id']}/invites",
            json={"students": [{"id": "s-1", "name": "Ada"}]},
            headers=headers,
        ) as resp:
            invite = (await resp.json())["invites"][0]
        assert invite["url"].startswith(proxy.url + "/exam/#token=")

        # Socket.IO over wss through the one upgrade location, with the Origin a browser on
        # the https page sends: the node's same-origin check must see https and the port.
        sio = socketio.AsyncClient(reconnection=False, http_session=http)
        try:
            await sio.connect(
                proxy.url,
                namespaces=["/student"],
                auth={"token": invite["token"]},
                headers={"Origin": proxy.url},
                transports=["websocket"],
                wait_timeout=10,
            )
            assert sio.transport() == "websocket"
            ack = await sio.call("join", {}, namespace="/student", timeout=10)
            assert ack["ok"], ack
        finally:
            await sio.disconnect()
        # The check is real: another site's page is refused.
        other = socketio.AsyncClient(reconnection=False, http_session=http)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await other.connect(
                proxy.url,
                namespaces=["/student"],
                auth={"token": invite["token"]},
                headers={"Origin": "https://evil.example"},
                transports=["websocket"],
                wait_timeout=5,
            )
