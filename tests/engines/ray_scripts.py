"""Scripts for the mock OpenAI-compatible server (a test double) used by the Ray cluster tests.

Loaded by file path in the mock server's own process (`benchmarks/mock_openai_server.py`),
so they import only its default script. Each is `script(payload) -> reply`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mock_openai_server import default_script

_PART = re.compile(r"part (\d+)")


def _tools(payload: dict[str, Any]) -> list[str]:
    return [(t.get("function") or {}).get("name", "") for t in payload.get("tools") or []]


def _called(payload: dict[str, Any]) -> list[str]:
    return [tc["function"]["name"] for m in payload.get("messages", []) if m.get("role") == "assistant"
            for tc in m.get("tool_calls") or []]


def _tool_texts(payload: dict[str, Any]) -> list[str]:
    return [str(m.get("content") or "") for m in payload.get("messages", []) if m.get("role") == "tool"]


def _plan(subtasks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"tool_calls": [{"name": "plan", "arguments": {"subtasks": subtasks}}]}


def mixed_script(payload: dict[str, Any]) -> dict[str, Any]:
    """Four quick sub-agents (1 tool step) and four slow ones (6 tool steps), then as default."""
    if "plan" in _tools(payload) and "plan" not in _called(payload):
        subtasks = [{"name": f"quick{i}", "task": f"part {i}; STEPS 1", "tools": ["work"]} for i in range(4)]
        subtasks += [{"name": f"slow{i}", "task": f"part {4 + i}; STEPS 6", "tools": ["work"]} for i in range(4)]
        return _plan(subtasks)
    return default_script(payload)


def memory_script(payload: dict[str, Any]) -> dict[str, Any]:
    """Sub-agents write a finding to shared memory, read everything back and answer with it;
    the orchestrator waits, reads the memory itself and finishes with what it read."""
    tools = _tools(payload)
    called = _called(payload)
    results = _tool_texts(payload)
    if "plan" in tools:
        if "plan" not in called:
            return _plan([{"name": f"m{i}", "task": f"part {i}: record your finding", "tools": ["memory_write",
                                                                                              "memory_read"]}
                          for i in range(3)])
        if "wait" not in called:
            return {"tool_calls": [{"name": "wait", "arguments": {}}]}
        if "memory_read" not in called:
            return {"tool_calls": [{"name": "memory_read", "arguments": {"query": "finding"}}]}
        return {"tool_calls": [{"name": "finish", "arguments": {"answer": "memory: " + results[-1]}}]}
    user = "\n".join(str(m.get("content") or "") for m in payload.get("messages", []) if m.get("role") == "user")
    part = int(m.group(1)) if (m := _PART.search(user)) else -1
    if not results:
        return {"reasoning_content": "record it", "tool_calls": [
            {"name": "memory_write", "arguments": {"key": f"finding/{part}", "value": f"value-{part}"}}]}
    if len(results) == 1:
        return {"reasoning_content": "read all", "tool_calls": [{"name": "memory_read", "arguments": {"key": f"finding/{part}"}}]}
    return {"reasoning_content": "answer", "content": f"I read: {results[-1]}"}


def calc_script(payload: dict[str, Any]) -> dict[str, Any]:
    """Sub-agents use the built-in calculator once each, then answer with its result."""
    tools = _tools(payload)
    if "plan" in tools or "finish" in tools:
        if "plan" in tools and "plan" not in _called(payload):
            return _plan([{"name": f"c{i}", "task": f"part {i}: compute {i} * 7", "tools": ["calculator"]}
                          for i in range(3)])
        return default_script(payload)
    user = "\n".join(str(m.get("content") or "") for m in payload.get("messages", []) if m.get("role") == "user")
    part = int(m.group(1)) if (m := _PART.search(user)) else 0
    results = _tool_texts(payload)
    if not results:
        return {"reasoning_content": "compute", "tool_calls": [{"name": "calculator",
                                                                "arguments": {"expression": f"{part} * 7"}}]}
    return {"reasoning_content": "done", "content": f"part {part}: {json.dumps(results[-1])}"}


def compare_script(payload: dict[str, Any]) -> dict[str, Any]:
    """For the compare tests: a swarm plans two sub-agents without tools; else as default."""
    if "plan" in _tools(payload) and "plan" not in _called(payload):
        return _plan([{"name": f"s{i}", "task": f"part {i}; answer", "tools": []} for i in range(2)])
    return default_script(payload)
