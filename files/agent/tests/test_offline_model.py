from __future__ import annotations

import asyncio
import time

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from app.agent import Agent
from app.offline_model import OfflineChatModel, count_tokens
from app.settings import load_settings


def test_reply_is_deterministic_and_derived_from_input() -> None:
    model = OfflineChatModel()
    first = model.invoke([HumanMessage("What is an agent?")])
    again = model.invoke([HumanMessage("What is an agent?")])
    other = model.invoke([HumanMessage("What is a tool?")])
    assert first.content == again.content
    assert first.content != other.content
    assert "What is an agent?" in first.content


def test_usage_metadata_counts_prompt_and_reply() -> None:
    messages = [SystemMessage("Be brief."), HumanMessage("hello, world")]
    reply = OfflineChatModel(model_name="offline-test").invoke(messages)
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["input_tokens"] == count_tokens("Be brief.") + count_tokens("hello, world") == 6
    assert reply.usage_metadata["output_tokens"] == count_tokens(reply.content)
    assert reply.usage_metadata["total_tokens"] == 6 + count_tokens(reply.content)
    assert reply.response_metadata["model_name"] == "offline-test"


def test_long_input_is_echoed_only_in_part() -> None:
    reply = OfflineChatModel().invoke([HumanMessage("word " * 1000)])
    assert len(reply.content) < 400


def test_works_in_the_classic_chain() -> None:
    chain = ChatPromptTemplate.from_messages([("system", "{system}"), ("human", "{input}")]) \
        | OfflineChatModel() | StrOutputParser()
    text = chain.invoke({"system": "s", "input": "ping {not a template}"})
    assert isinstance(text, str) and "ping {not a template}" in text


def test_delay_knob_does_not_block_the_event_loop() -> None:
    model = OfflineChatModel(delay_ms=300)

    async def five_at_once() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(model.ainvoke([HumanMessage(str(i))]) for i in range(5)))
        return time.perf_counter() - started

    elapsed = asyncio.run(five_at_once())
    assert 0.3 <= elapsed < 1.0  # concurrent, not 5 x 0.3 s


def test_agent_reports_usage_from_usage_metadata() -> None:
    settings = load_settings({})
    agent = Agent(settings, OfflineChatModel(model_name=settings.model))
    reply = asyncio.run(agent.answer("count these four", system="sys"))
    assert reply.prompt_tokens == count_tokens("sys") + count_tokens("count these four") == 4
    assert reply.completion_tokens == count_tokens(reply.text)
    assert reply.model == "offline-echo-1"
    assert reply.latency_ms >= 0


def test_a_question_can_ask_for_a_slow_answer() -> None:
    model = OfflineChatModel()

    async def answer(text: str) -> float:
        started = time.perf_counter()
        await model.ainvoke([HumanMessage(text)])
        return time.perf_counter() - started

    assert asyncio.run(answer("[offline delay 0.4s] take your time")) >= 0.4
    # Only at the start of the question, and only this one.
    assert asyncio.run(answer("no hurry [offline delay 5s]")) < 0.2
    assert asyncio.run(answer("fast again")) < 0.2
