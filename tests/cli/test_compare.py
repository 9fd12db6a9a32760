"""`ponder compare --resume ID --retry-errors` reruns the errored tasks (and only those); a
comparison that cannot start is not stored at all, so none is left `running`."""

from __future__ import annotations

from typer.testing import CliRunner

from ponder.bench.store import CompareStore
from ponder.cli.main import app
from ponder.testing import Reply


def _invoke(tmp_path, *args):
    return CliRunner().invoke(app, ["compare", *args, "--db", str(tmp_path / "c.db"), "--out",
                                    str(tmp_path / "r.html"), "--no-progress"])


def test_resume_with_retry_errors_reruns_only_the_errored_tasks(scripted, tmp_path):
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"id": "good", "question": "What is 6*7?", "answer": "42", "grader": "number"}\n'
                     '{"id": "flaky", "question": "What is 40+2? (flaky)", "answer": "42", "grader": "number"}\n')
    asked: list[str] = []

    def reply(req, n):
        q = req.messages[-1].content
        asked.append(q)
        return Reply(error="upstream overloaded") if "flaky" in q and broken else Reply(content="Answer: 42")

    scripted.reply = reply
    broken = True
    r = _invoke(tmp_path, "--jsonl", str(suite), "--mode", "single")
    assert r.exit_code == 0, r.output
    store = CompareStore(tmp_path / "c.db")
    [(cid, status)] = store.comparisons()
    assert status == "done" and {x.task_id: x.status for x in store.results(cid)} == {"good": "ok", "flaky": "error"}

    broken = False
    asked.clear()
    r = _invoke(tmp_path, "--resume", cid)  # without the flag: stored errors stay as they are
    assert r.exit_code == 0 and asked == [], r.output
    assert {x.task_id: x.status for x in store.results(cid)}["flaky"] == "error"

    r = _invoke(tmp_path, "--resume", cid, "--retry-errors")
    assert r.exit_code == 0, r.output
    assert len(asked) == 1 and "flaky" in asked[0]  # the errored task only
    results = {x.task_id: x for x in store.results(cid)}
    assert results["flaky"].status == "ok" and results["flaky"].solved and results["good"].solved
    assert store.comparisons() == [(cid, "done")]


def test_a_resume_that_cannot_start_leaves_the_comparison_as_it_was(scripted, tmp_path):
    suite = tmp_path / "s.jsonl"
    suite.write_text('{"question": "What is 6*7?", "answer": "42", "grader": "number"}\n')
    scripted.reply = lambda req, n: Reply(content="Answer: 42")
    assert _invoke(tmp_path, "--jsonl", str(suite), "--mode", "single").exit_code == 0
    store = CompareStore(tmp_path / "c.db")
    [(cid, _)] = store.comparisons()
    suite.write_bytes(b'{"question": "caf\xe9", "answer": "42"}\n')  # the suite file broke since
    r = _invoke(tmp_path, "--resume", cid, "--retry-errors")
    assert r.exit_code == 2 and "s.jsonl:1: not UTF-8 text" in r.stderr and "Traceback" not in r.output
    assert store.comparisons() == [(cid, "done")]  # not flipped to running
