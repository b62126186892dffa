"""The lab's templates and file trees, rendered into temp folders (no root, no hosts)."""

from __future__ import annotations

import stat
from pathlib import Path

import jinja2
import paramiko
import pytest

from opsfix.lab import files
from opsfix.lab.state import LabPaths


def test_nginx_conf_is_debians_with_both_include_lines() -> None:
    text = files.render("nginx/nginx.conf.j2")
    assert text.startswith("user www-data;\nworker_processes auto;\npid /run/nginx.pid;\n")
    assert "\tinclude /etc/nginx/conf.d/*.conf;\n\tinclude /etc/nginx/sites-enabled/*;\n" in text
    assert "{#" not in text and text.endswith("#}\n")  # the mail block stays commented out


def test_site_serves_the_web_root_as_a_single_page_app() -> None:
    text = files.render("nginx/site.conf.j2", web_root="/srv/app")
    assert "\troot /srv/app;\n" in text
    assert "try_files $uri $uri/ /index.html;" in text
    assert "listen 80 default_server;" in text and "listen [::]:80 default_server;" in text
    ipv4_only = files.render("nginx/site.conf.j2", web_root="/srv/app", listen_ipv6=False)
    assert "[::]" not in ipv4_only


def test_site_without_web_root_is_an_error_not_an_empty_root() -> None:
    with pytest.raises(jinja2.UndefinedError, match="web_root"):
        files.render("nginx/site.conf.j2")


def test_webapp_is_small_and_says_what_it_is() -> None:
    webapp = files.templates_dir() / "webapp"
    assert "opsfix practice app" in (webapp / "index.html").read_text().split("<body>")[1]
    assert {p.name for p in webapp.iterdir()} >= {"index.html", "app.js", "style.css"}
    assert sum(p.stat().st_size for p in webapp.iterdir()) < 16_384


@pytest.fixture
def fake_system_nginx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Debian-like /etc/nginx with a user's extra site, to be left out of the lab."""
    root = tmp_path / "etc-nginx"
    for folder in ("conf.d", "sites-available", "sites-enabled", "snippets", "modules-enabled"):
        (root / folder).mkdir(parents=True)
    (root / "mime.types").write_text("types { text/html html; }\n")
    (root / "snippets/fastcgi-php.conf").write_text("# snippet\n")
    (root / "sites-available/mine").write_text("server {}\n")
    (root / "sites-enabled/mine").symlink_to("/etc/nginx/sites-available/mine")
    (root / "conf.d/extra.conf").write_text("# extra\n")
    monkeypatch.setattr(files, "SYSTEM_NGINX", root)
    return root


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): f"-> {p.readlink()}" if p.is_symlink() else oct(p.stat().st_mode)
        for p in sorted(root.rglob("*"))
    }


def test_pristine_tree_keeps_debians_files_and_has_only_the_lab_site(
    fake_system_nginx: Path, tmp_path: Path
) -> None:
    paths = LabPaths(tmp_path / "lab")
    files.build_pristine(paths, listen_ipv6=False)
    nginx = paths.pristine / "nginx"
    assert tree(nginx) == {
        "conf.d": "0o40755",
        "mime.types": "0o100644",
        "modules-enabled": "0o40755",
        "nginx.conf": "0o100644",
        "sites-available": "0o40755",
        "sites-available/default": "0o100644",
        "sites-enabled": "0o40755",
        "sites-enabled/default": "-> /etc/nginx/sites-available/default",
        "snippets": "0o40755",
        "snippets/fastcgi-php.conf": "0o100644",
    }
    assert "root /var/www/html;" in (nginx / "sites-available/default").read_text()
    www = paths.pristine / "www"
    assert (www / "index.html").read_bytes() == (
        files.templates_dir() / "webapp/index.html"
    ).read_bytes()
    assert stat.S_IMODE(www.stat().st_mode) == 0o755


def test_pristine_tree_needs_nginx_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "SYSTEM_NGINX", tmp_path / "absent")
    with pytest.raises(files.LabError, match="install nginx"):
        files.build_pristine(LabPaths(tmp_path / "lab"), listen_ipv6=True)


def test_restore_tree_removes_additions_and_restores_changes(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    (pristine / "sub").mkdir(parents=True)
    (pristine / "sub/a.conf").write_text("good\n")
    (pristine / "link").symlink_to("sub/a.conf")
    target = tmp_path / "target"
    files.restore_tree(pristine, target)
    inode = target.stat().st_ino

    (target / "sub/a.conf").write_text("broken\n")
    (target / "sub/added.conf").write_text("new\n")
    (target / "link").unlink()
    (target / "dir").mkdir()
    files.restore_tree(pristine, target)

    assert tree(target) == tree(pristine)
    assert (target / "sub/a.conf").read_text() == "good\n"
    assert target.stat().st_ino == inode  # same folder: a bind mount of it still sees it


def test_generated_keys_are_private_and_load_in_paramiko(tmp_path: Path) -> None:
    line = files.generate_keypair(tmp_path / "id_ed25519", "opsfix-lab-test")
    assert stat.S_IMODE((tmp_path / "id_ed25519").stat().st_mode) == 0o600
    key = paramiko.Ed25519Key.from_private_key_file(str(tmp_path / "id_ed25519"))
    assert line == f"ssh-ed25519 {key.get_base64()} opsfix-lab-test"
    assert (tmp_path / "id_ed25519.pub").read_text() == line + "\n"
