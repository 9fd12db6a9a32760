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
    with pytest.raises(ValueError, match="does not exist"):
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
    found = json.loads(r.content)
    hits = found["results"]
    assert r.ok and len(hits) == 2 and {"doc_id", "title", "snippet"} <= set(hits[0])
    assert found["corpus"].startswith("the bundled sample corpus")  # results name the corpus searched
    r = await box.run(ToolCall(id="2", name="open_document", arguments={"doc_id": hits[0]["doc_id"]}))
    assert r.ok and r.content.startswith("# ") and "[truncated: showing about 20" in r.content
    r = await box.run(ToolCall(id="3", name="open_document", arguments={"doc_id": "people/magnus"}))
    assert not r.ok and "no document with doc_id" in r.error and "people/magnus_ferro" in r.error
    r = await box.run(ToolCall(id="4", name="search", arguments={"query": "zzqqxx"}))
    assert r.ok and "no documents match" in r.content and "sample corpus" in r.content


def _pdf(text: str) -> bytes:
    """A minimal valid one-page PDF with `text` in its text layer (xref offsets computed)."""
    stream = f"BT /F1 18 Tf 10 100 Td ({text}) Tj ET".encode()
    objs = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 144]/Contents 4 0 R/Resources<</Font<</F1 5 0 R>>>>>>",
            b"<</Length %d>>stream\n" % len(stream) + stream + b"\nendstream",
            b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>"]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj" % i + body + b"endobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def _mixed_folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "policy.md").write_text("# Debian policy\n\nPackages are built with dpkg-buildpackage.")
    (root / "guide.html").write_text("<html><head><title>Vellum Guide</title><style>p{color:red}</style></head>"
                                     "<body><h1>Guide</h1><p>Orvane &amp; Tessel lenses.</p>"
                                     "<script>var secret = 1</script></body></html>")
    (root / "sub" / "report.pdf").write_bytes(_pdf("Quarterly Brackwater report"))
    (root / "README").write_text("Plain text notes about the Zorblax relay.\n")
    (root / "blob").write_bytes(bytes(range(256)) * 4)
    (root / "data.csv").write_text("a,b\n1,2\n")
    (root / "empty.txt").write_text("   \n")
    (root / "scan.pdf").write_bytes(b"%PDF-1.4 not really")
    (root / ".git" / "config").write_text("[core]")
    return root


def test_folder_with_html_pdf_and_extensionless_text_says_what_it_skipped(tmp_path: Path) -> None:
    from ponder.tools.corpus import scan_folder

    seen: list[tuple[int, int]] = []
    scan = scan_folder(_mixed_folder(tmp_path / "docs"), lambda done, total, path: seen.append((done, total)))
    by_id = {d.id: d for d in scan.documents}
    assert set(by_id) == {"policy", "guide", "sub/report", "README"}
    assert by_id["guide"].title == "Vellum Guide" and "Orvane & Tessel lenses." in by_id["guide"].text
    assert "secret" not in by_id["guide"].text and "color" not in by_id["guide"].text  # scripts and styles dropped
    assert "Quarterly Brackwater report" in by_id["sub/report"].text
    assert "Zorblax" in by_id["README"].text
    why = {s.path: s.reason for s in scan.skipped}
    assert set(why) == {"blob", "data.csv", "empty.txt", "scan.pdf", ".git/config"}
    assert "binary" in why["blob"] and "unsupported type .csv" in why["data.csv"] and why["empty.txt"] == "empty"
    assert "unreadable PDF" in why["scan.pdf"] and why[".git/config"] == "hidden"
    assert seen[-1] == (scan.files, scan.files) and len(seen) == scan.files == 9  # progress per file


def test_load_corpus_from_folder_index_or_sample_and_named_tools_search_it(tmp_path: Path) -> None:
    from ponder.tools import CorpusError, load_corpus, named_tools

    docs = _mixed_folder(tmp_path / "docs")
    built = Corpus.build(docs, tmp_path / "index")
    assert len(built) == 4
    for source in (docs, tmp_path / "index"):
        c = load_corpus(source)
        assert c.search("Brackwater report")[0].id == "sub/report"
        assert str(docs) in c.name
    assert load_corpus(None) is sample_corpus()
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "nope")
    with pytest.raises(CorpusError, match="is a file"):
        load_corpus(docs / "README")
    with pytest.raises(CorpusError, match="no readable documents"):
        (tmp_path / "junk").mkdir()
        (tmp_path / "junk" / "x.csv").write_text("1")
        load_corpus(tmp_path / "junk")
    tools = {t.name: t for t in named_tools(["search"], corpus=tmp_path / "index")}
    ok, content, _ = await_(tools["search"].run({"query": "Debian dpkg"}))
    found = json.loads(content)
    assert ok and found["results"][0]["doc_id"] == "policy" and str(docs) in found["corpus"]
    ok, content, _ = await_(named_tools(["search"])[0].run({"query": "Debian dpkg"}))
    assert "sample corpus" in content  # no --corpus: the bundled fiction, and it says so


def await_(coro):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(coro)


def test_corpus_build_cli_lists_skipped_files(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from ponder.cli import corpus as corpus_cli

    app = typer.Typer()
    corpus_cli.register(app)
    app.command("noop")(lambda: None)
    docs = _mixed_folder(tmp_path / "docs")
    r = CliRunner().invoke(app, ["corpus", "build", str(docs), "--out", str(tmp_path / "idx"), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "indexed 4 documents" in r.output and "skipped 5 file(s)" in r.output
    assert "data.csv: unsupported type .csv" in r.output
    r = CliRunner().invoke(app, ["corpus", "search", "Zorblax relay", "--index", str(tmp_path / "idx")])
    assert r.exit_code == 0 and "[README]" in r.output and str(docs) in r.output
    r = CliRunner().invoke(app, ["corpus", "build", str(tmp_path / "missing"), "--out", str(tmp_path / "i2")])
    assert r.exit_code == 2 and "does not exist" in r.output
