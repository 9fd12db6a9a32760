"""The comparison runner: modes x models x suites, bounded concurrency, resumable.

Every (suite, task, mode, model) is one unit of work. Units run under a semaphore; each
one's row is written to the store as soon as it finishes, so an interrupted comparison
resumes by skipping the keys already stored. A unit that raises is recorded with its
error and the comparison goes on: one broken task must not cost an hour of results.

A unit cut by a limit (the engine's step/token/wall budget, or the runner's hard
timeout) is stored with status `budget` or `timeout`, not `error`: the report counts it
as cut and keeps it out of the wall-clock figures. Units the time budget never started
are not stored at all; `pending_keys` lists them and `--resume` runs them.

Engines are built in one place, `default_engine_factory`, from the configuration alone,
so that moving to a shared engine builder is a one-function change.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import runs
from ..core.grounding import ground_run
from ..core.messages import Message
from ..core.store import RunStore
from ..engines.base import Engine
from ..engines.build import EngineConfig, build_engine
from ..models.base import ChatModel, ChatRequest
from ..tools.base import Tool
from .graders import Grade, TableGold, grade
from .router import Router, task_features
from .store import CompareStore, TaskRecord
from .suites import BUILTIN_SUITES, BenchTask, Suite, jsonl_suite, load_suite

MODES = ("swarm", "interleaved", "single", "auto")
SINGLE_SYSTEM = "Answer the user's question. End your reply with a line 'Answer: <answer>'."


@dataclass
class CompareConfig:
    suites: list[str] = field(default_factory=lambda: list(BUILTIN_SUITES))
    modes: list[str] = field(default_factory=lambda: ["swarm", "interleaved", "single"])
    models: list[str] = field(default_factory=lambda: ["smollm2"])
    n: int = 5
    suite_n: dict[str, int] = field(default_factory=dict)  # per-suite task counts overriding n
    seed: int = 0
    demo: bool = False
    jsonl: list[str] = field(default_factory=list)
    concurrency: int = 2
    max_steps: int = 12
    max_parallel: int = 8  # swarm sub-agents at once
    sub_max_steps: int | None = None  # step budget per swarm sub-agent (default: max_steps)
    task_timeout_s: float | None = 600.0
    max_tokens: int | None = None  # per single-mode call
    judge_model: str | None = None
    time_budget_s: float | None = None  # stop starting new tasks after this long (they stay resumable)
    # engine settings (what `ponder run` calls --thinking; first_tool_choice "required" makes
    # the first step of an interleaved agent call a tool, which small models otherwise skip)
    thinking: str = "auto"
    first_tool_choice: str | None = None
    corpus: str | None = None  # a folder or saved index: JSONL suites get search tools over it
    # where units run: "local" (this process) or "ray" (a Ray cluster; results still land here)
    executor: str = "local"
    ray_address: str | None = None

    def validate(self) -> None:
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise ValueError(f"unknown mode {bad[0]!r}; use one of {', '.join(MODES)}")
        if not self.suites and not self.jsonl:
            raise ValueError("no suite selected; pass --suite deep|wide|reason or --jsonl FILE")
        bad = [s for s in self.suites if s not in BUILTIN_SUITES]
        if bad:
            raise ValueError(f"unknown suite {bad[0]!r}; use one of {', '.join(BUILTIN_SUITES)} or --jsonl FILE")
        if not self.models:
            raise ValueError("no model selected; pass --model NAME (e.g. smollm2)")
        if self.n < 1 or self.concurrency < 1 or any(v < 1 for v in self.suite_n.values()):
            raise ValueError("--n and --concurrency must be at least 1")
        if self.thinking not in ("on", "off", "auto"):
            raise ValueError(f"thinking must be on, off or auto, not {self.thinking!r}")
        if self.executor not in ("local", "ray"):
            raise ValueError(f"executor must be local or ray, not {self.executor!r}")
        if self.first_tool_choice not in (None, "auto", "required", "none"):
            raise ValueError(f"first_tool_choice must be auto, required or none, not {self.first_tool_choice!r}")
        for flag, value, low in (("--max-steps", self.max_steps, 1), ("--sub-max-steps", self.sub_max_steps, 1),
                                 ("max_parallel", self.max_parallel, 1), ("max_tokens", self.max_tokens, 1)):
            if value is not None and value < low:
                raise ValueError(f"{flag} must be at least {low} (got {value})")
        for flag, limit in (("--task-timeout", self.task_timeout_s), ("--time-budget", self.time_budget_s)):
            if limit is not None and not limit > 0:
                raise ValueError(f"{flag} must be greater than 0 seconds (got {limit:g}); leave it out for the default")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CompareConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


EngineFactory = Callable[[str, ChatModel, list[Tool], CompareConfig], Engine]
ModelFactory = Callable[[str], ChatModel]


def engine_config(engine: str, cfg: CompareConfig, model_name: str) -> EngineConfig:
    """The comparison's settings as the engine config every entry point uses."""
    return EngineConfig(mode=engine, model=model_name, thinking=cfg.thinking,  # type: ignore[arg-type]
                        first_tool_choice=cfg.first_tool_choice, max_steps=cfg.max_steps,
                        sub_max_steps=cfg.sub_max_steps or cfg.max_steps, timeout_s=cfg.task_timeout_s,
                        max_parallel=cfg.max_parallel, orch_max_tokens=cfg.max_tokens, tools=[])


def default_engine_factory(engine: str, model: ChatModel, tools: list[Tool], cfg: CompareConfig) -> Engine:
    """The real engines, by the one builder (`build_engine`), with the suite's tools."""
    return build_engine(engine_config(engine, cfg, model.name), model_factory=lambda _name, _cfg: model, tools=tools)


@dataclass
class WorkItem:
    suite: Suite
    task: BenchTask
    mode: str
    model: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.task.suite, self.task.task_id, self.mode, self.model


def build_suites(cfg: CompareConfig) -> list[Suite]:
    suites = [load_suite(s, n=cfg.suite_n.get(s, cfg.n), seed=cfg.seed, demo=cfg.demo) for s in cfg.suites]
    if cfg.jsonl:
        tools = _corpus_tools(cfg.corpus)
        suites += [jsonl_suite(p, n=cfg.n, tools=tools) for p in cfg.jsonl]
    return suites


def _corpus_tools(corpus: str | None) -> Callable[[], list[Tool]] | None:
    """`search` and `open_document` over the user's corpus (a folder or a saved index)."""
    if not corpus:
        return None
    from ..tools.corpus import load_corpus, search_tools

    c = load_corpus(corpus)
    tools = search_tools(c)
    return lambda: list(tools)


class Runner:
    # the runner's own limit is the engine's wall budget plus this margin: the engine stops
    # itself first (status budget); the runner's limit catches what cannot stop (a single call)
    hard_margin_s = 30.0

    def __init__(
        self,
        config: CompareConfig,
        store: CompareStore,
        *,
        model_factory: ModelFactory | None = None,
        engine_factory: EngineFactory | None = None,
        router: Router | None = None,
        progress: bool = True,
        on_record: Callable[[TaskRecord], None] | None = None,
        run_db: str | None = None,
    ):
        config.validate()
        self.cfg = config
        self.store = store
        self.model_factory = model_factory or _registry_model
        self.engine_factory = engine_factory or default_engine_factory
        self.router = router or Router()
        self.progress = progress
        self.on_record = on_record
        self._models: dict[str, ChatModel] = {}
        self.run_db = run_db
        self._runs: RunStore | None = None
        self._judge: Any = None
        self.skipped = 0  # units left unstarted by the time budget
        self.not_run: list[tuple[str, str, str, str]] = []  # their keys (suite, task, mode, model)
        self.cluster: Any = None  # ray_runner.ClusterUnits while a `--ray` comparison runs

    def _run_store(self) -> RunStore:
        """The run store the engine runs are journaled in (default `$PONDER_HOME/ponder.db`)."""
        if self._runs is None:
            self._runs = RunStore(self.run_db)
        return self._runs

    def model(self, name: str) -> ChatModel:
        if name not in self._models:
            self._models[name] = self.model_factory(name)
        return self._models[name]

    def plan(self, suites: list[Suite]) -> list[WorkItem]:
        return [WorkItem(s, t, mode, m) for s in suites for t in s.tasks for mode in self.cfg.modes for m in self.cfg.models]

    def pending_keys(self, comparison_id: str) -> list[tuple[str, str, str, str]]:
        """Planned units with no stored result (never started, or in flight when stopped)."""
        done = self.store.done_keys(comparison_id)
        return [w.key for w in self.plan(build_suites(self.cfg)) if w.key not in done]

    async def run(self, comparison_id: str | None = None, *, retry_errors: bool = False) -> str:
        """Run (or resume) a comparison; returns its id. Already-stored units are skipped
        (`retry_errors`: units stored as errors run again).

        Configuration errors (a bad suite file, an unknown model, a missing key) surface before
        the comparison is stored, so a failed start leaves no comparison `running`."""
        suites = build_suites(self.cfg)
        for name in self.cfg.models:
            self.model(name)
        cid = self.store.new_comparison(self.cfg.to_dict(), comparison_id)
        done = self.store.done_keys(cid, include_errors=not retry_errors)
        todo = [w for w in self.plan(suites) if w.key not in done]
        sem = asyncio.Semaphore(self.cfg.concurrency)
        bar = _Bar(len(todo), len(done), enabled=self.progress)

        t_start = time.monotonic()
        self.skipped = 0
        self.not_run = []

        async def guarded(w: WorkItem) -> None:
            async with sem:
                if self.cfg.time_budget_s is not None and time.monotonic() - t_start > self.cfg.time_budget_s:
                    self.skipped += 1  # not recorded: `--resume` will run it
                    self.not_run.append(w.key)
                    bar.skip()
                    return
                bar.start(w)
                rec = await self.run_one(cid, w)
                self.store.record(rec)
                bar.finish(rec)
                if self.on_record:
                    self.on_record(rec)

        self.store.set_status(cid, "running")
        try:
            if self.cfg.executor == "ray" and todo:
                from .ray_runner import ClusterUnits  # imports ray

                self.cluster = await ClusterUnits(self.cfg.to_dict(), self.model_factory, self.engine_factory,
                                                  address=self.cfg.ray_address).open()
            with bar:
                await asyncio.gather(*(guarded(w) for w in todo))
        except BaseException:
            self.store.set_status(cid, "interrupted")
            raise
        finally:
            if self.cluster is not None:
                await self.cluster.aclose()
                self.cluster = None
        self.store.set_status(cid, "partial" if self.skipped else "done")
        return cid

    async def run_one(self, cid: str, w: WorkItem) -> TaskRecord:
        task = w.task
        # the router sees only text-derived features; the suite's own hints are kept apart
        feats: dict[str, Any] = dict(task_features(task.question))
        feats.update({f"suite_{k}": v for k, v in task.features.items()})
        engine = self.router.choose(feats) if w.mode == "auto" else w.mode
        rec = TaskRecord(cid, task.suite, task.task_id, w.mode, w.model, engine, "ok", features=feats)
        t0 = time.perf_counter()
        try:
            model = self.model(w.model)
            if engine == "single":
                coro = self._single(model, task, rec)
            else:
                coro = self._engine(engine, model, w.suite, task, rec)
            if self.cfg.task_timeout_s:  # a single call cannot stop itself: its limit is the hard one
                margin = 0.0 if engine == "single" else self.hard_margin_s
                await asyncio.wait_for(coro, timeout=self.cfg.task_timeout_s + margin)
            else:
                await coro
            g = await self._grade(task, rec.answer)
            rec.score, rec.solved, rec.extracted = g.score, g.solved, g.extracted
            rec.detail.update(g.detail)
        except asyncio.CancelledError:
            raise
        except TimeoutError:  # cut by the runner's hard limit: counted as cut, not as an error
            rec.status = "timeout"
            rec.detail["reason"] = f"task timed out after {self.cfg.task_timeout_s:g}s (hard limit)"
        except Exception as e:  # noqa: BLE001 - record the failure; the comparison goes on
            rec.status, rec.error = "error", f"{type(e).__name__}: {e}"[:800]
        rec.wall_s = time.perf_counter() - t0
        rec.finished_at = time.time()
        rec.detail["gold"] = _gold_text(task.answer)
        return rec

    async def _single(self, model: ChatModel, task: BenchTask, rec: TaskRecord) -> None:
        if self.cluster is not None:
            fin = await self.cluster.single((rec.suite, rec.task_id, rec.mode, rec.model))
        else:
            fin = await single_call(model, task, self.cfg)
        rec.answer = fin.message.content or (fin.message.reasoning.text if fin.message.reasoning else None)
        rec.steps = rec.critical_steps = rec.model_calls = 1
        rec.prompt_tokens, rec.completion_tokens = fin.usage.prompt_tokens, fin.usage.completion_tokens
        rec.reasoning_tokens = fin.usage.reasoning_tokens
        rec.cost_usd, rec.ttft_s, rec.decode_tps = fin.cost_usd, fin.ttft_s, fin.decode_tokens_per_s
        rec.detail["grounding"] = ground_run(rec.answer, [], task.question).as_dict()  # evidence: the question only

    async def _engine(self, engine: str, model: ChatModel, suite: Suite, task: BenchTask, rec: TaskRecord) -> None:
        if self.cluster is not None:  # on a cluster host; journaled here all the same
            res = await self.cluster.engine_run((rec.suite, rec.task_id, rec.mode, rec.model), engine,
                                                self._run_store())
        else:
            runner = self.engine_factory(engine, model, suite.tools(), self.cfg)
            # journaled like every run (the compare report links each task to its run page)
            res = await runs.run(runner, task.question, store=self._run_store())
        rec.detail["run_id"] = res.run_id
        m = res.metrics
        rec.answer = res.answer
        rec.detail["grounding"] = ground_run(res.answer, res.events or [], task.question).as_dict()
        rec.steps, rec.critical_steps = m.steps, m.critical_steps or m.steps
        rec.tool_calls, rec.model_calls, rec.agents = m.tool_calls, m.model_calls, m.agents
        rec.prompt_tokens, rec.completion_tokens = m.usage.prompt_tokens, m.usage.completion_tokens
        rec.reasoning_tokens = m.usage.reasoning_tokens
        rec.cost_usd, rec.ttft_s, rec.decode_tps = m.cost_usd, m.ttft_first_s, m.decode_tps_median
        rec.detail["engine_wall_s"] = m.wall_s
        if m.parallelism is not None:
            rec.detail["parallelism"] = m.parallelism
        if res.status != "ok":
            rec.status = res.status  # budget | cancelled | error
            rec.detail["reason"] = res.reason
            if res.status == "error":
                rec.error = res.reason or "engine reported an error"

    async def _grade(self, task: BenchTask, answer: str | None) -> Grade:
        if task.grader != "judge":
            return grade(task.grader, answer, task.answer, task.meta)
        if not self.cfg.judge_model:
            g = grade("exact", answer, task.answer)
            g.detail["judge"] = "no --judge-model given: graded by normalized exact match"
            return g
        if self._judge is None:
            from .judge import LLMJudge

            self._judge = LLMJudge(self.model(self.cfg.judge_model))
        return await self._judge.grade(task.question, answer, str(task.answer))


async def single_call(model: ChatModel, task: BenchTask, cfg: CompareConfig) -> Any:
    """The `single` mode: one call, no tools (here or on a cluster host)."""
    req = ChatRequest(messages=[Message.system(SINGLE_SYSTEM), Message.user(task.question)], max_tokens=cfg.max_tokens)
    return await model.complete(req)


def _gold_text(gold: Any, limit: int = 400) -> str:
    """The gold answer as a short string for the report (never shown to a model)."""
    if isinstance(gold, TableGold):
        value_cols = [c for c in gold.columns if c != gold.key]
        text = "; ".join(f"{r[gold.key]}: " + ", ".join(str(r.get(c, "")) for c in value_cols) for r in gold.rows)
    else:
        text = str(gold)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _registry_model(name: str) -> ChatModel:
    from ..models.registry import model

    return model(name)


class _Bar:
    """A rich progress bar: done/total, elapsed, ETA, what is running, solved/cut/errors so far."""

    def __init__(self, total: int, already: int, enabled: bool):
        self.enabled = enabled and total > 0
        self.total, self.already = total, already
        self.solved = self.errors = self.cut = 0
        self._p: Any = None
        self._id: Any = None

    def __enter__(self) -> _Bar:
        if self.enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(TextColumn("[bold]compare"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                               transient=False)
            self._p.__enter__()
            note = f" (resumed: {self.already} already done)" if self.already else ""
            self._id = self._p.add_task(note, total=self.total)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p is not None:
            self._p.__exit__(*exc)

    def start(self, w: WorkItem) -> None:
        if self._p is not None:
            self._p.update(self._id, description=f"{w.task.task_id} · {w.mode} · {w.model}")

    def skip(self) -> None:
        if self._p is not None:
            self._p.update(self._id, advance=1, description="time budget reached: the rest is left for --resume")

    def finish(self, rec: TaskRecord) -> None:
        self.solved += rec.solved
        self.errors += rec.status == "error"
        self.cut += rec.status in ("budget", "timeout", "cancelled")
        if self._p is not None:
            self._p.update(self._id, advance=1,
                           description=f"solved {self.solved} · cut {self.cut} · errors {self.errors} · "
                                       f"last {rec.task_id}/{rec.mode}")
