"""The price table and bulk-discount purchases, without a database."""

from __future__ import annotations

import pytest

from services.accounts.config import PricingSettings
from services.accounts.pricing import PriceTable, purchase
from services.common.errors import Reason, ServiceError
from univence.accounts.v1 import accounts_pb2 as pb

Op = pb.Operation
prices = PriceTable(PricingSettings())


def price(**fields) -> int:
    return prices.quote([pb.ChargeItem(**fields)]).total_mc


@pytest.mark.parametrize(("model", "width", "height", "expected"), [
    ("z-image-turbo", 1024, 1024, 1000),        # 1 credit per megapixel
    ("z-image-turbo", 1792, 1024, 1750),
    ("z-image-turbo", 512, 512, 250),           # 250 by the rate, and the minimum
    ("z-image-turbo", 256, 256, 250),           # 63 by the rate: the minimum applies
    ("longcat-image-edit", 1024, 1024, 1500),
    ("longcat-image-edit", 1792, 1024, 2625),
    ("some-unknown-model", 1024, 1024, 1000),   # the default model's rate
    ("", 1000, 1000, 954),                      # 953.67 rounds up
])
def test_image_generation_is_priced_by_model_and_pixels(model, width, height, expected):
    assert price(operation=Op.OPERATION_IMAGE_GENERATION, model=model, width=width, height=height) == expected


@pytest.mark.parametrize(("method", "width", "height", "expected"), [
    ("lanczos", 2048, 2048, 400),
    ("realesrgan_2x", 2048, 2048, 1200),
    ("realesrgan_4x", 4096, 4096, 8000),
    ("realesrgan_4x_anime", 1024, 1024, 500),
    ("swin2sr", 1024, 1024, 750),
    ("lanczos", 256, 256, 100),                 # the minimum
])
def test_upscale_is_priced_by_method_and_output_pixels(method, width, height, expected):
    assert price(operation=Op.OPERATION_IMAGE_UPSCALE, method=method, width=width, height=height) == expected


@pytest.mark.parametrize(("operation", "expected"), [
    (Op.OPERATION_IMAGE_EDIT, 500), (Op.OPERATION_IMAGE_SEGMENTATION, 250),
    (Op.OPERATION_IMAGE_BACKGROUND_REMOVAL, 250), (Op.OPERATION_VIDEO_BACKGROUND_REMOVAL, 250),
    (Op.OPERATION_VOICE_CLONE, 1000), (Op.OPERATION_MUSIC_GENERATION, 1000), (Op.OPERATION_MUSIC_COVER, 1000),
    (Op.OPERATION_MUSIC_REPAINT, 1000), (Op.OPERATION_IMAGE_TO_VIDEO, 1000), (Op.OPERATION_CHAT_COMPLETION, 0),
])
def test_fixed_prices_follow_the_reference(operation, expected):
    assert price(operation=operation) == expected


def test_quantity_multiplies_and_zero_means_one():
    assert price(operation=Op.OPERATION_VIDEO_BACKGROUND_REMOVAL, quantity=120) == 30_000
    assert price(operation=Op.OPERATION_IMAGE_EDIT, quantity=0) == 500
    assert price(operation=Op.OPERATION_IMAGE_GENERATION, width=1024, height=1024, quantity=3) == 3000


def test_a_quote_lists_each_item_and_the_total():
    quote = prices.quote([
        pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, model="z-image-turbo", width=512, height=512),
        pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, model="z-image-turbo", width=1024, height=1024),
    ])
    assert quote.item_amounts_mc == (250, 1000)
    assert quote.total_mc == 1250
    assert not quote.premium_only
    assert quote.for_user(premium=True).total_mc == 0


def test_chat_is_premium_only():
    quote = prices.quote([pb.ChargeItem(operation=Op.OPERATION_CHAT_COMPLETION)])
    assert quote.premium_only
    assert quote.for_user(premium=True).total_mc == 0
    with pytest.raises(ServiceError) as raised:
        quote.for_user(premium=False)
    assert raised.value.reason == Reason.ERROR_REASON_PREMIUM_REQUIRED


@pytest.mark.parametrize(("item", "param"), [
    (pb.ChargeItem(), "items[0].operation"),
    (pb.ChargeItem(operation=99), "items[0].operation"),
    (pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION), "items[0].width"),
    (pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, width=512, height=-1), "items[0].height"),
    (pb.ChargeItem(operation=Op.OPERATION_IMAGE_GENERATION, width=10**6, height=512), "items[0].width"),
    (pb.ChargeItem(operation=Op.OPERATION_IMAGE_UPSCALE, method="bicubic", width=8, height=8), "items[0].method"),
    (pb.ChargeItem(operation=Op.OPERATION_IMAGE_EDIT, quantity=-1), "items[0].quantity"),
])
def test_malformed_items_are_invalid_requests_naming_the_field(item, param):
    with pytest.raises(ServiceError) as raised:
        prices.quote([item])
    assert raised.value.reason == Reason.ERROR_REASON_INVALID_REQUEST
    assert raised.value.param == param


def test_an_empty_quote_is_refused():
    with pytest.raises(ServiceError) as raised:
        prices.quote([])
    assert raised.value.param == "items"


@pytest.mark.parametrize(("paid_cents", "credits", "percent"), [
    (500, 500, 0),
    (800, 800, 0),          # 1000 credits would cost 900
    (899, 899, 0),
    (900, 1000, 10),        # the 10% tier starts at 1000 credits = 900 cents
    (950, 1055, 10),
    (7999, 8887, 10),       # 10000 credits would cost 8000
    (8000, 10000, 20),
    (100_000, 125_000, 20),
])
def test_purchases_get_the_bulk_discount(paid_cents, credits, percent):
    bought = purchase(paid_cents, PricingSettings().bulk_discount_percent)
    assert (bought.credits, bought.discount_percent) == (credits, percent)
    assert bought.price_cents <= paid_cents
