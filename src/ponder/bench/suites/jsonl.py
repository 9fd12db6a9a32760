"""User suites from a JSONL file: one task per line.

    {"question": "...", "answer": "...", "grader": "exact"}          # exact | number | judge
    {"id": "q7", "question": "...", "answer": ["Paris", "paris, fr"], "grader": "exact", "width": 1}

The suite is named after the file (stem) unless a line says "suite". With `--corpus DIR|INDEX`
the suite's engines get the search tools (`search`, `open_document`) over that corpus;
without it they get no tools. Problems are
reported with the file and line number, because a bad line in a 500-line file is
otherwise a needle in a haystack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ...tools.base import Tool
from ..graders import GRADERS
from .base import BenchTask, Suite

ALLOWED = {"exact", "number", "judge"}


class SuiteFileError(ValueError):
    pass


def jsonl_suite(path: str | Path, n: int | None = None, tools: Callable[[], list[Tool]] | None = None) -> Suite:
    p = Path(path)
    if not p.is_file():
        raise SuiteFileError(f"suite file {str(p)!r} not found; pass --jsonl with the path of a .jsonl file")
    name = p.stem
    tasks: list[BenchTask] = []
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SuiteFileError(f"cannot read suite file {str(p)!r}: {e.strerror or e}") from None
    for lineno, raw in enumerate(data.splitlines(), 1):
        try:  # line by line, so that a bad byte is reported with its line
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SuiteFileError(f"{p}:{lineno}: not UTF-8 text (byte {e.start + 1} of the line); save the file "
                                 "as UTF-8") from None
        if lineno == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SuiteFileError(f"{p}:{lineno}: not valid JSON ({e.msg}); each line must be one JSON object") from e
        if not isinstance(row, dict) or "question" not in row or "answer" not in row:
            raise SuiteFileError(f"{p}:{lineno}: each line needs at least \"question\" and \"answer\"")
        if not str(row["question"]).strip():
            raise SuiteFileError(f"{p}:{lineno}: the question is blank; write the question as text or drop the line")
        try:
            width = int(row.get("width", 1))
        except (TypeError, ValueError):
            raise SuiteFileError(f"{p}:{lineno}: \"width\" must be a whole number (got {row.get('width')!r})") from None
        grader = row.get("grader", "exact")
        if grader not in ALLOWED:
            raise SuiteFileError(f"{p}:{lineno}: grader {grader!r} is not available for JSONL suites; use one of "
                                 f"{', '.join(sorted(ALLOWED))} (all graders: {', '.join(GRADERS)})")
        name = row.get("suite", name)
        tid = str(row.get("id", f"{p.stem}-{lineno:04d}"))
        tasks.append(BenchTask(name, tid, str(row["question"]), row["answer"], grader,
                               features={"width": width}))
        if n is not None and len(tasks) >= n:
            break
    if not tasks:
        raise SuiteFileError(f"{p}: no tasks found (expected one JSON object per line)")
    note = " with search tools over your corpus" if tools else ""
    return Suite(name, tasks, [], tools, f"user suite from {p.name}{note}")
