"""Tools: the typed protocol, a sandboxed python tool, offline corpus search, a calculator,
root-confined file tools, and MCP servers as tools."""

from .base import Tool, Toolbox, ToolFailure, parse_docstring, result_message, tool
from .calculator import calculator_tool
from .corpus import Corpus, Document, sample_corpus, search_tools
from .files import file_tools
from .mcp import mcp_tools
from .sandbox import Sandbox, probe_isolation, python_tool

__all__ = [
    "Corpus",
    "Document",
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
