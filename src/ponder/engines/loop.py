"""The one agent loop: model call -> tool calls -> tool results -> model call ... until an answer.

The Interleaved engine, every swarm sub-agent and the swarm's orchestrator are this loop.
What differs between them is a handful of step hooks, overridden by subclasses (the
smolagents pattern: one loop specialised by a step hook):

* `plan_step(turn)` — which tools the next call sees, the `tool_choice`, transient notes,
  the thinking switch, and whether think-before-act is enforced this step;
* `on_answer(turn, message)` — a reply without tool calls: the answer, or (orchestrator)
  a nudge and another step;
* `skip_call(turn, call)` — a call that must not run (the orchestrator after `finish`);
* `after_tools(turn)` — stop after a step's tools ran (the orchestrator's `finish`).

The defaults here are GLM-4.7's interleaved design (see `engines/interleaved.py`): think
before every act (a step that acts without reasoning is re-asked once), verify code before
running it, the repeat guard, `first_tool_choice`.

Every message the loop adds to its conversation goes out as a `MessageAppended` event, and
that is the whole persistence story: a journal reading the stream can rebuild any agent's
conversation byte-exact and `resume` it from its last completed step (`_resume`), with a
tool call that was in flight re-run only if the tool declares itself idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..core import fastjson
from ..core.events import (
    BudgetHit,
    ContentDelta,
    ErrorEvent,
    Event,
    MessageAppended,
    ModelCallFinished,
    ReasoningDelta,
    StepFinished,
    StepStarted,
    ToolCallEvent,
    ToolRecovered,
    ToolResult,
    ToolStarted,
    VerificationEvent,
)
from ..core.messages import Message, Reasoning, ToolCall
from ..models.base import ChatModel, ChatRequest
from ..models.parsers import ContentText, RawOutputParser, ReasoningText, parse_raw
from ..tools.base import Tool, Toolbox, result_message
from . import prompts
from .base import Budgets, Outcome
from .thinking import ThinkingMode, decide
from .verify import CodePolicy, check_code, self_check

if TYPE_CHECKING:
    from .replay import LaneReplay
    from .runtime import RunContext

CODE_TOOLS = frozenset({"python"})
Elicit = Literal["native", "schema", "tags"]

# shared, frozen messages: their wire JSON is encoded once for every agent and step
_THINK_OFF_NOTE = Message.system(prompts.THINK_OFF_NOTE)
_REASK = Message.user(prompts.REASK_MISSING_REASONING)
_REASK_TAGS = Message.user(prompts.REASK_MISSING_REASONING_TAGS)


def elicitation(model: ChatModel) -> Elicit:
    """How reasoning is obtained from `model`, by capability: it streams reasoning itself
    (native), it can be constrained to a JSON schema whose first field is the thinking
    (schema), or it is asked for `<think>` tags that are split out of its content (tags)."""
    if model.native_thinking:
        return "native"
    caps = getattr(model.spec, "capabilities", None)
    constrained = getattr(caps, "constrained_decoding", None)
    if constrained is None:
        constrained = model.spec.dialect == "embedded"
    return "schema" if constrained else "tags"


@dataclass(slots=True)
class StepPlan:
    """What the next model call sees (decided by `plan_step`)."""

    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any] | None = None
    extra: Sequence[Message] = ()  # transient messages after the history (never kept in it)
    thinking: str | None = None  # "on" / "off" / None (the provider's default)
    check_reasoning: bool = False  # enforce think-before-act (one re-ask, then a violation)
    max_tokens: int | None = None


@dataclass
class Turn:
    """One turn's running state (reset per turn; rebuilt from the journal on resume)."""

    task: str
    mode: str
    first_turn: bool = True
    steps: int = 0
    first_step: int = 1
    reasks: int = 0
    violations: int = 0
    verifications: int = 0
    rejections: int = 0
    fixes: int = 0
    pending_rejection: bool = False
    requested_tool_calls: int = 0
    self_check_calls: int = 0
    repeat_guards: int = 0
    model_errors: int = 0  # consecutive
    thinking_per_step: list[str] = field(default_factory=list)
    seen_calls: set[tuple[str, str]] = field(default_factory=set)
    failed_calls: dict[tuple[str, str], str] = field(default_factory=dict)
    last_ok_result: str | None = None  # the latest successful tool result (restated after a repeated failure)
    force_answer: bool = False
    after_error: bool = False
    last_content: str | None = None
    plan: StepPlan | None = None


@dataclass(slots=True)
class _Reply:
    message: Message
    reasoning_first: bool


class AgentLoop:
    """One agent: a model, its tools, its conversation (`messages`) and the loop."""

    max_model_errors = 1  # consecutive failed model calls before the turn ends in error
    concurrent_tools = True  # several calls in one step run at once (results in call order)
    repeat_guard = True
    budget_label = ""  # names the agent in the step-budget reason ("orchestrator ")

    def __init__(
        self,
        model: ChatModel,
        tools: Sequence[Tool] | Toolbox = (),
        *,
        agent_id: str = "main",
        thinking: ThinkingMode = "auto",
        preserve_reasoning: bool = True,
        budgets: Budgets | None = None,
        system_prompt: str | None = None,
        verify_code: bool = True,
        self_check: bool = False,
        policy: CodePolicy | None = None,
        reask_missing_reasoning: bool = True,
        first_tool_choice: str | dict[str, Any] | None = None,
        messages: list[Message] | None = None,
    ):
        if thinking not in ("on", "off", "auto"):
            raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {thinking!r}")
        self.model = model
        self.toolbox = tools if isinstance(tools, Toolbox) else Toolbox(tools)
        self.agent_id = agent_id
        self.thinking: ThinkingMode = thinking
        self.preserve_reasoning = preserve_reasoning
        self.budgets = budgets or Budgets()
        self.verify_code = verify_code
        self.self_check = self_check
        self.policy = policy or CodePolicy()
        self.reask_missing_reasoning = reask_missing_reasoning
        # e.g. "required": the first step of every turn must call a tool (weak models otherwise guess)
        self.first_tool_choice = first_tool_choice
        self.elicit: Elicit = elicitation(model)
        self.system_prompt = system_prompt if system_prompt is not None else self._default_system_prompt()
        self.messages: list[Message] = list(messages) if messages else []
        self.turn: Turn | None = None  # the latest turn's state (its metrics)
        self._results: dict[str, Message] = {}
        self._emit: Callable[[Event], Any] = _drop

    def _default_system_prompt(self) -> str:
        base = prompts.INTERLEAVED_SYSTEM if len(self.toolbox) else prompts.INTERLEAVED_SYSTEM_NO_TOOLS
        return base + (" " + prompts.THINK_TAGS_INSTRUCTION if self.elicit == "tags" else "")

    # ---- the conversation ---------------------------------------------------------------------
    def append(self, msg: Message) -> None:
        """Add to the conversation, and say so on the stream (the journal rebuilds from it)."""
        self.messages.append(msg)
        self._emit(MessageAppended(index=len(self.messages) - 1, message=msg, agent=self.agent_id))

    def _begin(self, task: str) -> bool:
        """Start a turn: repair what an interrupted earlier turn left open, then the system
        prompt (first turn only) and the task. Returns whether this is the first turn."""
        self._repair("the previous turn was interrupted before this call returned")
        first_turn = not any(m.role == "user" for m in self.messages)
        if not self.messages and self.system_prompt:
            self.append(Message.system(self.system_prompt))
        self.append(Message.user(task))
        return first_turn

    # ---- the loop -----------------------------------------------------------------------------
    async def run_turn(self, task: str, ctx: RunContext, *, emit: Callable[[Event], Any] | None = None,
                       main: bool = True, mode: str | None = None) -> Outcome:
        """Drive one turn to its outcome. `emit` overrides `ctx.emit` (a swarm counts its
        sub-agents' events on the way); `main` marks the run's own agent, whose latest text
        is the answer when a stop cuts the run short."""
        self._emit = emit = emit or ctx.emit
        mode = mode or self.thinking
        turn = self.turn = Turn(task=task, mode=mode)
        self._results = {}
        lane = ctx.replay.lanes.get(self.agent_id) if ctx.replay is not None else None
        try:
            if lane is not None and lane.messages:
                done = await self._resume(turn, lane, ctx, main)
                if done is not None:
                    return done
            else:
                turn.first_turn = self._begin(task)
                turn.first_step = turn.steps + 1
            return await self._steps(turn, ctx, main)
        finally:
            self._repair(ctx.stop_reason or "interrupted")

    async def _steps(self, turn: Turn, ctx: RunContext, main: bool) -> Outcome:
        b, emit, agent = self.budgets, self._emit, self.agent_id
        while True:
            if (d := self._check_spend(turn, ctx)) is not None:
                return d
            if turn.steps >= b.max_steps:
                emit(BudgetHit(budget="max_steps", limit=b.max_steps, value=turn.steps, agent=agent))
                return Outcome("budget", turn.last_content, f"{self.budget_label}step budget reached ({b.max_steps} steps)")
            turn.steps += 1
            step = turn.steps
            emit(StepStarted(step=step, agent=agent))
            plan = turn.plan = self.plan_step(turn)
            reply = await self._call(plan, turn, reask=False)
            if isinstance(reply, Outcome):
                if reply.status == "error" and turn.model_errors < self.max_model_errors:
                    emit(StepFinished(step=step, tool_calls=0, had_reasoning=False, note=reply.reason, agent=agent))
                    continue
                return reply
            turn.model_errors = 0
            had = reply.reasoning_first
            note = None
            if plan.check_reasoning and not had:
                if self.reask_missing_reasoning:
                    turn.reasks += 1
                    if (d := self._check_spend(turn, ctx)) is not None:
                        return d
                    reply = await self._call(plan, turn, reask=True)
                    if isinstance(reply, Outcome):
                        return reply
                    had = reply.reasoning_first
                    note = "re-asked for reasoning"
                if not had:
                    turn.violations += 1
                    note = "acted without reasoning (violation)"
            msg = reply.message
            self.append(msg)
            if msg.content:
                turn.last_content = msg.content
                if main:
                    ctx.last_content = msg.content
            if not msg.tool_calls:
                emit(StepFinished(step=step, tool_calls=0, had_reasoning=had, note=note, agent=agent))
                done = self.on_answer(turn, msg)
                if done is not None:
                    return done
                continue
            if (d := self._check_spend(turn, ctx)) is not None:
                return d
            done = await self._act(turn, ctx, step, msg.tool_calls, had, note)
            if done is not None:
                return done

    async def _act(self, turn: Turn, ctx: RunContext, step: int, calls: list[ToolCall], had: bool,
                   note: str | None, recovered: dict[str, ToolResult] | None = None) -> Outcome | None:
        """Run a step's tool calls, add their results in call order, close the step."""
        b, emit = self.budgets, self._emit
        allowed = len(calls)
        if b.max_tool_calls is not None:
            allowed = max(0, min(allowed, b.max_tool_calls - turn.requested_tool_calls))
        turn.requested_tool_calls += len(calls)
        results = await self._run_tools(calls[:allowed], turn, ctx, recovered or {})
        for call in calls[allowed:]:
            self._results[call.id] = Message.tool(call.id, prompts.TOOL_NOT_RUN_BUDGET.format(limit=b.max_tool_calls),
                                                  call.name)
        for c in calls:
            self.append(self._results.pop(c.id))
        turn.after_error = any(not r.ok for r in results)
        if self.repeat_guard:
            keys = [(c.name, fastjson.dumps(c.arguments, sort_keys=True)) for c in calls]
            if all(k in turn.seen_calls for k in keys) and not turn.after_error:
                # the same call again, its result already in hand: a loop (weak models do this);
                # the next step may not call tools, so the model has to answer from what it has
                turn.force_answer = True
                turn.repeat_guards += 1
                note = (note + "; " if note else "") + "repeated tool call: next step must answer"
            turn.seen_calls.update(keys)
        emit(StepFinished(step=step, tool_calls=len(calls), had_reasoning=had, note=note, agent=self.agent_id))
        if allowed < len(calls):
            emit(BudgetHit(budget="max_tool_calls", limit=float(b.max_tool_calls or 0),
                           value=turn.requested_tool_calls, agent=self.agent_id))
            return Outcome("budget", turn.last_content, f"tool-call budget reached ({b.max_tool_calls} calls)")
        return self.after_tools(turn)

    def _check_spend(self, turn: Turn, ctx: RunContext) -> Outcome | None:
        hit = ctx.spend_exceeded()
        if hit is None:
            return None
        hit.agent = self.agent_id
        self._emit(hit)
        return Outcome("budget", turn.last_content, f"{hit.budget} budget reached ({hit.value:g} of {hit.limit:g})")

    # ---- step hooks (the Interleaved defaults) ---------------------------------------------------
    def plan_step(self, turn: Turn) -> StepPlan:
        think = decide(turn.mode, turn_text=turn.task, first_turn=turn.first_turn,  # type: ignore[arg-type]
                       after_tool_error=turn.after_error)
        turn.thinking_per_step.append(think)
        extra: tuple[Message, ...] = (_THINK_OFF_NOTE,) if self.elicit == "tags" and think == "off" else ()
        if turn.force_answer:
            choice: str | dict[str, Any] | None = "none"
            turn.force_answer = False
        else:
            choice = self.first_tool_choice if turn.steps == turn.first_step and len(self.toolbox) else None
        return StepPlan(tools=self.toolbox.schemas(), tool_choice=choice, extra=extra, thinking=think,
                        check_reasoning=think == "on")

    def on_answer(self, turn: Turn, msg: Message) -> Outcome | None:
        return Outcome("ok", msg.content or "", None)

    def skip_call(self, turn: Turn, call: ToolCall) -> str | None:
        """A reason not to run `call` (shown to the model as its result), or None."""
        return None

    def after_tools(self, turn: Turn) -> Outcome | None:
        return None

    def recover_call(self, turn: Turn, call: ToolCall) -> ToolResult | Literal["rerun"] | None:
        """On resume, a call that was running when the process stopped: its result rebuilt
        from the journal, "rerun", or None for the tool's declared policy (`Tool.idempotent`)."""
        return None

    # ---- one model call -----------------------------------------------------------------------
    async def _call(self, plan: StepPlan, turn: Turn, *, reask: bool) -> _Reply | Outcome:
        tags = self.elicit == "tags"
        extra = list(plan.extra)
        if reask:
            extra.append(_REASK_TAGS if tags else _REASK)
        request = ChatRequest(
            messages=self.messages + extra if extra else list(self.messages),
            tools=plan.tools,
            tool_choice=plan.tool_choice,
            thinking=plan.thinking,  # type: ignore[arg-type]
            max_tokens=plan.max_tokens,
            preserve_reasoning=self.preserve_reasoning,
            reasoning_as_tags=tags,  # the dialect gives <think> blocks back in the content
        )
        emit, agent = self._emit, self.agent_id
        parser: Any = None  # the <think> splitter, made on the first content (tool-only steps need none)
        first_reasoning: int | None = None
        first_action: int | None = None
        n = 0
        final: ModelCallFinished | None = None
        try:
            async for ev in self.model.stream(request, agent=agent):
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
                    turn.model_errors += 1
                    return Outcome("error", turn.last_content, f"model error ({ev.error_type}): {ev.message}")  # type: ignore[union-attr]
                emit(ev)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - backends should not raise, but a run must end cleanly
            emit(ErrorEvent(error_type=type(e).__name__, message=str(e), agent=agent))
            turn.model_errors += 1
            return Outcome("error", turn.last_content, f"model error ({type(e).__name__}): {e}")
        if final is None:
            turn.model_errors += 1
            return Outcome("error", turn.last_content, f"model {self.model.name!r} ended its stream without a result")
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
    async def _run_tools(self, calls: Sequence[ToolCall], turn: Turn, ctx: RunContext,
                         recovered: dict[str, ToolResult]) -> list[ToolResult]:
        emit, agent = self._emit, self.agent_id
        plan = turn.plan
        offered = None
        if plan is not None and len(plan.tools) < len(self.toolbox):
            offered = {s["function"]["name"] for s in plan.tools}

        async def one(call: ToolCall) -> ToolResult:
            done = recovered.get(call.id)
            if done is not None:  # journaled before a crash: not run again
                self._results[call.id] = result_message(done)
                return done
            why = self.skip_call(turn, call)
            if why is None and offered is not None and call.name not in offered:
                why = f"ERROR: tool {call.name!r} is not available at this step; use one of {sorted(offered)}"
            if why is not None:
                result = ToolResult(call_id=call.id, name=call.name, ok=not why.startswith("ERROR"), content=why,
                                    agent=agent)
                self._results[call.id] = result_message(result)
                return result
            key = (call.name, fastjson.dumps(call.arguments, sort_keys=True)) if not call.parse_error else None
            earlier = turn.failed_calls.get(key) if key is not None else None
            if earlier is not None:
                # the very call that already failed: its error again, not another run (weak
                # models resubmit rejected code for a dozen steps); the next step must answer
                text = prompts.REPEATED_FAILED_CALL.format(error=earlier)
                if turn.last_ok_result:
                    # its own latest finding last, where the answer step reads: a 135M model told
                    # only "it failed" answered with the error's words (measured: 4 of 6 chains
                    # followed to the end, then answered "You already made this call...")
                    text += prompts.LAST_RESULT.format(result=turn.last_ok_result[:500])
                emit(ToolStarted(call_id=call.id, name=call.name, arguments=call.arguments, agent=agent))
                result = ToolResult(call_id=call.id, name=call.name, ok=False, content=text, error=text, agent=agent)
                emit(result)
                turn.force_answer = True
                self._results[call.id] = result_message(result)
                return result
            rejected = await self._verify(call, turn) if call.name in CODE_TOOLS else None
            if rejected is not None:
                emit(ToolStarted(call_id=call.id, name=call.name, arguments=call.arguments, agent=agent))
                result = ToolResult(call_id=call.id, name=call.name, ok=False, content=rejected, error=rejected,
                                    agent=agent)
                emit(result)
            else:
                t = self.toolbox.get(call.name)
                if t is not None and not t.idempotent:
                    ctx.checkpoint()  # the call is durable before a side effect that must not repeat
                result = await self.toolbox.call_into(call, emit, agent=agent)
            if not result.ok and key is not None:
                turn.failed_calls[key] = result.content or result.error or "failed"
            elif result.ok:
                turn.last_ok_result = result.content
            self._results[call.id] = result_message(result)
            return result

        if len(calls) == 1 or not self.concurrent_tools:  # the common case: no gather, no extra task
            return [await one(c) for c in calls]
        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def _verify(self, call: ToolCall, turn: Turn) -> str | None:
        """None when the call may run; else the tool-error text the model sees. Called for code
        tools only (`_run_tools` checks the name, to spare every other call a coroutine)."""
        if not self.verify_code or self.toolbox.get(call.name) is None:
            return None
        emit, agent = self._emit, self.agent_id
        turn.verifications += 1
        code = call.arguments.get("code") if isinstance(call.arguments, dict) else None
        chk = check_code(code, self.policy)
        emit(VerificationEvent(call_id=call.id, ok=chk.ok, reason=chk.reason, stage="policy", agent=agent))
        if chk.ok and self.self_check:
            turn.self_check_calls += 1
            chk, evs = await self_check(self.model, turn.task, code or "", agent=agent)
            for ev in evs:
                emit(ev)
            emit(VerificationEvent(call_id=call.id, ok=chk.ok, reason=chk.reason, stage="self_check", agent=agent))
        if not chk.ok:
            turn.rejections += 1
            turn.pending_rejection = True
            text = prompts.VERIFY_REJECTED.format(stage=chk.stage.replace("_", "-"), reason=chk.reason)
            # the runnable form last, where a small model copies from
            return text + prompts.VERIFY_FIX.format(fix=chk.fix) if chk.fix else text
        if turn.pending_rejection:
            turn.fixes += 1
            turn.pending_rejection = False
        return None

    # ---- resume and repair --------------------------------------------------------------------
    async def _resume(self, turn: Turn, lane: LaneReplay, ctx: RunContext, main: bool) -> Outcome | None:
        """Continue from the journal: the conversation as it was, the last completed step's
        state, and the step that was open at the crash finished (its tools) or re-issued."""
        base = max(0, lane.base)
        if len(self.messages) < base:
            raise ValueError(f"agent {self.agent_id!r}: its journal continues a conversation of {base} messages, "
                             f"but only {len(self.messages)} were given (resume a session run with its session)")
        self.messages = self.messages[:base] + lane.messages
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        start = users[-1] if users else 0
        turn.first_turn = len(users) <= 1
        turn.first_step = 1
        turn.steps = lane.steps
        for m in self.messages[start:]:
            if m.role == "assistant":
                if m.content:
                    turn.last_content = m.content
                for c in m.tool_calls:
                    turn.seen_calls.add((c.name, fastjson.dumps(c.arguments, sort_keys=True)))
        if main and turn.last_content:
            ctx.last_content = turn.last_content
        pending = lane.pending_calls()
        last = self.messages[-1]
        open_step = lane.open_step
        if open_step is not None and not lane.step_has_reply and lane.unappended_reply is not None:
            # the step's model call had finished but its reply was not yet in the conversation:
            # take it from the journal instead of paying for the call again
            reply = lane.unappended_reply
            self.append(reply)
            last = reply
            if reply.content:
                turn.last_content = reply.content
                if main:
                    ctx.last_content = reply.content
            pending = list(reply.tool_calls)
            if not pending:
                turn.steps = open_step
                self._emit(StepFinished(step=open_step, tool_calls=0, had_reasoning=bool(reply.reasoning),
                                        note="resumed from the journal", agent=self.agent_id))
                return self.on_answer(turn, reply)
        if pending:
            return await self._finish_open_step(turn, ctx, open_step or turn.steps + 1, pending, lane)
        if open_step is not None and lane.step_has_reply:  # its reply (and tools) were in: close it
            turn.steps = open_step
            answered = last.role == "assistant" and not last.tool_calls
            reply = next(m for m in reversed(self.messages) if m.role == "assistant")
            self._emit(StepFinished(step=open_step, tool_calls=len(reply.tool_calls),
                                    had_reasoning=True, note="resumed from the journal", agent=self.agent_id))
            return self.on_answer(turn, last) if answered else self.after_tools(turn)
        if open_step is None and last.role == "assistant" and not last.tool_calls:  # the turn had answered
            return self.on_answer(turn, last)
        return None  # the open step's model call is issued again

    async def _finish_open_step(self, turn: Turn, ctx: RunContext, step: int, pending: list[ToolCall],
                                lane: LaneReplay) -> Outcome | None:
        """The step was in its tools when the process stopped: results that reached the journal
        are used as they are; a call still running then is re-run when its tool is idempotent,
        else the model is told its outcome is unknown."""
        turn.steps = step
        turn.plan = StepPlan(tools=self.toolbox.schemas())
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        start = users[-1] if users else 0
        turn.requested_tool_calls = sum(len(m.tool_calls) for m in self.messages[start:] if m.role == "assistant") \
            - len(pending)
        recovered: dict[str, ToolResult] = {}
        for c in pending:
            r = lane.results.get(c.id)
            if r is not None:
                recovered[c.id] = r
                continue
            decision = self.recover_call(turn, c)
            if isinstance(decision, ToolResult):
                self._emit(ToolRecovered(call_id=c.id, name=c.name, action="journal", agent=self.agent_id))
                recovered[c.id] = decision
                continue
            t = self.toolbox.get(c.name)
            if decision != "rerun" and t is not None and not t.idempotent:
                self._emit(ToolRecovered(call_id=c.id, name=c.name, action="unknown", agent=self.agent_id))
                text = prompts.TOOL_OUTCOME_UNKNOWN.format(name=c.name)
                recovered[c.id] = ToolResult(call_id=c.id, name=c.name, ok=False, content=text, error=text,
                                             agent=self.agent_id)
            else:  # re-run by `_act` below
                self._emit(ToolRecovered(call_id=c.id, name=c.name, action="rerun", agent=self.agent_id))
        return await self._act(turn, ctx, step, pending, True, "resumed from the journal", recovered)

    def _repair(self, reason: str) -> None:
        """After an interruption, answer every tool call of the last assistant message that has no
        result yet, so the conversation stays valid for providers (and for the next turn)."""
        for i in range(len(self.messages) - 1, -1, -1):
            m = self.messages[i]
            if m.role == "assistant":
                answered = {x.tool_call_id for x in self.messages[i + 1:] if x.role == "tool"}
                for c in m.tool_calls:
                    if c.id not in answered:
                        self.append(self._results.pop(c.id, None) or Message.tool(
                            c.id, prompts.TOOL_NOT_RUN_CANCELLED.format(reason=reason), c.name))
                break
            if m.role == "user":
                break
        self._results = {}


def _drop(_ev: Any) -> None:
    return None
