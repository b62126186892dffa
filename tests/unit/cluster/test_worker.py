"""A worker's pool process: what it keeps between tasks, and what it never does."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cluster import worker
from opsfix.runner import RunRequest, prepare


@pytest.fixture
def request_for(tmp_path: Path) -> RunRequest:
    playbook = tmp_path / "site.yml"
    playbook.write_text(
        "name: disks\nhosts: all\nchecks:\n  - name: root has room\n    check: disk_usage\n"
        "    with: {mounts: [/]}\n"
    )
    return RunRequest(playbook=playbook, inventory=[], mode="check", limit="web1")


@pytest.fixture(autouse=True)
def empty_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_LOADED", {})


def test_a_bundle_s_playbook_loads_once_per_process_and_serves_every_host(
    request_for: RunRequest,
) -> None:
    first = worker._loaded(request_for, "a" * 64)
    assert worker._loaded(request_for, "a" * 64) is first
    env = {"run_id": "r", "host": {"name": "web1", "groups": ["web"], "vars": {}}, "peers": []}
    for name in ("web1", "web2"):
        env["host"]["name"] = name
        request_for.limit = name
        _, jobs, _ = prepare(request_for, first, worker.task_inventory(env))
        assert [job.target.host.name for job in jobs] == [name]


def test_only_the_latest_bundles_stay_loaded(request_for: RunRequest) -> None:
    shas = [str(n) * 64 for n in range(worker.LOADED_KEPT + 1)]
    kept = [worker._loaded(request_for, sha) for sha in shas]
    assert list(worker._LOADED) == shas[1:]
    assert worker._loaded(request_for, shas[0]) is not kept[0]  # loaded again
