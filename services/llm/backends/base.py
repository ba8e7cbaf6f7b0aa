"""What every backend shares: the request as the backends see it, the events a generation yields,
the one interface, and the text bookkeeping (stop sequences, reasoning split) done the same way
whichever backend runs."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from PIL import Image
from prometheus_client import Counter, Gauge

from services.common.errors import invalid

GENERATED_TOKENS = Counter("univence_llm_generated_tokens_total", "Completion tokens generated, all choices.",
                           ["backend"])
PROMPT_TOKENS = Counter("univence_llm_prompt_tokens_total", "Prompt tokens processed.", ["backend"])
ACTIVE_GENERATIONS = Gauge("univence_llm_active_generations", "Generations running on the model now.",
                           ["backend"])
CANCELLED_GENERATIONS = Counter("univence_llm_cancelled_generations_total",
                                "Generations stopped early because their caller went away.", ["backend"])

FinishReason = Literal["stop", "length"]


@dataclass
class Message:
    """One message of the conversation: a role the chat template knows and its parts in order."""

    role: str  # system, user, assistant or tool
    parts: list[str | Image.Image]
    # assistant messages: the calls made, as chat templates take them ({"type", "id", "function": {...}})
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    # tool messages: the call answered
    tool_call_id: str = ""

    @property
    def text(self) -> str:
        return "\n".join(p for p in self.parts if isinstance(p, str))

    @property
    def images(self) -> list[Image.Image]:
        return [p for p in self.parts if isinstance(p, Image.Image)]


@dataclass
class ResponseFormat:
    """json_object (any JSON object) or json_schema (JSON valid against `schema`)."""

    kind: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    strict: bool = False


@dataclass
class SamplingOptions:
    """What the caller asked for; None means the model's own default (its generation config)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    response_format: ResponseFormat | None = None
    # None: no log probabilities; k (0 to 20): each token's, with the k most likely alternatives.
    logprobs: int | None = None
    # Tools shown to the model (OpenAI tool objects, for the chat template), and the start of the answer
    # written for it (a forced tool call: see services/llm/tools.py).
    tools: list[dict[str, Any]] | None = None
    opening: str = ""

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_p == 0


@dataclass
class Prompt:
    """A conversation made ready for one backend: exact prompt token count and the completion budget."""

    prompt_tokens: int
    max_tokens: int  # completion tokens allowed, per choice
    payload: Any  # the backend's own inputs


@dataclass
class TextDelta:
    """New text of choice `index`."""

    index: int
    text: str


@dataclass
class ChoiceFinished:
    """Choice `index` ended; `completion_tokens` were generated for it (end token included)."""

    index: int
    reason: FinishReason
    completion_tokens: int


@dataclass
class TopLogprob:
    token: str
    logprob: float
    bytes: bytes


@dataclass
class TokenLogprob:
    """A generated token's log probability (the model's raw distribution) and the top alternatives."""

    token: str
    logprob: float
    bytes: bytes
    top: list[TopLogprob] = field(default_factory=list)


@dataclass
class TokenLogprobs:
    """Log probabilities of choice `index`'s latest tokens (only when SamplingOptions.logprobs is set)."""

    index: int
    entries: list[TokenLogprob]


Event = TextDelta | ChoiceFinished | TokenLogprobs


@dataclass
class ChoiceResult:
    index: int
    text: str = ""
    reason: FinishReason = "stop"
    completion_tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)


class Backend(abc.ABC):
    """One model behind one interface. `prepare` tokenizes and enforces the context window before any
    generation; `stream` yields events until every choice has finished, and stops the model's work
    when its consumer goes away (the generator is closed or cancelled)."""

    name: str = "base"
    # The context window (prompt + completion tokens).
    max_model_len: int
    supports_images: bool = False

    @abc.abstractmethod
    async def prepare(self, messages: list[Message], options: SamplingOptions) -> Prompt:
        """Applies the chat template and counts tokens; a request that cannot fit is refused here."""

    @abc.abstractmethod
    def stream(self, prompt: Prompt, options: SamplingOptions) -> AsyncIterator[Event]:
        """Generates; raises QUEUE_FULL on the first step when the backend cannot take more work."""

    @abc.abstractmethod
    async def count_tokens(self, text: str) -> int:
        """Tokens of `text` in this model's tokenizer (no special tokens added)."""

    async def generate(self, prompt: Prompt, options: SamplingOptions) -> list[ChoiceResult]:
        """The whole completion: the stream, gathered."""
        results = [ChoiceResult(i) for i in range(options.n)]
        parts: list[list[str]] = [[] for _ in range(options.n)]
        async for event in self.stream(prompt, options):
            if isinstance(event, TextDelta):
                parts[event.index].append(event.text)
            elif isinstance(event, TokenLogprobs):
                results[event.index].logprobs.extend(event.entries)
            else:
                result = results[event.index]
                result.reason, result.completion_tokens = event.reason, event.completion_tokens
        for result, chunks in zip(results, parts, strict=True):
            result.text = "".join(chunks)
        return results

    async def close(self) -> None:  # noqa: B027 - a backend with nothing to free keeps the default
        """Frees the model."""


def _byte_level_alphabet() -> dict[str, int]:
    """Byte-level BPE's printable stand-in for each byte (GPT-2's table): printable Latin-1 bytes stand
    for themselves, the others for code points from 256 on."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in kept:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


BYTE_OF_CHAR = _byte_level_alphabet()


class TokenText:
    """A tokenizer's view of single tokens for logprobs: each token's text and exact bytes (byte-level
    BPE tokens map back to bytes exactly; other vocabularies fall back to the decoded text's UTF-8)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._cache: dict[int, tuple[str, bytes]] = {}

    def __call__(self, token_id: int) -> tuple[str, bytes]:
        known = self._cache.get(token_id)
        if known is None and token_id >= len(self.tokenizer):  # a padding row of the model's vocabulary
            known = self._cache[token_id] = ("", b"")
        if known is None:
            # Special tokens read as nothing, as in the completion's text (decoded without them).
            text = self.tokenizer.decode([token_id], skip_special_tokens=True)
            piece = self.tokenizer.convert_ids_to_tokens(token_id) or ""
            if text and all(c in BYTE_OF_CHAR for c in piece):
                raw = bytes(BYTE_OF_CHAR[c] for c in piece)
            else:
                raw = text.encode()
            known = self._cache[token_id] = (text, raw)
        return known

    def entry(self, token_id: int, logprob: float, alternatives: list[tuple[int, float]]) -> TokenLogprob:
        """The logprobs entry of a chosen token, with its (token id, logprob) alternatives, best first."""
        top = []
        for alternative, alternative_logprob in alternatives:
            alt_text, alt_raw = self(alternative)
            top.append(TopLogprob(alt_text, alternative_logprob, alt_raw))
        text, raw = self(token_id)
        return TokenLogprob(text, logprob, raw, top)


def completion_budget(prompt_tokens: int, requested: int | None, max_model_len: int, default: int) -> int:
    """Completion tokens allowed: what was asked for when it fits the context window (else a 400 that
    says by how much it does not fit), or the default bounded by what is left of the window."""
    if prompt_tokens >= max_model_len:
        raise invalid(f"This model's maximum context length is {max_model_len} tokens, but the messages "
                      f"take {prompt_tokens} tokens. Shorten the messages.", "messages")
    left = max_model_len - prompt_tokens
    if requested is None:
        return min(default, left)
    if requested > left:
        raise invalid(f"This model's maximum context length is {max_model_len} tokens. However, you requested "
                      f"{prompt_tokens + requested} tokens ({prompt_tokens} in the messages, {requested} in the "
                      f"completion). Reduce the length of the messages or the completion.", "max_tokens")
    return requested


class StopMatcher:
    """Cuts a choice's text at the first stop sequence, across deltas. Text that could be the start of
    a stop sequence is held back until it is known not to be one, so no stop sequence is ever sent."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """(text that is safe to send, whether a stop sequence was reached)."""
        if not self.stops:
            return text, False
        buffer = self._held + text
        hits = [i for i in (buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            self._held = ""
            return buffer[:min(hits)], True
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buffer)), hold, -1):
                if buffer.endswith(stop[:size]):
                    hold = size
                    break
        self._held = buffer[len(buffer) - hold:] if hold else ""
        return buffer[:len(buffer) - hold], False

    def flush(self) -> str:
        """What was held back, once the text ended without a stop sequence."""
        held, self._held = self._held, ""
        return held


class ReasoningSplitter:
    """Separates a thinking model's reasoning from its answer: text up to `</think>` is reasoning (an
    opening `<think>` is dropped), the rest is content. Works across deltas."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self._in_reasoning = True
        self._held = ""
        self._answer_started = False

    def feed(self, text: str) -> tuple[str, str]:
        """(reasoning, content) in this delta."""
        if not self._in_reasoning:
            return "", self._content(text)
        buffer = self._held + text
        if buffer.startswith(self.OPEN):
            buffer = buffer[len(self.OPEN):]
        elif self.OPEN.startswith(buffer):
            self._held = buffer
            return "", ""
        end = buffer.find(self.CLOSE)
        if end >= 0:
            self._in_reasoning, self._held = False, ""
            return buffer[:end], self._content(buffer[end + len(self.CLOSE):])
        hold = next((k for k in range(len(self.CLOSE) - 1, 0, -1) if buffer.endswith(self.CLOSE[:k])), 0)
        self._held = buffer[len(buffer) - hold:] if hold else ""
        return buffer[:len(buffer) - hold], ""

    def flush(self) -> tuple[str, str]:
        held, self._held = self._held, ""
        return (held, "") if self._in_reasoning else ("", held)

    def _content(self, text: str) -> str:
        if not self._answer_started:
            text = text.lstrip("\n")
            self._answer_started = bool(text)
        return text
