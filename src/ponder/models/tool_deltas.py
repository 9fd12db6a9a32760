"""Streamed tool calls, assembled the way the servers really send them.

The OpenAI wire format streams a call as fragments keyed by `index`: the id and the function
name once, then the arguments in pieces. Servers differ on the first two, and only the
arguments are fragments everywhere:

* vLLM and SGLang send the id and name once (SGLang then sends `"id": null, "name": null`);
* llama.cpp's Python server (`llama_cpp.server`) and older vLLM named-tool-choice streams
  repeat the full name, and the same id, in every delta;
* some servers omit `index` and tell calls apart by id only.

So a name is *set*, not concatenated: a repeat of the same name changes nothing, a longer name
that extends the current one replaces it (a server sending the name so far), and only a piece
that is neither is appended (a server that splits the name itself, which the OpenAI SDK also
joins). An id is kept from its first appearance.
"""

from __future__ import annotations

from typing import Any

from ..core.messages import ToolCall
from .dialects import Dialect, parse_arguments


def _str(v: Any) -> str:
    if type(v) is not str:
        raise TypeError(f"tool-call field holds {type(v).__name__}, not a string")
    return v


class ToolCallBuffer:
    """One call's fragments until the call is complete."""

    __slots__ = ("id", "name", "args")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name = ""
        self.args: list[str] = []

    def add(self, tc: dict[str, Any]) -> None:
        """One delta. A field of the wrong type raises TypeError (the caller counts the chunk
        as misshapen) rather than corrupting the call."""
        cid = tc.get("id")
        if cid and self.id is None:
            self.id = _str(cid)
        fn = tc.get("function")
        if fn:
            name = fn.get("name")
            if name and _str(name) != self.name:
                if not self.name or name.startswith(self.name):
                    self.name = name
                else:
                    self.name += name
            a = fn.get("arguments")
            if a:
                self.args.append(_str(a))

    def to_call(self, dialect: Dialect, idx: int) -> ToolCall:
        raw = "".join(self.args)
        args, err = parse_arguments(raw)
        cid = self.id or dialect.tool_call_id(f"call_{idx}", self.name, idx)
        return ToolCall(id=cid, name=self.name, arguments=args, raw_arguments=raw, parse_error=err)


class ToolCallAssembly:
    """All the calls of one streamed reply, by index (or by id where a server sends no index)."""

    __slots__ = ("buffers", "_last")

    def __init__(self) -> None:
        self.buffers: dict[int, ToolCallBuffer] = {}
        self._last: int | None = None

    def add(self, tc: dict[str, Any]) -> None:
        idx = tc.get("index")
        if idx is None:
            idx = self._index_without(tc.get("id"))
        else:
            idx = int(idx)
        buf = self.buffers.get(idx)
        if buf is None:
            buf = self.buffers[idx] = ToolCallBuffer()
        self._last = idx
        buf.add(tc)

    def _index_without(self, cid: str | None) -> int:
        """No index: the call with this id, a new call for a new id, else the last call."""
        if cid:
            for i, b in self.buffers.items():
                if b.id == cid:
                    return i
            return max(self.buffers, default=-1) + 1
        return self._last if self._last is not None else 0

    def calls(self, dialect: Dialect) -> list[ToolCall]:
        return [self.buffers[i].to_call(dialect, i) for i in sorted(self.buffers)]
