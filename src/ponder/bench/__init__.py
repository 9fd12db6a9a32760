"""`ponder compare`: offline suites, graders, the resumable runner, reports and the router."""

from __future__ import annotations

from .graders import (
           Grade,
           TableGold,
           exact_match,
           extract_answer,
           grade,
           number_near,
           parse_number,
           score_table,
)
from .store import CompareStore, TaskRecord

__all__ = ["CompareStore", "Grade", "TableGold", "TaskRecord", "exact_match", "extract_answer", "grade",
           "number_near", "parse_number", "score_table"]
