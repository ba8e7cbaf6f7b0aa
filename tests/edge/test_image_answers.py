"""A b64_json answer is written without json.dumps (edge.endpoints.images.translate.b64_json_answer): the
same bytes as the general path, for any files and fields (an edit's seeds, negative ones too: int64; an
upscale's none)."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from edge.endpoints.images.translate import b64_json_answer, json_bytes
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
