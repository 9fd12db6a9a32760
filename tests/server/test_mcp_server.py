"""`ponder mcp` through the official `mcp` SDK's client: stdio (the client starts `ponder mcp`)
and streamable HTTP (a `ponder mcp --transport http` process, and the app in a thread with
scripted models), with progress notifications and the run id in every result."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from tests.server.helpers import (
    catalog_file,
    child_env,
    free_port,
    ponder_bin,
    serve_app,
    upstream_reply,
)

from ponder.core.store import RunStore
from ponder.server.mcp_server import build_server, http_app
from ponder.testing import Reply, ScriptedModel
from ponder.testing_http import MockOpenAIServer

pytestmark = pytest.mark.timeout(180)
TOKEN = "mcp-tok-77"


def _http_client(url: str, token: str | None = None):
    from mcp.client.streamable_http import streamable_http_client

    try:
        import httpx2  # the SDK 2.x HTTP client
    except ImportError:  # pragma: no cover
        import httpx as httpx2
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=120))


async def _call(session: ClientSession, tool: str, args: dict) -> tuple[object, list[str]]:
    lines: list[str] = []

    async def progress(p: float, total: float | None, message: str | None) -> None:
        lines.append(message or "")

    result = await session.call_tool(tool, args, progress_callback=progress)
    return result, lines


def _structured(result) -> dict:
    data = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    assert data, result
    return data.get("result", data) if "run_id" not in data else data


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcp")
    with MockOpenAIServer(upstream_reply).in_thread() as mock:
        yield tmp, catalog_file(tmp, mock.base_url)


async def test_stdio_solve_and_research_report_progress_and_run_ids(upstream):
    tmp, models = upstream
    db = tmp / "stdio.db"
    params = StdioServerParameters(command=ponder_bin(), args=["mcp", "--model", "mock-glm", "--tools", "calculator",
                                                                "--db", str(db)],
                                   env=child_env(PONDER_MODELS=str(models), PONDER_HOME=str(tmp / "home")))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        names = {t.name for t in (await session.list_tools()).tools}
        assert {"research", "solve"} <= names
        result, lines = await _call(session, "solve", {"task": "what is 6*7?"})
        assert not getattr(result, "is_error", getattr(result, "isError", False)), result
        data = _structured(result)
        assert data["answer"] == "42" and data["status"] == "ok" and data["tool_calls"] == 1
        assert lines[0].startswith(f"run {data['run_id']} started (interleaved")
        assert any(x.startswith("→ calculator") for x in lines) and "step 2" in lines
        result, lines = await _call(session, "research", {"question": "alpha and beta?"})
        research = _structured(result)
        assert research["answer"] == "the swarm found alpha [alpha] and beta [beta]" and research["agents"] == 2
        assert sum(x.startswith("+ agent") for x in lines) == 2 and sum(x.startswith("✓ agent") for x in lines) == 2
        blank, _ = await _call(session, "solve", {"task": "  "})
        assert getattr(blank, "is_error", getattr(blank, "isError", False))
        unknown, _ = await _call(session, "solve", {"task": "q", "model": "vllm:http://10.0.0.1:8000/v1#x"})
        assert getattr(unknown, "is_error", getattr(unknown, "isError", False))
        assert "runs catalog models" in unknown.content[0].text
        schema = next(t for t in (await session.list_tools()).tools if t.name == "solve")
        params = getattr(schema, "input_schema", None) or getattr(schema, "inputSchema", None)
        assert set(params["properties"]) == {"task", "model", "thinking"}  # no Context leaks into the schema
    with RunStore(db) as st:
        stored = {r["id"]: r for r in st.runs()}
    assert stored[data["run_id"]]["mode"] == "interleaved" and stored[data["run_id"]]["status"] == "ok"
    assert stored[research["run_id"]]["mode"] == "swarm"


async def test_streamable_http_process_with_token(upstream):
    tmp, models = upstream
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        ponder_bin(), "mcp", "--transport", "http", "--port", str(port), "--token", TOKEN, "--model", "mock-glm",
        "--tools", "calculator", "--db", str(tmp / "http.db"),
        env=child_env(PONDER_MODELS=str(models), PONDER_HOME=str(tmp / "home")),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        async with httpx.AsyncClient(timeout=2) as probe:
            deadline = time.monotonic() + 60
            while True:  # up once it answers at all (401: the token is required)
                with contextlib.suppress(httpx.HTTPError):
                    if (await probe.post(url, json={})).status_code == 401:
                        break
                assert proc.returncode is None, "ponder mcp --transport http exited"
                assert time.monotonic() < deadline, "ponder mcp --transport http did not start"
                await asyncio.sleep(0.1)
        async with _http_client(url, TOKEN) as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result, lines = await _call(session, "solve", {"task": "what is 6*7?"})
            data = _structured(result)
            assert data["answer"] == "42" and len(data["run_id"]) == 16 and lines
    finally:
        proc.terminate()
        await proc.wait()


async def test_http_app_errors_name_the_run(tmp_path):
    """In-process app, scripted models: a run that fails is a tool error naming its run."""
    bad = ScriptedModel(lambda req, n: Reply(error="provider down"), name_="bad")
    server = build_server(db=tmp_path / "runs.db", model_factory=lambda name: bad)
    with serve_app(http_app(server)) as base:
        async with _http_client(base + "/mcp") as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            result, _ = await _call(session, "solve", {"task": "anything", "model": "bad"})
    assert getattr(result, "is_error", getattr(result, "isError", False))
    text = result.content[0].text
    with RunStore(tmp_path / "runs.db") as st:
        [row] = st.runs()
    assert row["status"] == "error" and f"run {row['id']} failed" in text and "provider down" in text


async def test_cancelled_call_cancels_its_run_which_is_recorded(tmp_path):
    m = ScriptedModel([Reply(reasoning="go", tool_calls=[("calculator", {"expression": "1+1"})]),
                       Reply(content="too late", delay_s=60)], name_="slow")
    server = build_server(db=tmp_path / "runs.db", model_factory=lambda name: m)
    with serve_app(http_app(server)) as base:
        async with _http_client(base + "/mcp") as streams, ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            tool_done = asyncio.Event()

            async def progress(p: float, total: float | None, message: str | None) -> None:
                if (message or "").startswith("← calculator"):
                    tool_done.set()

            call = asyncio.create_task(session.call_tool("solve", {"task": "x"}, progress_callback=progress))
            await asyncio.wait_for(tool_done.wait(), 30)
            call.cancel()  # the SDK tells the server (notifications/cancelled)
            with contextlib.suppress(asyncio.CancelledError):
                await call
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with RunStore(tmp_path / "runs.db") as st:
                    row = st.runs()[0]
                if row["status"] != "running":
                    break
                await asyncio.sleep(0.1)
    assert row["status"] == "cancelled" and row["reason"] == "cancelled by the caller"
