"""Bring an nginx config tree back to one that passes `nginx -t`; reload a running nginx.

From the known-good copy opsfix keeps on the host (paths not in it are removed), or from
templates (unmanaged paths matching `prune` are removed). The whole staged tree, includes
and symlinks too, must pass `nginx -t` before anything live changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator

from opsfix.plugin import Params, Plan, Remediation, TemplateName
from opsfix.transport.base import CommandResult

from . import _nginx
from ._nginx import Tree

Source = Literal["auto", "known_good", "template"]
PRUNE = ["sites-enabled/*", "conf.d/*.conf"]  # what nginx loads; conf.d/README stays


class NginxRestoreConfigParams(Params):
    root: str = Field("/etc/nginx", description="the nginx config folder (holds nginx.conf)")
    source: Source = Field("auto", description="auto: the snapshot if there is one, else templates")
    files: dict[str, TemplateName] = Field({}, description="host path under root -> template")
    symlinks: dict[str, str] = Field({}, description="host path under root -> link target")
    prune: list[str] = Field(PRUNE, description="globs under root: unmanaged matches are removed")
    binary: str = Field("nginx", description="the nginx command on the host")
    service: str = Field("nginx", description="the systemd unit, where the host runs systemd")
    known_good_dir: str = Field(_nginx.KNOWN_GOOD_DIR, description="where snapshots live")

    @model_validator(mode="after")
    def _paths_under_root(self) -> NginxRestoreConfigParams:
        _nginx.check_under(self.root, [*self.files, *self.symlinks])
        if self.source == "template" and not (self.files or self.symlinks):
            raise ValueError("source 'template' needs files or symlinks")
        return self


class NginxRestoreConfig(Remediation[NginxRestoreConfigParams]):
    """Restore root from the known-good snapshot or from templates; validate; reload."""

    disruptive = True

    @property
    def snapshot(self) -> str:
        return _nginx.known_good_path(self.params.root, self.params.known_good_dir)

    def gather(self) -> list[str]:
        live = _nginx.manifest_command(self.params.root)
        snapshot = _nginx.snapshot_command(self.snapshot)
        return [live] if self.params.source == "template" else [live, snapshot]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        root, binary, service = self.params.root, self.params.binary, self.params.service
        try:
            live = _nginx.read_manifest(facts[0], root)
            origin, want, stray = self._wanted(facts[1:], live)
            changes = _nginx.tree_changes(root, want, live, stray)
        except ValueError as exc:
            return Plan(f"{root} not restored", refuse=str(exc))
        if not changes:
            return Plan(f"{root} already matches the {origin}")
        conf = f"{root}/nginx.conf"
        return Plan(
            f"restore {root} from the {origin}: {_nginx.describe(changes)}; reload if running",
            changes=tuple(changes),
            stage_root=root,
            validate=(_nginx.staged_test(binary),),
            act=(_nginx.reload_if_running(binary, service, conf),),
            rollback=(_nginx.reload_if_valid(binary, service, conf),),
        )

    def _wanted(self, snapshot: Sequence[CommandResult], live: Tree) -> tuple[str, Tree, list[str]]:
        """Where the tree comes from, what it should hold, and which live paths may go."""
        p = self.params
        if snapshot and snapshot[0].exit_status != 2:  # 2: there is no snapshot
            want = _nginx.read_snapshot(snapshot[0], self.snapshot)
            return f"known-good snapshot {self.snapshot}", want, list(live)
        if p.source == "known_good" or not (p.files or p.symlinks):
            raise ValueError(
                f"no known-good snapshot of {p.root} at {self.snapshot} yet (opsfix keeps one "
                "after each healthy run) and no templates: set `files` (and `symlinks`)"
            )
        render = self.context.render_template
        rendered = {path: render(name, self.context.vars) for path, name in p.files.items()}
        want = _nginx.wanted_tree(p.root, rendered, p.symlinks)
        return "templates", want, [r for r in live if any(_nginx.matches(r, g) for g in p.prune)]

    def baseline(self) -> list[str]:
        return [_nginx.baseline_command(self.params.binary, self.params.root, self.snapshot)]

    def baseline_current(self) -> list[str]:
        return [_nginx.snapshot_matches_command(self.params.root, self.snapshot)]
