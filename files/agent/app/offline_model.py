"""A deterministic chat model that needs no network and no key.

It lets the lab, the tests and the benchmarks exercise the whole service
(chain, usage accounting, metrics) anywhere. Same input, same reply.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_ECHO_LIMIT = 200
# A question that opens with "[offline delay 20s]" is answered that much
# later: one slow answer among fast ones, as a long LLM generation is (the
# deploy tests send one just before a restart). At most 10 minutes.
_DELAY_MARK = re.compile(r"^\[offline delay (\d+(?:\.\d+)?)s\]")
_DELAY_LIMIT_S = 600.0


def count_tokens(text: str) -> int:
    """A rough word-and-punctuation count: close enough to a tokenizer for load figures."""
    return len(_TOKEN.findall(text))


def _text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    # Multi-part content: keep the text parts only.
    return " ".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _last_question(messages: list[BaseMessage]) -> str:
    """The text of the last user message, empty when there is none."""
    user_texts = [_text_of(message) for message in messages if isinstance(message, HumanMessage)]
    return user_texts[-1] if user_texts else ""


class OfflineChatModel(BaseChatModel):
    """Answers with a reply derived from the last user message and reports usage_metadata."""

    model_name: str = "offline-echo-1"
    delay_ms: int = 0

    @property
    def _llm_type(self) -> str:
        return "offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _delay_s(self, messages: list[BaseMessage]) -> float:
        """The model's delay, or the one the last user message asks for."""
        asked = _DELAY_MARK.match(_last_question(messages).strip())
        return min(float(asked.group(1)), _DELAY_LIMIT_S) if asked else self.delay_ms / 1000

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        question = _last_question(messages)
        fingerprint = hashlib.sha256(question.encode("utf-8")).hexdigest()[:12]
        excerpt = question if len(question) <= _ECHO_LIMIT else question[:_ECHO_LIMIT] + "..."
        reply = (
            f"[offline model {self.model_name}] I received {count_tokens(question)} tokens "
            f"(fingerprint {fingerprint}). You asked: {excerpt}"
        )
        input_tokens = sum(count_tokens(_text_of(message)) for message in messages)
        output_tokens = count_tokens(reply)
        usage = UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
        message = AIMessage(
            content=reply,
            usage_metadata=usage,
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message)],
            llm_output={"model_name": self.model_name},
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        delay_s = self._delay_s(messages)
        if delay_s:
            time.sleep(delay_s)
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Sleep without blocking the event loop, like a real network call, so
        # the delay knob models concurrency faithfully.
        delay_s = self._delay_s(messages)
        if delay_s:
            await asyncio.sleep(delay_s)
        return self._result(messages)
