"""The service as systemd and Docker run it: `python -m app` in its own process."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import GROK_LINE, STRICT_LINE, AgentProcess, metric_value
from tests.openai_stub import OpenAIStub, StubBehaviour

REQUESTS = 40


def test_two_workers_report_correct_totals(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale file from a previous run")
    agent = AgentProcess({"AGENT_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, tmp_path / "out.log")
    try:
        agent.wait_ready()
        # A fresh connection per request lets the kernel spread them over both workers.
        for index in range(REQUESTS):
            response = httpx.post(f"{agent.base_url}/api/agent", json={"input": f"request {index}"}, timeout=10)
            assert response.status_code == 200
        keep_alive_ms = _mean_keep_alive_latency_ms(agent.base_url)
        exposition = httpx.get(f"{agent.base_url}/metrics", timeout=10).text
        pids = {match.group(1) for match in map(re.compile(r"_(\d+)\.db$").search, os.listdir(metrics_dir)) if match}
    finally:
        exit_code = agent.terminate()

    assert metric_value(exposition, "http_requests_total", route="/api/agent", method="POST", status="200") == REQUESTS
    assert metric_value(exposition, "http_request_duration_seconds_count", route="/api/agent") == REQUESTS
    assert metric_value(exposition, "gen_ai_client_operation_duration_seconds_count", error_type="") == REQUESTS
    assert metric_value(exposition, "gen_ai_client_token_usage_count", gen_ai_token_type="output") == REQUESTS
    # Gauges aggregate sensibly: one build-info series, and only the scrape in flight.
    assert [labels for name, labels, _ in _samples(exposition, "agent_build_info")] == [
        {"version": "1.0.0", "provider": "offline"}]
    assert metric_value(exposition, "agent_build_info") == 1
    assert metric_value(exposition, "http_requests_in_flight") == 1
    assert "999999" not in pids, "the stale file was not cleaned at startup"
    assert len(pids) >= 2, f"expected files from two worker processes, got {pids}"
    assert exit_code == 0
    # Nagle's algorithm left on would cost ~40 ms per keep-alive response.
    assert keep_alive_ms < 20, f"{keep_alive_ms:.1f} ms per keep-alive request: TCP_NODELAY is off"

    output = agent.output()
    assert output.count("agent started:") == 2
    for line in output.splitlines():
        assert re.match(GROK_LINE, line) and re.match(STRICT_LINE, line), line
    assert "[server]" in output  # uvicorn's own lines use the same format


def _mean_keep_alive_latency_ms(base_url: str, count: int = 20) -> float:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        client.get("/health")
        started = time.perf_counter()
        for _ in range(count):
            assert client.get("/health").status_code == 200
        return (time.perf_counter() - started) * 1000 / count


def _samples(exposition: str, wanted: str):
    from tests.helpers import metric_samples

    return [sample for sample in metric_samples(exposition) if sample[0] == wanted]


def test_sigterm_finishes_in_flight_requests_then_exits_zero(tmp_path: Path) -> None:
    agent = AgentProcess({
        "AGENT_OFFLINE_DELAY_MS": "2000", "AGENT_SHUTDOWN_TIMEOUT_S": "10",
        # One worker with multiprocess metrics in a directory that does not exist yet.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "not-yet" / "metrics"),
    }, tmp_path / "out.log")
    outcome: dict[str, object] = {}

    def slow_request() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{agent.base_url}/api/agent", json={"input": "take your time"}, timeout=15)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = error

    try:
        agent.wait_ready()
        worker = threading.Thread(target=slow_request)
        worker.start()
        _wait_until_in_flight(agent.base_url, 2)  # the slow call plus this scrape

        # Liveness stays fast while the LLM call is slow.
        started = time.perf_counter()
        assert httpx.get(f"{agent.base_url}/health", timeout=5).status_code == 200
        assert time.perf_counter() - started < 0.5

        agent.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # No longer accepting new connections, while the slow call still runs.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{agent.base_url}/health", timeout=2)
        assert agent.process.poll() is None
        worker.join(timeout=15)
        exit_code = agent.process.wait(timeout=15)
    finally:
        agent.kill()

    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert "take your time" in response.json()["response"]
    assert exit_code == 0
    assert "agent stopped" in agent.output()


def _wait_until_in_flight(base_url: str, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if metric_value(httpx.get(f"{base_url}/metrics", timeout=5).text, "http_requests_in_flight") >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the slow request never started")


def test_api_key_absent_from_process_output_at_debug_level(tmp_path: Path) -> None:
    secret = "sk-proc-SECRET-0a1b2c3d4e5f"
    stub = OpenAIStub(StubBehaviour(status=401, error_message=f"Incorrect API key provided: {secret}")).start()
    agent = AgentProcess({
        "OPENAI_API_KEY": secret, "OPENAI_BASE_URL": f"{stub.url}/v1", "AGENT_LOG_LEVEL": "DEBUG",
        "AGENT_PROVIDER_MAX_RETRIES": "0", "AGENT_LOG_FILE": str(tmp_path / "agent.log"),
    }, tmp_path / "out.log")
    try:
        agent.wait_ready()
        responses = [httpx.post(f"{agent.base_url}/api/agent", json={"input": "hi"}, timeout=10)]
        stub.behaviour = StubBehaviour(status=500, error_message=f"failed for {secret}")
        responses.append(httpx.post(f"{agent.base_url}/api/agent", json={"input": "hi"}, timeout=10))
        stub.behaviour = StubBehaviour()
        responses.append(httpx.post(f"{agent.base_url}/api/agent", json={"input": "hi"}, timeout=10))
    finally:
        agent.terminate()
        stub.stop()

    assert [response.status_code for response in responses] == [502, 502, 200]
    assert stub.received and all(r.headers["authorization"] == f"Bearer {secret}" for r in stub.received)
    output = agent.output()
    file_log = (tmp_path / "agent.log").read_text()
    assert "error_type=auth" in output and "error_type=server" in output
    assert "[DEBUG]" not in output and " DEBUG [" in output  # debug logging really was on
    for text in [output, file_log] + [response.text for response in responses]:
        assert secret not in text
