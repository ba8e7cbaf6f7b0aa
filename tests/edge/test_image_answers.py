"""A b64_json answer is written without json.dumps (edge.endpoints.images.translate.b64_json_answer): the
same bytes as the general path, for any files and fields (an edit's seeds, negative ones too: int64; an
upscale's none)."""

from __future__ import annotations

import asyncio
import base64
import json
from unittest import mock

from google.rpc import status_pb2
from hypothesis import given
from hypothesis import strategies as st

from edge.endpoints.images import translate
from edge.endpoints.images.translate import b64_json_answer, json_bytes
from univence.accounts.v1 import accounts_pb2
from univence.image.v1 import image_pb2

IMAGES = st.lists(st.builds(image_pb2.GeneratedImage, data=st.binary(max_size=3000), mime_type=st.just("image/png"),
                            seed=st.integers(-(2 ** 63), 2 ** 63 - 1)), max_size=4)


@given(images=IMAGES, created=st.integers(0, 2 ** 40))
def test_the_spliced_answer_is_the_general_paths_byte_for_byte(images, created):
    general = json_bytes({"created": created, "data": [{"b64_json": base64.b64encode(im.data).decode(),
                                                        "seed": im.seed} for im in images]})
    spliced = b64_json_answer(created, ((im.data, {"seed": im.seed}) for im in images))
    assert spliced == general
    assert json.loads(spliced)["created"] == created


FIELDS = st.dictionaries(st.text(max_size=8).filter(lambda name: name != "b64_json"), st.integers(), max_size=3)


@given(data=st.binary(max_size=3000), fields=FIELDS)
def test_any_fields_are_written_as_json_writes_them(data, fields):
    general = json_bytes({"created": 1, "data": [{"b64_json": base64.b64encode(data).decode(), **fields}]})
    assert b64_json_answer(1, [(data, fields)]) == general


class _Kept:
    """The Outputs an answer is made with, as far as the answer uses them: what it keeps, and a link per
    stored image."""

    def __init__(self) -> None:
        self.kept = 0

    async def keep(self, data: bytes, mime_type: str, **_) -> None:
        self.kept += 1

    async def store(self, data: bytes, mime_type: str, **_):
        return type("Stored", (), {"url": f"http://edge/v1/media/{len(data)}"})()


CREATED = 1_790_000_000
ITEM_RESULTS = st.one_of(
    st.builds(lambda images: image_pb2.BatchItemResult(response=image_pb2.GenerateImagesResponse(images=images)),
              IMAGES.filter(bool)),
    st.builds(lambda code, message: image_pb2.BatchItemResult(error=status_pb2.Status(code=code, message=message)),
              st.sampled_from([3, 8, 13]), st.text(max_size=20)))


@given(results=st.lists(st.tuples(ITEM_RESULTS, st.sampled_from(["b64_json", "url"])), min_size=1, max_size=5))
def test_a_batch_answer_is_the_general_paths_byte_for_byte(results):
    """The batch's slots are joined as bytes (each a generation's answer, or its error): the same bytes as
    json.dumps of the whole, and only the items that succeeded are charged."""
    items = [translate._Item(None, accounts_pb2.ChargeItem(width=n + 1), fmt) for n, (_, fmt) in enumerate(results)]
    outputs = _Kept()
    with mock.patch.object(translate.time, "time", return_value=CREATED):
        answer = asyncio.run(translate.batch_answer(items)(
            image_pb2.BatchGenerateImagesResponse(results=[result for result, _ in results]), outputs))
    slots = []
    for result, fmt in results:
        if result.WhichOneof("result") != "response":
            error = translate.from_status(result.error, "the image service failed on this item")
            slots.append({"error": error.fields()})
            continue
        link = fmt == "url"
        slots.append({"created": CREATED, "data": [
            {"url": f"http://edge/v1/media/{len(im.data)}", "seed": im.seed} if link
            else {"b64_json": base64.b64encode(im.data).decode(), "seed": im.seed} for im in result.response.images]})
    assert answer.content == json_bytes({"data": slots})
    assert [c.width for c in answer.charges] == [n + 1 for n, (r, _) in enumerate(results) if r.HasField("response")]
    assert outputs.kept == sum(len(r.response.images) for r, fmt in results if fmt == "b64_json")
