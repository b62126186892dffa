"""The lab's machine-wide limits: raised to what a lab needs, never lowered."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.errors import LabError
from opsfix.lab.system import raise_sysctls


def test_limits_are_raised_and_higher_ones_kept(tmp_path: Path) -> None:
    low, high = tmp_path / "gc_thresh1", tmp_path / "gc_thresh3"
    low.write_text("128\n")
    high.write_text("16384\n")
    changed = raise_sysctls({str(low): 2000, str(high): 8000})
    assert changed == {str(low): 2000}
    assert (low.read_text(), high.read_text()) == ("2000\n", "16384\n")
    assert raise_sysctls({str(low): 2000}) == {}  # again: nothing to do


def test_a_limit_that_cannot_be_read_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"gc_thresh9: cannot raise to 10"):
        raise_sysctls({str(tmp_path / "gc_thresh9"): 10})
