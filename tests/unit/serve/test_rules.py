"""The rules file: validated like a playbook, errors at file:line:col with the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.serve.rules import RulesError, load_rules

REPO = Path(__file__).parents[3]
PLAYBOOKS = REPO / "playbooks"

GOOD = f"""\
playbook_dirs: [{PLAYBOOKS}]
rules:
  - name: web-down
    match:
      alertname: HttpDown
      labels: {{severity: page}}
      labels_regex: {{job: "black.*"}}
    playbook: nginx_recovery.yml
    limits: {{concurrency: 2, runs_per_host_per_hour: 5, cooldown: 30s}}
  - name: disk
    match: {{alertname: DiskFull}}
    playbook: disk_pressure.yml
    mode: dry-run
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.yml"
    path.write_text(text)
    return path


def error(tmp_path: Path, text: str) -> str:
    with pytest.raises(RulesError) as caught:
        load_rules(write(tmp_path, text))
    return str(caught.value)


def test_a_good_file_loads_and_matches(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path, GOOD))
    first, second = rules.rules
    assert first.playbook == PLAYBOOKS / "nginx_recovery.yml"
    assert first.hosts == "web" and first.host_label == "instance"
    assert first.cooldown.total_seconds() == 30 and first.concurrency == 2
    assert second.mode == "dry-run"
    labels = {"alertname": "HttpDown", "severity": "page", "job": "blackbox"}
    assert rules.rule_for(labels) is first
    assert rules.rule_for({**labels, "job": "xblackbox"}) is None  # anchored, as Alertmanager
    assert rules.rule_for({**labels, "severity": "info"}) is None
    assert rules.rule_for({"alertname": "DiskFull"}) is second


def test_unknown_field_names_line_and_field(tmp_path: Path) -> None:
    text = GOOD.replace("    mode: dry-run", "    mdoe: dry-run")
    assert error(tmp_path, text).startswith(f"{tmp_path}/alerts.yml:13:5: rules[1].mdoe:")


def test_wrong_type_and_bad_mode(tmp_path: Path) -> None:
    text = GOOD.replace("concurrency: 2", "concurrency: many")
    assert ":9:" in error(tmp_path, text) and "rules[0].limits.concurrency" in error(tmp_path, text)
    assert "rules[1].mode" in error(tmp_path, GOOD.replace("dry-run", "fix-it"))


def test_bad_regex_and_duration(tmp_path: Path) -> None:
    assert "bad regex" in error(tmp_path, GOOD.replace('"black.*"', '"black(("'))
    assert "invalid duration" in error(tmp_path, GOOD.replace("cooldown: 30s", "cooldown: soon"))


def test_playbooks_only_under_the_configured_folders(tmp_path: Path) -> None:
    outside = GOOD.replace("playbook: nginx_recovery.yml", "playbook: ../README.md")
    message = error(tmp_path, outside)
    assert "rules[0].playbook: no playbook '../README.md' under the playbook_dirs" in message
    assert ":8:15:" in message
    absolute = GOOD.replace("playbook: nginx_recovery.yml", "playbook: /etc/passwd")
    assert "no playbook '/etc/passwd'" in error(tmp_path, absolute)
    link = tmp_path / "pb"
    link.mkdir()
    (link / "out.yml").symlink_to(REPO / "bench" / "playbooks" / "health4.yml")
    linked = GOOD.replace(str(PLAYBOOKS), str(link))
    assert "no playbook 'nginx_recovery.yml'" in error(tmp_path, linked)
    linked = linked.replace("nginx_recovery.yml", "out.yml")
    assert "no playbook 'out.yml'" in error(tmp_path, linked)


def test_an_invalid_playbook_is_found_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "pb"
    folder.mkdir()
    (folder / "nginx_recovery.yml").write_text("hosts: web\nchecks:\n  - check: nginx_cfg\n")
    (folder / "disk_pressure.yml").write_text("hosts: web\nchecks: []\n")
    message = error(tmp_path, GOOD.replace(str(PLAYBOOKS), str(folder)))
    assert "rules[0].playbook: playbook 'nginx_recovery.yml' is invalid" in message
    assert "unknown check 'nginx_cfg'" in message


def test_duplicate_names_missing_folder_and_empty_rules(tmp_path: Path) -> None:
    assert "used twice" in error(tmp_path, GOOD.replace("name: disk", "name: web-down"))
    assert "no such folder" in error(tmp_path, GOOD.replace(str(PLAYBOOKS), "nowhere"))
    assert "rules" in error(tmp_path, f"playbook_dirs: [{PLAYBOOKS}]\nrules: []\n")
    assert "invalid YAML" in error(tmp_path, "rules: [\n")
    assert "expected a mapping" in error(tmp_path, "- 1\n")


def test_report_files_need_a_url_with_the_run_id(tmp_path: Path) -> None:
    with_reports = GOOD.replace(
        "rules:\n", "reports: {dir: out, url: 'https://x/{run_id}'}\nrules:\n", 1
    )
    loaded = load_rules(write(tmp_path, with_reports))
    assert loaded.reports_dir == tmp_path / "out" and loaded.report_url == "https://x/{run_id}"
    no_id = with_reports.replace("https://x/{run_id}", "https://x/latest")
    assert "reports.url" in error(tmp_path, no_id)
