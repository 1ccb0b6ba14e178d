"""`proctor nginx-conf`: the plain rendering is unchanged by TLS support; the TLS rendering
says what a TLS site must (checked by text here, and by a real Nginx in test_nginx_tls.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.tls_policy import INTERMEDIATE_CIPHERS
from nginx.render import ConfigError, Node, SiteTLS, render_site

GOLDEN = Path(__file__).with_name("site-plain.conf")
NODES = ["10.0.0.11:8080", "[::1]:8081"]
PLAIN_ARGS = [
    "--listen",
    "443",
    "--server-name",
    "exam.example.org",
    "--balance",
    "hash",
    "--max-fails",
    "2",
    "--fail-timeout",
    "7",
]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    nodes = [a for n in NODES for a in ("--node", n)]
    return subprocess.run(
        [sys.executable, "-m", "server.cli", "nginx-conf", *nodes, *args], capture_output=True, text=True, timeout=30
    )


def test_plain_rendering_is_byte_identical_to_before_tls() -> None:
    # site-plain.conf was rendered by the code before TLS support existed, then once more when
    # the locations got their own proxy headers (test_nginx_plain.py shows why).
    nodes = [Node.parse(n) for n in NODES]
    site = render_site(nodes, listen="443", server_name="exam.example.org", balance="hash", max_fails=2, fail_timeout=7)
    assert site == GOLDEN.read_text()
    result = _cli(*PLAIN_ARGS)
    assert result.returncode == 0 and result.stdout == GOLDEN.read_text(), result.stderr
    assert "ssl" not in result.stdout


def test_tls_rendering_has_a_redirect_hsts_and_modern_tls() -> None:
    result = _cli(
        "--server-name", "exam.example.org", "--tls-cert", "/etc/tls/fullchain.pem", "--tls-key", "/etc/tls/key.pem"
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "listen 443 ssl http2;" in text
    assert "listen 80;" in text and "return 301 https://$host$request_uri;" in text
    assert "ssl_certificate /etc/tls/fullchain.pem;" in text and "ssl_certificate_key /etc/tls/key.pem;" in text
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text and f"ssl_ciphers {INTERMEDIATE_CIPHERS};" in text
    assert "ssl_session_cache shared:proctor_tls:10m;" in text
    assert 'add_header Strict-Transport-Security "max-age=63072000" always;' in text
    assert "ssl_stapling" not in text
    # One upgrade location serves ws and wss alike.
    assert text.count("location /socket.io/") == 1 and "proxy_set_header Upgrade $http_upgrade;" in text


def test_tls_rendering_options() -> None:
    site = render_site(
        [Node.parse("127.0.0.1:9000")],
        listen="127.0.0.1:8443",
        tls=SiteTLS("/c.pem", "/k.pem", http_listen="127.0.0.1:8080", ocsp_stapling=True, resolver="127.0.0.53"),
    )
    assert "return 301 https://$host:8443$request_uri;" in site and "listen 127.0.0.1:8080;" in site
    assert "ssl_stapling on;" in site and "ssl_stapling_verify on;" in site
    assert "resolver 127.0.0.53 valid=300s;" in site
    no_redirect = render_site([Node.parse("127.0.0.1:9000")], tls=SiteTLS("/c.pem", "/k.pem", http_listen="off"))
    assert "return 301" not in no_redirect


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "/c.pem"], "--tls-key is missing"),
        (["--tls-key", "/k.pem"], "--tls-cert is missing"),
        (["--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--ocsp-stapling"], "--ocsp-stapling needs --resolver"),
        (["--tls-cert", "/c;evil.pem", "--tls-key", "/k.pem"], "is not supported"),
        (["--tls-cert", "/c.pem", "--tls-key", "/k.pem", "--listen", "127.0.0.1"], "give the port"),
        (["--ocsp-stapling"], "go with --tls-cert"),
    ],
)
def test_bad_tls_flags_are_refused_with_what_to_give(args: list[str], message: str) -> None:
    result = _cli(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_relative_paths_become_absolute_in_the_cli_and_are_refused_by_the_renderer(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "nginx-conf",
            "--node",
            "127.0.0.1:9000",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and f"ssl_certificate {tmp_path.resolve() / 'c.pem'};" in result.stdout
    with pytest.raises(ConfigError, match="absolute"):
        SiteTLS("c.pem", "/k.pem")
