"""The one JSON error shape every non-2xx response uses.

{"error": "<machine code>", "message": "<for humans>", "request_id": "..."}
Messages are written here, never copied from exceptions, so no stack trace,
provider response or secret can reach a client.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from app.logging_setup import request_id_var


def error_payload(code: str, message: str, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"error": code, "message": message}
    payload.update(extra)
    request_id = request_id_var.get()
    if request_id:
        payload["request_id"] = request_id
    return payload


def error_response(status_code: int, code: str, message: str, *,
                   headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_payload(code, message, **extra), status_code=status_code, headers=headers)
