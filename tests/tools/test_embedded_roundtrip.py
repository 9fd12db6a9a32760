"""A real tool-call round trip: the embedded SmolLM2 model calls `search` on the sample
corpus, the call parses, the tool runs, and its result goes back into the conversation."""

from __future__ import annotations

import pytest

from ponder.core.events import ModelCallFinished, ToolCallEvent, ToolResult
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.registry import model
from ponder.tools import Toolbox, result_message, sample_corpus, search_tools

pytestmark = pytest.mark.slow


async def test_smollm2_calls_search_on_sample_corpus() -> None:
    m = model("smollm2")
    box = Toolbox(search_tools(sample_corpus()))
    messages = [
        Message.system("You can search a document collection with the search tool."),
        Message.user("Who founded Kestrel Freight? Search the documents."),
    ]
    req = ChatRequest(
        messages=messages,
        tools=box.schemas(),
        tool_choice={"type": "function", "function": {"name": "search"}},
        max_tokens=96,
        temperature=0.0,
        seed=1,
    )
    events = [ev async for ev in m.stream(req)]
    finished = [e for e in events if isinstance(e, ModelCallFinished)]
    assert finished, f"model call failed: {events[-1]}"
    calls = finished[-1].message.tool_calls
    assert calls and calls[0].name == "search"
    assert any(isinstance(e, ToolCallEvent) for e in events)
    assert isinstance(calls[0].arguments.get("query"), str) and calls[0].arguments["query"].strip()

    results = [ev async for ev in box.execute(calls[0])]
    result = results[-1]
    assert isinstance(result, ToolResult) and result.call_id == calls[0].id
    assert result.ok, result.content
    msg = result_message(result)
    assert msg.role == "tool" and msg.tool_call_id == calls[0].id

    # the result goes back to the model, which answers (any text: the loop must close)
    follow = ChatRequest(
        messages=[*messages, finished[-1].message, msg], tools=box.schemas(), tool_choice="none", max_tokens=48, temperature=0.0
    )
    events2 = [ev async for ev in m.stream(follow)]
    assert isinstance(events2[-1], ModelCallFinished)
