"""Fault tests: the cluster fixtures of tests/cluster (a real 3-node cluster behind Nginx,
its own per module) and a summary of what each fault measured."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.cluster.conftest import cluster, people  # noqa: F401  (fixtures for test_cluster_faults)

from .figures import FIGURES


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
