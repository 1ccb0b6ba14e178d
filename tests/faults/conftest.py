"""tests/faults only: a summary of what each fault measured (the cluster fixtures, a real
3-node cluster behind Nginx per module, come from tests.support.cluster like everywhere)."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.faults.figures import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault figures")
    for fault, figures in FIGURES.items():
        terminalreporter.write_line(f"{fault}:")
        for name, value in figures.items():
            terminalreporter.write_line(f"    {name}: {value}")
    target = os.environ.get("PROCTOR_FAULT_FIGURES")
    if target:
        with open(target, "w", encoding="utf-8") as fh:
            json.dump(FIGURES, fh, indent=2, sort_keys=True, default=str)
