"""The files a lab writes: keys, the pristine nginx tree and web root, each host's folders.

Modes are set explicitly rather than left to the umask: nginx workers run as www-data
and must read the web root, and overlay upper dirs give their mode to /etc and /var.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
from pathlib import Path
from typing import Any

import jinja2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from opsfix.errors import LabError
from opsfix.lab.plan import WEB_ROOT, HostPlan, sshd_config_text
from opsfix.lab.state import LabPaths

SYSTEM_NGINX = Path("/etc/nginx")
RUN_DIR = "/run/opsfix-lab"  # inside a host: its sshd config and keys
SITE_PATH = "sites-available/default"
_SITE_DIRS = ("conf.d", "sites-available", "sites-enabled")  # the lab provides their content


def templates_dir() -> Path:
    return Path(str(importlib.resources.files("opsfix.templates")))


def render(template: str, **variables: Any) -> str:
    """Render one of opsfix's templates; an undefined variable is an error, not ''."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(**variables)


def write_private(path: Path, data: bytes) -> None:
    """Create a file readable by root only (ssh refuses keys others can read)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def generate_keypair(private_path: Path, comment: str) -> str:
    """Write an OpenSSH ed25519 private key (0600) and .pub; return the public key line."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    write_private(private_path, private)
    Path(f"{private_path}.pub").write_text(line + "\n")
    return line


def build_pristine(paths: LabPaths, *, listen_ipv6: bool, nginx_source: Path | None = None) -> None:
    """Render the initial /etc/nginx and web root every host starts from and resets to.

    `nginx_source` is the Debian /etc/nginx the hosts run: the controller's for namespace
    hosts (the default), the booted tree's for systemd hosts.
    """
    nginx_source = nginx_source or SYSTEM_NGINX
    if not (nginx_source / "mime.types").is_file():
        raise LabError(f"{nginx_source}/mime.types not found: install nginx (apt install nginx)")
    nginx = paths.pristine / "nginx"
    shutil.copytree(nginx_source, nginx, symlinks=True, ignore=_skip_site_contents)
    (nginx / "nginx.conf").write_text(render("nginx/nginx.conf.j2"))
    site = render("nginx/site.conf.j2", web_root=WEB_ROOT, listen_ipv6=listen_ipv6)
    (nginx / SITE_PATH).write_text(site)
    (nginx / "sites-enabled/default").symlink_to(f"/etc/nginx/{SITE_PATH}")  # as Debian links
    _make_readable(nginx)
    www = paths.pristine / "www"
    shutil.copytree(templates_dir() / "webapp", www)
    _make_readable(www)


def _skip_site_contents(directory: str, names: list[str]) -> list[str]:
    return names if Path(directory).name in _SITE_DIRS else []


def _make_readable(tree: Path) -> None:
    """Directories 0755 and files 0644, as Debian ships /etc/nginx and /var/www/html."""
    tree.chmod(0o755)
    for parent, dirs, files in os.walk(tree):
        for name in dirs:
            Path(parent, name).chmod(0o755)
        for name in files:
            path = Path(parent, name)
            if not path.is_symlink():
                path.chmod(0o644)


def restore_tree(pristine: Path, target: Path) -> None:
    """Make `target` hold exactly `pristine`'s content, keeping `target` itself.

    `target` is the source of a bind mount inside a host, so it is emptied and refilled
    rather than replaced: a new directory would not be the one the host sees.
    """
    target.mkdir(exist_ok=True)
    for entry in list(target.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.copytree(pristine, target, symlinks=True, dirs_exist_ok=True)
    shutil.copystat(pristine, target)
    os.chown(target, 0, 0)


def prepare_host(paths: LabPaths, host: HostPlan, client_public_key: str) -> str:
    """Create one host's folders, copies and sshd files; return its public host key line."""
    root = paths.host(host.name)
    for name in ("etc-upper", "etc-work", "var-upper", "var-work", "sshd"):
        (root / name).mkdir(parents=True)
        (root / name).chmod(0o755)
    restore_tree(paths.pristine / "nginx", root / "nginx")
    restore_tree(paths.pristine / "www", root / "www")
    sshd = root / "sshd"
    (sshd / "sshd_config").write_text(sshd_config_text(host, RUN_DIR))
    (sshd / "authorized_keys").write_text(client_public_key + "\n")
    return generate_keypair(sshd / "ssh_host_ed25519_key", f"root@{host.name}")
