"""An offline search corpus: BM25 (bm25s) over local documents, and the tools that search it.

Offline on purpose: the compare harness must give every engine the same evidence, and
tests must not depend on the internet. Documents come from a folder (.txt, .md, .html,
.pdf, .jsonl, and files without an extension that hold text) or a list; an index is
built in memory (fast: synthetic corpora are built per run) or saved to disk and loaded
again. Whatever a folder holds that cannot be read is skipped with its reason (binary,
unsupported type, a PDF without a text layer ...), never silently.

`load_corpus(path_or_none)` is the one entry point for "search this": a folder, a saved
index, or None for the bundled sample corpus. Every corpus carries a `name`, and the
`search` tool's results say which corpus they came from, so an answer drawn from the
bundled fiction is never mistaken for one from your documents.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
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


class CorpusError(ValueError):
    """A corpus that cannot be read or found; the message names the path and the fix."""


TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".text", ".rst")
HTML_SUFFIXES = (".html", ".htm")
SUPPORTED = ", ".join([*TEXT_SUFFIXES, *HTML_SUFFIXES, ".pdf", ".jsonl"]) + ", or no extension (plain text)"


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Scan:
    """What a folder yielded: the documents, and every file left out with the reason."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    files: int = 0


class _HTMLText(HTMLParser):
    """Visible text of an HTML page (scripts, styles and head left out; blocks become lines)."""

    _BLOCK = frozenset("p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer pre blockquote".split())
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self.h1 = ""
        self._skip = 0
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        if tag in self._BLOCK:
            self.parts.append("\n")
        self._in.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        cur = self._in[-1] if self._in else ""
        if cur == "title":
            self.title += data
            return
        if cur == "h1" and not self.h1:
            self.h1 = data.strip()
        self.parts.append(data)

    def text(self) -> str:
        lines = [" ".join(line.split()) for line in "".join(self.parts).splitlines()]
        return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML document."""
    p = _HTMLText()
    p.feed(html)
    p.close()
    return (p.title.strip() or p.h1), p.text()


def pdf_to_text(path: Path) -> str:
    """The text layer of a PDF (pypdf), pages separated by blank lines. Raises CorpusError
    with the reason when the file is encrypted or unreadable."""
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair warnings are not the user's business
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError("encrypted PDF (no password support)")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except CorpusError:
        raise
    except (PdfReadError, OSError, ValueError, KeyError, TypeError) as e:
        raise CorpusError(f"unreadable PDF ({type(e).__name__}: {e})") from e
    return "\n\n".join(p for p in pages if p)


def _sniff_text(data: bytes) -> str | None:
    """The text of a file without an extension, or None when it looks binary."""
    head = data[:8192]
    if b"\x00" in head:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("latin-1")
    printable = sum(ch.isprintable() or ch in "\n\r\t" for ch in text[:8192])
    return text if printable >= 0.95 * min(len(text), 8192) else None


def _read_one(path: Path, root: Path) -> tuple[list[Document], str | None]:
    """The documents in one file, or ([], why it was skipped)."""
    rel_path = path.relative_to(root).as_posix()
    rel = path.relative_to(root).with_suffix("").as_posix() if path.suffix else rel_path
    meta = {"path": rel_path}
    fallback = path.stem.replace("_", " ").replace("-", " ")
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = path.read_text(encoding="utf-8", errors="replace")
        title = _title_from_markdown(text, fallback)
    elif suffix in HTML_SUFFIXES:
        title, text = html_to_text(path.read_text(encoding="utf-8", errors="replace"))
        title = title or fallback
    elif suffix == ".pdf":
        try:
            text = pdf_to_text(path)
        except CorpusError as e:
            return [], str(e)
        if not text.strip():
            return [], "PDF without a text layer (a scan?); run OCR on it first"
        title = fallback
    elif suffix == ".jsonl":
        return _read_jsonl(path, rel), None
    elif suffix == "":
        sniffed = _sniff_text(path.read_bytes())
        if sniffed is None:
            return [], "no extension and not text (binary)"
        text, title = sniffed, _title_from_markdown(sniffed, fallback)
    else:
        return [], f"unsupported type {suffix} (supported: {SUPPORTED})"
    if not text.strip():
        return [], "empty"
    return [Document(rel, title, text, meta)], None


def _read_jsonl(path: Path, rel: str) -> list[Document]:
    docs = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{n}: not valid JSON ({e.msg}); each line must be one JSON object") from e
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise CorpusError(f'{path}:{n}: each line needs a "text" string (and optional "id", "title", "metadata")')
            doc_id = str(obj.get("id") or f"{rel}#{n}")
            docs.append(Document(doc_id, str(obj.get("title") or doc_id), obj["text"], dict(obj.get("metadata") or {})))
    return docs


def scan_folder(folder: str | Path, progress: Callable[[int, int, str], None] | None = None) -> Scan:
    """Read every file under `folder` (hidden files and folders are skipped and listed).
    `progress(done, total, path)` is called after each file."""
    root = Path(folder)
    if not root.is_dir():
        if root.is_file():
            raise CorpusError(f"{str(root)!r} is a file; pass the folder that holds your documents "
                              "(or a saved index made by `ponder corpus build`)")
        raise CorpusError(f"corpus folder {str(root)!r} does not exist; pass a folder of documents ({SUPPORTED})")
    files = sorted(p for p in root.rglob("*") if p.is_file())
    scan = Scan(files=len(files))
    for i, path in enumerate(files, 1):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            scan.skipped.append(Skipped(rel, "hidden"))
        else:
            try:
                docs, why = _read_one(path, root)
            except OSError as e:
                docs, why = [], f"cannot read it ({e.strerror or e})"
            if why:
                scan.skipped.append(Skipped(rel, why))
            scan.documents.extend(docs)
        if progress is not None:
            progress(i, len(files), rel)
    return scan


def load_documents(folder: str | Path) -> list[Document]:
    """Documents from a folder: .md/.txt (id = relative path without suffix, title = first
    markdown heading or the file name), .html (title from <title>), .pdf (text layer),
    .jsonl (one object per line with "text" and optional "id", "title", "metadata") and
    text files without an extension. Use `scan_folder` to also learn what was skipped."""
    return scan_folder(folder).documents


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
    """Documents plus a BM25 index over title and text. `name` says what it is (a folder, a
    saved index, the sample corpus): search results carry it."""

    def __init__(self, docs: list[Document], retriever: Any, name: str = "documents"):
        self.docs = docs
        self.name = name
        self._retriever = retriever
        self._by_id = {d.id: i for i, d in enumerate(docs)}
        if len(self._by_id) != len(docs):
            seen: set[str] = set()
            dup = next(d.id for d in docs if d.id in seen or seen.add(d.id))  # type: ignore[func-returns-value]
            raise ValueError(f"duplicate document id {dup!r}: document ids must be unique")

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_documents(cls, docs: Iterable[Document | dict[str, Any]], name: str = "documents") -> Corpus:
        import bm25s

        docs = _as_documents(docs)
        if not docs:
            raise CorpusError("cannot index an empty corpus: give at least one document")
        tokens = [tokenize(f"{d.title} {d.title} {d.text}") or ["_empty_"] for d in docs]
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(docs, retriever, name)

    @classmethod
    def build(cls, source: str | Path | Iterable[Document | dict[str, Any]], out_dir: str | Path | None = None,
              *, name: str | None = None) -> Corpus:
        """Index a folder (or a list of documents) and, with `out_dir`, save it there."""
        if isinstance(source, str | Path):
            scan = scan_folder(source)
            if not scan.documents:
                raise CorpusError(f"no readable documents in {str(source)!r} ({scan.files} file(s), "
                                  f"{len(scan.skipped)} skipped); supported: {SUPPORTED}")
            docs, label = scan.documents, name or str(source)
        else:
            docs, label = _as_documents(source), name or "documents"
        corpus = cls.from_documents(docs, label)
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
            json.dumps({"format": FORMAT_VERSION, "documents": len(self.docs), "tokenizer": "ponder.tools.corpus.tokenize",
                        "name": self.name})
        )
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> Corpus:
        import bm25s

        out = Path(out_dir)
        meta_path = out / "corpus.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{str(out)!r} is not a saved corpus (no corpus.json); create one with `ponder corpus build DIR --out {out}`")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as e:
            raise CorpusError(f"{str(meta_path)!r} is damaged ({e.msg}); rebuild the index with `ponder corpus build`") from e
        if meta.get("format") != FORMAT_VERSION:
            raise CorpusError(f"corpus at {str(out)!r} has format {meta.get('format')}, expected {FORMAT_VERSION}; rebuild it")
        docs = []
        with (out / "docs.jsonl").open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    docs.append(Document(**json.loads(line)))
        retriever = bm25s.BM25.load(str(out / "bm25"))
        return cls(docs, retriever, f"index {meta.get('name') or out}")

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

    label = f"{corpus.name} ({len(corpus)} documents)"

    @tool(name="search", timeout_s=10.0)
    def search(query: str, k: int = default_k) -> dict[str, Any] | str:
        """Search the document collection (keyword/BM25). Returns the corpus searched and the
        best matches with their doc_id, title and a snippet; call open_document to read one.

        Args:
            query: keywords to look for, e.g. names, places, terms.
            k: how many results to return (1-20).
        """
        if not query.strip():
            raise ToolFailure("empty query: give some keywords to search for")
        hits = corpus.search(query, k=max(1, min(k, 20)))
        if not hits:
            return f"no documents match {query!r} in {label}; try other or fewer keywords"
        return {"corpus": label, "results": [{"doc_id": h.id, "title": h.title, "snippet": h.snippet} for h in hits]}

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
        _SAMPLE = Corpus.build(sample_corpus_dir(), name="the bundled sample corpus (fictional)")
    return _SAMPLE


def load_corpus(path: str | Path | None) -> Corpus:
    """What `--corpus` means everywhere: None is the bundled sample corpus; a folder with a
    `corpus.json` is a saved index (`ponder corpus build --out`); any other folder is read
    and indexed in memory. Raises CorpusError (a ValueError) naming the path and the fix."""
    if path is None:
        return sample_corpus()
    p = Path(path).expanduser()
    if (p / "corpus.json").is_file():
        try:
            return Corpus.load(p)
        except FileNotFoundError as e:
            raise CorpusError(f"{str(p)!r} is an incomplete index ({e}); rebuild it with `ponder corpus build`") from e
    if p.is_dir():
        return Corpus.build(p)
    if p.exists():
        raise CorpusError(f"corpus {str(p)!r} is a file; pass a folder of documents or a saved index folder")
    raise CorpusError(f"corpus {str(p)!r} does not exist; pass a folder of documents or an index made by "
                      "`ponder corpus build DIR --out INDEX`")
