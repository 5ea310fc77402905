from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator

# prometheus_client picks single- or multi-process storage at import time;
# the in-process tests use the plain registry whatever the caller's shell has.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings import Settings, load_settings  # noqa: E402
from tests.openai_stub import OpenAIStub  # noqa: E402

SettingsFactory = Callable[..., Settings]
ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_settings() -> SettingsFactory:
    """Settings from an explicit environment only: the caller's shell cannot leak in."""

    def make(**env: object) -> Settings:
        return load_settings({name: str(value) for name, value in env.items()})

    return make


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    clients: list[TestClient] = []

    def make(settings: Settings, *, configure_logs: bool = False) -> TestClient:
        client = TestClient(create_app(settings, configure_logs=configure_logs), raise_server_exceptions=False)
        client.__enter__()  # runs the lifespan, as uvicorn would
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def offline_client(make_client: ClientFactory, make_settings: SettingsFactory) -> TestClient:
    return make_client(make_settings())


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    stub = OpenAIStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Tests that install the real logging config put the previous one back."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in saved_handlers:
            handler.close()
    root.handlers, root.level = saved_handlers, saved_level
