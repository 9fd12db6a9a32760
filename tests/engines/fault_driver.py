"""A swarm in its own process, for the SIGKILL fault-injection test (not a test module).

    python fault_driver.py start|resume URL DB EFFECTS RUN_ID

`record` has a side effect (a line appended to EFFECTS) and is not idempotent: a resumed
run must never run one of its calls twice. `calculator` is idempotent: a call in flight at
the kill is simply run again. The models are ponder's real HTTP backend against the
scripted server of the test.
"""

from __future__ import annotations

import asyncio
import json
import sys

from ponder import runs
from ponder.engines.base import Budgets
from ponder.engines.swarm import Swarm
from ponder.models.openai_compat import close_clients
from ponder.models.registry import model
from ponder.tools import calculator_tool
from ponder.tools.base import tool

TASK = "Fan out to 20 workers; each records its name, then computes its number."


def engine(url: str, effects: str) -> Swarm:
    @tool
    def record(x: str) -> str:
        """Record x (a side effect: it must not happen twice)."""
        with open(effects, "a", encoding="utf-8") as f:
            f.write(x + "\n")
        return f"recorded {x}"

    return Swarm(model(f"openai:{url}#mock"), [record, calculator_tool()], max_parallel=20,
                 budgets=Budgets(max_steps=8), sub_budgets=Budgets(max_steps=6))


async def main(cmd: str, url: str, db: str, effects: str, run_id: str) -> int:
    eng = engine(url, effects)
    try:
        if cmd == "resume":
            try:
                fin = await runs.resume_into(run_id, lambda ev: None, db=db, engine=eng)
            except runs.ResumeError as e:
                if "already ended" in str(e):  # killed after its end reached the journal: it is done
                    from ponder.core.store import RunStore

                    fin = RunStore(db).events(run_id)[-1]
                elif "no run" in str(e):
                    cmd = "start"  # killed before its first event was written: nothing to resume, start it
                else:
                    raise
        if cmd == "start":
            fin = await runs.execute(eng, TASK, lambda ev: None, db=db, run_id=run_id)
    finally:
        await close_clients()
    print(json.dumps({"status": fin.status, "answer": fin.answer}), flush=True)
    return 0 if fin.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:6])))
