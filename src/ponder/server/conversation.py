"""Client conversations in, ponder messages out, with the reasoning the client dropped put back.

OpenAI-style clients (the SDK, LangChain, coding agents) send the history back on every
request, and almost all of them drop `reasoning_content` from assistant turns. Kimi, GLM and
DeepSeek need it back (a 400, or quietly worse answers and lost cache hits), verbatim and in
order. So the server keeps what each reply really was, and restores it when the client's
history comes back:

* **tool-call turns.** The ids ponder hands to the client are its own (`call_` + 24 random
  hex digits), unique across every conversation the server sees. They key the original
  assistant message: its reasoning, its content, the provider's own tool-call ids (Kimi's
  `functions.NAME:IDX` repeat across conversations, so they could never be a key) and its
  arguments exactly as generated. When the client sends those ids back, that message goes to
  the provider in place of the client's copy, and the tool results get the original ids.
* **answers.** A turn without tool calls is keyed by (the user message it answers, its
  text). For an engine run the value is every hidden step of that turn (the engine's own
  tool calls and results, with their reasoning), so the next turn continues the engine's
  real conversation. Two identical exchanges share an entry (same question, same answer).

The cache is in memory, least recently used first out under a byte budget; after a restart,
histories simply go out as the client sent them. A client that keeps the reasoning itself
(`reasoning_content` or `<think>` in the content) is used as it sent it when nothing is cached.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..core.messages import Image, Message, Reasoning, ToolCall
from ..models.dialects import parse_arguments
from .openai_schema import APIError, MessageIn

DEFAULT_CACHE_BYTES = 128 * 2**20


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def answer_key(question: str, content: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    h.update(question.encode("utf-8", "surrogatepass"))
    h.update(b"\x00")
    h.update(content.encode("utf-8", "surrogatepass"))
    return h.digest()


def _size(messages: tuple[Message, ...]) -> int:
    n = 200 * len(messages)
    for m in messages:
        n += len(m.content or "") + (len(m.reasoning.text) if m.reasoning else 0)
        for c in m.tool_calls:
            n += len(c.id) + len(c.name) + len(c.raw_arguments or "") + 64
    return n


@dataclass(slots=True, eq=False)
class Turn:
    """What a reply really was: the messages to send in place of the client's copy, and (tool
    turns) the ids handed to the client mapped to the provider's."""

    messages: tuple[Message, ...]
    ids: dict[str, str] = field(default_factory=dict)  # handed-out id -> original id
    size: int = 0


class ReasoningCache:
    """Least-recently-used map from handed-out tool-call ids and answer keys to `Turn`s."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Any, Turn] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def _put(self, key: Any, turn: Turn) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self._items[key] = turn
        self.bytes += turn.size
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, gone = self._items.popitem(last=False)
            self.bytes -= gone.size

    def _get(self, key: Any) -> Turn | None:
        turn = self._items.get(key)
        if turn is not None:
            self._items.move_to_end(key)
        return turn

    def remember_calls(self, message: Message, handed: dict[str, str]) -> None:
        """`message` (with the provider's ids) was given to the client with ids `handed`
        (original id -> handed-out id)."""
        if self.max_bytes <= 0:
            return
        turn = Turn((message,), {ours: orig for orig, ours in handed.items()})
        turn.size = _size(turn.messages)
        for ours in handed.values():
            self._put(ours, turn)

    def calls(self, ids: list[str]) -> Turn | None:
        for i in ids:
            turn = self._get(i)
            if turn is not None:
                return turn
        return None

    def remember_answer(self, question: str, content: str, messages: tuple[Message, ...]) -> None:
        if self.max_bytes <= 0 or not content:
            return
        turn = Turn(messages)
        turn.size = _size(messages)
        self._put(answer_key(question, content), turn)

    def answer(self, question: str, content: str) -> Turn | None:
        return self._get(answer_key(question, content)) if content else None


@dataclass(slots=True)
class Conversation:
    """The client's messages as ponder messages, and what the server made of them."""

    messages: list[Message]
    question: str  # the text of the last user message ("" when there is none)
    last_user: int  # its index in `messages` (-1 when none)
    restored: int = 0  # assistant turns whose reasoning came from the cache


def _text(content: str | list[dict[str, Any]] | None, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for i, p in enumerate(content):
        kind = p.get("type")
        if kind == "text" and isinstance(p.get("text"), str):
            parts.append(p["text"])
        else:
            raise APIError(400, f"{where}.content[{i}]: content part {kind!r} is not supported here; send text",
                           param=f"{where}.content")
    return "\n".join(parts)


def _user_content(content: str | list[dict[str, Any]] | None, where: str) -> tuple[str, list[Image]]:
    if content is None or isinstance(content, str):
        return content or "", []
    texts: list[str] = []
    images: list[Image] = []
    for i, p in enumerate(content):
        kind = p.get("type")
        if kind == "text" and isinstance(p.get("text"), str):
            texts.append(p["text"])
        elif kind == "image_url":
            iu = p.get("image_url")
            url = iu.get("url") if isinstance(iu, dict) else iu
            # only what the provider fetches or decodes itself: never a path on this server
            if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
                raise APIError(400, f"{where}.content[{i}]: image_url must be an http(s) URL or a data:image/... URL",
                               param=f"{where}.content")
            detail = iu.get("detail") if isinstance(iu, dict) else None
            images.append(Image(url=url, detail=detail if isinstance(detail, str) else None))
        else:
            raise APIError(400, f"{where}.content[{i}]: content part {kind!r} is not supported; send text or image_url",
                           param=f"{where}.content")
    return "\n".join(texts), images


def _split_think(content: str) -> tuple[str | None, str]:
    """`<think>r</think>answer` (what think-tags mode streams) -> ("r", "answer")."""
    if content.startswith("<think>"):
        end = content.rfind("</think>")
        if end != -1:
            inner = content[len("<think>"):end].replace("</think><think>", "")
            return inner, content[end + len("</think>"):]
    return None, content


def _calls(m: MessageIn, ids: dict[str, str]) -> list[ToolCall]:
    out = []
    for c in m.tool_calls or ():
        raw = c.function.arguments
        if isinstance(raw, dict):
            args, err, raw_text = raw, None, None
        else:
            args, err = parse_arguments(raw)
            raw_text = raw
        out.append(ToolCall(id=ids.get(c.id, c.id), name=c.function.name, arguments=args, raw_arguments=raw_text,
                            parse_error=err))
    return out


def convert(msgs: list[MessageIn], cache: ReasoningCache | None) -> Conversation:
    """The client's history as ponder `Message`s, cached turns restored byte-exact."""
    out: list[Message] = []
    ids: dict[str, str] = {}  # handed-out tool-call id -> the provider's
    question, last_user, restored = "", -1, 0
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        role = m.role
        if role == "user":
            question, images = _user_content(m.content, where)
            last_user = len(out)
            out.append(Message(role="user", content=question, images=images or None))
        elif role == "assistant":
            content = _text(m.content, where)
            reasoning = m.reasoning_content or m.reasoning or None
            inline, content = _split_think(content)
            reasoning = reasoning or inline
            if m.tool_calls:
                turn = cache.calls([c.id for c in m.tool_calls]) if cache is not None else None
                if turn is not None:
                    restored += 1
                    ids.update(turn.ids)
                    if set(turn.ids) == {c.id for c in m.tool_calls}:
                        out.extend(turn.messages)  # the reply exactly as the provider sent it
                        continue
                    reasoning = reasoning or (turn.messages[0].reasoning.text if turn.messages[0].reasoning else None)
                out.append(Message(role="assistant", content=content or None, tool_calls=_calls(m, ids),
                                   reasoning=Reasoning(text=reasoning) if reasoning else None))
                continue
            turn = cache.answer(question, content) if cache is not None else None
            if turn is not None:
                restored += 1
                out.extend(turn.messages)
                continue
            out.append(Message(role="assistant", content=content or None,
                               reasoning=Reasoning(text=reasoning) if reasoning else None))
        elif role == "tool":
            if not m.tool_call_id:
                raise APIError(422, f"{where}: a tool message needs tool_call_id (the id of the call it answers)",
                               param=f"{where}.tool_call_id", code="validation_error")
            out.append(Message.tool(ids.get(m.tool_call_id, m.tool_call_id), _text(m.content, where), m.name))
        else:  # system, developer
            out.append(Message.system(_text(m.content, where)))
    return Conversation(out, question, last_user, restored)
