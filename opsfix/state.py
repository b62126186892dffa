"""opsfix's local state: one SQLite database on the controller, never on a host.

Checks that judge change over time (the growth of /var) keep their samples here; run
history will live here too. Recording here changes no host, so `opsfix check` records.

Location: `$OPSFIX_STATE_DIR`, else `$XDG_STATE_HOME/opsfix`, else `~/.local/state/opsfix`;
the file is `opsfix.db`, created 0600 in a folder created 0700 (samples name hosts and
their folders). The schema carries its version: `open_store` applies every migration the
file lacks, in one transaction, and refuses a file written by a newer opsfix.

One connection serves every thread (checks are judged in the engine's worker threads),
guarded by a lock; other processes wait up to `BUSY_TIMEOUT` for SQLite's own lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opsfix.errors import OpsfixError

FILE_NAME = "opsfix.db"
BUSY_TIMEOUT = 10.0  # seconds another opsfix process may hold the database

# MIGRATIONS[i] takes the schema from version i to i + 1. Append, never edit: a file in
# the field may be at any earlier version.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # one row per measurement of a folder (e.g. /var) on a host, at the controller's time
        """CREATE TABLE growth_samples (
            id INTEGER PRIMARY KEY,
            host TEXT NOT NULL,
            path TEXT NOT NULL,
            taken_at REAL NOT NULL,
            total_bytes INTEGER NOT NULL,
            fs_size_bytes INTEGER NOT NULL,
            fs_avail_bytes INTEGER NOT NULL
        )""",
        "CREATE INDEX growth_samples_by_host ON growth_samples (host, path, taken_at)",
        # the sizes of the measured folder's largest subfolders in that measurement
        """CREATE TABLE growth_folders (
            sample_id INTEGER NOT NULL REFERENCES growth_samples (id) ON DELETE CASCADE,
            folder TEXT NOT NULL,
            bytes INTEGER NOT NULL,
            PRIMARY KEY (sample_id, folder)
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class StateError(OpsfixError):
    """The state database cannot be opened, or was written by a newer opsfix."""


@dataclass(frozen=True)
class GrowthSample:
    """One measurement: the folder's size, its filesystem's size and free space, subfolders."""

    host: str
    path: str
    taken_at: float  # Unix time on the controller's (injectable) clock
    total: int  # bytes
    fs_size: int
    fs_avail: int
    folders: Mapping[str, int] = field(default_factory=dict)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the database lives (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("OPSFIX_STATE_DIR"):
        return Path(env["OPSFIX_STATE_DIR"]).expanduser()
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]).expanduser() / "opsfix"
    return Path(env.get("HOME") or Path.home()).expanduser() / ".local" / "state" / "opsfix"


class Store:
    """The open database. Every method is safe to call from any thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            _create_private(path)
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open opsfix state {path}: {exc}") from None

    @property
    def version(self) -> int:
        with self._lock:
            return _version(self._db)

    def add_growth_sample(self, sample: GrowthSample) -> None:
        with self._lock, _transaction(self._db):
            cursor = self._db.execute(
                "INSERT INTO growth_samples (host, path, taken_at, total_bytes, fs_size_bytes,"
                " fs_avail_bytes) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    sample.host,
                    sample.path,
                    sample.taken_at,
                    sample.total,
                    sample.fs_size,
                    sample.fs_avail,
                ),
            )
            self._db.executemany(
                "INSERT INTO growth_folders (sample_id, folder, bytes) VALUES (?, ?, ?)",
                [(cursor.lastrowid, name, size) for name, size in sample.folders.items()],
            )

    def growth_sample_count(self, host: str, path: str) -> int:
        """How many samples of `path` the host has, over all time."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM growth_samples WHERE host = ? AND path = ?", (host, path)
            ).fetchone()
        return int(row[0])

    def growth_samples(
        self, host: str, path: str, since: float | None = None
    ) -> list[GrowthSample]:
        """The host's samples of `path` taken at or after `since`, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, taken_at, total_bytes, fs_size_bytes, fs_avail_bytes"
                " FROM growth_samples WHERE host = ? AND path = ? AND taken_at >= ?"
                " ORDER BY taken_at, id",
                (host, path, float("-inf") if since is None else since),
            ).fetchall()
            folders: dict[int, dict[str, int]] = {row[0]: {} for row in rows}
            for start in range(0, len(rows), 500):  # SQLite's limit on bound parameters
                ids = [row[0] for row in rows[start : start + 500]]
                marks = ",".join("?" * len(ids))
                for sample_id, name, size in self._db.execute(
                    "SELECT sample_id, folder, bytes FROM growth_folders"
                    f" WHERE sample_id IN ({marks})",
                    ids,
                ):
                    folders[sample_id][name] = size
        return [
            GrowthSample(host, path, taken, total, size, avail, folders[sample_id])
            for sample_id, taken, total, size, avail in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _migrate(self) -> None:
        with self._lock, _transaction(self._db, immediate=True):
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            current = _version(self._db)
            if current > SCHEMA_VERSION:
                raise StateError(
                    f"{self.path} has schema version {current}, newer than this opsfix knows "
                    f"({SCHEMA_VERSION}): upgrade opsfix, or set OPSFIX_STATE_DIR elsewhere"
                )
            for statements in MIGRATIONS[current:]:
                for statement in statements:
                    self._db.execute(statement)
            self._db.execute("DELETE FROM schema_version")
            self._db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))


def open_store(path: Path | None = None) -> Store:
    """Open (creating and migrating as needed) the database at `path` or the default place."""
    return Store(path or state_dir() / FILE_NAME)


def lazy_store(path: Path | None = None) -> Callable[[], Store]:
    """A callable that opens the store on first use and returns the same one after.

    Runs whose checks never ask for state never create the file.
    """
    lock = threading.Lock()
    opened: list[Store] = []

    def get() -> Store:
        with lock:
            if not opened:
                opened.append(open_store(path))
            return opened[0]

    return get


class _transaction:
    """BEGIN ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection, *, immediate: bool = False) -> None:
        self.db, self.begin = db, "BEGIN IMMEDIATE" if immediate else "BEGIN"

    def __enter__(self) -> None:
        self.db.execute(self.begin)

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind else "COMMIT")


def _version(db: sqlite3.Connection) -> int:
    try:
        row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.OperationalError:  # no such table: a new file
        return 0
    return int(row[0] or 0)


def _create_private(path: Path) -> None:
    """The folder (0700, when made here) and an empty 0600 file, before SQLite opens it."""
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    for folder in made:
        folder.chmod(0o700)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
