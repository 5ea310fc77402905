"""AWS Lambda entry point (handler ``app.lambda_handler.handler``): the same
application as the HTTP service, driven through ASGI.

Every event goes through the FastAPI app of app.main, so the chain, the
providers, the error kinds, the request id and the log format are the HTTP
service's. Events, as the guide's handler takes them:

- direct: ``{"input": "...", "session_id": ..., "system": ...}`` is a
  ``POST /api/agent`` with that body;
- API Gateway (REST or HTTP API) and function URLs: the request's method, path,
  headers and ``body`` (base64 when ``isBase64Encoded``) are passed as they are,
  so ``GET /ready`` or ``GET /health`` through a function URL work too; a
  ``body`` without a path is a ``POST /api/agent``.

The answer is API Gateway's shape: ``{"statusCode", "headers", "body"}``, with
``x-agent-version`` and ``x-agent-release`` headers so a deploy can tell which
release answered.

The API key is never an environment variable of the function:
``AGENT_API_KEY_SECRET_ID`` names a Secrets Manager secret (its value is the key,
or JSON ``{"api_key": "..."}``) read once per cold start. A secret that cannot
be read fails the cold start with a message naming it, which is what the deploy
reports and rolls back on.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings, SettingsError, load_settings

SECRET_ID_ENV = "AGENT_API_KEY_SECRET_ID"
_KEY_ENV_BY_PROVIDER = {"openai": "OPENAI_API_KEY"}


class ColdStartError(RuntimeError):
    """The function cannot start; the message says what to fix."""


def _api_key_from_secret(secret_id: str) -> str:
    # boto3 is part of every Lambda Python runtime; it is not in the agent's lock.
    import boto3  # pylint: disable=import-outside-toplevel
    from botocore.exceptions import BotoCoreError, ClientError  # pylint: disable=import-outside-toplevel

    try:
        answer = boto3.client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise ColdStartError(f"{SECRET_ID_ENV}: the secret {secret_id!r} cannot be read ({code})") from None
    except BotoCoreError as error:
        raise ColdStartError(f"{SECRET_ID_ENV}: Secrets Manager cannot be reached ({type(error).__name__})") from None
    value = (answer.get("SecretString") or "").strip()
    if value.startswith("{"):
        try:
            value = str(json.loads(value).get("api_key") or "").strip()
        except (ValueError, AttributeError):
            value = ""
    if not value:
        raise ColdStartError(
            f"{SECRET_ID_ENV}: the secret {secret_id!r} holds no key: store the key as the secret's string, "
            'or JSON {"api_key": "..."}'
        )
    return value


def environment_with_key(env: dict[str, str]) -> dict[str, str]:
    """The settings' environment, with the key from Secrets Manager when a secret is named."""
    secret_id = env.get(SECRET_ID_ENV, "").strip()
    if not secret_id:
        return env
    provider = env.get("AGENT_PROVIDER", "deepseek").strip().lower()
    key_name = _KEY_ENV_BY_PROVIDER.get(provider, "DEEPSEEK_API_KEY")
    return {**env, key_name: _api_key_from_secret(secret_id)}


def _request_from_event(event: dict[str, Any]) -> tuple[str, str, str, dict[str, str], bytes]:
    """(method, path, query, headers, body) of a direct, API Gateway or function URL event."""
    if "body" not in event and "httpMethod" not in event and "requestContext" not in event:
        body = json.dumps(event).encode()
        return "POST", "/api/agent", "", {"content-type": "application/json"}, body
    http = (event.get("requestContext") or {}).get("http") or {}
    method = str(http.get("method") or event.get("httpMethod") or "POST").upper()
    path = str(event.get("rawPath") or event.get("path") or "/api/agent")
    query = str(event.get("rawQueryString") or "")
    headers = {str(name).lower(): str(value) for name, value in (event.get("headers") or {}).items()}
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else str(raw).encode()
    if body and "content-type" not in headers:
        headers["content-type"] = "application/json"
    return method, path, query, headers, body


async def _call(app: FastAPI, method: str, path: str, query: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "https",
        "method": method, "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "root_path": "", "client": ("lambda", 0), "server": ("lambda", 443),
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    status, answer_headers, chunks = 500, {}, []

    async def receive() -> dict[str, Any]:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            answer_headers.update({name.decode(): value.decode() for name, value in message.get("headers", [])})
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, answer_headers, b"".join(chunks)


class _Function:
    """The app, started once per execution environment (the cold start)."""

    def __init__(self) -> None:
        try:
            self.settings: Settings = load_settings(environment_with_key(dict(os.environ)))
        except SettingsError as error:
            raise ColdStartError(str(error)) from None
        self.app = create_app(self.settings)
        self.loop = asyncio.new_event_loop()
        self.stack = AsyncExitStack()
        # The lifespan's start-up, as uvicorn runs it: the provider, and ready.
        self.loop.run_until_complete(self.stack.enter_async_context(self.app.router.lifespan_context(self.app)))

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        method, path, query, headers, body = _request_from_event(event if isinstance(event, dict) else {})
        status, answer_headers, answer = self.loop.run_until_complete(
            _call(self.app, method, path, query, headers, body))
        answer_headers.pop("content-length", None)
        answer_headers["x-agent-version"] = self.settings.version
        if self.settings.release:
            answer_headers["x-agent-release"] = self.settings.release
        return {"statusCode": status, "headers": answer_headers, "body": answer.decode("utf-8", "replace")}


_function = _Function() if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else None


def handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:  # pylint: disable=unused-argument
    """The Lambda handler: one event through the app; starts the app here when not on Lambda (tests)."""
    global _function  # pylint: disable=global-statement
    if _function is None:
        _function = _Function()
    return _function(event)
