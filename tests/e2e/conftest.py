"""Each end-to-end test's wall time, for the table that ends `make test` (scripts/test-times.sh)."""
from __future__ import annotations

import os

import pytest


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    records = os.environ.get("AGENTOPS_TEST_TIMES")
    if not records or report.when != "call":
        return
    name = report.nodeid.split("::", 1)[-1]
    with open(records, "a", encoding="utf-8") as out:
        out.write(f"test\te2e {name}\t{report.duration:.0f}\t{'passed' if report.passed else 'FAILED'}\n")
