"""The Lambda handler: the guide's event shapes through the same app as the HTTP service.

Secrets Manager is replaced here by a stand-in boto3 module; the real client
against moto, with the handler run by a Lambda runtime in Docker, is the
collection's tests/lambda layer.
"""

from __future__ import annotations

import base64
import json
import sys
import types
from collections.abc import Iterator

import pytest

from app import lambda_handler
from tests.openai_stub import OpenAIStub


@pytest.fixture
def function(monkeypatch: pytest.MonkeyPatch) -> Iterator[lambda_handler._Function]:
    """A cold start with an environment made by the test (none of the caller's)."""

    def start(**env: str) -> lambda_handler._Function:
        monkeypatch.setattr(lambda_handler.os, "environ", {"AGENT_VERSION": "3.1.0", **env})
        return lambda_handler._Function()

    yield start


def _fake_boto3(monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str]) -> list[str]:
    asked: list[str] = []

    class ClientError(Exception):
        def __init__(self, code: str) -> None:
            super().__init__(code)
            self.response = {"Error": {"Code": code}}

    class SecretsManager:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:  # noqa: N803 - boto3's spelling
            asked.append(SecretId)
            if SecretId not in secrets:
                raise ClientError("ResourceNotFoundException")
            return {"SecretString": secrets[SecretId]}

    boto3 = types.ModuleType("boto3")
    boto3.client = lambda service: SecretsManager()  # type: ignore[attr-defined]
    exceptions = types.ModuleType("botocore.exceptions")
    exceptions.ClientError = ClientError  # type: ignore[attr-defined]
    exceptions.BotoCoreError = type("BotoCoreError", (Exception,), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "boto3", boto3)
    monkeypatch.setitem(sys.modules, "botocore", types.ModuleType("botocore"))
    monkeypatch.setitem(sys.modules, "botocore.exceptions", exceptions)
    return asked


def test_direct_event_is_the_agent_call(function) -> None:
    answer = function(AGENT_RELEASE="3.1.0-abc")({"input": "hello lambda", "session_id": "s-9"})
    assert answer["statusCode"] == 200
    assert answer["headers"]["x-agent-version"] == "3.1.0"
    assert answer["headers"]["x-agent-release"] == "3.1.0-abc"
    assert len(answer["headers"]["x-request-id"]) == 32
    body = json.loads(answer["body"])
    assert "hello lambda" in body["response"] and body["session_id"] == "s-9"


def test_function_url_event_reaches_any_route(function) -> None:
    serve = function()
    ready = serve({"rawPath": "/ready", "requestContext": {"http": {"method": "GET"}}, "headers": {}})
    assert ready["statusCode"] == 200 and json.loads(ready["body"])["version"] == "3.1.0"
    posted = serve({
        "rawPath": "/api/agent", "requestContext": {"http": {"method": "POST"}},
        "headers": {"Content-Type": "application/json"}, "isBase64Encoded": True,
        "body": base64.b64encode(json.dumps({"input": "encoded"}).encode()).decode(),
    })
    assert posted["statusCode"] == 200 and "encoded" in json.loads(posted["body"])["response"]


def test_api_gateway_body_without_path_is_the_agent_call(function) -> None:
    answer = function()({"body": json.dumps({"input": "via gateway"})})
    assert answer["statusCode"] == 200 and "via gateway" in json.loads(answer["body"])["response"]


def test_errors_have_the_http_services_kinds(function) -> None:
    serve = function(AGENT_MAX_INPUT_CHARS="5")
    too_long = serve({"input": "far too long"})
    assert too_long["statusCode"] == 413 and json.loads(too_long["body"])["error"] == "input_too_long"
    wrong_type = serve({"input": 42})
    assert wrong_type["statusCode"] == 422 and json.loads(wrong_type["body"])["error"] == "invalid_request"


def test_bad_settings_fail_the_cold_start_naming_the_variable(function) -> None:
    with pytest.raises(lambda_handler.ColdStartError, match="AGENT_TEMPERATURE"):
        function(AGENT_TEMPERATURE="hot")


def test_key_comes_from_the_secret_and_reaches_the_provider(
    function, monkeypatch: pytest.MonkeyPatch, openai_stub: OpenAIStub,
) -> None:
    asked = _fake_boto3(monkeypatch, {"agent/key": json.dumps({"api_key": "sk-from-secret"})})
    serve = function(AGENT_PROVIDER="deepseek", DEEPSEEK_BASE_URL=openai_stub.url,
                     AGENT_API_KEY_SECRET_ID="agent/key")
    assert asked == ["agent/key"]
    answer = serve({"input": "with a key"})
    assert answer["statusCode"] == 200, answer
    assert openai_stub.received[-1].headers["authorization"] == "Bearer sk-from-secret"
    assert "sk-from-secret" not in json.dumps(answer)


@pytest.mark.parametrize(("secrets", "message"), [
    ({}, "the secret 'agent/key' cannot be read (ResourceNotFoundException)"),
    ({"agent/key": '{"token": "x"}'}, "the secret 'agent/key' holds no key"),
    ({"agent/key": "  "}, "the secret 'agent/key' holds no key"),
])
def test_a_missing_or_wrong_secret_fails_the_cold_start_naming_it(
    function, monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str], message: str,
) -> None:
    _fake_boto3(monkeypatch, secrets)
    with pytest.raises(lambda_handler.ColdStartError) as raised:
        function(AGENT_PROVIDER="deepseek", AGENT_API_KEY_SECRET_ID="agent/key")
    assert message in str(raised.value) and "AGENT_API_KEY_SECRET_ID" in str(raised.value)
