"""The cluster host's channel on its own (no Ray): order, questions, cancel, kits."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass

from ponder.engines.cluster.host import DONE, EV, REQ, HostCore


@dataclass
class Counter:
    builds: list[int]

    def build(self) -> str:
        self.builds.append(1)
        return "state"


@dataclass
class Talk:
    kit: str | None
    n: int = 2

    async def run(self, io, state):
        for i in range(self.n):
            io.emit(("ev", i))
        answer = await io.ask("add", (40, 2))
        io.emit(("after", answer))
        return (state, answer)


@dataclass
class Sleeper:
    kit: str | None = None

    async def run(self, io, state):
        io.on_cancel = lambda reason: io.emit(("stopping", reason))
        await asyncio.sleep(60)


def _items(out):
    return pickle.loads(out) if isinstance(out, bytes) else out


async def test_events_questions_and_result_come_in_order():
    builds: list[int] = []
    h = HostCore()
    await h.start({"k": Counter(builds)}, [("a", Talk("k")), ("b", Talk("k", 1))])
    seen, replies = [], []
    while sum(1 for kind, _, _ in seen if kind == DONE) < 2:
        items = _items(await h.poll(replies))
        replies = [(p[0], sum(p[2])) for kind, _, p in items if kind == REQ]
        seen.extend(items)
    for key, n in (("a", 2), ("b", 1)):
        mine = [(kind, p) for kind, k, p in seen if k == key]
        kinds = [kind for kind, _ in mine]
        assert kinds == [EV] * n + [REQ, EV, DONE]  # a question comes after what was emitted before it
        assert mine[-2] == (EV, ("after", 42)) and mine[-1] == (DONE, ("ok", ("state", 42)))
    assert builds == [1]  # one kit build per host, whatever the number of jobs


async def test_cancel_reaches_the_job_and_reports_it():
    h = HostCore()
    await h.start({}, [("s", Sleeper())])
    await asyncio.sleep(0)
    h.cancel(["s"], "run over")
    items = _items(await h.poll([]))
    while not any(kind == DONE for kind, _, _ in items):
        items += _items(await h.poll([]))
    assert [(kind, p) for kind, _, p in items] == [(EV, ("stopping", "run over")), (DONE, ("cancelled", None))]


async def test_a_failing_job_or_kit_is_its_result_and_the_host_goes_on():
    @dataclass
    class Broken:
        def build(self):
            raise RuntimeError("no model here")

    h = HostCore()
    await h.start({"bad": Broken()}, [("x", Talk("bad")), ("y", Talk(None, 0))])
    got, replies = {}, []
    while len(got) < 2:
        items = _items(await h.poll(replies))
        replies = [(p[0], 1) for kind, _, p in items if kind == REQ]
        got.update({k: p for kind, k, p in items if kind == DONE})
    assert got["x"] == ("raised", "RuntimeError: no model here")
    assert got["y"] == ("ok", (None, 1))


async def test_a_batch_pickle_cannot_take_goes_to_ray_as_it_is():
    h = HostCore()

    @dataclass
    class Local:  # a class local to a function: the standard pickler refuses it
        kit: str | None = None

        async def run(self, io, state):
            return Local()

    await h.start({}, [("l", Local())])
    out = await h.poll([])
    while not isinstance(out, list) and not any(kind == DONE for kind, _, _ in _items(out)):
        out = await h.poll([])
    assert isinstance(out, list) and out[0][0] == DONE
