"""*lookup-wide* and *lookup-chain*: suites where the tool, not the model's size, decides.

Both run over the seeded knowledge base (`kb.py`, the corpus the deep and wide suites
search) through one structured tool, `lookup(entity)`, which reads a name as a search box
does (exact, without case or list numbering, or the one close spelling; else an error with
the close names). Constrained decoding (the embedded backend compiles a tool's JSON schema
into a grammar) keeps even a 135M model's calls well-formed, and a wrong name is a wrong
*choice*, visible in the trace, never a malformed call. (An enum of every name was tried
first: the 135M model then picked an unrelated name for most items, e.g. the only one that
starts with a digit for "1. Mencond Pharma".) Nothing writes an answer for the model: the
tool returns one fact, and the model must carry it into its reply.

The two suites differ only in the shape of the work:

* **lookup-wide**: N independent facts (N = 8-50; 8-12 in `--demo`). Every lookup can
  run at once, so a swarm should cut critical steps; an interleaved agent needs one
  step per fact. Graded by item F1 over the value cells (WideSearch's item level, with
  the entity names used only to align rows, so restating the question scores 0).
* **lookup-chain**: k hops (k = 2-4) where each lookup needs the previous answer (the
  organizer of an event, then that company's CEO, then the year that person was born).
  Fan-out cannot help; a design that splits the chain into independent pieces loses
  the thread. Graded by exact match (numbers as numbers).
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass, field
from typing import Any

from ...tools.base import Tool, ToolFailure, current_agent
from ..graders import TableGold
from .base import BenchTask, Suite
from .kb import KnowledgeBase, build_kb

# attribute -> what it means, per kind of entity
ATTRIBUTES: dict[str, dict[str, str]] = {
    "company": {"founded": "founded", "headquarters": "headquarters in", "ceo": "CEO", "industry": "industry"},
    "person": {"born": "born in the year", "birthplace": "born in", "company": "leads"},
    "city": {"country": "in the country", "founded": "founded", "population": "population"},
    "event": {"year": "held in the year", "city": "held in", "organizer": "organized by"},
}
# the fact each suite's tool returns, by kind of entity
WIDE_FACT = {"company": "founded", "person": "born", "city": "population"}
# how a lookup-wide line reads ("Mencond Pharma was founded in 1954": a sentence, which the
# 135M model copies whole more often than "Name: value", where it tends to stop at the colon)
WIDE_PHRASE = {"company": "was founded in", "person": "was born in", "city": "has a population of"}
CHAIN_FACT = {"event": "organizer", "company": "ceo", "person": "birthplace", "city": "founded"}
@dataclass
class Entity:
    label: str  # unique name the tool accepts (a duplicated city name carries its country)
    kind: str
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class FactIndex:
    """Every entity of a knowledge base with its facts, keyed by a unique label."""

    entities: dict[str, Entity]
    _folded: dict[str, Entity] | None = None  # lower-cased names, made on first use

    @classmethod
    def from_kb(cls, kb: KnowledgeBase) -> FactIndex:
        counts: dict[str, int] = {}
        for c in kb.cities.values():
            counts[c.name] = counts.get(c.name, 0) + 1
        city_label = {cid: (c.name if counts[c.name] == 1 else f"{c.name} ({c.country})") for cid, c in kb.cities.items()}
        ents: dict[str, Entity] = {}
        for cid, c in kb.cities.items():
            ents[city_label[cid]] = Entity(city_label[cid], "city", {
                "country": c.country, "founded": str(c.founded), "population": str(c.population)})
        leads = {co.ceo: co.name for co in kb.companies.values()}
        for pid, p in kb.people.items():
            facts = {"born": str(p.born), "birthplace": city_label[p.birthplace]}
            if pid in leads:
                facts["company"] = leads[pid]
            ents[p.name] = Entity(p.name, "person", facts)
        for co in kb.companies.values():
            ents[co.name] = Entity(co.name, "company", {
                "founded": str(co.founded), "headquarters": city_label[co.hq], "ceo": kb.people[co.ceo].name,
                "industry": co.industry})
        for ev in kb.events.values():
            ents[ev.name] = Entity(ev.name, "event", {
                "year": str(ev.year), "city": city_label[ev.city], "organizer": kb.companies[ev.organizer].name})
        return cls(ents)

    def resolve(self, entity: str) -> Entity | None:
        """The entity a name means, as a search box would take it: exact, then without case,
        list numbering ("3. Vanquork Energy") or quotes, then the one close spelling
        (difflib ratio >= 0.8, and clearly closer than the runner-up)."""
        e = self.entities.get(entity)
        if e is not None:
            return e
        clean = _NUMBERING.sub("", entity.strip().strip("\"'")).strip().lower()
        if self._folded is None:
            self._folded = {k.lower(): v for k, v in self.entities.items()}
        e = self._folded.get(clean)
        if e is not None:
            return e
        near = difflib.get_close_matches(clean, list(self._folded), n=2, cutoff=0.8)
        if len(near) == 1 or (len(near) == 2 and difflib.SequenceMatcher(None, clean, near[0]).ratio()
                              - difflib.SequenceMatcher(None, clean, near[1]).ratio() >= 0.05):
            return self._folded[near[0]]
        return None

    def fact(self, entity: str, relation: dict[str, str]) -> tuple[Entity, str, str]:
        """(the entity, which attribute, its value) for the fact `relation` names for its kind."""
        e = self.resolve(entity)
        if e is None and entity.strip().isdigit():
            raise ToolFailure(f"{entity.strip()} is a number (a year or a count), not a name: there is nothing to "
                              "look up for it")
        if e is None:
            near = difflib.get_close_matches(entity.strip().lower(), list(self._folded or {}), n=3, cutoff=0.5)
            hint = f" (close names: {', '.join(self._folded[n].label for n in near)})" if near and self._folded else ""
            raise ToolFailure(f"no entity named {entity!r}{hint}; copy the name exactly as the task or a result wrote it")
        attr = relation.get(e.kind)
        if attr is None:
            kinds = ", ".join(sorted(relation))
            article = "an" if e.kind[0] in "aeiou" else "a"
            raise ToolFailure(f"{entity} is {article} {e.kind}; this lookup answers for: {kinds}")
        return e, attr, e.facts[attr]


_NUMBERING = re.compile(r"^\s*\d+[.)]\s*")


def _tool(index: FactIndex, description: str, fn: Any) -> Tool:
    return Tool(
        name="lookup",
        description=description,
        parameters={
            "type": "object",
            "properties": {"entity": {"type": "string", "maxLength": 64,
                                      "description": "the entity's name, as the task or a result wrote it"}},
            "required": ["entity"],
            "additionalProperties": False,
        },
        fn=fn,
        timeout_s=5.0,
    )


def fact_tool(index: FactIndex) -> Tool:
    """lookup-wide's `lookup(entity)`: one fact per call (for a company the year founded, a
    person the year born, a city its population). Once an agent has looked up more than one
    entity, the result is that agent's table so far: every line it looked up, newest last
    ("Mencond Pharma was founded in 1954"). One instance per run; the table is kept per
    calling agent (`current_agent()`), so a swarm's sub-agent sees only its own lookups.

    Why a running table: the answer this suite asks for is that table, and a 135M model
    cannot gather 8-12 facts spread over as many earlier messages (measured: it answered
    with the last value alone); copying one block it can. The lookups themselves, one
    call per item, are still the model's to make, so the shape of the work is unchanged:
    an interleaved agent needs a step per item, a swarm can make them at once. Why per
    agent: a sub-agent shown the whole run's table answered with its last line, another
    sub-agent's fact (measured: 3 of 8 sub-agents), not with its own."""
    tables: dict[str, dict[str, str]] = {}

    def lookup(entity: str) -> str:
        e, attr, value = index.fact(entity, WIDE_FACT)
        line = f"{e.label} {WIDE_PHRASE[e.kind]} {value}"
        table = tables.setdefault(current_agent(), {})
        table.pop(e.label, None)
        table[e.label] = line
        if len(table) == 1:
            return line
        # this call's fact first (what a one-item agent answers), then the agent's table so far
        return f"{line}\nLooked up so far ({len(table)}, newest last):\n" + "\n".join(table.values())

    return _tool(index, "Look up one fact: for a company the year it was founded, for a person the year they "
                        "were born, for a city its population. Returns every fact looked up so far.", lookup)


def cursor_tool(index: FactIndex) -> Tool:
    """lookup-chain's `lookup(entity)`: the next link, written like a paginated API's cursor
    ("Vrizael (Gindmuth Drusjyrk: born in); next: lookup(entity="Vrizael")"), and at the end
    of a chain a year and "the chain ends here". (Refusing calls after the end, as a cursor
    API refuses an expired cursor, was measured and made things worse: the engine does not
    yet stop a model that repeats a failed call, so SmolLM2 looped on the refusal until
    its step budget ran out - 0 of 9 solved against 3 of 9 without it.)"""

    def lookup(entity: str) -> str:
        e, attr, value = index.fact(entity, CHAIN_FACT)
        what = f"{value} ({e.label}: {ATTRIBUTES[e.kind][attr]})"
        if value in index.entities:
            return f'{what}; next: lookup(entity="{value}")'
        return f"{what}; the chain ends here: {value} is the answer"

    return _tool(index, "Look up the next link: for an event the company that organized it, for a company its "
                        "CEO, for a person the city they were born in, for a city the year it was founded.", lookup)


# ---- lookup-wide ---------------------------------------------------------------------------
# (kind, how the question asks for it): numeric values, so that a line holding one number is
# one claim and a guess cannot match by sharing a word with the truth
_WIDE_ASKS = [
    ("company", "the year each of the following {n} companies was founded"),
    ("person", "the year each of the following {n} people was born"),
    ("city", "the population of each of the following {n} cities"),
]


def lookup_wide_suite(n: int, seed: int, *, width: tuple[int, int] = (8, 50)) -> Suite:
    kb = build_kb(seed)
    index = FactIndex.from_kb(kb)
    rng = random.Random(f"ponder-lookup-wide-{seed}")
    pools = {
        "company": [kb.companies[c].name for c in kb.primary_companies],
        "person": [kb.people[kb.companies[c].ceo].name for c in kb.primary_companies],
        "city": sorted({index.entities[lbl].label for lbl in index.entities if index.entities[lbl].kind == "city"}),
    }
    tasks = []
    for i in range(n):
        kind, ask = _WIDE_ASKS[i % len(_WIDE_ASKS)]
        attr = WIDE_FACT[kind]
        k = min(rng.randint(*width), len(pools[kind]))
        names = rng.sample(pools[kind], k)
        rows = [{"entity": nm, "value": index.entities[nm].facts[attr]} for nm in names]
        items = "\n".join(f"{j}. {nm}" for j, nm in enumerate(names, 1))
        question = (
            f"Find {ask.format(n=k)}, with lookup(entity) for each one (they are independent):\n{items}\n\n"
            f"Answer with one line per entry: <name> {WIDE_PHRASE[kind]} <{'year' if attr != 'population' else 'number'}>."
        )
        gold = TableGold(["entity", "value"], "entity", rows, {"value": "number"}, score_key=False)
        tasks.append(BenchTask("lookup-wide", f"lookup-wide-{seed}-{i:03d}", question, gold, "pairs",
                               features={"width": k, "hops": 1},
                               meta={"entities": names, "attribute": attr, "phrase": WIDE_PHRASE[kind]}))
    return Suite("lookup-wide", tasks, kb.documents, lambda: [fact_tool(index)],
                 "N independent facts via lookup(entity, attribute) (item F1 over the values)")


# ---- lookup-chain --------------------------------------------------------------------------
# the chain a lookup follows: event -> organizer (company) -> CEO (person) -> birthplace
# (city) -> the year the city was founded; k hops start k-1 links before the city
_CHAIN_START = {2: "person", 3: "company", 4: "event"}


def lookup_chain_suite(n: int, seed: int, *, hops: tuple[int, int] = (2, 4)) -> Suite:
    kb = build_kb(seed)
    index = FactIndex.from_kb(kb)
    rng = random.Random(f"ponder-lookup-chain-{seed}")
    starts = {"person": [kb.companies[c].ceo for c in kb.primary_companies],
              "company": list(kb.primary_companies), "event": list(kb.primary_events)}
    names = {"person": lambda i: kb.people[i].name, "company": lambda i: kb.companies[i].name,
             "event": lambda i: kb.events[i].name}
    for pool in starts.values():
        rng.shuffle(pool)
    ks = [k for k in range(hops[0], hops[1] + 1) if k in _CHAIN_START]
    tasks = []
    for i in range(n):
        k = ks[i % len(ks)]  # round robin, so that a small n still covers every depth
        kind = _CHAIN_START[k]
        start = names[kind](starts[kind][(i // len(ks)) % len(starts[kind])])
        path, cur = [], start
        for _ in range(k):
            e = index.entities[cur]
            nxt = e.facts[CHAIN_FACT[e.kind]]
            path.append([cur, CHAIN_FACT[e.kind], nxt])
            cur = nxt
        question = (
            f"Follow a chain of {k} lookups. Start with lookup(entity=\"{start}\"); each result names the "
            f"entity to look up next, and the last one gives a year (the year a city was founded).\n\n"
            "End your reply with 'Answer: <year>'."
        )
        tasks.append(BenchTask("lookup-chain", f"lookup-chain-{seed}-{i:03d}", question, path[-1][2], "exact",
                               features={"width": 1, "hops": k}, meta={"path": path}))
    tool = cursor_tool(index)  # stateless: one instance serves every run
    return Suite("lookup-chain", tasks, kb.documents, lambda: [tool],
                 "k dependent lookups, each needing the previous answer (exact match)")
