"""ASGI application factory (uvicorn runs it with --factory in every worker)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import metrics
from app.agent import Agent
from app.api import install_routes
from app.logging_setup import configure_logging
from app.middleware import ObservabilityMiddleware
from app.providers import build_chat_model
from app.settings import Settings, SettingsError, load_settings

log = logging.getLogger("agent.app")


def _initialise(app: FastAPI, settings: Settings) -> None:
    problem = settings.provider_problem()
    app.state.agent = None
    if problem is None:
        try:
            app.state.agent = Agent(settings, build_chat_model(settings))
        except Exception as error:  # noqa: BLE001 - reported through /ready, not a crash loop
            problem = f"could not initialise provider {settings.provider}: {type(error).__name__}"
            app.state.provider_error = problem
    metrics.set_build_info(settings.version, settings.provider)

    if problem is not None:
        log.error("not ready: %s", problem)
    elif settings.provider == "offline":
        why = "no API key configured" if settings.provider_requested == "auto" else "AGENT_PROVIDER=offline"
        log.warning(
            "running OFFLINE (%s): replies come from the deterministic offline model %s, not an LLM",
            why, settings.model,
        )
    log.info(
        "agent started: version=%s provider=%s model=%s pid=%d workers=%d timeout_s=%g max_input_chars=%d",
        settings.version, settings.provider, settings.model, os.getpid(), settings.workers,
        settings.request_timeout_s, settings.max_input_chars,
    )


def max_body_bytes(settings: Settings) -> int:
    """Room for 'input' and 'system' at the character limit, each character
    JSON-escaped to at most 12 bytes (a \\uXXXX surrogate pair), plus headroom."""
    return 2 * 12 * settings.max_input_chars + 64 * 1024


def create_app(settings: Settings | None = None, *, configure_logs: bool = True) -> FastAPI:
    if settings is None:
        try:
            settings = load_settings()
        except SettingsError as error:
            # Reached only when started by a bare `uvicorn --factory`; `python -m app`
            # validates before starting uvicorn.
            print(f"agent: {error}", file=sys.stderr)
            raise SystemExit(2) from None
    if configure_logs:
        configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.forget_dead_workers()
        _initialise(app, settings)
        app.state.ready = True
        yield
        app.state.ready = False
        metrics.forget_this_worker()
        log.info("agent stopped: pid=%d", os.getpid())

    app = FastAPI(
        title="agent",
        version=settings.version,
        lifespan=lifespan,
        docs_url=None,  # the Swagger UI loads assets from a CDN; the schema stays at /openapi.json
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.ready = False
    app.state.agent = None
    app.state.provider_error = None
    install_routes(app)
    app.add_middleware(ObservabilityMiddleware, max_body_bytes=max_body_bytes(settings))
    return app
