"""Prices of metered work in milli-credits, from the configured price table.

Prices are integers: per-pixel prices round up to the next milli-credit, so no work is ever free by
rounding. A premium user's price is 0; the caller applies that (see `Quote.for_user`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.accounts.config import PricingSettings
from services.common.errors import Reason, ServiceError, invalid
from univence.accounts.v1 import accounts_pb2

Op = accounts_pb2.Operation
MEGAPIXEL = 1 << 20
# Bounds that keep every price far inside int64 and catch garbage early.
MAX_SIDE = 65536
MAX_QUANTITY = 100_000
MAX_ITEMS = 100
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


def operation_name(operation: int) -> str:
    """`image_generation` for OPERATION_IMAGE_GENERATION: for ledger descriptions and messages."""
    return Op.Name(operation).removeprefix("OPERATION_").lower()


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

    def lines(self) -> list[accounts_pb2.Price]:
        """The whole table, one line per model or method where the price depends on it, in operation order."""
        s = self._s
        per_mp = Unit.PRICE_UNIT_MEGAPIXEL
        found = [accounts_pb2.Price(operation=Op.OPERATION_IMAGE_GENERATION, model=model, unit=per_mp, amount_mc=rate,
                                    minimum_mc=s.image_generation_minimum_mc)
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
        if not items:
            raise invalid("at least one item to price is required", param)
        if len(items) > MAX_ITEMS:
            raise invalid(f"at most {MAX_ITEMS} items may be priced at once, got {len(items)}", param)
        amounts = tuple(self.price(item, f"{param}[{i}]") for i, item in enumerate(items))
        return Quote(amounts, any(item.operation in PREMIUM_ONLY for item in items),
                     ", ".join(describe(item) for item in items))

    def price(self, item: accounts_pb2.ChargeItem, param: str) -> int:
        """The list price of one item, quantity included."""
        if item.quantity < 0 or item.quantity > MAX_QUANTITY:
            raise invalid(f"quantity must be between 0 and {MAX_QUANTITY}, got {item.quantity}",
                          f"{param}.quantity")
        quantity = item.quantity or 1
        op = item.operation
        if op == Op.OPERATION_IMAGE_GENERATION:
            rates = self._s.image_generation_per_megapixel_mc
            rate = rates.get(item.model, rates[self._s.default_image_model])
            unit = per_megapixel(_pixels(item, param), rate, self._s.image_generation_minimum_mc)
        elif op == Op.OPERATION_IMAGE_UPSCALE:
            rate = self._s.upscale_per_megapixel_mc.get(item.method)
            if rate is None:
                methods = ", ".join(sorted(self._s.upscale_per_megapixel_mc))
                raise invalid(f"unknown upscale method {item.method!r}; priced methods: {methods}",
                              f"{param}.method")
            unit = per_megapixel(_pixels(item, param), rate, self._s.upscale_minimum_mc)
        elif op in self._fixed:
            unit = self._fixed[op]
        else:
            raise invalid(f"unknown operation {op}", f"{param}.operation")
        return unit * quantity


def per_megapixel(pixels: int, rate_mc: int, minimum_mc: int) -> int:
    """ceil(pixels / 2**20 * rate), at least `minimum_mc`."""
    return max(minimum_mc, -(-pixels * rate_mc // MEGAPIXEL))


def _pixels(item: accounts_pb2.ChargeItem, param: str) -> int:
    for side, value in (("width", item.width), ("height", item.height)):
        if not 0 < value <= MAX_SIDE:
            raise invalid(f"{operation_name(item.operation)} is priced by output size: {side} must be "
                          f"between 1 and {MAX_SIDE}, got {value}", f"{param}.{side}")
    return item.width * item.height


def describe(item: accounts_pb2.ChargeItem) -> str:
    """`image_generation z-image-turbo 1024x1024 x2`: what a ledger reader needs to know."""
    parts = [operation_name(item.operation)]
    parts += [p for p in (item.model, item.method) if p]
    if item.width or item.height:
        parts.append(f"{item.width}x{item.height}")
    if item.quantity > 1:
        parts.append(f"x{item.quantity}")
    return " ".join(parts)


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
