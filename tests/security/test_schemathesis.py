"""Schemathesis against the live `/api/openapi.json`: positive and negative cases for every
operation, as the admin, with random ids and with real ones; no answer may be a 5xx, and
every 4xx carries the one error shape."""

from __future__ import annotations

import asyncio
import json
import shlex
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.access import FIGURES, World, error_shape_problem, fuzz_settings, require
from tests.support.node import ADMIN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MAX_EXAMPLES = 40
# Into the interpreter running the tests, whichever checkout or venv that is.
INSTALL = f"{shlex.quote(sys.executable)} -m pip install 'schemathesis>=4' (it belongs in the `dev` extra)"


def run_schemathesis(url: str, ids: dict[str, str]) -> tuple[int, list[str]]:
    """Synchronous (requests-based); runs in a worker thread while the loop serves."""
    schemathesis = require("schemathesis", INSTALL)
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(url + "/api/openapi.json")
    headers = {"Authorization": f"Bearer {ADMIN}"}
    failures: list[str] = []
    cases = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # check() runs right below, within this iteration, so `operation` is the current one.
            @settings(**fuzz_settings(MAX_EXAMPLES))
            @given(case=operation.as_strategy(generation_mode=mode), real_ids=st.booleans())
            def check(case: Any, real_ids: bool) -> None:
                nonlocal cases
                cases += 1
                if real_ids and case.path_parameters and operation.method.upper() != "DELETE":  # noqa: B023
                    # Real ids let the body reach the handler instead of stopping at 404.
                    case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
                response = case.call(base_url=url, headers=headers, timeout=30)
                case.validate_response(response, checks=[not_a_server_error], headers=headers)
                if 400 <= response.status_code < 500:
                    try:
                        problem = error_shape_problem(response.json())
                    except ValueError:
                        problem = f"not JSON: {response.text[:200]!r}"
                    assert problem is None, f"{operation.label} {response.status_code}: {problem}"  # noqa: B023

            try:
                check()
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    return cases, failures


async def test_schemathesis_no_server_errors(world: World) -> None:
    require("schemathesis", INSTALL)
    cases, failures = await asyncio.to_thread(run_schemathesis, world.live.url, world.ids)
    FIGURES["fuzz cases: schemathesis"] += cases
    assert cases > 0
    assert not failures, f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


def test_openapi_document_is_loadable() -> None:
    """The document Schemathesis reads is valid JSON with every route (also offline)."""
    from server.http import openapi
    from server.http.api import ROUTES

    document = openapi.build(ROUTES, "test")
    json.dumps(document)
    require("schemathesis", INSTALL).openapi.from_dict(document)
