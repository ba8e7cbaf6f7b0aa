"""Prices of metered work in milli-credits, from the configured price table.

The pricing itself is univence.pricing's (the edge prices credit-lease requests with the same function,
from GetPriceTable); this module makes the table's lines from the settings and turns a malformed item into
an INVALID_REQUEST. A premium user's price is 0; the caller applies that (see `Quote.for_user`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.accounts.config import PricingSettings
from services.common.errors import Reason, ServiceError, invalid
from univence.accounts.v1 import accounts_pb2
from univence.pricing import Prices, PricingError, describe

Op = accounts_pb2.Operation
PREMIUM_ONLY = frozenset({Op.OPERATION_CHAT_COMPLETION})
Unit = accounts_pb2.PriceUnit
# What each fixed price is counted per (the per-megapixel ones are image generation and upscaling).
FIXED_UNITS = {
    Op.OPERATION_IMAGE_EDIT: Unit.PRICE_UNIT_REQUEST,
    Op.OPERATION_IMAGE_SEGMENTATION: Unit.PRICE_UNIT_IMAGE,
    Op.OPERATION_IMAGE_BACKGROUND_REMOVAL: Unit.PRICE_UNIT_IMAGE,
    Op.OPERATION_VIDEO_BACKGROUND_REMOVAL: Unit.PRICE_UNIT_FRAME,
    Op.OPERATION_VOICE_CLONE: Unit.PRICE_UNIT_REQUEST,
    Op.OPERATION_MUSIC_GENERATION: Unit.PRICE_UNIT_REQUEST,
    Op.OPERATION_MUSIC_COVER: Unit.PRICE_UNIT_REQUEST,
    Op.OPERATION_MUSIC_REPAINT: Unit.PRICE_UNIT_REQUEST,
    Op.OPERATION_IMAGE_TO_VIDEO: Unit.PRICE_UNIT_REQUEST,
    Op.OPERATION_CHAT_COMPLETION: Unit.PRICE_UNIT_REQUEST,
}


@dataclass(frozen=True)
class Quote:
    """List prices of some work, and whether any of it is for premium users only."""

    item_amounts_mc: tuple[int, ...]
    premium_only: bool
    description: str

    @property
    def total_mc(self) -> int:
        return sum(self.item_amounts_mc)

    def for_user(self, premium: bool) -> Quote:
        """What `premium` pays; non-premium users asking for premium-only work are refused."""
        if premium:
            return Quote(tuple(0 for _ in self.item_amounts_mc), self.premium_only, self.description)
        if self.premium_only:
            raise ServiceError(Reason.ERROR_REASON_PREMIUM_REQUIRED,
                               "chat completions are available to premium accounts only")
        return self


class PriceTable:
    """Prices ChargeItems; every malformed item is an INVALID_REQUEST naming the field."""

    def __init__(self, settings: PricingSettings):
        self._s = settings
        self._fixed: dict[int, int] = {
            Op.OPERATION_IMAGE_EDIT: settings.image_edit_mc,
            Op.OPERATION_IMAGE_SEGMENTATION: settings.image_segmentation_mc,
            Op.OPERATION_IMAGE_BACKGROUND_REMOVAL: settings.image_background_removal_mc,
            Op.OPERATION_VIDEO_BACKGROUND_REMOVAL: settings.video_background_removal_per_frame_mc,
            Op.OPERATION_VOICE_CLONE: settings.voice_clone_mc,
            Op.OPERATION_MUSIC_GENERATION: settings.music_generation_mc,
            Op.OPERATION_MUSIC_COVER: settings.music_cover_mc,
            Op.OPERATION_MUSIC_REPAINT: settings.music_repaint_mc,
            Op.OPERATION_IMAGE_TO_VIDEO: settings.image_to_video_mc,
            Op.OPERATION_CHAT_COMPLETION: settings.chat_completion_mc,
        }
        if settings.default_image_model not in settings.image_generation_per_megapixel_mc:
            raise ValueError(f"pricing.default_image_model {settings.default_image_model!r} has no entry in "
                             "pricing.image_generation_per_megapixel_mc")
        self._prices = Prices(self._lines())

    def lines(self) -> list[accounts_pb2.Price]:
        """The whole table, one line per model or method where the price depends on it, in operation order."""
        return list(self._prices.lines)

    def _lines(self) -> list[accounts_pb2.Price]:
        s = self._s
        per_mp = Unit.PRICE_UNIT_MEGAPIXEL
        found = [accounts_pb2.Price(operation=Op.OPERATION_IMAGE_GENERATION, model=model, unit=per_mp, amount_mc=rate,
                                    minimum_mc=s.image_generation_minimum_mc, fallback=model == s.default_image_model)
                 for model, rate in s.image_generation_per_megapixel_mc.items()]
        found += [accounts_pb2.Price(operation=Op.OPERATION_IMAGE_UPSCALE, method=method, unit=per_mp, amount_mc=rate,
                                     minimum_mc=s.upscale_minimum_mc)
                  for method, rate in s.upscale_per_megapixel_mc.items()]
        found += [accounts_pb2.Price(operation=op, unit=FIXED_UNITS[op], amount_mc=amount,
                                     premium_only=op in PREMIUM_ONLY) for op, amount in self._fixed.items()]
        return sorted(found, key=lambda line: line.operation)

    def bulk_discounts(self) -> list[accounts_pb2.BulkDiscount]:
        return [accounts_pb2.BulkDiscount(min_credits=threshold, percent=percent)
                for threshold, percent in sorted(self._s.bulk_discount_percent.items())]

    def quote(self, items: Sequence[accounts_pb2.ChargeItem], param: str = "items") -> Quote:
        try:
            amounts = self._prices.amounts(items, param)
        except PricingError as error:
            raise invalid(error.message, error.param) from None
        return Quote(amounts, self._prices.is_premium_only(items), ", ".join(describe(item) for item in items))

    def price(self, item: accounts_pb2.ChargeItem, param: str) -> int:
        """The list price of one item, quantity included."""
        try:
            return self._prices.price(item, param)
        except PricingError as error:
            raise invalid(error.message, error.param) from None


@dataclass(frozen=True)
class Purchase:
    """What a payment buys under the bulk discounts."""

    credits: int
    discount_percent: int
    price_cents: int


def purchase(paid_cents: int, discounts: dict[int, int]) -> Purchase:
    """The most credits whose discounted price fits in `paid_cents` (1 credit = 1 cent before discount).

    Tiers overlap on purpose: 900 cents buy 1000 credits at 10% off, more than the 900 they would buy
    undiscounted. For each tier the most credits are floor(paid * 100 / (100 - percent)); a tier
    counts when that reaches its threshold; the biggest result wins.
    """
    best = Purchase(paid_cents, 0, paid_cents)
    for threshold, percent in discounts.items():
        credits = paid_cents * 100 // (100 - percent)
        if credits >= threshold and credits > best.credits:
            best = Purchase(credits, percent, -(-credits * (100 - percent) // 100))
    return best
