"""Per-request plumbing as plain ASGI middleware: request id, metrics, access log,
and a last-resort JSON 500 so no stack trace ever reaches a client.

Plain ASGI rather than BaseHTTPMiddleware: no extra task per request and the
route template chosen by the router is visible in the shared scope afterwards.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.errors import error_payload
from app.logging_setup import request_id_var

access_log = logging.getLogger("agent.access")
error_log = logging.getLogger("agent.http")

REQUEST_ID_HEADER = "x-request-id"
# Accept a caller's id only if it cannot break a log line or a header.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def pick_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


def _logged_path(scope: Scope) -> str:
    # raw_path keeps percent-encoding, so a crafted path cannot inject spaces
    # or fake key=value pairs into the access line. The query string is left
    # out: it may carry tokens.
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes) and raw_path:
        return raw_path.split(b"?", 1)[0].decode("ascii", "backslashreplace")
    return scope.get("path", "")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        # Checked before parsing: a JSON body is read whole into memory, so the
        # character limit on 'input' alone would not stop a huge upload.
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = pick_request_id(scope)
        context_token = request_id_var.set(request_id)
        response: dict[str, Any] = {"status": 500, "started": False, "body_refused": False}

        async def send_with_request_id(message: Message) -> None:
            if response["body_refused"]:
                return  # the 413 already went out; whatever the app answers is moot
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["started"] = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        received_bytes = 0

        async def refuse_body() -> None:
            await self._send_json(send_with_request_id, 413, error_payload(
                "body_too_large", f"the request body exceeds {self.max_body_bytes} bytes"))
            response["body_refused"] = True

        async def receive_within_limit() -> Message:
            # Frameworks turn exceptions raised here into their own 400, so
            # answer 413 directly and tell the app the client has gone.
            nonlocal received_bytes
            if response["body_refused"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.max_body_bytes:
                    await refuse_body()
                    return {"type": "http.disconnect"}
            return message

        metrics.http_requests_in_flight.inc()
        started = time.perf_counter()
        try:
            declared = _declared_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                await refuse_body()
            else:
                await self.app(scope, receive_within_limit, send_with_request_id)
        except Exception:  # noqa: BLE001 - the safety net for anything unhandled
            if response["body_refused"]:
                return  # the app tripped over the "disconnect" it was handed: expected
            error_log.exception("unhandled error while serving %s %s", scope.get("method"), _logged_path(scope))
            response["status"] = 500
            if not response["started"]:
                await self._send_json(send_with_request_id, 500, error_payload(
                    "internal_error", "The server hit an unexpected error."))
        finally:
            duration = time.perf_counter() - started
            metrics.http_requests_in_flight.dec()
            route = route_template(scope)
            method = metrics.normalise_method(scope.get("method", "OTHER"))
            metrics.observe_http_request(route, method, response["status"], duration)
            client = scope.get("client")
            access_log.info(
                "method=%s path=%s status=%d duration_ms=%.1f client=%s",
                method, _logged_path(scope), response["status"], duration * 1000,
                client[0] if client else "-",
                extra={"fields": {
                    "method": method,
                    "path": _logged_path(scope),
                    "route": route,
                    "status": response["status"],
                    "duration_ms": round(duration * 1000, 1),
                    "client": client[0] if client else None,
                }},
            )
            request_id_var.reset(context_token)

    @staticmethod
    async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
