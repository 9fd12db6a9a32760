"""`ponder chat`: model output printed as text (never markup), prompts from stdin and files,
the call's wall clock (`--timeout`), and exit codes with `--json` too."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ponder.cli.main import app
from ponder.testing import Reply

NASTY = "arr[i] = [bold]x[/bold]; closing [/] and [link=file:///etc/passwd]here[/link] \\[esc]"


def test_model_text_is_printed_verbatim_never_as_markup(scripted):
    scripted.reply = lambda req, n: Reply(reasoning="thinking about [/] and [red]", content=NASTY)
    r = CliRunner().invoke(app, ["chat", "hi"])
    assert r.exit_code == 0, r.output
    assert "thinking about [/] and [red]" in r.stdout and NASTY in r.stdout


def test_tool_call_line_is_text(scripted):
    scripted.reply = lambda req, n: Reply(reasoning="r", tool_calls=[("lookup", {"q": "a[/]b", "x": "[bold]y"})])
    r = CliRunner().invoke(app, ["chat", "hi"])
    assert r.exit_code == 0, r.output
    assert 'tool call lookup({"q": "a[/]b", "x": "[bold]y"})' in " ".join(r.stdout.split())


def test_error_message_with_brackets_is_text_and_exits_1(scripted):
    scripted.reply = lambda req, n: Reply(error="upstream said [/] and [bold]no")
    r = CliRunner().invoke(app, ["chat", "hi"])
    assert r.exit_code == 1 and "upstream said [/] and [bold]no" in r.stderr and "Traceback" not in r.output


def test_json_errors_exit_1_and_stdout_is_only_json(scripted):
    scripted.reply = lambda req, n: Reply(error="model fell over")
    r = CliRunner().invoke(app, ["chat", "--json", "hi"])
    assert r.exit_code == 1, r.output
    events = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    assert events[-1]["type"] == "error" and "model fell over" in events[-1]["message"]
    scripted.reply = lambda req, n: Reply(content="fine")
    r = CliRunner().invoke(app, ["chat", "--json", "hi"])
    assert r.exit_code == 0 and json.loads(r.stdout.splitlines()[-1])["type"] == "model_call_finished"


def test_prompt_from_stdin_and_file_two_megabytes(scripted, tmp_path):
    big = ("line of a long prompt ü\n" * 90_000)[: 2 * 2**20]
    r = CliRunner().invoke(app, ["chat", "-"], input=big.encode())
    assert r.exit_code == 0, r.output
    assert scripted.built[-1].model.requests[0].messages[-1].content == big
    (tmp_path / "p.txt").write_text(big, encoding="utf-8")
    r = CliRunner().invoke(app, ["chat", "--file", str(tmp_path / "p.txt"), "--system", "be brief"])
    assert r.exit_code == 0, r.output
    msgs = scripted.built[-1].model.requests[0].messages
    assert msgs[0].content == "be brief" and msgs[-1].content == big


def test_timeout_stops_the_call_and_exits_3(scripted):
    scripted.reply = lambda req, n: Reply(content="too late", delay_s=30)
    r = CliRunner().invoke(app, ["chat", "--timeout", "0.3", "hi"])
    assert r.exit_code == 3, r.output
    assert "no complete reply within --timeout 0.3s" in r.stderr and "too late" not in r.stdout
    r = CliRunner().invoke(app, ["chat", "--json", "--timeout", "0.3", "hi"])
    assert r.exit_code == 3
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["type"] == "error" and last["error_type"] == "Timeout"


def test_thinking_auto_and_idle_timeout_reach_the_model(scripted):
    r = CliRunner().invoke(app, ["chat", "-m", "x", "--base-url", "http://127.0.0.1:8123/v1", "--idle-timeout", "2.5",
                                 "--thinking", "auto", "--header", "X-Team: lab", "hi"])
    assert r.exit_code == 0, r.output
    b = scripted.built[-1]
    assert b.kwargs["idle_timeout_s"] == 2.5 and b.kwargs["headers"] == {"X-Team": "lab"}
    assert b.model.requests[0].thinking is None  # auto: the provider's default
