"""The Interleaved engine: think before every act, keep the thinking, verify before executing.

GLM-4.7's System-2 design (reference glm-4.7.md §2-3) as an engine over any ChatModel:

* **Interleaved thinking.** The loop is model call -> tool calls (concurrently when a step
  has several) -> tool results -> model call ..., until the model answers. Every step
  that acts (calls a tool or answers) while thinking is on must carry reasoning *before*
  the action. Native thinkers (Kimi, GLM, DeepSeek) are checked (a ReasoningDelta must
  precede the first ToolCallEvent / ContentDelta); the embedded model is asked through
  `ChatRequest.thinking="on"` (its grammar puts a `thinking` field first); other chat
  models are told to write `<think>…</think>` first and the engine splits it out. A step
  without reasoning is re-asked once with a short instruction; a second miss proceeds
  and counts as a violation.
* **Preserved thinking.** Reasoning stays on `Message.reasoning` in `messages` and every
  call sends the whole conversation with `ChatRequest.preserve_reasoning`. The engine
  never drops reasoning itself: the wire dialect applies each provider's rule (Kimi
  keeps the tool-call chain's reasoning even when preservation is off, because its API
  answers 400 otherwise; GLM sends `clear_thinking: true` and only the current loop's
  reasoning). For `<think>`-tag models the request says `reasoning_as_tags` and the
  dialect puts reasoning back inside the assistant content as `<think>…</think>`, with
  the same "current chain only" rule when preservation is off.
* **Turn-level thinking.** `thinking` per engine, per `stream()` call, and per step
  (`auto`, see `thinking.py`).
* **Verify before execute.** Code for the `python` tool is parsed and checked against a
  `CodePolicy` (and optionally self-checked by the model) before it runs; rejected code
  comes back to the model as a tool error.
* **Budgets and control.** Every budget, the caller's `cancel` event and model errors end
  the run with exactly one `RunFinished`; `stream()` never raises except on task
  cancellation (which it propagates after cleaning up, as asyncio expects).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core import fastjson
from ..core.events import (
    BudgetHit,
    ContentDelta,
    ErrorEvent,
    Event,
    ModelCallFinished,
    ReasoningDelta,
    RunFinished,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolResult,
    ToolStarted,
    VerificationEvent,
)
from ..core.messages import Message, Reasoning
from ..core.store import Session
from ..core.telemetry import RunTelemetry
from ..models.base import ChatModel, ChatRequest
from ..models.parsers import ContentText, RawOutputParser, ReasoningText, parse_raw
from ..tools.base import Tool, Toolbox, result_message
from . import prompts
from .base import Budgets, RunMetrics, RunResult
from .thinking import ThinkingMode, decide
from .verify import CodePolicy, check_code, self_check

CODE_TOOLS = frozenset({"python"})
Elicit = Literal["native", "schema", "tags"]


@dataclass
class _RunState:
    t0: float
    telemetry: RunTelemetry = field(default_factory=RunTelemetry)
    steps: int = 0
    reasks: int = 0
    violations: int = 0
    verifications: int = 0
    rejections: int = 0
    fixes: int = 0
    pending_rejection: bool = False
    requested_tool_calls: int = 0
    self_check_calls: int = 0
    repeat_guards: int = 0
    thinking_per_step: list[str] = field(default_factory=list)
    last_content: str | None = None


@dataclass
class _Reply:
    message: Message
    reasoning_first: bool


class _Done:
    __slots__ = ("status", "answer", "reason")

    def __init__(self, status: str, answer: str | None, reason: str | None):
        self.status, self.answer, self.reason = status, answer, reason


# shared, frozen messages: their wire JSON is encoded once for every agent and step
_THINK_OFF_NOTE = Message.system(prompts.THINK_OFF_NOTE)
_REASK = Message.user(prompts.REASK_MISSING_REASONING)
_REASK_TAGS = Message.user(prompts.REASK_MISSING_REASONING_TAGS)


class _Failed:
    """Carries an exception from `stream()`'s producer task to its consumer."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


def _check_mode(mode: object) -> None:
    if mode not in ("on", "off", "auto"):
        raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {mode!r}")


class Interleaved:
    """Think-before-act agent loop with preserved reasoning. See the module docstring."""

    def __init__(
        self,
        model: ChatModel,
        tools: Sequence[Tool] | Toolbox = (),
        *,
        thinking: ThinkingMode = "auto",
        preserve_reasoning: bool = True,
        budgets: Budgets | None = None,
        system_prompt: str | None = None,
        verify_code: bool = True,
        self_check: bool = False,
        policy: CodePolicy | None = None,
        session: Session | None = None,
        agent_id: str = "main",
        reask_missing_reasoning: bool = True,
        first_tool_choice: str | dict[str, Any] | None = None,
    ):
        if thinking not in ("on", "off", "auto"):
            raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {thinking!r}")
        self.model = model
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        self.thinking: ThinkingMode = thinking
        self.preserve_reasoning = preserve_reasoning
        self.budgets = budgets or Budgets()
        self.verify_code = verify_code
        self.self_check = self_check
        self.policy = policy or CodePolicy()
        self.session = session
        self.agent_id = agent_id
        self.reask_missing_reasoning = reask_missing_reasoning
        # e.g. "required": the first step of every turn must call a tool (weak models otherwise guess)
        self.first_tool_choice = first_tool_choice
        self.elicit: Elicit = (
            "native" if model.native_thinking else "schema" if model.spec.dialect == "embedded" else "tags"
        )
        self.system_prompt = system_prompt if system_prompt is not None else self._default_system_prompt()
        self.messages: list[Message] = list(session.messages) if session is not None else []
        self._results: dict[str, Message] = {}

    def _default_system_prompt(self) -> str:
        base = prompts.INTERLEAVED_SYSTEM if len(self.toolbox) else prompts.INTERLEAVED_SYSTEM_NO_TOOLS
        return base + (" " + prompts.THINK_TAGS_INSTRUCTION if self.elicit == "tags" else "")

    # ---- public API -------------------------------------------------------------------------
    async def run(self, task: str, *, thinking: ThinkingMode | None = None,
                  cancel: asyncio.Event | None = None) -> RunResult:
        events: list[Event] = []
        final = await self.run_into(task, events.append, thinking=thinking, cancel=cancel)
        events.append(final)
        # model_construct: every part is already typed (the metrics validated just here); a
        # validating constructor would re-check every event one by one
        return RunResult.model_construct(
            answer=final.answer, status=final.status, reason=final.reason,
            metrics=RunMetrics.model_validate(final.metrics), events=events, messages=list(self.messages),
        )

    async def stream(
        self, task: str, *, thinking: ThinkingMode | None = None, cancel: asyncio.Event | None = None
    ) -> AsyncIterator[Event]:
        """The run's events as they happen, ending with exactly one `RunFinished`.

        The loop runs in its own task feeding a queue, so that the caller can consume at its
        own pace; closing the iterator early stops the loop and leaves the conversation valid."""
        _check_mode(thinking or self.thinking)
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def produce() -> None:
            try:
                queue.put_nowait(await self.run_into(task, queue.put_nowait, thinking=thinking, cancel=cancel))
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # e.g. the session store failed: surface it to the consumer
                queue.put_nowait(_Failed(e))

        producer = asyncio.create_task(produce())
        try:
            while True:
                item = await queue.get()
                if type(item) is _Failed:
                    raise item.exc
                yield item
                if type(item) is RunFinished:
                    break
        finally:
            if not producer.done():
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await producer

    async def run_into(
        self, task: str, sink: Callable[[Event], Any], *, thinking: ThinkingMode | None = None,
        cancel: asyncio.Event | None = None,
    ) -> RunFinished:
        """Run one turn in the caller's task, handing every event to `sink` the moment it
        happens, and return the closing `RunFinished` (which is not passed to `sink`).

        Why it exists: a swarm drives 100 of these at once, and an event that crosses a queue
        and a task switch costs several times one that is a function call. `stream()` and
        `run()` are built on it. The caller's `cancel` event and the wall-clock budget stop
        the loop by cancelling this task from inside (then un-cancelling it), so a stop costs
        nothing until it happens; a cancellation from outside is propagated, as asyncio
        expects, after the conversation is repaired."""
        mode = thinking or self.thinking
        _check_mode(mode)
        st = _RunState(t0=time.monotonic())
        observe = st.telemetry.observe
        log: list[Event] | None = [] if self.session is not None else None

        def emit(ev: Event) -> None:
            observe(ev)
            if log is not None:
                log.append(ev)
            sink(ev)

        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        if me is None:  # pragma: no cover - always inside a task under asyncio.run
            raise RuntimeError("run_into must run inside an asyncio task")
        stop: list[str] = []  # why this task cancelled itself: "cancel" or "time"
        done = False

        def halt(why: str) -> None:
            if not done and not stop:
                stop.append(why)
                me.cancel()

        timer = None
        if self.budgets.wall_timeout_s is not None:
            timer = loop.call_later(max(0.0, self.budgets.wall_timeout_s), halt, "time")
        watcher = None
        if cancel is not None:
            watcher = loop.create_task(cancel.wait())
            watcher.add_done_callback(lambda t: None if t.cancelled() else halt("cancel"))
        finished = False
        try:
            # (no `done = True` needed before `finally`: halt() only runs while this task waits, and
            # nothing below awaits until then)
            try:
                outcome = await self._drive(task, mode, st, emit)
            except asyncio.CancelledError:
                if not stop or me.uncancel() > 0:
                    raise  # cancelled from outside (perhaps as well): not ours to swallow
                if stop[0] == "cancel":
                    outcome = _Done("cancelled", st.last_content, "cancelled by the caller")
                else:
                    limit = float(self.budgets.wall_timeout_s or 0)
                    emit(BudgetHit(budget="wall_timeout_s", limit=limit, value=round(time.monotonic() - st.t0, 3),
                                   agent=self.agent_id))
                    outcome = _Done("budget", st.last_content, f"wall-clock budget reached ({limit:g}s)")
            except Exception as e:  # noqa: BLE001 - an engine bug must still end the run cleanly
                outcome = _Done("error", st.last_content, f"engine error: {type(e).__name__}: {e}")
            self._repair(outcome.reason or outcome.status)
            fin = RunFinished(status=outcome.status, answer=outcome.answer, reason=outcome.reason,  # type: ignore[arg-type]
                              metrics=self._metrics(st).model_dump(), agent=self.agent_id)
            finished = True
            if log is not None:
                log.append(fin)
            self._persist(task, fin, log)
            return fin
        finally:
            done = True
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
            if not finished:  # cancelled from outside: keep the conversation valid
                self._repair("interrupted")
                with contextlib.suppress(Exception):
                    self._persist(task, None, log)

    # ---- the loop -----------------------------------------------------------------------------
    async def _drive(self, task: str, mode: ThinkingMode, st: _RunState, emit: Any) -> _Done:
        b = self.budgets
        first_turn = not any(m.role == "user" for m in self.messages)
        if not self.messages and self.system_prompt:
            self.messages.append(Message.system(self.system_prompt))
        self.messages.append(Message.user(task))
        self._results = {}
        after_error = False
        first_step = st.steps + 1
        seen_calls: set[tuple[str, str]] = set()
        force_answer = False
        while True:
            if (d := self._check_spend(st, emit)) is not None:
                return d
            if st.steps >= b.max_steps:
                emit(BudgetHit(budget="max_steps", limit=b.max_steps, value=st.steps, agent=self.agent_id))
                return _Done("budget", st.last_content, f"step budget reached ({b.max_steps} steps)")
            st.steps += 1
            step = st.steps
            emit(StepStarted(step=step, agent=self.agent_id))
            think = decide(mode, turn_text=task, first_turn=first_turn, after_tool_error=after_error)
            st.thinking_per_step.append(think)
            choice = "none" if force_answer else self.first_tool_choice if step == first_step and len(self.toolbox) else None
            force_answer = False
            reply = await self._call(think, st, emit, reask=False, tool_choice=choice)
            if isinstance(reply, _Done):
                return reply
            had = reply.reasoning_first
            note = None
            if think == "on" and not had:
                if self.reask_missing_reasoning:
                    st.reasks += 1
                    if (d := self._check_spend(st, emit)) is not None:
                        return d
                    reply = await self._call(think, st, emit, reask=True, tool_choice=choice)
                    if isinstance(reply, _Done):
                        return reply
                    had = reply.reasoning_first
                    note = "re-asked for reasoning"
                if not had:
                    st.violations += 1
                    note = "acted without reasoning (violation)"
            msg = reply.message
            self.messages.append(msg)
            if msg.content:
                st.last_content = msg.content
            if not msg.tool_calls:
                emit(StepFinished(step=step, tool_calls=0, had_reasoning=had, note=note, agent=self.agent_id))
                return _Done("ok", msg.content or "", None)
            if (d := self._check_spend(st, emit)) is not None:
                return d
            calls = msg.tool_calls
            allowed = len(calls)
            if b.max_tool_calls is not None:
                allowed = max(0, min(allowed, b.max_tool_calls - st.requested_tool_calls))
            st.requested_tool_calls += len(calls)
            results = await self._run_tools(calls[:allowed], task, st, emit)
            for call in calls[allowed:]:
                self._results[call.id] = Message.tool(call.id, prompts.TOOL_NOT_RUN_BUDGET.format(limit=b.max_tool_calls),
                                                      call.name)
            self.messages.extend(self._results.pop(c.id) for c in calls)
            after_error = any(not r.ok for r in results)
            keys = [(c.name, fastjson.dumps(c.arguments, sort_keys=True)) for c in calls]
            if all(k in seen_calls for k in keys) and not after_error:
                # the same call again, its result already in hand: a loop (weak models do this);
                # the next step may not call tools, so the model has to answer from what it has
                force_answer = True
                st.repeat_guards += 1
                note = (note + "; " if note else "") + "repeated tool call: next step must answer"
            seen_calls.update(keys)
            emit(StepFinished(step=step, tool_calls=len(calls), had_reasoning=had, note=note, agent=self.agent_id))
            if allowed < len(calls):
                emit(BudgetHit(budget="max_tool_calls", limit=float(b.max_tool_calls or 0),
                                     value=st.requested_tool_calls, agent=self.agent_id))
                return _Done("budget", st.last_content, f"tool-call budget reached ({b.max_tool_calls} calls)")

    def _check_spend(self, st: _RunState, emit: Any) -> _Done | None:
        b, t = self.budgets, st.telemetry
        if b.max_tokens is not None and t.total_tokens >= b.max_tokens:
            emit(BudgetHit(budget="max_tokens", limit=b.max_tokens, value=t.total_tokens, agent=self.agent_id))
            return _Done("budget", st.last_content, f"token budget reached ({t.total_tokens} of {b.max_tokens})")
        if b.max_cost_usd is not None and t.cost_usd >= b.max_cost_usd:
            emit(BudgetHit(budget="max_cost_usd", limit=b.max_cost_usd, value=t.cost_usd, agent=self.agent_id))
            return _Done("budget", st.last_content, f"cost budget reached (${t.cost_usd:.6f} of ${b.max_cost_usd:g})")
        return None

    # ---- one model call -----------------------------------------------------------------------
    def _request_messages(self, think: str, reask: bool) -> list[Message]:
        msgs = list(self.messages)
        if self.elicit == "tags" and think == "off":
            msgs.append(_THINK_OFF_NOTE)
        if reask:
            msgs.append(_REASK_TAGS if self.elicit == "tags" else _REASK)
        return msgs

    async def _call(self, think: str, st: _RunState, emit: Any, *, reask: bool,
                    tool_choice: str | dict[str, Any] | None = None) -> _Reply | _Done:
        tags = self.elicit == "tags"
        request = ChatRequest(
            messages=self._request_messages(think, reask),
            tools=self.toolbox.schemas(),
            tool_choice=tool_choice,
            thinking=think,  # type: ignore[arg-type]
            preserve_reasoning=self.preserve_reasoning,
            reasoning_as_tags=tags,  # the dialect gives <think> blocks back in the content
        )
        parser: Any = None  # the <think> splitter, made on the first content (tool-only steps need none)
        first_reasoning: int | None = None
        first_action: int | None = None
        n = 0
        final: ModelCallFinished | None = None
        try:
            async for ev in self.model.stream(request, agent=self.agent_id):
                tp = type(ev)
                if tp is ContentDelta and tags:
                    if parser is None:
                        parser = RawOutputParser(format="think")
                    for out in self._split(parser.feed(ev.text)):  # type: ignore[union-attr]
                        n += 1
                        if type(out) is ReasoningDelta:
                            if first_reasoning is None:
                                first_reasoning = n
                        elif first_action is None:
                            first_action = n
                        emit(out)
                    continue
                n += 1
                if tp is ReasoningDelta:
                    if first_reasoning is None:
                        first_reasoning = n
                elif tp is ContentDelta or tp is ToolCallEvent:
                    if first_action is None:
                        first_action = n
                elif tp is ModelCallFinished:
                    if tags:
                        for out in self._split(parser.close()) if parser is not None else ():
                            n += 1
                            if type(out) is ReasoningDelta and first_reasoning is None:
                                first_reasoning = n
                            emit(out)
                        split = self._split_message(ev.message)  # type: ignore[union-attr]
                        if split is not ev.message:  # type: ignore[union-attr]
                            ev = dataclasses.replace(ev, message=split)  # type: ignore[type-var]
                    final = ev  # type: ignore[assignment]
                elif tp is ErrorEvent:
                    emit(ev)
                    return _Done("error", st.last_content, f"model error ({ev.error_type}): {ev.message}")  # type: ignore[union-attr]
                emit(ev)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - backends should not raise, but a run must end cleanly
            err = ErrorEvent(error_type=type(e).__name__, message=str(e), agent=self.agent_id)
            emit(err)
            return _Done("error", st.last_content, f"model error ({type(e).__name__}): {e}")
        if final is None:
            return _Done("error", st.last_content, f"model {self.model.name!r} ended its stream without a result")
        msg = final.message
        has_reasoning = bool(msg.reasoning and msg.reasoning.text.strip())
        if first_reasoning is None and first_action is None:  # backend streamed nothing: trust the message
            ok = has_reasoning
        else:
            ok = has_reasoning and first_reasoning is not None and (first_action is None or first_reasoning < first_action)
        return _Reply(msg, ok)

    def _split(self, pieces: list[Any]) -> list[Event]:
        out: list[Event] = []
        for p in pieces:
            if isinstance(p, ReasoningText) and p.text:
                out.append(ReasoningDelta(text=p.text, agent=self.agent_id))
            elif isinstance(p, ContentText) and p.text:
                out.append(ContentDelta(text=p.text, agent=self.agent_id))
        return out

    def _split_message(self, msg: Message) -> Message:
        """The assembled message of a <think>-tag model, with its reasoning moved out of the content."""
        if not msg.content or msg.reasoning is not None:
            return msg
        parsed = parse_raw(msg.content, "think")
        reasoning = (parsed.reasoning or "").strip()
        content = (parsed.content or "").strip() or None
        return msg.model_copy(update={
            "content": content,
            "reasoning": Reasoning(text=reasoning, model=self.model.spec.model_id, dialect="think-tags") if reasoning else None,
        })

    # ---- tools --------------------------------------------------------------------------------
    async def _run_tools(self, calls: Sequence[Any], task: str, st: _RunState, emit: Any) -> list[ToolResult]:
        async def one(call: Any) -> ToolResult:
            rejected = await self._verify(call, task, st, emit) if call.name in CODE_TOOLS else None
            if rejected is not None:
                emit(ToolStarted(call_id=call.id, name=call.name, arguments=call.arguments, agent=self.agent_id))
                result = ToolResult(call_id=call.id, name=call.name, ok=False, content=rejected, error=rejected,
                                    agent=self.agent_id)
                emit(result)
            else:
                result = await self.toolbox.call_into(call, emit, agent=self.agent_id)
            self._results[call.id] = result_message(result)
            return result

        if len(calls) == 1:  # the common case: no gather, no extra task
            return [await one(calls[0])]
        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def _verify(self, call: Any, task: str, st: _RunState, emit: Any) -> str | None:
        """None when the call may run; else the tool-error text the model sees. Called for code
        tools only (`_run_tools` checks the name, to spare every other call a coroutine)."""
        if not self.verify_code or self.toolbox.get(call.name) is None:
            return None
        st.verifications += 1
        code = call.arguments.get("code") if isinstance(call.arguments, dict) else None
        chk = check_code(code, self.policy)
        emit(VerificationEvent(call_id=call.id, ok=chk.ok, reason=chk.reason, stage="policy", agent=self.agent_id))
        if chk.ok and self.self_check:
            st.self_check_calls += 1
            chk, evs = await self_check(self.model, task, code or "", agent=self.agent_id)
            for ev in evs:
                emit(ev)
            emit(VerificationEvent(call_id=call.id, ok=chk.ok, reason=chk.reason, stage="self_check",
                                         agent=self.agent_id))
        if not chk.ok:
            st.rejections += 1
            st.pending_rejection = True
            return prompts.VERIFY_REJECTED.format(stage=chk.stage.replace("_", "-"), reason=chk.reason)
        if st.pending_rejection:
            st.fixes += 1
            st.pending_rejection = False
        return None

    # ---- ending -------------------------------------------------------------------------------
    def _repair(self, reason: str) -> None:
        """After an interruption, answer every tool call of the last assistant message that has no
        result yet, so the conversation stays valid for providers (and for the next turn)."""
        for i in range(len(self.messages) - 1, -1, -1):
            m = self.messages[i]
            if m.role == "assistant":
                answered = {x.tool_call_id for x in self.messages[i + 1:] if x.role == "tool"}
                for c in m.tool_calls:
                    if c.id not in answered:
                        self.messages.append(self._results.pop(c.id, None) or Message.tool(
                            c.id, prompts.TOOL_NOT_RUN_CANCELLED.format(reason=reason), c.name))
                break
            if m.role == "user":
                break
        self._results = {}

    def _metrics(self, st: _RunState) -> RunMetrics:
        s = st.telemetry.summary()
        t = st.telemetry
        return RunMetrics(
            steps=st.steps, critical_steps=st.steps, tool_calls=t.tool_calls, tool_errors=t.tool_errors,
            model_calls=t.model_calls, usage=copy.copy(t.usage), cost_usd=t.cost_usd,
            ttft_first_s=s["ttft_first_s"], ttft_median_s=s["ttft_median_s"],  # type: ignore[arg-type]
            decode_tps_median=s["decode_tps_median"],  # type: ignore[arg-type]
            wall_s=round(time.monotonic() - st.t0, 4),
            violations=st.violations, reasks=st.reasks, verifications=st.verifications,
            rejections=st.rejections, fixes=st.fixes,
            extra={"thinking_per_step": st.thinking_per_step, "self_check_calls": st.self_check_calls,
                   "repeat_guards": st.repeat_guards,
                   "elicit": self.elicit, "preserve_reasoning": self.preserve_reasoning},
        )

    def _persist(self, task: str, fin: RunFinished | None, log: list[Event] | None) -> None:
        if self.session is None or log is None:
            return
        self.session.save(self.messages)
        self.session.record_run(task=task, mode="interleaved", model=self.model.name, finished=fin, events=log)
