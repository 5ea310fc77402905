"""A bounded load generator: POST /api/agent at a fixed rate, each request with its own id, stopping by itself.

Used by the end-to-end tests and bench/rollout_downtime. Every answer is
classified: ok (2xx), refused, reset, timeout, http_5xx, http_4xx or other;
latencies are kept for the percentiles.
"""
from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor


def classify(error: BaseException) -> str:
    """The kind of a failed request, by what the client saw."""
    if isinstance(error, urllib.error.HTTPError):
        return f"http_{error.code // 100}xx"
    reason = getattr(error, "reason", error)
    if isinstance(reason, ConnectionRefusedError):
        return "refused"
    if isinstance(reason, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)):
        return "reset"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timeout"
    return "other"


def ask(url: str, text: str, timeout: float = 30.0) -> tuple[str, float]:
    """One POST /api/agent with a request id of its own: (kind, seconds)."""
    request_id = uuid.uuid4().hex
    request = urllib.request.Request(f"{url}/api/agent", data=json.dumps({"input": f"{text} {request_id}"}).encode(),
                                     headers={"content-type": "application/json", "x-request-id": request_id},
                                     method="POST")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        kind = "ok"
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        kind = classify(error)
    return kind, time.monotonic() - started


class Load:
    """`rate` requests a second to `url` until stopped, or for `limit` seconds at most."""

    def __init__(self, url: str, rate: float = 10.0, limit: float = 900.0, timeout: float = 30.0) -> None:
        self.url, self.interval, self.limit, self.timeout = url, 1.0 / rate, limit, timeout
        self.results: list[tuple[float, str, float]] = []  # (sent at, kind, seconds)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=64)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = self.wall = 0.0

    def _one(self, sent_at: float) -> None:
        kind, seconds = ask(self.url, "load", self.timeout)
        with self.lock:
            self.results.append((sent_at, kind, seconds))

    def _run(self) -> None:
        next_at = self.started
        while not self.stopping.is_set() and next_at - self.started < self.limit:
            self.pool.submit(self._one, next_at - self.started)
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self.thread.join()
        self.pool.shutdown(wait=True)
        self.wall = time.monotonic() - self.started

    @property
    def sent(self) -> int:
        return len(self.results)

    @property
    def failures(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _at, kind, _seconds in self.results:
            if kind != "ok":
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    def percentile(self, fraction: float) -> float:
        latencies = sorted(seconds for _at, kind, seconds in self.results if kind == "ok")
        return latencies[min(len(latencies) - 1, int(fraction * len(latencies)))] if latencies else float("nan")

    def summary(self) -> str:
        return (f"{self.sent} sent, failed {self.failures or 'none'}, p50 {self.percentile(0.5) * 1000:.0f} ms, "
                f"p99 {self.percentile(0.99) * 1000:.0f} ms")
