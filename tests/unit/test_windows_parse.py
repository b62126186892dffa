"""Windows and freezes from playbooks and inventory vars; errors name file:line:col and field."""

import textwrap
from datetime import UTC, date, datetime, timedelta

import pytest

from opsfix.errors import InventoryError, PlaybookError
from opsfix.inventory import load_inventory
from opsfix.playbook import yamlpos
from opsfix.windows import (
    Freeze,
    Policy,
    Window,
    parse_duration,
    parse_policy,
    policy_for_host,
)

SOURCE = "playbooks/site.yml"


def load(text):
    return yamlpos.loads(textwrap.dedent(text), SOURCE)


def parse(text):
    return parse_policy(load(text), SOURCE)


def error(text, kind=PlaybookError):
    with pytest.raises(kind) as caught:
        parse(text)
    return str(caught.value)


SEED = """\
    name: site
    windows:
      - name: monthly
        cron: "0 2 * * 2#1"
        duration: 2h
    freezes:
      - start: 2024-12-20
        end: 2025-01-02
        reason: year-end holidays
        timezone: Europe/Berlin
      - start: "2025-03-14 18:00"
        end: "2025-03-17T06:00:00+01:00"
        reason: release weekend
        timezone: Europe/Berlin
      - start: 2025-05-01
        reason: public holiday
    """


def test_the_seed_policy():
    policy = parse(SEED)
    [window] = policy.windows
    assert window == Window("0 2 * * 2#1", timedelta(hours=2), "UTC", "monthly")
    assert str(window.origin) == f"{SOURCE}:3:5: windows[0]"
    holidays, release, may_day = policy.freezes
    assert holidays == Freeze.days(
        date(2024, 12, 20), date(2025, 1, 2), "year-end holidays", "Europe/Berlin"
    )
    assert release.start == datetime(2025, 3, 14, 17, tzinfo=UTC)  # 18:00 CET
    assert release.end == datetime(2025, 3, 17, 5, tzinfo=UTC)  # its own offset
    assert (may_day.start, may_day.end) == (
        datetime(2025, 5, 1, tzinfo=UTC),
        datetime(2025, 5, 2, tzinfo=UTC),
    )


def test_yaml_timestamps_are_read_in_the_freeze_zone():
    policy = parse("""\
        freezes:
          - start: 2025-03-14 18:00:00
            end: 2025-03-15 06:00:00
            reason: r
            timezone: Europe/Berlin
        """)
    assert policy.freezes[0].start == datetime(2025, 3, 14, 17, tzinfo=UTC)


def test_absent_keys_mean_an_empty_policy():
    assert parse("name: x\n").is_empty
    assert parse_policy(None, SOURCE) == Policy()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d 12h", timedelta(days=1, hours=12)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        (
            'windows:\n  - cron: "0 25 * * *"\n    duration: 2h\n',
            f"{SOURCE}:2:11: windows[0].cron",
            "invalid cron expression '0 25 * * *'",
        ),
        (
            "windows:\n  - cron: '0 2 * * *'\n    duration: 2h\n    timezone: Europe/Berln\n",
            f"{SOURCE}:4:15: windows[0].timezone",
            "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)",
        ),
        (
            "windows:\n  - cron: '0 2 * * *'\n    duration: two hours\n",
            f"{SOURCE}:3:15: windows[0].duration",
            "invalid duration 'two hours'; expected e.g. 2h",
        ),
        (
            "windows:\n  - cron: '0 2 * * *'\n    duration: 60d\n",
            f"{SOURCE}:3:15: windows[0].duration",
            "out of range",
        ),
        (
            "windows:\n  - cron: '0 2 * * *'\n    duration: 2h\n    timzone: UTC\n",
            f"{SOURCE}:4:5: windows[0].timzone",
            "unknown field 'timzone' (did you mean 'timezone'?)",
        ),
        (
            "windows:\n  - duration: 2h\n",
            f"{SOURCE}:2:5: windows[0].cron",
            "required field is missing",
        ),
        (
            "windows:\n  - cron: '0 2 * * *'\n    duration: 120\n",
            f"{SOURCE}:3:15: windows[0].duration",
            "(got 120)",
        ),
        ("windows: monthly\n", f"{SOURCE}:1:10: windows", "expected a list, got str"),
        ("windows:\n  - '0 2 * * *'\n", f"{SOURCE}:2:5: windows[0]", "expected a mapping"),
        (
            "freezes:\n  - start: 2025-01-10\n    end: 2025-01-01\n    reason: x\n",
            f"{SOURCE}:3:10: freezes[0].end",
            "ends before it starts; expected end >= start",
        ),
        (
            "freezes:\n  - start: 2025-01-10\n    end: '2025-01-11 10:00'\n    reason: x\n",
            f"{SOURCE}:3:10: freezes[0].end",
            "start is a date, so end must be a date too",
        ),
        (
            "freezes:\n  - start: '2025-01-10 10:00'\n    reason: x\n",
            f"{SOURCE}:2:5: freezes[0].end",
            "needs an end",
        ),
        (
            "freezes:\n  - start: next friday\n    reason: x\n",
            f"{SOURCE}:2:12: freezes[0].start",
            "invalid start 'next friday'",
        ),
        (
            "freezes:\n  - start: 2025-01-10\n",
            f"{SOURCE}:2:5: freezes[0].reason",
            "required field is missing",
        ),
    ],
)
def test_errors_name_the_place(text, where, words):
    message = error(text)
    assert message.startswith(where + ": "), message
    assert words in message


# --- inventory vars: opsfix_windows / opsfix_freezes -------------------------------------


PLAYBOOK = parse(SEED)


def test_no_windows_anywhere_means_no_gating():
    assert policy_for_host(None, {"ansible_host": "10.0.0.1"}) is None
    assert policy_for_host(Policy(), {}) is None


def test_host_without_own_vars_gets_the_playbook_policy():
    assert policy_for_host(PLAYBOOK, {"x": 1}) == PLAYBOOK


def test_inventory_windows_replace_the_playbooks_and_keep_its_freezes():
    host_vars = {
        "opsfix_windows": [{"cron": "30 1 * * *", "duration": "1h", "timezone": "Europe/Berlin"}]
    }
    policy = policy_for_host(PLAYBOOK, host_vars)
    assert policy is not None
    assert [w.cron for w in policy.windows] == ["30 1 * * *"]
    assert policy.freezes == PLAYBOOK.freezes


def test_empty_inventory_lists_opt_a_host_out():
    assert policy_for_host(PLAYBOOK, {"opsfix_windows": [], "opsfix_freezes": []}) is None
    only_freezes = policy_for_host(PLAYBOOK, {"opsfix_windows": []})
    assert only_freezes is not None and only_freezes.windows == ()


def test_inventory_values_without_a_playbook_policy():
    host_vars = {"opsfix_freezes": [{"start": "2025-05-01", "reason": "holiday"}]}
    policy = policy_for_host(None, host_vars)
    assert policy is not None and policy.windows == () and len(policy.freezes) == 1


def test_bad_inventory_value_is_an_inventory_error():
    with pytest.raises(InventoryError) as caught:
        policy_for_host(PLAYBOOK, {"opsfix_windows": [{"cron": "x", "duration": "1h"}]}, "web1")
    assert str(caught.value).startswith(
        "web1: opsfix_windows[0].cron: cron expression 'x' has 1 field; expected 5"
    )


def test_inventory_precedence_host_beats_group(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        textwrap.dedent("""\
        web:
          vars:
            opsfix_windows:
              - {cron: "0 2 * * 2#1", duration: 2h}
          hosts:
            web1:
            web2:
              opsfix_windows:
                - {cron: "0 3 * * *", duration: 1h, timezone: America/New_York}
        """)
    )
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(
        "opsfix_freezes:\n  - {start: 2025-12-24, end: 2025-12-26, reason: christmas}\n"
    )
    inventory = load_inventory([tmp_path / "hosts.yml"])
    web1 = policy_for_host(None, inventory.hosts["web1"].vars)
    web2 = policy_for_host(None, inventory.hosts["web2"].vars)
    assert web1 is not None and web2 is not None
    assert [w.cron for w in web1.windows] == ["0 2 * * 2#1"]
    assert [(w.cron, w.timezone) for w in web2.windows] == [("0 3 * * *", "America/New_York")]
    assert web1.freezes == web2.freezes and web1.freezes[0].reason == "christmas"


def test_inventory_error_carries_the_line_of_the_yaml_value(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        "web:\n  hosts:\n    web1:\n      opsfix_windows:\n"
        "        - {cron: '0 2 * * *', duration: 2x}\n"
    )
    inventory = load_inventory([tmp_path / "hosts.yml"])
    with pytest.raises(InventoryError) as caught:
        policy_for_host(None, inventory.hosts["web1"].vars, "inventory vars of web1")
    assert str(caught.value).startswith(
        "inventory vars of web1:5:41: opsfix_windows[0].duration: invalid duration '2x'"
    )
