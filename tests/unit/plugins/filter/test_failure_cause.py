"""failure_cause: the line a failure message leads with."""
from __future__ import annotations

import pytest

from ansible_collections.agentops.deploy.plugins.filter.failure_cause import failure_cause

PIP_DISK_FULL = """Collecting fastapi==0.115.0
  Downloading fastapi-0.115.0-py3-none-any.whl (94 kB)
Collecting uvicorn==0.30.6
  Downloading uvicorn-0.30.6-py3-none-any.whl (62 kB)
Installing collected packages: sniffio, idna, h11, anyio, uvicorn, starlette, fastapi
ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device: '/opt/agent/releases/x'

WARNING: You are using pip version 23.0.1; however, version 24.2 is available.
"""

TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "/opt/agent/current/app/__init__.py", line 12, in <module>',
    "    from app.main import create_app",
    "ModuleNotFoundError: No module named 'fastapi'",
    "agent.service: Main process exited, code=exited, status=1/FAILURE",
]


@pytest.mark.parametrize('output, cause', [
    (PIP_DISK_FULL, "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device: "
                    "'/opt/agent/releases/x'"),
    (TRACEBACK, "ModuleNotFoundError: No module named 'fastapi'"),
    ("Step 4/9 : RUN pip install -r requirements.txt\nerror: externally-managed-environment\nmore",
     "error: externally-managed-environment"),
    ("first line\nsecond line", "first line"),
    ("", ""),
    (None, ""),
    ([], ""),
])
def test_the_line_that_says_why_comes_first(output, cause) -> None:
    assert failure_cause(output) == cause


def test_the_last_exception_of_chained_tracebacks_wins() -> None:
    lines = ["KeyError: 'model'", "During handling of the above exception, another exception occurred:",
             "RuntimeError: e2e: this release crashes at import"]
    assert failure_cause(lines) == "RuntimeError: e2e: this release crashes at import"


def test_a_long_line_is_cut() -> None:
    assert len(failure_cause("ValueError: " + "x" * 1000)) == 300


def test_only_an_exception_counts_in_a_service_log() -> None:
    log = ["INFO agent started: version=1.2.0", "ERROR [llm] provider failed", "RuntimeError: boom", "INFO stopping"]
    assert failure_cause(log, exceptions_only=True) == "RuntimeError: boom"
    assert failure_cause(log[:2] + log[3:], exceptions_only=True) == ""
