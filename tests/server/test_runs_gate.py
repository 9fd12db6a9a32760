"""`POST /v1/runs` passes the same gate as the OpenAI endpoint (issue 12): catalog models
only (an inline endpoint needs `--allow-endpoint`, a GGUF path never runs), a size cap, one-line
422s for a blank task or a bad field, and no run row for a refused request. And the OpenAI
endpoint's `ponder.timeout_s` bounds a plain (proxied) call too."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from ponder.models.registry import model as real_model
from ponder.server import create_app
from ponder.server.openai_api import OpenAIOptions
from ponder.testing import Reply, ScriptedModel
from ponder.testing_http import FAULTS, MockOpenAIServer

from .helpers import serve_app

ALLOWED = "http://127.0.0.1:9/v1"


@pytest.fixture
def url(tmp_path):
    def factory(name: str):
        return ScriptedModel([Reply(reasoning="easy", content="5")], name_=name)

    app = create_app(db=tmp_path / "runs.db", model_factory=factory,
                     openai=OpenAIOptions(allow_endpoints=(ALLOWED,), max_request_bytes=4096))
    with serve_app(app) as base:
        yield base


@pytest.mark.parametrize("body,status,words", [
    ({"task": "x", "model": "vllm:http://10.0.0.1:8000/v1#qwen"}, 403, "endpoint http://10.0.0.1:8000/v1 is not allowed"),
    ({"task": "x", "model": "openai:https://evil.example/v1#m"}, 403, "--allow-endpoint"),
    ({"task": "x", "mode": "swarm", "model": "smollm2", "sub_model": "openai:http://169.254.169.254/v1#m"}, 403,
     "catalog models only"),
    ({"task": "x", "model": "/home/me/models/any.gguf"}, 403, "not model files"),
    ({"task": "   ", "mode": "swarm"}, 422, "task: the task is blank"),
    ({"task": ""}, 422, "task"),
    ({"task": "x", "max_steps": 0}, 422, "max_steps"),
    ({"task": "x", "mode": "debate"}, 422, "mode"),
    ({"task": "x" * 5000}, 413, "--max-request-mb"),
])
def test_refused_requests_name_the_problem_and_store_nothing(url, body, status, words):
    with httpx.Client(timeout=30) as c:
        r = c.post(url + "/v1/runs", json=body)
        assert r.status_code == status, r.text
        detail = r.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and words in detail, detail
        assert c.get(url + "/v1/runs").json() == []


def test_not_json_and_bad_limit(url):
    with httpx.Client(timeout=30) as c:
        r = c.post(url + "/v1/runs", content=b"{task: x", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
        assert c.get(url + "/v1/runs", params={"limit": 0}).status_code == 422


def test_an_allowed_endpoint_and_catalog_names_pass_the_gate(url):
    with httpx.Client(timeout=30) as c:
        for model in (f"openai:{ALLOWED}#m", f"openai:{ALLOWED}/#m", "scripted-name"):
            with c.stream("POST", url + "/v1/runs", json={"task": "2+3?", "model": model, "tools": []}) as r:
                assert r.status_code == 200, r.read()
                body = "".join(r.iter_text())
            assert '"status":"ok"' in body.replace(" ", "")
        assert len(c.get(url + "/v1/runs").json()) == 3


@pytest.mark.parametrize("recorded", [True, False])
def test_openai_endpoint_timeout_bounds_a_proxied_call(tmp_path, recorded):
    with MockOpenAIServer(lambda p, n: FAULTS["stall_before_headers"](n)).in_thread() as mock:
        app = create_app(db=tmp_path / "runs.db", model_factory=lambda name: real_model(f"openai:{mock.base_url}#m"),
                         openai=OpenAIOptions(record_passthrough=recorded))
        with serve_app(app) as base:
            c = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0, timeout=60)
            t0 = time.monotonic()
            r = c.chat.completions.create(model="stalls", messages=[{"role": "user", "content": "q"}],
                                          extra_body={"ponder": {"timeout_s": 1}})
            took = time.monotonic() - t0
    assert r.choices[0].finish_reason == "length" and r.model_extra["ponder"]["status"] == "budget"
    assert "wall_timeout_s = 1s" in r.model_extra["ponder"]["reason"]
    assert took < 20  # a hang guard: the default would wait 60 s per attempt
