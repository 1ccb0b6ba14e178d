"""HTTPS for tests: certificates made here with `cryptography` (a test CA and server
certificates for localhost/127.0.0.1), client contexts that trust only that CA, and a real
`proctor serve` process speaking HTTPS on a free loopback port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.embedded_pg import free_port
from tests.support.node import ADMIN, SECRET


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class ServerCert:
    cert_pem: bytes
    key_pem: bytes
    serial: int

    @property
    def spki_sha256(self) -> str:
        """base64(SHA-256(SubjectPublicKeyInfo)): what Chromium's --ignore-certificate-errors-spki-list takes."""
        cert = x509.load_pem_x509_certificate(self.cert_pem)
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def write(self, cert_path: Path, key_path: Path) -> None:
        # Replace, never rewrite in place: what a renewal (certbot, proctor cert) does.
        for path, data in ((key_path, self.key_pem), (cert_path, self.cert_pem)):
            temp = path.with_name(path.name + ".new")
            temp.write_bytes(data)
            temp.chmod(0o600)
            os.replace(temp, path)


class LocalCA:
    """A CA made for one test, and the server certificates it signs."""

    def __init__(self, common_name: str = "Proctor test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        serial: int,
        names: tuple[str, ...] = ("localhost",),
        ips: tuple[str, ...] = ("127.0.0.1",),
    ) -> ServerCert:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        san: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
        san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0] if names else "proctor test node"))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return ServerCert(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key), serial)

    def client_context(self) -> ssl.SSLContext:
        """Verifies hostnames and trusts this CA only (not the system's)."""
        context = ssl.create_default_context(cadata=self.pem.decode())
        return context


@dataclass(frozen=True)
class Handshake:
    certificate: x509.Certificate
    version: str | None
    compression: str | None
    alpn: str | None


async def handshake(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> Handshake:
    """What a new TLS connection to `port` negotiates, and the certificate it is given."""
    _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=host)
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True)
        return Handshake(
            x509.load_der_x509_certificate(der), tls.version(), tls.compression(), tls.selected_alpn_protocol()
        )
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass


async def served_certificate(port: int, context: ssl.SSLContext, host: str = "127.0.0.1") -> x509.Certificate:
    """The certificate a new TLS connection to `port` is given."""
    return (await handshake(port, context, host)).certificate


async def handshake_error(port: int, context: ssl.SSLContext) -> OSError | None:
    """How a handshake with `context` fails (an alert, or the server resetting), or None."""
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1")
    except (ssl.SSLError, ConnectionResetError) as exc:
        return exc
    writer.close()
    return None


def old_tls_client(ca: LocalCA, highest: ssl.TLSVersion = ssl.TLSVersion.TLSv1_1) -> ssl.SSLContext:
    """A client that offers TLS 1.0 up to `highest`, any cipher (OpenSSL 3 needs security
    level 0 for 1.0/1.1); with `highest` 1.2 it is the control that shows only the version
    makes the difference."""
    context = ca.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated is the point
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = highest
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


class HttpsNode:
    """`python -m server.cli serve` with PROCTOR_TLS_CERT/KEY, its output in a log file."""

    def __init__(self, root: Path, database_url: str, cert: Path, key: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.log = root / "node.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
        self.env.update(
            {
                "PROCTOR_DATABASE_URL": database_url,
                "PROCTOR_SECRET": SECRET,
                "PROCTOR_ADMIN_TOKEN": ADMIN,
                "PROCTOR_HOST": "127.0.0.1",
                "PROCTOR_PORT": str(self.port),
                "PROCTOR_DATA_DIR": str(root / "data"),
                "PROCTOR_NODE_ID": "tls-node",
                "PROCTOR_TLS_CERT": str(cert),
                "PROCTOR_TLS_KEY": str(key),
                "PROCTOR_GC_TUNING": "false",
                "PROCTOR_WRITER_FLUSH_MS": "5",
                "PROCTOR_SHUTDOWN_TIMEOUT_SECONDS": "10",
                **(env or {}),
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.env["PROCTOR_TLS_CERT"] else "http"  # env={"PROCTOR_TLS_CERT": ""}: plain
        return f"{scheme}://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self, context: ssl.SSLContext | None, timeout: float = 60) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "server.cli", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"proctor serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1, context=context) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"proctor serve not ready over https in {timeout}s:\n{self.output()}")

    def hang_up(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc is not None else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise AssertionError(f"proctor serve did not stop on SIGTERM:\n{self.output()}") from None


async def wait_for_log(node: HttpsNode, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in node.output():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not logged in {timeout}s:\n{node.output()}")
