"""opsfix's local state: one SQLite database on the controller, never on a host.

Checks that judge change over time (the growth of /var) keep their samples here, and
every run is recorded here (run history: see opsfix.evidence.history). Recording here changes no
host, so `opsfix check` records too.

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
from typing import NamedTuple

from opsfix.errors import OpsfixError
from opsfix.evidence.statedir import open_private, private_folder, refuse_links
from opsfix.evidence.statedir import state_dir as state_dir  # where it always was

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
    (
        # run history: one row per run; `bundle` is the whole run as canonical JSON, secrets
        # masked (the evidence bundle, whose sha256 reports quote); the tables after it
        # repeat what queries need: hosts, steps, remediations
        """CREATE TABLE history_runs (
            id TEXT PRIMARY KEY,
            playbook TEXT NOT NULL,
            playbook_path TEXT NOT NULL,
            mode TEXT NOT NULL,
            user TEXT NOT NULL,
            started REAL NOT NULL,
            finished REAL NOT NULL,
            exit_code INTEGER NOT NULL,
            options TEXT NOT NULL,
            bundle TEXT NOT NULL,
            bundle_sha256 TEXT NOT NULL
        )""",
        "CREATE INDEX history_runs_by_start ON history_runs (started)",
        "CREATE INDEX history_runs_by_playbook ON history_runs (playbook_path, started)",
        """CREATE TABLE history_hosts (
            run_id TEXT NOT NULL REFERENCES history_runs (id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            host TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            duration REAL NOT NULL,
            PRIMARY KEY (run_id, position)
        ) WITHOUT ROWID""",
        "CREATE INDEX history_hosts_by_host ON history_hosts (host)",
        """CREATE TABLE history_steps (
            run_id TEXT NOT NULL REFERENCES history_runs (id) ON DELETE CASCADE,
            host TEXT NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            check_name TEXT NOT NULL,
            before_status TEXT NOT NULL,
            after_status TEXT,
            PRIMARY KEY (run_id, host, position)
        ) WITHOUT ROWID""",
        """CREATE TABLE history_remediations (
            run_id TEXT NOT NULL REFERENCES history_runs (id) ON DELETE CASCADE,
            host TEXT NOT NULL,
            step_position INTEGER NOT NULL,
            position INTEGER NOT NULL,
            step TEXT NOT NULL,
            check_name TEXT NOT NULL,
            remediation TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT NOT NULL,
            PRIMARY KEY (run_id, host, step_position, position)
        ) WITHOUT ROWID""",
        "CREATE INDEX history_remediations_by_host ON history_remediations (host, status)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
ACTED = ("applied", "rolled_back", "partial")  # remediation statuses that changed a host


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


class HostRow(NamedTuple):
    host: str
    status: str
    reason: str
    duration: float


class StepRow(NamedTuple):
    host: str
    position: int
    name: str  # the step's label in the playbook
    check_name: str  # the check plugin
    before_status: str
    after_status: str | None


class RemediationRow(NamedTuple):
    host: str
    step_position: int
    position: int
    step: str
    check_name: str
    remediation: str
    status: str
    reason: str


@dataclass(frozen=True)
class RunRecord:
    """One finished run as history keeps it (opsfix.evidence.history builds it from a RunReport)."""

    id: str
    playbook: str  # the playbook's name
    playbook_path: str  # absolute, resolved
    mode: str
    user: str  # user@controller
    started: float
    finished: float
    exit_code: int
    options: str  # JSON, no secrets
    bundle: str  # the run as canonical JSON, secrets masked
    bundle_sha256: str
    hosts: tuple[HostRow, ...] = ()
    steps: tuple[StepRow, ...] = ()
    remediations: tuple[RemediationRow, ...] = ()


@dataclass(frozen=True)
class RunSummary:
    """A line of `opsfix history`: one run, its hosts counted by status."""

    id: str
    playbook: str
    playbook_path: str
    mode: str
    user: str
    started: float
    finished: float
    exit_code: int
    bundle_sha256: str
    hosts: Mapping[str, int] = field(default_factory=dict)


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

    def growth_hosts(self, path: str) -> list[str]:
        """The hosts that have samples of `path`, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT host FROM growth_samples WHERE path = ? ORDER BY host", (path,)
            ).fetchall()
        return [row[0] for row in rows]

    # -- run history -------------------------------------------------------------------

    def add_run(self, run: RunRecord) -> None:
        """Record a finished run with its hosts, steps and remediations, all or nothing."""
        with self._lock, _transaction(self._db):
            self._db.execute(
                "INSERT INTO history_runs (id, playbook, playbook_path, mode, user, started,"
                " finished, exit_code, options, bundle, bundle_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    run.playbook,
                    run.playbook_path,
                    run.mode,
                    run.user,
                    run.started,
                    run.finished,
                    run.exit_code,
                    run.options,
                    run.bundle,
                    run.bundle_sha256,
                ),
            )
            self._db.executemany(
                "INSERT INTO history_hosts VALUES (?, ?, ?, ?, ?, ?)",
                [(run.id, i, *row) for i, row in enumerate(run.hosts)],
            )
            self._db.executemany(
                "INSERT INTO history_steps VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run.id, *row) for row in run.steps],
            )
            self._db.executemany(
                "INSERT INTO history_remediations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run.id, *row) for row in run.remediations],
            )

    def runs(
        self, *, host: str | None = None, playbook: str | None = None, limit: int = 20
    ) -> list[RunSummary]:
        """Recorded runs, newest first: those that targeted `host`, of `playbook` (its name
        or its absolute path), at most `limit` (all when 0)."""
        where, args = [], []
        if host is not None:
            where.append("id IN (SELECT run_id FROM history_hosts WHERE host = ?)")
            args.append(host)
        if playbook is not None:
            where.append("(playbook = ? OR playbook_path = ?)")
            args += [playbook, playbook]
        sql = (
            "SELECT id, playbook, playbook_path, mode, user, started, finished, exit_code,"
            " bundle_sha256 FROM history_runs"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY started DESC, rowid DESC"
            + (" LIMIT ?" if limit > 0 else "")
        )
        with self._lock:
            rows = self._db.execute(sql, [*args, limit] if limit > 0 else args).fetchall()
            counts: dict[str, dict[str, int]] = {row[0]: {} for row in rows}
            for start in range(0, len(rows), 500):
                ids = [row[0] for row in rows[start : start + 500]]
                for run_id, status, n in self._db.execute(
                    "SELECT run_id, status, COUNT(*) FROM history_hosts"
                    f" WHERE run_id IN ({','.join('?' * len(ids))}) GROUP BY run_id, status",
                    ids,
                ):
                    counts[run_id][status] = n
        return [
            RunSummary(rid, name, path, mode, user, started, finished, code, sha, counts[rid])
            for rid, name, path, mode, user, started, finished, code, sha in rows
        ]

    def run_ids(self, prefix: str = "") -> list[str]:
        """Ids of recorded runs that start with `prefix`, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM history_runs WHERE substr(id, 1, ?) = ?"
                " ORDER BY started DESC, rowid DESC",
                (len(prefix), prefix),
            ).fetchall()
        return [row[0] for row in rows]

    def run_bundle(self, run_id: str) -> str | None:
        """The run's evidence bundle (canonical JSON) exactly as recorded, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT bundle FROM history_runs WHERE id = ?", (run_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def remediation_count(self, host: str, check: str, since: float) -> int:
        """How many remediations acted (applied, rolled_back or partial) on `host` for the
        step(s) of `check`, in runs that finished at or after `since` (Unix time).

        `check` matches a step by its name in the playbook or by its check plugin's name.
        Runs of every playbook count; dry runs and checks never act, so never count.
        """
        marks = ",".join("?" * len(ACTED))
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM history_remediations r"
                " JOIN history_runs h ON h.id = r.run_id"
                " WHERE r.host = ? AND (r.step = ? OR r.check_name = ?)"
                f" AND r.status IN ({marks}) AND h.finished >= ?",
                (host, check, check, *ACTED, since),
            ).fetchone()
        return int(row[0])

    def last_run(self, playbook: str) -> list[tuple[str, str]] | None:
        """(host, status) of each host of the most recent recorded run of the playbook at
        path `playbook` (resolved against the current folder), in the run's host order;
        None when no run of it was recorded. Every mode counts (apply, dry run, check)."""
        path = str(Path(playbook).resolve())
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM history_runs WHERE playbook_path = ?"
                " ORDER BY started DESC, rowid DESC LIMIT 1",
                (path,),
            ).fetchone()
            if row is None:
                return None
            hosts = self._db.execute(
                "SELECT host, status FROM history_hosts WHERE run_id = ? ORDER BY position",
                (row[0],),
            ).fetchall()
        return [(host, status) for host, status in hosts]

    def remediation_totals(self, playbook_path: str) -> dict[tuple[str, str, str], int]:
        """Remediations of every recorded run of a playbook, counted by (host, remediation,
        status): what the metrics file exposes as a counter. Dry runs are left out: what
        they would have changed was never done."""
        with self._lock:
            rows = self._db.execute(
                "SELECT r.host, r.remediation, r.status, COUNT(*) FROM history_remediations r"
                " JOIN history_runs h ON h.id = r.run_id WHERE h.playbook_path = ?"
                " AND h.mode != 'dry-run' AND r.status NOT IN ('would_change', 'cannot_tell')"
                " GROUP BY r.host, r.remediation, r.status",
                (playbook_path,),
            ).fetchall()
        return {(host, rem, status): int(n) for host, rem, status, n in rows}

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
    """The folder (0700, ours alone: opsfix.evidence.statedir) and an empty 0600 file, before SQLite
    opens it; neither the file nor SQLite's journal may be a planted link."""
    private_folder(path.parent)
    os.close(open_private(path, os.O_CREAT | os.O_RDWR, 0o600))
    refuse_links(*(path.with_name(path.name + end) for end in ("-journal", "-wal", "-shm")))
