"""Templates are read only from inside their folders: a link out (to a controller file)
is refused with its place, never rendered, diffed or staged."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsfix.cli import main
from opsfix.errors import VariableError
from opsfix.playbook.templating import TemplateEngine


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("controller secret\n")
    templates = tmp_path / "pb" / "templates"
    (templates / "sub").mkdir(parents=True)
    (templates / "site.conf").write_text("server {{ name }};\n")
    (templates / "inside.conf").symlink_to("site.conf")
    (templates / "out.conf").symlink_to(tmp_path / "secret.txt")
    (templates / "outdir").symlink_to(tmp_path)
    return templates


def test_a_link_inside_the_folder_is_read(folder: Path) -> None:
    engine = TemplateEngine([folder])
    assert engine.render_file("inside.conf", {"name": "a"}) == "server a;\n"


@pytest.mark.parametrize(
    ("name", "target"), [("out.conf", "secret.txt"), ("outdir/secret.txt", "secret.txt")]
)
def test_a_link_out_of_the_folder_is_refused(folder: Path, name: str, target: str) -> None:
    engine = TemplateEngine([folder])
    real = folder.parent.parent / target
    message = f"{folder / name} is a link out of its folder {folder} (to {real}): refused"
    with pytest.raises(ValueError) as found:
        engine.has_template(name)
    assert str(found.value) == f"template {name!r}: {message}"
    with pytest.raises(VariableError) as rendered:
        engine.render_file(name, {})
    assert str(rendered.value) == f"template {name!r}: template error: {message}"


def test_an_include_of_a_link_out_is_refused(folder: Path) -> None:
    (folder / "main.conf").write_text("{% include 'out.conf' %}")
    with pytest.raises(VariableError) as found:
        TemplateEngine([folder]).render_file("main.conf", {})
    assert "out.conf is a link out of its folder" in str(found.value)
    assert "controller secret" not in str(found.value)


def test_a_playbook_naming_a_link_out_exits_4_at_its_line(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = folder.parent / "site.yml"
    book.write_text(
        "hosts: web\nchecks:\n  - check: nginx_config\n    remediate:\n"
        "      - remediation: nginx_restore_config\n"
        "        with: {source: template, files: {nginx.conf: out.conf}}\n"
    )
    inventory = folder.parent / "inv.yml"
    inventory.write_text("web:\n  hosts:\n    web1: {ansible_host: 127.0.0.9}\n")
    assert main(["apply", "--check", str(book), "-i", str(inventory)]) == 4
    err = capsys.readouterr().err
    assert err.startswith(
        f"ERROR: {book}:6:54: checks[0].remediate[0].with.files.nginx.conf: Value error, "
        f"template 'out.conf': {folder / 'out.conf'} is a link out of its folder"
    ), err
    assert "controller secret" not in err
