"""A verify suite that takes its time: its first test leaves a mark on the controller (the
folder named by the `verify_mark` var), then waits, so a test can press Ctrl-C mid-verify."""

import time
from pathlib import Path
from typing import Any


def test_takes_its_time(host: Any, opsfix_vars: dict[str, Any]) -> None:
    (Path(opsfix_vars["verify_mark"]) / host.backend.get_pytest_id().replace("/", "_")).touch()
    time.sleep(2)
    assert host.run("true").rc == 0


def test_after_it(host: Any) -> None:
    assert host.run("true").rc == 0
