"""The chat stream's events (edge.endpoints.chat.answers.ChunkWriter): a delta that only carries text is
made from bytes kept for the stream; every such event must be byte for byte what the general path makes
of the same chunk, and every other chunk must still take the general path."""

from __future__ import annotations

import json
import random

import pytest

from edge.endpoints.chat.answers import ChunkWriter
from univence.llm.v1 import llm_pb2

TEXTS = ["Hello", " world", "\"quoted\" \\ back\\slash", "tab\tnew\nline", "ünï©ødé ✓ 日本語 🚀", "</script>",
         "\u2028\u2029", "\x00\x1f control", "{\"json\": [1, 2]}", " "]


def chunk(*deltas: llm_pb2.ChoiceDelta, id_: str = "chatcmpl-1", created: int = 1_790_000_000,
          model: str = "Qwen/Qwen3.5-4B") -> llm_pb2.StreamChatCompletionResponse:
    return llm_pb2.StreamChatCompletionResponse(id=id_, created=created, model=model, choices=deltas)


def general(writer: ChunkWriter, message: llm_pb2.StreamChatCompletionResponse) -> bytes | None:
    """The general path's event for `message`, made by a writer in the same state as `writer`."""
    twin = ChunkWriter(writer.include_usage)
    twin.started = writer.started
    return twin._event(message)


@pytest.mark.parametrize("include_usage", [False, True])
def test_text_events_are_what_the_general_path_makes(include_usage):
    writer = ChunkWriter(include_usage)
    first = writer.event(chunk(llm_pb2.ChoiceDelta(index=0)))
    assert json.loads(first.removeprefix(b"data: "))["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    rng = random.Random(7)
    for n in range(200):
        text = rng.choice(TEXTS)
        # The stream's id, created or model may change: the kept bytes follow them.
        message = chunk(llm_pb2.ChoiceDelta(index=rng.choice([0, 0, 3]), content=text),
                        id_=f"chatcmpl-{n // 50}", created=1_790_000_000 + n // 70,
                        model=rng.choice(["Qwen/Qwen3.5-4B", "m\"odel/ü"]))
        expected = general(writer, message)
        event = writer.event(message)
        assert event == expected
        payload = json.loads(event.removeprefix(b"data: ").removesuffix(b"\n\n"))
        assert payload["choices"][0]["delta"] == {"content": text}
        assert ("usage" in payload) is include_usage


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("first", [llm_pb2.ChoiceDelta(index=0), llm_pb2.ChoiceDelta(index=0, content="Hi"),
                                   llm_pb2.ChoiceDelta(index=2, content="\"ü\\"),
                                   llm_pb2.ChoiceDelta(index=0, finish_reason=llm_pb2.FINISH_REASON_LENGTH),
                                   llm_pb2.ChoiceDelta(index=0, reasoning_content="hm")])
def test_the_first_event_is_what_the_general_path_makes(first, include_usage):
    writer = ChunkWriter(include_usage)
    message = chunk(first, model="m\"odel/ü")
    expected = general(writer, message)
    assert writer.event(message) == expected and writer.started
    assert json.loads(expected.removeprefix(b"data: "))["choices"][0]["delta"]["role"] == "assistant"
    text = chunk(llm_pb2.ChoiceDelta(index=0, content="next"))
    assert writer.event(text) == general(writer, text)  # and the next is a text event as before


def test_chunks_that_carry_more_than_text_take_the_general_path():
    writer = ChunkWriter(include_usage=True)
    writer.event(chunk(llm_pb2.ChoiceDelta(index=0)))
    others = [
        chunk(llm_pb2.ChoiceDelta(index=0, content="done", finish_reason=llm_pb2.FINISH_REASON_STOP)),
        chunk(llm_pb2.ChoiceDelta(index=0, content="", reasoning_content="thinking")),
        chunk(llm_pb2.ChoiceDelta(index=0, content="x", tool_calls=[llm_pb2.ToolCall(id="c1", name="f",
                                                                                     arguments="{}")])),
        chunk(llm_pb2.ChoiceDelta(index=0, content="y", logprobs=[llm_pb2.TokenLogprob(token="y", logprob=-0.5)])),
        chunk(llm_pb2.ChoiceDelta(index=0, content="a"), llm_pb2.ChoiceDelta(index=1, content="b")),
        chunk(llm_pb2.ChoiceDelta(index=0)),  # an empty delta
    ]
    for message in others:
        assert writer.event(message) == general(writer, message)
    done = json.loads(writer.event(others[0]).removeprefix(b"data: "))
    assert done["choices"][0]["finish_reason"] == "stop"
    usage = chunk()
    usage.usage.completion_tokens = 3
    assert json.loads(writer.event(usage).removeprefix(b"data: "))["usage"]["completion_tokens"] == 3
    assert ChunkWriter(include_usage=False).event(usage) is None
