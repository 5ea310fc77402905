"""HTTP contract: /api/agent, /health, /ready, /metrics, and the JSON error mapping."""

from __future__ import annotations

import re

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import metrics
from app.agent import Agent, LLMCallError
from app.errors import error_response
from app.providers import ERROR_TIMEOUT
from app.settings import Settings

router = APIRouter()

_SESSION_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


class AgentRequest(BaseModel):
    input: StrictStr = Field(description="The user's message.")
    session_id: StrictStr | None = Field(default=None, description="Caller's conversation id, echoed back.")
    system: StrictStr | None = Field(default=None, description="Overrides AGENT_SYSTEM_PROMPT for this call.")


class Usage(BaseModel):
    prompt_tokens: int | None
    completion_tokens: int | None


class AgentResponse(BaseModel):
    response: str
    model: str
    usage: Usage
    latency_ms: float
    session_id: str | None = None


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _not_ready_reason(request: Request) -> str | None:
    if not getattr(request.app.state, "ready", False):
        return "the application has not finished starting"
    return _settings(request).provider_problem() or getattr(request.app.state, "provider_error", None)


@router.get("/health")
async def health(request: Request) -> dict[str, object]:
    """Liveness: the process answers. Never calls the LLM."""
    settings = _settings(request)
    body: dict[str, object] = {
        "status": "ok",
        "version": settings.version,
        "provider": settings.provider,
        "model": settings.model,
        "offline": settings.provider == "offline",
    }
    if settings.release:
        body["release"] = settings.release
    if settings.provider == "offline" and settings.provider_requested == "auto":
        body["note"] = "no API key configured: replies come from the deterministic offline model"
    return body


@router.get("/ready", response_model=None)
async def ready(request: Request) -> dict[str, object] | JSONResponse:
    """Readiness: initialised and the provider is configured. Never calls the LLM."""
    reason = _not_ready_reason(request)
    settings = _settings(request)
    if reason is not None:
        code = "not_started" if not getattr(request.app.state, "ready", False) else "provider_not_configured"
        return error_response(503, code, reason, status="not_ready", provider=settings.provider)
    return {"status": "ready", "version": settings.version, "provider": settings.provider, "model": settings.model}


@router.get("/metrics")
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render_latest()
    return Response(content=body, media_type=content_type)


@router.post(
    "/api/agent",
    response_model=AgentResponse,
    responses={
        400: {"description": "Malformed JSON"},
        413: {"description": "input or system longer than AGENT_MAX_INPUT_CHARS"},
        422: {"description": "Missing, empty or wrongly typed field"},
        502: {"description": "The LLM provider failed"},
        503: {"description": "Not ready: provider not configured"},
        504: {"description": "The LLM provider did not answer within AGENT_REQUEST_TIMEOUT_S"},
    },
)
async def run_agent(payload: AgentRequest, request: Request) -> AgentResponse | JSONResponse:
    settings = _settings(request)
    if not payload.input.strip():
        return error_response(422, "empty_input", "'input' must contain at least one non-blank character")
    for field_name, value in (("input", payload.input), ("system", payload.system)):
        if value is not None and len(value) > settings.max_input_chars:
            return error_response(
                413, "input_too_long",
                f"'{field_name}' is {len(value)} characters; the limit is {settings.max_input_chars}",
                max_chars=settings.max_input_chars,
            )
    if payload.session_id is not None and not _SESSION_ID.match(payload.session_id):
        return error_response(422, "invalid_session_id", "'session_id' must be 1-128 characters of [A-Za-z0-9._:-]")

    # Checked after the input so a caller's own mistakes are reported as such
    # even while the service cannot answer.
    reason = _not_ready_reason(request)
    agent: Agent | None = getattr(request.app.state, "agent", None)
    if reason is not None or agent is None:
        return error_response(503, "not_ready", reason or "the provider could not be initialised")

    try:
        reply = await agent.answer(payload.input, system=payload.system, session_id=payload.session_id)
    except LLMCallError as error:
        if error.kind == ERROR_TIMEOUT:
            return error_response(
                504, "llm_timeout",
                f"the LLM provider did not answer within {settings.request_timeout_s:g} s", kind=error.kind,
            )
        return error_response(502, "llm_error", f"the LLM provider failed ({error.kind})", kind=error.kind)
    return AgentResponse(
        response=reply.text,
        model=reply.model,
        usage=Usage(prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens),
        latency_ms=reply.latency_ms,
        session_id=payload.session_id,
    )


def _declares_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type == "application/json" or content_type.endswith("+json")


async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    if request.method == "POST" and not _declares_json(request):
        return error_response(
            415, "unsupported_media_type", "send the body as JSON with 'Content-Type: application/json'",
        )
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    # Only location and message: pydantic's 'input' would echo the caller's
    # (possibly huge) payload back.
    details = [
        {"field": ".".join(str(part) for part in problem.get("loc", ())), "problem": problem.get("msg", "")}
        for problem in problems
    ]
    return error_response(422, "invalid_request", "the request body does not match the schema", details=details)


async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_ERROR_CODES.get(error.status_code, "http_error")
    message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
    return error_response(error.status_code, code, message, headers=getattr(error, "headers", None))


def install_routes(app: FastAPI) -> None:
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
