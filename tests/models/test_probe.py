"""`ponder probe` against scripted HTTP servers emulating the documented contracts of Kimi K2.6,
Kimi K3, GLM-5.2 and DeepSeek V4 (test doubles: `ponder.testing_providers`), and the
profile it saves being used by later runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ponder.cli.main import app
from ponder.core.errors import ConfigError
from ponder.core.events import ErrorEvent
from ponder.core.messages import Message
from ponder.models.base import ChatRequest
from ponder.models.catalog import resolve
from ponder.models.probe import probe, save_profile
from ponder.models.registry import model
from ponder.testing_providers import deepseek_v4, emulated, glm_52, kimi_k3, kimi_k26

SAMPLING_FIXED = ["temperature", "top_p", "presence_penalty", "n", "frequency_penalty"]


@pytest.fixture(autouse=True)
def _config(tmp_path, monkeypatch):
    cfg = tmp_path / "models.toml"
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    for var in ("MOONSHOT_API_KEY", "ZAI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.setenv(var, "sk-emulated-key-1234")
    return cfg


def verdicts(report) -> dict[str, str]:
    return {c.name: c.result for c in report.checks}


async def test_k26_contract_fixed_sampling_tool_choice_keep_flag_and_strict_replay():
    async with emulated(kimi_k26(strict=True)) as srv:
        r = await probe(resolve("kimi-k2.6", base_url=srv.base_url), max_tokens=64)
    v = verdicts(r)
    assert r.observed["fixed_sampling"] == SAMPLING_FIXED
    assert r.observed["tool_choice"] == ["auto", "none"]
    assert v["thinking"] == "toggle" and v["replay"] == "required" and r.observed["strict"] is True
    assert v["preserve"] == "flag thinking.keep" and r.observed["preserve_on"] == "all"
    assert r.observed["replay"] == "interleaved"
    assert v["stream_usage"] == "yes" and "cached" in r.check("stream_usage").detail
    assert v["parallel_tool_calls"] == "yes" and v["tool_call_stream"] == "ok" and v["vision"] == "no"
    assert v["effort"] == "unchecked" and "effort_levels" not in r.observed
    # nothing ponder's own transport sent was rejected: temperature never went out
    assert not any("temperature" in p for p in srv.requests if p.get("stream") and p.get("tools"))


async def test_k26_live_drift_missing_reasoning_is_accepted_and_rendered():
    async with emulated(kimi_k26(strict=False)) as srv:
        r = await probe(resolve("kimi-k2.6", base_url=srv.base_url), max_tokens=64)
    assert verdicts(r)["replay"] == "accepted" and r.observed["strict"] is False
    assert "rendered (+" in r.check("replay").detail


async def test_k3_contract_always_thinks_preserves_by_default_and_400s_on_missing_reasoning():
    async with emulated(kimi_k3()) as srv:
        r = await probe(resolve("kimi:" + srv.base_url + "#kimi-k3"), max_tokens=64)  # ad hoc: no profile to lean on
    v = verdicts(r)
    assert v["thinking"] == "always" and "rejected" in r.check("thinking").detail
    assert v["preserve"] == "preserved" and r.observed["replay"] == "preserved"
    assert v["replay"] == "required" and "reasoning_content is missing" in r.check("replay").detail
    assert r.observed["fixed_sampling"] == SAMPLING_FIXED and r.observed["tool_choice"] == ["auto", "none"]


async def test_glm52_contract_effort_levels_and_clear_thinking():
    async with emulated(glm_52()) as srv:
        r = await probe(resolve("glm-5.2", base_url=srv.base_url), max_tokens=64)
    v = verdicts(r)
    assert r.observed["effort_levels"] == ["max", "high"]
    assert "low: HTTP 400" in r.check("effort").detail
    assert v["preserve"] == "flag thinking.clear_thinking" and r.observed["preserve_on"] is False
    assert v["replay"] == "accepted" and v["sampling"] == "overridable" and r.observed["fixed_sampling"] == []
    assert r.observed["tool_choice"] == ["auto", "none", "required", "function"]


async def test_deepseek_v4_contract_400_on_missing_reasoning_and_no_preservation():
    async with emulated(deepseek_v4(strict=True)) as srv:
        r = await probe(resolve("deepseek-v4-flash", base_url=srv.base_url), max_tokens=64)
    v = verdicts(r)
    assert v["replay"] == "required" and r.observed["strict"] is True
    assert v["preserve"] == "interleaved" and r.observed["preserve"] is False
    assert r.observed["effort_levels"] == ["high", "max"] and v["thinking"] == "toggle"
    assert "cached" in r.check("stream_usage").detail and "not reported" not in r.check("stream_usage").detail


async def test_saved_profile_is_used_by_later_runs(_config):
    async with emulated(kimi_k26()) as srv:
        spec = resolve("kimi:" + srv.base_url + "#kimi-k2.6")
        assert spec.profile.fixed_sampling == []  # an ad-hoc Kimi endpoint: nothing known yet
        r = await probe(spec, max_tokens=64)
        save_profile(r, spec, "k26-gateway")
        saved = resolve("k26-gateway")
        assert saved.base_url == srv.base_url and saved.profile.fixed_sampling == SAMPLING_FIXED
        assert saved.profile.observed and srv.base_url in saved.profile.observed
        m = model("k26-gateway")
        n = len(srv.requests)
        evs = [ev async for ev in m.stream(ChatRequest(messages=[Message.user("q")], temperature=0.2))]
        await m.aclose()
    assert isinstance(evs[-1], ErrorEvent) and "k26-gateway fixes temperature" in evs[-1].message
    assert len(srv.requests) == n  # refused before sending
    # the file is a normal models.toml a user can read and edit
    assert '[models.k26-gateway.profile]' in _config.read_text()


def test_save_keeps_the_users_comments_and_refuses_a_broken_file(_config, tmp_path):
    from ponder.models.probe import ProbeReport

    _config.write_text('# my gateways\n[models.mine]\nbase_url = "http://127.0.0.1:1/v1"  # lab box\n')
    rep = ProbeReport("mine", "http://127.0.0.1:1/v1", observed={"vision": True, "tool_choice": ["auto"]})
    save_profile(rep, resolve("mine"), "mine")
    text = _config.read_text()
    assert "# my gateways" in text and "# lab box" in text
    assert resolve("mine").profile.vision and resolve("mine").profile.tool_choice == ["auto"]
    _config.write_text("[models.mine\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        save_profile(rep, resolve("x", base_url="http://127.0.0.1:1/v1"), "mine")
    assert _config.read_text() == "[models.mine\n"  # not overwritten


def test_probe_cli_table_json_and_clean_errors(_config):
    with emulated(glm_52()).in_thread() as srv:
        r = CliRunner().invoke(app, ["probe", "glm-5.2", "--base-url", srv.base_url, "--json", "--max-tokens", "32"])
        assert r.exit_code == 0, r.output
        data = json.loads(r.output)
        assert data["observed_profile"]["effort_levels"] == ["max", "high"] and data["saved_to"] == str(_config)
        assert resolve("glm-5.2").profile.effort_levels == ["max", "high"]
        r = CliRunner().invoke(app, ["probe", "glm-5.2", "--base-url", srv.base_url, "--no-save"])
        assert r.exit_code == 0 and "preserve" in r.output and "thinking.clear_thinking" in r.output
    bad = CliRunner().invoke(app, ["probe", "qwen3.6"])
    assert bad.exit_code == 2 and "no base_url" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, ["probe", "x", "--base-url", "http://127.0.0.1:9/v1", "--timeout", "5"])
    assert bad.exit_code == 2 and "probe of x stopped" in bad.output
