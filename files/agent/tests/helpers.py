"""Shared test helpers: metric scraping, free ports, and a real `python -m app` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

AGENT_DIR = Path(__file__).resolve().parents[1]

# Grok's TIMESTAMP_ISO8601, LOGLEVEL, DATA and GREEDYDATA, spelled as Python
# regex: a line that matches this is what Logstash's
#   %{TIMESTAMP_ISO8601:timestamp} %{LOGLEVEL:level} \[%{DATA:component}\] %{GREEDYDATA:message}
# accepts.
GROK_TIMESTAMP_ISO8601 = (
    r"(?:\d\d){1,2}-(?:0?[1-9]|1[0-2])-(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])"
    r"[T ](?:2[0123]|[01]?[0-9]):?(?:[0-5][0-9])(?::?(?:(?:[0-5]?[0-9]|60)(?:[:.,][0-9]+)?))?"
    r"(?:Z|[+-](?:2[0123]|[01]?[0-9])(?::?(?:[0-5][0-9])))?"
)
GROK_LOGLEVEL = (
    r"(?:[Aa]lert|ALERT|[Tt]race|TRACE|[Dd]ebug|DEBUG|[Nn]otice|NOTICE|[Ii]nfo?(?:rmation)?|INFO?(?:RMATION)?"
    r"|[Ww]arn?(?:ing)?|WARN?(?:ING)?|[Ee]rr?(?:or)?|ERR?(?:OR)?|[Cc]rit?(?:ical)?|CRIT?(?:ICAL)?|[Ff]atal"
    r"|FATAL|[Ss]evere|SEVERE|EMERG(?:ENCY)?|[Ee]merg(?:ency)?)"
)
GROK_LINE = (
    rf"^(?P<timestamp>{GROK_TIMESTAMP_ISO8601}) (?P<level>{GROK_LOGLEVEL}) "
    rf"\[(?P<component>.*?)\] (?P<message>.*)$"
)
# Stricter than grok: exactly the documented shape (UTC, milliseconds, Z).
STRICT_LINE = (
    r"^(?P<timestamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) \[(?P<component>[^\]\s]+)\] (?P<message>\S.*)$"
)


def metric_samples(exposition: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    ]


def metric_value(exposition: str, name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 if none)."""
    return sum(
        value for sample_name, sample_labels, value in metric_samples(exposition)
        if sample_name == name and all(sample_labels.get(key) == wanted for key, wanted in labels.items())
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment minus anything that would change the agent's behaviour."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("AGENT_", "DEEPSEEK_", "OPENAI_", "PROMETHEUS_"))
    }
    env.update(extra)
    return env


class AgentProcess:
    """`python -m app` in a subprocess, exactly as systemd and Docker start it."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # The child keeps its own copy of the descriptor; ours can close at once.
        with open(log_path, "wb") as log_file:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app"],
                cwd=AGENT_DIR,
                env=clean_env({"AGENT_HOST": "127.0.0.1", "AGENT_PORT": str(self.port), **env}),
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"agent exited with {self.process.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"agent not ready within {timeout_s}s:\n{self.output()}")

    def terminate(self, timeout_s: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")
