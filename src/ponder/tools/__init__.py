"""Tools: the typed protocol, a sandboxed python tool, offline corpus search, a calculator,
root-confined file tools, and MCP servers as tools."""

from pathlib import Path

from .base import Tool, Toolbox, ToolFailure, parse_docstring, result_message, tool
from .calculator import calculator_tool
from .corpus import Corpus, CorpusError, Document, load_corpus, sample_corpus, search_tools
from .files import file_tools
from .mcp import mcp_tools
from .sandbox import Sandbox, probe_isolation, python_tool

BUILTIN_TOOLS = ("python", "calculator", "search")


def named_tools(names: list[str] | tuple[str, ...], corpus: Corpus | str | Path | None = None) -> list[Tool]:
    """Built-in tools by name (the CLI's and the server's `--tools python,calculator,search`).
    `search` (with `open_document`) is BM25 over `corpus`: a `Corpus`, a folder or saved
    index path (see `load_corpus`), or None for the bundled sample corpus. Its results name
    the corpus they came from. Unknown names are a clear error."""
    out: list[Tool] = []
    for n in names:
        if n == "python":
            out.append(python_tool())
        elif n == "calculator":
            out.append(calculator_tool())
        elif n == "search":
            out.extend(search_tools(corpus if isinstance(corpus, Corpus) else load_corpus(corpus)))
        else:
            raise ValueError(f"unknown tool {n!r}; use a comma-separated subset of: {', '.join(BUILTIN_TOOLS)}")
    return out


__all__ = [
    "BUILTIN_TOOLS",
    "named_tools",
    "Corpus",
    "CorpusError",
    "Document",
    "load_corpus",
    "Sandbox",
    "Tool",
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
