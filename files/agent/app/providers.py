"""Chat model construction per provider, and classification of provider errors.

Provider SDKs are imported lazily: the offline provider then starts without
loading the OpenAI client stack, which matters for worker start-up time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from app.offline_model import OfflineChatModel
from app.settings import Settings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

# Sent when an OpenAI-compatible server (vLLM, Ollama...) needs no key: the
# OpenAI client refuses to start without one.
KEYLESS_PLACEHOLDER = "no-key-required"

ERROR_TIMEOUT = "timeout"
ERROR_RATE_LIMITED = "rate_limited"
ERROR_SERVER = "server"
ERROR_AUTH = "auth"
ERROR_BAD_REQUEST = "bad_request"
ERROR_CONNECTION = "connection"
ERROR_OTHER = "other"


def build_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model for settings.provider; call only when provider_problem() is None."""
    if settings.provider == "offline":
        return OfflineChatModel(model_name=settings.model, delay_ms=settings.offline_delay_ms)
    if settings.provider == "deepseek":
        from langchain_deepseek import ChatDeepSeek

        assert settings.deepseek_api_key is not None
        return ChatDeepSeek(
            model=settings.model,
            api_key=settings.deepseek_api_key,
            # The field name, not its newer alias base_url: langchain-deepseek
            # 1.0 has no alias and would silently ignore base_url.
            api_base=settings.deepseek_base_url,
            temperature=settings.temperature,
            timeout=settings.request_timeout_s,
            max_retries=settings.provider_max_retries,
        )
    if settings.provider == "openai":
        from langchain_openai import ChatOpenAI
        from pydantic import SecretStr

        return ChatOpenAI(
            model=settings.model,
            api_key=settings.openai_api_key or SecretStr(KEYLESS_PLACEHOLDER),
            base_url=settings.openai_base_url,
            temperature=settings.temperature,
            timeout=settings.request_timeout_s,
            max_retries=settings.provider_max_retries,
            # Chat Completions is what every OpenAI-compatible server speaks.
            use_responses_api=False,
        )
    raise ValueError(f"unknown provider {settings.provider!r}")


def _status_code(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return status
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def classify_llm_error(error: BaseException) -> str:
    """A bounded error kind, used as a metric label and in the client-facing error body.

    Duck-typed on purpose: the OpenAI SDK (used by both ChatOpenAI and
    ChatDeepSeek) and httpx expose status codes and timeout classes this way,
    and it keeps working whichever SDK major version is installed.
    """
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in type(error).__name__:
        return ERROR_TIMEOUT
    status = _status_code(error)
    if status is not None:
        if status in (401, 403):
            return ERROR_AUTH
        if status == 429:
            return ERROR_RATE_LIMITED
        if status == 408:
            return ERROR_TIMEOUT
        if status >= 500:
            return ERROR_SERVER
        if 400 <= status < 500:
            return ERROR_BAD_REQUEST
    if "Connection" in type(error).__name__ or isinstance(error, ConnectionError):
        return ERROR_CONNECTION
    return ERROR_OTHER
