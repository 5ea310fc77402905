from __future__ import annotations

import httpx
import pytest
from langchain_deepseek import ChatDeepSeek
from langchain_openai import ChatOpenAI

from app.offline_model import OfflineChatModel
from app.providers import KEYLESS_PLACEHOLDER, build_chat_model, classify_llm_error
from tests.conftest import ClientFactory, SettingsFactory
from tests.helpers import metric_value
from tests.openai_stub import STUB_COMPLETION_TOKENS, STUB_PROMPT_TOKENS, OpenAIStub, StubBehaviour

OPENAI_KEY = "sk-test-openai-5f2c9d0e1a"
DEEPSEEK_KEY = "sk-test-deepseek-8b7a6c5d4e"


def test_offline_provider_builds_the_offline_model(make_settings: SettingsFactory) -> None:
    model = build_chat_model(make_settings(AGENT_OFFLINE_DELAY_MS=7, AGENT_MODEL="echo-x"))
    assert isinstance(model, OfflineChatModel)
    assert (model.model_name, model.delay_ms) == ("echo-x", 7)


def test_deepseek_provider_builds_chat_deepseek_with_the_key(make_settings: SettingsFactory) -> None:
    model = build_chat_model(make_settings(
        DEEPSEEK_API_KEY=DEEPSEEK_KEY, AGENT_TEMPERATURE=0.1, AGENT_REQUEST_TIMEOUT_S=9, AGENT_PROVIDER_MAX_RETRIES=1,
    ))
    assert isinstance(model, ChatDeepSeek)
    assert model.api_key is not None and model.api_key.get_secret_value() == DEEPSEEK_KEY
    assert model.api_base == "https://api.deepseek.com"
    assert (model.model_name, model.temperature, model.request_timeout, model.max_retries) == (
        "deepseek-chat", 0.1, 9.0, 1,
    )
    assert DEEPSEEK_KEY not in repr(model)


def test_openai_provider_builds_chat_openai_with_base_url(make_settings: SettingsFactory) -> None:
    model = build_chat_model(make_settings(OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_key is not None and model.openai_api_key.get_secret_value() == OPENAI_KEY
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert model.model_name == "gpt-4o-mini"


def test_openai_without_key_uses_a_placeholder_for_keyless_servers(make_settings: SettingsFactory) -> None:
    model = build_chat_model(make_settings(AGENT_PROVIDER="openai", OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert isinstance(model, ChatOpenAI)
    assert model.openai_api_key is not None and model.openai_api_key.get_secret_value() == KEYLESS_PLACEHOLDER


class _StatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(status_code)
        self.status_code = status_code


class APITimeoutError(Exception):
    """Named like the OpenAI SDK's timeout class."""


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), "timeout"),
        (APITimeoutError(), "timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (_StatusError(401), "auth"), (_StatusError(403), "auth"),
        (_StatusError(429), "rate_limited"),
        (_StatusError(500), "server"), (_StatusError(503), "server"),
        (_StatusError(400), "bad_request"),
        (ConnectionRefusedError(), "connection"),
        (ValueError("?"), "other"),
    ],
)
def test_error_classification(error: BaseException, kind: str) -> None:
    assert classify_llm_error(error) == kind


def _openai_settings(make_settings: SettingsFactory, stub: OpenAIStub, **env: object):
    return make_settings(
        OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=f"{stub.url}/v1", AGENT_MODEL="stub-model",
        AGENT_PROVIDER_MAX_RETRIES=0, **env,
    )


def test_openai_round_trip_over_http(
    make_client: ClientFactory, make_settings: SettingsFactory, openai_stub: OpenAIStub,
) -> None:
    client = make_client(_openai_settings(make_settings, openai_stub, AGENT_TEMPERATURE=0.3))
    before = client.get("/metrics").text
    response = client.post("/api/agent", json={"input": "ping over http", "system": "be terse"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["response"] == "stub says: ping over http"
    assert body["model"] == "stub-model"
    assert body["usage"] == {"prompt_tokens": STUB_PROMPT_TOKENS, "completion_tokens": STUB_COMPLETION_TOKENS}

    [request] = openai_stub.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.body["model"] == "stub-model"
    assert request.body["temperature"] == 0.3
    assert request.body["messages"] == [
        {"role": "system", "content": "be terse"},
        {"role": "user", "content": "ping over http"},
    ]

    after = client.get("/metrics").text
    labels = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "stub-model"}
    for token_type, tokens in (("input", STUB_PROMPT_TOKENS), ("output", STUB_COMPLETION_TOKENS)):
        delta = metric_value(after, "gen_ai_client_token_usage_sum", gen_ai_token_type=token_type, **labels) \
            - metric_value(before, "gen_ai_client_token_usage_sum", gen_ai_token_type=token_type, **labels)
        assert delta == tokens


def test_deepseek_round_trip_through_overridden_base_url(
    make_client: ClientFactory, make_settings: SettingsFactory, openai_stub: OpenAIStub,
) -> None:
    client = make_client(make_settings(
        DEEPSEEK_API_KEY=DEEPSEEK_KEY, DEEPSEEK_BASE_URL=openai_stub.url, AGENT_PROVIDER_MAX_RETRIES=0,
    ))
    response = client.post("/api/agent", json={"input": "hello deepseek"})
    assert response.status_code == 200, response.text
    assert response.json()["response"] == "stub says: hello deepseek"
    assert response.json()["model"] == "deepseek-chat"
    [request] = openai_stub.received
    assert request.path == "/chat/completions"
    assert request.headers["authorization"] == f"Bearer {DEEPSEEK_KEY}"
    assert client.get("/health").json()["provider"] == "deepseek"


@pytest.mark.parametrize(
    ("behaviour", "status", "code", "kind"),
    [
        (StubBehaviour(status=500), 502, "llm_error", "server"),
        (StubBehaviour(status=429), 502, "llm_error", "rate_limited"),
        (StubBehaviour(status=401, error_message=f"Incorrect API key provided: {OPENAI_KEY}"),
         502, "llm_error", "auth"),
        (StubBehaviour(delay_s=1.5), 504, "llm_timeout", "timeout"),
    ],
    ids=["server", "rate_limited", "auth", "timeout"],
)
def test_provider_failures_map_to_gateway_errors_and_metrics(
    make_client: ClientFactory, make_settings: SettingsFactory, openai_stub: OpenAIStub,
    behaviour: StubBehaviour, status: int, code: str, kind: str,
) -> None:
    openai_stub.behaviour = behaviour
    client = make_client(_openai_settings(make_settings, openai_stub, AGENT_REQUEST_TIMEOUT_S=0.5))
    labels = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "stub-model", "error_type": kind}
    before = client.get("/metrics").text

    response = client.post("/api/agent", json={"input": "fail please"})

    assert response.status_code == status
    body = response.json()
    assert (body["error"], body["kind"]) == (code, kind)
    assert OPENAI_KEY not in response.text
    assert "stub failure" not in response.text and "Traceback" not in response.text
    after = client.get("/metrics").text
    assert metric_value(after, "agent_llm_errors_total", **labels) - metric_value(
        before, "agent_llm_errors_total", **labels) == 1
    assert metric_value(after, "gen_ai_client_operation_duration_seconds_count", **labels) - metric_value(
        before, "gen_ai_client_operation_duration_seconds_count", **labels) == 1
    route = {"route": "/api/agent", "method": "POST", "status": str(status)}
    assert metric_value(after, "http_requests_total", **route) - metric_value(
        before, "http_requests_total", **route) == 1


def test_transient_server_error_is_retried_when_configured(
    make_client: ClientFactory, make_settings: SettingsFactory, openai_stub: OpenAIStub,
) -> None:
    openai_stub.behaviour = StubBehaviour(status=503, fail_times=1)
    settings = make_settings(
        OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=f"{openai_stub.url}/v1", AGENT_PROVIDER_MAX_RETRIES=1,
    )
    response = make_client(settings).post("/api/agent", json={"input": "second time lucky"})
    assert response.status_code == 200
    assert len(openai_stub.received) == 2


def test_unreachable_provider_is_a_502_connection_error(
    make_client: ClientFactory, make_settings: SettingsFactory,
) -> None:
    from tests.helpers import free_port

    settings = make_settings(
        OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=f"http://127.0.0.1:{free_port()}/v1", AGENT_PROVIDER_MAX_RETRIES=0,
    )
    response = make_client(settings).post("/api/agent", json={"input": "anyone there?"})
    assert response.status_code == 502
    assert response.json()["kind"] == "connection"
