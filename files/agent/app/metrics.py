"""Prometheus metrics: HTTP RED metrics, OpenTelemetry GenAI client metrics, build info.

Label values are bounded on purpose (route template, method, status, provider,
configured model, error kind): no user, session or request id ever becomes a
label, so series count stays flat however much traffic arrives.

With several uvicorn workers every worker is its own process, so prometheus_client
runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR): each worker writes to
files in that directory and /metrics aggregates them, whichever worker answers.
"""

from __future__ import annotations

import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED_ROUTE = "<unmatched>"
_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# Bucket boundaries recommended by the OpenTelemetry GenAI semantic conventions.
GEN_AI_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
GEN_AI_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
HTTP_DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)

HTTP_LABELS = ("route", "method", "status")
GEN_AI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

http_requests_total = Counter(
    "http_requests", "HTTP requests handled, by route template, method and status code.", HTTP_LABELS,
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds", "Time to handle an HTTP request, in seconds.",
    HTTP_LABELS, buckets=HTTP_DURATION_BUCKETS,
)
http_requests_in_flight = Gauge(
    "http_requests_in_flight", "HTTP requests being handled right now.",
    multiprocess_mode="livesum",
)
gen_ai_client_operation_duration_seconds = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of GenAI client operations (OpenTelemetry gen_ai.client.operation.duration).",
    GEN_AI_LABELS + ("error_type",), buckets=GEN_AI_DURATION_BUCKETS,
)
gen_ai_client_token_usage = Histogram(
    "gen_ai_client_token_usage",
    "Tokens used per GenAI operation (OpenTelemetry gen_ai.client.token.usage).",
    GEN_AI_LABELS + ("gen_ai_token_type",), buckets=GEN_AI_TOKEN_BUCKETS,
)
agent_llm_errors_total = Counter(
    "agent_llm_errors",
    "Failed LLM calls by kind (timeout, rate_limited, server, auth, bad_request, connection, other).",
    ("gen_ai_provider_name", "gen_ai_request_model", "error_type"),
)
agent_build_info = Gauge(
    "agent_build_info", "Always 1; labels identify the running build.",
    ("version", "provider"), multiprocess_mode="max",
)

OPERATION_CHAT = "chat"


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def normalise_method(method: str) -> str:
    method = method.upper()
    return method if method in _KNOWN_METHODS else "OTHER"


def observe_http_request(route: str, method: str, status: int, duration_s: float) -> None:
    labels = (route, normalise_method(method), str(status))
    http_requests_total.labels(*labels).inc()
    http_request_duration_seconds.labels(*labels).observe(duration_s)


def observe_llm_success(provider: str, model: str, duration_s: float,
                        input_tokens: int | None, output_tokens: int | None) -> None:
    gen_ai_client_operation_duration_seconds.labels(OPERATION_CHAT, provider, model, "").observe(duration_s)
    if input_tokens is not None:
        gen_ai_client_token_usage.labels(OPERATION_CHAT, provider, model, "input").observe(input_tokens)
    if output_tokens is not None:
        gen_ai_client_token_usage.labels(OPERATION_CHAT, provider, model, "output").observe(output_tokens)


def observe_llm_failure(provider: str, model: str, duration_s: float, error_type: str) -> None:
    gen_ai_client_operation_duration_seconds.labels(OPERATION_CHAT, provider, model, error_type).observe(duration_s)
    agent_llm_errors_total.labels(provider, model, error_type).inc()


def set_build_info(version: str, provider: str) -> None:
    agent_build_info.labels(version, provider).set(1)


def render_latest() -> tuple[bytes, str]:
    """The exposition body for /metrics, aggregated over workers when needed."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+_(\d+)\.db$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers() -> None:
    """uvicorn restarts crashed workers but has no child-exit hook; without this
    a dead worker's in-flight gauge would be counted for ever."""
    directory = multiprocess_dir()
    if not directory or not os.path.isdir(directory):
        return
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not _process_alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), directory)


def forget_this_worker() -> None:
    directory = multiprocess_dir()
    if directory and os.path.isdir(directory):
        multiprocess.mark_process_dead(os.getpid(), directory)
