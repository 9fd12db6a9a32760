"""What a suite is: tasks with gold answers and a grader name, plus the tools they need.

A suite is regenerated from its seed every time (never stored), so resuming a comparison
only has to match task ids, and a task's gold answer can hold live Python objects (a
reasoning-gym entry) without being serialisable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...tools.base import Tool, ToolFailure, tool
from .kb import Document, SimpleIndex


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
    """Search tools over `docs`: the project's BM25 corpus (ponder.tools.corpus) when it is importable, else a
    built-in term-overlap index with the same tool names (search, open_document)."""
    dicts = [d.as_dict() for d in docs]
    try:  # the tools module is owned elsewhere; its exact path is by contract
        from ...tools.corpus import Corpus, search_tools

        corpus = Corpus.from_documents(dicts)
        return lambda: list(search_tools(corpus))
    except ImportError:
        pass
    except Exception as exc:  # noqa: BLE001 - a contract mismatch must not break the suite
        import logging

        logging.getLogger(__name__).warning("ponder.tools.corpus unusable (%s); using the fallback index", exc)
    index = SimpleIndex(docs)

    def make() -> list[Tool]:
        @tool
        def search(query: str, k: int = 5) -> str:
            """Search the document collection; returns the top-k documents' ids, titles and snippets.

            Args:
                query: keywords to look for
                k: how many documents to return
            """
            hits = index.search(query, max(1, min(int(k), 10)))
            if not hits:
                return "no documents matched; try other keywords"
            return "\n".join(f"[{d.doc_id}] {d.title}: {d.text[:200]}" for d in hits)

        @tool
        def open_document(doc_id: str) -> str:
            """Return the full text of one document by its id.

            Args:
                doc_id: the id shown in square brackets by search
            """
            d = index.docs.get(doc_id.strip().strip("[]"))
            if d is None:
                raise ToolFailure(f"no document with id {doc_id!r}; use an id returned by search")
            return f"[{d.doc_id}] {d.title}\n{d.text}"

        return [search, open_document]

    return make
