from __future__ import annotations

import pytest

from ponder.core.errors import ConfigError
from ponder.core.messages import Usage
from ponder.models.catalog import catalog, resolve


def test_builtin_prices_and_cost():
    k, g, s = resolve("kimi-k2.5"), resolve("glm-4.7"), resolve("smollm2")
    assert (k.price_input, k.price_cached_input, k.price_output) == (0.60, 0.10, 3.00)
    assert (g.price_input, g.price_cached_input, g.price_output) == (0.60, 0.11, 2.20)
    u = Usage(prompt_tokens=1_000_000, cached_prompt_tokens=400_000, completion_tokens=100_000)
    assert g.cost(u) == pytest.approx(0.6 * 0.6 + 0.4 * 0.11 + 0.1 * 2.2)
    assert s.cost(u) == 0 and s.dialect == "embedded"


def test_user_toml_adds_and_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "models.toml"
    cfg.write_text('[models.my-qwen]\nbase_url = "http://127.0.0.1:8000/v1"\nmodel_id = "Qwen/Qwen3-8B"\ndialect = "vllm"\n'
                   '[models."glm-4.7"]\nbase_url = "http://127.0.0.1:30000/v1"\ndialect = "sglang"\n')
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    cat = catalog()
    assert cat["my-qwen"].dialect == "vllm" and cat["my-qwen"].model_id == "Qwen/Qwen3-8B"
    assert cat["glm-4.7"].base_url.startswith("http://127.0.0.1:30000") and cat["glm-4.7"].price_output == 2.20


def test_bad_toml_and_bad_entry_are_clear(tmp_path, monkeypatch):
    cfg = tmp_path / "models.toml"
    cfg.write_text("[models.x\n")
    monkeypatch.setenv("PONDER_MODELS", str(cfg))
    with pytest.raises(ConfigError, match="not valid TOML"):
        catalog()
    cfg.write_text('[models.x]\ndialect = "klingon"\n')
    with pytest.raises(ConfigError, match="invalid"):
        catalog()


def test_url_forms_and_gguf_paths():
    s = resolve("sglang:http://10.0.0.1:30000/v1#zai-org/GLM-4.7-FP8")
    assert (s.dialect, s.base_url, s.model_id) == ("sglang", "http://10.0.0.1:30000/v1", "zai-org/GLM-4.7-FP8")
    assert resolve("/models/x.gguf").dialect == "embedded"
    adhoc = resolve("whatever", base_url="http://127.0.0.1:1/v1")
    assert adhoc.dialect == "openai" and adhoc.api_key_env is None
