"""k8s_agent's in-pod probe (roles/k8s_agent/files/probe.py), run as the role runs it: `python -c <source> ...`.

The server here holds its first connections open without answering, as a node's
proxy rule to a pod on its way out does, then answers; the probe must still get
the answer inside its budget.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

PROBE = Path(__file__).resolve().parents[3] / "roles" / "k8s_agent" / "files" / "probe.py"
READY = b'{"status": "ready", "version": "1.1.0"}'


class SilentThenReady:
    """Accepts every connection; the first `silent` get no answer, the rest a 200 from /ready."""

    def __init__(self, silent: int) -> None:
        self.silent = silent
        self.held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection = self.listener.accept()[0]
            except OSError:
                return
            if len(self.held) < self.silent:
                self.held.append(connection)
                continue
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                               + str(len(READY)).encode() + b"\r\nConnection: close\r\n\r\n" + READY)
            connection.close()

    def __enter__(self) -> SilentThenReady:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.listener.close()
        for connection in self.held:
            connection.close()


def probe(*args: str) -> tuple[dict, float]:
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", PROBE.read_text(), *args],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(run.stdout), time.monotonic() - started


def test_a_connection_that_hangs_does_not_spend_the_whole_budget() -> None:
    with SilentThenReady(silent=1) as server:
        answer, elapsed = probe("ready", f"http://127.0.0.1:{server.port}", "5")
    assert answer["ready"]["status"] == 200, answer
    assert answer["ready"]["json"] == {"status": "ready", "version": "1.1.0"}
    assert elapsed < 5, elapsed


def test_the_smoke_mode_waits_for_the_version_past_hanging_connections() -> None:
    with SilentThenReady(silent=2) as server:
        answer = probe("smoke", f"http://127.0.0.1:{server.port}", "8", "1.1.0", "hello")[0]
    assert answer["ready"]["json"]["version"] == "1.1.0", answer
    assert answer["smoke"]["status"] == 200, answer


def test_a_service_that_never_answers_is_reported_within_its_budget() -> None:
    with SilentThenReady(silent=100) as server:
        answer, elapsed = probe("ready", f"http://127.0.0.1:{server.port}", "3")
    assert answer["ready"]["status"] == 0 and "timed out" in answer["ready"]["body"], answer
    assert 2.5 < elapsed < 4.5, elapsed
