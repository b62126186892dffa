"""`opsfix windows`: the next openings per group of hosts that share a policy."""

import json
import textwrap

import pytest

from opsfix.cli import main

INVENTORY = """\
all:
  children:
    web:
      hosts:
        web1:
        web2:
        web3:
          opsfix_windows:
            - {name: nightly, cron: "30 2 * * *", duration: 90m, timezone: Europe/Berlin}
    db:
      hosts:
        db1:
      vars:
        opsfix_windows: []
    edge:
      hosts:
        edge1:
"""

PLAYBOOK = """\
name: site
hosts: web:db
windows:
  - {name: monthly, cron: "0 2 * * 2#1", duration: 2h}
freezes:
  - {start: 2024-12-20, end: 2025-01-07, reason: year-end holidays, timezone: Europe/Berlin}
checks:
  - check: nginx_config
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "hosts.yml").write_text(INVENTORY)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_groups_hosts_by_policy_and_lists_openings(files, capsys):
    code, out, _ = run(
        capsys, "windows", str(files / "site.yml"), "-i", str(files / "hosts.yml"),
        "--from", "2024-12-01T00:00", "--count", "3",
    )  # fmt: skip
    assert code == 0
    assert out == textwrap.dedent("""\
        Maintenance windows from 2024-12-01 00:00 UTC

        web1, web2 (2 hosts: web1, web2)
          window 'monthly': 0 2 * * 2#1 for 2h, UTC
          freeze 2024-12-20 .. 2025-01-07 (Europe/Berlin): year-end holidays
          Tue 2024-12-03 02:00 → 04:00 UTC
          Tue 2025-01-07 02:00 → 04:00 UTC  FROZEN: year-end holidays
          Tue 2025-02-04 02:00 → 04:00 UTC

        web3 (1 host: web3)
          window 'nightly': 30 2 * * * for 1h30m, Europe/Berlin
          freeze 2024-12-20 .. 2025-01-07 (Europe/Berlin): year-end holidays
          Sun 2024-12-01 02:30 → 04:00 CET  (01:30 → 03:00 UTC)
          Mon 2024-12-02 02:30 → 04:00 CET  (01:30 → 03:00 UTC)
          Tue 2024-12-03 02:30 → 04:00 CET  (01:30 → 03:00 UTC)

        db (1 host: db1)
          freeze 2024-12-20 .. 2025-01-07 (Europe/Berlin): year-end holidays
          no windows: disruptive steps may run at any time outside a freeze
        """)


def test_without_a_playbook_only_inventory_vars_count(files, capsys):
    code, out, _ = run(
        capsys, "windows", "-i", str(files / "hosts.yml"), "--from", "2024-06-01", "--count", "1"
    )
    assert code == 0
    assert "db, edge, web1, web2 (4 hosts: web1, web2, db1, edge1)\n" in out
    assert "  no windows and no freezes: disruptive steps may run at any time\n" in out
    assert "  Sat 2024-06-01 02:30 → 04:00 CEST  (00:30 → 02:00 UTC)\n" in out


def test_limit_and_json(files, capsys):
    code, out, _ = run(
        capsys, "windows", str(files / "site.yml"), "-i", str(files / "hosts.yml"),
        "-l", "web1", "--from", "2025-01-01T00:00:00+00:00", "--count", "2", "--format", "json",
    )  # fmt: skip
    assert code == 0
    [group] = json.loads(out)
    assert group["hosts"] == ["web1"] and group["labels"] == ["web1"]
    assert group["windows"] == [
        {"name": "monthly", "cron": "0 2 * * 2#1", "duration": "2h", "timezone": "UTC"}
    ]
    first, second = group["openings"]
    assert first["start_utc"] == "2025-01-07T02:00:00+00:00" and first["frozen"] is True
    assert first["freezes"] == ["year-end holidays"]
    assert second["start"] == "2025-02-04T02:00:00+00:00" and second["frozen"] is False


def test_a_bad_window_is_an_input_error_with_its_place(files, capsys):
    (files / "site.yml").write_text(PLAYBOOK.replace("2#1", "2#9"))
    code, _, err = run(capsys, "windows", str(files / "site.yml"), "-i", str(files / "hosts.yml"))
    assert code == 4
    assert f"{files / 'site.yml'}:4:27: windows[0].cron: invalid cron expression" in err


def test_bad_options(files, capsys):
    assert run(capsys, "windows", "-i", str(files / "hosts.yml"), "--count", "0")[0] == 5
    assert run(capsys, "windows", "-i", str(files / "hosts.yml"), "--from", "soon")[0] == 5
