"""*reason*: procedural math and logic from reasoning-gym, scored by its own scorers.

reasoning-gym generates tasks from a seed with no network access and ships a scorer
per generator, so this suite is reproducible and graded exactly as its authors intend.
Only generators checked to work offline are listed.
"""

from __future__ import annotations

from typing import Any

from ..graders import Grade, extract_answer
from .base import BenchTask, Suite

# generators that build offline (no downloads) and have crisp answers; order = round robin
DEFAULT_GENERATORS = ["basic_arithmetic", "chain_sum", "leg_counting", "letter_counting", "simple_equations",
                      "knights_knaves"]
_INSTRUCTIONS = "Think it through, then end your reply with a line 'Answer: <answer>' giving only the answer."


def _datasets(names: list[str], n: int, seed: int) -> list[tuple[str, Any]]:
    import reasoning_gym  # a declared dependency; imported lazily because it is slow to import

    per = -(-n // len(names))
    out = []
    for name in names:
        try:
            out.append((name, reasoning_gym.create_dataset(name, size=per, seed=seed)))
        except Exception as exc:  # noqa: BLE001 - one broken generator must not sink the suite
            import logging

            logging.getLogger(__name__).warning("reasoning-gym generator %s unavailable: %s", name, exc)
    if not out:
        raise RuntimeError("no reasoning-gym generator could be built; reinstall the 'reasoning-gym' package")
    return out


def _calc_tools() -> list[Any]:
    try:
        from ...tools.calculator import calculator_tool
    except ImportError:
        return []
    return [calculator_tool()]


def reason_suite(n: int, seed: int, generators: list[str] | None = None) -> Suite:
    names = generators or DEFAULT_GENERATORS
    datasets = _datasets(names, n, seed)
    tasks: list[BenchTask] = []
    i = 0
    while len(tasks) < n:
        name, ds = datasets[i % len(datasets)]
        idx = i // len(datasets)
        i += 1
        if idx >= len(ds):
            if i > n * len(datasets) + len(datasets):
                break
            continue
        entry = ds[idx]
        tasks.append(BenchTask(
            suite="reason", task_id=f"reason-{seed}-{name}-{idx:03d}",
            question=f"{entry['question']}\n\n{_INSTRUCTIONS}", answer=str(entry["answer"]), grader="rg",
            features={"width": 1, "hops": 0, "generator": name},
            meta={"entry": entry, "dataset": ds},
        ))
    return Suite("reason", tasks, [], _calc_tools, "reasoning-gym math and logic (its own scorers)")


def score_reasoning_gym(answer_text: str | None, gold: Any, meta: dict[str, Any]) -> Grade:
    ext = extract_answer(answer_text)
    ds, entry = meta.get("dataset"), meta.get("entry")
    if ds is None or entry is None:
        from ..graders import grade_exact

        return grade_exact(answer_text, gold)
    try:
        score = float(ds.score_answer(answer=ext, entry=entry))
    except Exception as exc:  # noqa: BLE001 - a scorer crash on odd output is a wrong answer
        return Grade(0.0, False, ext, {"scorer_error": f"{type(exc).__name__}: {exc}"})
    return Grade(score, score >= 1.0, ext)
