"""An offline search corpus: BM25 (bm25s) over local documents, and the tools that search it.

Offline on purpose: the compare harness must give every engine the same evidence, and
tests must not depend on the internet. Documents come from a folder (.txt, .md, .jsonl)
or a list; an index is built in memory (fast: synthetic corpora are built per run) or
saved to disk and loaded again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .base import Tool, ToolFailure, tool

FORMAT_VERSION = 1
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have he her his i in is it its of on or she "
    "that the their them they this to was were which who whom will with what when where why how "
    "did does do not no than then there these those into about".split()
)


def _norm(t: str) -> str:
    if t.endswith("'s"):
        t = t[:-2]
    if len(t) > 4 and t.endswith("ies"):
        return t[:-3] + "y"
    if len(t) > 3 and t.endswith("s") and not t.endswith("ss"):
        return t[:-1]
    return t


_NORM: dict[str, str] = {}


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens without stopwords; a trailing plural "s" is folded so that
    "companies"/"company"-style mismatches cost less (a deliberately tiny stemmer)."""
    norm = _NORM
    out = []
    for t in _TOKEN_RE.findall(text.lower()):
        n = norm.get(t)
        if n is None:
            n = "" if t in STOPWORDS else _norm(t)
            if len(norm) < 500_000:
                norm[t] = n
        if n:
            out.append(n)
    return out


@dataclass
class Document:
    id: str
    title: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchHit:
    id: str
    title: str
    snippet: str
    score: float


def _title_from_markdown(text: str, fallback: str) -> str:
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#"):
            return s.lstrip("#").strip() or fallback
        if s:
            break
    return fallback


def load_documents(folder: str | Path) -> list[Document]:
    """Documents from .txt/.md files (id = relative path without suffix, title = first
    markdown heading or the file name) and .jsonl files (one object per line with "text"
    and optional "id", "title", "metadata")."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus folder {str(root)!r} does not exist; pass a folder of .txt/.md/.jsonl files")
    docs: list[Document] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).with_suffix("").as_posix()
        if path.suffix in (".md", ".txt"):
            text = path.read_text(encoding="utf-8", errors="replace")
            title = _title_from_markdown(text, path.stem.replace("_", " ").replace("-", " "))
            docs.append(Document(rel, title, text, {"path": path.relative_to(root).as_posix()}))
        elif path.suffix == ".jsonl":
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise ValueError(f"{path}:{n}: not valid JSON ({e.msg}); each line must be one JSON object") from e
                    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                        raise ValueError(f'{path}:{n}: each line needs a "text" string (and optional "id", "title", "metadata")')
                    doc_id = str(obj.get("id") or f"{rel}#{n}")
                    docs.append(
                        Document(doc_id, str(obj.get("title") or doc_id), obj["text"], dict(obj.get("metadata") or {}))
                    )
    return docs


def _as_documents(items: Iterable[Document | dict[str, Any]]) -> list[Document]:
    docs: list[Document] = []
    for i, d in enumerate(items):
        if isinstance(d, Document):
            docs.append(d)
        elif isinstance(d, dict):
            if "text" not in d:
                raise ValueError(f'document {i} has no "text"')
            did = str(d.get("id", i))
            docs.append(Document(did, str(d.get("title") or did), str(d["text"]), dict(d.get("metadata") or {})))
        else:
            raise TypeError(f"document {i}: expected Document or dict, got {type(d).__name__}")
    return docs


class Corpus:
    """Documents plus a BM25 index over title and text."""

    def __init__(self, docs: list[Document], retriever: Any):
        self.docs = docs
        self._retriever = retriever
        self._by_id = {d.id: i for i, d in enumerate(docs)}
        if len(self._by_id) != len(docs):
            seen: set[str] = set()
            dup = next(d.id for d in docs if d.id in seen or seen.add(d.id))  # type: ignore[func-returns-value]
            raise ValueError(f"duplicate document id {dup!r}: document ids must be unique")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_documents(cls, docs: Iterable[Document | dict[str, Any]]) -> Corpus:
        import bm25s

        docs = _as_documents(docs)
        if not docs:
            raise ValueError("cannot index an empty corpus: give at least one document")
        tokens = [tokenize(f"{d.title} {d.title} {d.text}") or ["_empty_"] for d in docs]
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(docs, retriever)

    @classmethod
    def build(cls, source: str | Path | Iterable[Document | dict[str, Any]], out_dir: str | Path | None = None) -> Corpus:
        """Index a folder (or a list of documents) and, with `out_dir`, save it there."""
        docs = load_documents(source) if isinstance(source, str | Path) else _as_documents(source)
        corpus = cls.from_documents(docs)
        if out_dir is not None:
            corpus.save(out_dir)
        return corpus

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(out / "bm25"))
        with (out / "docs.jsonl").open("w", encoding="utf-8") as f:
            for d in self.docs:
                f.write(json.dumps(asdict(d), ensure_ascii=False) + "\n")
        (out / "corpus.json").write_text(
            json.dumps({"format": FORMAT_VERSION, "documents": len(self.docs), "tokenizer": "ponder.tools.corpus.tokenize"})
        )
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> Corpus:
        import bm25s

        out = Path(out_dir)
        meta_path = out / "corpus.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{str(out)!r} is not a saved corpus (no corpus.json); create one with `ponder corpus build DIR --out {out}`")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"corpus at {str(out)!r} has format {meta.get('format')}, expected {FORMAT_VERSION}; rebuild it")
        docs = []
        with (out / "docs.jsonl").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append(Document(**json.loads(line)))
        retriever = bm25s.BM25.load(str(out / "bm25"))
        return cls(docs, retriever)

    # ---- queries ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.docs)

    def get(self, doc_id: str) -> Document | None:
        i = self._by_id.get(doc_id)
        return None if i is None else self.docs[i]

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        k = max(1, min(int(k), 50))
        vocab = self._retriever.vocab_dict
        ids = [vocab[t] for t in tokenize(query) if t in vocab]
        if not ids:
            return []
        import numpy as np

        scores = np.asarray(self._retriever.get_scores(ids))
        order = np.argsort(-scores, kind="stable")[:k]
        hits = []
        terms = set(tokenize(query))
        for i in order:
            if scores[i] <= 0:
                break
            d = self.docs[int(i)]
            hits.append(SearchHit(d.id, d.title, snippet(d.text, terms), round(float(scores[i]), 4)))
        return hits

    def open(self, doc_id: str, max_tokens: int = 800) -> str:
        """The document's text, cut to about `max_tokens` whitespace-separated words."""
        d = self.get(doc_id)
        if d is None:
            raise KeyError(doc_id)
        words = d.text.split()
        if len(words) <= max_tokens:
            return d.text
        # keep the original line breaks for the part we show
        cut = _cut_after_words(d.text, max_tokens)
        return (
            cut.rstrip()
            + f"\n[truncated: showing about {max_tokens} of {len(words)} words (whitespace-separated)]"
        )


def _cut_after_words(text: str, n: int) -> str:
    for count, m in enumerate(re.finditer(r"\S+", text), 1):
        if count == n:
            return text[: m.end()]
    return text


def snippet(text: str, terms: set[str] | Sequence[str], width: int = 40) -> str:
    """The `width`-word window of `text` with the most query terms in it."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    words = body.split() or text.split()
    if len(words) <= width:
        return " ".join(words)
    terms = set(terms)
    hit = [1 if set(tokenize(w)) & terms else 0 for w in words]
    best, best_i, cur = -1, 0, sum(hit[:width])
    for i in range(0, len(words) - width + 1):
        if i > 0:
            cur += hit[i + width - 1] - hit[i - 1]
        if cur > best:
            best, best_i = cur, i
    start = max(0, best_i - 3) if best > 0 else 0
    piece = " ".join(words[start : start + width])
    return ("… " if start > 0 else "") + piece + (" …" if start + width < len(words) else "")


def search_tools(corpus: Corpus, *, max_tokens: int = 800, default_k: int = 5) -> list[Tool]:
    """`search(query, k)` and `open_document(doc_id)` over `corpus`."""

    @tool(name="search", timeout_s=10.0)
    def search(query: str, k: int = default_k) -> list[dict[str, Any]] | str:
        """Search the document collection (keyword/BM25). Returns the best matches with their
        doc_id, title and a snippet; call open_document to read one in full.

        Args:
            query: keywords to look for, e.g. names, places, terms.
            k: how many results to return (1-20).
        """
        if not query.strip():
            raise ToolFailure("empty query: give some keywords to search for")
        hits = corpus.search(query, k=max(1, min(k, 20)))
        if not hits:
            return f"no documents match {query!r}; try other or fewer keywords"
        return [{"doc_id": h.id, "title": h.title, "snippet": h.snippet} for h in hits]

    @tool(name="open_document", timeout_s=10.0)
    def open_document(doc_id: str) -> str:
        """Read one document from the collection by its doc_id (as returned by search).

        Args:
            doc_id: the document's id, exactly as search returned it.
        """
        d = corpus.get(doc_id)
        if d is None:
            close = [h.id for h in corpus.search(doc_id.replace("/", " ").replace("_", " "), k=3)]
            hint = f" Did you mean: {', '.join(close)}?" if close else " Use search to find document ids."
            raise ToolFailure(f"no document with doc_id {doc_id!r}.{hint}")
        return f"# {d.title}\n\n" + corpus.open(doc_id, max_tokens=max_tokens).removeprefix(f"# {d.title}").lstrip("\n")

    return [search, open_document]


_SAMPLE: Corpus | None = None


def sample_corpus_dir() -> Path:
    """The shipped sample documents (fictional places, companies and people of 'Eastmarch')."""
    from importlib.resources import files

    return Path(str(files("ponder") / "data" / "corpus"))


def sample_corpus() -> Corpus:
    """The shipped sample corpus, indexed in memory once per process (47 short documents,
    all fictional, so that answers must come from the corpus, not from a model's memory)."""
    global _SAMPLE
    if _SAMPLE is None:
        _SAMPLE = Corpus.build(sample_corpus_dir())
    return _SAMPLE
