"""The root of the test suite: every fixture comes from a `tests.support` module listed in
`pytest_plugins` (pytest reads that list only here), and tests import helpers from there too.
Directory conftests keep only their directory's hooks."""

from __future__ import annotations

import os
import tempfile

import pytest

# First of all, before any plugin or test module imports the server: runtime-dir lookups
# (platformdirs) must not depend on the session that runs the tests.
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())

# The support modules' asserts (a REST call that must succeed, ...) explain themselves on
# failure as a test's do; this must run before they are imported.
pytest.register_assert_rewrite("tests.support")

pytest_plugins = [
    "tests.support.postgres",
    "tests.support.node",
    "tests.support.live",
    "tests.support.cluster",
    "tests.support.media",
    "tests.support.detection",
    "tests.support.browser",
    "tests.support.access",
    "tests.support.oidc",
    "tests.support.lti_platform",
    "tests.support.lti_records",
    "tests.support.lti_services",
]
