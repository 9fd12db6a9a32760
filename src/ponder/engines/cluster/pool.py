"""The driver's side of a Ray cluster: a pool of hosts (async actors), one long poll per host.

`HostPool.submit(key, job, handler)` starts a job on the least-loaded live host (starts made
in the same turn of the event loop travel in one call per host) and routes what the job
says to its `handler`, in order: `on_event(ev)` for each event, `on_request(op, args)` for
each question (its answer, or an awaitable of it, goes back with the next poll), then
`on_done(status, value)` once. When a host dies (its process or node is gone), every job it
held gets `on_lost(reason)` instead, and a replacement host is started; what to do with a
lost job (continue it elsewhere from the journal) is the caller's decision.

Placement: hosts are pinned round-robin to the cluster's live nodes (a replacement goes
wherever Ray finds room); they reserve no CPU (`num_cpus=0`): a
host spends its time waiting on models, and reserving a CPU each would leave none for the
tools the cluster also runs.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import pickle
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...core.errors import ConfigError
from .host import DONE, EV, REQ, Host, Job, Kit

_log = logging.getLogger(__name__)
MAX_CONCURRENCY = 64  # Ray calls in flight on one host (polls, starts, cancels); jobs are not calls


class ClusterError(ConfigError):
    """The Ray cluster cannot be reached or used (the message names the fix)."""


class HostLost(Exception):
    """The host running a job died before the job finished."""


class Handler(Protocol):
    def on_event(self, ev: Any) -> None: ...
    def on_request(self, op: str, args: Any) -> Any | Awaitable[Any]: ...
    def on_done(self, status: str, value: Any) -> None: ...
    def on_lost(self, reason: str) -> None: ...


class FutureHandler:
    """The end of a `Handler`: a job's result (or the loss of its host) resolves `fut`.
    Subclasses add `on_event` and `on_request` (their `__slots__` must include `fut`)."""

    __slots__ = ()
    fut: asyncio.Future[Any]

    def on_done(self, status: str, value: Any) -> None:
        if not self.fut.done():
            self.fut.set_result((status, value))

    def on_lost(self, reason: str) -> None:
        if not self.fut.done():
            self.fut.set_exception(HostLost(reason))


def require_ray() -> None:
    """Raise the one-line fix when Ray is not installed here."""
    try:
        import ray  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "ray":
            raise
        raise ClusterError("running on a Ray cluster needs Ray here and on every machine of the cluster: "
                           "pip install 'ponder[ray]'") from None


def connect(address: str | None = None) -> None:
    """Join the Ray cluster at `address` ("auto", "HOST:PORT", "ray://HOST:PORT"), or do what
    a bare `ray.init()` does (RAY_ADDRESS, else a cluster started on this machine, else a new
    local one). Once per process: later calls keep the first connection."""
    import ray

    if ray.is_initialized():
        return
    _probe(address or os.environ.get("RAY_ADDRESS"))
    try:
        # workers' output would interleave with the CLI's (and break --json); errors reach
        # the driver through the jobs' own results instead
        ray.init(address=address or None, log_to_driver=False, logging_level=logging.WARNING,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"at {address!r}" if address else "(no address given)"
        raise ClusterError(f"cannot join a Ray cluster {where}: {str(e).splitlines()[0]}. Start one with "
                           "`ray start --head` (and `ray start --address HEAD:6379` on the other machines), "
                           "then pass its address: --ray-address HEAD:6379") from None


def _probe(address: str | None, timeout_s: float = 3.0) -> None:
    """Fail in seconds, with the fix, when nothing listens at the address (`ray.init` would
    retry for minutes)."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"{address!r} is not a Ray address: give HOST:PORT (e.g. 10.0.0.5:6379, what "
                           "`ray start --head` printed) or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ClusterError(f"no Ray cluster answers at {address} ({e.strerror or e}); start one there with "
                           "`ray start --head --port PORT`, or check the address") from None


@dataclass(eq=False)
class _Host:
    actor: Any
    index: int
    node: str | None = None
    pid: int | None = None
    alive: bool = True
    jobs: dict[str, Handler] = field(default_factory=dict)
    kits_sent: set[str] = field(default_factory=set)
    starts: list[tuple[str, Job]] = field(default_factory=list)
    kit_out: dict[str, Kit] = field(default_factory=dict)
    cancels: dict[str | None, list[str]] = field(default_factory=dict)
    pump: asyncio.Task[None] | None = None
    started: int = 0  # jobs ever started here
    polls: int = 0
    items: int = 0


_REMOTE: Any = None


def _remote_host() -> Any:
    global _REMOTE
    if _REMOTE is None:
        import ray

        _REMOTE = ray.remote(Host)
    return _REMOTE


class HostPool:
    """`size` hosts (default: one per CPU of the cluster, at most `cap`) on the cluster at `address`."""

    def __init__(self, size: int | None = None, *, address: str | None = None, cap: int | None = None,
                 label: str = "ponder", replace: bool = True):
        self.size = size
        self.address = address
        self.cap = cap
        self.label = label
        self.replace = replace
        self.hosts: list[_Host] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lost = 0  # hosts that died
        self._where: dict[str, _Host] = {}
        self._flush_handle: asyncio.Handle | None = None
        self._kits: dict[str, Kit] = {}
        self._closed = False
        self._seq = 0
        self._initial = 0

    # ---- life cycle -----------------------------------------------------------------------------
    async def open(self) -> HostPool:
        import ray

        connect(self.address)
        self.loop = asyncio.get_running_loop()
        n = self.size or max(1, int(ray.cluster_resources().get("CPU", 1)))
        if self.cap is not None:
            n = max(1, min(n, self.cap))
        nodes = [x["NodeID"] for x in ray.nodes() if x.get("Alive")]
        self._initial = n
        for i in range(n):
            self._spawn(nodes[i % len(nodes)] if nodes else None)
        await self._settle(self.hosts)
        return self

    def _spawn(self, node: str | None) -> _Host:
        opts: dict[str, Any] = {"num_cpus": 0, "max_concurrency": MAX_CONCURRENCY, "max_restarts": 0}
        if node is not None:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            # hard affinity: a soft one lets Ray put a host next to another when its node is
            # still warming up; a node gone by then fails the host, and `_lost` replaces it
            opts["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
        h = _Host(_remote_host().options(**opts).remote(self.label), self._seq)
        self._seq += 1
        self.hosts.append(h)
        h.pump = asyncio.get_running_loop().create_task(self._pump(h), name=f"ponder-host-{h.index}")
        return h

    async def _settle(self, hosts: list[_Host]) -> None:
        """Wait until `hosts` are up, and learn where they run."""
        where = await asyncio.gather(*(h.actor.where.remote() for h in hosts), return_exceptions=True)
        for h, w in zip(hosts, where, strict=True):
            if isinstance(w, dict):
                h.node, h.pid = w.get("node"), w.get("pid")
            elif h.alive:
                self._lost(h, f"the host did not start: {w}")

    async def aclose(self) -> None:
        import ray

        self._closed = True
        for h in self.hosts:
            if h.pump is not None:
                h.pump.cancel()
            if h.alive:
                h.alive = False
                try:
                    ray.kill(h.actor)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self.hosts = []

    # ---- jobs -------------------------------------------------------------------------------------
    def submit(self, key: str, job: Job, handler: Handler, kit: Kit | None = None) -> _Host:
        """Start `job` on the least-loaded live host; `kit` is sent along the first time a host needs it."""
        if self._closed:
            raise ClusterError("the host pool is closed")
        h = self._pick()
        h.jobs[key] = handler
        h.started += 1
        self._where[key] = h
        if kit is not None and job.kit is not None:
            self._kits[job.kit] = kit
        if job.kit is not None and job.kit not in h.kits_sent:
            h.kits_sent.add(job.kit)
            h.kit_out[job.kit] = self._kits[job.kit]
        h.starts.append((key, job))
        self._soon()
        return h

    def cancel(self, key: str, reason: str | None = None) -> bool:
        """Ask the job's host to cancel it (its `on_done` still comes, with what it emitted first)."""
        h = self._where.get(key)
        if h is None or not h.alive or key not in h.jobs:
            return False
        if any(k == key for k, _ in h.starts):  # not sent yet: never start it
            h.starts = [(k, j) for k, j in h.starts if k != key]
            self._where.pop(key, None)
            h.jobs.pop(key).on_done("cancelled", None)
            return True
        h.cancels.setdefault(reason, []).append(key)
        self._soon()
        return True

    def forget(self, key: str) -> None:
        """Drop a job's routing (what its host still sends for it is discarded)."""
        h = self._where.pop(key, None)
        if h is not None:
            h.jobs.pop(key, None)

    def _pick(self) -> _Host:
        live = [h for h in self.hosts if h.alive]
        if not live:
            if not self.replace:
                raise HostLost("no live host is left in the pool")
            live = [self._spawn(None)]
        return min(live, key=lambda h: (len(h.jobs), h.started))

    def _soon(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        for h in self.hosts:
            if not h.alive:
                continue
            if h.starts:
                starts, kits = h.starts, h.kit_out
                h.starts, h.kit_out = [], {}
                try:
                    ref = h.actor.start.remote(kits, starts)
                except Exception as e:  # noqa: BLE001 - e.g. a model or tool that cannot be pickled
                    h.kits_sent.difference_update(kits)
                    self._fail(h, [k for k, _ in starts], f"cannot send the job to the Ray cluster: {_short(e)}")
                    continue
                asyncio.ensure_future(self._watch_start(h, ref, [k for k, _ in starts], list(kits)))
            if h.cancels:
                cancels, h.cancels = h.cancels, {}
                for reason, keys in cancels.items():
                    h.actor.cancel.remote(keys, reason)

    async def _watch_start(self, h: _Host, ref: Any, keys: list[str], kits: list[str]) -> None:
        """A start the host could not take (e.g. it cannot import what a job needs) fails
        those jobs with the reason; a dead host is the pump's business."""
        from ray.exceptions import RayActorError

        try:
            await ref
        except RayActorError:
            return
        except Exception as e:  # noqa: BLE001
            h.kits_sent.difference_update(kits)
            self._fail(h, keys, f"the Ray host could not start the job: {_short(e)}")

    def _fail(self, h: _Host, keys: list[str], reason: str) -> None:
        for k in keys:
            self._where.pop(k, None)
            hd = h.jobs.pop(k, None)
            if hd is not None:
                hd.on_done("raised", reason)

    # ---- the channel ------------------------------------------------------------------------------
    async def _pump(self, h: _Host) -> None:
        from ray.exceptions import RayError

        replies: list[tuple[int, Any]] = []
        while not self._closed:
            try:
                items = await h.actor.poll.remote(replies)
                if type(items) is bytes:
                    items = pickle.loads(items)
            except asyncio.CancelledError:
                raise
            except RayError as e:
                self._lost(h, _short(e))
                return
            replies = []
            jobs = h.jobs
            h.polls += 1
            h.items += len(items)
            for kind, key, payload in items:
                hd = jobs.get(key)
                if hd is None:
                    if kind == REQ:  # a job the driver gave up on still asks: let it go on
                        replies.append((payload[0], None))
                    continue
                try:
                    if kind == EV:
                        hd.on_event(payload)
                    elif kind == REQ:
                        rid, op, args = payload
                        r = hd.on_request(op, args)
                        if inspect.isawaitable(r):
                            r = await r
                        replies.append((rid, r))
                    elif kind == DONE:
                        del jobs[key]
                        self._where.pop(key, None)
                        hd.on_done(*payload)
                except Exception:  # noqa: BLE001 - one job's handler must not stop the others
                    _log.exception("ponder cluster: handler of job %s failed", key)
                    if kind == REQ:
                        replies.append((payload[0], None))

    def _lost(self, h: _Host, reason: str) -> None:
        if not h.alive:
            return
        h.alive = False
        self.lost += 1
        jobs, h.jobs = h.jobs, {}
        h.starts, h.cancels = [], {}
        if self.replace and not self._closed and self.lost <= 2 * max(1, self._initial):
            self._replace()  # keep the pool's size (a bounded number of times: a crashing job must not churn hosts)
        for key, hd in jobs.items():
            self._where.pop(key, None)
            hd.on_lost(f"host {h.index} (pid {h.pid}) was lost: {reason}")

    def _replace(self) -> None:
        new = self._spawn(None)  # wherever Ray finds room (the lost host's node may be gone)
        asyncio.ensure_future(self._settle([new]))

    # ---- reports ------------------------------------------------------------------------------------
    def placement(self, since: dict[str, Any] | None = None) -> dict[str, Any]:
        """Where jobs ran and what the channel carried; with `since` (an earlier placement),
        only what happened after it."""
        before = (since or {}).get("_counts", {})
        counts = {h.index: (h.started, h.polls, h.items) for h in self.hosts}
        delta = {i: tuple(c - b for c, b in zip(v, before.get(i, (0, 0, 0)), strict=True)) for i, v in counts.items()}
        polls = sum(d[1] for d in delta.values())
        nodes = {h.node for h in self.hosts if h.node and delta[h.index][0]}
        return {"hosts": len(self.hosts), "hosts_lost": self.lost - (since or {}).get("hosts_lost", 0),
                "nodes": len(nodes), "polls": polls,
                "items_per_poll": round(sum(d[2] for d in delta.values()) / max(1, polls), 1),
                "jobs_per_host": {f"{h.index}@{(h.node or '?')[:8]}": delta[h.index][0] for h in self.hosts},
                "_counts": counts}


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:400]
