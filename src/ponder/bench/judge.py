"""An optional LLM judge for free-form answers (the HLE / BrowseComp grader prompt).

The verdict is read from the `correct: yes|no` line with the captured group, not the
whole match: simple-evals' BrowseComp compares `match.group(0)` ("correct: yes") with
"yes" and so marks every answer wrong (openai/simple-evals PR #93).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.messages import Message
from ..models.base import ChatModel, ChatRequest
from .graders import Grade, extract_answer

JUDGE_TEMPLATE = """Judge whether the following [response] to [question] is correct or not based on the precise and unambiguous [correct_answer] below.

[question]: {question}

[response]: {response}

Your judgement must be in the format and criteria specified below:

extracted_final_answer: The final exact answer extracted from the [response]. Put the extracted answer as 'None' if there is no exact, final answer to extract from the response.

[correct_answer]: {correct_answer}

reasoning: Explain why the extracted_final_answer is correct or incorrect based on [correct_answer], focusing only on if there are meaningful differences between [correct_answer] and the extracted_final_answer. Do not comment on any background to the problem, do not attempt to solve the problem, do not argue for any answer different than [correct_answer], focus only on whether the answers match.

correct: Answer 'yes' if extracted_final_answer matches the [correct_answer] given above, or is within a small margin of error for numerical problems. Answer 'no' otherwise, i.e. if there if there is any inconsistency, ambiguity, non-equivalency, or if the extracted answer is incorrect.

confidence: The extracted confidence score between 0% and 100% from [response]. Put 100 if there is no confidence score available."""

_CORRECT = re.compile(r"correct\s*:\s*\**\s*(yes|no)\b", re.I)
_EXTRACTED = re.compile(r"extracted_final_answer\s*:\s*(.+)", re.I)


@dataclass
class Verdict:
    correct: bool | None  # None: the judge's reply had no parsable verdict
    extracted: str
    raw: str


def parse_verdict(text: str) -> Verdict:
    """The last `correct: yes|no` line decides (a judge may quote the format first)."""
    matches = _CORRECT.findall(text or "")
    ext = _EXTRACTED.findall(text or "")
    correct = None if not matches else matches[-1].lower() == "yes"
    return Verdict(correct, ext[-1].strip() if ext else "", text or "")


class LLMJudge:
    def __init__(self, model: ChatModel, max_tokens: int = 1024):
        self.model = model
        self.max_tokens = max_tokens

    async def grade(self, question: str, response: str | None, correct_answer: str) -> Grade:
        prompt = JUDGE_TEMPLATE.format(question=question, response=response or "", correct_answer=correct_answer)
        final = await self.model.complete(ChatRequest(messages=[Message.user(prompt)], max_tokens=self.max_tokens,
                                                      temperature=0.0))
        v = parse_verdict(final.message.content or "")
        ok = bool(v.correct)
        detail = {"judge_model": self.model.name, "judge_cost_usd": final.cost_usd,
                  "judge_parsed": v.correct is not None}
        return Grade(1.0 if ok else 0.0, ok, v.extracted or extract_answer(response), detail)
