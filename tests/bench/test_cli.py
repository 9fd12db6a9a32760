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
