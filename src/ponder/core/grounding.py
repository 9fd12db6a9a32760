"""Grounding: is every number and proper name in an answer backed by what the run saw?

GLM's RL penalises hallucination: a claim the model could not have read anywhere. This
check is the offline, deterministic version. The *claims* of an answer are its numbers
and its proper names; the *evidence* is the text of every successful tool result the run
saw (`ToolResult.content`, sub-agents' included) plus the task itself (restating the
question is not inventing). A claim is grounded when the evidence holds it: a number
with the same value ("1,954" = "1954", "2.5 million" is not split into 2.5), a name as
the same words (case, accents and punctuation ignored). The grounded fraction is
grounded claims / claims; an answer with no claims has no fraction (None) and counts as
fully grounded in the reward.

Deliberately simple and explainable, and therefore a heuristic:

* numbers: every run of digits (with thousands separators or a decimal part), except
  list markers ("1." / "2)" at the start of a line) - a numbered list is not a claim;
* names: runs of capitalised words, without common English words at either end ("The",
  "Answer", "Based" ... are dropped, "Noskquath" is kept) and without a lone sentence
  opener ending in -ly/-ing/-ed ("Unfortunately"); all-capital acronyms are skipped
  (too ambiguous).

It lives in `core` (it needs only the event types) so that the compare runner and the
engines' trajectory export can both use it: `grounding_reward(answer, events, task)`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .events import ToolResult

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
_LIST_MARKER = re.compile(r"^\s*(?:[-*]\s*)?\d{1,3}[.)]\s", re.M)
_WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
# Common capitalised words at the start of a sentence (or alone) that are not names. Small on
# purpose: a missed claim costs less than calling an honest answer a hallucination.
COMMON = frozenset("""
a about above after again against all also although am among an and another answer answers any are as at
based be because been before being below between both but by can could did do does done during each
either else even every exact final finally first for found from further given had has have having he
hence her here hers him his how however i if in into is it its itself just last later least let like
many may me might more most much must my next no none nor not note now of off on once one only or
other others our out over own per perhaps please rather result results same second see she should since
so some such than that the their theirs them then there therefore these they third this those though
through thus to too total under unknown until up upon us using very was we were what when where whether
which while who whom whose why will with within without would yes yet you your
step steps sources source population founded born year years city company person event ceo
according overall summary here's let's i'm it's there's
""".split())


def _fold(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    return "".join(ch for ch in s if not unicodedata.combining(ch)).lower()


def _words(s: str) -> list[str]:
    return [w.strip("'’-") for w in _WORD.findall(_fold(s)) if w.strip("'’-")]


def _number_value(tok: str) -> float | None:
    try:
        return float(tok.replace(",", ""))
    except ValueError:
        return None


@dataclass
class Claim:
    kind: str  # "number" | "name"
    text: str
    grounded: bool = False


@dataclass
class Grounding:
    claims: list[Claim] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.claims)

    @property
    def grounded(self) -> int:
        return sum(c.grounded for c in self.claims)

    @property
    def fraction(self) -> float | None:
        return self.grounded / self.total if self.claims else None

    @property
    def ungrounded(self) -> list[str]:
        return [c.text for c in self.claims if not c.grounded]

    def as_dict(self) -> dict[str, Any]:
        return {"claims": self.total, "grounded": self.grounded, "fraction": self.fraction,
                "ungrounded": self.ungrounded[:20]}


def numbers_in(text: str) -> list[str]:
    masked = _LIST_MARKER.sub(lambda m: " " * len(m.group()), text)
    return [m.group().lstrip("+") for m in _NUMBER.finditer(masked)]


_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*(?:[-*|]\s*)?)$")
_ADVERBISH = re.compile(r"(?:ly|ing|ed)$")


def names_in(text: str) -> list[str]:
    """Runs of capitalised words (see the module docstring for what is skipped)."""
    out: list[str] = []
    run: list[str] = []
    run_start = 0

    def close() -> None:
        if not run:
            return
        words = list(run)
        while words and words[0].lower() in COMMON:
            words.pop(0)
        if len(words) == 1 and len(run) == 1 and _SENTENCE_START.search(text[:run_start]) and _ADVERBISH.search(words[0]):
            words.pop()  # "Unfortunately, ..." / "Looking at ...": a sentence opener, not a name
        while words and words[-1].lower() in COMMON:
            words.pop()
        if words:
            out.append(" ".join(words))
        run.clear()

    pos = 0
    for m in re.finditer(r"\S+", text):
        raw = m.group()
        core = raw.strip("\"'“”‘’()[]{}*_,.;:!?|")
        gap = text[pos:m.start()]
        pos = m.end()
        is_cap = bool(core) and core[0].isupper() and not core.isupper() and core[0].isalpha()
        if run and ("\n" in gap):
            close()
        if is_cap:
            if not run:
                run_start = m.start() + (len(raw) - len(raw.lstrip("\"'“”‘’([{*_|")))
            run.append(core)
            if core != raw.rstrip("\"'“”‘’)]}*_") or raw.endswith((",", ".", ";", ":", "!", "?")):
                close()  # punctuation ends a name ("Karsdel, Orvania" is two claims)
        else:
            close()
    close()
    return out


class Evidence:
    """What a run saw, indexed for claim checks."""

    def __init__(self, texts: Iterable[str]):
        texts = [t for t in texts if t]
        self.values = {v for t in texts for tok in numbers_in(t) if (v := _number_value(tok)) is not None}
        # also every bare digit run, so "1,954" in an answer matches "1954" and "the 1954 report"
        self.values |= {float(x) for t in texts for x in re.findall(r"\d+", t)}
        self.words = " " + " ".join(" ".join(_words(t)) for t in texts) + " "

    def has_number(self, tok: str) -> bool:
        v = _number_value(tok)
        return v is not None and v in self.values

    def has_name(self, name: str) -> bool:
        ws = _words(name)
        return bool(ws) and f" {' '.join(ws)} " in self.words


def check(answer: str | None, evidence: Evidence) -> Grounding:
    """Every number and name of `answer`, each marked grounded or not."""
    if not answer:
        return Grounding()
    text = re.sub(r"<think>.*?</think>", "", answer, flags=re.S)
    claims = [Claim("number", n, evidence.has_number(n)) for n in numbers_in(text)]
    claims += [Claim("name", n, evidence.has_name(n)) for n in names_in(text)]
    return Grounding(claims)


def tool_texts(events: Iterable[Any]) -> list[str]:
    """The content of every successful tool result in a run's events (any agent)."""
    return [ev.content for ev in events if isinstance(ev, ToolResult) and ev.ok and ev.content]


def ground_run(answer: str | None, events: Iterable[Any], task: str | None = None) -> Grounding:
    """Grounding of a finished run: claims of `answer` against its tool results and the task."""
    texts = tool_texts(events)
    if task:
        texts.append(task)
    return check(answer, Evidence(texts))


def grounding_reward(answer: str | None, events: Iterable[Any], task: str | None = None) -> float:
    """The reward term for RL export: the grounded fraction, 1.0 when the answer makes no claim."""
    f = ground_run(answer, events, task).fraction
    return 1.0 if f is None else f
