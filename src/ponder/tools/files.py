"""File tools confined to one root directory.

Every path is resolved (symlinks followed) *before* the check, then must lie inside the
resolved root: "../" tricks and symlinks pointing out of the root both fail the same test.
"""

from __future__ import annotations

from pathlib import Path

from .base import Tool, ToolFailure, tool


def _confine(root: Path, path: str) -> Path:
    if "\x00" in path:
        raise ToolFailure("invalid path: contains a NUL byte")
    p = Path(path)
    candidate = (p if p.is_absolute() else root / p).resolve()
    if candidate != root and not candidate.is_relative_to(root):
        raise ToolFailure(f"path {path!r} is outside the allowed folder; use a path relative to it, without '..'")
    return candidate


def file_tools(root: str | Path, *, max_read_chars: int = 20_000, max_write_chars: int = 1_000_000, writable: bool = True) -> list[Tool]:
    """read_file, write_file (when `writable`), list_dir - all relative to `root`."""
    base = Path(root).resolve()
    if not base.is_dir():
        raise FileNotFoundError(f"file tools root {str(root)!r} is not a directory; create it or pass another root")

    @tool(name="read_file", max_output_chars=max_read_chars + 200)
    def read_file(path: str) -> str:
        """Read a text file from the workspace folder.

        Args:
            path: file path relative to the workspace folder.
        """
        p = _confine(base, path)
        if not p.is_file():
            raise ToolFailure(f"no file {path!r}; use list_dir to see what exists")
        text = p.read_text(encoding="utf-8", errors="replace")
        if len(text) > max_read_chars:
            return text[:max_read_chars] + f"\n[truncated: showing the first {max_read_chars} of {len(text)} characters]"
        return text

    @tool(name="write_file")
    def write_file(path: str, content: str) -> str:
        """Create or overwrite a text file in the workspace folder (parent folders are created).

        Args:
            path: file path relative to the workspace folder.
            content: the full text to write.
        """
        if len(content) > max_write_chars:
            raise ToolFailure(f"content too long ({len(content)} characters, limit {max_write_chars})")
        p = _confine(base, path)
        if p == base or p.is_dir():
            raise ToolFailure(f"{path!r} is a folder, not a file")
        p.parent.mkdir(parents=True, exist_ok=True)
        # re-check after mkdir: a symlinked parent created in between must not escape
        _confine(base, str(p.relative_to(base)))
        p.write_text(content, encoding="utf-8")
        return f"wrote {len(content)} characters to {p.relative_to(base).as_posix()}"

    @tool(name="list_dir")
    def list_dir(path: str = ".") -> str:
        """List a folder in the workspace (folders end with "/").

        Args:
            path: folder path relative to the workspace folder; "." is the workspace itself.
        """
        p = _confine(base, path)
        if not p.is_dir():
            raise ToolFailure(f"no folder {path!r}")
        entries = sorted(p.iterdir(), key=lambda e: e.name)
        lines = [e.name + ("/" if e.is_dir() else "") for e in entries[:500]]
        if len(entries) > 500:
            lines.append(f"[... {len(entries) - 500} more entries]")
        return "\n".join(lines) if lines else "(empty folder)"

    return [read_file, write_file, list_dir] if writable else [read_file, list_dir]
