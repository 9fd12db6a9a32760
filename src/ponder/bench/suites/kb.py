"""A synthetic, seeded knowledge base of fictional entities.

Why synthetic: the deep and wide suites must run offline and their answers must be
unknowable from a model's pre-training, so the only way to score is to read the corpus.
Every entity is invented from syllables; every fact is drawn from a seeded RNG, so the
same seed gives byte-identical documents, questions and answers on any machine.

Hard negatives are near-duplicates (a company named "Velmora Systems" next to
"Velmora Systems Group", two cities called "Karsdel" in different countries) with
different facts: a model that stops at the first plausible hit gets the answer wrong.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

_ONSETS = ["b", "br", "c", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "qu", "r", "s",
           "st", "t", "tr", "v", "vr", "w", "z", "th", "sh", "j"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "y"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "m", "x", "nd", "rk", "sk"]
_COMPANY_SUFFIX = ["Systems", "Dynamics", "Labs", "Works", "Holdings", "Industries", "Logistics", "Foods",
                   "Energy", "Textiles", "Robotics", "Pharma", "Mining", "Media", "Motors"]
_INDUSTRIES = ["software", "shipping", "agriculture", "energy", "textiles", "robotics", "pharmaceuticals",
               "mining", "media", "automotive", "food processing", "aerospace"]
_EVENT_KIND = ["Accord", "Summit", "Exposition", "Festival", "Congress", "Regatta", "Symposium", "Fair"]


def _syllable(rng: random.Random) -> str:
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)


def _word(rng: random.Random, lo: int = 2, hi: int = 3) -> str:
    return "".join(_syllable(rng) for _ in range(rng.randint(lo, hi))).capitalize()


@dataclass
class City:
    id: str
    name: str
    country: str
    population: int
    founded: int


@dataclass
class Person:
    id: str
    name: str
    born: int
    birthplace: str  # city id


@dataclass
class Company:
    id: str
    name: str
    founded: int
    hq: str  # city id
    ceo: str  # person id
    industry: str


@dataclass
class Event:
    id: str
    name: str
    year: int
    city: str  # city id
    organizer: str  # company id


@dataclass
class Document:
    doc_id: str
    title: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.doc_id, "doc_id": self.doc_id, "title": self.title, "text": self.text}


@dataclass
class KnowledgeBase:
    seed: int
    cities: dict[str, City] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    companies: dict[str, Company] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)
    documents: list[Document] = field(default_factory=list)
    # ids of entities that are the "real" targets of questions (not hard negatives)
    primary_companies: list[str] = field(default_factory=list)
    primary_events: list[str] = field(default_factory=list)

    def city_label(self, city_id: str) -> str:
        c = self.cities[city_id]
        return c.name

    def doc_for(self, entity_id: str) -> Document:
        for d in self.documents:
            if d.doc_id == entity_id:
                return d
        raise KeyError(entity_id)


class _Names:
    """Draws unique invented names (no collisions unless a hard negative asks for one)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def new(self, make: Any) -> str:
        for _ in range(1000):
            name = make()
            if name.lower() not in self.used:
                self.used.add(name.lower())
                return name
        raise RuntimeError("name space exhausted")  # pragma: no cover


def build_kb(seed: int, *, n_companies: int = 60, n_cities: int = 30, n_events: int = 20,
             n_negatives: int = 20) -> KnowledgeBase:
    """Generate the whole knowledge base for `seed`. Sizes stay small enough to index in
    well under a second, large enough that a wide task of 50 entities fits."""
    rng = random.Random(f"ponder-kb-{seed}")
    names = _Names(rng)
    kb = KnowledgeBase(seed=seed)
    countries = [names.new(lambda: _word(rng, 2, 3)) for _ in range(8)]

    for i in range(n_cities):
        name = names.new(lambda: _word(rng, 2, 3))
        kb.cities[f"city-{i:03d}"] = City(f"city-{i:03d}", name, rng.choice(countries),
                                          rng.randrange(20_000, 3_000_000, 10), rng.randint(900, 1890))
    city_ids = list(kb.cities)
    # hard-negative cities: the same name in another country, other facts
    for j in range(max(2, n_cities // 6)):
        src = kb.cities[city_ids[j * 3 % len(city_ids)]]
        other = rng.choice([c for c in countries if c != src.country])
        cid = f"city-n{j:02d}"
        kb.cities[cid] = City(cid, src.name, other, rng.randrange(5_000, 900_000, 10), rng.randint(900, 1890))

    def new_person(pid: str) -> Person:
        full = names.new(lambda: f"{_word(rng, 1, 2)} {_word(rng, 2, 3)}")
        return Person(pid, full, rng.randint(1940, 1992), rng.choice(city_ids))

    for i in range(n_companies):
        pid = f"person-{i:03d}"
        kb.people[pid] = new_person(pid)
        cname = names.new(lambda: f"{_word(rng, 2, 3)} {rng.choice(_COMPANY_SUFFIX)}")
        cid = f"company-{i:03d}"
        kb.companies[cid] = Company(cid, cname, rng.randint(1890, 2020), rng.choice(city_ids), pid,
                                    rng.choice(_INDUSTRIES))
        kb.primary_companies.append(cid)

    # hard-negative companies: "<name> Group" / "New <name>" with their own CEO and facts
    for j in range(n_negatives):
        src = kb.companies[kb.primary_companies[(j * 7) % n_companies]]
        pid = f"person-n{j:02d}"
        kb.people[pid] = new_person(pid)
        variant = rng.choice([f"{src.name} Group", f"New {src.name}", f"{src.name} International"])
        if variant.lower() in names.used:
            continue
        names.used.add(variant.lower())
        cid = f"company-n{j:02d}"
        kb.companies[cid] = Company(cid, variant, rng.randint(1890, 2020), rng.choice(city_ids), pid,
                                    rng.choice(_INDUSTRIES))

    for i in range(n_events):
        year = rng.randint(1950, 2023)
        ename = names.new(lambda: f"{_word(rng, 2, 2)} {rng.choice(_EVENT_KIND)}")
        eid = f"event-{i:03d}"
        kb.events[eid] = Event(eid, f"{year} {ename}", year, rng.choice(city_ids),
                               rng.choice(kb.primary_companies))
        kb.primary_events.append(eid)

    kb.documents = _documents(kb, rng)
    return kb


def _documents(kb: KnowledgeBase, rng: random.Random) -> list[Document]:
    docs: list[Document] = []
    for c in kb.cities.values():
        docs.append(Document(c.id, f"{c.name} ({c.country})",
                             f"{c.name} is a city in {c.country}. It was founded in {c.founded} and has a "
                             f"population of {c.population:,} people."))
    for p in kb.people.values():
        bp = kb.cities[p.birthplace]
        employer = next((co for co in kb.companies.values() if co.ceo == p.id), None)
        job = f" {p.name} is the chief executive officer (CEO) of {employer.name}." if employer else ""
        docs.append(Document(p.id, p.name,
                             f"{p.name} was born in {p.born} in {bp.name}, {bp.country}.{job}"))
    for co in kb.companies.values():
        hq = kb.cities[co.hq]
        ceo = kb.people[co.ceo]
        filler = rng.choice(["It is privately held.", "It is listed on the exchange of its home country.",
                             "It employs several thousand people.", "It is known for its research division."])
        docs.append(Document(co.id, co.name,
                             f"{co.name} is {'an' if co.industry[0] in 'aeiou' else 'a'} {co.industry} company founded in {co.founded}. Its headquarters "
                             f"are in {hq.name}, {hq.country}. Its CEO is {ceo.name}. {filler}"))
    for ev in kb.events.values():
        city = kb.cities[ev.city]
        org = kb.companies[ev.organizer]
        docs.append(Document(ev.id, ev.name,
                             f"The {ev.name} took place in {city.name}, {city.country}, in {ev.year}. "
                             f"It was organized by {org.name}."))
    return docs
