"""The agent itself: the classic LangChain chain prompt | chat model | parser.

Token usage is collected by a callback from the model's usage_metadata, so the
chain stays the textbook three-step pipeline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.prompts import ChatPromptTemplate

from app import metrics
from app.providers import classify_llm_error
from app.settings import Settings

log = logging.getLogger("agent.llm")


@dataclass(frozen=True)
class AgentReply:
    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float


class LLMCallError(Exception):
    """The provider failed; kind is one of the bounded kinds from classify_llm_error."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class UsageRecorder(BaseCallbackHandler):
    """Captures usage_metadata and the responding model name from the chat model run."""

    # Runs in the event loop instead of a thread pool: it only copies numbers.
    run_inline = True

    def __init__(self) -> None:
        super().__init__()
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.model_name: str | None = None

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                if not isinstance(generation, ChatGeneration) or not isinstance(generation.message, AIMessage):
                    continue
                usage = generation.message.usage_metadata
                if usage:
                    self.input_tokens = (self.input_tokens or 0) + usage.get("input_tokens", 0)
                    self.output_tokens = (self.output_tokens or 0) + usage.get("output_tokens", 0)
                self.model_name = generation.message.response_metadata.get("model_name") or self.model_name
        if self.model_name is None and response.llm_output:
            self.model_name = response.llm_output.get("model_name")


class Agent:
    def __init__(self, settings: Settings, chat_model: BaseChatModel) -> None:
        self.settings = settings
        self.prompt = ChatPromptTemplate.from_messages([("system", "{system}"), ("human", "{input}")])
        self.chain = self.prompt | chat_model | StrOutputParser()

    async def answer(self, user_input: str, system: str | None = None, session_id: str | None = None) -> AgentReply:
        settings = self.settings
        recorder = UsageRecorder()
        config: dict[str, Any] = {
            "callbacks": [recorder],
            "run_name": "agent",
            # Metadata reaches tracing backends (LangSmith etc.); never metric labels.
            "metadata": {"session_id": session_id} if session_id else {},
        }
        started = time.perf_counter()
        try:
            # The SDK timeout bounds one HTTP attempt; this bounds the whole
            # call, retries included, so a client never waits longer than
            # AGENT_REQUEST_TIMEOUT_S for the LLM.
            text = await asyncio.wait_for(
                self.chain.ainvoke({"input": user_input, "system": system or settings.system_prompt}, config=config),
                timeout=settings.request_timeout_s,
            )
        except Exception as error:  # noqa: BLE001 - every provider failure becomes a bounded kind
            duration = time.perf_counter() - started
            kind = classify_llm_error(error)
            metrics.observe_llm_failure(settings.provider, settings.model, duration, kind)
            log.warning(
                "LLM call failed: provider=%s model=%s error_type=%s exception=%s status=%s duration_ms=%.1f",
                settings.provider, settings.model, kind, type(error).__name__,
                getattr(error, "status_code", "-"), duration * 1000,
            )
            raise LLMCallError(kind) from error
        duration = time.perf_counter() - started
        metrics.observe_llm_success(
            settings.provider, settings.model, duration, recorder.input_tokens, recorder.output_tokens,
        )
        return AgentReply(
            text=text,
            model=recorder.model_name or settings.model,
            prompt_tokens=recorder.input_tokens,
            completion_tokens=recorder.output_tokens,
            latency_ms=round(duration * 1000, 1),
        )
