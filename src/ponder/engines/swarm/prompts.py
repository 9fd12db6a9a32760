"""Swarm prompts, kept as data (short: the embedded model has 135M parameters and 8k context)."""

from __future__ import annotations

ORCHESTRATOR_SYSTEM = """\
You are the orchestrator of an agent swarm. There are no predefined sub-agents: split the task \
into independent sub-tasks and have sub-agents you create work on them in parallel.
Tools:
- plan(subtasks): create and start many sub-agents in one call (the fastest way to fan out). \
Each subtask has a name, instructions (the sub-agent's role, written by you), a task, the tools it may use, \
and depends_on (names of other subtasks or task ids whose results it needs first).
- create_subagent(name, instructions, tools) then assign_task(agent, task, depends_on) -> task id; tasks run in the background.
- wait(task_ids, mode): results as they finish (mode "any": return as soon as one is done; empty task_ids: all pending).
- memory_write(key, value) / memory_read(key or query): shared memory every agent can use.
- finish(answer): the final answer. Cite the sub-agent behind each part as [agent-name].
Tools sub-agents may be given: {tool_list}
At most {max_parallel} sub-agents run at once. You have {max_steps} steps; each sub-agent has {sub_steps}."""

SUBAGENT_SUFFIX = (
    "\nYou are sub-agent {name} in a swarm, working on one sub-task with your own context. "
    "Use your tools when they help; memory_read/memory_write share notes with the other agents. "
    "When done, reply with your result as plain text (no tool call)."
)

# guided mode (small local models): every sub-agent gets this same system prompt, with no name
# in it, so that the prompts of all sub-agents share their first ~200 tokens (the system prompt
# and the tool descriptions after it) and the embedded model evaluates them once, not per agent
SUBAGENT_SUFFIX_SHARED = (
    "\nYou are a sub-agent in a swarm, working on one sub-task with your own context. "
    "Use your tools when they help. When done, reply with your result as plain text (no tool call)."
)

SUBAGENT_DEFAULT_INSTRUCTIONS = "You are a focused worker agent."

LAST_STEP = "This is your last step: call finish(answer) now with the best answer you have, citing [agent-name]s."

FINISH_PENDING = (
    "ERROR: {n} task(s) are still running ({ids}). Call wait to collect their results first, "
    "or call finish again to stop them and answer without them."
)

NO_ACTION = "Reply with a tool call (plan, wait, finish, ...) or with the final answer."

SOFT_BUDGET = "The swarm's {budget} budget is exhausted; no more tool calls can run. Answer now with finish(answer)."
