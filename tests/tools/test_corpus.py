"""Offline corpus: BM25 search, open with a budget, save/load, the tools, the sample corpus."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from ponder.core.messages import ToolCall
from ponder.tools import Toolbox
from ponder.tools.corpus import Corpus, Document, load_documents, sample_corpus, search_tools, tokenize


def test_tokenize_folds_case_plurals_and_stopwords() -> None:
    assert tokenize("The Companies of Greta's ropes") == ["company", "greta", "rope"]


def test_sample_corpus_answers_fictional_questions() -> None:
    c = sample_corpus()
    assert 30 <= len(c) <= 60
    assert c.search("who founded Brightwater Lenses")[0].id == "companies/brightwater_lenses"
    assert c.search("tidal power Grey Sound", k=2)[0].id == "companies/tidewell_energy"
    hit = c.search("Sabine Greywing pilot")[0]
    assert hit.id == "people/sabine_greywing" and hit.title == "Sabine Greywing"
    assert "Greywing" in hit.snippet
    assert c.search("qwertyzzz") == []


def test_folder_with_md_txt_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Alpha Report\n\nThe alpha widget weighs 3 kg.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Beta gadgets are blue.")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"id": "g1", "title": "Gamma", "text": "Gamma rays are energetic.", "metadata": {"src": "x"}}) + "\n"
    )
    docs = load_documents(tmp_path)
    assert {d.id for d in docs} == {"a", "sub/b", "g1"}
    assert next(d for d in docs if d.id == "a").title == "Alpha Report"
    out = tmp_path / "index"
    built = Corpus.build(tmp_path, out)
    loaded = Corpus.load(out)
    assert len(loaded) == 3 == len(built)
    assert loaded.search("gamma energetic")[0].id == "g1"
    assert loaded.get("g1").metadata == {"src": "x"}
    assert loaded.search("blue gadget")[0].id == "sub/b"


def test_bad_inputs_have_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_documents(tmp_path / "missing")
    (tmp_path / "bad.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(ValueError, match='needs a "text"'):
        load_documents(tmp_path)
    with pytest.raises(FileNotFoundError, match="ponder corpus build"):
        Corpus.load(tmp_path)
    with pytest.raises(ValueError, match="duplicate document id"):
        Corpus.from_documents([{"id": "x", "text": "a"}, {"id": "x", "text": "b"}])
    with pytest.raises(ValueError, match="empty"):
        Corpus.from_documents([])


def test_open_truncates_to_word_budget() -> None:
    text = "\n".join(f"word{i}" for i in range(100))
    c = Corpus.from_documents([Document("d", "D", text)])
    out = c.open("d", max_tokens=10)
    assert out.startswith("word0\nword1") and "word10" not in out
    assert "[truncated: showing about 10 of 100 words" in out


def test_from_documents_is_fast_for_1000_docs() -> None:
    rng = random.Random(0)
    vocab = [f"term{i}" for i in range(3000)]
    docs = [{"id": f"d{i}", "title": f"Doc {i}", "text": " ".join(rng.choices(vocab, k=150))} for i in range(1000)]
    Corpus.from_documents(docs[:5])  # warm the bm25s import
    t0 = time.perf_counter()
    c = Corpus.from_documents(docs)
    elapsed = time.perf_counter() - t0
    assert len(c) == 1000
    assert elapsed < 2.0, f"indexing 1,000 docs took {elapsed:.2f}s"
    assert c.search(docs[7]["text"][:60], k=1)[0].id == "d7"


async def test_search_tools_round_trip() -> None:
    box = Toolbox(search_tools(sample_corpus(), max_tokens=20))
    assert box.names() == ["search", "open_document"]
    assert box.get("search").schema()["function"]["parameters"]["required"] == ["query"]
    r = await box.run(ToolCall(id="1", name="search", arguments={"query": "Ferro Bridge", "k": 2}))
    hits = json.loads(r.content)
    assert r.ok and len(hits) == 2 and {"doc_id", "title", "snippet"} <= set(hits[0])
    r = await box.run(ToolCall(id="2", name="open_document", arguments={"doc_id": hits[0]["doc_id"]}))
    assert r.ok and r.content.startswith("# ") and "[truncated: showing about 20" in r.content
    r = await box.run(ToolCall(id="3", name="open_document", arguments={"doc_id": "people/magnus"}))
    assert not r.ok and "no document with doc_id" in r.error and "people/magnus_ferro" in r.error
    r = await box.run(ToolCall(id="4", name="search", arguments={"query": "zzqqxx"}))
    assert r.ok and "no documents match" in r.content
