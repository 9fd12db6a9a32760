"""A swarm driver in its own process, for the resume test (which kills it mid-run).

    python ray_driver.py RAY_ADDRESS MODEL_URL DB
"""

from __future__ import annotations

import asyncio
import sys

from ponder import runs
from ponder.engines.base import Budgets
from ponder.engines.swarm import Swarm
from ponder.models.registry import model
from ponder.tools.base import tool


@tool
async def work(item: int = 0) -> str:
    """Do one unit of work (not idempotent: each call waits for the journal first)."""
    await asyncio.sleep(0.01)
    return f"item {item} ok"


async def main(address: str, url: str, db: str) -> None:
    sw = Swarm(model(f"openai:{url}#mock"), [work], executor="ray", ray_address=address,
               sub_budgets=Budgets(max_steps=10))
    await runs.run(sw, "mixed work", db=db)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
