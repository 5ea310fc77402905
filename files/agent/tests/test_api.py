from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.main import create_app, max_body_bytes
from app.offline_model import count_tokens
from app.settings import load_settings
from tests.conftest import ClientFactory, SettingsFactory


def test_agent_returns_the_contract(offline_client: TestClient) -> None:
    response = offline_client.post("/api/agent", json={"input": "What is an agent?", "session_id": "s-1"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"response", "model", "usage", "latency_ms", "session_id"}
    assert "What is an agent?" in body["response"]
    assert body["model"] == "offline-echo-1"
    assert body["session_id"] == "s-1"
    system_tokens = count_tokens("You are a helpful assistant.")
    assert body["usage"] == {
        "prompt_tokens": system_tokens + count_tokens("What is an agent?"),
        "completion_tokens": count_tokens(body["response"]),
    }
    assert isinstance(body["latency_ms"], float) and body["latency_ms"] >= 0
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_system_override_reaches_the_model(offline_client: TestClient) -> None:
    default = offline_client.post("/api/agent", json={"input": "hi"}).json()
    custom = offline_client.post("/api/agent", json={"input": "hi", "system": "one two three four five six"}).json()
    assert default["usage"]["prompt_tokens"] == count_tokens("You are a helpful assistant.") + 1 == 7
    assert custom["usage"]["prompt_tokens"] == 6 + 1


def test_health_is_liveness_with_version_and_provider(
    make_client: ClientFactory, make_settings: SettingsFactory,
) -> None:
    client = make_client(make_settings(AGENT_VERSION="9.9.9"))
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["version"] == "9.9.9"
    assert body["provider"] == "offline" and body["offline"] is True
    assert "offline" in body["note"]
    assert "release" not in body


def test_health_names_the_release_the_process_was_started_from(
    make_client: ClientFactory, make_settings: SettingsFactory,
) -> None:
    client = make_client(make_settings(AGENT_VERSION="1.4.0", AGENT_RELEASE="1.4.0+3f9c2a1e"))
    assert client.get("/health").json()["release"] == "1.4.0+3f9c2a1e"


def test_ready_when_started(offline_client: TestClient) -> None:
    response = offline_client.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_not_ready_before_startup_finishes() -> None:
    client = TestClient(create_app(load_settings({}), configure_logs=False))  # no `with`: lifespan never ran
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.json()["error"] == "not_started"
    assert client.get("/health").status_code == 200


def test_not_ready_when_provider_lacks_credentials(make_client: ClientFactory, make_settings: SettingsFactory) -> None:
    client = make_client(make_settings(AGENT_PROVIDER="deepseek"))
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["error"] == "provider_not_configured"
    assert "DEEPSEEK_API_KEY" in ready.json()["message"]
    agent = client.post("/api/agent", json={"input": "hi"})
    assert agent.status_code == 503 and agent.json()["error"] == "not_ready"
    assert client.get("/health").json()["provider"] == "deepseek"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"json": {"input": ""}}, 422, "empty_input"),
        ({"json": {"input": "   \n\t"}}, 422, "empty_input"),
        ({"json": {"input": "x" * 51}}, 413, "input_too_long"),
        ({"json": {"input": "ok", "system": "s" * 51}}, 413, "input_too_long"),
        ({"json": {"input": 42}}, 422, "invalid_request"),
        ({"json": {"input": ["a"]}}, 422, "invalid_request"),
        ({"json": {"input": "ok", "session_id": 7}}, 422, "invalid_request"),
        ({"json": {"input": "ok", "session_id": "has spaces"}}, 422, "invalid_session_id"),
        ({"json": {"question": "wrong field"}}, 422, "invalid_request"),
        ({"json": ["input"]}, 422, "invalid_request"),
        ({"content": b'{"input": "unterminated', "headers": {"content-type": "application/json"}}, 400, "invalid_json"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 422, "invalid_request"),
        ({"content": b'{"input": "x"}', "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ],
)
def test_bad_input_gets_a_json_4xx(
    make_client: ClientFactory, make_settings: SettingsFactory, kwargs: dict, status: int, code: str,
) -> None:
    client = make_client(make_settings(AGENT_MAX_INPUT_CHARS=50))
    response = client.post("/api/agent", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert body["message"]
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


def test_input_at_the_limit_is_accepted(make_client: ClientFactory, make_settings: SettingsFactory) -> None:
    client = make_client(make_settings(AGENT_MAX_INPUT_CHARS=50))
    assert client.post("/api/agent", json={"input": "x" * 50}).status_code == 200


def test_validation_errors_do_not_echo_the_payload(offline_client: TestClient) -> None:
    response = offline_client.post("/api/agent", json={"input": {"secret-ish": "payload-marker"}})
    assert response.status_code == 422
    assert "payload-marker" not in response.text
    assert response.json()["details"][0]["field"] == "body.input"


def test_unknown_route_and_wrong_method_are_json(offline_client: TestClient) -> None:
    missing = offline_client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = offline_client.get("/api/agent")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert "POST" in wrong.headers["allow"]


def test_unhandled_error_is_a_json_500_without_trace(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings(), configure_logs=False)

    async def explode() -> None:
        raise RuntimeError("internal detail that must stay inside")

    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode", headers={"X-Request-ID": "trace-me-1"})
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error", "message": "The server hit an unexpected error.", "request_id": "trace-me-1",
    }
    assert response.headers["x-request-id"] == "trace-me-1"
    assert "internal detail" not in response.text


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("abc-123_DEF.456:7", True),
        ("has space", False),
        ("x" * 129, False),
        ("bad\u00e9id", False),
    ],
)
def test_incoming_request_id_is_kept_only_if_sane(offline_client: TestClient, incoming: str, kept: bool) -> None:
    response = offline_client.get("/health", headers={"X-Request-ID": incoming.encode("utf-8")})
    if kept:
        assert response.headers["x-request-id"] == incoming
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_openapi_schema_documents_the_agent_endpoint(offline_client: TestClient) -> None:
    schema = offline_client.get("/openapi.json").json()
    assert "/api/agent" in schema["paths"]
    assert offline_client.get("/docs").status_code == 404


def test_oversized_body_is_refused_before_parsing(make_client: ClientFactory, make_settings: SettingsFactory) -> None:
    settings = make_settings(AGENT_MAX_INPUT_CHARS=50)
    client = make_client(settings)
    limit = max_body_bytes(settings)
    padding = b" " * (limit + 1 - len(b'{"input": "x"}'))
    declared = client.post("/api/agent", content=b'{"input": "x"}' + padding,
                           headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield b'{"input": "'
        for _ in range(limit // 1024 + 1):
            yield b"y" * 1024
        yield b'"}'

    streamed = client.post("/api/agent", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "body_too_large"
    # Worst-case escaping of a body within the character limit still fits.
    emoji = client.post("/api/agent", content=('{"input": "' + "\\ud83d\\ude00" * 50 + '"}').encode(),
                        headers={"content-type": "application/json"})
    assert emoji.status_code == 200
