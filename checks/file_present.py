"""Healthy when every expected file under the web root is a regular file, not empty (with
`non_empty`), and has the expected sha256 where one is known: from `checksums`, or from
`manifest`, a release folder on the controller whose every file must be on the host. A
file with a known sha256 is judged by it alone, so an empty file in a release is fine.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from hashlib import sha256
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from opsfix.plugin import Check, CheckContext, CheckResult, ControllerPath, Params
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

# First each file's state by its index ("0 missing", "1 unreadable", "2 present"), then one
# `stat` for the sizes and one hash run for the sha256s of the present files, in that order:
# two processes however many files (a `wc` and a hash per file cost the host ten times more).
_LOOP = """r={root}; i=0
[ -d "$r" ] || {{ echo root=missing; exit 0; }}
cd "$r" || exit 1
set --
for f in {files}; do
  if [ ! -f "$f" ]; then echo "$i missing"; elif [ ! -r "$f" ]; then echo "$i unreadable"
  else echo "$i present"; set -- "$@" "$f"; fi; i=$((i+1))
done
[ $# -gt 0 ] || exit 0
stat -L -c %s -- "$@" || exit 1
{hash}"""


def _folder(folder: Path) -> Path:
    if not folder.is_dir():
        raise ValueError(f"manifest folder {str(folder)!r} not found (or not a folder)")
    return folder


Sha256 = Annotated[str, StringConstraints(to_lower=True, pattern=r"^[0-9a-fA-F]{64}$")]


class FilePresentParams(Params):
    root: str = Field(description="web root on the host, e.g. /var/www/html")
    files: list[str] = Field(["index.html"], description="under root; default: manifest")
    non_empty: bool = Field(True, description="an empty file fails (unless its sha256 is given)")
    manifest: Annotated[ControllerPath, AfterValidator(_folder)] | None = Field(
        None, description="release folder on the controller: all its files, same sha256"
    )
    checksums: dict[str, Sha256] = Field({}, description="path under root -> sha256")


class FilePresent(Check[FilePresentParams]):
    def __init__(self, params: FilePresentParams, context: CheckContext | None = None) -> None:
        super().__init__(params, context)
        release = _manifest(params.manifest) if params.manifest else {}
        files = params.files if "files" in params.model_fields_set or not release else release
        self.expected = {**release, **params.checksums}
        self.files = list(dict.fromkeys([*files, *params.checksums]))

    def commands(self) -> list[str]:
        files = " ".join(quote(f) for f in self.files)
        hashing = 'sha256sum -- "$@" || true' if self.expected else ""
        return [_LOOP.format(root=quote(self.params.root), hash=hashing, files=files)]

    def evaluate(self, results: Sequence[CommandResult]) -> CheckResult:
        result = results[0]
        if result.stdout.strip() == "root=missing":
            return CheckResult.failed(f"{self.params.root} is missing", root=self.params.root)
        lines = [line.split() for line in result.stdout.splitlines()]
        states, rest = lines[: len(self.files)], lines[len(self.files) :]
        count = sum(1 for fields in states if fields[1:] == ["present"])
        sizes, hashes = rest[:count], [h[0].lstrip("\\") for h in rest[count:] if h]
        if not result.ok or len(states) != len(self.files) or len(sizes) != count:
            return CheckResult.error("could not list files", stderr=result.stderr.strip()[-300:])
        if self.expected and len(hashes) == count:  # else: no sha256sum there, or it failed
            sizes = [[*size, sha] for size, sha in zip(sizes, hashes, strict=True)]
        lines = [fields + (sizes.pop(0) if fields[1:] == ["present"] else []) for fields in states]
        found: dict[str, list[str]] = defaultdict(list)
        for fields in lines:
            name = self.files[int(fields[0])]
            found[_state(fields, self.expected.get(name), self.params.non_empty)].append(name)
        present, root = found.pop("present", []), self.params.root
        facts = {state: names[:20] for state, names in found.items()}
        summary = ", ".join(f"{len(names)} {state}" for state, names in found.items())
        if "unreadable" in found:
            why = (result.stderr.strip().splitlines() or [""])[-1]
            return CheckResult.error(f"cannot read: {summary}", root=root, stderr=why, **facts)
        if found:
            return CheckResult.failed(f"{root}: {summary}", root=root, **facts)
        return CheckResult.passed(f"{len(present)} file(s) present under {root}", root=root)


def _state(fields: list[str], want: str | None, non_empty: bool) -> str:
    """present, missing, empty, mismatched or unreadable (no sha256sum on the host)."""
    if fields[1] != "present" or not want:
        return "empty" if non_empty and fields[1:3] == ["present", "0"] else fields[1]
    return "unreadable" if len(fields) < 4 else "present" if fields[3] == want else "mismatched"


def _manifest(folder: Path) -> dict[str, str]:
    """Every regular file under the release folder -> its sha256.

    Hashed once per run, not once per host: kept while no file's size or mtime changes.
    """
    files = sorted(f for f in folder.rglob("*") if f.is_file())
    stamp = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    return dict(_hashed(folder, stamp))


@functools.lru_cache(maxsize=16)
def _hashed(folder: Path, stamp: tuple[tuple[str, int, int], ...]) -> dict[str, str]:
    files = [Path(name) for name, _, _ in stamp]
    return {f.relative_to(folder).as_posix(): sha256(f.read_bytes()).hexdigest() for f in files}
