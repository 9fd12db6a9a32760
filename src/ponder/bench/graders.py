"""Deterministic graders: normalized exact match, numbers with units, WideSearch tables.

Grading is the part of a benchmark that silently decides the result, so each rule is
written out here and pinned by hand-checked tests:

- Text answers: lower-cased, accents, punctuation and articles ("a", "an", "the")
  removed, whitespace collapsed (the SQuAD/BrowseComp normalisation).
- Numbers: "1,234 km", "$1234", "1234.0" all equal 1234; a gold that is a number is
  compared as a number (relative tolerance, default 0 = exact).
- Tables (WideSearch): predicted rows are aligned to gold rows on the unique key column
  (normalized, then fuzzy for misspellings, standing in for WideSearch's LLM key
  mapping); each column has its own matcher; row- and item-level precision, recall and
  F1; success only when both F1s are 1.0.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# ---- answer extraction -----------------------------------------------------------------------
_ANSWER_RES = [
    re.compile(r"exact answer\s*[:：]\s*(.+)", re.I),
    re.compile(r"final answer\s*(?:is)?\s*[:：]?\s*(.+)", re.I),
    re.compile(r"(?:^|\n)\s*\**answer\**\s*[:：]\s*(.+)", re.I),
]
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")


def extract_answer(text: str | None) -> str:
    """The final answer inside a free-form reply: 'Exact Answer: X', 'Final answer: X',
    'Answer: X', \\boxed{X}, else the last non-empty line. The last match wins, because
    small models often restate the question's format before answering."""
    if not text:
        return ""
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)
    for rx in _ANSWER_RES:
        found = rx.findall(text)
        if found:
            return found[-1].strip().strip("*").strip()
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


# ---- normalisation ---------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”–—")


def normalize_text(s: Any) -> str:
    s = unicodedata.normalize("NFKD", str(s))
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    s = s.translate(_PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


_NUM = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
# "m" and "b" are left out on purpose: "1,234 m" is metres far more often than millions.
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9}


def parse_number(s: Any) -> float | None:
    """The one number in `s`, ignoring thousands separators, currency and units
    ("1,234 km" -> 1234, "$2.5 million" -> 2500000, "12%" -> 12). None when `s` holds no
    number or more than one (an answer like "1990-1995" is not a number)."""
    if isinstance(s, bool):
        return None
    if isinstance(s, int | float):
        return float(s)
    text = str(s).strip()
    matches = list(_NUM.finditer(text))
    if len(matches) != 1:
        return None
    m = matches[0]
    raw = m.group().replace(",", "")
    try:
        value = float(raw)
    except ValueError:
        return None
    rest = text[m.end():].strip().lower()
    word = re.match(r"[a-z]+", rest)
    if word and word.group() in _SCALE:
        value *= _SCALE[word.group()]
    return value


def number_near(pred: Any, gold: Any, rel_tol: float = 0.0, abs_tol: float = 1e-9) -> bool:
    p, g = parse_number(pred), parse_number(gold)
    if p is None or g is None:
        return False
    return abs(p - g) <= max(abs_tol, rel_tol * abs(g))


_NUMERIC_GOLD = re.compile(r"[$€£]?\s*[-+]?[\d,]*\.?\d+\s*%?")


def exact_match(pred: Any, gold: Any) -> bool:
    """Normalized exact match; a numeric gold is matched as a number. `gold` may be a list
    of accepted aliases."""
    golds = gold if isinstance(gold, list | tuple) else [gold]
    for g in golds:
        if isinstance(g, int | float) or _NUMERIC_GOLD.fullmatch(str(g).strip()):
            if number_near(pred, g):
                return True
            continue
        if normalize_text(pred) == normalize_text(g) and normalize_text(g):
            return True
    return False


# ---- grade objects ---------------------------------------------------------------------------
@dataclass
class Grade:
    score: float  # 0..1 (item F1 for tables)
    solved: bool
    extracted: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def grade_exact(answer_text: str | None, gold: Any) -> Grade:
    ext = extract_answer(answer_text)
    ok = exact_match(ext, gold)
    return Grade(1.0 if ok else 0.0, ok, ext)


def grade_number(answer_text: str | None, gold: Any, rel_tol: float = 0.0) -> Grade:
    ext = extract_answer(answer_text)
    ok = number_near(ext, gold, rel_tol=rel_tol)
    return Grade(1.0 if ok else 0.0, ok, ext)


# ---- tables (WideSearch) ---------------------------------------------------------------------
@dataclass
class TableGold:
    columns: list[str]
    key: str
    rows: list[dict[str, Any]]
    matchers: dict[str, str] = field(default_factory=dict)  # column -> "exact" | "number"
    # WideSearch counts an aligned key cell as a correct item. With two columns that alone
    # is an F1 of 0.5 for restating the question, so a suite may count only the value cells.
    score_key: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "key": self.key, "rows": self.rows, "matchers": self.matchers,
                "score_key": self.score_key}


@dataclass
class TableScore:
    row_precision: float
    row_recall: float
    row_f1: float
    item_precision: float
    item_recall: float
    item_f1: float
    success: bool
    aligned: int
    predicted_rows: int
    gold_rows: int
    items_correct: int = 0  # scored cells right (the numerator of item recall)
    items_gold: int = 0  # scored cells in the gold table (its denominator)


def _f1(p: float, r: float) -> float:
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def _norm_header(h: str) -> str:
    return re.sub(r"[^a-z0-9]", "", h.lower())


def parse_table(text: str | None, columns: list[str] | None = None) -> list[dict[str, str]]:
    """Rows from a reply: a Markdown table, a JSON list of objects, or CSV. Headers are
    matched to `columns` ignoring case, spaces and punctuation; unknown columns dropped."""
    if not text:
        return []
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)
    rows: list[dict[str, str]] = []
    lines = [ln.strip() for ln in text.splitlines()]
    pipe = [ln for ln in lines if ln.startswith("|") or ln.count("|") >= 2]
    if pipe:
        cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in pipe]
        cells = [r for r in cells if not all(re.fullmatch(r":?-{2,}:?", c) or c == "" for c in r)]
        if len(cells) >= 2:
            header, body = cells[0], cells[1:]
            rows = [dict(zip(header, r, strict=False)) for r in body]
    if not rows:
        m = re.search(r"\[\s*\{.*\}\s*\]", text, flags=re.S)
        if m:
            try:
                data = json.loads(m.group())
                rows = [{str(k): str(v) for k, v in d.items()} for d in data if isinstance(d, dict)]
            except json.JSONDecodeError:
                rows = []
    if not rows:
        csv_lines = [ln for ln in lines if ln.count(",") >= 1]
        if len(csv_lines) >= 2:
            rows = list(csv.DictReader(io.StringIO("\n".join(csv_lines))))
    if columns:
        want = {_norm_header(c): c for c in columns}
        rows = [{want[_norm_header(k)]: (v or "").strip() for k, v in r.items() if k and _norm_header(k) in want}
                for r in rows]
    return [r for r in rows if any(v for v in r.values())]


def _cell_ok(pred: Any, gold: Any, matcher: str) -> bool:
    if matcher == "number":
        return number_near(pred, gold)
    return exact_match(pred, gold)


def score_table(pred_rows: list[dict[str, Any]], gold: TableGold, fuzzy_key: float = 0.85) -> TableScore:
    """WideSearch's table metric. Each predicted row is aligned to at most one gold row on
    the key column (normalized exact first, then difflib ratio >= `fuzzy_key` for
    misspelled keys); unaligned predicted rows are extras, unaligned gold rows are missing.
    An aligned key cell counts as correct (the alignment vouched for it); other cells use
    their column's matcher. Item precision = correct cells / predicted cells, recall =
    correct cells / gold cells; a row is correct when every cell is."""
    cols = gold.columns
    gold_by_key = {normalize_text(r[gold.key]): i for i, r in enumerate(gold.rows)}
    taken: dict[int, int] = {}  # gold index -> pred index
    unmatched: list[int] = []
    for pi, row in enumerate(pred_rows):
        k = normalize_text(row.get(gold.key, ""))
        gi = gold_by_key.get(k)
        if gi is not None and gi not in taken:
            taken[gi] = pi
        else:
            unmatched.append(pi)
    for pi in unmatched:
        k = normalize_text(pred_rows[pi].get(gold.key, ""))
        if not k:
            continue
        best, best_r = None, fuzzy_key
        for gk, gi in gold_by_key.items():
            if gi in taken:
                continue
            r = difflib.SequenceMatcher(None, k, gk).ratio()
            if r >= best_r:
                best, best_r = gi, r
        if best is not None:
            taken[best] = pi
    correct_items = 0
    correct_rows = 0
    scored = cols if gold.score_key else [c for c in cols if c != gold.key]
    for gi, pi in taken.items():
        g, p = gold.rows[gi], pred_rows[pi]
        ok_cells = sum(1 for c in scored if c == gold.key or _cell_ok(p.get(c, ""), g.get(c, ""), gold.matchers.get(c, "exact")))
        correct_items += ok_cells
        correct_rows += ok_cells == len(scored)
    n_pred, n_gold = len(pred_rows), len(gold.rows)
    rp = correct_rows / n_pred if n_pred else 0.0
    rr = correct_rows / n_gold if n_gold else 0.0
    ip = correct_items / (n_pred * len(scored)) if n_pred else 0.0
    ir = correct_items / (n_gold * len(scored)) if n_gold else 0.0
    rf, itf = _f1(rp, rr), _f1(ip, ir)
    return TableScore(rp, rr, rf, ip, ir, itf, success=(rf == 1.0 and itf == 1.0), aligned=len(taken),
                      predicted_rows=n_pred, gold_rows=n_gold, items_correct=correct_items,
                      items_gold=n_gold * len(scored))


def grade_table(answer_text: str | None, gold: TableGold) -> Grade:
    rows = parse_table(answer_text, gold.columns)
    s = score_table(rows, gold)
    return Grade(s.item_f1, s.success, f"{len(rows)} rows", detail=s.__dict__.copy())


# ---- key: value lines (lookup-wide) ---------------------------------------------------------
def parse_pairs(text: str | None, keys: list[str]) -> list[dict[str, str]]:
    """Rows `{"entity", "value"}` from a reply written one claim per line ("Name: 1923",
    "- founded of Name: 1923", a Markdown row "| Name | 1923 |").

    Each non-empty line that holds a digit is one claim (the values asked for are numbers).
    Its entity is the longest of `keys` named in it (so "Velmora Systems Group" is not read
    as "Velmora Systems"), else the text before the last colon, which the table scorer may
    still align by fuzzy match; its value is the rest of the line with that name removed.
    A line naming two numbers is kept as is: it is not one number, so it scores as wrong."""
    if not text:
        return []
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)
    by_len = sorted(((normalize_text(k), k) for k in keys), key=lambda x: -len(x[0]))
    rows: list[dict[str, str]] = []
    for raw in text.splitlines():
        line = raw.strip().strip("|").strip()
        line = _LIST_MARK.sub("", line)  # "3. Vanquork Energy: 1968" is a list item, not the number 3
        if not line or not re.search(r"\d", line) or re.fullmatch(r"[-:| ]+", line):
            continue
        norm = normalize_text(line)
        found = next((k for nk, k in by_len if nk and re.search(rf"(?:^| ){re.escape(nk)}(?: |$)", norm)), None)
        if found is not None:
            rest = re.sub(re.escape(found), " ", line, count=1, flags=re.I)
            rest = re.sub(r"\b(?:of|the|is|was)\b", " ", rest, flags=re.I)
            rows.append({"entity": found, "value": rest.strip(" :|-–—*\t")})
        elif ":" in line:
            head, _, tail = line.rpartition(":")
            rows.append({"entity": head.strip(" -*|"), "value": tail.strip(" |*")})
        else:
            rows.append({"entity": "", "value": line})
    return rows


_LIST_MARK = re.compile(r"^(?:[-*•]\s+|\d{1,3}[.)]\s+)")


def grade_pairs(answer_text: str | None, gold: TableGold) -> Grade:
    keys = [str(r[gold.key]) for r in gold.rows]
    rows = parse_pairs(answer_text, keys)
    s = score_table(rows, gold)
    return Grade(s.item_f1, s.success, f"{len(rows)} lines", detail=s.__dict__.copy())


# ---- registry --------------------------------------------------------------------------------
GraderFn = Callable[[str | None, Any, dict[str, Any]], Grade]  # (answer, gold, task meta) -> Grade


def _rg(answer_text: str | None, gold: Any, meta: dict[str, Any]) -> Grade:
    from .suites.reason import score_reasoning_gym

    return score_reasoning_gym(answer_text, gold, meta)


def _table_gold(gold: Any) -> TableGold:
    return gold if isinstance(gold, TableGold) else TableGold(**gold)


SYNC_GRADER_FNS: dict[str, GraderFn] = {
    "exact": lambda a, g, m: grade_exact(a, g),
    "number": lambda a, g, m: grade_number(a, g, rel_tol=float(m.get("rel_tol", 0.0))),
    "table": lambda a, g, m: grade_table(a, _table_gold(g)),
    "pairs": lambda a, g, m: grade_pairs(a, _table_gold(g)),
    "rg": _rg,
}
SYNC_GRADERS = set(SYNC_GRADER_FNS)
ASYNC_GRADERS = {"judge"}  # the LLM judge (judge.py): it needs a model
GRADERS = sorted(SYNC_GRADERS | ASYNC_GRADERS)


def register_grader(name: str, fn: GraderFn) -> None:
    """Make a grader available by name to suites (`BenchTask.grader`) and JSONL files."""
    SYNC_GRADER_FNS[name] = fn
    SYNC_GRADERS.add(name)
    GRADERS[:] = sorted(SYNC_GRADERS | ASYNC_GRADERS)


def grade(grader: str, answer_text: str | None, gold: Any, meta: dict[str, Any] | None = None) -> Grade:
    """Grade with a synchronous grader by name. (The LLM judge is async: see judge.py.)"""
    fn = SYNC_GRADER_FNS.get(grader)
    if fn is not None:
        return fn(answer_text, gold, meta or {})
    raise ValueError(f"unknown grader {grader!r}; use one of {', '.join(GRADERS)}")
