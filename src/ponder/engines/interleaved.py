"""The Interleaved engine: think before every act, keep the thinking, verify before executing.

GLM-4.7's System-2 design (reference glm-4.7.md §2-3) as an engine over any ChatModel. The
loop itself is `engines/loop.py` (shared with the swarm's agents); this class is the engine
contract around it (`drive`, `conclude`, `describe`) plus the Python API of `Runnable`.

* **Interleaved thinking.** Every step that acts (calls a tool or answers) while thinking is
  on must carry reasoning *before* the action. Native thinkers (Kimi, GLM, DeepSeek) are
  checked (a ReasoningDelta must precede the first ToolCallEvent / ContentDelta); a model
  with constrained decoding (the embedded one) is asked through `ChatRequest.thinking="on"`
  (its grammar puts a `thinking` field first); other chat models are told to write
  `<think>…</think>` first and the loop splits it out. A step without reasoning is re-asked
  once; a second miss proceeds and counts as a violation.
* **Preserved thinking.** Reasoning stays on `Message.reasoning` in `messages`; every call
  sends the whole conversation with `ChatRequest.preserve_reasoning`, and the wire dialect
  applies each provider's replay rule.
* **Turn-level thinking.** `thinking` per engine, per `run()`/`stream()` call, per step (`auto`).
* **Verify before execute.** Code for the `python` tool is checked against a `CodePolicy`
  (and optionally self-checked by the model) before it runs; rejected code comes back as a
  tool error, and resubmitting the same failed call returns that error instead of a new run.
* **A conversation object.** An engine instance keeps `messages` across turns (`run()` again
  continues the conversation); `messages=` starts it from a stored history (a session).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from ..core.messages import Message
from ..core.metrics import RunMetrics
from ..models.base import ChatModel
from ..tools.base import Tool, Toolbox
from .base import Budgets, Outcome
from .loop import CODE_TOOLS, AgentLoop
from .runtime import RunContext, Runnable
from .thinking import ThinkingMode
from .verify import CodePolicy

__all__ = ["CODE_TOOLS", "Interleaved"]


class Interleaved(AgentLoop, Runnable):
    """Think-before-act agent with preserved reasoning. See the module docstring."""

    mode: ClassVar[str] = "interleaved"
    checks_answer: ClassVar[bool] = True  # a placeholder answer ("all tasks are done") is not `ok`

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
        agent_id: str = "main",
        reask_missing_reasoning: bool = True,
        first_tool_choice: str | dict[str, Any] | None = None,
        messages: list[Message] | None = None,
    ):
        super().__init__(model, tools, agent_id=agent_id, thinking=thinking, preserve_reasoning=preserve_reasoning,
                         budgets=budgets, system_prompt=system_prompt, verify_code=verify_code, self_check=self_check,
                         policy=policy, reask_missing_reasoning=reask_missing_reasoning,
                         first_tool_choice=first_tool_choice, messages=messages)
        self.settings: dict[str, Any] | None = None  # set by build_engine: what rebuilds this engine

    # ---- the engine contract ----------------------------------------------------------------
    @property
    def main_agent(self) -> str:
        return self.agent_id

    def describe(self) -> dict[str, Any]:
        if self.settings is not None:
            return self.settings
        return {"mode": self.mode, "model": self.model.name, "thinking": self.thinking,
                "preserve_reasoning": self.preserve_reasoning, "tools": self.toolbox.names(),
                "verify_code": self.verify_code, "self_check": self.self_check,
                "budgets": self.budgets.model_dump(exclude_none=True)}

    def check_options(self, options: dict[str, Any]) -> None:
        mode = options.get("thinking")
        if mode is not None and mode not in ("on", "off", "auto"):
            raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {mode!r}")

    async def drive(self, task: str, ctx: RunContext) -> Outcome:
        return await self.run_turn(task, ctx, mode=ctx.options.get("thinking") or self.thinking)

    async def conclude(self, ctx: RunContext, outcome: Outcome) -> tuple[Outcome, RunMetrics]:
        t = self.turn
        if t is None:
            return outcome, ctx.base_metrics()
        return outcome, ctx.base_metrics(
            steps=t.steps, critical_steps=t.steps, violations=t.violations, reasks=t.reasks,
            verifications=t.verifications, rejections=t.rejections, fixes=t.fixes, repeat_guards=t.repeat_guards,
            self_check_calls=t.self_check_calls,
            extra={"thinking_per_step": t.thinking_per_step, "elicit": self.elicit,
                   "preserve_reasoning": self.preserve_reasoning},
        )

    def history(self) -> list[Message]:
        return self.messages
