"""*deep*: BrowseComp-Plus-like multi-hop questions over the synthetic knowledge base.

Each answer needs 2-4 documents read in a chain (event -> organizer -> CEO -> birthplace),
and chains are drawn through entities that have near-duplicate hard negatives, so the
suite rewards careful reading over one lucky search.
"""

from __future__ import annotations

import random

from .base import BenchTask, Suite, corpus_tools
from .kb import KnowledgeBase, build_kb

_INSTRUCTIONS = ("Use the search tools to find the answer in the document collection. "
                 "End your reply with a line 'Exact Answer: <answer>' giving only the answer.")


def _questions(kb: KnowledgeBase, rng: random.Random) -> list[tuple[str, str, int, list[str]]]:
    """(question, answer, hops, evidence doc ids) for every template and entity, in a fixed order."""
    out: list[tuple[str, str, int, list[str]]] = []
    # companies with a hard-negative twin come first: they are the interesting ones
    negatives = [c.name for cid, c in kb.companies.items() if cid not in kb.primary_companies]
    twins = {cid for cid in kb.primary_companies if any(kb.companies[cid].name in neg for neg in negatives)}
    companies = [c for c in kb.primary_companies if c in twins] + [c for c in kb.primary_companies if c not in twins]
    for i, cid in enumerate(companies):
        co = kb.companies[cid]
        ceo = kb.people[co.ceo]
        hq = kb.cities[co.hq]
        if i % 2 == 0:
            out.append((f"What is the population of the city where {co.name} has its headquarters?",
                        str(hq.population), 2, [cid, hq.id]))
        else:
            out.append((f"In what year was the CEO of {co.name} born?", str(ceo.born), 2, [cid, ceo.id]))
    for i, eid in enumerate(kb.primary_events):
        ev = kb.events[eid]
        org = kb.companies[ev.organizer]
        ceo = kb.people[org.ceo]
        bp = kb.cities[ceo.birthplace]
        if i % 2 == 0:
            out.append((f"In which city was the CEO of the company that organized the {ev.name} born?",
                        bp.name, 3, [eid, org.id, ceo.id]))
        else:
            out.append((f"In what year was the city where the CEO of the organizer of the {ev.name} was born founded?",
                        str(bp.founded), 4, [eid, org.id, ceo.id, bp.id]))
    return out


def deep_suite(n: int, seed: int) -> Suite:
    kb = build_kb(seed)
    rng = random.Random(f"ponder-deep-{seed}")
    pool = _questions(kb, rng)
    # interleave hop counts so that small n still covers 2, 3 and 4 hops
    by_hops: dict[int, list[tuple[str, str, int, list[str]]]] = {}
    for q in pool:
        by_hops.setdefault(q[2], []).append(q)
    for qs in by_hops.values():
        rng.shuffle(qs)
    order: list[tuple[str, str, int, list[str]]] = []
    while any(by_hops.values()) and len(order) < n:
        for h in sorted(by_hops):
            if by_hops[h] and len(order) < n:
                order.append(by_hops[h].pop())
    tasks = [
        BenchTask(
            suite="deep", task_id=f"deep-{seed}-{i:03d}", question=f"{q}\n\n{_INSTRUCTIONS}", answer=a, grader="exact",
            features={"hops": hops, "width": 1}, meta={"evidence": ev},
        )
        for i, (q, a, hops, ev) in enumerate(order)
    ]
    return Suite("deep", tasks, kb.documents, corpus_tools(kb.documents),
                 "multi-hop questions over a synthetic corpus with hard negatives (normalized exact match)")
