"""The six-phase drill's playbooks: each loads and binds with the built-in checks, the
phases that only observe repair nothing, and the incident phase keeps nginx_recovery's
steps exactly (only its paths differ, being one folder deeper)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.inventory.host import Host
from opsfix.playbook.binding import bind
from opsfix.playbook.parse import Playbook, load_playbook
from opsfix.playbook.templating import TemplateEngine
from opsfix.registry import load_registry
from opsfix.runner import builtin_templates

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
DRILL = sorted((PLAYBOOKS / "drill").glob("*.yml"))
CHECK_ONLY = {"1-networking", "3-logs-trace", "4-resources", "5-integrity"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_one_playbook_per_phase():
    assert [p.stem for p in DRILL] == [
        "1-networking",
        "2-service-health",
        "3-logs-trace",
        "4-resources",
        "5-integrity",
        "6-incident",
    ]


@pytest.mark.parametrize("path", DRILL, ids=lambda p: p.stem)
def test_loads_and_binds(path, registry):
    playbook = load_playbook(path, registry)
    host = Host("web1", ("web",), {"ansible_host": "10.231.0.11"})
    templates = TemplateEngine([path.parent / "templates", builtin_templates()])
    [target] = bind(playbook, [host], registry, {}, templates)
    assert len(target.steps) == len(playbook.steps) > 0


@pytest.mark.parametrize("path", DRILL, ids=lambda p: p.stem)
def test_observing_phases_repair_nothing(path, registry):
    playbook = load_playbook(path, registry)
    remediations = {r.name for step in playbook.steps for r in step.remediations}
    if path.stem in CHECK_ONLY:
        assert remediations == set()
    if path.stem == "2-service-health":
        assert remediations == {"nginx_reload"}  # the safe restart: nginx -t first


def _steps(playbook: Playbook) -> list[tuple[object, ...]]:
    return [
        (s.label, s.check.name, s.check.params, [(r.name, r.params) for r in s.remediations])
        for s in playbook.steps
    ]


def test_incident_phase_keeps_nginx_recovery_steps(registry):
    drill = load_playbook(PLAYBOOKS / "drill" / "6-incident.yml", registry)
    recovery = load_playbook(PLAYBOOKS / "practice_app.yml", registry)
    assert _steps(drill) == _steps(recovery)
    for name, value in recovery.vars.items():
        theirs = drill.vars[name]
        if name.endswith("_dir"):
            assert (drill.base_dir / theirs).resolve() == (recovery.base_dir / value).resolve()
        else:
            assert theirs == value
    assert [p.resolve() for p in drill.verify] == [p.resolve() for p in recovery.verify]
