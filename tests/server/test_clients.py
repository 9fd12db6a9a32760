"""Real clients against a real `ponder serve` process: the official `openai` SDK and the `llm`
CLI (configured through its extra-openai-models.yaml), on scripted upstreams (the
MockOpenAIServer test double, named in the catalog through PONDER_MODELS) and on the embedded
SmolLM2. Also: `ponder serve` refuses a non-loopback address without a token."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from tests.server.helpers import (
    catalog_file,
    child_env,
    free_port,
    ponder_bin,
    ponder_serve,
    upstream_reply,
)

from ponder.core.store import RunStore
from ponder.testing_http import MockOpenAIServer

pytestmark = pytest.mark.timeout(180)
TOKEN = "tok-3f9a"


@pytest.fixture(scope="module")
def mock():
    with MockOpenAIServer(upstream_reply).in_thread() as m:
        yield m


@pytest.fixture(scope="module")
def server(mock, tmp_path_factory):
    """`ponder serve --token` in its own process, catalog models `mock-glm`/`mock-kimi` on the mock."""
    tmp = tmp_path_factory.mktemp("serve")
    env = child_env(PONDER_HOME=str(tmp / "home"), PONDER_MODELS=str(catalog_file(tmp, mock.base_url)))
    db = tmp / "runs.db"
    with ponder_serve(["--token", TOKEN, "--db", str(db), "--tools", "calculator"], env) as url:
        yield url, db


def sdk(url: str, key: str = TOKEN) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_openai_sdk_against_ponder_serve(server):
    url, db = server
    c = sdk(url)
    r = c.chat.completions.create(model="mock-glm", messages=[{"role": "user", "content": "hello"}])
    assert r.choices[0].message.content == "plain answer"
    assert r.choices[0].message.model_extra["reasoning_content"] == "a plain thought"
    assert r.usage.prompt_tokens == 11 and r.usage.model_extra["cost_usd"] == pytest.approx((11 * 1.0 + 7 * 2.0) / 1e6)
    text, reasoning = "", ""
    for ch in c.chat.completions.create(model="interleaved/mock-glm", stream=True,
                                        messages=[{"role": "user", "content": "what is 6*7?"}]):
        if ch.choices:
            text += ch.choices[0].delta.content or ""
            reasoning += (ch.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
    assert text == "42" and "→ calculator" in reasoning and "the calculator said 42" in reasoning
    with pytest.raises(openai.AuthenticationError):
        sdk(url, "wrong").chat.completions.create(model="mock-glm", messages=[{"role": "user", "content": "x"}])
    with RunStore(db) as st:
        modes = {r["mode"] for r in st.runs()}
    assert {"proxy", "interleaved"} <= modes


def _llm(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "extra-openai-models.yaml").write_text(
        "- model_id: ponder-glm\n  model_name: mock-glm\n  api_base: " + url + "/v1\n  api_key_name: ponder\n"
        "- model_id: ponder-swarm\n  model_name: swarm/mock-glm\n  api_base: " + url + "/v1\n  api_key_name: ponder\n"
        "- model_id: ponder-smol\n  model_name: smollm2\n  api_base: " + url + "/v1\n  api_key_name: ponder\n")
    (tmp / "keys.json").write_text(json.dumps({"ponder": TOKEN}))
    llm = str(Path(sys.executable).with_name("llm"))
    return subprocess.run([llm, *args], env=child_env(LLM_USER_PATH=str(tmp)), capture_output=True, text=True,
                          timeout=150)


def test_llm_cli_through_ponder(server, tmp_path):
    url, db = server
    out = _llm(tmp_path, url, "-m", "ponder-glm", "say something")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "plain answer"
    out = _llm(tmp_path, url, "-m", "ponder-swarm", "--no-stream", "research alpha and beta")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "the swarm found alpha [alpha] and beta [beta]"
    with RunStore(db) as st:
        assert any(r["mode"] == "swarm" and r["status"] == "ok" for r in st.runs())


@pytest.mark.slow
def test_embedded_model_through_ponder_serve_with_sdk_and_llm(server, tmp_path):
    """SmolLM2 in the server process, a few tokens: the whole path on a real model."""
    url, db = server
    r = sdk(url).chat.completions.create(model="smollm2", max_tokens=6,
                                         messages=[{"role": "user", "content": "Say hello."}])
    assert r.choices[0].message.content and 0 < r.usage.completion_tokens <= 6
    out = _llm(tmp_path, url, "-m", "ponder-smol", "-o", "max_tokens", "6", "Say hello.")
    assert out.returncode == 0 and out.stdout.strip(), out.stderr


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    env = child_env(PONDER_HOME=str(tmp_path))
    out = subprocess.run([ponder_bin(), "serve", "--host", "0.0.0.0", "--port", str(free_port())], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "refusing to listen on 0.0.0.0 without a token" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([ponder_bin(), "serve", "--host", "::", "--allow-endpoint", "ftp://x"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "token" in out.stderr  # the bind check comes first
    out = subprocess.run([ponder_bin(), "mcp", "--transport", "http", "--host", "10.0.0.7"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "refusing to listen on 10.0.0.7 without a token" in out.stderr


def test_token_from_env_lets_a_public_bind_start(tmp_path):
    """PONDER_TOKEN counts as --token (the server starts on 0.0.0.0 and asks for it)."""
    env = child_env(PONDER_HOME=str(tmp_path), PONDER_TOKEN=TOKEN)
    port = free_port()
    with ponder_serve(["--host", "0.0.0.0"], env, port=port) as url:
        with pytest.raises(openai.AuthenticationError):
            sdk(url, "nope").models.list()
        assert any(m.id == "glm-4.7" for m in sdk(url).models.list().data)
