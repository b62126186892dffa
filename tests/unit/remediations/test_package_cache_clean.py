"""package_cache_clean: gather output of a lab host with a 2 GiB apt cache."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import ValidationError

from opsfix.remediations.package_cache_clean import PackageCacheClean
from opsfix.transport.base import CommandResult

from .conftest import DATA


def captured() -> list[CommandResult]:
    record = json.loads((DATA / "package_cache_clean_lab.json").read_text())
    return [CommandResult(**r) for r in record["results"]]


def cleaner(context, **params) -> PackageCacheClean:
    return PackageCacheClean(PackageCacheClean.Params(**params), context)


def test_apt_get_clean_frees_the_cache(context):
    plan = cleaner(context, target_percent=50).plan(captured())
    assert plan.act == ("apt-get clean",)
    assert plan.summary.startswith("apt-get clean: free about ")
    assert "in /var/cache/apt; /var " in plan.summary and "(target under 50%)" in plan.summary


def test_a_small_cache_is_left_alone(context):
    plan = cleaner(context, min_size_mib=100_000).plan(captured())
    assert plan.is_noop and plan.summary.endswith(": nothing worth cleaning")


def test_without_a_package_manager_it_refuses(context):
    results = [dataclasses.replace(captured()[0], stdout="none\n"), *captured()[1:]]
    assert cleaner(context).plan(results).refuse == "no apt-get, dnf or yum on this host"


def test_dnf_is_used_where_apt_is_not(context):
    results = [
        CommandResult("x", 0, "dnf\n"),
        CommandResult("x", 0, "0 -\n"),
        CommandResult("x", 0, "512000\t/var/cache/dnf\n" + captured()[1].stdout.split("\n", 1)[1]),
        CommandResult("x", 0, "0 -\n"),
    ]
    plan = cleaner(context).plan(results)
    assert plan.act == ("dnf clean all",) and "500.0 MiB" in plan.summary


@pytest.mark.parametrize("params", [{"min_size_mib": -1}, {"target_percent": 0}])
def test_bad_params_are_refused(params):
    with pytest.raises(ValidationError):
        PackageCacheClean.Params(**params)
