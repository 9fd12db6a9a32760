"""*wide*: WideSearch-like table filling over the synthetic knowledge base.

Each task names N companies and asks for founding year, headquarters and CEO of each:
every row is an independent lookup, the shape where a swarm should win on wall-clock
and critical steps. Graded by WideSearch row/item F1 (graders.score_table).
"""

from __future__ import annotations

import random

from ..graders import TableGold
from .base import BenchTask, Suite, corpus_tools
from .kb import build_kb

COLUMNS = ["company", "founded", "headquarters", "ceo"]


def wide_suite(n: int, seed: int, *, width: tuple[int, int] = (20, 50)) -> Suite:
    kb = build_kb(seed)
    rng = random.Random(f"ponder-wide-{seed}")
    tasks = []
    for i in range(n):
        k = rng.randint(*width)
        cids = rng.sample(kb.primary_companies, min(k, len(kb.primary_companies)))
        names = [kb.companies[c].name for c in cids]
        rows = [{"company": kb.companies[c].name, "founded": str(kb.companies[c].founded),
                 "headquarters": kb.cities[kb.companies[c].hq].name, "ceo": kb.people[kb.companies[c].ceo].name}
                for c in cids]
        question = (
            f"For each of the following {len(names)} companies, find the year it was founded, the city of its "
            f"headquarters and the name of its CEO: {'; '.join(names)}.\n\n"
            "Use the search tools. Answer with a Markdown table with the columns "
            "| company | founded | headquarters | ceo |, one row per company."
        )
        gold = TableGold(COLUMNS, "company", rows, {"founded": "number"})
        tasks.append(BenchTask("wide", f"wide-{seed}-{i:03d}", question, gold, "table",
                               features={"width": len(names), "hops": 1}, meta={"entities": names}))
    return Suite("wide", tasks, kb.documents, corpus_tools(kb.documents),
                 "fill a table for N entities (WideSearch row/item F1)")
