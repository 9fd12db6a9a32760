"""Turn-level thinking: decide, per turn and per step, whether the model should think.

GLM-4.7 lets every request choose thinking on or off independently (reference
glm-4.7.md §2). Thinking costs reasoning tokens and latency; it pays on the first turn of
a task, on maths and code, on multi-step requests and right after something went wrong;
it is waste on a short factual follow-up ("and in km?"). `auto` is that rule, cheap
enough to run before every call (a few regexes, no model call):

* explicit `on` / `off` always win;
* `auto` turns thinking ON when any of these hold, else OFF:
  1. it is the first user turn of the conversation;
  2. the previous step's tool result was an error (the model must re-plan);
  3. the turn's text looks like maths or code (digits with an operator, a code fence,
     words such as calculate/compute/solve/prove/code/python/function/bug/algorithm);
  4. it asks for several steps (then/after that/first/step by step/compare/plan/analyse/why/explain);
  5. it is long (more than 30 words).
Within one turn, later steps inherit the turn's decision, except that rule 2 can switch
an `auto` turn back on.
"""

from __future__ import annotations

import re
from typing import Literal

ThinkingMode = Literal["on", "off", "auto"]

_MATH = re.compile(r"\d\s*[-+*/^%×÷=]\s*\d|\bsqrt\b|\d+\s*(?:percent|%)")
_CODE = re.compile(r"```|\bdef \w+\(|\bimport \w+|[{};]\s*$", re.M)
_MATH_CODE_WORDS = re.compile(
    r"\b(calculat\w*|comput\w*|solve|prove|proof|equation|integral|derivative|probabilit\w*|"
    r"code|python|program\w*|function|script|bug|debug|algorithm|regex|sql|sum|product|multiply|divide)\b",
    re.I,
)
_MULTI_STEP = re.compile(
    r"\b(then|after that|afterwards|first|second|finally|step[- ]by[- ]step|steps|compare|plan|"
    r"analy[sz]e|why|explain|derive|design|evaluate|investigate|research)\b",
    re.I,
)
LONG_TURN_WORDS = 30


def turn_needs_thinking(text: str, *, first_turn: bool) -> tuple[bool, str]:
    """The `auto` rule for a whole turn: (on?, which rule decided)."""
    if first_turn:
        return True, "first turn"
    if _MATH.search(text) or _CODE.search(text) or _MATH_CODE_WORDS.search(text):
        return True, "maths/code"
    if _MULTI_STEP.search(text):
        return True, "multi-step"
    if len(text.split()) > LONG_TURN_WORDS:
        return True, "long request"
    return False, "short follow-up"


def decide(mode: ThinkingMode, *, turn_text: str, first_turn: bool, after_tool_error: bool = False) -> Literal["on", "off"]:
    """Thinking for one step: explicit modes pass through; `auto` applies the rule above."""
    if mode == "on":
        return "on"
    if mode == "off":
        return "off"
    if mode != "auto":
        raise ValueError(f"thinking must be 'on', 'off' or 'auto', not {mode!r}")
    if after_tool_error:
        return "on"
    on, _ = turn_needs_thinking(turn_text, first_turn=first_turn)
    return "on" if on else "off"
