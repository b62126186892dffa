"""The garbage collector around a run's start-up.

Start-up (imports, pydantic schemas, the bound playbook) builds hundreds of thousands of
objects that live as long as the process and makes little garbage, yet the collector
walks them again and again: ~40 ms of collections while a run starts, and one full
collection while hosts were being checked held the GIL for 45-85 ms. So: collect rarely
while starting, then freeze what start-up built (the collector skips it from then on)
and collect as usual.
"""

from __future__ import annotations

import gc

_USUAL = gc.get_threshold()


def starting() -> None:
    """Collect rarely until `settled` (the console script calls this first)."""
    gc.set_threshold(50_000, 20, 100)


def settled() -> None:
    """Start-up is over: freeze what it built and collect as usual from now on."""
    gc.freeze()
    gc.set_threshold(*_USUAL)
