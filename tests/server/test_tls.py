"""`proctor serve` over HTTPS, as an operator runs it: a real process with certificates made
by the test, aiohttp and Socket.IO clients that trust only the test CA, SIGHUP reloads."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from server.tls import ServerTLS
from tests.support.https import (
    HttpsNode,
    LocalCA,
    handshake,
    handshake_error,
    old_tls_client,
    served_certificate,
    wait_for_log,
)
from tests.support.node import ADMIN, EXAM_BODY, bearer
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.slow


async def _rest(http: aiohttp.ClientSession, url: str, method: str, path: str, body: Any = None) -> Any:
    async with http.request(method, url + path, json=body, headers=bearer(ADMIN)) as resp:
        data = await resp.json()
        assert resp.status < 300, (path, resp.status, data)
        return data


async def invite(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    exam = await _rest(http, url, "POST", "/api/exams", EXAM_BODY)
    room = await _rest(http, url, "POST", f"/api/exams/{exam['id']}/rooms", {"name": "Hall", "seats": 5})
    students = {"students": [{"id": "s-1", "name": "Ada"}]}
    data = await _rest(http, url, "POST", f"/api/rooms/{room['id']}/invites", students)
    return dict(data["invites"][0])


def ws_certificate(sio: socketio.AsyncClient) -> x509.Certificate:
    """The certificate of the TLS connection under a connected client's WebSocket."""
    ssl_object = sio.eio.ws.get_extra_info("ssl_object")
    assert ssl_object is not None, "the WebSocket is not over TLS"
    return x509.load_der_x509_certificate(ssl_object.getpeercert(binary_form=True))


async def test_node_serves_https_and_wss_and_reloads_its_certificate_on_sighup(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    ca = LocalCA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.issue(serial=1001).write(cert, key)
    node = HttpsNode(tmp_path, await postgres.create_database(), cert, key)
    trust = ca.client_context()
    node.start(trust)
    sio: socketio.AsyncClient | None = None
    try:
        assert f"listening on https://127.0.0.1:{node.port}" in node.output()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http:
            async with http.get(node.url + "/healthz") as resp:
                assert resp.status == 200 and (await resp.json())["node"] == "tls-node"
            # The pages may connect to this node's own origin only, by https and wss.
            async with http.get(node.url + "/exam/") as resp:
                assert resp.status == 200
                csp = dict(d.strip().split(" ", 1) for d in resp.headers["Content-Security-Policy"].split(";"))
                assert csp["connect-src"] == f"'self' https://127.0.0.1:{node.port} wss://127.0.0.1:{node.port}"
            # The public URL follows the scheme: invite links are https:// without PROCTOR_PUBLIC_URL.
            student = await invite(http, node.url)
            assert student["url"].startswith(f"https://127.0.0.1:{node.port}/exam/#token="), student["url"]

            # Modern TLS only: a client offering at most TLS 1.1 is refused, the same client
            # allowed 1.2 gets in; no compression (checked below).
            assert await handshake_error(node.port, old_tls_client(ca)) is not None
            assert await handshake_error(node.port, old_tls_client(ca, ssl.TLSVersion.TLSv1_2)) is None
            alpn = ca.client_context()
            alpn.set_alpn_protocols(["h2", "http/1.1"])
            first = await handshake(node.port, alpn)
            assert first.version == "TLSv1.3" and first.compression is None and first.alpn == "http/1.1", first
            assert (await served_certificate(node.port, trust)).serial_number == 1001

            # Socket.IO over wss, with the Origin a browser on the https page sends (another
            # site's is refused): a student joins on a WebSocket that stays open across the reload.
            foreign = socketio.AsyncClient(reconnection=False, http_session=http)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await foreign.connect(
                    node.url,
                    namespaces=["/student"],
                    auth={"token": student["token"]},
                    headers={"Origin": "https://evil.example"},
                    transports=["websocket"],
                    wait_timeout=10,
                )
            disconnected = asyncio.Event()
            sio = socketio.AsyncClient(reconnection=False, http_session=http)
            sio.on("disconnect", lambda *a: disconnected.set(), namespace="/student")
            await sio.connect(
                node.url,
                namespaces=["/student"],
                auth={"token": student["token"]},
                headers={"Origin": node.url},
                transports=["websocket"],
                wait_timeout=10,
            )
            assert sio.transport() == "websocket"
            joined = await sio.call("join", {}, namespace="/student", timeout=10)
            assert joined["ok"], joined
            assert ws_certificate(sio).serial_number == 1001

            # Renewal: new files, SIGHUP; new handshakes get the new certificate...
            ca.issue(serial=1002).write(cert, key)
            node.hang_up()
            await wait_for_log(node, "TLS certificate reloaded: serial 3ea")
            assert (await served_certificate(node.port, trust)).serial_number == 1002
            async with http.get(node.url + "/healthz", headers={"Connection": "close"}) as resp:
                assert resp.status == 200
            # ...while the WebSocket opened before is the same connection, on the old one, and works.
            assert sio.connected and not disconnected.is_set()
            assert ws_certificate(sio).serial_number == 1001
            event = {"seq": 1, "kind": "tab_hidden", "occurred_at": datetime.now(UTC).isoformat()}
            ack = await sio.call("event", event, namespace="/student", timeout=10)
            assert ack["ok"], ack

            # A bad pair on SIGHUP (the certificate of one key, the key of another): logged,
            # and the node goes on serving the last good certificate.
            third, fourth = ca.issue(serial=1003), ca.issue(serial=1004)
            cert.write_bytes(third.cert_pem)
            key.write_bytes(fourth.key_pem)
            node.hang_up()
            await wait_for_log(node, "TLS reload failed, still serving serial 3ea")
            assert "PROCTOR_TLS_KEY" in node.output().split("TLS reload failed", 1)[1]
            assert (await served_certificate(node.port, trust)).serial_number == 1002
            assert sio.connected and not disconnected.is_set()
            await sio.disconnect()
    finally:
        if sio is not None and sio.connected:
            await sio.disconnect()
        code = node.stop()
    assert code == 0, node.output()


async def test_sighup_without_tls_is_logged_and_the_node_serves_on(postgres: PostgresServer, tmp_path: Path) -> None:
    # SIGHUP's default action ends a process; a renewal hook or `systemctl reload` must not.
    node = HttpsNode(
        tmp_path, await postgres.create_database(), Path(), Path(), env={"PROCTOR_TLS_CERT": "", "PROCTOR_TLS_KEY": ""}
    )
    node.start(None)
    try:
        assert f"listening on http://127.0.0.1:{node.port}" in node.output()
        node.hang_up()
        await wait_for_log(node, "SIGHUP: nothing to reload (no TLS certificate")
        async with aiohttp.ClientSession() as http, http.get(node.url + "/healthz") as resp:
            assert resp.status == 200
    finally:
        code = node.stop()
    assert code == 0, node.output()


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    environ.update({"PROCTOR_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "serve"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_start_up_refuses_a_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    ca = LocalCA()
    one, other = ca.issue(serial=1), ca.issue(serial=2)
    one.write(tmp_path / "cert.pem", tmp_path / "unused.pem")
    other.write(tmp_path / "other-cert.pem", tmp_path / "key.pem")
    result = _serve(tmp_path, PROCTOR_TLS_CERT=str(tmp_path / "cert.pem"), PROCTOR_TLS_KEY=str(tmp_path / "key.pem"))
    assert result.returncode == 2, result
    assert "PROCTOR_TLS_KEY" in result.stderr and "is not the key of the certificate" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("which", "content", "expected"),
    [
        ("cert", None, "PROCTOR_TLS_CERT: cannot read"),
        ("key", None, "PROCTOR_TLS_KEY: cannot read"),
        ("cert", b"not a certificate\n", "PROCTOR_TLS_CERT: "),
        ("key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PROCTOR_TLS_KEY: "),
    ],
)
def test_start_up_names_the_unreadable_or_invalid_file(
    tmp_path: Path, which: str, content: bytes | None, expected: str
) -> None:
    LocalCA().issue(serial=1).write(tmp_path / "cert.pem", tmp_path / "key.pem")
    target = tmp_path / f"{which}.pem"
    target.unlink()
    if content is not None:
        target.write_bytes(content)
    result = _serve(tmp_path, PROCTOR_TLS_CERT=str(tmp_path / "cert.pem"), PROCTOR_TLS_KEY=str(tmp_path / "key.pem"))
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert str(target) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("given", "missing"), [("PROCTOR_TLS_CERT", "PROCTOR_TLS_KEY"), ("PROCTOR_TLS_KEY", "PROCTOR_TLS_CERT")]
)
def test_one_of_the_pair_alone_is_a_start_up_error(tmp_path: Path, given: str, missing: str) -> None:
    result = _serve(tmp_path, **{given: str(tmp_path / "x.pem")})
    assert result.returncode == 2 and f"{missing}: set both" in result.stderr, result.stderr


def _verify(ca_pem: bytes, cert_pem: bytes, subject: x509.DNSName | x509.IPAddress) -> None:
    store = Store(x509.load_pem_x509_certificates(ca_pem))
    verifier = PolicyBuilder().store(store).build_server_verifier(subject)
    verifier.verify(x509.load_pem_x509_certificate(cert_pem), [])


async def test_cert_command_makes_a_local_ca_that_a_client_trusts(tmp_path: Path) -> None:
    import ipaddress

    out = tmp_path / "tls"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}

    def cert(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "server.cli", "cert", *args, "--out", str(out), "--port", "8443"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )

    first = cert("--self-signed", "--name", "localhost", "--ip", "127.0.0.1")
    assert first.returncode == 0, first.stderr
    for text in (
        f"PROCTOR_TLS_CERT={out / 'cert.pem'}",
        f"PROCTOR_TLS_KEY={out / 'key.pem'}",
        "PROCTOR_PUBLIC_URL=https://localhost:8443",
        "certutil -addstore -f Root proctor-ca.crt",
        "add-trusted-cert",
        "update-ca-certificates",
        "Firefox",
        "ChromeOS",
    ):
        assert text in first.stdout, text
    assert (out / "key.pem").stat().st_mode & 0o777 == 0o600
    assert (out / "proctor-ca-key.pem").stat().st_mode & 0o777 == 0o600
    ca_pem, cert_pem = (out / "proctor-ca.crt").read_bytes(), (out / "cert.pem").read_bytes()
    _verify(ca_pem, cert_pem, x509.DNSName("localhost"))
    _verify(ca_pem, cert_pem, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    with pytest.raises(VerificationError):
        _verify(ca_pem, cert_pem, x509.DNSName("example.com"))

    # The node serves it, and a client that trusts only the CA connects by name and by address.
    tls = ServerTLS(out / "cert.pem", out / "key.pem")
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=tls.context)
    try:
        port = server.sockets[0].getsockname()[1]
        trust = ssl.create_default_context(cafile=str(out / "proctor-ca.crt"))
        for host in ("127.0.0.1", "localhost"):
            served = await served_certificate(port, trust, host=host)
            assert served.serial_number == x509.load_pem_x509_certificate(cert_pem).serial_number
    finally:
        server.close()
        await server.wait_closed()

    # Again: the CA is kept (students trust it once), the server certificate is new.
    again = cert("--self-signed", "--name", "localhost", "--ip", "127.0.0.1", "--days", "30")
    assert again.returncode == 0 and "reused" in again.stdout, again
    assert (out / "proctor-ca.crt").read_bytes() == ca_pem
    renewed = (out / "cert.pem").read_bytes()
    assert renewed != cert_pem
    _verify(ca_pem, renewed, x509.DNSName("localhost"))

    # The CA is name-constrained: it cannot vouch for an address it was not made for.
    other = cert("--self-signed", "--ip", "10.1.2.3")
    assert other.returncode == 2 and "not for 10.1.2.3" in other.stderr, other
    assert cert("--name", "localhost").returncode == 2
    assert cert("--self-signed", "--name", "bad name!").returncode == 2
    assert cert("--self-signed", "--name", "localhost", "--days", "1000").returncode == 2
