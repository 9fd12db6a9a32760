"""Shared memory: a blackboard every agent of a swarm reads and writes through tools.

Each entry keeps its provenance (who wrote it, when, at which step) because the
orchestrator has to weigh claims by source and the trajectory export has to credit
them. What enters any one context is capped (`budget_chars`): past the cap values are
truncated and the text says so, so a model never mistakes a clipped view for the whole.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ...core.events import MemoryWrite
from ...tools.base import Tool, ToolFailure

DEFAULT_BUDGET_CHARS = 4_000


@dataclass(slots=True)
class Entry:
    key: str
    value: str
    agent: str
    step: int | None
    ts: float = field(default_factory=time.time)
    version: int = 1


_WORD = re.compile(r"\w+")


class Blackboard:
    """Key → latest entry, plus the full write history (for provenance and export)."""

    def __init__(self, budget_chars: int = DEFAULT_BUDGET_CHARS, emit: Callable[[MemoryWrite], None] | None = None):
        self.budget_chars = budget_chars
        self.entries: dict[str, Entry] = {}
        self.history: list[Entry] = []
        self._emit = emit

    def detach(self) -> None:
        """Stop reporting writes (the owner's run is over; this drops the reference back to it)."""
        self._emit = None

    def write(self, key: str, value: str, *, agent: str, step: int | None = None, quiet: bool = False) -> Entry:
        """Store a value (a new version of its key). `quiet`: replaying a journal, not an event."""
        key = key.strip()
        if not key:
            raise ValueError("memory key must be a non-empty string")
        old = self.entries.get(key)
        e = Entry(key=key, value=value, agent=agent, step=step, version=(old.version + 1) if old else 1)
        self.entries[key] = e
        self.history.append(e)
        if self._emit is not None and not quiet:
            self._emit(MemoryWrite(agent=agent, key=key, value=value, step=step))
        return e

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key.strip())

    def search(self, query: str) -> list[Entry]:
        """Entries ranked by how many query words occur in key or value (substring match first)."""
        q = query.strip().lower()
        if not q:
            return list(self.entries.values())
        words = set(_WORD.findall(q))
        scored: list[tuple[float, float, Entry]] = []
        for e in self.entries.values():
            hay = f"{e.key} {e.value}".lower()
            score = 10.0 if q in hay else 0.0
            score += sum(1 for w in words if w in hay)
            if score > 0:
                scored.append((score, e.ts, e))
        scored.sort(key=lambda t: (-t[0], -t[1]))
        return [e for _, _, e in scored]

    @staticmethod
    def _line(e: Entry) -> str:
        step = f", step {e.step}" if e.step is not None else ""
        return f"- {e.key} (by {e.agent}{step}): {e.value}"

    def render(self, entries: list[Entry] | None = None, budget_chars: int | None = None) -> str:
        """The entries as text, at most `budget_chars` long; a clipped view says it is clipped."""
        entries = list(self.entries.values()) if entries is None else entries
        budget = self.budget_chars if budget_chars is None else budget_chars
        if not entries:
            return "(shared memory is empty)"
        lines: list[str] = []
        used = 0
        shown = 0
        clipped_values = 0
        per_entry = max(80, budget // max(1, len(entries)))
        for e in entries:
            line = self._line(e)
            if len(line) > per_entry and len(entries) > 1:
                line = line[:per_entry] + f"… [{len(e.value)} chars; memory_read(key={e.key!r}) for all]"
                clipped_values += 1
            if used + len(line) > budget:
                if shown == 0:  # one huge entry: show its head rather than nothing
                    line = line[: max(0, budget - 60)] + "… [truncated]"
                    lines.append(line)
                    shown += 1
                    clipped_values += 1
                break
            lines.append(line)
            used += len(line) + 1
            shown += 1
        notes = []
        if shown < len(entries):
            notes.append(f"showing {shown} of {len(entries)} entries")
        if clipped_values:
            notes.append(f"{clipped_values} values shortened")
        if notes:
            lines.append(f"[memory view truncated to {budget} chars: {'; '.join(notes)}. "
                         "Read one key or a narrower query for more.]")
        return "\n".join(lines)

    def read(self, key: str = "", query: str = "", budget_chars: int | None = None) -> str:
        if key:
            e = self.get(key)
            if e is None:
                known = ", ".join(list(self.entries)[:30]) or "(none)"
                raise ToolFailure(f"ERROR: no memory entry {key!r}. Keys: {known}. Use query= to search.")
            return self.render([e], budget_chars)
        found = self.search(query)
        if query and not found:
            return f"(no memory entry matches {query!r}; {len(self.entries)} entries in total)"
        return self.render(found, budget_chars)

    def tools(self, agent: str, step: Callable[[], int | None] = lambda: None) -> list[Tool]:
        """memory_read / memory_write bound to one agent (provenance is the caller, not the model)."""
        board = self

        async def memory_write(key: str, value: str) -> str:
            if not isinstance(key, str) or not key.strip():
                raise ToolFailure("ERROR: memory_write needs a non-empty key, e.g. memory_write(key='findings/x', value='...')")
            e = board.write(key, str(value), agent=agent, step=step())
            return f"stored {e.key!r} (version {e.version}, {len(e.value)} chars)"

        async def memory_read(key: str = "", query: str = "") -> str:
            return board.read(key=key or "", query=query or "")

        return [
            Tool(
                name="memory_write",
                description="Write a value to the swarm's shared memory under a key (others can read it).",
                parameters={
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["key", "value"],
                },
                fn=memory_write,
            ),
            Tool(
                name="memory_read",
                description="Read shared memory: one key, or entries matching a query (empty: everything, clipped).",
                parameters={
                    "type": "object",
                    "properties": {"key": {"type": "string"}, "query": {"type": "string"}},
                    "required": [],
                },
                fn=memory_read,
            ),
        ]
