"""disk_usage: real GNU df output on a lab host (16 MiB tmpfs /var/log, overlay /var)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from opsfix.checks.disk_usage import DiskUsage

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import run_local


def test_a_healthy_host_passes_and_names_its_fullest_filesystem():
    verdict = judge(DiskUsage, "lab")
    assert verdict.status == "passed"
    assert verdict.summary == "9 filesystem(s) below 80%"
    assert verdict.evidence["worst"].startswith("/ 21.7% used (")
    assert "warnings" not in verdict.evidence


def test_image_types_are_skipped():
    # devtmpfs is in df's list but never judged
    verdict = judge(DiskUsage, "lab", skip_types=[])
    assert verdict.evidence["filesystems"] == 10


def test_a_full_filesystem_fails_with_mount_size_used_and_free():
    verdict = judge(DiskUsage, "log_full")
    assert verdict.status == "failed"
    assert verdict.summary == "1 filesystem(s) nearly full: /var/log"
    assert verdict.evidence["critical"] == [
        "/var/log 93.6% used (15.0 MiB of 16.0 MiB, 1.0 MiB free, inodes 0%)"
    ]


def test_over_warn_passes_with_a_warning():
    verdict = judge(DiskUsage, "log_full", critical_percent=95)
    assert verdict.status == "passed"
    assert verdict.summary == "warning: /var/log over 80%"
    assert verdict.evidence["warnings"][0].startswith("/var/log 93.6% used")


def test_inodes_are_judged_on_their_own():
    verdict = judge(DiskUsage, "log_inodes", inode_warn_percent=0.01, inode_critical_percent=0.05)
    assert verdict.status == "failed"
    assert verdict.evidence["critical"] == [
        "/var/log 0% used (0 B of 16.0 MiB, 16.0 MiB free, inodes 0.1%)"
    ]


def test_named_mounts_only():
    verdict = judge(DiskUsage, "named")
    assert verdict.ok and verdict.evidence["filesystems"] == 2


def test_a_named_path_that_is_missing_is_could_not_tell():
    verdict = judge(DiskUsage, "missing_mount")
    assert verdict.status == "error"
    assert "No such file or directory" in verdict.evidence["stderr"]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"critical_percent": 101}, "less than or equal to 100"),
        ({"warn_percent": 0}, "greater than 0"),
        ({"warn_percent": 95, "critical_percent": 90}, "warn_percent (95) is over critical"),
        ({"inode_warn_percent": 99}, "inode_warn_percent (99) is over inode_critical"),
        ({"mountz": []}, "Extra inputs"),
    ],
)
def test_bad_thresholds_are_refused(params, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        make(DiskUsage, **params)


def test_hostile_values_never_reach_the_shell(tmp_path):
    marker, values = hostile(tmp_path)
    assert_harmless(make(DiskUsage, mounts=values), marker, *values)


def test_real_commands_here():
    check = make(DiskUsage, mounts=["/"], warn_percent=99, critical_percent=100)
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status in ("passed", "failed") and verdict.evidence["filesystems"] == 1
