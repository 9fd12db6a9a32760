"""`ponder compare` argument handling (the runs themselves are covered by test_runner)."""

from __future__ import annotations

from pathlib import Path

import typer
from typer.testing import CliRunner

from ponder.cli import compare


def _app() -> typer.Typer:
    app = typer.Typer()
    compare.register(app)
    app.command("noop")(lambda: None)  # a second command keeps "compare" as a sub-command
    return app


def test_unknown_resume_id_and_bad_mode_are_clear_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(_app(), ["compare", "--resume", "nope", "--db", str(tmp_path / "c.db")])
    assert r.exit_code == 2 and "no comparison 'nope'" in r.output
    r = CliRunner().invoke(_app(), ["compare", "--mode", "fast", "--db", str(tmp_path / "c.db")])
    assert r.exit_code == 2 and "unknown mode 'fast'" in r.output


def test_demo_configuration_runs_every_suite_and_mode() -> None:
    from ponder.bench.runner import CompareConfig
    from ponder.bench.suites import BUILTIN_SUITES

    cfg = CompareConfig(**compare.DEMO)
    cfg.validate()
    assert set(cfg.suites) == set(BUILTIN_SUITES) and cfg.suites[:2] == ["lookup-wide", "lookup-chain"]
    assert cfg.modes == ["swarm", "interleaved", "single"] and cfg.time_budget_s and cfg.time_budget_s <= 330


def test_corpus_that_does_not_exist_is_a_clear_error(tmp_path: Path) -> None:
    suite = tmp_path / "q.jsonl"
    suite.write_text('{"question": "What builds a Debian package?", "answer": "dpkg"}\n')
    r = CliRunner().invoke(_app(), ["compare", "--jsonl", str(suite), "--corpus", str(tmp_path / "nope"),
                                    "--mode", "single", "--db", str(tmp_path / "c.db"), "--no-progress"])
    assert r.exit_code == 2 and "does not exist" in r.output and "Traceback" not in r.output
