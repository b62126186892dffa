"""Reading inventories: formats, merging, vars files, precedence and Ansible-shaped output.

Expected outputs were printed by ansible-core 2.19 (`ansible-inventory --list/--graph`)
for the same fixtures; only secrets differ, masked here.
"""

import json
from pathlib import Path

import pytest

from opsfix.inventory import SECRET_VARS, Inventory, load_inventory
from opsfix.inventory.ini_values import parse_value
from opsfix.inventory.ranges import expand
from opsfix.secret import Secret

DATA = Path(__file__).parent / "data" / "inventory"
PAIR_INI = DATA / "pair" / "site.ini"
PAIR_YAML = DATA / "pair" / "site.yml"


def load(*paths: Path) -> Inventory:
    return load_inventory(list(paths))


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


# --- formats ---------------------------------------------------------------------------


def test_yaml_and_ini_versions_resolve_to_the_same_inventory():
    ini, yml = load(PAIR_INI), load(PAIR_YAML)
    assert list(ini.hosts) == list(yml.hosts)
    for name, host in ini.hosts.items():
        assert host == yml.hosts[name]
        assert host.vars == yml.hosts[name].vars
    # YAML lists bastion under `all` itself, INI before any section; both land in ungrouped
    assert yml.groups["all"].hosts == ("bastion",)
    assert ini.groups["all"].hosts == ()
    assert {n: g for n, g in ini.groups.items() if n != "all"} == {
        n: g for n, g in yml.groups.items() if n != "all"
    }
    assert ini.groups["all"].members == yml.groups["all"].members
    assert {n: g.vars for n, g in ini.groups.items()} == {n: g.vars for n, g in yml.groups.items()}
    assert ini.to_list() == yml.to_list()
    assert ini.graph(with_vars=True) == yml.graph(with_vars=True)


def test_host_gets_groups_sorted_without_all_and_vars_merged():
    host = load(PAIR_INI).hosts["web-canary.example.com"]
    assert host.groups == ("eu", "prod", "web")
    assert host.vars == {
        "ansible_port": 2222,
        "ansible_user": "deploy",
        "canary": True,
        "env": "production",
        "http_port": 8081,
        "ntp_server": "ntp.eu.example.com",
        "region": "eu-west",
    }


def test_nested_children_know_parents_depth_and_members():
    inv = load(PAIR_YAML)
    eu = inv.groups["eu"]
    assert eu.parents == ("prod",)
    assert eu.children == ("web", "db")
    assert eu.hosts == ()
    assert [inv.groups[g].depth for g in ("all", "prod", "eu", "web")] == [0, 1, 2, 3]
    assert inv.groups["prod"].members == (
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "web-canary.example.com",
        "dba.example.com",
        "dbb.example.com",
    )
    assert inv.groups["all"].children == ("ungrouped", "prod")
    assert inv.groups["ungrouped"].hosts == ("bastion",)
    assert inv.hosts["bastion"].groups == ("ungrouped",)


def test_host_in_a_group_leaves_ungrouped(tmp_path):
    write(tmp_path, {"h.ini": "early\nlate\n[web]\nearly\n"})
    inv = load(tmp_path / "h.ini")
    assert inv.groups["ungrouped"].hosts == ("late",)
    assert inv.hosts["early"].groups == ("web",)


def test_yaml_string_in_place_of_hosts_or_children_names_one_entry(tmp_path):
    write(tmp_path, {"h.yml": "web:\n  hosts: web1\nprod:\n  children: web\n"})
    inv = load(tmp_path / "h.yml")
    assert inv.groups["web"].hosts == ("web1",)
    assert inv.groups["prod"].children == ("web",)


def test_empty_yaml_file_and_no_sources_give_an_empty_inventory(tmp_path):
    write(tmp_path, {"empty.yml": "# nothing yet\n"})
    for inv in (load(tmp_path / "empty.yml"), load()):
        assert inv.hosts == {}
        assert list(inv.groups) == ["all", "ungrouped"]


# --- ranges, ports and INI values -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "hosts"),
    [
        ("web[01:03]", ["web01", "web02", "web03"]),
        ("web[1:3].example.com", ["web1.example.com", "web2.example.com", "web3.example.com"]),
        ("n[0:10:5]", ["n0", "n5", "n10"]),
        ("n[:2]", ["n0", "n1", "n2"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("x[a:e:2]", ["xa", "xc", "xe"]),
        ("r[1:2]c[a:b]", ["r1ca", "r1cb", "r2ca", "r2cb"]),
        ("plain", ["plain"]),
    ],
)
def test_ranges_expand_like_ansible(name, hosts):
    assert expand(name) == hosts


def test_host_port_shorthand_sets_ansible_port_where_the_host_first_appears(tmp_path):
    write(
        tmp_path,
        {
            "h.ini": "[a]\nweb[1:2]:2222\n[b]\nweb1:3333\n10.0.0.1:22\n[fe80::1]:2200\nfe80::2\n",
        },
    )
    inv = load(tmp_path / "h.ini")
    assert inv.hosts["web1"].vars == {"ansible_port": 2222}
    assert inv.hosts["web2"].vars == {"ansible_port": 2222}
    assert inv.hosts["10.0.0.1"].vars == {"ansible_port": 22}
    assert inv.hosts["fe80::1"].vars == {"ansible_port": 2200}
    assert inv.hosts["fe80::2"].vars == {}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8080", 8080),
        ("1.5", 1.5),
        ("True", True),
        ("None", None),
        ("yes", "yes"),
        ("'07'", "07"),
        ("[1, 'a']", [1, "a"]),
        ("(1, 2)", [1, 2]),
        ("{'k': (1,)}", {"k": [1]}),
        ("hello world", "hello world"),
        ("5 # a comment", 5),
        ("...", "..."),
        ("1j", "1j"),
    ],
)
def test_ini_values_are_read_as_python_literals_like_ansible(text, value):
    assert parse_value(text) == value


def test_ini_host_line_quoting_and_vars_sections(tmp_path):
    write(
        tmp_path,
        {
            "h.ini": (
                "h1 a=1 b='07' c=\"x y\" d=yes e=[1,2] f=hi#comment\n"
                "[g]\nh1\n[g:vars]\nport = 8080 # eight\nmotd = hello world\n"
            ),
        },
    )
    assert load(tmp_path / "h.ini").hosts["h1"].vars == {
        "a": 1,
        "b": "07",
        "c": "x y",
        "d": "yes",
        "e": [1, 2],
        "f": "hi",
        "port": 8080,
        "motd": "hello world",
    }


# --- folders and several sources -------------------------------------------------------


def test_folder_source_reads_every_inventory_file_and_skips_the_rest():
    inv = load(DATA / "folder")
    assert list(inv.hosts) == ["web1", "web2", "web3", "db1", "cache1", "mq1", "web4"]
    assert inv.groups["web"].hosts == ("web1", "web2", "web3", "web4")
    assert inv.groups["all"].children == ("ungrouped", "web", "db", "cache", "queue")
    assert inv.hosts["web4"].vars == {"from_group_vars": True, "source": "02-more.yml"}
    assert inv.hosts["db1"].vars == {"from_host_vars": True}


def test_several_sources_merge_and_later_ones_win(tmp_path):
    write(
        tmp_path,
        {
            "one/a.ini": "[web]\nweb1\n[web:vars]\ncolor=red\nsize=1\n",
            "one/group_vars/web.yml": "from_one: 1\nshared: one\n",
            "two/b.yml": "web:\n  hosts: {web2: }\n  vars: {color: blue}\n",
            "two/group_vars/web.yml": "shared: two\n",
        },
    )
    inv = load(tmp_path / "one" / "a.ini", tmp_path / "two" / "b.yml")
    assert inv.groups["web"].hosts == ("web1", "web2")
    expected = {"color": "blue", "size": 1, "from_one": 1, "shared": "two"}
    assert inv.hosts["web1"].vars == expected
    assert inv.groups["web"].vars == expected


# --- group_vars/ and host_vars/ ---------------------------------------------------------


def test_vars_files_and_folders_are_found_like_ansible():
    inv = load(DATA / "layered" / "hosts.yml")
    web2 = inv.hosts["web2"].vars
    # group_vars/prod (no extension) is used, so group_vars/prod.yaml is ignored
    assert web2["tier"] == "prod_file"
    # group_vars/web/: a.yml, b.yaml and tuning/x.yml merged in name order; notes.txt and
    # hidden files skipped
    assert web2["role"] == "web_b"
    assert web2["stack"] == "tuning"
    # host_vars/web1.yml beats everything
    assert inv.hosts["web1"].vars["role"] == "host_file"


def test_group_vars_of_a_group_include_its_files():
    inv = load(DATA / "layered" / "hosts.yml")
    assert inv.groups["web"].vars == {
        "level": "web_inline",
        "tier": "web_inline",
        "role": "web_b",
        "stack": "tuning",
    }
    assert inv.groups["db"].priority == 10
    assert "ansible_group_priority" not in inv.groups["db"].vars


# --- precedence -------------------------------------------------------------------------

NESTED = """\
all:
  vars: {v: all}
  children:
    parent:
      vars: {v: parent}
      children:
        child:
          vars: {v: child}
          hosts:
            h1:
            h2: {v: host}
"""


def test_child_group_beats_parent_beats_all_and_host_beats_group(tmp_path):
    write(tmp_path, {"h.yml": NESTED + "    other:\n      hosts: {h3: }\n"})
    inv = load(tmp_path / "h.yml")
    assert inv.hosts["h1"].vars == {"v": "child"}
    assert inv.hosts["h2"].vars == {"v": "host"}
    assert inv.hosts["h3"].vars == {"v": "all"}


def test_same_depth_groups_order_by_priority_then_name(tmp_path):
    write(
        tmp_path,
        {
            "h.ini": (
                "[b]\nh1\nh2\n[a]\nh1\nh2\n"
                "[b:vars]\nv=b\n[a:vars]\nv=a\n"
                "[c]\nh2\n[c:vars]\nv=c\nansible_group_priority=0\n"
            ),
        },
    )
    inv = load(tmp_path / "h.ini")
    assert inv.hosts["h1"].vars == {"v": "b"}  # a < b by name, so b wins
    assert inv.hosts["h2"].vars == {"v": "b"}  # c sorts first for its lower priority
    write(tmp_path, {"h.ini": "[a]\nh1\n[b]\nh1\n[a:vars]\nv=a\nansible_group_priority=5\n"})
    assert load(tmp_path / "h.ini").hosts["h1"].vars == {"v": "a"}


def test_files_beat_the_inventory_file_at_the_same_level(tmp_path):
    write(
        tmp_path,
        {
            "h.yml": NESTED,
            "group_vars/child.yml": "v: child_file\nw: child_file\n",
            "host_vars/h2/main.yml": "v: host_file\n",
        },
    )
    inv = load(tmp_path / "h.yml")
    assert inv.hosts["h1"].vars == {"v": "child_file", "w": "child_file"}
    assert inv.hosts["h2"].vars == {"v": "host_file", "w": "child_file"}


def test_any_group_vars_file_beats_every_group_var_of_the_inventory_file(tmp_path):
    # Ansible's order: all inventory-file group vars, then group_vars/all, then
    # group_vars/<group>. So a parent's file beats a child's inline vars.
    write(tmp_path, {"h.yml": NESTED, "group_vars/all.yml": "v: all_file\n"})
    assert load(tmp_path / "h.yml").hosts["h1"].vars == {"v": "all_file"}
    write(tmp_path, {"group_vars/parent.yml": "v: parent_file\n"})
    assert load(tmp_path / "h.yml").hosts["h1"].vars == {"v": "parent_file"}
    assert load(tmp_path / "h.yml").hosts["h2"].vars == {"v": "host"}


def test_merge_replaces_whole_values_per_key(tmp_path):
    write(
        tmp_path,
        {
            "h.yml": "all:\n  vars: {opts: {a: 1, b: 2}}\n  hosts: {h1: {opts: {c: 3}}}\n",
        },
    )
    assert load(tmp_path / "h.yml").hosts["h1"].vars == {"opts": {"c": 3}}


# --- secrets ---------------------------------------------------------------------------


def test_passwords_are_secrets_everywhere(tmp_path):
    write(
        tmp_path,
        {
            "h.ini": "h1 ansible_password=pw1 ansible_become_pass=1234\n"
            "[all:vars]\nansible_become_password=pw2\nansible_ssh_pass=pw3\n",
        },
    )
    inv = load(tmp_path / "h.ini")
    values = inv.hosts["h1"].vars
    assert values["ansible_password"] == Secret("pw1")
    assert values["ansible_become_pass"] == Secret("1234")
    assert values["ansible_become_password"].reveal() == "pw2"
    assert isinstance(inv.groups["all"].vars["ansible_ssh_pass"], Secret)
    shown = json.dumps(inv.to_list()) + inv.graph(with_vars=True) + repr(inv.hosts)
    for word in ("pw1", "pw2", "pw3", "1234"):
        assert word not in shown
    assert inv.to_list()["_meta"]["hostvars"]["h1"]["ansible_password"] == "********"
    assert {"ansible_password", "ansible_become_pass", "ansible_ssh_pass"} <= SECRET_VARS


# --- output, as ansible-inventory prints it --------------------------------------------

PAIR_LIST = """\
{
    "_meta": {
        "hostvars": {
            "bastion": {
                "ansible_host": "203.0.113.10",
                "ansible_user": "admin",
                "ntp_server": "pool.ntp.org"
            },
            "dba.example.com": {
                "ansible_user": "deploy",
                "env": "production",
                "ntp_server": "ntp.eu.example.com",
                "pg_version": 16,
                "region": "eu-west"
            },
            "dbb.example.com": {
                "ansible_user": "deploy",
                "env": "production",
                "ntp_server": "ntp.eu.example.com",
                "pg_version": 16,
                "region": "eu-west"
            },
            "web-canary.example.com": {
                "ansible_port": 2222,
                "ansible_user": "deploy",
                "canary": true,
                "env": "production",
                "http_port": 8081,
                "ntp_server": "ntp.eu.example.com",
                "region": "eu-west"
            },
            "web01.example.com": {
                "ansible_user": "deploy",
                "env": "production",
                "http_port": 8080,
                "ntp_server": "ntp.eu.example.com",
                "region": "eu-west"
            },
            "web02.example.com": {
                "ansible_user": "deploy",
                "env": "production",
                "http_port": 8080,
                "ntp_server": "ntp.eu.example.com",
                "region": "eu-west"
            },
            "web03.example.com": {
                "ansible_user": "deploy",
                "env": "production",
                "http_port": 8080,
                "ntp_server": "ntp.eu.example.com",
                "region": "eu-west"
            }
        },
        "profile": "inventory_legacy"
    },
    "all": {
        "children": [
            "ungrouped",
            "prod"
        ]
    },
    "db": {
        "hosts": [
            "dba.example.com",
            "dbb.example.com"
        ]
    },
    "eu": {
        "children": [
            "web",
            "db"
        ]
    },
    "prod": {
        "children": [
            "eu"
        ]
    },
    "ungrouped": {
        "hosts": [
            "bastion"
        ]
    },
    "web": {
        "hosts": [
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "web-canary.example.com"
        ]
    }
}"""

PAIR_GRAPH = """\
@all:
  |--@ungrouped:
  |  |--bastion
  |--@prod:
  |  |--@eu:
  |  |  |--@web:
  |  |  |  |--web01.example.com
  |  |  |  |--web02.example.com
  |  |  |  |--web03.example.com
  |  |  |  |--web-canary.example.com
  |  |  |--@db:
  |  |  |  |--dba.example.com
  |  |  |  |--dbb.example.com"""

EU_GRAPH = """\
@eu:
  |--@web:
  |  |--web01.example.com
  |  |--web02.example.com
  |  |--web03.example.com
  |  |--web-canary.example.com
  |--@db:
  |  |--dba.example.com
  |  |--dbb.example.com"""

LAYERED_GRAPH_WITH_VARS = """\
@all:
  |--@ungrouped:
  |--@prod:
  |  |--@web:
  |  |  |--web1
  |  |  |  |--{from_all_file = True}
  |  |  |  |--{from_all_inline = True}
  |  |  |  |--{level = host_inline}
  |  |  |  |--{role = host_file}
  |  |  |  |--{stack = tuning}
  |  |  |  |--{tier = prod_file}
  |  |  |--web2
  |  |  |  |--{from_all_file = True}
  |  |  |  |--{from_all_inline = True}
  |  |  |  |--{level = all_file}
  |  |  |  |--{role = web_b}
  |  |  |  |--{stack = tuning}
  |  |  |  |--{tier = prod_file}
  |  |  |--{level = web_inline}
  |  |  |--{role = web_b}
  |  |  |--{stack = tuning}
  |  |  |--{tier = web_inline}
  |  |--@db:
  |  |  |--db1
  |  |  |  |--{ansible_become_password = ********}
  |  |  |  |--{ansible_password = ********}
  |  |  |  |--{from_all_file = True}
  |  |  |  |--{from_all_inline = True}
  |  |  |  |--{level = all_file}
  |  |  |  |--{slot = db_inline}
  |  |  |  |--{tier = prod_file}
  |  |  |--{ansible_group_priority = 10}
  |  |  |--{slot = db_inline}
  |  |--@backup:
  |  |  |--db1
  |  |  |  |--{ansible_become_password = ********}
  |  |  |  |--{ansible_password = ********}
  |  |  |  |--{from_all_file = True}
  |  |  |  |--{from_all_inline = True}
  |  |  |  |--{level = all_file}
  |  |  |  |--{slot = db_inline}
  |  |  |  |--{tier = prod_file}
  |  |  |--{slot = backup_inline}
  |  |--{level = prod_inline}
  |  |--{tier = prod_file}
  |--{from_all_file = True}
  |--{from_all_inline = True}
  |--{level = all_file}"""


@pytest.mark.parametrize("source", [PAIR_INI, PAIR_YAML])
def test_to_list_prints_like_ansible_inventory_list(source):
    assert json.dumps(load(source).to_list(), sort_keys=True, indent=4) == PAIR_LIST


@pytest.mark.parametrize("source", [PAIR_INI, PAIR_YAML])
def test_graph_prints_like_ansible_inventory_graph(source):
    inv = load(source)
    assert inv.graph() == PAIR_GRAPH
    assert inv.graph("eu") == EU_GRAPH


def test_graph_with_vars_prints_like_ansible_with_secrets_masked():
    inv = load(DATA / "layered" / "hosts.yml")
    assert inv.graph(with_vars=True) == LAYERED_GRAPH_WITH_VARS


# --- warnings Ansible would print -----------------------------------------------------


def test_what_ansible_skips_with_a_warning_is_kept_as_a_warning(tmp_path):
    write(
        tmp_path,
        {"h.yml": "web:\n  host:\n    web1:\n  hosts: {db: }\njunk: 3\ndb:\n  hosts: {db1: }\n"},
    )
    inv = load(tmp_path / "h.yml")
    assert inv.warnings == (
        f"{tmp_path / 'h.yml'}:2:3: web.host: skipping unexpected key 'host' in group 'web'; "
        "expected only hosts, children and vars",
        f"{tmp_path / 'h.yml'}:5:7: junk: skipping 'junk': a group must be a mapping with "
        "hosts, children or vars, got a number 3",
        "found both a group and a host named 'db'",
    )
    assert "junk" not in inv.groups


def test_the_example_inventory_for_users_loads_as_documented():
    inv = load(Path(__file__).parents[2] / "inventory" / "example.yml")
    assert inv.warnings == ()
    assert len(inv.select("web")) == 5
    assert inv.hosts["web04.example.com"].vars["env"] == "staging"  # priority 10 beats prod
    assert inv.hosts["web-canary.example.com"].vars["ansible_port"] == 2222
    assert inv.hosts["bastion.example.com"].groups == ("ungrouped",)
