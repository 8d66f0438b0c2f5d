"""What every promotion target shares (the targets depend on this module, not on `targets`,
which dispatches to them): the error a failed alias move raises."""

from __future__ import annotations

from trainops.errors import ProviderError


class PromotionError(ProviderError):
    """An alias could not be read or moved; the next apply tries again."""


__all__ = ["PromotionError"]
