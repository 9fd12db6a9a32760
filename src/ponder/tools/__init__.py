"""Tools: the typed protocol, a sandboxed python tool, offline corpus search, a calculator,
root-confined file tools, and MCP servers as tools."""

from collections.abc import Callable
from pathlib import Path

from .base import Tool, Toolbox, ToolFailure, current_agent, parse_docstring, result_message, tool
from .calculator import calculator_tool
from .corpus import Corpus, CorpusError, Document, load_corpus, sample_corpus, search_tools
from .files import file_tools
from .mcp import mcp_tools
from .sandbox import Sandbox, probe_isolation, python_tool

ToolFactory = Callable[[Corpus | None], list[Tool]]
TOOLS: dict[str, ToolFactory] = {}


def register_tool(name: str, factory: ToolFactory) -> None:
    """Make tools available by name to every entry point (`--tools NAME`, `EngineConfig.tools`).
    `factory(corpus)` returns fresh tool instances (the corpus is the run's `--corpus`)."""
    TOOLS[name] = factory


register_tool("python", lambda _c: [python_tool()])
register_tool("calculator", lambda _c: [calculator_tool()])
register_tool("search", lambda c: search_tools(c if isinstance(c, Corpus) else load_corpus(c)))
BUILTIN_TOOLS = tuple(TOOLS)


def named_tools(names: list[str] | tuple[str, ...], corpus: Corpus | str | Path | None = None) -> list[Tool]:
    """Tools by registered name (the CLI's and the server's `--tools python,calculator,search`).
    `search` (with `open_document`) is BM25 over `corpus`: a `Corpus`, a folder or saved
    index path (see `load_corpus`), or None for the bundled sample corpus. Its results name
    the corpus they came from. Unknown names are a clear error."""
    out: list[Tool] = []
    for n in names:
        factory = TOOLS.get(n)
        if factory is None:
            raise ValueError(f"unknown tool {n!r}; use a comma-separated subset of: {', '.join(TOOLS)}")
        out.extend(factory(corpus))  # type: ignore[arg-type]
    return out


__all__ = [
    "BUILTIN_TOOLS",
    "TOOLS",
    "named_tools",
    "register_tool",
    "Corpus",
    "CorpusError",
    "Document",
    "load_corpus",
    "Sandbox",
    "Tool",
    "current_agent",
    "ToolFailure",
    "Toolbox",
    "calculator_tool",
    "file_tools",
    "mcp_tools",
    "parse_docstring",
    "probe_isolation",
    "python_tool",
    "result_message",
    "sample_corpus",
    "search_tools",
    "tool",
]
