"""ListMedia through real gRPC: owners, kinds, order, offset, page tokens, total_size."""

from __future__ import annotations

import grpc
import pytest

from services.media.index import MediaRecord
from tests.media.helpers import AUDIO, IMAGE, VIDEO, create, png, serve, settings_for
from tests.support.grpc_errors import error_info
from univence.media.v1 import media_pb2

NEWEST, OLDEST = media_pb2.SORT_ORDER_NEWEST_FIRST, media_pb2.SORT_ORDER_OLDEST_FIRST


async def list_media(stub, owner: str = "alice", **fields) -> media_pb2.ListMediaResponse:
    return await stub.ListMedia(media_pb2.ListMediaRequest(owner_id=owner, **fields))


def ids(response: media_pb2.ListMediaResponse) -> list[str]:
    return [m.media_id for m in response.media]


@pytest.fixture
async def library(media) -> dict[str, list[str]]:
    """alice: 3 images, 2 audio, 1 video; bob: 2 images. Ids per owner and kind, oldest first."""
    made: dict[str, list[str]] = {}
    plan = [("alice", IMAGE), ("alice", AUDIO), ("bob", IMAGE), ("alice", IMAGE), ("alice", VIDEO),
            ("alice", AUDIO), ("bob", IMAGE), ("alice", IMAGE)]
    for owner, kind in plan:
        mime = {IMAGE: "image/png", AUDIO: "audio/ogg", VIDEO: "video/mp4"}[kind]
        created = await create(media.stub, png() if kind == IMAGE else b"bytes", owner=owner, kind=kind, mime=mime)
        made.setdefault(owner, []).append(created.media_id)
        made.setdefault(f"{owner}/{kind}", []).append(created.media_id)
    return made


async def test_owners_kinds_and_order(media, library):
    everything = await list_media(media.stub)
    assert ids(everything) == library["alice"][::-1], "newest first by default"
    assert everything.total_size == 6 and everything.next_page_token == ""
    assert ids(await list_media(media.stub, order=NEWEST)) == library["alice"][::-1]
    assert ids(await list_media(media.stub, order=OLDEST)) == library["alice"]
    images = await list_media(media.stub, kind=IMAGE, order=OLDEST)
    assert ids(images) == library[f"alice/{IMAGE}"] and images.total_size == 3
    assert all(m.kind == IMAGE and m.owner_id == "alice" for m in images.media)
    assert ids(await list_media(media.stub, "bob")) == library["bob"][::-1]
    assert ids(await list_media(media.stub, "bob", kind=AUDIO)) == []
    nobody = await list_media(media.stub, "carol")
    assert (ids(nobody), nobody.total_size, nobody.next_page_token) == ([], 0, "")


async def test_offset_and_page_size(media, library):
    page = await list_media(media.stub, order=OLDEST, offset=2, page_size=3)
    assert ids(page) == library["alice"][2:5] and page.total_size == 6 and page.next_page_token
    last = await list_media(media.stub, order=OLDEST, offset=4, page_size=10)
    assert ids(last) == library["alice"][4:] and last.next_page_token == ""
    past = await list_media(media.stub, offset=50)
    assert (ids(past), past.total_size, past.next_page_token) == ([], 6, "")


@pytest.mark.parametrize("order", [NEWEST, OLDEST])
async def test_page_tokens_walk_every_file_once(media, library, order):
    seen, token, pages = [], "", 0
    while True:
        page = await list_media(media.stub, order=order, page_size=4, page_token=token)
        assert page.total_size == 6
        seen += ids(page)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    expected = library["alice"] if order == OLDEST else library["alice"][::-1]
    assert (seen, pages) == (expected, 2)


async def test_a_page_token_overrides_offset(media, library):
    first = await list_media(media.stub, order=OLDEST, page_size=2)
    second = await list_media(media.stub, order=OLDEST, page_size=2, offset=5, page_token=first.next_page_token)
    assert ids(second) == library["alice"][2:4]


async def test_page_size_default_and_maximum(media):
    index = media.servicer.index
    for i in range(105):  # straight into the index: only the paging is under test
        index.insert(MediaRecord(f"{i:032d}", "dana", AUDIO, "audio/wav", 1, "0" * 64, 0, 0, 1_000))
    assert len((await list_media(media.stub, "dana")).media) == 20
    big = await list_media(media.stub, "dana", page_size=1000)
    assert len(big.media) == 100 and big.total_size == 105
    # Equal creation times: the id orders them, so pages are stable and never overlap.
    assert ids(big) == [f"{i:032d}" for i in range(104, 4, -1)]
    rest = await list_media(media.stub, "dana", page_size=1000, page_token=big.next_page_token)
    assert ids(rest) == [f"{i:032d}" for i in range(4, -1, -1)]


@pytest.mark.parametrize(("fields", "param"), [
    ({"owner": ""}, "owner_id"),
    ({"page_size": -1}, "page_size"),
    ({"offset": -3}, "offset"),
    ({"kind": 9}, "kind"),
    ({"order": 9}, "order"),
    ({"page_token": "not a token!"}, "page_token"),
    ({"page_token": "MTAuZGVhZGJlZWY"}, "page_token"),  # well formed, for another listing
    ({"page_token": "OTk5OTk5OTk5OTk5OTk5OTk5OTkuZGVhZGJlZWY"}, "page_token"),  # offset out of range
])
async def test_bad_listing_requests(media, fields, param):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await list_media(media.stub, **fields)
    info = error_info(caught.value)
    assert (info.code, info.reason, info.param) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REQUEST", param)


async def test_a_token_only_continues_its_own_listing(media, library):
    token = (await list_media(media.stub, page_size=1)).next_page_token
    for other in ({"owner": "bob"}, {"kind": IMAGE}, {"order": OLDEST}):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await list_media(media.stub, page_token=token, **other)
        info = error_info(caught.value)
        assert (info.reason, info.param) == ("INVALID_REQUEST", "page_token")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_listing_on_each_index_backend(request, tmp_path, backend):
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else ""
    async with serve(settings_for(tmp_path, database_url=url)) as media:
        made = [(await create(media.stub, png(), owner="erin")).media_id for _ in range(5)]
        await create(media.stub, b"RIFF", owner="erin", kind=AUDIO, mime="audio/wav")
        await create(media.stub, png(), owner="frank")
        first = await list_media(media.stub, "erin", kind=IMAGE, order=OLDEST, page_size=3)
        rest = await list_media(media.stub, "erin", kind=IMAGE, order=OLDEST, page_size=3,
                                page_token=first.next_page_token)
        assert (ids(first) + ids(rest), first.total_size, rest.next_page_token) == (made, 5, "")
        assert (await list_media(media.stub, "erin")).total_size == 6
