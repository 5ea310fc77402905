from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest

from app.logging_setup import JsonFormatter, TextFormatter, component_of
from tests.conftest import ClientFactory, SettingsFactory
from tests.helpers import GROK_LINE, STRICT_LINE
from tests.openai_stub import OpenAIStub, StubBehaviour

pytestmark = pytest.mark.usefixtures("restore_logging")


def _record(message: str, name: str = "agent.api", level: int = logging.INFO, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, exc_info)


def test_text_line_matches_the_logstash_grok_pattern() -> None:
    line = TextFormatter().format(_record("hello world"))
    grok = re.match(GROK_LINE, line)
    assert grok and grok["component"] == "api" and grok["message"] == "hello world"
    assert re.match(STRICT_LINE, line)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO \[api\] hello world$", line)


def test_every_level_is_a_grok_loglevel() -> None:
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        assert re.match(GROK_LINE, TextFormatter().format(_record("x", level=level)))


def test_multi_line_messages_and_tracebacks_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    line = TextFormatter().format(_record("first\nsecond", exc_info=exc_info))
    assert "\n" not in line
    assert "first\\nsecond" in line and "Traceback" in line and "ValueError: boom" in line
    assert re.match(STRICT_LINE, line)


def test_secrets_are_redacted_whatever_logs_them() -> None:
    secret = "sk-live-abcdef123456"
    for formatter in (TextFormatter(secrets=[secret]), JsonFormatter(secrets=[secret])):
        line = formatter.format(_record(f"header Authorization: Bearer {secret}"))
        assert secret not in line and "[REDACTED]" in line


def test_component_names() -> None:
    assert component_of("agent.access") == "access"
    assert component_of("uvicorn.error") == "server"
    assert component_of("httpx._client") == "httpx"


def test_text_access_log_from_real_requests(
    tmp_path: Path, make_client: ClientFactory, make_settings: SettingsFactory,
) -> None:
    log_file = tmp_path / "agent.log"
    client = make_client(make_settings(AGENT_LOG_FILE=log_file), configure_logs=True)
    response = client.post("/api/agent", json={"input": "log me"}, headers={"X-Request-ID": "req-abc.123"})
    client.get("/a%0Aforged%20line")
    lines = log_file.read_text().splitlines()

    assert lines, "nothing was logged"
    for line in lines:
        assert re.match(GROK_LINE, line), line
        assert re.match(STRICT_LINE, line), line
    assert any("[app]" in line and "OFFLINE" in line and line.split()[1] == "WARNING" for line in lines)
    access = [line for line in lines if "[access]" in line]
    assert any(
        re.search(r"method=POST path=/api/agent status=200 duration_ms=\d+\.\d client=\S+ "
                  r"request_id=req-abc\.123$", line)
        for line in access
    ), access
    assert response.headers["x-request-id"] == "req-abc.123"
    assert any("path=/a%0Aforged%20line status=404" in line for line in access)


def test_json_lines(tmp_path: Path, make_client: ClientFactory, make_settings: SettingsFactory) -> None:
    log_file = tmp_path / "agent.jsonl"
    client = make_client(make_settings(AGENT_LOG_FILE=log_file, AGENT_LOG_FORMAT="json"), configure_logs=True)
    request_id = client.post("/api/agent", json={"input": "json please"}).headers["x-request-id"]
    documents = [json.loads(line) for line in log_file.read_text().splitlines()]
    for document in documents:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", document["timestamp"])
        assert document["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        assert document["component"] and document["message"]
    [access] = [d for d in documents if d["component"] == "access" and d.get("request_id") == request_id]
    assert (access["method"], access["path"], access["route"], access["status"]) == (
        "POST", "/api/agent", "/api/agent", 200)
    assert access["duration_ms"] >= 0


def test_api_key_never_reaches_logs_or_responses(
    tmp_path: Path, make_client: ClientFactory, make_settings: SettingsFactory, openai_stub: OpenAIStub,
) -> None:
    secret = "sk-proj-SECRET-do-not-log-9f8e7d"
    log_file = tmp_path / "agent.log"
    client = make_client(make_settings(
        OPENAI_API_KEY=secret, OPENAI_BASE_URL=f"{openai_stub.url}/v1", AGENT_PROVIDER_MAX_RETRIES=0,
        AGENT_LOG_LEVEL="DEBUG", AGENT_LOG_FILE=log_file, AGENT_REQUEST_TIMEOUT_S=0.5,
    ), configure_logs=True)
    bodies = []
    for behaviour in (
        StubBehaviour(status=401, error_message=f"Incorrect API key provided: {secret}"),
        StubBehaviour(status=500, error_message=f"upstream exploded while using {secret}"),
        StubBehaviour(delay_s=1.0),
        StubBehaviour(),
    ):
        openai_stub.behaviour = behaviour
        bodies.append(client.post("/api/agent", json={"input": "hi"}).text)
    bodies += [client.get(path).text for path in ("/health", "/ready", "/metrics")]

    assert all(request.headers["authorization"] == f"Bearer {secret}" for request in openai_stub.received)
    logged = log_file.read_text()
    assert "LLM call failed" in logged and "error_type=auth" in logged  # the errors really were logged
    assert secret not in logged
    assert not any(secret in body for body in bodies)
