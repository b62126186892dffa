"""Where a lab keeps its files, and the JSON record that lets a new process find it again.

`up` writes the record before it creates anything, so `down` can always undo a partial
`up`; the record names every kernel object the lab made and the PID of each host.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from opsfix.errors import LabError
from opsfix.lab.plan import LabPlan, plan_lab

DEFAULT_STATE_DIR = Path("/var/lib/opsfix-lab")
STATE_VERSION = 1


def resolve_state_dir(state_dir: Path | str | None) -> Path:
    """The explicit dir, else `$OPSFIX_LAB_DIR`, else /var/lib/opsfix-lab (absolute)."""
    chosen = state_dir if state_dir is not None else os.environ.get("OPSFIX_LAB_DIR")
    return Path(chosen or DEFAULT_STATE_DIR).expanduser().absolute()


@dataclass(frozen=True)
class LabPaths:
    """Every path inside one lab's state dir."""

    root: Path

    @property
    def record(self) -> Path:
        return self.root / "lab.json"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yml"

    @property
    def private_key(self) -> Path:
        return self.root / "id_ed25519"

    @property
    def public_key(self) -> Path:
        return self.root / "id_ed25519.pub"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def pristine(self) -> Path:
        """The initial /etc/nginx and web root that `reset` copies back."""
        return self.root / "pristine"

    def host(self, name: str) -> Path:
        return self.root / "hosts" / name


@dataclass
class LabRecord:
    """The lab as `up` built it: its plan's inputs and each host's namespace PID 1."""

    name: str
    subnet: str
    count: int
    pids: dict[str, int] = field(default_factory=dict)
    kind: str = "namespace"  # or "systemd"; records written before kinds existed are namespace
    version: int = STATE_VERSION

    @property
    def plan(self) -> LabPlan:
        return plan_lab(self.count, self.name, self.subnet)

    def save(self, paths: LabPaths) -> None:
        """Write atomically, so a crash never leaves half a record."""
        staged = paths.record.with_suffix(".json.tmp")
        staged.write_text(json.dumps(asdict(self), indent=2) + "\n")
        staged.replace(paths.record)

    @classmethod
    def load(cls, paths: LabPaths) -> LabRecord:
        try:
            data = json.loads(paths.record.read_text())
        except FileNotFoundError:
            raise LabError(f"{paths.root}: no lab here (run `opsfix lab up` first)") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"{paths.record}: unreadable lab record: {exc}") from None
        if data.get("version") != STATE_VERSION:
            raise LabError(f"{paths.record}: unknown record version {data.get('version')!r}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise LabError(f"{paths.record}: malformed lab record: {exc}") from None
