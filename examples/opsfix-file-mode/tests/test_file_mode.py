"""file_mode and fix_mode against outputs captured by tests/capture.py (no host needed)."""

from pathlib import Path

import pytest
from opsfix_file_mode.file_mode import FileMode
from opsfix_file_mode.fix_mode import FixMode
from pydantic import ValidationError

from opsfix.testing import judge, judge_case, plan, result

CASES = Path(__file__).parent / "cases" / "file_mode"


def test_a_file_within_the_mode_passes():
    verdict = judge_case(FileMode, CASES / "private.json")
    assert verdict.status == "passed" and verdict.evidence["mode"] == "0600"


def test_extra_bits_fail_and_say_which():
    verdict = judge_case(FileMode, CASES / "world_writable.json")
    assert verdict.status == "failed" and "0026 more than 0640" in verdict.summary
    assert judge_case(FileMode, CASES / "world_writable.json", mode="0666").ok


def test_a_missing_file_fails_and_a_symlink_is_could_not_tell():
    assert judge_case(FileMode, CASES / "missing.json").status == "failed"
    assert judge_case(FileMode, CASES / "link.json").status == "error"


def test_the_wrong_owner_fails():
    verdict = judge_case(FileMode, CASES / "private.json", owner="www-data")
    assert verdict.status == "failed" and "owned by root, not www-data" in verdict.summary


def test_unreadable_output_is_could_not_tell():
    denied = result(exit_status=1, stderr="stat: cannot statx '/x': Permission denied")
    assert judge(FileMode, [denied], path="/x").status == "error"


@pytest.mark.parametrize(
    "params", [{"path": "x"}, {"path": "/x", "mode": "rw"}, {"path": "/a/../b"}]
)
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        judge(FileMode, [result()], **params)


def test_fix_mode_only_takes_bits_away_and_can_undo():
    done = plan(FixMode, [result("666 root regular file\n")], path="/etc/k", mode="0640")
    assert done.act == ("chmod 0640 -- /etc/k",) and done.rollback == ("chmod 0666 -- /etc/k",)
    done = plan(FixMode, [result("604 root regular file\n")], path="/etc/k", mode="0640")
    assert done.act == ("chmod 0600 -- /etc/k",)  # never adds group read


def test_fix_mode_has_nothing_to_do_on_a_narrow_file():
    assert plan(FixMode, [result("600 root regular file\n")], path="/etc/k", mode="0640").is_noop


def test_fix_mode_refuses_a_symlink_and_an_unreadable_file():
    link = plan(FixMode, [result("777 root symbolic link\n")], path="/etc/k")
    assert link.refuse == "/etc/k is a symlink: not following it" and not link.act
    assert plan(FixMode, [result(exit_status=1, stderr="denied")], path="/etc/k").refuse
