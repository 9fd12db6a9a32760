"""A run's journal folded into what the viewer draws: agents, steps, calls, tools, memory.

The run page is drawn from this one structure, built here in Python rather than in the
browser, so that the critical path comes from the swarm's own metrics module
(`critical.py`) and the page stays plain rendering code. It is built incrementally: `feed`
takes journal rows as they are read (the SSE stream feeds new rows every poll), and
`patch()` returns only what changed since the last patch (the agents and steps touched,
memory writes and markers added) plus the small parts recomputed each time (the run's
summary, the critical path, parallelism over time). The first patch is the whole view, so
the page applies the initial load and every live update the same way: upsert by key.

Rows are read as plain JSON (orjson), not validated into typed events: the view is JSON
again a moment later, and a 100-agent run has thousands of rows. Unknown event types are
ignored; a row that is not JSON becomes a marker, never an error page.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from ..engines.swarm.metrics import TaskRecord
from .critical import critical_path, task_records

ORCH = "orchestrator"


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, int | float) else str(v)


def _usage_tokens(u: dict[str, Any] | None) -> int:
    return int((u or {}).get("prompt_tokens", 0)) + int((u or {}).get("completion_tokens", 0))


class RunView:
    """Fold one run's journal rows; `patch()` for what changed, `snapshot()` for all of it."""

    def __init__(self, row: dict[str, Any]):
        self.row = row
        self.seq = -1
        self.main = ORCH if row.get("mode") == "swarm" else "main"
        self.t0: float = float(row.get("started") or 0.0)
        self.agents: dict[str, dict[str, Any]] = {}
        self.steps: dict[str, dict[str, Any]] = {}
        self.memory: list[dict[str, Any]] = []
        self.markers: list[dict[str, Any]] = []
        self.finished: dict[str, Any] | None = None
        self.last_ts: float = self.t0
        self._open: dict[str, dict[str, Any]] = {}  # agent -> its current step
        self._count: dict[str, int] = {}  # agent -> steps started (keys steps uniquely across resumes)
        self._tools: dict[tuple[str, str], dict[str, Any]] = {}
        self._replies: dict[int, dict[str, Any]] = {}  # seq of a model_call_finished -> its message
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}
        self._delivered: dict[str, int] = {}  # task id -> orchestrator step that received it
        self._dirty_agents: set[str] = set()
        self._dirty_steps: set[str] = set()
        self._memory_sent = 0
        self._markers_sent = 0
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, "cached_prompt_tokens": 0}
        self.cost = 0.0
        self.calls = 0

    # ---- feeding ------------------------------------------------------------------------------
    def feed_rows(self, rows: Iterable[tuple[int, str | bytes | dict[str, Any]]]) -> int:
        n = 0
        for seq, raw in rows:
            self.feed(seq, raw)
            n += 1
        return n

    def feed(self, seq: int, raw: str | bytes | dict[str, Any]) -> None:
        """One journal entry: its JSON, or already parsed (`RunStore.event_objects`)."""
        self.seq = max(self.seq, seq)
        try:
            d = raw if type(raw) is dict else orjson.loads(raw)  # type: ignore[arg-type]
            kind = d["type"]
            agent = str(d.get("agent") or "main")
            ts = float(d.get("ts") or self.last_ts)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self._marker(self.last_ts, self.main, "error", f"journal row {seq} could not be read")
            return
        if ts > self.last_ts:
            self.last_ts = ts
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, seq, d, agent, ts)

    # ---- helpers ------------------------------------------------------------------------------
    def _agent(self, agent_id: str, ts: float | None = None) -> dict[str, Any]:
        a = self.agents.get(agent_id)
        if a is None:
            a = self.agents[agent_id] = {
                "id": agent_id, "name": agent_id, "parent": None if agent_id == self.main else self.main,
                "order": len(self.agents), "status": "running" if agent_id == self.main else "queued",
                "goal": None, "instructions": None, "tools": None, "model": None, "task_id": None,
                "depends_on": [], "launched_at": None, "delivered_at": None, "inputs": [], "steps": 0,
                "calls": 0, "tokens": 0, "cost_usd": 0.0, "first_ts": None, "last_ts": None, "end_ts": None,
                "answer": None, "error": None}
        if ts is not None:
            if a["first_ts"] is None:
                a["first_ts"] = ts
                if a["status"] == "queued":
                    a["status"] = "running"
            a["last_ts"] = ts
        self._dirty_agents.add(agent_id)
        return a

    def _step(self, agent: str, ts: float) -> dict[str, Any]:
        """The agent's open step; events outside any step get a step of their own (step 0)."""
        st = self._open.get(agent)
        if st is None:
            st = self._new_step(agent, 0, ts)
        self._dirty_steps.add(st["key"])
        return st

    def _new_step(self, agent: str, number: int, ts: float) -> dict[str, Any]:
        k = self._count.get(agent, 0) + 1
        self._count[agent] = k
        st = {"key": f"{agent}/{k}", "agent": agent, "step": number, "start": ts, "end": None, "calls": [],
              "tools": [], "verifications": [], "budget": [], "notes": [], "messages": [], "live": None,
              "tool_calls": 0, "had_reasoning": None}
        self.steps[st["key"]] = st
        self._open[agent] = st
        self._dirty_steps.add(st["key"])
        return st

    def _marker(self, ts: float, agent: str, kind: str, text: str, **extra: Any) -> None:
        self.markers.append({"ts": ts, "agent": agent, "kind": kind, "text": text, **extra})

    # ---- event handlers -----------------------------------------------------------------------
    def _run_started(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        self.main = agent
        a = self._agent(agent)
        a["model"] = d.get("model")
        a["goal"] = d.get("task")
        attempt = int(d.get("attempt") or 0)
        if attempt == 0:
            self.t0 = ts
        else:
            self._marker(ts, agent, "resume", f"resumed from the journal (attempt {attempt + 1})")

    def _message(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        msg = d.get("message")
        if msg is None and "ref" in d:
            msg = self._replies.get(int(d["ref"]))
        if not isinstance(msg, dict):
            return
        role = msg.get("role")
        if role not in ("system", "user"):
            return  # assistant replies and tool results are shown with their call
        entry = {"role": role, "content": msg.get("content") or "", "ts": ts}
        st = self._open.get(agent)
        if st is None:
            self._agent(agent)["inputs"].append(entry)
        else:
            st["messages"].append(entry)  # a nudge or re-ask inside a step
            self._dirty_steps.add(st["key"])

    def _step_started(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        a = self._agent(agent, ts)
        a["steps"] += 1
        self._new_step(agent, int(d.get("step") or 0), ts)

    def _step_finished(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        st["end"] = ts
        st["tool_calls"] = d.get("tool_calls", 0)
        st["had_reasoning"] = d.get("had_reasoning")
        if d.get("note"):
            st["notes"].append(d["note"])
        self._agent(agent, ts)

    def _delta(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        live = st["live"] or {"reasoning": "", "content": ""}
        live["reasoning" if d["type"] == "reasoning_delta" else "content"] += d.get("text") or ""
        st["live"] = live

    def _model_call(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        msg = d.get("message") or {}
        self._replies[seq] = msg
        st = self._step(agent, ts)
        st["live"] = None
        total = float(d.get("total_s") or 0.0)
        usage = d.get("usage") or {}
        st["calls"].append({
            "start": ts - total, "end": ts, "ttft_s": d.get("ttft_s"), "total_s": total, "model": d.get("model"),
            "usage": usage, "cost_usd": d.get("cost_usd", 0.0), "tps": d.get("decode_tokens_per_s"),
            "finish_reason": d.get("finish_reason"), "reasoning": (msg.get("reasoning") or {}).get("text"),
            "content": msg.get("content"),
            "tool_calls": [{"id": c.get("id"), "name": c.get("name"), "arguments": c.get("arguments"),
                            "parse_error": c.get("parse_error")} for c in msg.get("tool_calls") or []]})
        a = self._agent(agent, ts)
        a["calls"] += 1
        a["tokens"] += _usage_tokens(usage)
        a["cost_usd"] += float(d.get("cost_usd") or 0.0)
        for k in self.usage:
            self.usage[k] += int(usage.get(k) or 0)
        self.cost += float(d.get("cost_usd") or 0.0)
        self.calls += 1

    def _error(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        live, st["live"] = st["live"] or {}, None
        part = d.get("partial") or {}
        prev = st["calls"][-1]["end"] if st["calls"] else st["start"]
        st["calls"].append({"start": prev, "end": ts, "ttft_s": None, "total_s": max(ts - prev, 0.0),
                            "error": {"type": d.get("error_type"), "message": d.get("message")},
                            "reasoning": (part.get("reasoning") or {}).get("text") or live.get("reasoning") or None,
                            "content": part.get("content") or live.get("content") or None, "usage": {},
                            "cost_usd": 0.0, "tool_calls": []})
        self._agent(agent, ts)
        self._marker(ts, agent, "error", f"{d.get('error_type')}: {d.get('message')}", step=st["step"])

    def _tool_started(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        t = {"id": d.get("call_id"), "name": d.get("name"), "arguments": d.get("arguments"), "start": ts,
             "end": None, "ok": None, "result": None, "error": None, "duration_s": None,
             "verification": self._verified.pop((agent, str(d.get("call_id"))), None)}
        st["tools"].append(t)
        self._tools[(agent, str(d.get("call_id")))] = t
        self._agent(agent, ts)

    def _tool_result(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        t = self._tools.pop((agent, str(d.get("call_id"))), None)
        dur = float(d.get("duration_s") or 0.0)
        if t is None:  # a result without its start (recovered on resume): place it by its duration
            t = {"id": d.get("call_id"), "name": d.get("name"), "arguments": None, "start": ts - dur,
                 "verification": self._verified.pop((agent, str(d.get("call_id"))), None)}
            st["tools"].append(t)
        t.update(end=ts, ok=d.get("ok"), result=d.get("content"), error=d.get("error"), duration_s=dur)
        self._agent(agent, ts)

    def _tool_recovered(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        st["notes"].append(f"tool call {d.get('name')} ({d.get('call_id')}) recovered on resume: {d.get('action')}")
        self._marker(ts, agent, "resume", f"recovered {d.get('name')}: {d.get('action')}", step=st["step"])

    def _verification(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._step(agent, ts)
        v = {"call_id": d.get("call_id"), "ok": d.get("ok"), "reason": d.get("reason"), "stage": d.get("stage")}
        st["verifications"].append(v)
        self._verified[(agent, str(v["call_id"]))] = v  # checked before its tool starts
        self._marker(ts, agent, "verification", ("passed" if v["ok"] else "rejected") + f" ({v['stage']})"
                     + (f": {v['reason']}" if v["reason"] else ""), ok=bool(v["ok"]), step=st["step"])

    def _budget(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        st = self._open.get(agent)
        b = {"budget": d.get("budget"), "limit": d.get("limit"), "value": d.get("value")}
        if st is not None:
            st["budget"].append(b)
            self._dirty_steps.add(st["key"])
        self._marker(ts, agent, "budget", f"{b['budget']} budget reached ({_num(b['value'])} of {_num(b['limit'])})",
                     step=st["step"] if st else None)

    def _spawned(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        a = self._agent(str(d.get("agent_id")))
        a.update(name=d.get("name") or a["id"], parent=d.get("parent") or agent, goal=d.get("goal"),
                 instructions=d.get("instructions"), tools=d.get("tools"), model=d.get("model"),
                 task_id=d.get("task_id"), depends_on=d.get("depends_on") or [], launched_at=d.get("launched_at"),
                 spawned_ts=ts)

    def _delivered_ev(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        step = int(d.get("step") or 0)
        by_task = {a["task_id"]: a for a in self.agents.values() if a["task_id"]}
        for tid in d.get("task_ids") or []:
            self._delivered[str(tid)] = step
            if (a := by_task.get(tid)) is not None:
                a["delivered_at"] = step
                self._dirty_agents.add(a["id"])

    def _agent_finished(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        a = self._agent(str(d.get("agent_id") or agent), ts)
        a.update(status=d.get("status"), answer=d.get("answer"), error=d.get("error"), end_ts=ts)
        if d.get("steps") is not None:
            a["steps_reported"] = d["steps"]
        self._open.pop(a["id"], None)

    def _memory(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        self.memory.append({"ts": ts, "agent": agent, "key": d.get("key"), "value": d.get("value"),
                            "step": d.get("step")})

    def _run_finished(self, seq: int, d: dict[str, Any], agent: str, ts: float) -> None:
        self.finished = d
        a = self._agent(agent, ts)
        a.update(status=d.get("status"), answer=d.get("answer"), end_ts=ts, error=d.get("reason")
                 if d.get("status") == "error" else None)
        extra = (d.get("metrics") or {}).get("extra") or {}
        for t in extra.get("tasks") or []:  # the engine's own records: authoritative delivery steps
            for sub in self.agents.values():
                if sub["task_id"] == t.get("task_id"):
                    sub["delivered_at"] = t.get("delivered_at")
                    self._dirty_agents.add(sub["id"])
        self._open.clear()

    # ---- derived ------------------------------------------------------------------------------
    def status(self) -> str:
        if self.finished is not None:
            return str(self.finished.get("status"))
        return str(self.row.get("status") or "running")

    def summary(self, crit: dict[str, Any] | None = None) -> dict[str, Any]:
        row, fin = self.row, self.finished
        metrics = (fin or {}).get("metrics") or (row.get("metrics") if row.get("status") != "running" else None)
        status = self.status()
        end = (fin or {}).get("ts") or row.get("finished")
        if status == "running":
            wall = max(time.time() - self.t0, 0.0)
        elif metrics and metrics.get("wall_s"):
            wall = metrics["wall_s"]
        else:
            wall = max((end or self.last_ts) - self.t0, 0.0)
        usage = (metrics or {}).get("usage") or self.usage
        crit = crit if crit is not None else self.critical()
        return {
            "id": row.get("id"), "status": status, "mode": row.get("mode"), "model": row.get("model"),
            "task": row.get("task"), "started": self.t0, "finished": end, "last_ts": self.last_ts, "wall_s": wall,
            "tokens": _usage_tokens(usage), "usage": usage,
            "cost_usd": (metrics or {}).get("cost_usd", self.cost), "calls": self.calls,
            "steps": (metrics or {}).get("steps") or sum(a["steps"] for a in self.agents.values()),
            "critical_steps": (metrics or {}).get("critical_steps") or crit["length"],
            "agents": max(len(self.agents) - 1, 0) if row.get("mode") == "swarm" else len(self.agents),
            "peak_concurrency": (metrics or {}).get("peak_concurrency"),
            "answer": (fin or {}).get("answer", row.get("answer")), "reason": (fin or {}).get("reason", row.get("reason")),
            "metrics": metrics, "attempts": row.get("attempts") or 1, "config": row.get("config"),
            "main": self.main, "seq": self.seq,
        }

    def task_records(self) -> tuple[int, list[TaskRecord]]:
        """The swarm's task records: the engine's own (from `run_finished`) once the run is
        over, else rebuilt from the events so far (a live run's path as it stands)."""
        metrics = (self.finished or {}).get("metrics") or {}
        extra = metrics.get("extra") or {}
        if self.finished is not None and "tasks" in extra:
            return int(metrics.get("orchestrator_steps") or extra.get("orchestrator_steps") or 0), \
                task_records(extra["tasks"])
        orch = self.agents.get(self.main)
        recs = []
        for a in self.agents.values():
            if not a["task_id"]:
                continue
            recs.append(TaskRecord(task_id=a["task_id"], agent_id=a["id"], name=a["name"],
                                   launched_at=int(a["launched_at"] or 0), depends_on=list(a["depends_on"]),
                                   steps=int(a.get("steps_reported") or a["steps"]), status=a["status"],
                                   delivered_at=self._delivered.get(a["task_id"])))
        steps = max((s["step"] for s in self.steps.values() if s["agent"] == self.main), default=0)
        return (steps if orch is not None else 0), recs

    def critical(self) -> dict[str, Any]:
        """Which agents (all their steps) and which orchestrator steps are on the critical path."""
        if self.row.get("mode") != "swarm":
            steps = sorted({s["step"] for s in self.steps.values() if s["agent"] == self.main and s["step"]})
            return {"length": len(steps), "agents": [self.main], "orchestrator_steps": [], "tasks": [],
                    "main": self.main}
        orch_steps, recs = self.task_records()
        cp = critical_path(orch_steps, recs)
        return {**cp.to_json(), "main": self.main}

    def parallelism(self) -> list[list[float]]:
        """[ts, agents running] at each change: the sub-agents of a swarm, else the main agent.
        An agent runs from its first event to its end; a live one is still running."""
        swarm = self.row.get("mode") == "swarm"
        marks: list[tuple[float, int]] = []
        for a in self.agents.values():
            if (swarm and a["id"] == self.main) or a["first_ts"] is None:
                continue
            marks.append((a["first_ts"], 1))
            if a["end_ts"] is not None:
                marks.append((a["end_ts"], -1))
        marks.sort(key=lambda m: (m[0], m[1]))  # an end and a start at one instant do not overlap
        out: list[list[float]] = []
        cur = 0
        for ts, d in marks:
            cur += d
            if out and out[-1][0] == ts:
                out[-1][1] = cur
            else:
                out.append([ts, cur])
        return out

    # ---- output -------------------------------------------------------------------------------
    def patch(self) -> dict[str, Any]:
        """What changed since the last patch (the first one is everything)."""
        crit = self.critical()
        out = {
            "seq": self.seq, "now": time.time(), "run": self.summary(crit), "critical": crit,
            "parallelism": self.parallelism(),
            "agents": {k: self.agents[k] for k in self._dirty_agents if k in self.agents},
            "steps": {k: self.steps[k] for k in self._dirty_steps if k in self.steps},
            "memory_from": self._memory_sent, "memory": self.memory[self._memory_sent:],
            "markers_from": self._markers_sent, "markers": self.markers[self._markers_sent:],
        }
        self._dirty_agents.clear()
        self._dirty_steps.clear()
        self._memory_sent = len(self.memory)
        self._markers_sent = len(self.markers)
        return out

    def snapshot(self) -> dict[str, Any]:
        self._dirty_agents = set(self.agents)
        self._dirty_steps = set(self.steps)
        self._memory_sent = self._markers_sent = 0
        return self.patch()


_HANDLERS = {
    "run_started": RunView._run_started,
    "message_appended": RunView._message,
    "step_started": RunView._step_started,
    "step_finished": RunView._step_finished,
    "reasoning_delta": RunView._delta,
    "content_delta": RunView._delta,
    "model_call_finished": RunView._model_call,
    "error": RunView._error,
    "tool_started": RunView._tool_started,
    "tool_result": RunView._tool_result,
    "tool_recovered": RunView._tool_recovered,
    "verification": RunView._verification,
    "budget_hit": RunView._budget,
    "agent_spawned": RunView._spawned,
    "results_delivered": RunView._delivered_ev,
    "agent_finished": RunView._agent_finished,
    "memory_write": RunView._memory,
    "run_finished": RunView._run_finished,
}


def build(row: dict[str, Any], rows: Iterable[tuple[int, str | bytes | dict[str, Any]]]) -> RunView:
    view = RunView(row)
    view.feed_rows(rows)
    return view
