from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import ClientFactory, SettingsFactory
from tests.helpers import metric_samples, metric_value

AGENT_OK = {"route": "/api/agent", "method": "POST", "status": "200"}
OFFLINE_CHAT = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "offline",
                "gen_ai_request_model": "offline-echo-1"}


def test_exposition_format(offline_client: TestClient) -> None:
    offline_client.get("/health")
    response = offline_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {name for name, _, _ in metric_samples(response.text)}
    for expected in (
        "http_requests_total", "http_request_duration_seconds_bucket", "http_requests_in_flight",
        "agent_build_info",
    ):
        assert expected in names


def test_request_and_llm_metrics_count_real_requests(offline_client: TestClient) -> None:
    before = offline_client.get("/metrics").text
    usages = [
        offline_client.post("/api/agent", json={"input": text}).json()["usage"]
        for text in ("one", "two words", "three small words")
    ]
    after = offline_client.get("/metrics").text

    def delta(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    assert delta("http_requests_total", **AGENT_OK) == 3
    assert delta("http_request_duration_seconds_count", **AGENT_OK) == 3
    assert delta("http_request_duration_seconds_bucket", le="+Inf", **AGENT_OK) == 3
    assert delta("gen_ai_client_operation_duration_seconds_count", error_type="", **OFFLINE_CHAT) == 3
    assert delta("gen_ai_client_token_usage_count", gen_ai_token_type="input", **OFFLINE_CHAT) == 3
    assert delta("gen_ai_client_token_usage_sum", gen_ai_token_type="input", **OFFLINE_CHAT) == sum(
        usage["prompt_tokens"] for usage in usages)
    assert delta("gen_ai_client_token_usage_sum", gen_ai_token_type="output", **OFFLINE_CHAT) == sum(
        usage["completion_tokens"] for usage in usages)
    # The two /metrics scrapes themselves: one counted before the second render.
    assert delta("http_requests_total", route="/metrics", method="GET", status="200") == 1


def test_errors_are_counted_by_status_so_5xx_rate_queries_work(
    make_client: ClientFactory, make_settings: SettingsFactory,
) -> None:
    client = make_client(make_settings(AGENT_PROVIDER="deepseek"))  # no key: /api/agent answers 503
    before = client.get("/metrics").text
    assert client.post("/api/agent", json={"input": "hi"}).status_code == 503
    assert client.post("/api/agent", json={"input": ""}).status_code == 422
    after = client.get("/metrics").text
    five_xx = sum(
        value for name, labels, value in metric_samples(after)
        if name == "http_requests_total" and labels["status"].startswith("5")
    ) - sum(
        value for name, labels, value in metric_samples(before)
        if name == "http_requests_total" and labels["status"].startswith("5")
    )
    assert five_xx == 1


def test_route_label_is_the_template_never_the_raw_path(offline_client: TestClient) -> None:
    before = offline_client.get("/metrics").text
    for suffix in ("a", "b", "c"):
        offline_client.get(f"/no/such/{suffix}")
    offline_client.request("PROPFIND", "/health")
    after = offline_client.get("/metrics").text
    assert metric_value(after, "http_requests_total", route="<unmatched>", status="404") - metric_value(
        before, "http_requests_total", route="<unmatched>", status="404") == 3
    assert metric_value(after, "http_requests_total", route="/health", method="OTHER", status="405") - metric_value(
        before, "http_requests_total", route="/health", method="OTHER", status="405") == 1
    routes = {labels.get("route") for name, labels, _ in metric_samples(after) if name == "http_requests_total"}
    assert not any(route and route.startswith("/no/such") for route in routes)


def test_no_request_or_session_id_becomes_a_label(offline_client: TestClient) -> None:
    offline_client.post(
        "/api/agent", json={"input": "hi", "session_id": "session-unique-4242"},
        headers={"X-Request-ID": "request-unique-4242"},
    )
    exposition = offline_client.get("/metrics").text
    assert "unique-4242" not in exposition


def test_in_flight_gauge_returns_to_zero(offline_client: TestClient) -> None:
    for _ in range(3):
        offline_client.post("/api/agent", json={"input": "hi"})
    # The scrape itself is the only request in flight while it renders.
    assert metric_value(offline_client.get("/metrics").text, "http_requests_in_flight") == 1


def test_build_info_carries_version_and_provider(make_client: ClientFactory, make_settings: SettingsFactory) -> None:
    client = make_client(make_settings(AGENT_VERSION="7.1.0"))
    exposition = client.get("/metrics").text
    assert metric_value(exposition, "agent_build_info", version="7.1.0", provider="offline") == 1
