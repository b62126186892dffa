"""nginx_config: `nginx -t` verdicts on real nginx 1.22 output, and the real command in dash."""

from __future__ import annotations

import pytest

from opsfix.checks.nginx_config import NginxConfig

from .helpers import assert_harmless, hostile, judge, make
from .throwaway import free_port, run_local, write_tree

CAPTURED = "/tmp/opsfix-capture/nginx"


def test_good_config_passes():
    verdict = judge(NginxConfig, "ok")
    assert verdict.status == "passed"
    assert verdict.evidence == {}


def test_warnings_do_not_fail_but_are_kept():
    verdict = judge(NginxConfig, "ok_with_warning")
    assert verdict.status == "passed"
    assert verdict.evidence["warnings"] == [
        'conflicting server name "shop" on 127.0.0.1:18080, ignored'
    ]


def test_syntax_error_names_file_and_line():
    verdict = judge(NginxConfig, "syntax_error")
    assert verdict.status == "failed"
    assert verdict.evidence == {
        "message": 'directive "index" is not terminated by ";"',
        "file": f"{CAPTURED}/sites-enabled/default",
        "line": 6,
    }


def test_unknown_directive():
    verdict = judge(NginxConfig, "unknown_directive")
    assert verdict.status == "failed"
    assert verdict.evidence["message"] == 'unknown directive "gzipp"'
    assert verdict.evidence["file"] == f"{CAPTURED}/conf.d/app.conf"
    assert verdict.evidence["line"] == 1


def test_broken_include_names_the_missing_file_and_where_it_is_included():
    verdict = judge(NginxConfig, "broken_include")
    assert verdict.status == "failed"
    assert verdict.evidence["cannot_open"] == f"{CAPTURED}/snippets/missing.conf"
    assert verdict.evidence["file"] == f"{CAPTURED}/conf.d/app.conf"
    assert "dangling_symlinks" not in verdict.evidence


def test_dangling_sites_enabled_symlink_is_named_twice():
    verdict = judge(NginxConfig, "dangling_symlink")
    assert verdict.status == "failed"
    assert verdict.evidence["cannot_open"] == f"{CAPTURED}/sites-enabled/shop"
    assert verdict.evidence["file"] == f"{CAPTURED}/nginx.conf"
    assert verdict.evidence["line"] == 16
    assert verdict.evidence["dangling_symlinks"] == [f"{CAPTURED}/sites-enabled/shop"]


def test_missing_main_config_fails_without_a_line():
    verdict = judge(NginxConfig, "missing_config")
    assert verdict.status == "failed"
    assert verdict.evidence["cannot_open"] == "/tmp/opsfix-capture/nope.conf"
    assert "line" not in verdict.evidence


def test_permission_denied_is_could_not_tell():
    verdict = judge(NginxConfig, "not_root")
    assert verdict.status == "error"
    assert "become" in verdict.summary


def test_missing_binary_is_could_not_tell():
    verdict = judge(NginxConfig, "no_binary")
    assert verdict.status == "error"
    assert "not found" in verdict.evidence["output"]


@pytest.mark.parametrize("config, folder", [(None, "/etc/nginx"), ("/srv/ng/main.conf", "/srv/ng")])
def test_symlinks_are_looked_for_beside_the_config(config, folder):
    check = make(NginxConfig, config=config)
    assert check.commands()[1] == f"find {folder} -xtype l"


def test_hostile_values_stay_quoted(tmp_path):
    marker, values = hostile(tmp_path)
    check = make(NginxConfig, binary=values[0], config=f"/tmp/{values[1]}/nginx.conf")
    assert_harmless(check, marker, values[0], f"/tmp/{values[1]}/nginx.conf", f"/tmp/{values[1]}")


def test_real_commands_in_dash(live_nginx, tmp_path):
    check = make(NginxConfig, config=str(live_nginx.conf))
    assert check.evaluate(run_local(check.commands())).status == "passed"
    site = write_tree(tmp_path / "broken", free_port())
    (site.base / "nginx/sites-enabled/shop").symlink_to(site.base / "nginx/sites-available/shop")
    check = make(NginxConfig, config=str(site.conf))
    verdict = check.evaluate(run_local(check.commands()))
    assert verdict.status == "failed"
    assert verdict.evidence["dangling_symlinks"] == [str(site.base / "nginx/sites-enabled/shop")]
