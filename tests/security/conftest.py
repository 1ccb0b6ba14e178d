"""tests/security only: Hypothesis must be importable, and the figures the access checks and
fuzz cases counted (tests.support.access.FIGURES) are printed at the end of the session so
docs/reliability.md can cite the numbers of a real run."""

from __future__ import annotations

import json
import os
from typing import Any

try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # fail loudly, never skip: the suite is part of the gate
    raise ImportError(
        f"tests/security needs hypothesis ({exc}); install the dev set-up: pip install -e '.[dev]'"
    ) from exc

from tests.support.access import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("security figures")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {count}")
    target = os.environ.get("PROCTOR_SECURITY_FIGURES")
    if target:
        with open(target, "w", encoding="utf-8") as fh:
            json.dump(dict(FIGURES), fh, indent=2, sort_keys=True)
