"""The lease book (edge.leases.LeaseBook) and the local pricing (univence.pricing) without any service."""

from __future__ import annotations

import time

import pytest

from edge.leases import Lease, LeaseBook
from services.accounts.config import PricingSettings
from services.accounts.pricing import PriceTable
from univence.accounts.v1 import accounts_pb2 as pb
from univence.pricing import Prices, PricingError


def lease(user: str = "usr_1", amount: int = 1000, hold_id: str = "hold_1") -> Lease:
    return Lease(pb.Hold(hold_id=hold_id, user_id=user, amount_mc=amount, state=pb.HOLD_STATE_HELD), amount)


def test_a_lease_is_never_overspent_and_gives_back_what_was_not_charged():
    book = LeaseBook()
    assert book.take("usr_1", 1) is None  # no lease yet
    book.add(held := lease(amount=1000))
    taken = [book.take("usr_1", 300) for _ in range(4)]
    assert taken[:3] == [held] * 3 and taken[3] is None  # 900 taken, 100 left: a 4th request does not fit
    assert (held.left_mc, held.in_flight) == (100, 3)
    LeaseBook.end(held, 300, charged=False)  # failed: all back
    LeaseBook.end(held, 100, charged=True)   # cost 200 of its 300
    assert (held.left_mc, held.in_flight, held.undelivered) == (500, 1, 1)
    assert book.take("usr_1", 500) is held and held.left_mc == 0


def test_a_replaced_or_idle_lease_returns_only_once_its_requests_ended_and_charges_arrived():
    book = LeaseBook()
    book.add(old := lease(hold_id="hold_old"))
    assert book.take("usr_1", 600) is old
    book.add(new := lease(hold_id="hold_new"))  # the old one could not cover the next request
    assert not old.open and book.current["usr_1"] is new
    assert book.returnable() == []  # a request is still spending from it
    LeaseBook.end(old, 0, charged=True)
    assert book.returnable() == []  # its charge is not delivered yet
    old.undelivered -= 1
    assert book.returnable() == [old] and book.returnable() == []

    assert book.take("usr_1", 100) is new
    book.retire_idle(0.0)
    assert book.current == {"usr_1": new}  # in use: not idle
    LeaseBook.end(new, 100, charged=False)
    new.last_used = time.monotonic() - 10
    book.retire_idle(5.0)
    assert book.current == {} and book.returnable() == [new]
    assert book.take("usr_1", 1) is None


def test_a_lost_lease_is_spent_from_no_more():
    book = LeaseBook()
    book.add(held := lease())
    held.lost(pb.Hold(hold_id="hold_1", state=pb.HOLD_STATE_EXPIRED))
    assert book.take("usr_1", 1) is None


def test_the_edge_prices_exactly_as_accounts_does_from_the_published_table():
    table = PriceTable(PricingSettings())
    local = Prices(table.lines())  # what the edge builds from GetPriceTable
    items = [pb.ChargeItem(operation=pb.OPERATION_IMAGE_EDIT),
             pb.ChargeItem(operation=pb.OPERATION_IMAGE_GENERATION, model="z-image-turbo", width=1024, height=768),
             pb.ChargeItem(operation=pb.OPERATION_IMAGE_GENERATION, model="not-in-the-table", width=512, height=512,
                           quantity=3),
             pb.ChargeItem(operation=pb.OPERATION_VIDEO_BACKGROUND_REMOVAL, quantity=40)]
    assert local.amounts(items) == table.quote(items).item_amounts_mc
    assert local.is_premium_only([pb.ChargeItem(operation=pb.OPERATION_CHAT_COMPLETION)])
    with pytest.raises(PricingError) as raised:
        local.price(pb.ChargeItem(operation=pb.OPERATION_IMAGE_UPSCALE, method="nope", width=8, height=8), "items[0]")
    assert raised.value.param == "items[0].method"
