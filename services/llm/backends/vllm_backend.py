"""The vLLM backend (GPUs): vLLM's async engine with continuous batching, Qwen3.5's vision through
vLLM's multimodal inputs, JSON output through vLLM's structured outputs, and an abort of the
engine request when the caller goes away. Imported only where vllm is installed.

The prompt is built here with the model's own tokenizer and image processor (the same PromptBuilder
the transformers backend uses), so the context window is checked before the engine sees the request;
text-only prompts go to the engine as those exact token ids.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from services.common.errors import ModelLost, Reason, ServiceError, invalid
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
    TextDelta,
    TokenLogprob,
    TokenLogprobs,
    TokenText,
    completion_budget,
)
from services.llm.backends.prompt import PromptBuilder
from services.llm.config import LlmSettings

log = logging.getLogger(__name__)


def engine_args(settings: LlmSettings, model: str | None = None) -> dict[str, Any]:
    """The AsyncEngineArgs for these settings (a plain dict, so it can be checked without vllm)."""
    args: dict[str, Any] = {
        "model": model or settings.model,
        "served_model_name": settings.served_model_name or settings.model,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "load_format": settings.load_format,
        "max_num_seqs": settings.max_num_seqs,
        "enforce_eager": settings.enforce_eager,
        "limit_mm_per_prompt": {"image": settings.max_images, "video": 0},
        "dtype": "auto" if settings.dtype == "auto" else settings.dtype,
    }
    if settings.max_model_len:
        args["max_model_len"] = settings.max_model_len
    if settings.kv_cache_memory_bytes:
        args["kv_cache_memory_bytes"] = settings.kv_cache_memory_bytes
    return args


class VllmBackend(Backend):
    name = "vllm"

    def __init__(self, engine, builder: PromptBuilder, settings: LlmSettings):
        self.engine = engine
        self.builder = builder
        self.supports_images = builder.supports_images
        self.max_model_len = engine.model_config.max_model_len
        self.default_max_tokens = settings.default_max_tokens
        self.max_pending = settings.vllm_max_pending
        self.pending = 0
        self.sampling_defaults: dict[str, Any] = {}
        self.token_text = TokenText(builder.tokenizer)

    @classmethod
    async def start(cls, settings: LlmSettings, model: str | None = None) -> VllmBackend:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        model = model or settings.model
        builder = await load_prompt_builder(model, settings)
        # No local variable holds the engine, only the backend: a frame kept alive by an exception that
        # some import stored must not keep the engine from being freed by close().
        backend = cls(AsyncLLM.from_engine_args(AsyncEngineArgs(**engine_args(settings, model))), builder, settings)
        model_config = backend.engine.model_config
        if hasattr(model_config, "get_diff_sampling_param"):  # the model's generation_config.json
            backend.sampling_defaults = dict(model_config.get_diff_sampling_param())
        return backend

    async def prepare(self, messages: list[Message], options: SamplingOptions) -> Prompt:
        built = await asyncio.to_thread(self.builder.build, messages, with_pixels=False, tools=options.tools,
                                        opening=options.opening)
        count = len(built.input_ids)
        budget = completion_budget(count, options.max_tokens, self.max_model_len, self.default_max_tokens)
        if built.images:
            engine_prompt: dict[str, Any] = {"prompt": built.text, "multi_modal_data": {"image": built.images}}
        else:
            engine_prompt = {"prompt_token_ids": built.input_ids}
        return Prompt(prompt_tokens=count, max_tokens=budget, payload=engine_prompt)

    async def count_tokens(self, text: str) -> int:
        return len(self.builder.tokenizer(text, add_special_tokens=False)["input_ids"])

    def sampling_params(self, prompt: Prompt, options: SamplingOptions):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        fields: dict[str, Any] = {k: v for k, v in self.sampling_defaults.items()
                                  if k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")}
        if options.temperature is not None:
            fields["temperature"] = options.temperature
        if options.top_p is not None:
            fields["top_p"] = options.top_p
        if options.greedy:
            fields["temperature"] = 0.0  # vLLM decodes greedily and ignores top_p/top_k then
        fields.update(n=engine_choices(options), max_tokens=prompt.max_tokens, stop=options.stop or None,
                      seed=options.seed, presence_penalty=options.presence_penalty,
                      frequency_penalty=options.frequency_penalty, output_kind=RequestOutputKind.DELTA,
                      logprobs=options.logprobs)
        if options.response_format is not None:
            fields.update(structured_output_fields(options.response_format))
        return SamplingParams(**fields)

    async def stream(self, prompt: Prompt, options: SamplingOptions) -> AsyncIterator[Event]:
        from vllm.v1.engine.exceptions import EngineDeadError

        if self.engine.errored:
            raise ModelLost("the vLLM engine has stopped")
        if self.pending >= self.max_pending:
            raise ServiceError(Reason.ERROR_REASON_QUEUE_FULL,
                               f"the llm engine has {self.pending} requests running or waiting; retry later")
        rejected = client_errors()
        try:
            params = self.sampling_params(prompt, options)
        except rejected as exc:  # vLLM's own checks of the sampling parameters
            raise invalid(str(exc)) from None
        request_id = f"chatcmpl-{uuid.uuid4().hex}"
        # Greedy choices are all the same text: vLLM generates one and it is sent as each of the n.
        copies = options.n // params.n
        tokens = [0] * options.n
        open_choices = set(range(options.n))
        self.pending += 1
        ACTIVE_GENERATIONS.labels(self.name).inc()
        PROMPT_TOKENS.labels(self.name).inc(prompt.prompt_tokens)
        outputs = self.engine.generate(prompt.payload, params, request_id)
        try:
            with EngineWatch(self.engine) as watch:
                while (output := await watch.next(outputs)) is not None:
                    for choice in output.outputs:
                        new = len(choice.token_ids)
                        GENERATED_TOKENS.labels(self.name).inc(new)  # the model's work, once
                        entries = self._logprobs(choice, options.logprobs) if options.logprobs is not None else None
                        for index in range(choice.index * copies, (choice.index + 1) * copies):
                            tokens[index] += new
                            if entries:
                                yield TokenLogprobs(index, entries)
                            if choice.text:
                                yield TextDelta(index, choice.text)
                            if choice.finish_reason is not None and index in open_choices:
                                open_choices.discard(index)
                                reason = "length" if choice.finish_reason == "length" else "stop"
                                yield ChoiceFinished(index, reason, tokens[index])
        except rejected as exc:  # the engine's checks of the prompt (before any output)
            raise invalid(str(exc)) from None
        except (EngineDeadError, EngineDied) as exc:  # only a fresh service process brings the engine back
            open_choices.clear()
            raise ModelLost(f"the vLLM engine has stopped: {str(exc) or 'its process exited'}") from None
        finally:
            self.pending -= 1
            ACTIVE_GENERATIONS.labels(self.name).dec()
            if open_choices:  # the caller went away (or the engine failed): free the GPU for others
                CANCELLED_GENERATIONS.labels(self.name).inc()
                await self.engine.abort(request_id)
            await outputs.aclose()

    def _logprobs(self, choice, top: int) -> list[TokenLogprob]:
        """vLLM's logprobs of the choice's new tokens (per token, a dict of token id to Logprob with its
        rank: the `top` best, and the chosen token whatever its rank), without the end token, which
        OpenAI leaves out."""
        ids = list(choice.token_ids)
        ranked = list(choice.logprobs or [])
        if choice.finish_reason == "stop" and choice.stop_reason is None and ids:  # ended by the end token
            ids, ranked = ids[:-1], ranked[:-1]
        entries = []
        for token, alternatives in zip(ids, ranked, strict=True):
            best = sorted((lp.rank, alt, lp.logprob) for alt, lp in alternatives.items() if lp.rank <= top)
            entries.append(self.token_text.entry(token, alternatives[token].logprob,
                                                 [(alt, logprob) for _, alt, logprob in best]))
        return entries

    async def close(self) -> None:
        self.engine.shutdown()
        # vLLM's __del__ shuts down again: let that run now (the engine sits in reference cycles), not late
        # in interpreter exit, where it fails.
        self.engine = None
        gc.collect()


class EngineDied(Exception):
    """The engine was found dead while a request waited for its outputs."""


class EngineWatch:
    """Checks the engine every `every` seconds while a request waits for its next output, and wakes the
    request if the engine died: vLLM fails the requests it knew of when it noticed the death, but one that
    reached the dead engine just before would wait forever."""

    def __init__(self, engine, every: float = 1.0):
        self.engine = engine
        self.every = every
        self.waiting = False
        self.died = False
        self._task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> EngineWatch:
        self._task = asyncio.current_task()
        self._timer = asyncio.get_running_loop().call_later(self.every, self._check)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _check(self) -> None:
        if self.waiting and self.engine.errored:
            self.died = True
            self._task.cancel()
        else:
            self._timer = asyncio.get_running_loop().call_later(self.every, self._check)

    async def next(self, outputs: AsyncIterator[Any]) -> Any | None:
        """The next output, None at the end; EngineDied if the engine died meanwhile."""
        self.waiting = True
        try:
            return await anext(outputs)
        except StopAsyncIteration:
            return None
        except asyncio.CancelledError:
            if not self.died:
                raise
            self._task.uncancel()
            raise EngineDied() from None
        finally:
            self.waiting = False


async def load_prompt_builder(model: str, settings: LlmSettings) -> PromptBuilder:
    """The model folder's own tokenizer, chat template and (for a vision model) image processor."""
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    tokenizer = await asyncio.to_thread(AutoTokenizer.from_pretrained, model)
    config = await asyncio.to_thread(AutoConfig.from_pretrained, model)
    image_processor = None
    if getattr(config, "vision_config", None) is not None:
        image_processor = await asyncio.to_thread(AutoImageProcessor.from_pretrained, model)
    return PromptBuilder(tokenizer, image_processor, template_kwargs={"enable_thinking": settings.enable_thinking})


def engine_choices(options: SamplingOptions) -> int:
    """Choices the engine generates: vLLM refuses n > 1 with greedy decoding, whose choices are identical."""
    return 1 if options.greedy else options.n


def client_errors() -> tuple[type[Exception], ...]:
    """The exceptions by which vLLM refuses a request (its VLLMClientError since 0.2x; ValueError before)."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return (VLLMClientError, ValueError)


def structured_output_fields(fmt: ResponseFormat) -> dict[str, Any]:
    """SamplingParams fields for JSON output, across vLLM's two spellings of it."""
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:  # vLLM before 0.11
        from vllm.sampling_params import GuidedDecodingParams

        if fmt.kind == "json_object":
            return {"guided_decoding": GuidedDecodingParams(json_object=True)}
        return {"guided_decoding": GuidedDecodingParams(json=fmt.schema)}
    if fmt.kind == "json_object":
        return {"structured_outputs": StructuredOutputsParams(json_object=True)}
    return {"structured_outputs": StructuredOutputsParams(json=fmt.schema)}

