"""The text bookkeeping every backend shares: stop sequences across deltas, the reasoning split, tool
calls read out of the text, the context budget, and OpenAI's presence/frequency penalties as a logits
processor."""

from __future__ import annotations

import json

import pytest
import torch

from services.common.errors import ServiceError
from services.llm.backends.base import ReasoningSplitter, StopMatcher, completion_budget
from services.llm.backends.transformers_backend import OpenAIPenalties
from services.llm.tools import ToolCallParser, ToolSpec, forced_opening


def run_stops(stops: list[str], deltas: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    out = []
    for delta in deltas:
        text, stopped = matcher.feed(delta)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + matcher.flush(), False


@pytest.mark.parametrize(("stops", "deltas", "expected"), [
    ([], ["ab", "cd"], ("abcd", False)),
    (["END"], ["hello E", "N", "D world"], ("hello ", True)),
    (["END"], ["hello E", "N", "x"], ("hello ENx", False)),
    (["xyz", "y"], ["axy"], ("ax", True)),
    (["\n\n"], ["a\n", "\nb"], ("a", True)),
    (["ab"], ["a"], ("a", False)),  # held back, then flushed at the end
])
def test_stop_sequences_across_deltas(stops, deltas, expected):
    assert run_stops(stops, deltas) == expected


def test_nothing_that_may_start_a_stop_sequence_is_sent_early():
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("abc ST") == ("abc ", False)
    assert matcher.feed("O") == ("", False)
    assert matcher.feed("P!") == ("", True)


def split(deltas: list[str]) -> tuple[str, str]:
    splitter = ReasoningSplitter()
    reasoning, content = "", ""
    for delta in deltas:
        r, c = splitter.feed(delta)
        reasoning, content = reasoning + r, content + c
    r, c = splitter.flush()
    return reasoning + r, content + c


def test_reasoning_is_separated_from_the_answer():
    assert split(["<think>", "\nplan", " it</thi", "nk>\n\nAnswer", " here"]) == ("\nplan it", "Answer here")
    assert split(["plan</think>", "Yes"]) == ("plan", "Yes")
    assert split(["still thinking"]) == ("still thinking", "")


def test_completion_budget():
    assert completion_budget(10, None, 100, 50) == 50
    assert completion_budget(80, None, 100, 50) == 20
    assert completion_budget(80, 20, 100, 50) == 20
    with pytest.raises(ServiceError) as failed:
        completion_budget(80, 21, 100, 50)
    assert failed.value.param == "max_tokens"
    with pytest.raises(ServiceError) as failed:
        completion_budget(100, None, 100, 50)
    assert failed.value.param == "messages"


def test_penalties_follow_openai_rule_over_generated_tokens_only():
    prompt = [5, 5, 5]
    generated = [1, 2, 2]
    ids = torch.tensor([prompt + generated])
    scores = torch.zeros(1, 8)
    out = OpenAIPenalties(len(prompt), presence=0.5, frequency=0.25)(ids, scores.clone())
    expected = torch.zeros(1, 8)
    expected[0, 1] = -(0.5 + 0.25 * 1)
    expected[0, 2] = -(0.5 + 0.25 * 2)
    assert torch.allclose(out, expected)  # the prompt's token 5 is not penalized
    negative = OpenAIPenalties(len(prompt), presence=-1.0, frequency=0.0)(ids, scores.clone())
    assert negative[0, 1] == 1.0 and negative[0, 5] == 0.0


WEATHER = ToolSpec("get_weather", "The weather", {"type": "object", "properties": {
    "city": {"type": "string"}, "days": {"type": "integer"}, "units": {"type": "string"}}})
CALL = ("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "<parameter=days>\n2\n</parameter>\n</function>\n</tool_call>")


def parse_tools(text: str, size: int, **kwargs) -> tuple[str, list]:
    """The parser fed `text` in deltas of `size` characters, then flushed."""
    parser = ToolCallParser([WEATHER], **kwargs)
    content, calls = [], []
    for start in range(0, len(text), size):
        piece, new = parser.feed(text[start:start + size])
        content.append(piece)
        calls += new
    rest, more = parser.flush()
    return "".join(content) + rest, calls + more


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_tool_calls_are_read_out_of_the_text_across_deltas(size):
    content, calls = parse_tools("Let me check. " + CALL + "\n" + CALL.replace("Paris", "Rome") + "\n", size)
    assert content == "Let me check. "
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris", "days": 2}), ("get_weather", {"city": "Rome", "days": 2})]
    assert all(c.id.startswith("call_") for c in calls) and calls[0].id != calls[1].id


def test_tool_call_values_follow_the_schema_types():
    block = CALL.replace("Paris", "42").replace("<parameter=days>\n2", "<parameter=days>\nsoon")
    _, calls = parse_tools(block, 5)
    assert json.loads(calls[0].arguments) == {"city": "42", "days": "soon"}  # a string stays one; bad JSON is text


@pytest.mark.parametrize(("text", "expected"), [
    ("a <tool_ bit of <b>html</b>", "a <tool_ bit of <b>html</b>"),  # a near miss is text, sent once known
    ("ends with <tool_c", "ends with <tool_c"),
    ("<tool_call>\nno function here\n</tool_call> after", "<tool_call>\nno function here\n</tool_call> after"),
    # a call to a function that was not declared is no call: its block stays text
    (CALL.replace("get_weather", "rm_rf") + " after", CALL.replace("get_weather", "rm_rf") + " after"),
    # a block cut off before it closes (max_tokens, a stop sequence) is no call either
    ("Checking. " + CALL[:-len("</tool_call>")], "Checking. " + CALL[:-len("</tool_call>")]),
    ("Checking. " + CALL[:40], "Checking. " + CALL[:40]),
])
def test_text_that_is_not_a_call_stays_content(text, expected):
    content, calls = parse_tools(text, 2)
    assert (content, calls) == (expected, [])


def test_a_forced_call_continues_the_opening_and_an_unclosed_block_is_text():
    opening = forced_opening("function", "get_weather")
    content, calls = parse_tools("<parameter=city>\nOslo\n</parameter>\n</function>\n</tool_call>", 4, opening=opening)
    assert content == "" and [(c.name, json.loads(c.arguments)) for c in calls] == [("get_weather", {"city": "Oslo"})]
    cut = "<parameter=city>\nOslo\n</parameter>\n"
    assert parse_tools(cut, 4, opening=opening) == (opening + cut, [])


def test_a_declared_call_after_an_undeclared_one_is_still_read():
    content, calls = parse_tools(CALL.replace("get_weather", "nope") + CALL + CALL[:30], 6)
    assert content == CALL.replace("get_weather", "nope") + CALL[:30]
    assert [c.name for c in calls] == ["get_weather"]


def test_parallel_calls_off_keeps_the_first():
    _, calls = parse_tools(CALL + CALL, 10, parallel=False)
    assert len(calls) == 1
