"""Each end-to-end, Kubernetes and Lambda test's wall time, for the table that ends `make test` (scripts/test-times.sh).

Only those layers: their tests take minutes each, and a slow one should show.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

TIMED_LAYERS = ("e2e", "k8s", "lambda")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    records = os.environ.get("AGENTOPS_TEST_TIMES")
    layer = Path(report.fspath).parent.name
    if not records or report.when != "call" or layer not in TIMED_LAYERS:
        return
    name = report.nodeid.split("::", 1)[-1]
    with open(records, "a", encoding="utf-8") as out:
        out.write(f"test\t{layer} {name}\t{report.duration:.0f}\t{'passed' if report.passed else 'FAILED'}\n")
