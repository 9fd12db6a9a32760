"""The bad-input matrix (issue 12): every case runs the real `ponder` CLI and must end with
one `error:` line on stderr that names the problem and the fix, the exit code of the one
documented map (bad input or configuration: 2), no traceback, and nothing half-written:
no run row in the run store, no comparison in the compare store.

Models are scripted test doubles behind the real catalog (the `scripted` fixture), so a case
that slipped through validation would run (and fail this test by its exit code and its run
row) instead of reaching a network."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.bench.store import CompareStore
from ponder.cli.main import app
from ponder.core.store import RunStore


@dataclass
class Case:
    id: str
    args: list[str]
    words: list[str]  # all in the one error line: the problem and the fix
    code: int = 2
    files: dict[str, bytes | None] = field(default_factory=dict)  # name -> content (None: a folder)
    models_toml: str | None = None  # a file in `files` used as $PONDER_MODELS
    stdin: bytes | None = None


BAD_TOMLS = {
    "five.toml": b"models = 5\n",
    "string.toml": b'[models]\nx = "just a string"\n',
    "dir.toml": None,
    "latin1.toml": b'[models.x]\nbase_url = "http://h/v1"\ndescription = "caf\xe9"\n',
    "typo.toml": b'[models.x]\nbase_ulr = "http://127.0.0.1:8000/v1"\n',
    "syntax.toml": b"[models.x\nbase_url = 1\n",
    "url.toml": b'[models.x]\nbase_url = "htp:/x"\n',
    "port.toml": b'[models.x]\nbase_url = "http://127.0.0.1:99999/v1"\n',
    "shape.toml": b'[models.x]\nheaders = "X-Key: 1"\n',
}
TOML_WORDS = {
    "five.toml": ["`models` must be a table", "[models.NAME]"],
    "string.toml": ["models.x must be a table", "not a str"],
    "dir.toml": ["is a directory", "point PONDER_MODELS at a .toml file"],
    "latin1.toml": ["latin1.toml is not UTF-8", "save it as UTF-8"],
    "typo.toml": ["unknown key 'base_ulr'", "did you mean 'base_url'"],
    "syntax.toml": ["syntax.toml is not valid TOML", "line 1"],
    "url.toml": ["base URL 'htp:/x' is not an http(s) URL", "http://127.0.0.1:8000/v1"],
    "port.toml": ["has a bad port", "1 to 65535"],
    "shape.toml": ["headers", "valid dictionary"],
}

CASES: list[Case] = []
for name, words in TOML_WORDS.items():  # every command that reads the catalog says the same
    for cmd in (["models"], ["run", "-m", "x", "hi"], ["chat", "-m", "x", "hi"]):
        CASES.append(Case(f"{cmd[0]}-toml-{name}", cmd, words, files={name: BAD_TOMLS[name]}, models_toml=name))

NON_UTF8 = b"what is caf\xe9?\n"
CASES += [
    # ---- ponder chat
    Case("chat-url-scheme", ["chat", "-m", "x", "--base-url", "htp:/x", "hi"],
         ["--base-url 'htp:/x' is not an http(s) URL", "give one like http://127.0.0.1:8000/v1"]),
    Case("chat-url-port", ["chat", "-m", "x", "--base-url", "http://127.0.0.1:99999/v1", "hi"],
         ["--base-url", "bad port", "1 to 65535"]),
    Case("chat-url-port-0", ["chat", "-m", "x", "--base-url", "http://127.0.0.1:0/v1", "hi"], ["port 0", "1 to 65535"]),
    Case("chat-inline-url-port", ["chat", "-m", "vllm:http://127.0.0.1:70000/v1#m", "hi"], ["bad port", "1 to 65535"]),
    Case("chat-thinking", ["chat", "--thinking", "maybe", "hi"], ["--thinking must be on, off or auto", "'maybe'"]),
    Case("chat-dialect", ["chat", "-m", "x", "--base-url", "http://127.0.0.1:1/v1", "--dialect", "bogus", "hi"],
         ["unknown dialect 'bogus'", "choose one of"]),
    Case("chat-timeout-0", ["chat", "--timeout", "0", "hi"], ["--timeout must be greater than 0"]),
    Case("chat-idle-timeout-neg", ["chat", "--idle-timeout", "-1", "hi"], ["--idle-timeout must be greater than 0"]),
    Case("chat-max-tokens-0", ["chat", "--max-tokens", "0", "hi"], ["--max-tokens must be at least 1"]),
    Case("chat-no-prompt", ["chat"], ["no prompt", "--file PATH", "- to read stdin"]),
    Case("chat-blank-prompt", ["chat", "   "], ["the prompt is empty"]),
    Case("chat-blank-stdin", ["chat", "-"], ["the prompt is empty"], stdin=b"  \n"),
    Case("chat-file-missing", ["chat", "--file", "{tmp}/nope.txt"], ["cannot read the task from", "nope.txt"]),
    Case("chat-file-not-utf8", ["chat", "--file", "{tmp}/q.txt"], ["q.txt is not UTF-8 text", "convert it"],
         files={"q.txt": NON_UTF8}),
    Case("chat-stdin-not-utf8", ["chat", "-"], ["stdin is not UTF-8 text"], stdin=NON_UTF8),
    Case("chat-bad-header", ["chat", "--header", "nocolon", "hi"], ["must look like NAME:VALUE"]),
    Case("chat-unknown-model", ["chat", "-m", "nope", "hi"], ["unknown model 'nope'", "--base-url"]),
    # ---- ponder run, both modes
    *[c for mode in ("interleaved", "swarm") for c in (
        Case(f"run-{mode}-url-scheme", ["run", "--mode", mode, "-m", "x", "--base-url", "htp:/x", "hi"],
             ["--base-url 'htp:/x' is not an http(s) URL"]),
        Case(f"run-{mode}-url-port", ["run", "--mode", mode, "-m", "x", "--base-url", "http://127.0.0.1:99999/v1", "hi"],
             ["--base-url", "bad port"]),
        Case(f"run-{mode}-inline-url-port", ["run", "--mode", mode, "-m", "vllm:http://127.0.0.1:70000/v1#m", "hi"],
             ["bad port"]),
        Case(f"run-{mode}-empty-task", ["run", "--mode", mode, ""], ["the task is empty", "--file PATH"]),
        Case(f"run-{mode}-blank-task", ["run", "--mode", mode, " \n\t "], ["the task is empty"]),
        Case(f"run-{mode}-blank-stdin", ["run", "--mode", mode, "-"], ["the task is empty"], stdin=b"\n\n"),
        Case(f"run-{mode}-max-steps", ["run", "--mode", mode, "--max-steps", "-1", "hi"],
             ["--max-steps must be greater than or equal to 1", "(got -1)"]),
        Case(f"run-{mode}-max-tokens", ["run", "--mode", mode, "--max-tokens", "0", "hi"],
             ["--max-tokens must be greater than or equal to 1", "(got 0)"]),
        Case(f"run-{mode}-timeout", ["run", "--mode", mode, "--timeout", "0", "hi"], ["--timeout must be greater than 0"]),
        Case(f"run-{mode}-idle-timeout", ["run", "--mode", mode, "--idle-timeout", "-2", "hi"],
             ["--idle-timeout must be greater than 0"]),
        Case(f"run-{mode}-max-cost", ["run", "--mode", mode, "--max-cost", "-1", "hi"], ["--max-cost must be greater than 0"]),
        Case(f"run-{mode}-max-tool-calls", ["run", "--mode", mode, "--max-tool-calls", "-1", "hi"],
             ["--max-tool-calls must be greater than or equal to 0"]),
        Case(f"run-{mode}-threads", ["run", "--mode", mode, "--threads", "0", "hi"], ["--threads must be"]),
        Case(f"run-{mode}-thinking", ["run", "--mode", mode, "--thinking", "maybe", "hi"],
             ["--thinking must be 'on', 'off' or 'auto'", "'maybe'"]),
        Case(f"run-{mode}-tools", ["run", "--mode", mode, "--tools", "nope", "hi"],
             ["unknown tool 'nope'", "python, calculator, search"]),
        Case(f"run-{mode}-dialect", ["run", "--mode", mode, "--dialect", "bogus", "hi"], ["unknown dialect 'bogus'"]),
        Case(f"run-{mode}-corpus", ["run", "--mode", mode, "--corpus", "{tmp}/no-such-dir", "hi"],
             ["no-such-dir", "does not exist"]),
        Case(f"run-{mode}-unknown-model", ["run", "--mode", mode, "-m", "nope", "hi"], ["unknown model 'nope'"]),
    )],
    Case("run-sub-max-steps", ["run", "--mode", "swarm", "--sub-max-steps", "0", "hi"], ["--sub-max-steps must be"]),
    Case("run-max-parallel", ["run", "--mode", "swarm", "--max-parallel", "0", "hi"], ["--max-parallel must be"]),
    Case("run-unknown-sub-model", ["run", "--mode", "swarm", "--sub-model", "nope", "hi"], ["unknown model 'nope'"]),
    Case("run-mode", ["run", "--mode", "bogus", "hi"], ["--mode: unknown mode 'bogus'", "interleaved, swarm"]),
    Case("run-no-task", ["run"], ["no task", "--file PATH"]),
    Case("run-task-and-file", ["run", "--file", "{tmp}/q.txt", "hi"], ["either as an argument or with --file"],
         files={"q.txt": b"hi"}),
    Case("run-file-not-utf8", ["run", "--file", "{tmp}/q.txt"], ["q.txt is not UTF-8 text"], files={"q.txt": NON_UTF8}),
    Case("run-file-is-dir", ["run", "--file", "{tmp}/d"], ["cannot read the task from", "d"], files={"d": None}),
    Case("run-stdin-not-utf8", ["run", "-"], ["stdin is not UTF-8 text", "--file"], stdin=NON_UTF8),
    Case("runs-limit", ["runs", "--limit", "0"], ["--limit must be at least 1"]),
    Case("resume-unknown", ["resume", "nope"], ["no run", "nope"]),
    # ---- ponder tco
    *[Case(f"tco{flag}-{v}", ["tco", "-m", "glm-4.7", "--no-chart", flag, v], [f"{flag} must be", f"(got {v}"])
      for flag, v in (("--tp", "0"), ("--tp", "-2"), ("--dp", "0"), ("--ep", "0"), ("--gpus", "0"), ("--gpus", "-1"),
                      ("--gpus-per-node", "0"), ("--inter-node-gb-s", "0"), ("--gpu-price", "-1"),
                      ("--spec-tokens", "-1"))],
    Case("tco-tp-without-model", ["tco", "--tp", "0"], ["--tp must be at least 1"]),
    Case("tco-users", ["tco", "-m", "glm-4.7", "--no-chart", "--users", "0"], ["users", "must be at least 1"]),
    Case("tco-acceptance", ["tco", "-m", "glm-4.7", "--no-chart", "--acceptance", "2"], ["acceptance", "[0, 1)"]),
    # ---- ponder serve / mcp
    Case("serve-port-high", ["serve", "--port", "99999"], ["--port 99999 is out of range", "1 to 65535"]),
    Case("serve-port-0", ["serve", "--port", "0"], ["--port 0 is out of range"]),
    Case("serve-allow-endpoint", ["serve", "--allow-endpoint", "ftp://x"], ["--allow-endpoint 'ftp://x'", "http(s)"]),
    Case("serve-max-request", ["serve", "--max-request-mb", "0"], ["--max-request-mb must be positive"]),
    Case("serve-tools", ["serve", "--tools", "nope"], ["unknown tool 'nope'"]),
    Case("mcp-port", ["mcp", "--transport", "http", "--port", "99999"], ["--port 99999 is out of range"]),
    Case("mcp-timeout", ["mcp", "--timeout", "0"], ["--timeout must be greater than 0"]),
    Case("mcp-max-steps", ["mcp", "--max-steps", "0"], ["--max-steps must be at least 1"]),
    # ---- ponder compare (the compare store must hold no comparison afterwards)
    Case("compare-jsonl-not-utf8", ["compare", "--jsonl", "{tmp}/s.jsonl", "--mode", "single"],
         ["s.jsonl:2: not UTF-8 text", "save the file as UTF-8"],
         files={"s.jsonl": b'{"question": "q1", "answer": "a"}\n{"question": "caf\xe9", "answer": "b"}\n'}),
    Case("compare-jsonl-bad-line", ["compare", "--jsonl", "{tmp}/s.jsonl", "--mode", "single"],
         ["s.jsonl:3: not valid JSON", "one JSON object"],
         files={"s.jsonl": b'{"question": "q1", "answer": "a"}\n\n{"question": "q2", "answer": \n'}),
    Case("compare-jsonl-missing-answer", ["compare", "--jsonl", "{tmp}/s.jsonl", "--mode", "single"],
         ["s.jsonl:1:", "\"question\" and \"answer\""], files={"s.jsonl": b'{"question": "q1"}\n'}),
    Case("compare-jsonl-blank-question", ["compare", "--jsonl", "{tmp}/s.jsonl", "--mode", "single"],
         ["s.jsonl:1: the question is blank"], files={"s.jsonl": b'{"question": "  ", "answer": "a"}\n'}),
    Case("compare-jsonl-width", ["compare", "--jsonl", "{tmp}/s.jsonl", "--mode", "single"],
         ["s.jsonl:1:", "\"width\" must be a whole number"],
         files={"s.jsonl": b'{"question": "q", "answer": "a", "width": "wide"}\n'}),
    Case("compare-jsonl-missing", ["compare", "--jsonl", "{tmp}/none.jsonl", "--mode", "single"],
         ["none.jsonl", "not found"]),
    Case("compare-unknown-model", ["compare", "-s", "reason", "--n", "1", "--mode", "single", "-m", "nope"],
         ["unknown model 'nope'"]),
    Case("compare-bad-toml", ["compare", "-s", "reason", "--n", "1", "--mode", "single"], ["`models` must be a table"],
         files={"five.toml": BAD_TOMLS["five.toml"]}, models_toml="five.toml"),
    Case("compare-task-timeout", ["compare", "-s", "reason", "--task-timeout", "0"], ["--task-timeout must be greater than 0"]),
    Case("compare-time-budget", ["compare", "-s", "reason", "--time-budget", "-5"], ["--time-budget must be greater than 0"]),
    Case("compare-max-steps", ["compare", "-s", "reason", "--max-steps", "0"], ["--max-steps must be at least 1"]),
    Case("compare-sub-max-steps", ["compare", "-s", "reason", "--sub-max-steps", "0"], ["--sub-max-steps must be at least 1"]),
    Case("compare-n", ["compare", "-s", "reason", "--n", "0"], ["--n and --concurrency must be at least 1"]),
    Case("compare-thinking", ["compare", "-s", "reason", "--thinking", "maybe"], ["thinking must be on, off or auto"]),
    Case("compare-mode", ["compare", "--mode", "fast"], ["unknown mode 'fast'"]),
    Case("compare-suite", ["compare", "-s", "nope"], ["unknown suite 'nope'"]),
    Case("compare-retry-without-resume", ["compare", "--retry-errors"], ["--retry-errors", "give --resume ID"]),
    Case("compare-resume-unknown", ["compare", "--resume", "nope"], ["no comparison 'nope'"]),
]


def _materialise(case: Case, tmp: Path) -> list[str]:
    for name, content in case.files.items():
        p = tmp / name
        if content is None:
            p.mkdir()
        else:
            p.write_bytes(content)
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    if args[0] == "compare":
        args += ["--db", str(tmp / "compare.db"), "--out", str(tmp / "report.html"), "--no-progress"]
    return args


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(case: Case, tmp_path: Path, scripted, monkeypatch) -> None:
    monkeypatch.setenv("PONDER_MODELS", str(tmp_path / (case.models_toml or "models.toml")))
    monkeypatch.delenv("PONDER_TOKEN", raising=False)
    args = _materialise(case, tmp_path)
    r = CliRunner().invoke(app, args, input=case.stdin)
    assert r.exit_code == case.code, f"exit {r.exit_code}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr  # one line: never re-wrapped, never a usage box
    for w in case.words:
        assert w in errors[0], f"{w!r} not in {errors[0]!r}"
    assert not any(m.model.requests for m in scripted.built), "a model was called for bad input"
    run_db = Path(os.environ["PONDER_HOME"]) / "ponder.db"
    if run_db.exists():
        assert RunStore(run_db).runs() == [], "a run row was written for bad input"
    compare_db = tmp_path / "compare.db"
    if compare_db.exists():
        assert CompareStore(compare_db).comparisons() == [], "a comparison was stored for bad input"


def test_matrix_covers_every_case_of_the_issue() -> None:
    """The issue's lists, by command: a case for each (a deleted case fails here)."""
    ids = {c.id for c in CASES}
    for needed in ("models-toml-five.toml", "models-toml-string.toml", "models-toml-dir.toml",
                   "models-toml-latin1.toml", "models-toml-typo.toml", "chat-url-scheme", "chat-url-port",
                   "run-interleaved-url-scheme", "run-swarm-url-port", "run-swarm-empty-task", "run-swarm-blank-task",
                   "tco--tp-0", "serve-port-high", "mcp-port", "run-interleaved-max-steps", "run-swarm-max-tokens",
                   "run-interleaved-timeout", "run-swarm-max-cost", "chat-thinking", "run-swarm-tools", "chat-dialect",
                   "run-interleaved-dialect", "compare-jsonl-not-utf8", "compare-jsonl-bad-line", "chat-stdin-not-utf8"):
        assert needed in ids, needed
