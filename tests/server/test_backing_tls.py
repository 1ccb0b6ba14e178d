"""TLS to the backing services: Postgres with `sslmode=verify-full` and Redis over `rediss://`,
against real servers that accept TLS only, with certificates this test makes."""

from __future__ import annotations

import asyncio
import datetime as dt
import glob
import ipaddress
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.backends import redis_client
from server.cli.backup import backup, restore
from server.embedded_pg import EmbeddedPostgres, free_port
from server.settings import Settings
from tests.support.live import running_node


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path
    wrong_ca: Path  # a CA that did not sign the servers' certificate


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_certs(root: Path) -> Certs:
    ca_key, ca_cert = _ca("proctor test CA")
    _, wrong = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    certs = Certs(root / "ca.pem", root / "server.pem", root / "server.key", root / "wrong-ca.pem")
    certs.ca.write_bytes(ca_cert.public_bytes(pem))
    certs.wrong_ca.write_bytes(wrong.public_bytes(pem))
    certs.cert.write_bytes(cert.public_bytes(pem))
    certs.key.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    certs.key.chmod(0o600)
    return certs


@dataclass(frozen=True)
class TlsServers:
    certs: Certs
    pg_port: int
    redis_port: int

    def database_url(self, ca: Path | None = None, database: str = "postgres") -> str:
        return (
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/{database}"
            f"?sslmode=verify-full&sslrootcert={ca or self.certs.ca}"
        )

    def redis_url(self, ca: Path | None = None) -> str:
        return f"rediss://127.0.0.1:{self.redis_port}/0?ssl_ca_certs={ca or self.certs.ca}&ssl_cert_reqs=required"


class SystemPostgres(EmbeddedPostgres):
    """The distribution's Postgres: pgserver's build has no TLS ("SSL is not supported by this build")."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int) -> None:
        super().__init__(data_dir, port=port)
        self.bin_dir = bin_dir

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / args[0]), *args[1:]],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._user,
        )


def system_pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        pytest.fail("Postgres with TLS is missing: apt-get install postgresql (./install.sh test does)")
    return Path(found[-1]).parent


def _tls_postgres(root: Path, certs: Certs) -> EmbeddedPostgres:
    pg = SystemPostgres(system_pg_bin(), root / "pgdata", free_port())
    pg.init()
    # The server reads its key as its own (unprivileged, as root) account, from its own dir.
    for src in (certs.cert, certs.key):
        dest = pg.data_dir / src.name
        shutil.copy(src, dest)
        dest.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(dest, "pgserver", "pgserver")
    with (pg.data_dir / "postgresql.conf").open("a") as conf:
        conf.write(f"\nssl = on\nssl_cert_file = '{certs.cert.name}'\nssl_key_file = '{certs.key.name}'\n")
    # TLS or nothing: a plain TCP connection matches no line and is refused.
    hba = pg.data_dir / "pg_hba.conf"
    hba.write_text(
        "\n".join("hostssl" + line[4:] if line.startswith("host ") else line for line in hba.read_text().splitlines())
        + "\n"
    )
    pg.start()
    return pg


def _tls_redis(root: Path, certs: Certs) -> tuple[subprocess.Popen[bytes], int]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is missing: apt-get install redis-server (./install.sh test does)")
    port = free_port()
    log = root / "redis.log"
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(certs.cert),
            "--tls-key-file",
            str(certs.key),
            "--tls-ca-cert-file",
            str(certs.ca),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(root),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = log.read_text() if log.exists() else ""
            pytest.fail(f"redis-server with TLS did not start (built without TLS?): {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("redis-server with TLS did not listen within 10 s")


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsServers]:
    # Not under pytest's tmp dir: as root Postgres runs as an unprivileged account that must reach it.
    root = Path(tempfile.mkdtemp(prefix="proctor-tls-backing-"))
    certs = make_certs(root)
    pg = _tls_postgres(root, certs)
    try:
        proc, redis_port = _tls_redis(root, certs)
        try:
            yield TlsServers(certs, pg.port or 0, redis_port)
        finally:
            proc.terminate()
            proc.wait(10)
    finally:
        pg.stop(mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


async def test_plain_connections_are_refused_so_the_servers_really_speak_tls_only(tls: TlsServers) -> None:
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{tls.pg_port}/postgres?sslmode=disable")
    plain = redis.asyncio.Redis(host="127.0.0.1", port=tls.redis_port, socket_timeout=2)
    with pytest.raises(redis.exceptions.ConnectionError):
        await plain.ping()
    await plain.aclose(close_connection_pool=True)


async def test_node_serves_a_join_over_tls_to_postgres_and_redis(tls: TlsServers, settings: Settings) -> None:
    conn = await asyncpg.connect(tls.database_url())
    try:
        await conn.execute("DROP DATABASE IF EXISTS node")
        await conn.execute("CREATE DATABASE node")
    finally:
        await conn.close()
    node = settings.replace(database_url=tls.database_url(database="node"), redis_url=tls.redis_url())
    async with running_node(node) as live:
        room = await live.room()
        [token] = await live.invites(room["id"], 1)
        student, _ = await live.student(token)
        assert (await student.call("answer", {"question_id": "q3", "value": "over TLS", "seq": 1}))["ok"]
        client = redis_client(tls.redis_url())
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()
        conn = await asyncpg.connect(tls.database_url(database="node"))
        try:
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        finally:
            await conn.close()

    # An external server over TLS backs up and restores too: pg_dump/psql take the same URL.
    file = Path(tempfile.mkdtemp(prefix="proctor-tls-backup-")) / "node.tar.gz"
    try:
        # pgserver's pg_dump has no TLS either: the server's own programs, as the docs say.
        made = await backup(node, file, pg_bin=system_pg_bin())
        assert made.database["source"] == "external"
        conn = await asyncpg.connect(tls.database_url())
        try:
            await conn.execute("DROP DATABASE IF EXISTS copy")
            await conn.execute("CREATE DATABASE copy")
        finally:
            await conn.close()
        await restore(node.replace(database_url=tls.database_url(database="copy")), file, pg_bin=system_pg_bin())
        conn = await asyncpg.connect(tls.database_url(database="copy"))
        try:
            value = await conn.fetchval("SELECT value FROM answers WHERE question_id = 'q3'")
        finally:
            await conn.close()
        assert value == '"over TLS"'
    finally:
        shutil.rmtree(file.parent, ignore_errors=True)


async def test_a_wrong_postgres_ca_stops_start_up_naming_the_certificate(tls: TlsServers, settings: Settings) -> None:
    node = settings.replace(database_url=tls.database_url(ca=tls.certs.wrong_ca))
    with pytest.raises(Exception, match="certificate verify failed"):
        async with running_node(node):
            pass


async def test_a_wrong_redis_ca_is_logged_at_start_up_and_joins_are_refused(
    tls: TlsServers,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = settings.replace(redis_url=tls.redis_url(ca=tls.certs.wrong_ca))
    with caplog.at_level(logging.ERROR):
        async with running_node(node) as live:
            [line] = [r.getMessage() for r in caplog.records if "Redis unreachable at start-up" in r.getMessage()]
            assert "CERTIFICATE_VERIFY_FAILED" in line, line
            room = await live.room()
            [token] = await live.invites(room["id"], 1)
            student = await live.connect("/student", token)
            ack = await student.call("join")
            assert ack["error"]["code"] == "unavailable", ack
            await asyncio.sleep(0)
