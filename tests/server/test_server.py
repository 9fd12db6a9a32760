"""The SSE server over real HTTP (uvicorn on 127.0.0.1), driven by a scripted test-double model."""

from __future__ import annotations

import json

import httpx
import pytest

from ponder.server import create_app
from ponder.testing import Reply, ScriptedModel

from .helpers import serve_app


@pytest.fixture
def server(tmp_path):
    def factory(name: str):
        if name != "scripted":
            raise ValueError(f"unknown model {name!r}")
        return ScriptedModel([Reply(reasoning="add them", tool_calls=[("calculator", {"expression": "2+3"})]),
                              Reply(reasoning="the tool said 5", content="5")])

    with serve_app(create_app(db=tmp_path / "runs.db", model_factory=factory)) as url:
        yield url


def _sse_events(text: str) -> list[dict]:
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


def test_run_streams_events_and_is_stored(server):
    with httpx.Client(timeout=60) as c:
        with c.stream("POST", server + "/v1/runs", json={"task": "2+3?", "model": "scripted", "tools": ["calculator"]}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            body = "".join(r.iter_text())
        evs = _sse_events(body)
        types = [e["type"] for e in evs]
        assert "tool_result" in types and types[-1] == "run_finished"
        assert next(e for e in evs if e["type"] == "tool_result")["content"].strip() == "5"
        assert evs[-1]["answer"] == "5" and evs[-1]["status"] == "ok"
        runs = c.get(server + "/v1/runs").json()
        assert len(runs) == 1
        stored = c.get(server + f"/v1/runs/{runs[0]['id']}/events").json()
        # the journal keeps every event; the deltas of a finished call are folded into it
        assert [e["type"] for e in stored] == [t for t in types if not t.endswith("_delta")]
        assert evs[0]["type"] == "run_started" and evs[0]["run_id"] == runs[0]["id"] == evs[-1]["run_id"]


def test_bad_requests_name_the_problem(server):
    with httpx.Client(timeout=30) as c:
        r = c.post(server + "/v1/runs", json={"task": "x", "model": "nope"})
        assert r.status_code == 400 and "unknown model" in r.json()["detail"]
        r = c.post(server + "/v1/runs", json={"task": "x", "model": "scripted", "tools": ["rm-rf"]})
        assert r.status_code == 400 and "unknown tool" in r.json()["detail"]
        assert c.post(server + "/v1/runs", json={"task": ""}).status_code == 422
        assert c.get(server + "/v1/runs/nope/events").status_code == 404
        listed = c.get(server + "/v1/models").json()  # OpenAI's list shape, ponder's fields in each entry
        assert listed["object"] == "list"
        assert any(m["id"] == "kimi-k2.5" and m["name"] == "kimi-k2.5" and "price_output" in m for m in listed["data"])
