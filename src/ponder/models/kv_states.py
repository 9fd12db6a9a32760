"""Saved KV states for the embedded model: each agent's conversation resumes where it stopped.

llama.cpp's `generate` reuses the longest common prefix of the *previous* call on the same
context. That is all a single agent needs, but a swarm interleaves its sub-agents on one or
two contexts: each call then follows another agent's and re-reads its whole prompt (measured
on SmolLM2-135M, 2 cores: 1.2 s of every 1.6 s sub-agent call was prompt evaluation at
~160 tokens/s, with 18 of ~215 prompt tokens reused). This cache keeps, after every call,
the context's sequence state (`llama_state_seq_get_data`: the KV cells of sequence 0 only,
~23 KB per token for SmolLM2, about 8 ms for 300 tokens) keyed by its tokens; before a call,
the entry sharing the longest prefix with the new prompt is restored into the context
when it beats what the context already holds (about 5 ms for 300 tokens, against ~2 s to
evaluate them). It is the prefix cache an inference server keeps per slot (vLLM's automatic
prefix caching, llama.cpp server's slot save/restore), scoped to one process.

States are portable between contexts of the same model, so one cache serves a pool.
Entries are evicted least recently used past `capacity_bytes`; an entry that a newer one
extends (the same agent's next call) is replaced by it.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_GAIN = 16  # restore only when it saves at least this many tokens of prompt evaluation


def common_prefix(a: Any, b: Any) -> int:
    """Length of the common prefix of two token sequences (vectorised: prompts run to thousands)."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    x = np.asarray(a[:n], dtype=np.int64)
    y = np.asarray(b[:n], dtype=np.int64)
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if diff.size else n


@dataclass
class _Entry:
    ids: np.ndarray
    data: bytes


class StateCache:
    """Token prefix -> saved sequence state, shared by the contexts of one model's pool."""

    def __init__(self, capacity_bytes: int):
        self.capacity = capacity_bytes
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._bytes = 0
        self._next = 0
        self._lock = threading.Lock()
        self.restores = 0  # how many calls resumed from a saved state (tests read it)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def restore_into(self, llm: Any, tokens: list[int]) -> int:
        """Load the saved state sharing the longest prefix with `tokens` into `llm` when it beats
        the prefix the context already holds by MIN_GAIN tokens; returns the restored length."""
        have = common_prefix(llm._input_ids, tokens) if llm.n_tokens > 0 else 0
        with self._lock:
            best_key, best_len = None, have + MIN_GAIN - 1
            for key, e in self._entries.items():
                p = common_prefix(e.ids, tokens)
                if p > best_len:
                    best_key, best_len = key, p
            if best_key is None:
                return 0
            entry = self._entries[best_key]
            self._entries.move_to_end(best_key)
        if not _load(llm, entry):
            return 0
        self.restores += 1
        return best_len

    def save_from(self, llm: Any) -> None:
        """Keep the context's current state (its prompt and what it generated)."""
        n = int(llm.n_tokens)
        if n == 0 or self.capacity <= 0:
            return
        ids = np.array(llm.input_ids[:n], dtype=np.int32)
        data = _dump(llm)
        if data is None or len(data) > self.capacity:
            return
        with self._lock:
            for key in [k for k, e in self._entries.items() if len(e.ids) <= n and common_prefix(e.ids, ids) == len(e.ids)]:
                self._bytes -= len(self._entries.pop(key).data)  # superseded: the new state extends it
            self._next += 1
            self._entries[self._next] = _Entry(ids, data)
            self._bytes += len(data)
            while self._bytes > self.capacity and self._entries:
                _, old = self._entries.popitem(last=False)
                self._bytes -= len(old.data)


def _llama() -> Any:
    import llama_cpp

    return llama_cpp


def _dump(llm: Any) -> bytes | None:
    lc = _llama()
    ctx = llm._ctx.ctx
    size = lc.llama_state_seq_get_size(ctx, 0)
    if size <= 0:
        return None
    buf = (ctypes.c_uint8 * size)()
    written = lc.llama_state_seq_get_data(ctx, buf, size, 0)
    return ctypes.string_at(buf, written) if written > 0 else None  # (slicing the array would build a list of ints)


def _load(llm: Any, entry: _Entry) -> bool:
    lc = _llama()
    llm._ctx.kv_cache_seq_rm(-1, 0, -1)  # the sequence must be empty before its state is set
    buf = (ctypes.c_uint8 * len(entry.data)).from_buffer_copy(entry.data)
    if lc.llama_state_seq_set_data(llm._ctx.ctx, buf, len(entry.data), 0) != len(entry.data):
        llm.reset()  # nothing usable is left in the context: the next call evaluates from scratch
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        return False
    n = len(entry.ids)
    llm.input_ids[:n] = entry.ids
    llm.n_tokens = n
    llm._requires_eval = True  # the logits are not restored: generate re-evaluates the last token
    return True
