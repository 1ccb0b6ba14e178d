"""The pages' Content-Security-Policy names the node's own origin, from its public URL."""

from __future__ import annotations

import pytest

from server.http.pages import content_security_policy


def _connect_src(public_url: str) -> str:
    directives = dict(d.strip().split(" ", 1) for d in content_security_policy(public_url).split(";"))
    return directives["connect-src"]


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://exam.school.example", "'self' https://exam.school.example wss://exam.school.example"),
        (
            "https://Exam.School.example:8443/proctor/",
            "'self' https://exam.school.example:8443 wss://exam.school.example:8443",
        ),
        ("http://127.0.0.1:8080", "'self' http://127.0.0.1:8080 ws://127.0.0.1:8080"),
        ("https://[2001:db8::1]:8443", "'self' https://[2001:db8::1]:8443 wss://[2001:db8::1]:8443"),
        ("https://user:pw@exam.example", "'self' https://exam.example wss://exam.example"),
        ("", "'self'"),
    ],
)
def test_connect_src_is_the_public_origin_and_never_any_socket_host(public_url: str, expected: str) -> None:
    assert _connect_src(public_url) == expected
    policy = content_security_policy(public_url)
    assert " ws: " not in policy and " wss: " not in policy and "wss:;" not in policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
