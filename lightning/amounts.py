"""FLK amounts: integers in base units everywhere; decimal strings only at the CLI edge."""

from __future__ import annotations

from lightning.errors import LightningError

__all__ = ["DECIMALS", "UNIT", "AmountError", "format_flk", "parse_flk"]

DECIMALS = 18
UNIT = 10**DECIMALS  # base units per FLK
MAX_AMOUNT = 2**128 - 1


class AmountError(LightningError):
    """A malformed or out-of-range FLK amount."""


def parse_flk(text: str) -> int:
    """Parse a decimal FLK string (``"1"``, ``"0.5"``, ``"1_000"``, ``"2.000000000000000001"``) into base units.

    Raises :class:`AmountError` for negative numbers, exponents, more than 18 decimals, or garbage.
    """
    s = text.strip().replace("_", "")
    malformed = not s or s == "." or s.count(".") > 1 or any(c not in "0123456789." for c in s)
    if malformed:
        raise AmountError(f"{text!r} is not a FLK amount; write a non-negative decimal like 12.5")
    whole, _, frac = s.partition(".")
    if len(frac) > DECIMALS:
        raise AmountError(f"{text!r} has more than {DECIMALS} decimal places")
    units: int = int(whole or "0") * UNIT + int(frac.ljust(DECIMALS, "0") or "0")
    if units > MAX_AMOUNT:
        raise AmountError(f"{text!r} is too large")
    return units


def format_flk(units: int) -> str:
    """Format base units as a decimal FLK string without losing precision (trailing zeros trimmed)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), UNIT)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{str(frac).rjust(DECIMALS, '0').rstrip('0')}"
