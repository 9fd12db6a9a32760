"""Engine prompts, kept as data.

Prompts live here rather than inline so that the Interleaved and Swarm engines share one
wording, tests can assert against the same constants, and anyone tuning a prompt edits
one file. Every prompt is short on purpose: the embedded model has 135M parameters and
an 8k context, and long instructions cost every call of every step.
"""

from __future__ import annotations

INTERLEAVED_SYSTEM = (
    "You are a careful assistant that thinks before every action. "
    "Work step by step: think, then either call one of the tools or give the final answer. "
    "After each tool result, think again about what it means before the next action. "
    "When you have the answer, reply with it directly and call no tool."
)

INTERLEAVED_SYSTEM_NO_TOOLS = (
    "You are a careful assistant that thinks before it answers. Think step by step, then reply with the answer."
)

# For chat models that have no native reasoning channel and no constrained-JSON thinking
# field: the reasoning is elicited in tags and split out of the content by the engine.
THINK_TAGS_INSTRUCTION = (
    "Before every tool call and before your final answer, first write your reasoning inside "
    "<think>...</think>, then act. Never act without a <think> block first."
)

THINK_OFF_NOTE = "Answer directly this time, without a <think> block."

# Appended (to that one request only) when a step came back without reasoning.
REASK_MISSING_REASONING = (
    "Your last reply acted without reasoning first. Think step by step about the next action, "
    "then take it (call a tool or answer)."
)

REASK_MISSING_REASONING_TAGS = (
    "Your last reply acted without reasoning first. Write your reasoning inside <think>...</think>, "
    "then take the next action (call a tool or answer)."
)

SELF_CHECK_SYSTEM = (
    "You review code before it runs. Decide whether the code does what the task needs and is safe "
    "to run in a sandbox (no network, no file deletion, no shell). Reply only with JSON "
    '{"ok": true|false, "reason": "one short sentence"}.'
)

SELF_CHECK_USER = "Task:\n{task}\n\nCode about to run:\n```python\n{code}\n```\nIs this code right for the task and safe to run?"

SELF_CHECK_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["ok", "reason"],
    "additionalProperties": False,
}

VERIFY_REJECTED = "ERROR: code rejected before running ({stage}): {reason}. Fix the code and call the tool again."
VERIFY_FIX = " To compute it, call the tool with this code: {fix}"

TOOL_NOT_RUN_BUDGET = "ERROR: not run: the run's tool-call budget ({limit}) was reached."
TOOL_NOT_RUN_CANCELLED = "ERROR: not run: the run was stopped ({reason}) before this tool finished."

# The model repeated a call that already failed: it gets the earlier error, not another run.
REPEATED_FAILED_CALL = (
    "ERROR: you already made this exact call and it failed: {error} — it was not run again. "
    "Change the call, or answer now with what you know."
)
LAST_RESULT = "\nYour last successful tool result was: {result}"

# On resume: a non-idempotent tool was running when the process stopped.
TOOL_OUTCOME_UNKNOWN = (
    "ERROR: outcome unknown: the process stopped while {name} was running, and it was not run again "
    "because it may have side effects. Check its effect before calling it again."
)
