"""The transformers backend: CPU (or one GPU) generation with the model's own `generate`, for the tiny
profile, for a real small GGUF model on CPUs, and for Qwen3.5 where vLLM is not installed.

Generation runs on the service's work queue threads (`queue_concurrency` at a time). One object, the
`_Tracker` stopping criterion, sees every new token: it decodes each choice incrementally, cuts at
stop sequences, hands text deltas to the event loop, and stops the model at once when the caller has
gone away (a flag the stream's consumer sets when it is closed or cancelled).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from transformers import LogitsProcessor

from services.common.errors import invalid
from services.common.workqueue import WorkQueue
from services.llm.backends.base import (
    ACTIVE_GENERATIONS,
    CANCELLED_GENERATIONS,
    GENERATED_TOKENS,
    PROMPT_TOKENS,
    Backend,
    ChoiceFinished,
    Event,
    Message,
    Prompt,
    ResponseFormat,
    SamplingOptions,
    StopMatcher,
    TextDelta,
    TokenLogprob,
    TokenLogprobs,
    TokenText,
    completion_budget,
)
from services.llm.backends.prompt import BuiltPrompt, PromptBuilder

log = logging.getLogger(__name__)
_END = object()


class TransformersBackend(Backend):
    name = "transformers"

    def __init__(self, model, tokenizer, image_processor=None, *, queue: WorkQueue, max_model_len: int = 0,
                 default_max_tokens: int = 4096, enable_thinking: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.queue = queue
        self.device = next(model.parameters()).device
        self.builder = PromptBuilder(tokenizer, image_processor, template_kwargs={"enable_thinking": enable_thinking})
        self.supports_images = self.builder.supports_images
        text_config = model.config.get_text_config()
        own_limit = getattr(text_config, "max_position_embeddings", None) or 2048
        self.max_model_len = min(max_model_len, own_limit) if max_model_len else own_limit
        self.default_max_tokens = default_max_tokens
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        eos = model.generation_config.eos_token_id
        eos = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        if tokenizer.eos_token_id is not None:
            eos.append(tokenizer.eos_token_id)
        self.eos_ids = sorted(set(eos))
        if not self.eos_ids:
            raise ValueError("the model names no end-of-sequence token (generation_config.eos_token_id)")
        pad = model.generation_config.pad_token_id
        self.pad_id = pad if pad is not None else tokenizer.pad_token_id if tokenizer.pad_token_id is not None \
            else self.eos_ids[0]
        self._grammar_compiler = None
        self._grammar_lock = threading.Lock()
        self.token_text = TokenText(tokenizer)

    # -- preparing ---------------------------------------------------------------------------------

    async def prepare(self, messages: list[Message], options: SamplingOptions) -> Prompt:
        built = await asyncio.to_thread(self.builder.build, messages, tools=options.tools, opening=options.opening)
        count = len(built.input_ids)
        budget = completion_budget(count, options.max_tokens, self.max_model_len, self.default_max_tokens)
        grammar = None
        if options.response_format is not None:
            grammar = await asyncio.to_thread(self._compile_grammar, options.response_format)
        return Prompt(prompt_tokens=count, max_tokens=budget, payload=(built, grammar))

    async def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _compile_grammar(self, fmt: ResponseFormat):
        """xgrammar (the structured-output engine vLLM uses too) compiled against this tokenizer; the
        output is compact JSON (no free whitespace), so a model cannot ramble in blanks."""
        try:
            import xgrammar as xgr
        except ImportError:
            raise invalid("response_format json_object/json_schema is not supported by this backend here: "
                          "the xgrammar package is not installed", "response_format") from None
        with self._grammar_lock:
            if self._grammar_compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.vocab_size,
                                                          stop_token_ids=self.eos_ids)
                self._grammar_compiler = xgr.GrammarCompiler(info)
        schema = fmt.schema if fmt.kind == "json_schema" else {"type": "object"}
        try:
            return self._grammar_compiler.compile_json_schema(json.dumps(schema), any_whitespace=False,
                                                              strict_mode=fmt.strict or fmt.kind == "json_object")
        except Exception as exc:  # noqa: BLE001 - xgrammar refuses schemas it cannot compile
            raise invalid(f"The JSON schema cannot be used: {exc}", "response_format.json_schema.schema") from None

    # -- generating --------------------------------------------------------------------------------

    async def stream(self, prompt: Prompt, options: SamplingOptions) -> AsyncIterator[Event]:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def emit(event: object) -> None:
            loop.call_soon_threadsafe(events.put_nowait, event)

        with self.queue.admit():
            async with self.queue.slot():
                work = asyncio.ensure_future(self.queue.in_thread(self._generate, prompt, options, emit, cancel))
                try:
                    ended = False
                    while not ended:
                        batch = [await events.get()]
                        while not events.empty():  # a slow consumer gets what piled up as fewer, longer deltas
                            batch.append(events.get_nowait())
                        ended = batch[-1] is _END
                        for event in _coalesce(batch[:-1] if ended else batch):
                            yield event
                    await work
                finally:
                    if not work.done():
                        cancel.set()
                        CANCELLED_GENERATIONS.labels(self.name).inc()
                        await asyncio.wait([work])  # the model stops within one decoding step

    def _generate(self, prompt: Prompt, options: SamplingOptions, emit: Callable[[object], None],
                  cancel: threading.Event) -> None:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        built, grammar = prompt.payload
        config = self._generation_config(prompt, options)
        rows = config.num_return_sequences
        # Greedy decoding gives every choice the same text: it runs once and is copied to each choice.
        fanout = options.n if rows == 1 else 1
        tracker = _Tracker(self.tokenizer, rows, fanout, self.eos_ids, options.stop, emit, cancel)
        processors = LogitsProcessorList()
        if options.logprobs is not None:  # first: it sees the model's own distribution
            tracker.logprobs = _RawLogprobs(options.logprobs, self.token_text)
            processors.append(tracker.logprobs)
        if options.presence_penalty or options.frequency_penalty:
            processors.append(OpenAIPenalties(len(built.input_ids), options.presence_penalty,
                                              options.frequency_penalty))
        if grammar is not None:
            processors.append(_GrammarMask(grammar, rows, self.vocab_size, tracker))
        inputs = self._model_inputs(built)
        if self.device.type == "cpu":
            # Denormal floats flushed to zero (a per-thread CPU setting): the gated-DeltaNet recurrent
            # state decays into denormals, which made decoding 10-20x slower on some prompts.
            torch.set_flush_denormal(True)
        ACTIVE_GENERATIONS.labels(self.name).inc()
        PROMPT_TOKENS.labels(self.name).inc(prompt.prompt_tokens)
        try:
            with torch.inference_mode():
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                self.model.generate(**inputs, generation_config=config, logits_processor=processors,
                                    stopping_criteria=StoppingCriteriaList([tracker]))
            tracker.finish()
        finally:
            ACTIVE_GENERATIONS.labels(self.name).dec()
            emit(_END)

    def _generation_config(self, prompt: Prompt, options: SamplingOptions):
        config = copy.deepcopy(self.model.generation_config)
        asked = options.temperature is not None or options.top_p is not None
        sampling = not options.greedy and (asked or bool(config.do_sample))
        config.do_sample = sampling
        if sampling:
            if options.temperature is not None:
                config.temperature = options.temperature
            if options.top_p is not None:
                config.top_p = options.top_p
            if config.temperature is None:
                config.temperature = 1.0
        else:
            config.temperature = config.top_p = config.top_k = config.min_p = None
        config.num_return_sequences = options.n if sampling else 1
        config.max_new_tokens = prompt.max_tokens
        config.max_length = None
        config.min_new_tokens = config.min_length = None
        config.eos_token_id = self.eos_ids
        config.pad_token_id = self.pad_id
        config.repetition_penalty = None
        return config

    def _model_inputs(self, built: BuiltPrompt) -> dict[str, Any]:
        import torch

        ids = torch.tensor([built.input_ids], dtype=torch.long, device=self.device)
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        for key, value in built.vision_inputs.items():
            if key == "pixel_values":
                value = value.to(self.device, dtype=self.model.dtype)
            inputs[key] = value.to(self.device)
        return inputs

    async def close(self) -> None:
        self.model = None


def _coalesce(events: list) -> list:
    """Joins consecutive text deltas of one choice, keeping the order of everything else."""
    out: list = []
    for event in events:
        last = out[-1] if out else None
        if isinstance(event, TextDelta) and isinstance(last, TextDelta) and last.index == event.index:
            out[-1] = TextDelta(event.index, last.text + event.text)
        else:
            out.append(event)
    return out


class _Row:
    """One choice being generated: its token ids, incremental decoding offsets and stop matching."""

    def __init__(self, stops: list[str]):
        self.ids: list[int] = []
        self.prefix = 0  # decoded text up to `read` is already out; `prefix` is where decoding restarts
        self.read = 0
        self.tokens = 0
        self.stopper = StopMatcher(stops)
        self.done = False


class _Tracker:
    """A stopping criterion that sees each new token of every row (after sampling, before the next
    step): decodes it, finds stop sequences and end tokens, emits events, and answers which rows are
    finished; every row is when the caller has cancelled."""

    def __init__(self, tokenizer, rows: int, fanout: int, eos_ids: list[int], stops: list[str],
                 emit: Callable[[object], None], cancel: threading.Event):
        self.tokenizer = tokenizer
        self.rows = [_Row(stops) for _ in range(rows)]
        self.fanout = fanout
        self.eos_ids = set(eos_ids)
        self.emit_event = emit
        self.cancel = cancel
        self.logprobs: _RawLogprobs | None = None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        if self.cancel.is_set():
            return torch.ones(len(self.rows), dtype=torch.bool, device=input_ids.device)
        active = 0
        for number, (row, token) in enumerate(zip(self.rows, input_ids[:, -1].tolist(), strict=True)):
            if row.done:
                continue
            active += 1
            row.tokens += 1
            if token in self.eos_ids:
                self._end(row, "stop")
                continue
            row.ids.append(token)
            if self.logprobs is not None:
                entry = self.logprobs.entry(number, token)
                for index in self._indices(row):
                    self.emit_event(TokenLogprobs(index, [entry]))
            text, stopped = row.stopper.feed(self._decode_step(row))
            self._text(row, text)
            if stopped:
                self._end(row, "stop", flush=False)
        GENERATED_TOKENS.labels("transformers").inc(active * self.fanout)
        return torch.tensor([row.done for row in self.rows], dtype=torch.bool, device=input_ids.device)

    def is_done(self, index: int) -> bool:
        return self.rows[index].done

    def finish(self) -> None:
        """After generate returned: rows still open ran out of tokens (unless the caller went away)."""
        if self.cancel.is_set():
            return
        for row in self.rows:
            if not row.done:
                self._end(row, "length")

    def _decode_step(self, row: _Row) -> str:
        """New text for the row's latest token; held back while it ends in an incomplete character."""
        decode = self.tokenizer.decode
        before = decode(row.ids[row.prefix:row.read], skip_special_tokens=True)
        after = decode(row.ids[row.prefix:], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            row.prefix, row.read = row.read, len(row.ids)
            return after[len(before):]
        return ""

    def _end(self, row: _Row, reason: str, *, flush: bool = True) -> None:
        if flush:
            rest = self.tokenizer.decode(row.ids[row.prefix:], skip_special_tokens=True)
            done_text = self.tokenizer.decode(row.ids[row.prefix:row.read], skip_special_tokens=True)
            tail, stopped = row.stopper.feed(rest[len(done_text):])
            if stopped:
                reason = "stop"
            else:
                tail += row.stopper.flush()
            self._text(row, tail)
        row.done = True
        for index in self._indices(row):
            self.emit_event(ChoiceFinished(index, reason, row.tokens))  # type: ignore[arg-type]

    def _text(self, row: _Row, text: str) -> None:
        if text:
            for index in self._indices(row):
                self.emit_event(TextDelta(index, text))

    def _indices(self, row: _Row) -> range:
        first = self.rows.index(row) * self.fanout
        return range(first, first + self.fanout)


class _RawLogprobs(LogitsProcessor):
    """Keeps each row's log-softmax of the raw logits of the step (placed first, so before temperature,
    penalties and grammars, as OpenAI and vLLM report them); the tracker reads the chosen token's."""

    def __init__(self, top: int, token_text: TokenText):
        self.top = top
        self.token_text = token_text
        self.rows = None
        self.best = None

    def __call__(self, input_ids, scores):
        import torch

        self.rows = torch.log_softmax(scores.float(), dim=-1)
        if self.top:
            self.best = torch.topk(self.rows, self.top, dim=-1)
        return scores

    def entry(self, row: int, token: int) -> TokenLogprob:
        best = [] if self.best is None else \
            list(zip(self.best.indices[row].tolist(), self.best.values[row].tolist(), strict=True))
        return self.token_text.entry(token, float(self.rows[row, token]), best)


class OpenAIPenalties(LogitsProcessor):
    """OpenAI's presence and frequency penalties over the tokens generated so far (not the prompt):
    logit -= presence * [count > 0] + frequency * count. (transformers' repetition_penalty is a
    different, multiplicative rule over the prompt too.)"""

    def __init__(self, prompt_length: int, presence: float, frequency: float):
        self.prompt_length = prompt_length
        self.presence = presence
        self.frequency = frequency

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids[:, self.prompt_length:]
        if generated.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


class _GrammarMask(LogitsProcessor):
    """Masks every token the JSON grammar does not allow next, per row (rows that ended are left alone)."""

    def __init__(self, compiled, rows: int, vocab_size: int, tracker: _Tracker):
        import xgrammar as xgr

        self.xgr = xgr
        self.matchers = [xgr.GrammarMatcher(compiled) for _ in range(rows)]
        self.bitmask = xgr.allocate_token_bitmask(rows, vocab_size)
        self.tracker = tracker
        self.started = False

    def __call__(self, input_ids, scores):
        last = input_ids[:, -1].tolist()
        self.xgr.reset_token_bitmask(self.bitmask)
        for index, matcher in enumerate(self.matchers):
            if self.tracker.is_done(index) or matcher.is_terminated():
                continue
            if self.started and not matcher.accept_token(last[index]):
                raise RuntimeError("the grammar refused a token it had allowed")
            matcher.fill_next_token_bitmask(self.bitmask, index)
        self.started = True
        self.xgr.apply_token_bitmask_inplace(scores, self.bitmask.to(scores.device))
        return scores
