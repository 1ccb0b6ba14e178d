"""HTTPS for `proctor serve`: one server `ssl.SSLContext`, checked at start-up, reloaded on SIGHUP.

Browsers give a page the camera only in a secure context, so a node that students reach
directly (no Nginx in front) serves HTTPS itself from `PROCTOR_TLS_CERT` / `PROCTOR_TLS_KEY`.

The files are checked with `cryptography` before OpenSSL sees them, because OpenSSL's own
refusal ("[SSL] PEM lib") does not say which file is wrong or why; each error names the
setting to fix (`SettingsError`, so `proctor serve` exits 2 with it, like any bad setting).

Reload: certificates are renewed while exams run (ACME every 60 days), and a restart would
drop every student's socket. SIGHUP calls `load_cert_chain` again on the *same* context:
OpenSSL copies the certificate into each connection when the connection is made, so
connections that are up keep theirs and every new handshake gets the new one. A new pair
is first loaded into a throw-away context, because a failed `load_cert_chain` can leave a
context with the new certificate and the old key; a bad pair is logged and the old one
stays.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from core.tls_policy import INTERMEDIATE_CIPHERS
from server.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

# Warn this long before the certificate expires (ACME renews at 30 days left).
_EXPIRY_WARNING = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What an operator needs to recognise a certificate in a log line."""

    serial: int
    subject: str
    names: tuple[str, ...]
    not_after: datetime

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertificateInfo:
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = tuple(str(n) for n in san.get_values_for_type(x509.DNSName)) + tuple(
                str(ip) for ip in san.get_values_for_type(x509.IPAddress)
            )
        except x509.ExtensionNotFound:
            names = ()
        return cls(cert.serial_number, cert.subject.rfc4514_string(), names, cert.not_valid_after_utc)

    def __str__(self) -> str:
        names = ", ".join(self.names) or "no subjectAltName"
        return f"serial {self.serial:x} ({names}), valid until {self.not_after:%Y-%m-%d %H:%M} UTC"


def _read(key: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def check_pair(cert_path: Path, key_path: Path) -> CertificateInfo:
    """Parse both PEM files and check that the key belongs to the (first) certificate."""
    cert_pem = _read("TLS_CERT", cert_path)
    key_pem = _read("TLS_KEY", key_path)
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise SettingsError("TLS_CERT", f"{cert_path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise SettingsError(
            "TLS_KEY",
            f"{key_path} is protected by a passphrase; the node needs it without one "
            "(openssl pkey -in KEY -out KEY.plain, mode 0600)",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SettingsError("TLS_KEY", f"{key_path} holds no PEM private key (-----BEGIN PRIVATE KEY-----)") from None
    leaf = chain[0]
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        subject = leaf.subject.rfc4514_string() or "no subject"
        raise SettingsError(
            "TLS_KEY",
            f"{key_path} is not the key of the certificate in {cert_path} ({subject}, serial {leaf.serial_number:x})",
        )
    return CertificateInfo.of(leaf)


def server_context() -> ssl.SSLContext:
    """A server context without a certificate: TLS 1.2+, intermediate suites, no compression."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Compression: CRIME. Renegotiation: a client-driven CPU sink with nothing to gain here.
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.set_ciphers(INTERMEDIATE_CIPHERS)
    # aiohttp speaks HTTP/1.1 (WebSocket included); say so, so clients do not offer h2.
    context.set_alpn_protocols(["http/1.1"])
    return context


class ServerTLS:
    """The node's one SSLContext and the files it came from."""

    def __init__(self, cert_path: Path, key_path: Path) -> None:
        self.cert_path = cert_path
        self.key_path = key_path
        self.certificate = self._checked()
        self.context = server_context()
        self._load(self.context)

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerTLS | None:
        if not settings.tls:
            return None
        if settings.public_url.startswith("http://"):
            logger.warning(
                "PROCTOR_PUBLIC_URL is %s but the node serves HTTPS: invite links will not reach it",
                settings.public_url,
            )
        return cls(Path(settings.tls_cert).expanduser(), Path(settings.tls_key).expanduser())

    def _checked(self) -> CertificateInfo:
        info = check_pair(self.cert_path, self.key_path)
        now = datetime.now(UTC)
        if info.not_after < now:
            logger.error("the TLS certificate %s has EXPIRED: browsers will refuse it", self.cert_path)
        elif info.not_after - now < _EXPIRY_WARNING:
            logger.warning("the TLS certificate %s expires in %d days", self.cert_path, (info.not_after - now).days)
        return info

    def _load(self, context: ssl.SSLContext) -> None:
        try:
            context.load_cert_chain(self.cert_path, self.key_path)
        except ssl.SSLError as exc:
            raise SettingsError("TLS_KEY", f"OpenSSL refused {self.cert_path} with {self.key_path}: {exc}") from None
        except OSError as exc:  # replaced between the check and the load
            raise SettingsError("TLS_CERT", f"cannot read {self.cert_path} or {self.key_path}: {exc}") from None

    def reload(self) -> bool:
        """Load the files again into the live context; on any problem keep the old pair."""
        try:
            info = self._checked()
            self._load(server_context())
        except SettingsError as exc:
            logger.error("TLS reload failed, still serving %s: %s", self.certificate, exc)
            return False
        try:
            self._load(self.context)
        except SettingsError as exc:
            # The files changed again between the trial and this load (a SIGHUP in the middle
            # of a copy): OpenSSL may now hold the new certificate without its key.
            logger.error(
                "TLS reload failed half-way: new connections may fail until the files are whole "
                "and the node gets SIGHUP again: %s",
                exc,
            )
            return False
        self.certificate = info
        logger.info("TLS certificate reloaded: %s", info)
        return True


@web.middleware
async def socketio_sees_https(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Tell Socket.IO that a request came over TLS.

    python-engineio's aiohttp driver takes the scheme only from X-Forwarded-Proto (never from
    the socket), so its same-origin check compared a browser's `https://node:port` Origin with
    `http://node:port` and refused every WebSocket of a node serving HTTPS itself (400). Over
    TLS the header is set to what the socket says, whatever the client sent."""
    if request.secure and request.path.startswith("/socket.io/"):
        headers = request.headers.copy()
        headers["X-Forwarded-Proto"] = "https"
        request = request.clone(headers=headers)
    return await handler(request)


def reload_on_sighup(loop: asyncio.AbstractEventLoop, tls: ServerTLS | None) -> None:
    """SIGHUP reloads the certificate; without TLS it is logged and ignored, because its
    default action would end the node (and `systemctl reload` or a renewal hook sends it)."""

    def on_hup() -> None:
        if tls is None:
            logger.info(
                "SIGHUP: nothing to reload (no TLS certificate: PROCTOR_TLS_CERT is not set); restart to apply settings"
            )
        else:
            tls.reload()

    loop.add_signal_handler(signal.SIGHUP, on_hup)


__all__ = ["CertificateInfo", "ServerTLS", "check_pair", "reload_on_sighup", "server_context", "socketio_sees_https"]
