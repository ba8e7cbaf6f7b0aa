"""The contracts in protos/ pass buf: `buf lint` (STANDARD and COMMENTS, protos/buf.yaml) with no finding,
and `buf breaking` (WIRE: services are deployed and rolled one by one) against the previous commit.
Both run the Buf CLI that the buf-bin package installs, offline.

buf's WIRE rules compare RPC types by name, so they also flag two changes that keep every byte on
the wire the same; this test checks those by their shape instead (see `wire_safe`): an RPC's request
or response type renamed to a message with the same fields (a streaming RPC getting its own
`…Request`/`…Response`), and one existing field moved into a new oneof whose other fields are new.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor

from univence.audio.v1 import audio_pb2
from univence.llm.v1 import llm_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTOS = "protos"
RENAMED_TYPE = re.compile(r'changed (?:request|response) type from "(?P<old>[\w.]+)" to "(?P<new>[\w.]+)"')
INTO_ONEOF = re.compile(r'Field "(?P<number>\d+)" with name "\w+" on message "(?P<message>[\w.]+)" moved from '
                        r"outside to inside a oneof")
Messages = dict[str, descriptor_pb2.DescriptorProto]


def buf_binary() -> str:
    """The buf binary of the buf-bin package: beside the interpreter (a virtualenv's bin/), else on PATH."""
    beside = Path(sys.executable).with_name("buf.exe" if sys.platform == "win32" else "buf")
    found = str(beside) if beside.is_file() else shutil.which("buf")
    assert found, "the Buf CLI is missing: pip install buf-bin (the test extra has it)"
    return found


def buf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([buf_binary(), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def previous_commit() -> str | None:
    done = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD~1^{commit}"], cwd=ROOT,
                          capture_output=True, text=True)
    return done.stdout.strip() or None


def test_buf_lint_finds_nothing():
    done = buf("lint", PROTOS)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_buf_breaking_finds_no_wire_break_since_the_previous_commit(tmp_path: Path):
    commit = previous_commit()
    if commit is None:
        pytest.skip("the repository has no previous commit to compare with")
    against = f".git#ref={commit},subdir={PROTOS}"
    done = buf("breaking", PROTOS, "--against", against, "--error-format", "json")
    assert done.returncode in (0, 100), done.stdout + done.stderr  # 100: findings; anything else: no check
    findings = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    if findings:
        old, new = descriptors(against, tmp_path / "old.binpb"), descriptors(PROTOS, tmp_path / "new.binpb")
        findings = [f for f in findings if not wire_safe(f, old, new)]
    assert not findings, "\n".join(f"{f['path']}:{f.get('start_line')}: {f['message']}" for f in findings)


def descriptors(source: str, out: Path) -> Messages:
    """Every message of a buf input, by full name."""
    done = buf("build", source, "-o", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    found: Messages = {}

    def add(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        found[f"{prefix}.{message.name}"] = message
        for nested in message.nested_type:
            add(f"{prefix}.{message.name}", nested)

    for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        for message in file.message_type:
            add(file.package, message)
    return found


def real_oneofs(message: descriptor_pb2.DescriptorProto) -> dict[int, frozenset[int]]:
    """Field number → the numbers of its oneof, for fields in a written oneof (not a proto3 `optional`)."""
    members: dict[int, set[int]] = {}
    for field in message.field:
        if field.HasField("oneof_index") and not field.proto3_optional:
            members.setdefault(field.oneof_index, set()).add(field.number)
    return {number: frozenset(group) for group in members.values() for number in group}


def wire_shape(message: descriptor_pb2.DescriptorProto) -> frozenset[tuple]:
    """What a message's bytes depend on: each field's number, type, label and message or enum type, and
    which fields share a oneof. Names and presence do not change the bytes."""
    oneofs = real_oneofs(message)
    return frozenset((f.number, f.type, f.label, f.type_name, oneofs.get(f.number)) for f in message.field)


def wire_safe(finding: dict, old: Messages, new: Messages) -> bool:
    """True for a finding buf reports by name that changes no byte on the wire (see the module docstring)."""
    if finding["type"] in ("RPC_SAME_REQUEST_TYPE", "RPC_SAME_RESPONSE_TYPE"):
        names = RENAMED_TYPE.search(finding["message"])
        return bool(names) and names["old"] in old and names["new"] in new \
            and wire_shape(old[names["old"]]) == wire_shape(new[names["new"]])
    if finding["type"] == "FIELD_SAME_ONEOF":
        moved = INTO_ONEOF.search(finding["message"])
        if not moved:
            return False
        named = [name for name in new if name.endswith(f".{moved['message']}") and name in old]
        if len(named) != 1:
            return False
        before, after, number = old[named[0]], new[named[0]], int(moved["number"])
        group = real_oneofs(after).get(number, frozenset())
        existing = {f.number for f in before.field}
        return number not in real_oneofs(before) and group & existing == {number}
    return False


@pytest.mark.parametrize(("unary", "streaming"), [
    (llm_pb2.CreateChatCompletionRequest, llm_pb2.StreamChatCompletionRequest),
    (audio_pb2.CloneVoiceRequest, audio_pb2.StreamCloneVoiceRequest),
])
def test_a_streaming_request_has_the_fields_of_its_unary_twin(unary, streaming):
    """The two are built from the same API request (the edge picks the class), so they stay alike."""
    assert fields_of(streaming.DESCRIPTOR) == fields_of(unary.DESCRIPTOR)


def fields_of(message: Descriptor) -> list[tuple]:
    return [(f.name, f.number, f.type, f.is_repeated, f.has_presence, f.message_type and f.message_type.full_name,
             f.enum_type and f.enum_type.full_name) for f in message.fields]
