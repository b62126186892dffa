"""The content a cluster run ships to its workers: one bundle, named by its sha256.

A bundle is the playbook, the plugin folders it loads (its own folder's `checks/` and
`remediations/`, and every `--plugins` folder), its `templates/` and its verify suites
with the `conftest.py` files pytest would read beside them. Paths are kept relative to
the nearest folder holding them all, so a playbook's `../tests/host/x.py` still resolves.
Its canonical JSON form (sorted keys, file bodies base64) is hashed; the hash names it
and is what the task's signature covers (opsfix.cluster.signing).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from opsfix.errors import OptionsError

FORMAT = "opsfix-bundle/1"
MAX_BYTES = 16 * 1024 * 1024  # what a broker message may reasonably carry
MAX_FILES = 2000
PLUGIN_KINDS = ("checks", "remediations")


class TaskRefused(Exception):
    """A task or its bundle that cannot be trusted: it is refused, nothing runs."""


@dataclass(frozen=True)
class Bundle:
    files: Mapping[str, bytes]  # posix path relative to the bundle's root -> content
    playbook: str  # the playbook's path among `files`
    plugin_dirs: tuple[str, ...]  # --plugins folders, relative to the root

    def doc(self) -> dict[str, Any]:
        """The JSON document that travels with each task."""
        return {
            "format": FORMAT,
            "playbook": self.playbook,
            "plugin_dirs": list(self.plugin_dirs),
            "files": {p: _b64(b) for p, b in sorted(self.files.items())},
        }

    @property
    def sha256(self) -> str:
        return digest(self.doc())


def _b64(body: bytes) -> str:
    return base64.b64encode(body).decode("ascii")


def digest(doc: Mapping[str, Any]) -> str:
    """sha256 of the canonical form of a bundle document."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def collect(
    playbook: Path,
    verify: Iterable[Path],
    plugin_dirs: Iterable[Path],
    controller_paths: Iterable[Path] = (),
) -> Bundle:
    """The bundle of a playbook that has loaded (so every path named exists), with the
    files and folders its parameters name relative to it (`controller_paths`)."""
    playbook = playbook.resolve()
    suites = [Path(s).resolve() for s in verify]
    extra = [Path(d).resolve() for d in plugin_dirs]
    named = [Path(p).resolve() for p in controller_paths]
    folders = [playbook.parent, *extra]
    root = Path(os.path.commonpath([playbook.parent, *extra, *(s.parent for s in suites), *named]))
    wanted: set[Path] = {playbook, *suites}
    for path in named:
        wanted.update(_files_under(path))
    for folder in folders:
        for kind in PLUGIN_KINDS:
            wanted.update(p for p in (folder / kind).glob("*.py") if p.is_file())
    wanted.update(p for p in (playbook.parent / "templates").rglob("*") if p.is_file())
    for suite in suites:
        wanted.update(_conftests(suite.parent, root))
    files = {_relative(p, root): _read(p) for p in sorted(wanted)}
    _check_size(files)
    return Bundle(files, _relative(playbook, root), tuple(_relative(d, root) for d in extra))


def _files_under(path: Path) -> list[Path]:
    """A file, or a folder's regular files (links are not followed out of it)."""
    if path.is_file():
        return [path]
    found = []
    for folder, _, names in os.walk(path):
        found += [p for p in (Path(folder, n) for n in names) if p.is_file() and not p.is_symlink()]
    return found


def _conftests(folder: Path, root: Path) -> list[Path]:
    found = []
    while True:
        candidate = folder / "conftest.py"
        if candidate.is_file():
            found.append(candidate)
        if folder == root or root not in folder.parents:
            return found
        folder = folder.parent


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path != root else "."


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise OptionsError(f"--cluster: cannot read {path} for the bundle: {exc}") from None


def _check_size(files: Mapping[str, bytes]) -> None:
    total = sum(len(b) for b in files.values())
    if len(files) > MAX_FILES or total > MAX_BYTES:
        raise OptionsError(
            f"--cluster: the bundle holds {len(files)} file(s), {total} bytes; at most "
            f"{MAX_FILES} files and {MAX_BYTES} bytes travel with a task"
        )


def load(doc: Any, expected_sha256: str) -> Bundle:
    """A bundle from its task document, refused unless its hash is `expected_sha256`
    (which the signature covers) and every path stays inside the bundle."""
    if not isinstance(doc, Mapping) or doc.get("format") != FORMAT:
        raise TaskRefused("not an opsfix bundle of a format this worker knows")
    if digest(doc) != expected_sha256:
        raise TaskRefused(f"content does not match its hash {expected_sha256[:12]}")
    try:
        files = {_safe(p): base64.b64decode(b, validate=True) for p, b in doc["files"].items()}
        plugin_dirs = tuple(_safe(p) for p in doc["plugin_dirs"])
        playbook = _safe(doc["playbook"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TaskRefused(f"malformed bundle: {exc}") from None
    if playbook not in files:
        raise TaskRefused("the bundle does not hold its playbook")
    _check_size(files)
    return Bundle(files, playbook, plugin_dirs)


def _safe(path: Any) -> str:
    """A relative path that stays inside the bundle, or TaskRefused."""
    if not isinstance(path, str) or not path or "\0" in path:
        raise TaskRefused(f"bad path in bundle: {path!r}")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        raise TaskRefused(f"path leaves the bundle: {path!r}")
    return pure.as_posix()


def unpack(bundle: Bundle, cache: Path) -> Path:
    """The bundle's files under `cache/<sha256>/` (written once, then reused); its root.

    Written to a temporary folder first and renamed into place, so a worker killed while
    unpacking never leaves a half bundle that a later task would trust."""
    sha = bundle.sha256
    root = cache / sha
    if root.is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = cache / f".{sha}.{os.getpid()}"
    _remove(staging)  # left by a process of the same pid that was killed while unpacking
    for rel, body in bundle.files.items():
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(target, "xb") as out:  # never through a link planted beforehand
            out.write(body)
    for rel in bundle.plugin_dirs:
        (staging / rel).mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.rename(staging, root)
    except OSError:
        if not root.is_dir():
            raise
        _remove(staging)  # another process of this worker was first: same content
    return root


def _remove(folder: Path) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
