"""The embedded model's default thread count: contention must not collapse it."""

from __future__ import annotations

import pytest

from ponder.core.errors import ConfigError
from ponder.models.embedded import default_threads


def test_default_threads_leave_room_for_other_processes() -> None:
    assert default_threads(cores=1, load=0.0) == 1
    assert default_threads(cores=2, load=0.0) == 1  # a second thread spins whenever another process runs
    assert default_threads(cores=4, load=0.0) == 2
    assert default_threads(cores=16, load=0.0) == 4  # capped: a small model gains little past 4
    assert default_threads(cores=8, load=0.0, pool_size=2) == 2  # shared by the pool's contexts
    assert default_threads(cores=16, load=15.0) == 1  # an already busy machine: one thread


def test_threads_option_and_its_alias() -> None:
    from ponder.models.registry import model

    m = model("smollm2", threads=3)  # no GGUF is loaded until the first call
    assert m.n_threads == 3  # type: ignore[attr-defined]
    assert model("smollm2", n_threads=2).n_threads == 2  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="not both"):
        model("smollm2", n_threads=2, threads=3)
    with pytest.raises(ConfigError, match="at least 1"):
        model("smollm2", n_threads=-1)
