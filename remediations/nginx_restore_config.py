"""Bring an nginx config tree back to one that passes `nginx -t`; reload a running nginx.

Each source is named on purpose in the playbook, which lists them in the order to try:
the host's own known-good snapshot (the files that differ come back; paths it lacks go),
a healthy peer's snapshot (only the file `nginx -t` blames), or templates declared as the
desired state (unmanaged paths matching `prune` go). `auto` (the practice lab's) is the
snapshot when there is one, else the templates. The whole staged tree, includes and
symlinks too, must pass `nginx -t` before anything live changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field, model_validator

from opsfix.plugin import Change, Params, Plan, Remediation, TemplateName
from opsfix.shell import quote
from opsfix.transport.base import CommandResult

from . import _nginx, _nginx_peers
from ._nginx import Tree

Source = Literal["known_good", "peer", "template", "auto"]
PRUNE = ["sites-enabled/*", "conf.d/*.conf"]  # what nginx loads; conf.d/README stays


class NginxRestoreConfigParams(Params):
    root: str = Field("/etc/nginx", description="the nginx config folder (holds nginx.conf)")
    source: Source = Field("known_good", description="known_good, peer, template, or auto")
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
        if self.source in ("known_good", "peer") and (self.files or self.symlinks):
            raise ValueError(f"files and symlinks are templates: source {self.source!r} has none")
        return self


class NginxRestoreConfig(Remediation[NginxRestoreConfigParams]):
    """Restore root from a known-good snapshot (its own or a peer's) or from templates."""

    disruptive = True

    @property
    def snapshot(self) -> str:
        return _nginx.known_good_path(self.params.root, self.params.known_good_dir)

    def gather(self) -> list[str]:
        p = self.params
        live = _nginx.manifest_command(p.root)
        if p.source == "peer":  # whether this host has its own, and what nginx -t blames
            has_own = f"[ -d {quote(self.snapshot + '/')} ]"
            return [live, has_own, _nginx.test_command(p.binary, p.root)]
        return [live] if p.source == "template" else [live, _nginx.snapshot_command(self.snapshot)]

    def plan(self, facts: Sequence[CommandResult]) -> Plan:
        return self.plan_from_peers(facts, {})

    def peer_gather(self, facts: Sequence[CommandResult]) -> list[str]:
        p = self.params
        if p.source != "peer" or len(facts) < 3 or facts[1].ok:
            return []
        try:
            live = _nginx.read_manifest(facts[0], p.root)
        except ValueError:  # the plan says why
            return []
        fault = _nginx.read_fault(facts[2])
        rels = _nginx_peers.wanted_paths(p.root, fault, live)
        return (
            [_nginx.snapshot_paths_command(p.binary, p.root, self.snapshot, rels)] if rels else []
        )

    def plan_from_peers(
        self, facts: Sequence[CommandResult], peers: Mapping[str, Sequence[CommandResult]]
    ) -> Plan:
        root = self.params.root
        try:
            live = _nginx.read_manifest(facts[0], root)
            origin, changes = self._changes(facts, live, peers)
        except ValueError as exc:
            return Plan(f"{root} not restored", refuse=str(exc))
        if not changes:
            return Plan(f"{root} already matches the {origin}")
        conf, binary, service = f"{root}/nginx.conf", self.params.binary, self.params.service
        return Plan(
            f"restore {root} from the {origin}: {_nginx.describe(changes)}; reload if running",
            changes=tuple(changes),
            stage_root=root,
            validate=(_nginx.staged_test(binary),),
            act=(_nginx.reload_if_running(binary, service, conf),),
            rollback=(_nginx.reload_if_valid(binary, service, conf),),
        )

    def _changes(
        self,
        facts: Sequence[CommandResult],
        live: Tree,
        peers: Mapping[str, Sequence[CommandResult]],
    ) -> tuple[str, list[Change]]:
        """Where the tree comes from, and the changes that bring it back."""
        p = self.params
        has_snapshot = p.source in ("known_good", "auto") and facts[1].exit_status != 2
        if p.source == "known_good" and not has_snapshot:
            raise ValueError(
                f"no known-good snapshot of {p.root} at {self.snapshot} (opsfix keeps one "
                "after each healthy run)"
            )
        if has_snapshot:
            want = _nginx.read_snapshot(facts[1], self.snapshot)
            return f"known-good snapshot {self.snapshot}", _nginx.tree_changes(
                p.root, want, live, list(live)
            )
        if p.source == "peer":
            if facts[1].ok:
                raise ValueError(f"this host has its own known-good snapshot {self.snapshot}")
            return _nginx_peers.restore(p.root, _nginx.read_fault(facts[2]), live, peers)
        if not (p.files or p.symlinks):  # auto, without a snapshot
            raise ValueError(
                f"no known-good snapshot of {p.root} at {self.snapshot} yet (opsfix keeps one "
                "after each healthy run) and no templates: set `files` (and `symlinks`)"
            )
        render = self.context.render_template
        rendered = {path: render(name, self.context.vars) for path, name in p.files.items()}
        want = _nginx.wanted_tree(p.root, rendered, p.symlinks)
        prunable = [r for r in live if any(_nginx.matches(r, g) for g in p.prune)]
        return "templates", _nginx.tree_changes(p.root, want, live, prunable)

    def baseline(self) -> list[str]:
        return [_nginx.baseline_command(self.params.binary, self.params.root, self.snapshot)]

    def baseline_current(self) -> list[str]:
        return [_nginx.snapshot_matches_command(self.params.root, self.snapshot)]
