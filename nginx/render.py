"""Render the Nginx configuration for a set of Proctor nodes.

`render_site` gives the `upstream` + `server` blocks for an operator's conf.d;
`render_standalone` wraps them into a complete nginx.conf whose every path is under one
directory, which `proctor cluster` and the tests run in the foreground as root or not.

Balancing: `ip_hash` by default (sticky per client address). Nginx's `ip_hash` uses only
the first three octets of an IPv4 address, so every client of one /24 (an exam hall
behind one NAT) lands on the same node: good for keeping a room's traffic on one node, bad
if one hall is most of the load. `hash $remote_addr consistent` (`--balance hash`) uses the
whole address and moves few clients when nodes come and go.

With `tls` (a `SiteTLS`) the site is rendered from `proctor-tls.conf.template` instead: a
TLS server (HTTP/2, TLS 1.2/1.3, HSTS, session cache, optional OCSP stapling) and a plain
HTTP server that only redirects to it. Without it the output is exactly what it was before
TLS existed, so deployed configs do not change under an upgrade.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from core.tls_policy import HSTS_MAX_AGE, INTERMEDIATE_CIPHERS, NGINX_PROTOCOLS

Balance = Literal["ip_hash", "hash"]

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+$")
# Characters that would end or extend an Nginx directive, or make a path a variable.
_UNSAFE_PATH = re.compile(r"[\s;{}'\"$#\\]")


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Node:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Node:
        host, sep, port = text.strip().rpartition(":")
        if not sep or not host:
            raise ConfigError(f"a node is HOST:PORT, got {text!r}")
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOST.match(host):
                raise ConfigError(f"not a host name or address: {host!r}") from None
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"not a port: {port!r}")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class SiteTLS:
    """Nginx terminates TLS: certificate and key paths (PEM, absolute) and the extras."""

    cert: str
    key: str
    # The plain-HTTP redirect server's listen ("off": none, e.g. port 80 is served elsewhere).
    http_listen: str = "80"
    ocsp_stapling: bool = False
    resolver: str = ""  # DNS server(s) for the OCSP responder's name; needed with stapling

    def __post_init__(self) -> None:
        for flag, path in (("--tls-cert", self.cert), ("--tls-key", self.key)):
            if not path:
                raise ConfigError(f"{flag} is missing: give both --tls-cert and --tls-key")
            if not path.startswith("/"):
                raise ConfigError(
                    f"{flag} must be an absolute path (Nginx reads it from its own directory), got {path!r}"
                )
            if _UNSAFE_PATH.search(path):
                raise ConfigError(
                    f"{flag}: a path with spaces, quotes or any of ; {{ }} $ # \\ is not supported: {path!r}"
                )
        if self.ocsp_stapling and not self.resolver:
            raise ConfigError(
                "--ocsp-stapling needs --resolver ADDR: the DNS server Nginx asks for the "
                "CA's OCSP responder (e.g. 127.0.0.53 with systemd-resolved)"
            )
        if self.resolver and not re.fullmatch(r"[A-Za-z0-9.:\[\] ]+", self.resolver):
            raise ConfigError(f"--resolver: not a list of addresses: {self.resolver!r}")


def _port_of(listen: str) -> int:
    """The port of an Nginx listen address ("443", "127.0.0.1:8443", "[::]:443"); the TLS
    server needs one said out loud (an address alone would mean port 80)."""
    port = listen if listen.isdigit() else listen.rpartition("]:" if listen.startswith("[") else ":")[2]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen {listen!r}: give the port, e.g. 443 or 127.0.0.1:8443")
    return int(port)


def _tls_values(tls: SiteTLS, listen: str, server_name: str) -> dict[str, str]:
    port = _port_of(listen)
    redirect = ""
    if tls.http_listen != "off":
        # Inside `location /`, not at server level: certbot --nginx adds its challenge
        # location to this server, and a server-level return would answer first.
        target = "https://$host" + ("" if port == 443 else f":{port}") + "$request_uri"
        redirect = (
            "\n# Plain HTTP only sends browsers to HTTPS.\n"
            "server {\n"
            f"    listen {tls.http_listen};\n"
            f"    server_name {server_name};\n\n"
            "    location / {\n"
            f"        return 301 {target};\n"
            "    }\n"
            "}\n"
        )
    ocsp = ""
    if tls.ocsp_stapling:
        ocsp = (
            '    # OCSP stapling: the handshake carries the CA\'s signed "not revoked".\n'
            "    ssl_stapling on;\n"
            "    ssl_stapling_verify on;\n"
            f"    resolver {tls.resolver} valid=300s;\n"
            "    resolver_timeout 5s;\n"
        )
    return {
        "redirect_server": redirect,
        "tls_cert": tls.cert,
        "tls_key": tls.key,
        "ocsp": ocsp,
        "tls_protocols": NGINX_PROTOCOLS,
        "tls_ciphers": INTERMEDIATE_CIPHERS,
        "hsts_max_age": str(HSTS_MAX_AGE),
    }


def _template(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _fill(template: str, values: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(f"template placeholder {key!r} has no value")
        return values[key]

    return _PLACEHOLDER.sub(sub, template)


def render_site(
    nodes: list[Node],
    *,
    listen: str = "80",
    server_name: str = "_",
    balance: Balance = "ip_hash",
    max_fails: int = 1,
    fail_timeout: int = 10,
    ws_timeout: int = 3600,
    max_body: str = "2m",
    tls: SiteTLS | None = None,
) -> str:
    if not nodes:
        raise ConfigError("give at least one node (--node HOST:PORT)")
    if balance == "ip_hash":
        directive = "ip_hash;"
        comment = "ip_hash: sticky by the first three octets of the client's IPv4 address"
    elif balance == "hash":
        directive = "hash $remote_addr consistent;"
        comment = "consistent hash of the whole client address"
    else:
        raise ConfigError(f"balance must be ip_hash or hash, got {balance!r}")
    servers = "\n".join(f"    server {node} max_fails={max_fails} fail_timeout={fail_timeout}s;" for node in nodes)
    values = {
        "balance": directive,
        "balance_comment": comment,
        "servers": servers,
        "listen": listen,
        "server_name": server_name,
        "ws_timeout": f"{ws_timeout}s",
        "max_body": max_body,
    }
    if tls is None:
        return _fill(_template("proctor.conf.template"), values)
    return _fill(_template("proctor-tls.conf.template"), values | _tls_values(tls, listen, server_name))


def render_standalone(prefix: Path, site: str) -> str:
    """A whole nginx.conf with pid, logs and temp files under `prefix` (created here)."""
    prefix = prefix.resolve()
    for sub in ("tmp", "logs"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    user = ""
    if os.geteuid() == 0:
        # Workers drop to an unprivileged account; it must reach the temp files.
        import grp
        import pwd

        account = pwd.getpwnam("nobody")
        user = f"user {account.pw_name} {grp.getgrgid(account.pw_gid).gr_name};"
        for path in (prefix, prefix / "tmp"):
            path.chmod(0o755)
        os.chown(prefix / "tmp", account.pw_uid, account.pw_gid)
        for parent in prefix.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if mode & 0o001 == 0:
                parent.chmod(mode | 0o001)
    indented = "\n".join(("    " + line) if line.strip() else "" for line in site.splitlines())
    return _fill(
        _template("standalone.conf.template"),
        {
            "prefix": str(prefix),
            "user": user,
            "site": indented,
        },
    )
