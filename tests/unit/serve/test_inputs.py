"""The webhook's inputs: the payload, the host label, credentials and rate limits."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from opsfix.errors import OptionsError
from opsfix.inventory.host import Host
from opsfix.serve.guard import Credentials, RateLimiter
from opsfix.serve.payload import PayloadError, parse
from opsfix.serve.targets import host_part, inventory_host

ALERT = {
    "status": "firing",
    "labels": {"alertname": "HttpDown", "instance": "web1:9100"},
    "annotations": {},
    "startsAt": "2026-01-01T00:00:00.123Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "",
    "fingerprint": "c0ffee",
}


def body(**changes: Any) -> bytes:
    doc = {"version": "4", "status": "firing", "receiver": "opsfix", "alerts": [ALERT]}
    return json.dumps({**doc, **changes}).encode()


def test_payload_tolerates_unknown_fields() -> None:
    parsed = parse(body(truncatedAlerts=0, somethingNew={"x": 1}))
    assert parsed.alerts[0].fingerprint == "c0ffee"
    assert parsed.alerts[0].name == "HttpDown"


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"version": "3"}, "version"),
        ({"alerts": [{**ALERT, "labels": {"instance": 1}}]}, "alerts.0.labels.instance"),
        ({"alerts": [{**ALERT, "status": "pending"}]}, "alerts.0.status"),
        ({"alerts": [{**ALERT, "startsAt": "noon"}]}, "alerts.0.startsAt"),
        ({"alerts": [{k: v for k, v in ALERT.items() if k != "fingerprint"}]}, "fingerprint"),
        ({"alerts": {"a": 1}}, "alerts"),
    ],
)
def test_payload_wrong_types_are_errors_naming_the_field(changes: Any, where: str) -> None:
    with pytest.raises(PayloadError, match=where):
        parse(body(**changes))


def test_payload_not_json() -> None:
    with pytest.raises(PayloadError):
        parse(b"{")


@pytest.mark.parametrize(
    ("label", "host"),
    [
        ("web1:9100", "web1"),
        ("http://10.213.1.2/", "10.213.1.2"),
        ("https://Web1.example:8443/health", "web1.example"),
        ("[2001:db8::5]:443", "2001:db8::5"),
        ("2001:db8::5", "2001:db8::5"),
        ("web1", "web1"),
        ("", ""),
    ],
)
def test_host_part(label: str, host: str) -> None:
    assert host_part(label) == host


def test_inventory_host_by_name_ansible_host_or_address() -> None:
    hosts = [
        Host("web1", ("web",), {"ansible_host": "10.0.0.11"}),
        Host("web2", ("web",), {"ansible_host": "2001:db8::0:5"}),
        Host("db1.example", ("db",), {}),
    ]
    assert inventory_host("web1:9100", hosts) == "web1"
    assert inventory_host("http://10.0.0.11/", hosts) == "web1"
    assert inventory_host("[2001:db8::5]:80", hosts) == "web2"  # the same address
    assert inventory_host("DB1.example:5432", hosts) == "db1.example"
    assert inventory_host("10.0.0.99:80", hosts) is None
    assert inventory_host("web1; rm -rf /", hosts) is None


def test_a_templated_ansible_host_is_matched_as_a_run_would_connect_to_it() -> None:
    """inventory/vagrant.yml's `{{ vagrant_net }}.11`: an alert for 10.240.9.11 names it."""
    hosts = [
        Host("vm1", ("web",), {"ansible_host": "{{ vagrant_net }}.11", "vagrant_net": "10.240.9"}),
        Host("vm2", ("web",), {"ansible_host": "{{ missing }}.12"}),  # cannot render
        Host("vm3", ("web",), {"ansible_host": "{{ a }}", "a": "{{ b }}", "b": "{{ a }}"}),
    ]
    assert inventory_host("10.240.9.11:9100", hosts) == "vm1"
    assert inventory_host("http://10.240.9.11/", hosts) == "vm1"
    assert inventory_host("{{ vagrant_net }}.11", hosts) is None  # never the raw template
    assert inventory_host(".12:80", hosts) is None
    assert inventory_host("vm3:80", hosts) == "vm3"  # by name, whatever its address


def test_credentials_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token-of-some-length\n")
    bearer = Credentials.bearer_file(token)
    assert bearer.accepts("Bearer s3cret-token-of-some-length")
    assert not bearer.accepts("Bearer s3cret-token-of-some-lengthX")
    assert not bearer.accepts(None) and not bearer.accepts("")
    assert not bearer.accepts("Bearer \udcff")
    pair = tmp_path / "basic"
    pair.write_text("alertmanager:pa:ss")
    basic = Credentials.basic_file(pair)
    assert basic.accepts("Basic " + base64.b64encode(b"alertmanager:pa:ss").decode())
    assert not basic.accepts("Basic " + base64.b64encode(b"alertmanager:pass").decode())


def test_credentials_files_must_be_sound(tmp_path: Path) -> None:
    short, empty, two = tmp_path / "short", tmp_path / "empty", tmp_path / "two"
    short.write_text("abc")
    empty.write_text("\n")
    two.write_text("a" * 20 + "\n" + "b" * 20)
    for path in (short, empty, two, tmp_path / "missing"):
        with pytest.raises(OptionsError, match="--token-file"):
            Credentials.bearer_file(path)
    with pytest.raises(OptionsError, match="user:password"):
        Credentials.basic_file(short)


def test_rate_limiter_per_client() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=1, burst=2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")  # another client has its own bucket
    now[0] = 1.0
    assert limiter.allow("a") and not limiter.allow("a")
