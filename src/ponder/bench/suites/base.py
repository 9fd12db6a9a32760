"""What a suite is: tasks with gold answers and a grader name, plus the tools they need.

A suite is regenerated from its seed every time (never stored), so resuming a comparison
only has to match task ids, and a task's gold answer can hold live Python objects (a
reasoning-gym entry) without being serialisable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...tools.base import Tool
from ...tools.corpus import Corpus, search_tools
from .kb import Document


@dataclass
class BenchTask:
    suite: str
    task_id: str
    question: str
    answer: Any  # str for exact/number graders; a TableGold for "table"; an entry for reasoning-gym
    grader: str  # a name in graders.GRADERS ("exact", "number", "table", "rg", "judge", ...)
    features: dict[str, Any] = field(default_factory=dict)  # what the router may look at
    meta: dict[str, Any] = field(default_factory=dict)  # grader-private data (never shown to a model)

    @property
    def key(self) -> tuple[str, str]:
        return self.suite, self.task_id


@dataclass
class Suite:
    name: str
    tasks: list[BenchTask]
    documents: list[Document] = field(default_factory=list)
    tool_factory: Callable[[], list[Tool]] | None = None
    description: str = ""

    def tools(self) -> list[Tool]:
        """Fresh tool instances for one run (tools may keep per-run state)."""
        return self.tool_factory() if self.tool_factory else []


def corpus_tools(docs: list[Document]) -> Callable[[], list[Tool]]:
    """Search tools (search, open_document) over `docs`, BM25-indexed once by the tools layer's
    corpus and shared by every run of the suite."""
    corpus = Corpus.from_documents([d.as_dict() for d in docs])
    return lambda: list(search_tools(corpus))
