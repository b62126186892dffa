"""Each run's incident report as a file (`reports: {dir: ..., url: ...}` in the rules):
the operation log `opsfix report RUN_ID` prints, written where a web server or a shared
folder can serve it, so a notification can link to it.

Written whole to a temporary file and renamed over `RUN_ID.md`, 0640 in a 0750 folder:
a reader never sees half a report. Secrets were masked when the run was recorded.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ReportFiles"]


@dataclass(frozen=True)
class ReportFiles:
    folder: Path
    url: str | None = None  # with {run_id}

    def write(self, doc: Mapping[str, Any], digest: str, emit: Callable[..., None]) -> str | None:
        """The report's address (the URL, else the file's path), or None after logging."""
        from opsfix.evidence.reports import markdown, oplog

        run_id = str(doc["run_id"])
        try:
            text = markdown.render(oplog.build(doc, digest))
            self.folder.mkdir(mode=0o750, parents=True, exist_ok=True)
            path = self.folder / f"{run_id}.md"
            _write_atomically(path, text)
        except (OSError, ValueError, KeyError) as exc:
            emit("report_failed", run_id=run_id, error=str(exc)[:300])
            return None
        return self.url.format(run_id=run_id) if self.url else str(path)


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
