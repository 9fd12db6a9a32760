"""`ponder models` (names never truncated, --json) and `ponder chat` flags (--image, --header,
--dialect) as a user meets them: exit codes and one-line errors, never a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ponder.cli.main import app
from ponder.testing_http import MockOpenAIServer, sse_text_reply

PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5"
       "ErkJggg==")


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    monkeypatch.setenv("PONDER_MODELS", str(tmp_path / "models.toml"))
    return tmp_path / "models.toml"


def test_models_names_never_truncate_at_80_columns_piped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0, r.output
    names = ["kimi-k2.7-code", "deepseek-v4-flash", "deepseek-v4-pro", "kimi-k2-thinking", "glm-5.2", "minimax-m2"]
    for name in names:
        assert any(line.split() and line.split()[0] == name for line in r.output.splitlines()), name
    assert "…" not in r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80


def test_models_json_has_profiles_and_capabilities_and_no_header_values(_config, monkeypatch):
    monkeypatch.setenv("GWK", "gw-secret-55555")
    _config.write_text('[models.gw]\nbase_url = "http://127.0.0.1:1/v1"\nheaders = { X-Key = "${GWK}" }\n')
    r = CliRunner().invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    data = {m["name"]: m for m in json.loads(r.output)}
    k3 = data["kimi-k3"]
    assert k3["backend"] == "http" and k3["capabilities"]["native_thinking"] and k3["price_input"] is None
    assert k3["profile"]["thinking"] == "always" and not k3["prices_known"]
    assert data["smollm2"]["capabilities"]["constrained_decoding"] and data["smollm2"]["backend"] == "embedded"
    assert data["gw"]["headers"] == ["X-Key"] and "gw-secret" not in r.output


def test_models_with_a_broken_config_is_one_line(_config):
    _config.write_text('[models.x]\nbase_ulr = "http://h/v1"\n')
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 2 and "did you mean 'base_url'" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("args,words", [
    (["--model", "x", "--base-url", "http://127.0.0.1:1/v1", "--dialect", "bogus"], "unknown dialect 'bogus'"),
    (["--model", "smollm2", "--image", "/nonexistent/cat.png"], "is not a file"),
    (["--model", "smollm2", "--image", PNG], "smollm2 does not accept image inputs"),
    (["--model", "x", "--base-url", "http://127.0.0.1:1/v1", "--header", "no-colon"], "must look like NAME:VALUE"),
    (["--model", "kimi-k2.6", "--temperature", "0.5"], "kimi-k2.6 fixes temperature; drop --temperature"),
    (["--model", "kimi-k2.5"], "retired on api.moonshot.ai"),
])
def test_chat_bad_flags_are_one_line_errors(args, words, monkeypatch):
    monkeypatch.setenv("MOONSHOT_API_KEY", "sk-test-1234")
    r = CliRunner().invoke(app, ["chat", "hi", *args])
    assert r.exit_code == 2, r.output
    assert words in " ".join(r.output.split()) and "Traceback" not in r.output


def test_chat_sends_images_and_headers(_config):
    with MockOpenAIServer(lambda p, n: sse_text_reply(content="a red dot")).in_thread() as srv:
        _config.write_text(f'[models.eyes]\nbase_url = "{srv.base_url}"\ndialect = "vllm"\n[models.eyes.profile]\nvision = true\n')
        r = CliRunner().invoke(app, ["chat", "what is it?", "--model", "eyes", "--image", PNG, "--header", "X-Team: lab"])
    assert r.exit_code == 0, r.output
    assert "a red dot" in r.output
    assert srv.requests[0]["messages"][0]["content"] == [{"type": "image_url", "image_url": {"url": PNG}},
                                                         {"type": "text", "text": "what is it?"}]
    assert srv.headers[0]["x-team"] == "lab"
