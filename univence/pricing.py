"""The price of metered work, from a price table: the one function both accounts (which charges) and the
edge (which spends credit leases in memory, edge.leases) price with, so they cannot disagree.

The table is the list of `Price` lines accounts configures and publishes (GetPriceTable). Prices are
integer milli-credits; per-pixel prices round up to the next milli-credit, so no work is free by rounding.
A premium user's price is 0; callers apply that. Errors are PricingError (the field and why), which each
side turns into its own error type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from univence.accounts.v1 import accounts_pb2

Op = accounts_pb2.Operation
MEGAPIXEL = 1 << 20
# Bounds that keep every price far inside int64 and catch garbage early.
MAX_SIDE = 65536
MAX_QUANTITY = 100_000
MAX_ITEMS = 100
# Priced per megapixel of output, by model (generation) or by method (upscaling).
BY_MODEL = frozenset({Op.OPERATION_IMAGE_GENERATION})
BY_METHOD = frozenset({Op.OPERATION_IMAGE_UPSCALE})


class PricingError(ValueError):
    """An item the table cannot price: `param` names the field."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.message, self.param = message, param


def operation_name(operation: int) -> str:
    """`image_generation` for OPERATION_IMAGE_GENERATION: for ledger descriptions and messages."""
    return Op.Name(operation).removeprefix("OPERATION_").lower()


class Prices:
    """A price table (GetPriceTable's lines) that prices ChargeItems."""

    def __init__(self, lines: Iterable[accounts_pb2.Price]):
        self.lines = list(lines)
        self._fixed: dict[int, int] = {}
        self._rated: dict[tuple[int, str], accounts_pb2.Price] = {}
        self._fallback: dict[int, accounts_pb2.Price] = {}
        self.premium_only = frozenset(line.operation for line in self.lines if line.premium_only)
        for line in self.lines:
            if line.operation in BY_MODEL or line.operation in BY_METHOD:
                self._rated[(line.operation, line.model or line.method)] = line
                if line.fallback:
                    self._fallback[line.operation] = line
            else:
                self._fixed[line.operation] = line.amount_mc

    def price(self, item: accounts_pb2.ChargeItem, param: str = "item") -> int:
        """The list price of one item, quantity included."""
        if item.quantity < 0 or item.quantity > MAX_QUANTITY:
            raise PricingError(f"quantity must be between 0 and {MAX_QUANTITY}, got {item.quantity}",
                               f"{param}.quantity")
        quantity = item.quantity or 1
        op = item.operation
        if op in BY_MODEL or op in BY_METHOD:
            name = item.model if op in BY_MODEL else item.method
            line = self._rated.get((op, name)) or self._fallback.get(op)
            if line is None:
                known = ", ".join(sorted(n for o, n in self._rated if o == op))
                raise PricingError(f"unknown {operation_name(op)} {'model' if op in BY_MODEL else 'method'} "
                                   f"{name!r}; priced: {known}", f"{param}.{'model' if op in BY_MODEL else 'method'}")
            unit = per_megapixel(_pixels(item, param), line.amount_mc, line.minimum_mc)
        elif op in self._fixed:
            unit = self._fixed[op]
        else:
            raise PricingError(f"unknown operation {op}", f"{param}.operation")
        return unit * quantity

    def amounts(self, items: Sequence[accounts_pb2.ChargeItem], param: str = "items") -> tuple[int, ...]:
        """The list price of each item; at least one item, at most MAX_ITEMS."""
        if not items:
            raise PricingError("at least one item to price is required", param)
        if len(items) > MAX_ITEMS:
            raise PricingError(f"at most {MAX_ITEMS} items may be priced at once, got {len(items)}", param)
        return tuple(self.price(item, f"{param}[{i}]") for i, item in enumerate(items))

    def is_premium_only(self, items: Sequence[accounts_pb2.ChargeItem]) -> bool:
        return any(item.operation in self.premium_only for item in items)


def per_megapixel(pixels: int, rate_mc: int, minimum_mc: int) -> int:
    """ceil(pixels / 2**20 * rate), at least `minimum_mc`."""
    return max(minimum_mc, -(-pixels * rate_mc // MEGAPIXEL))


def _pixels(item: accounts_pb2.ChargeItem, param: str) -> int:
    for side, value in (("width", item.width), ("height", item.height)):
        if not 0 < value <= MAX_SIDE:
            raise PricingError(f"{operation_name(item.operation)} is priced by output size: {side} must be "
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
