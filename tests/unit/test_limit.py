"""Host patterns (`--limit`, a play's `hosts:`), evaluated the way Ansible evaluates them.

Every expected list below is what `ansible PATTERN -i pair/site.ini --list-hosts` prints
with ansible-core 2.19.
"""

from pathlib import Path

import pytest

from opsfix.errors import InventoryError, Location
from opsfix.inventory import Selection, load_inventory, split_pattern

DATA = Path(__file__).parent / "data" / "inventory"
BASTION = "bastion"
WEB = ["web01.example.com", "web02.example.com", "web03.example.com", "web-canary.example.com"]
DB = ["dba.example.com", "dbb.example.com"]
ALL = [BASTION, *WEB, *DB]


@pytest.fixture(scope="module")
def inv():
    return load_inventory([DATA / "pair" / "site.ini"])


def names(hosts) -> list[str]:
    return [host.name for host in hosts]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ALL),
        ("all", ALL),
        ("*", ALL),
        ("web01.example.com", WEB[:1]),
        ("web", WEB),
        ("eu", WEB + DB),
        ("ungrouped", [BASTION]),
        # globs match group names (all their hosts) and host names
        ("web*", WEB),
        ("*.example.com", WEB + DB),
        ("db?.example.com", DB),
        # regex with ~, matched from the start of the name
        ("~web0[12]", WEB[:2]),
        ("~^db", DB),
        # unions, with ':' or ','
        ("web:db", WEB + DB),
        ("web,db", WEB + DB),
        ("db:web01.example.com", [*DB, WEB[0]]),
        ("bastion, db", [BASTION, *DB]),
        # intersection and exclusion
        ("prod:&db", DB),
        ("prod:!web", DB),
        ("web:!web-canary.example.com", WEB[:3]),
        ("eu:&web:!web0[13]*", [WEB[1], WEB[3]]),
        # unions first, then intersections, then exclusions, whatever the order written
        ("prod:!web-canary.example.com:&web", WEB[:3]),
        ("!db:prod:&eu", WEB),
        ("bastion,&ungrouped", [BASTION]),
        # only exclusions or intersections start from all
        ("!web", [BASTION, *DB]),
        ("&db", DB),
        # subscripts pick hosts of a group by position
        ("web[0]", WEB[:1]),
        ("web[-1]", WEB[-1:]),
        ("web[1:2]", WEB[1:3]),
        ("web[2:]", WEB[2:]),
        ("db[0]:web[0]", [DB[0], WEB[0]]),
    ],
)
def test_pattern_selects_like_ansible(inv, pattern, expected):
    assert names(inv.select(pattern)) == expected


def test_mixed_order_gives_the_same_hosts(inv):
    forms = ["prod:!web0[12]*:&web", "prod:&web:!web0[12]*", "!web0[12]*:&web:prod"]
    assert {tuple(names(inv.select(p))) for p in forms} == {(WEB[2], WEB[3])}


def test_unknown_terms_select_nothing_and_are_reported(inv):
    selection = inv.match("web:nosuch:~zzz:!gone")
    assert names(selection.hosts) == WEB
    assert selection.unmatched == ("nosuch", "~zzz", "gone")
    hosts, unmatched = inv.select_with_unmatched("nosuch")
    assert (hosts, unmatched) == ([], ("nosuch",))


def test_an_empty_group_is_not_unmatched():
    inv = load_inventory([DATA / "layered" / "hosts.yml"])
    assert inv.match("ungrouped") == Selection([], ())


def test_limit_applies_within_the_play_hosts_and_keeps_their_order(inv):
    play = inv.select("prod")
    limited = inv.match("db:web01.example.com:bastion", within=play)
    assert names(limited.hosts) == [WEB[0], *DB]
    assert names(inv.select("all", within=inv.select("web[1:]"))) == WEB[1:]


def test_file_term_reads_names_one_per_line_relative_to_cwd(inv, tmp_path, monkeypatch):
    (tmp_path / "retry.txt").write_text("web01.example.com\n\n  db\n!dba.example.com\n")
    monkeypatch.chdir(tmp_path)
    assert names(inv.select("@retry.txt")) == [WEB[0], DB[1]]
    assert names(inv.select("bastion:@retry.txt")) == [BASTION, WEB[0], DB[1]]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("~web(", "invalid host pattern '~web(': missing ), unterminated subpattern at position 3"),
        ("", "empty host pattern ''; expected host or group names, or 'all'"),
        (" , ", "empty host pattern ' , '; expected host or group names, or 'all'"),
        ("!", "pattern term '!' names no host or group"),
        (
            "web[7]",
            "pattern 'web[7]' asks for host 7 of 'web', which has 4 hosts (counting from 0)",
        ),
        (
            "@no-such-file",
            "cannot read host list file 'no-such-file' from pattern term '@no-such-file': "
            "No such file or directory",
        ),
    ],
)
def test_bad_patterns_are_errors(inv, tmp_path, monkeypatch, pattern, message):
    monkeypatch.chdir(tmp_path)
    where = Location("playbooks/site.yml", 2, 8, "hosts")
    with pytest.raises(InventoryError) as info:
        inv.match(pattern, origin=where)
    assert info.value.message == message
    assert info.value.location == where


@pytest.mark.parametrize(
    ("pattern", "terms"),
    [
        ("web", ["web"]),
        ("web:db", ["web", "db"]),
        ("web:&prod:!db", ["web", "&prod", "!db"]),
        ("a, b ,c", ["a", "b", "c"]),
        ("web*:~db[0-9]+", ["web*", "~db[0-9]+"]),
        # a single host, address or range is one term, colons and all
        ("web[01:03]", ["web[01:03]"]),
        ("fe80::1", ["fe80::1"]),
        ("10.0.0.1:22", ["10.0.0.1:22"]),
        # with a comma present, Ansible splits on commas only
        ("web:db,bastion", ["web:db", "bastion"]),
    ],
)
def test_split_pattern_like_ansible(pattern, terms):
    assert split_pattern(pattern) == terms


def test_a_limit_that_matches_no_host_is_an_error_with_the_closest_names(inv):
    from opsfix.errors import NoHostsError
    from opsfix.inventory.targeting import target_hosts

    with pytest.raises(NoHostsError) as caught:
        target_hosts(inv, "all", "web01.example.con")
    assert str(caught.value) == (
        "hosts pattern 'all' with --limit 'web01.example.con' matches no host "
        "(closest names: web01.example.com, web03.example.com, web02.example.com)"
    )
    with pytest.raises(NoHostsError, match=r"hosts pattern 'wbe' matches no host \(closest"):
        target_hosts(inv, "wbe", None)
    with pytest.raises(NoHostsError, match=r"'db' with --limit 'web' matches no host$"):
        target_hosts(inv, "db", "web")  # each matches, together nothing: no names to suggest
    hosts, warnings = target_hosts(inv, "all", "bastion:typo")  # one term still matches
    assert names(hosts) == [BASTION] and warnings == ["--limit term 'typo' matched nothing"]
