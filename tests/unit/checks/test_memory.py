"""memory: /proc/meminfo from a lab host, and edited copies of it."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from opsfix.checks.memory import Memory
from opsfix.transport.base import CommandResult

from .helpers import judge, load, make
from .throwaway import run_local


def meminfo(**values: int) -> list[CommandResult]:
    """The captured meminfo with some lines changed (kB) or removed (-1)."""
    _, results = load("memory", "lab")
    lines = []
    for line in results[0].stdout.splitlines():
        name = line.partition(":")[0]
        if values.get(name, 0) >= 0:
            lines.append(f"{name}: {values[name]} kB" if name in values else line)
    return [dataclasses.replace(results[0], stdout="\n".join(lines) + "\n")]


def test_plenty_available_passes():
    verdict = judge(Memory, "lab")
    assert verdict.ok and "% of memory available (" in verdict.summary
    assert verdict.evidence["total"] == "23.5 GiB"
    assert set(verdict.evidence) == {"available", "total", "percent"}


def test_little_available_fails_and_low_warns():
    assert make(Memory).evaluate(meminfo(MemTotal=1000, MemAvailable=50)).status == "failed"
    low = make(Memory).evaluate(meminfo(MemTotal=1000, MemAvailable=150))
    assert low.status == "passed" and low.summary.startswith("warning: 15% of memory")


def test_old_kernels_get_an_estimate():
    verdict = make(Memory).evaluate(
        meminfo(MemTotal=1000, MemAvailable=-1, MemFree=60, Buffers=10, Cached=20)
    )
    assert verdict.status == "failed" and verdict.evidence["percent"] == 9.0
    assert "estimated" in verdict.evidence


def test_swap_in_use_is_shown():
    verdict = make(Memory).evaluate(meminfo(SwapTotal=2048, SwapFree=1024))
    assert verdict.evidence["swap_used"] == "1.0 MiB of 2.0 MiB"


def test_unreadable_meminfo_is_could_not_tell():
    result = CommandResult("cat /proc/meminfo", 1, "", "cat: /proc/meminfo: No such file")
    assert make(Memory).evaluate([result]).status == "error"


@pytest.mark.parametrize(
    "params", [{"min_available_percent": 100}, {"min_available_percent": 30}, {"x": 1}]
)
def test_bad_thresholds_are_refused(params):
    with pytest.raises(ValidationError):
        make(Memory, **params)


def test_real_commands_here():
    verdict = make(Memory).evaluate(run_local(make(Memory).commands()))
    assert verdict.status in ("passed", "failed") and verdict.evidence["total"]
