"""Practice drills: inject a known fault into a practice host, record it, undo it exactly.

    opsfix drill list
    opsfix drill break bad_config --limit web1   # only where the inventory says practice: true
    opsfix check playbooks/nginx_recovery.yml --limit web1
    opsfix drill status
    opsfix drill reset --limit web1

The definitions are in `catalog`, the host-side scripts in `script`, and choosing hosts
and running the scripts over opsfix's SSH transport in `run`.
"""

from opsfix.drills.catalog import BY_NAME, DRILLS, Drill
from opsfix.drills.run import (
    ActiveDrill,
    Connect,
    DrillRefused,
    HostOutcome,
    is_practice,
    parse_status,
    practice_hosts,
    run_everywhere,
    web_root,
    who,
)
from opsfix.drills.script import RECORD_DIR, break_script, reset_script, status_script

__all__ = [
    "BY_NAME",
    "DRILLS",
    "RECORD_DIR",
    "ActiveDrill",
    "Connect",
    "Drill",
    "DrillRefused",
    "HostOutcome",
    "break_script",
    "is_practice",
    "parse_status",
    "practice_hosts",
    "reset_script",
    "run_everywhere",
    "status_script",
    "web_root",
    "who",
]
