"""Sizes and rates as people read them, shared by the disk checks and cleanups."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human(size: float) -> str:
    """1536 -> '1.5 KiB'; bytes below 1 KiB stay exact."""
    value, unit = float(size), 0
    while abs(value) >= 1024 and unit < len(_UNITS) - 1:
        value, unit = value / 1024, unit + 1
    return f"{int(value)} B" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def percent(part: float, whole: float) -> float:
    """part of whole in %, one decimal; 0 for an empty whole."""
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0
